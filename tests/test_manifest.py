"""The freeze manifest: snapshot, all-or-nothing reapply, JSON persistence."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.manifest import (
    FORMAT,
    apply_manifest,
    load_manifest,
    make_manifest,
    save_manifest,
)
from freezedsl.testing import gpt_decoder, small_cnn


def _flags(module: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in module.named_parameters(remove_duplicate=False)}


def _message(excinfo: pytest.ExceptionInfo[Any]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def _tiny_gpt() -> nn.Module:
    return gpt_decoder(vocab_size=20, hidden=8, layers=1, heads=2, max_len=8)


def test_make_manifest_fields() -> None:
    model = small_cnn()
    model.features.requires_grad_(False)
    rules = "freeze features.**\n"
    m = make_manifest(model, rules_text=rules, rules_path="r.frz", extra={"run": 1})
    assert m["format"] == FORMAT
    assert m["rules_sha256"] == hashlib.sha256(rules.encode()).hexdigest()
    assert m["rules_path"] == "r.frz" and m["extra"] == {"run": 1}
    assert m["requires_grad"] == _flags(model)
    assert m["frozen_count"] == 9 and m["trainable_count"] == 2
    assert m["trainable_numel"] == 64 * 10 + 10
    assert isinstance(m["torch_version"], str) and type(m["torch_version"]) is str
    assert "T" in m["created"]
    json.dumps(m)  # plain data


def test_rules_hash_from_path(tmp_path: Path) -> None:
    rules = tmp_path / "r.frz"
    rules.write_text("freeze **\n", encoding="utf-8")
    m = make_manifest(small_cnn(), rules_path=str(rules))
    assert m["rules_sha256"] == hashlib.sha256(b"freeze **\n").hexdigest()
    assert make_manifest(small_cnn())["rules_sha256"] is None


def test_tied_aliases_are_listed_and_counted_once() -> None:
    model = _tiny_gpt()
    model.transformer.wte.weight.requires_grad_(False)  # type: ignore[union-attr]
    m = make_manifest(model)
    assert m["requires_grad"]["lm_head.weight"] is False
    assert m["requires_grad"]["transformer.wte.weight"] is False
    assert m["frozen_count"] == 1
    assert m["frozen_count"] + m["trainable_count"] == len(list(model.parameters()))


def test_apply_round_trip() -> None:
    source = small_cnn()
    source.features[0].requires_grad_(False)  # type: ignore[index]
    target = small_cnn()
    apply_manifest(target, make_manifest(source))
    assert _flags(target) == _flags(source)


def test_apply_is_all_or_nothing() -> None:
    source = small_cnn()
    source.requires_grad_(False)
    manifest = make_manifest(source)
    manifest["requires_grad"]["no.such.param"] = False
    target = small_cnn()
    with pytest.raises(ModelLoadError) as excinfo:
        apply_manifest(target, manifest)
    assert "does not have (no.such.param)" in _message(excinfo)
    assert all(_flags(target).values())  # nothing was changed


def test_strict_requires_every_parameter() -> None:
    manifest = make_manifest(small_cnn())
    del manifest["requires_grad"]["classifier.bias"]
    manifest["requires_grad"]["classifier.weight"] = False
    target = small_cnn()
    with pytest.raises(ModelLoadError) as excinfo:
        apply_manifest(target, manifest)
    assert "does not cover 1 model parameter(s) (classifier.bias)" in _message(excinfo)
    assert all(_flags(target).values())
    apply_manifest(target, manifest, strict=False)
    assert not target.classifier.weight.requires_grad  # type: ignore[union-attr]
    assert target.classifier.bias.requires_grad  # type: ignore[union-attr]


def test_tied_aliases_must_agree() -> None:
    manifest = make_manifest(_tiny_gpt())
    manifest["requires_grad"]["lm_head.weight"] = False
    with pytest.raises(ModelLoadError) as excinfo:
        apply_manifest(_tiny_gpt(), manifest)
    assert "tied parameters" in _message(excinfo)


def test_wrapped_names_match_plain_ones() -> None:
    source = small_cnn()
    source.classifier.requires_grad_(False)
    manifest = make_manifest(source)
    manifest["requires_grad"] = {
        f"module._orig_mod.{k}": v for k, v in manifest["requires_grad"].items()
    }
    target = small_cnn()
    apply_manifest(target, manifest)
    assert _flags(target) == _flags(source)
    wrapped = nn.Module()
    wrapped.module = small_cnn()  # like DistributedDataParallel
    apply_manifest(wrapped, make_manifest(source))
    assert not wrapped.module.classifier.weight.requires_grad  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"format": "freezedsl-manifest/2"}, "cannot read"),
        ({"format": "something"}, "is not a freezedsl manifest"),
        ({"requires_grad": {"classifier.weight": "no"}}, "malformed 'requires_grad'"),
        ({"requires_grad": []}, "malformed 'requires_grad'"),
    ],
)
def test_bad_manifests(change: dict[str, Any], expected: str) -> None:
    manifest = make_manifest(small_cnn()) | change
    with pytest.raises(ModelLoadError) as excinfo:
        apply_manifest(small_cnn(), manifest)
    assert expected in _message(excinfo)


def test_save_and_load(tmp_path: Path) -> None:
    model = small_cnn()
    model.features.requires_grad_(False)
    manifest = make_manifest(model, rules_text="freeze features.**")
    path = tmp_path / "freeze.json"
    save_manifest(manifest, path)
    assert load_manifest(path) == manifest
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert os.listdir(tmp_path) == ["freeze.json"]


def test_save_rejects_non_json(tmp_path: Path) -> None:
    manifest = make_manifest(small_cnn(), extra={"tensor": torch.zeros(1)})
    with pytest.raises(UsageError):
        save_manifest(manifest, tmp_path / "m.json")
    assert not os.listdir(tmp_path)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        load_manifest(tmp_path / "missing.json")
    assert "does not exist" in _message(excinfo)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(ModelLoadError) as excinfo:
        load_manifest(bad)
    assert "is not valid JSON (line 1" in _message(excinfo)
    other = tmp_path / "other.json"
    other.write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(ModelLoadError) as excinfo:
        load_manifest(other)
    assert "is not a freezedsl manifest" in _message(excinfo)
