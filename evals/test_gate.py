"""The merge gate: this run's fine-tuned seeds against the recorded baseline seeds, case by case (evals/verdict.py)."""

import pytest

from evals.expectations import RECORD_COMMAND, decision_of, mode, recorded_ids, run_entry, write
from evals.metamorphic import bias_cases
from evals.must_pass import invariants
from evals.verdict import band, judge, run_rates
from reports import verdict_render

pytestmark = pytest.mark.gate
GATED = "fine-tuned"


def test_gate(request, predict_runs, splits, policy, candidates, router_settings, golden_id, expectations, record_property, run_facts):
    if router_settings.cases:
        pytest.skip("the baseline is for the test split; --cases scores another file")
    from fixtures.eval_params import cases_for

    if router_settings.update_expectations:
        entries = {}
        for name in candidates:
            runs = predict_runs(name, cases_for(request.config, name))
            facts = request.getfixturevalue("predictor").adapters[name]
            entries[name] = {label: run_entry(next(iter(preds.values())).identity, facts[label], preds)
                             for label, preds in runs.items()}
        bands = {c: {m: band(v) for m, v in run_rates(splits["test"], {k: r["decisions"] for k, r in runs.items()}).items()}
                 for c, runs in entries.items()}
        path = write(router_settings.golden_dir, golden_id, entries,
                     {"base_model": run_facts.get("base_model"), "base_identity": run_facts.get("base_identity"),
                      "device": run_facts.get("device"), "kernels": run_facts.get("kernels"), "bands_on_test": bands})
        pytest.skip(f"--update-expectations: wrote {path}")
    if expectations is None or not expectations.runs(GATED):
        others = [i for i in recorded_ids(router_settings.golden_dir) if i != golden_id]
        pytest.fail(f"no baseline for {golden_id}" + (f"; the recorded ones are for {', '.join(others)}" if others else "")
                    + f". Record one on this machine with `{RECORD_COMMAND}`, review and commit "
                    f"{router_settings.golden_dir.name}/{golden_id}/expectations.json.", pytrace=False)
    judged_against = run_facts.get("record", {}).get("line")
    test = splits["test"]
    runs = predict_runs(GATED, cases_for(request.config, GATED))
    current = {label: {cid: decision_of(p) for cid, p in preds.items()} for label, preds in runs.items()}
    verdict = judge(test, bias_cases(test), expectations.decisions(GATED), current, invariants(policy), router_settings.verdict).to_dict()
    identities = {label: next(iter(preds.values())).identity for label, preds in runs.items()}
    if mode(expectations, GATED, identities) != "strict":
        verdict["rerecord"] = RECORD_COMMAND
    if judged_against:
        verdict["record"] = judged_against
    record_property("router_gate", verdict)
    if not verdict["ok"]:
        pytest.fail("\n".join(verdict_render.text(verdict)), pytrace=False)
