"""The graphs plan's layer stack (training/layer_graph.py): while it stands in, the model computes what it computed
before (on CPU every call runs the layers one by one and says why; on CUDA the replayed graphs match the layers run one
by one), and afterwards the model is its own again."""

import pytest

from tests.tiny_model import loss_and_grad, trainable_tiny


@pytest.fixture(scope="module")
def packed(tiny, adapter_system, splits):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from training.recipe import build_dataset

    _, tokenizer = tiny
    rows = list(build_dataset(tokenizer, adapter_system, splits["train"][:3]))
    return DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)


def decoder(model):
    return model.get_base_model().model


def test_on_cpu_the_layers_run_one_by_one_and_the_model_is_restored(tiny_model_dir, packed):
    import torch

    from training.layer_graph import GraphedLayers, layers_in_one_graph

    model = trainable_tiny(tiny_model_dir)
    names = [n for n, _ in model.named_parameters()]
    loss, grad = loss_and_grad(model, packed)
    with layers_in_one_graph(decoder(model), log=lambda _: None) as graphed:
        assert isinstance(graphed, GraphedLayers) and list(decoder(model).layers) == [graphed]
        inside_loss, inside_grad = loss_and_grad(model, packed)
    assert (inside_loss, torch.equal(inside_grad, grad)) == (loss, True)
    assert graphed.eager_calls == {"a tensor off CUDA": 1} and graphed.replays == 0
    assert [n for n, _ in model.named_parameters()] == names  # an adapter saved afterwards has the model's keys


def test_calls_a_graph_cannot_stand_for_are_named():
    import torch

    from training.layer_graph import GraphedLayers

    h, mask, rope, pos = torch.zeros(1, 4, 8), torch.ones(1, 1, 4, 4, dtype=torch.bool), (torch.zeros(1, 4, 2),) * 2, torch.arange(4)[None]
    why = GraphedLayers.why_not_graphed
    assert why(h, mask, rope, pos, None, True, {}) == "a cache"
    assert why(h, None, rope, pos, None, False, {}) == "no attention mask"
    assert why(h, mask, rope, pos, None, False, {"sliding_window": 4}) == "keyword inputs ['sliding_window']"
    assert why(h, mask, rope, pos, None, False, {"num_items_in_batch": 7, "cu_seq_lens_q": pos}) == "a tensor off CUDA"
    assert why(h.requires_grad_(), mask, rope, pos, None, False, {}) == "an input that requires grad"


def test_a_decoder_whose_layers_take_different_masks_is_left_alone(tiny_model_dir):
    from training.layer_graph import graphable, layers_in_one_graph

    model = trainable_tiny(tiny_model_dir)
    config = decoder(model).config
    assert graphable(decoder(model)) is None
    config.layer_types = ["full_attention", "sliding_attention"]
    assert "different masks" in graphable(decoder(model))
    config.layer_types = None
    config._attn_implementation = "flash_attention_2"
    said = []
    with layers_in_one_graph(decoder(model), log=said.append) as graphed:
        assert graphed is None and len(decoder(model).layers) == 2
    assert "flash_attention_2" in said[0]


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="CUDA graphs need a CUDA device")
def test_on_cuda_the_replayed_graphs_compute_what_the_layers_do(tiny_model_dir, packed):
    """Loss and every adapter gradient as the layers run one by one, over three steps whose optimizer moves the
    weights in place (the graph reads them where they are); a val call replays the forward-only graph; a second
    training forward before the backward is refused."""
    import torch

    from training.layer_graph import layers_in_one_graph

    batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in packed.items()}
    runs = []
    for graphs in (False, True):
        model = trainable_tiny(tiny_model_dir).cuda()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        seen = []
        with layers_in_one_graph(decoder(model), log=print) if graphs else torch.enable_grad() as graphed:
            for _ in range(3):
                seen.append(loss_and_grad(model, batch))
                optimizer.step()
            with torch.no_grad():
                seen.append(model(**batch, use_cache=False).loss.item())
            if graphs:
                assert graphed.eager_calls == {} and len(graphed.graphs) == 2 and graphed.replays == 4
                model(**batch, use_cache=False)
                with pytest.raises(RuntimeError, match="before the first one's backward"):
                    model(**batch, use_cache=False)
        runs.append(seen)
    eager, graphed_run = runs
    for (loss, grad), (g_loss, g_grad) in zip(eager[:3], graphed_run[:3]):
        assert g_loss == pytest.approx(loss, rel=1e-5)
        assert torch.allclose(g_grad, grad, rtol=1e-4, atol=1e-6)
    assert graphed_run[3] == pytest.approx(eager[3], rel=1e-5)
