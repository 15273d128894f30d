"""What each candidate costs per request, from the eval records: prompt and generated tokens, latency, throughput.

Pure functions, no model. Timings are those measured when each prediction was generated (a cached prediction keeps
the time of the run that made it), on that run's device and batch size. A request's latency is the wall time of
the batch it ran in; its share of device time is that time over the batch's rows, so requests per second is rows
over time. Relative cost is device time per request divided by the fine-tuned candidate's.
"""

from __future__ import annotations

from statistics import mean

REFERENCE = "fine-tuned"


def cost_summary(policy_records: list[dict], candidates: list[str]) -> dict:
    """{candidate: {requests, prompt_tokens {mean, max}, new_tokens {mean, max}, timed, latency_s, requests_per_s,
    device_s_per_request, batch_rows, relative_cost, relative_tokens}}; one row per (run, split, case)."""
    out: dict = {}
    for cand in candidates:
        seen: dict = {}
        for r in policy_records:
            if r["candidate"] == cand:
                seen.setdefault((r.get("run", "main"), r["split"], r["case_id"]), r.get("cost") or {})
        rows = list(seen.values())
        if not rows:
            continue
        prompt = [c["prompt_tokens"] for c in rows if "prompt_tokens" in c]
        new = [c["new_tokens"] for c in rows if "new_tokens" in c]
        timed = [c for c in rows if "batch_seconds" in c and c.get("batch_rows")]
        device_s = sum(c["batch_seconds"] / c["batch_rows"] for c in timed)
        out[cand] = {
            "requests": len(rows),
            "prompt_tokens": {"mean": mean(prompt), "max": max(prompt)} if prompt else None,
            "new_tokens": {"mean": mean(new), "max": max(new)} if new else None,
            "timed": len(timed),
            "latency_s": mean(c["batch_seconds"] for c in timed) if timed else None,
            "requests_per_s": len(timed) / device_s if device_s > 0 else None,
            "device_s_per_request": device_s / len(timed) if timed else None,
            "batch_rows": max(c["batch_rows"] for c in timed) if timed else None,
        }
    ref = out.get(REFERENCE) or {}
    for row in out.values():
        row["relative_cost"] = _ratio(row["device_s_per_request"], ref.get("device_s_per_request"))
        row["relative_tokens"] = _ratio(_tokens(row), _tokens(ref)) if ref else None
    return out


def _tokens(row: dict) -> float | None:
    if not row.get("prompt_tokens") or not row.get("new_tokens"):
        return None
    return row["prompt_tokens"]["mean"] + row["new_tokens"]["mean"]


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b else None
