"""Adapters cached by a hash of everything that shapes them, published atomically, built by one process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

from evals.dataset import Case
from fixtures.atomic import mkdtemp_shared, publish_folder, write_json_atomic
from fixtures.base_model import sha256_file

MANIFEST = "manifest.json"  # written last: a folder without a valid one is not an adapter
HISTORY = "history.jsonl"  # one line per adapter trained into this cache
KEYED_PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes")
ROOT = Path(__file__).resolve().parent.parent
# The code that shapes an adapter: the recipe, its config, how CUDA trains (memory plan, layer graphs, compile,
# attention kernels) and the prompt rendering. Editing any of them retrains.
TRAINING_CODE = ("training/recipe.py", "training/config.py", "training/memory_plan.py", "training/layer_graph.py",
                 "training/shared_prompt.py", "fixtures/prompts.py")
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["key", "files"],
    "properties": {
        "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "files": {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
    },
}


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
        """The identity of the trained bytes (fixtures/adapter_weights.py), not of the recipe's inputs: a retrained
        adapter under the same key may have other weights, and whatever was predicted with the old ones no longer
        applies; the same bytes retrained elsewhere are the same weights."""
        from fixtures.adapter_weights import adapter_weights

        return adapter_weights(self.path, self.manifest.get("files"))  # the manifest's digests, checked on load


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


def code_identity(files: tuple[str, ...] = TRAINING_CODE, root: Path = ROOT) -> str:
    """sha256 over the source bytes of the code that shapes the adapter (name, then bytes, per file)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def key_inputs(train: list[Case], val: list[Case], config: dict, base_identity: str, runtime_label: str,
               prompt_template: dict) -> dict:
    return {
        "code": code_identity(),
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
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except OSError as exc:
        return f"manifest is unreadable ({exc.strerror})"
    except UnicodeDecodeError as exc:
        return f"manifest is not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
    except json.JSONDecodeError as exc:
        return f"manifest is not valid JSON ({exc.msg} at line {exc.lineno})"
    problem = manifest_problem(manifest)
    if problem:
        return problem
    if manifest["key"] != key:
        return "manifest is for another key"
    for name, digest in manifest["files"].items():
        path = folder / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} does not match its checksum"
    return None


def manifest_problem(manifest) -> str | None:
    """What breaks MANIFEST_SCHEMA, as 'manifest field X: message', or None."""
    from jsonschema import Draft202012Validator

    error = next(iter(sorted(Draft202012Validator(MANIFEST_SCHEMA).iter_errors(manifest), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "<top level>"
    return f"manifest field {where}: {error.message}"


def clean_stale_temps(cache_root: Path, held: str = "", log=print) -> list[Path]:
    """Remove hidden temporary folders left by interrupted trainings (SIGTERM, SIGKILL, power loss).

    A `.{key}-*` folder is built only while its builder holds `{key}.lock`, so it is stale exactly when that
    lock can be taken at once; we take it (non-blocking) before removing, except for `held`, the key whose
    lock the caller already holds. `.old-*` folders hold a replaced
    adapter for the instant before it is deleted, under the same lock; they are stale once older than
    STALE_OLD_S. flock-based locks are reliable on local disks; on NFS they are only as good as the server.
    """
    from filelock import FileLock, Timeout

    removed = []
    for tmp in sorted(cache_root.glob(".*-*")):
        if not tmp.is_dir():
            continue
        name = tmp.name[1:]
        if name.startswith("old-"):
            if time.time() - tmp.stat().st_mtime > STALE_OLD_S:
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
            continue
        key32 = name.split("-", 1)[0]
        if len(key32) != 32:
            continue
        if key32 == held:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            continue
        try:
            with FileLock(str(cache_root / f"{key32}.lock"), timeout=0):
                shutil.rmtree(tmp, ignore_errors=True)
        except Timeout:
            continue  # its builder is alive and training
        except OSError:
            continue  # a cache we cannot write: nothing to clean
        removed.append(tmp)
    if removed:
        log(f"removed {len(removed)} temporary adapter folder(s) left by interrupted training: {', '.join(p.name for p in removed)}")
    return removed


STALE_OLD_S = 3600


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
    folder = cache_root / key[:32]
    if not retrain and check_adapter(folder, key) is None:
        # Complete and intact: no lock needed, so a read-only cache that holds the adapter works.
        log(f"adapter {key[:12]} cached at {folder}")
        return AdapterInfo(folder, key, json.loads((folder / MANIFEST).read_text(encoding="utf-8")), trained_now=False)
    held = ExitStack()  # the key's lock, entered here so that a cache we cannot write gets a clear error
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        held.enter_context(FileLock(str(cache_root / f"{key[:32]}.lock"), timeout=-1 if wait else 0))
    except Timeout:
        raise AdapterBusy(key) from None
    except OSError as exc:
        raise AdapterNotCached(
            f"adapter {key[:12]} in {cache_root}: {check_adapter(folder, key) or '--retrain'}, and the cache cannot be written "
            f"to build it ({exc.strerror}); point --adapter-cache at a writable folder") from exc
    with held:
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
        clean_stale_temps(cache_root, held=key[:32], log=log)
        tmp = mkdtemp_shared(cache_root, prefix=f".{key[:32]}-")
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
            publish_folder(tmp, folder)
            with open(cache_root / HISTORY, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "run_id": run_id, "created": manifest["created"], "pid": os.getpid()}) + "\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return AdapterInfo(folder, key, manifest, trained_now=True)
