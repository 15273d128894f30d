"""The recipe's LoRA on a Qwen3-4B-shaped model trains exactly the notes' parameter count (meta device, no weights)."""

from training.config import TrainConfig, lora_config
from training.recipe import trainable_line


def test_qwen3_4b_trainable_parameters():
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Qwen3Config

    config = Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    peft_model = get_peft_model(model, lora_config(TrainConfig()))
    trainable, total = peft_model.get_nb_trainable_parameters()
    assert trainable_line(trainable, total) == "trainable 33,030,144 of 4,055,498,240, 0.81%"
