import pytest

from evals.dataset import load_splits
from evals.policy import load_policy
from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture(scope="session")
def splits(policy):
    return load_splits(policy)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, splits):
    corpus = [c.request for cases in splits.values() for c in cases][:200] + ['{"tier": "x", "risk": "low"}']
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, tokenizer
