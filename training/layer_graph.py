"""The graphs plan's step: all decoder layers of a step in one CUDA graph, forward and backward.

A small model's step on CUDA is bound by the host launching kernels, not by the GPU (README, "Training"). Replaying
each compiled layer as its own CUDA graph (torch.compile's "reduce-overhead") still cost the host 60 graph launches a
step and their bookkeeping; here the whole layer stack is captured once (torch.cuda.make_graphed_callables: a forward
graph, and a backward graph that also writes the adapter weights' gradients), and a training step replays the two.
Val passes (no grad) replay a forward-only graph of their own. The layers run as written (compiled layers captured
the same way cost more to compile than they saved: training/memory_plan.py). The embeddings, the attention mask (its
packed-sequence check reads a value on the host), the rotary tables, the head and the loss run outside the graphs.

The graphs are shape-static: the plan pads every batch to one length (training/memory_plan.py `graph_length`), so one
graph serves every training step and one every val batch; another shape gets graphs of its own. A call the graphs
cannot stand for runs the layers as usual and is counted by reason (`GraphedLayers.eager_calls`): a cache
(generation), keyword inputs outside PASSIVE_KWARGS, no attention mask, an input that requires grad, a tensor off
CUDA. Only decoders whose layers all take one mask through sdpa or eager attention are graphed (`graphable`):
flash-attention derives the packed layout on the host from position ids, which a graph cannot replay. Autocast's
weight-cast cache is off inside the captures (a cached bf16 copy of an adapter weight would go stale after the
optimizer step), so the casts are part of the graph.

The graph's output and its saved activations live in static memory: each training forward must be followed by its
backward before the next one (the recipe has no gradient accumulation). A second forward before the backward raises
instead of silently mixing two batches' activations.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from torch import nn

# keyword inputs a decoder layer receives from the model's forward that do not change what it computes with a masked
# attention implementation: the trainer's loss count, output flags, and the flash-attention varlen layout TRL's
# padding-free collator adds (sdpa and eager take the packed layout from the mask instead)
PASSIVE_KWARGS = frozenset({"num_items_in_batch", "cache_position", "output_attentions", "output_hidden_states",
                            "return_dict", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx"})
# attention implementations that take the packed-sequence layout as a mask tensor (flash-attention derives it on the
# host from position ids, which a graph cannot replay)
MASKED_ATTENTION = ("sdpa", "eager")
WARMUP_CALLS = 3
# The captures run on side streams, and the adapter weights' gradient accumulators made there stay alive with the
# graphs, so autograd warns that their stream differs from the one the gradient comes from; it then synchronizes the
# two streams itself. The losses and gradients match the layers run one by one on CUDA (tests/test_layer_graph.py),
# so the warning is silenced inside layers_in_one_graph only.
STREAM_MISMATCH = "The AccumulateGrad node's stream does not match"


class LayerStack(nn.Module):
    """The layers in order, with the inputs a graph can hold: what the graphs capture. Its parameters are the layers'."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, hidden_states, attention_mask, cos, sin, position_ids):
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=attention_mask, position_embeddings=(cos, sin),
                                  position_ids=position_ids)
        return hidden_states


def _uncached_autocast():
    """The caller's CUDA autocast (dtype, on or off) without the weight-cast cache."""
    return torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), enabled=torch.is_autocast_enabled("cuda"),
                          cache_enabled=False)


def capture_training(stack: LayerStack, sample: tuple):
    """Forward and backward graphs of the stack (gradients for its trainable parameters; the inputs need none)."""
    with torch.enable_grad(), _uncached_autocast():
        return torch.cuda.make_graphed_callables(stack, sample, num_warmup_iters=WARMUP_CALLS)


def capture_inference(stack: LayerStack, sample: tuple):
    """A forward-only graph of the stack; returns a function that copies its inputs in, replays, and returns the
    static output."""
    static_in = tuple(t.clone() for t in sample)
    with torch.no_grad(), _uncached_autocast():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                stack(*static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = stack(*static_in)

    def replay(*args):
        for slot, value in zip(static_in, args):
            if slot.data_ptr() != value.data_ptr():
                slot.copy_(value)
        graph.replay()
        return static_out

    return replay


class GraphedLayers(nn.Module):
    """Stands in a decoder's layer list as its only entry and runs all the layers through the graphs."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers
        self.graphs: dict[tuple, object] = {}
        self.replays = 0
        self.eager_calls: dict[str, int] = {}
        self._awaiting_backward = False

    @staticmethod
    def why_not_graphed(hidden_states, attention_mask, position_embeddings, position_ids, past_key_values,
                        use_cache, kwargs) -> str | None:
        if past_key_values is not None or use_cache:
            return "a cache"
        if not isinstance(attention_mask, torch.Tensor):
            return "no attention mask"
        if not (isinstance(position_embeddings, tuple) and len(position_embeddings) == 2):
            return "no rotary tables"
        if not isinstance(position_ids, torch.Tensor):
            return "no position ids"
        if set(kwargs) - PASSIVE_KWARGS:
            return f"keyword inputs {sorted(set(kwargs) - PASSIVE_KWARGS)}"
        if hidden_states.requires_grad:
            return "an input that requires grad"
        if not all(t.is_cuda for t in (hidden_states, attention_mask, *position_embeddings, position_ids)):
            return "a tensor off CUDA"
        return None

    def forward(self, hidden_states, attention_mask=None, position_embeddings=None, position_ids=None,
                past_key_values=None, use_cache=False, **kwargs):
        reason = self.why_not_graphed(hidden_states, attention_mask, position_embeddings, position_ids, past_key_values,
                                      use_cache, kwargs)
        if reason is not None:
            self.eager_calls[reason] = self.eager_calls.get(reason, 0) + 1
            for layer in self.layers:
                hidden_states = layer(hidden_states, attention_mask=attention_mask,
                                      position_embeddings=position_embeddings, position_ids=position_ids,
                                      past_key_values=past_key_values, use_cache=use_cache, **kwargs)
            return hidden_states
        args = (hidden_states, attention_mask, *position_embeddings, position_ids)
        training = torch.is_grad_enabled()
        key = (training, self.training, tuple((tuple(t.shape), t.dtype) for t in args))
        if key not in self.graphs:
            stack = LayerStack(self.layers).train(self.training)
            sample = tuple(t.detach().clone() for t in args)
            self.graphs[key] = capture_training(stack, sample) if training else capture_inference(stack, sample)
        self.replays += 1
        if not training:
            return self.graphs[key](*args)
        if self._awaiting_backward:
            raise RuntimeError("graphs plan: a second training forward before the first one's backward (gradient "
                               "accumulation); the graph's saved activations hold one batch")
        out = self.graphs[key](*args)
        self._awaiting_backward = True
        out.register_hook(self._backward_reached)
        return out

    def _backward_reached(self, grad):
        self._awaiting_backward = False
        return grad


def graphable(decoder) -> str | None:
    """Why this decoder's layers cannot run as one graph, or None: every layer must take the same mask (one layer
    type) through a masked attention implementation."""
    config = decoder.config
    if getattr(config, "_attn_implementation", None) not in MASKED_ATTENTION:
        return f"attention implementation {config._attn_implementation!r} (graphs need one of {MASKED_ATTENTION})"
    if len(set(getattr(config, "layer_types", None) or ())) > 1:
        return f"layers of several types {sorted(set(config.layer_types))} take different masks"
    return None


@contextmanager
def layers_in_one_graph(decoder, log=print):
    """While inside, the decoder (the module holding `.layers`, e.g. a PEFT model's `get_base_model().model`) runs its
    layers through GraphedLayers; on exit its own layer list is back, so parameter names (and a saved adapter's keys)
    are the model's own. Yields the GraphedLayers, or None where `graphable` says no (the layers then run as usual)."""
    reason = graphable(decoder)
    if reason is not None:
        log(f"graphs plan: layers run one by one: {reason}")
        yield None
        return
    layers = decoder.layers
    graphed = GraphedLayers(layers)
    decoder.layers = nn.ModuleList([graphed])
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=STREAM_MISMATCH)
            yield graphed
    finally:
        decoder.layers = layers
