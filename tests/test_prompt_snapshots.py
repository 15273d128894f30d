"""What the model sees, pinned as text (syrupy): the prompt the base and fine-tuned candidates send, and the text
one training example is made of. Training working is not inference working: a template, prefill or stop-token
change shows here as a diff before it shows as a drop in accuracy. Text, not token ids: the tiny test tokenizer's
vocabulary is built from the dataset, its chat template is the real one's shape. Update after an intended change
with `pytest tests/test_prompt_snapshots.py --snapshot-update`."""

from evals.dataset import Case
from fixtures.candidates import load_candidates
from fixtures.predictions import prompt_for
from fixtures.prompts import end_of_turn
from training.recipe import tokenized_example

REQUEST = "Finance wants an app that reads invoices and writes the approval status back to our internal ledger."
ANSWER = {"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app",
          "needs_review": True, "reason": "Writes back to an internal system, so it is a governed custom build."}


def test_base_prompt(tiny, policy, splits, snapshot):
    _, tokenizer = tiny
    base = {c.name: c for c in load_candidates(policy, splits["train"])}["base"]
    assert prompt_for(tokenizer, base, REQUEST) == snapshot


def test_fine_tuned_prompt(tiny, policy, splits, snapshot):
    _, tokenizer = tiny
    fine_tuned = {c.name: c for c in load_candidates(policy, splits["train"])}["fine-tuned"]
    assert prompt_for(tokenizer, fine_tuned, REQUEST) == snapshot


def test_training_example_text(tiny, policy, snapshot):
    """The prompt the adapter learns from, then the answer and the end-of-turn token; the loss covers the answer."""
    _, tokenizer = tiny
    case = Case("snap_001", REQUEST, ANSWER, ("custom-build",), "train", "snapshot", 1)
    row = tokenized_example(tokenizer, policy.short_system_prompt, case, end_of_turn(tokenizer))
    answer_ids = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert {"all": tokenizer.decode(row["input_ids"]), "loss_on": tokenizer.decode(answer_ids)} == snapshot
