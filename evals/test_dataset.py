"""The dataset gate: runs in seconds with no model; a failure here stops training."""

import pytest

from evals.dataset import SPLITS, read_cases, split_path
from evals.gate import coverage, duplicate_ids, leaks

pytestmark = pytest.mark.dataset


def _fail_on(problems):
    __tracebackhide__ = True
    if problems:
        pytest.fail("\n".join(str(p) for p in problems), pytrace=False)


@pytest.mark.parametrize("split", SPLITS)
def test_rows_parse_and_validate(policy, split, router_settings):
    """Every line is JSON, every row has the fields, the labels follow the contract and the rules they name."""
    _, problems = read_cases(split_path(split, router_settings.data_dir), policy, split)
    _fail_on(problems)


def test_ids_unique_across_splits(splits):
    _fail_on(duplicate_ids(splits))


def test_every_rule_covered_in_every_split(splits, policy, router_settings):
    _fail_on(coverage(splits, policy, router_settings.gate))


def test_no_held_out_request_leaks_from_train(splits, router_settings):
    _fail_on(leaks(splits, router_settings.gate))


def test_split_sizes(splits):
    sizes = {name: len(cases) for name, cases in splits.items()}
    assert sizes["train"] >= 160 and sizes["val"] >= 40 and sizes["test"] >= 40, sizes


def test_notes_examples_present(splits, policy):
    """The notes' own examples are in the data (each policy rule's first example is one of them or close kin)."""
    requests = {c.request for cases in splits.values() for c in cases}
    for text in (
        "A sales analyst wants to query curated opportunity data with SQL and build a dashboard for regional pipeline trends.",
        "Marketing wants a Glean agent that summarizes campaign briefs and drafts LinkedIn posts.",
        "Finance wants an agent that reviews invoices, flags anomalies, and updates vendor records after approval.",
    ):
        assert text in requests, f"missing the notes' example: {text}"
