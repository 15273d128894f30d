"""A tiny causal LM built locally from a config: random weights, a BPE tokenizer and a ChatML template."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tiny_model(folder: Path, corpus: list[str], seed: int = 0, layers: int = 2) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=SPECIALS[1:])
    tokenizer.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def trainable_tiny(folder: Path, dtype=None):
    """The tiny model as SFTTrainer trains it: TRL's fused LM head, then the recipe's LoRA, its weights drawn at random
    (LoRA B starts at zero, which would hide the adapter's gradient path from the loss). dtype: the base's (default
    fp32); the LoRA weights are fp32 either way, as PEFT makes them."""
    import torch
    import trl.trainer.utils as trl_utils
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from training.benchmark import SFT_HEAD_OUTPUTS
    from training.config import TrainConfig, lora_config

    model = AutoModelForCausalLM.from_pretrained(folder, **({"dtype": dtype} if dtype is not None else {}))
    trl_utils.add_fused_lm_head(model, outputs=SFT_HEAD_OUTPUTS)
    torch.manual_seed(0)
    model = get_peft_model(model, lora_config(TrainConfig()))
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    return model


def loss_and_grad(model, batch):
    """(SFTTrainer's loss on the batch, every trainable parameter's gradient flattened into one tensor)."""
    import torch

    model.zero_grad()
    out = model(**batch, use_cache=False, fused_lm_head=True)
    loss = -out.log_probs.sum() / out.label_mask.sum()
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
