"""``initially frozen`` on Hugging Face Whisper (tiny config, meta device): the library
freezes the encoder's sinusoidal ``embed_positions``; ``unfreeze all`` would train it."""

from __future__ import annotations

import pytest
import torch

import freezedsl

transformers = pytest.importorskip("transformers")


def _whisper() -> torch.nn.Module:
    cfg = transformers.WhisperConfig(
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100, num_mel_bins=8, max_source_positions=16,
        max_target_positions=16, pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0,
    )
    with torch.device("meta"):
        return transformers.WhisperForConditionalGeneration(cfg)


def test_whisper_keeps_its_fixed_positions_frozen() -> None:
    model = _whisper()
    library_frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert library_frozen == ["model.encoder.embed_positions.weight"]
    freezedsl.apply(model, "freeze all\nunfreeze model.decoder")
    plan = freezedsl.plan(model, "unfreeze all")
    assert any("model.encoder.embed_positions.weight" in w for w in plan.warnings)
    freezedsl.apply(model, "unfreeze all except initially frozen")
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == library_frozen
