"""Tiny Hugging Face models wrapped by the real ``peft`` (LoRA, IA3), built locally.

BERT and GPT-2 with hidden size 32 and two layers: no download, a few milliseconds
each once transformers is imported. Each call builds a fresh model (tests change them).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def bert(seed: int = 0) -> Any:
    """BertForSequenceClassification: bert.embeddings, bert.encoder.layer.{0,1}, classifier."""
    cfg = transformers.BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        vocab_size=100, max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(cfg)


def gpt2(seed: int = 0) -> Any:
    """GPT2LMHeadModel: transformer.h.{0,1}.attn.c_attn (Conv1D), lm_head tied to wte."""
    cfg = transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg)


def lora_bert(model: Any = None, **config: Any) -> Any:
    """LoRA on query/value; the classifier goes to modules_to_save (peft's SEQ_CLS default)."""
    cfg = peft.LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS", **config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(bert() if model is None else model, cfg)


def ia3_gpt2(model: Any = None) -> Any:
    """IA3 on c_attn and mlp.c_proj of a GPT-2 (``ia3_l`` vectors, no modules_to_save)."""
    cfg = peft.IA3Config(
        task_type="CAUSAL_LM", target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(gpt2() if model is None else model, cfg)


def lora_gpt2(**config: Any) -> Any:
    cfg = peft.LoraConfig(r=2, target_modules=["c_attn"], task_type="CAUSAL_LM", **config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(gpt2(), cfg)


def lora_llama() -> Any:
    """A Llama (``model.layers``, untied ``lm_head``) inside a LoraModel: its full names
    repeat ``model`` (``base_model.model.model.layers.0``)."""
    cfg = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, vocab_size=100, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    lora = peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(transformers.LlamaForCausalLM(cfg), lora)
