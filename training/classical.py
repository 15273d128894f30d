"""The classical candidate: a bag-of-words classifier of the joint decision, the floor a fine-tuned router is read against.

TF-IDF features and a logistic regression over the four decision fields taken as one label (scikit-learn). A small
set of settings is fitted on the train split and the one with the best val exact match is kept (ties: the first
listed); the test split is never looked at. The fitted model is stored as JSON (vocabulary, idf, coefficients), not
a pickle, in a cache folder named by the hash of the data and the settings; its identity is the sha256 of those bytes,
so predictions are keyed on the weights that made them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from evals.dataset import Case
from evals.policy import DECISION_FIELDS, Policy

FORMAT = 1
# (name, TfidfVectorizer settings, LogisticRegression C): the small set chosen between on val.
SETTINGS = (
    ("word-1-2gram-C20", {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True}, 20.0),
    ("word-1-2gram-C5", {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True}, 5.0),
    ("word-1-2gram-C100", {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True}, 100.0),
    ("char-2-5gram-C20", {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True}, 20.0),
)
MODEL_FILE = "classifier.json"


class ClassicalError(RuntimeError):
    pass


@dataclass(frozen=True)
class Classifier:
    """A fitted classifier as plain data, and its identity (sha256 of its stored bytes)."""

    data: dict
    identity: str

    def _pipeline(self):
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        d = self.data
        vec = TfidfVectorizer(**{**d["vectorizer"], "ngram_range": tuple(d["vectorizer"]["ngram_range"])})
        vec.vocabulary_ = d["vocabulary"]
        vec.idf_ = np.array(d["idf"], dtype=np.float64)
        clf = LogisticRegression()
        clf.coef_ = np.array(d["coef"], dtype=np.float64)
        clf.intercept_ = np.array(d["intercept"], dtype=np.float64)
        clf.classes_ = np.arange(len(d["labels"]))
        return vec, clf

    def decide(self, requests: list[str]) -> list[dict]:
        """The decision (four fields) for each request."""
        if not requests:
            return []
        vec, clf = self._pipeline()
        return [dict(self.data["labels"][int(i)]) for i in clf.predict(vec.transform(requests))]


def label_of(case: Case) -> str:
    return json.dumps({f: case.expected[f] for f in DECISION_FIELDS}, sort_keys=True)


def _fit(train: list[Case], vectorizer: dict, c: float):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    labels = sorted({label_of(x) for x in train})
    index = {label: i for i, label in enumerate(labels)}
    vec = TfidfVectorizer(**vectorizer)
    features = vec.fit_transform([x.request for x in train])
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(features, [index[label_of(x)] for x in train])
    return labels, vec, clf


def _exact(labels: list[str], vec, clf, cases: list[Case]) -> float:
    got = clf.predict(vec.transform([x.request for x in cases]))
    return sum(labels[int(i)] == label_of(x) for i, x in zip(got, cases)) / len(cases)


def fit_classifier(train: list[Case], val: list[Case]) -> dict:
    """Fit every setting in SETTINGS on train, keep the best on val; the fitted model as plain JSON-able data."""
    scored = []
    for name, vectorizer, c in SETTINGS:
        labels, vec, clf = _fit(train, vectorizer, c)
        scored.append((_exact(labels, vec, clf, val), -len(scored), name, vectorizer, c, labels, vec, clf))
    val_exact, _, name, vectorizer, c, labels, vec, clf = max(scored, key=lambda s: (s[0], s[1]))
    if len(clf.classes_) == 2:  # binary: sklearn keeps one row of coefficients; spell out both classes
        coef, intercept = [(-clf.coef_[0]).tolist(), clf.coef_[0].tolist()], [-float(clf.intercept_[0]), float(clf.intercept_[0])]
    else:
        coef, intercept = clf.coef_.tolist(), clf.intercept_.tolist()
    return {
        "format": FORMAT, "setting": name, "C": c, "val_exact": round(val_exact, 4),
        "val_exact_by_setting": {s[2]: round(s[0], 4) for s in scored},
        "vectorizer": {**vectorizer, "ngram_range": list(vectorizer["ngram_range"])},
        "vocabulary": {term: int(i) for term, i in sorted(vec.vocabulary_.items())}, "idf": vec.idf_.tolist(),
        "labels": [json.loads(label) for label in labels], "coef": coef, "intercept": intercept,
    }


def data_key(train: list[Case], val: list[Case]) -> str:
    """What the fitted model depends on: the requests and labels of train and val, the settings, this module's code."""
    rows = [[x.split, x.id, x.request, label_of(x)] for x in sorted([*train, *val], key=lambda x: (x.split, x.id))]
    digest = hashlib.sha256(json.dumps({"rows": rows, "settings": SETTINGS, "format": FORMAT}, sort_keys=True).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:24]


def ensure_classifier(cache_root: Path, train: list[Case], val: list[Case], log=print) -> Classifier:
    """The classifier for this data: read from the cache when its bytes check out, else fitted and stored atomically."""
    from fixtures.atomic import write_atomic, write_json_atomic

    key = data_key(train, val)
    path = Path(cache_root) / key / MODEL_FILE
    digest_path = path.with_suffix(".sha256")
    if path.is_file() and digest_path.is_file():
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest == digest_path.read_text().strip():
            return Classifier(json.loads(raw), digest)
        log(f"classical model {path}: its bytes do not match {digest_path.name}; fitting again")
    started = time.perf_counter()
    data = fit_classifier(train, val)
    try:
        write_json_atomic(path, data, sort_keys=True)
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        write_atomic(digest_path, (digest + "\n").encode())
    except OSError as exc:
        raise ClassicalError(f"classical model cache {path.parent} cannot be written ({exc}); point --cache-dir at a "
                             f"writable folder") from exc
    log(f"classical model: {data['setting']} chosen on val ({data['val_exact']:.1%} exact), fitted in "
        f"{time.perf_counter() - started:.1f}s")
    return Classifier(data, digest)


def reason_for(policy: Policy, decision: dict) -> str:
    """One sentence naming the policy rule whose decision this is (a classifier has no reason of its own)."""
    for rule in policy.rules:
        if rule.decision and all(rule.decision.get(f) == decision.get(f) for f in DECISION_FIELDS):
            return f"Closest in wording to the requests the policy routes by its {rule.id} rule."
    return "Closest in wording to training requests with this decision."

