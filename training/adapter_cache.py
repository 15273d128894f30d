"""Adapters cached by a hash of everything that shapes them, published atomically, built by one process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

from evals.dataset import Case
from fixtures.atomic import write_json_atomic
from fixtures.base_model import sha256_file

MANIFEST = "manifest.json"  # written last: a folder without a valid one is not an adapter
HISTORY = "history.jsonl"  # one line per adapter trained into this cache
KEYED_PACKAGES = ("transformers", "peft", "trl", "bitsandbytes")


class AdapterNotCached(RuntimeError):
    pass


class AdapterBusy(RuntimeError):
    """Another process is building this adapter now (ensure_adapter with wait=False)."""


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    key: str
    manifest: dict
    trained_now: bool

    def summary(self) -> dict:
        """What the scorecard shows of an adapter."""
        m = self.manifest
        return {
            "key": self.key, "trained_now": self.trained_now, "path": str(self.path), "device": m.get("device"),
            "wall_time_s": m.get("wall_time_s"), "trainable_params": m.get("trainable_params"), "total_params": m.get("total_params"),
            "final_train_loss": (m.get("train_loss") or [[None, None]])[-1][1],
            "final_val_loss": (m.get("val_loss") or [[None, None]])[-1][1],
            "loss_curve": str(self.path / "loss_curve.png"), "seed": (m.get("key_inputs") or {}).get("config", {}).get("seed"),
            "weights": self.weights,
        }

    @property
    def weights(self) -> str:
        """The identity of the trained bytes (weights and adapter config), not of the recipe's inputs: a retrained
        adapter under the same key has other weights, and whatever was predicted with the old ones no longer applies."""
        files = {n: d for n, d in (self.manifest.get("files") or {}).items() if n.endswith((".safetensors", ".json"))}
        return "sha256:" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def canonical_rows(cases: list[Case]) -> list[dict]:
    """The bytes of a split that matter for training: ids, requests, labels, rules; not file order or spacing."""
    return [
        {"id": c.id, "request": c.request, "expected": c.expected, "rules": list(c.rules)}
        for c in sorted(cases, key=lambda c: c.id)
    ]


def package_versions() -> dict:
    out = {}
    for name in KEYED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def key_inputs(train: list[Case], val: list[Case], config: dict, base_identity: str, runtime_label: str,
               prompt_template: dict) -> dict:
    return {
        "train": canonical_rows(train),
        "val": canonical_rows(val),
        "config": config,
        "base_model": base_identity,
        "runtime": runtime_label,
        "prompt_template": prompt_template,
        "versions": package_versions(),
    }


def adapter_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def file_checksums(folder: Path) -> dict:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}


def check_adapter(folder: Path, key: str) -> str | None:
    """None when folder holds a complete adapter for key, else what is wrong with it."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return "no manifest (never finished)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return "manifest is not valid JSON"
    if manifest.get("key") != key:
        return "manifest is for another key"
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} does not match its checksum"
    return None


def ensure_adapter(cache_root: Path, inputs: dict, train_into: Callable[[Path], dict], *, retrain: bool = False,
                   no_train: bool = False, run_id: str = "", log=print, wait: bool = True) -> AdapterInfo:
    """The adapter for these inputs: reused when cached and intact, else trained by exactly one process.

    train_into(tmp_folder) writes the adapter files and returns the facts for the manifest.
    With retrain, an adapter already trained by this same run (run_id, shared by xdist workers) is reused.
    With wait=False, raise AdapterBusy at once when another process holds this key's lock.
    """
    from filelock import FileLock, Timeout

    key = adapter_key(inputs)
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    folder = cache_root / key[:32]
    lock = FileLock(str(cache_root / f"{key[:32]}.lock"), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise AdapterBusy(key) from None
    try:
        problem = check_adapter(folder, key)
        if problem is None:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            if not retrain or (run_id and manifest.get("run_id") == run_id):
                log(f"adapter {key[:12]} cached at {folder}")
                return AdapterInfo(folder, key, manifest, trained_now=False)
            problem = "--retrain"
        if no_train:
            raise AdapterNotCached(
                f"no cached adapter for key {key[:12]} in {cache_root} ({problem}) and --no-train was given; "
                f"run once without --no-train to build it"
            )
        if folder.exists():
            log(f"adapter {key[:12]}: rebuilding ({problem})")
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:32]}-", dir=cache_root))
        try:
            facts = train_into(tmp)
            manifest = {
                "key": key,
                "run_id": run_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "key_inputs": {k: v for k, v in inputs.items() if k not in ("train", "val")},
                "rows": {"train": len(inputs["train"]), "val": len(inputs["val"])},
                **facts,
                "files": file_checksums(tmp),
            }
            write_json_atomic(tmp / MANIFEST, manifest)
            if folder.exists():
                trash = Path(tempfile.mkdtemp(prefix=".old-", dir=cache_root))
                os.replace(folder, trash / "adapter")
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, folder)
            with open(cache_root / HISTORY, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "run_id": run_id, "created": manifest["created"], "pid": os.getpid()}) + "\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    return AdapterInfo(folder, key, manifest, trained_now=True)
