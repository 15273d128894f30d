"""The classical candidate (training/classical.py): chosen on val, stored as checked JSON, keyed on the data."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from evals.dataset import load_splits
from evals.policy import load_policy
from training import classical


@pytest.fixture(scope="module")
def splits():
    return load_splits(load_policy())


@pytest.fixture(scope="module")
def fitted(splits, tmp_path_factory):
    root = tmp_path_factory.mktemp("classical")
    return root, classical.ensure_classifier(root, splits["train"], splits["val"], log=lambda _: None)


def test_the_setting_is_the_best_on_val_and_the_fit_is_deterministic(fitted, splits):
    """Chosen by val exact match (ties: the first listed); fitting takes train and val only, so test cannot leak in."""
    _, clf = fitted
    by_setting = clf.data["val_exact_by_setting"]
    assert list(by_setting) == [name for name, _, _ in classical.SETTINGS]
    assert clf.data["setting"] == max(by_setting, key=lambda name: (by_setting[name], -list(by_setting).index(name)))
    assert clf.data["val_exact"] == by_setting[clf.data["setting"]]
    assert classical.fit_classifier(splits["train"], splits["val"]) == json.loads(json.dumps(clf.data))


def test_the_stored_json_decides_as_the_fitted_model_and_a_tampered_file_is_refitted(fitted, splits):
    root, clf = fitted
    requests = [c.request for c in splits["test"]]
    again = classical.ensure_classifier(root, splits["train"], splits["val"], log=lambda _: None)
    assert again.identity == clf.identity and again.decide(requests) == clf.decide(requests)
    path = root / classical.data_key(splits["train"], splits["val"]) / classical.MODEL_FILE
    assert json.loads(path.read_text())["format"] == classical.FORMAT  # JSON, not a pickle
    data = json.loads(path.read_text())
    data["intercept"] = [0.0] * len(data["intercept"])
    path.write_text(json.dumps(data, sort_keys=True))
    lines = []
    repaired = classical.ensure_classifier(root, splits["train"], splits["val"], log=lines.append)
    assert any("do not match" in line for line in lines)
    assert repaired.identity == clf.identity  # refitted to the same bytes


def test_a_changed_train_row_is_another_model(splits):
    row = splits["train"][0]
    changed = [replace(row, request=row.request + " Also Salesforce."), *splits["train"][1:]]
    assert classical.data_key(changed, splits["val"]) != classical.data_key(splits["train"], splits["val"])


def test_its_answers_parse_as_a_models_and_beat_chance_on_test(fitted, splits):
    from fixtures.predictor import classical_predictions
    from reports.scoring import accuracies

    _, clf = fitted
    policy = load_policy()
    preds = classical_predictions(clf, policy, "classical", splits["test"])
    assert all(p.parsed.schema_valid for p in preds.values())
    assert {p.identity for p in preds.values()} == {"classical:" + clf.identity[:24]}
    assert accuracies(splits["test"], preds)["exact"] > 0.8
