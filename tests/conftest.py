import pytest

from evals.dataset import load_splits
from evals.policy import load_policy
from tests.tiny_model import build_tiny_model


def pytest_configure(config: pytest.Config) -> None:
    # pytester is for the harness's own tests only, so the root conftest does not list it (a user's
    # `pytest evals` never loads it). pytest reads `pytest_plugins` only from the root conftest; importing the
    # plugin here registers its options (pytest_addoption is a historic hook, replayed with defaults) and fixtures.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture(scope="session")
def splits(policy):
    return load_splits(policy)


@pytest.fixture(scope="session")
def adapter_system(policy, splits):
    """The system prompt the trained adapter learns and answers under (what the recipe's training rows carry)."""
    from fixtures.candidates import load_candidates
    from training.build import trained_candidate_system

    return trained_candidate_system({c.name: c for c in load_candidates(policy, splits["train"])})


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
