"""Loading and saving models: safety (no unpickling without consent), errors, round trips."""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import torch
from torch import nn

from freezedsl import loading
from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.loading import (
    LoadedModel,
    atomic_write,
    build_arch,
    canonical_name,
    load_model,
    save_model,
)
from freezedsl.manifest import make_manifest
from freezedsl.testing import small_cnn

CNN = "freezedsl.testing:small_cnn"
GPT = "freezedsl.testing:gpt_decoder(vocab_size=50, hidden=16, layers=1, heads=2, max_len=16)"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _message(excinfo: pytest.ExceptionInfo[Any]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _flags(module: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in module.named_parameters()}


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(module)


def _jit_save(module: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_script(module), str(path))


# ------------------------------------------------------------------ malicious pickles


class Evil:
    """Unpickling this runs os.system: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


class Mark:
    """Harmless stand-in for Evil: creates a directory when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save(Evil(marker), path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path))
    text = _message(excinfo)
    assert f"{os.system.__module__}.system" in text
    assert "--trust-pickle" in text and "arbitrary code" in text
    assert not marker.exists()
    # --arch does not make a pickle any safer.
    with pytest.raises(ModelLoadError):
        load_model(str(path), arch=CNN)
    assert not marker.exists()


def test_pickled_module_refused_with_spec_message(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(small_cnn(), path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path))
    assert _message(excinfo) == (
        f"{path} is a pickled Python object (it references freezedsl.testing.SmallCNN); "
        "unpickling it can run arbitrary code. Pass --trust-pickle only if you trust where "
        "the file came from, or save a state dict (torch.save(model.state_dict(), ...)) and "
        "pass --arch."
    )


def test_trusted_pickle_runs_and_loads(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "ckpt.pt"
    model = small_cnn()
    torch.save({"model": model, "note": Mark(marker), "epoch": 3}, path)
    with pytest.raises(ModelLoadError):
        load_model(str(path))
    assert not marker.exists()
    loaded = load_model(str(path), trust_pickle=True)
    assert marker.is_dir()  # the payload ran: this is what the flag consents to
    assert loaded.kind == "pickle" and loaded.checkpoint_key == "model"
    assert loaded.extra["epoch"] == 3
    assert _same_weights(loaded.module, model)


def test_state_dicts_are_loaded_with_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sd.pt"
    torch.save(small_cnn().state_dict(), path)
    calls: list[dict[str, Any]] = []
    real = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_model(str(path), arch=CNN)
    assert calls and all(c.get("weights_only") is True for c in calls)


# ---------------------------------------------------------------------- atomic_write


def _writes(data: bytes) -> Callable[[IO[bytes]], None]:
    def writer(fh: IO[bytes]) -> None:
        fh.write(data)

    return writer


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_keeps_old_file_on_failure(
    tmp_path: Path, exc_type: type[BaseException]
) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old contents")

    def writer(fh: IO[bytes]) -> None:
        fh.write(b"half of the new")
        raise exc_type("stop")

    with pytest.raises(exc_type):
        atomic_write(target, writer)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_atomic_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, _writes(b"new"))
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.pt"
    atomic_write(fresh, _writes(b"x"))
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(os.listdir(tmp_path)) == ["fresh.pt", "model.pt"]


def test_atomic_write_writes_through_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.pt"
    real.write_bytes(b"old")
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    atomic_write(link, _writes(b"new"))
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_atomic_write_bad_destinations(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        atomic_write(tmp_path / "nope" / "m.pt", lambda fh: None)
    assert "does not exist" in _message(excinfo)
    with pytest.raises(ModelLoadError) as excinfo:
        atomic_write(tmp_path, lambda fh: None)
    assert "is a directory" in _message(excinfo)


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions")
def test_atomic_write_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ModelLoadError) as excinfo:
            atomic_write(ro / "m.pt", lambda fh: None)
        assert "permission denied" in _message(excinfo)
    finally:
        ro.chmod(0o755)


def test_atomic_write_permission_denied_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # the os module atomic_write uses
    with pytest.raises(ModelLoadError) as excinfo:
        atomic_write(tmp_path / "m.pt", lambda fh: None)
    assert "is not writable (permission denied)" in _message(excinfo)


# --------------------------------------------------------------------- architectures


def test_arch_spec_builds_on_meta_by_default() -> None:
    loaded = load_model(CNN)
    assert loaded.kind == "arch" and loaded.on_meta and loaded.arch == CNN
    assert all(p.is_meta for p in loaded.module.parameters())
    real = load_model(CNN, meta=False)
    assert not real.on_meta and not any(p.is_meta for p in real.module.parameters())


def test_arch_with_literal_kwargs() -> None:
    model = build_arch("freezedsl.testing:small_cnn(num_classes=3)", meta=True)
    assert isinstance(model, nn.Module)
    assert model.classifier.out_features == 3  # type: ignore[union-attr]
    positional = build_arch("freezedsl.testing:small_cnn(4)", meta=True)
    assert positional.classifier.out_features == 4  # type: ignore[union-attr]


def test_arch_arguments_are_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "evaluated"
    spec = f"freezedsl.testing:small_cnn(num_classes=__import__('os').mkdir('{marker}'))"
    with pytest.raises(ModelLoadError) as excinfo:
        build_arch(spec, meta=True)
    assert "literals" in _message(excinfo)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "nosuchpkg.models:net",
            (
                "cannot import module 'nosuchpkg.models' for architecture 'nosuchpkg.models:net': "
                "No module named 'nosuchpkg'; expected 'package.module:callable' "
                "(e.g. torchvision.models:resnet18)"
            ),
        ),
        ("freezedsl.testing:small_cn", "did you mean 'freezedsl.testing:small_cnn'?"),
        ("freezedsl.testing:__name__", "names a str, not a callable"),
        ("freezedsl.loading:canonical_name", "building architecture"),
        ("freezedsl.testing:small_cnn(num_classes=)", "cannot parse the arguments"),
        ("freezedsl.testing:small_cnn(num_classes=", "is not an architecture"),
        ("freezedsl.testing:small_cnn(bogus=1)", "TypeError"),
        ("os.path:basename('x')", "returned a str, not an nn.Module"),
    ],
)
def test_arch_errors(spec: str, expected: str) -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        build_arch(spec, meta=True)
    assert expected in _message(excinfo)


def test_arch_with_arch_is_usage_error() -> None:
    with pytest.raises(UsageError):
        load_model(CNN, arch=CNN)


# ------------------------------------------------------------------ state dict files


def test_state_dict_needs_arch(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    sd = small_cnn().state_dict()
    torch.save(sd, path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path))
    assert _message(excinfo) == (
        f"{path} holds a state dict ({len(sd)} tensors) but no architecture; pass --arch "
        "package.module:callable (e.g. torchvision.models:resnet18)"
    )


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model", "module"])
def test_checkpoint_keys_and_extras(tmp_path: Path, key: str) -> None:
    model = small_cnn()
    path = tmp_path / "ckpt.pt"
    torch.save({key: model.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}, path)
    loaded = load_model(str(path), arch=CNN)
    assert loaded.kind == "state_dict" and not loaded.on_meta
    assert loaded.checkpoint_key == key
    assert loaded.extra == {"epoch": 7, "optimizer": {"lr": 0.1}}
    assert _same_weights(loaded.module, model)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_stripped(tmp_path: Path, prefix: str) -> None:
    model = small_cnn()
    path = tmp_path / "ddp.pt"
    torch.save({prefix + k: v for k, v in model.state_dict().items()}, path)
    assert _same_weights(load_model(str(path), arch=CNN).module, model)


def test_canonical_name() -> None:
    assert canonical_name("module._orig_mod.encoder.w") == "encoder.w"
    assert canonical_name("encoder._orig_mod.layer.0.w") == "encoder.layer.0.w"
    assert canonical_name("classifier.weight") == "classifier.weight"


def test_tied_alias_missing_from_checkpoint_is_filled(tmp_path: Path) -> None:
    model = build_arch(GPT, meta=False)
    sd = model.state_dict()
    del sd["lm_head.weight"]  # as HF omits tied keys
    path = tmp_path / "gpt.pt"
    torch.save(sd, path)
    loaded = load_model(str(path), arch=GPT).module
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # type: ignore[union-attr]
    assert _same_weights(loaded, model)


def test_mismatch_lists_keys_and_shapes(tmp_path: Path) -> None:
    sd = small_cnn(num_classes=5).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["features.0.bn.weight"]
    path = tmp_path / "other.pt"
    torch.save(sd, path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    text = _message(excinfo)
    assert text.startswith(
        f"{path} does not fit --arch '{CNN}': 1 missing key (features.0.bn.weight)"
    )
    assert "1 unexpected key (extra.weight)" in text
    assert "classifier.weight: file 5x64 vs model 10x64" in text


def test_state_dict_with_meta_checks_fit_only(tmp_path: Path) -> None:
    path = tmp_path / "sd.pt"
    torch.save(small_cnn().state_dict(), path)
    loaded = load_model(str(path), arch=CNN, meta=True)
    assert loaded.on_meta and all(p.is_meta for p in loaded.module.parameters())
    with pytest.raises(UsageError) as excinfo:
        save_model(loaded, tmp_path / "out.pt")
    assert "meta device" in _message(excinfo)


# --------------------------------------------------------------------- broken files


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hi")
    return buf.getvalue()


def _state_dict_bytes(legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(small_cnn().state_dict(), buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty (0 bytes)"),
        (bytes(range(256)) * 4, "is not a PyTorch file (it holds unknown binary data)"),
        (b"hello, this is a text file\n", "is not a PyTorch file (it holds text)"),
        (_zip_bytes(), "is a zip archive but not a PyTorch file"),
        (_state_dict_bytes()[:3000], "is truncated or corrupt"),
        (_state_dict_bytes(legacy=True)[:3000], "is truncated or corrupt"),
        (pickle.dumps({"a": 1}, protocol=2), "not a torch.save file"),
        (len(b'{"a":{}}').to_bytes(8, "little") + b'{"a":{}}', "safetensors"),
    ],
    ids=["empty", "binary", "text", "zip", "truncated", "truncated-legacy", "pickle", "st"],
)
def test_unusable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    text = _message(excinfo)
    assert text.startswith(str(path)) and expected in text


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(tmp_path / "missing.pt"))
    assert "does not exist" in _message(excinfo)
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(tmp_path))
    text = _message(excinfo)
    assert "is a directory" in text and "pytorch_model.bin" in text


@pytest.mark.skipif(IS_ROOT, reason="root can read anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(small_cnn().state_dict(), path)
    path.chmod(0)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    assert "permission denied" in _message(excinfo)


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    real_open = open

    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    assert _message(excinfo) == f"{path} cannot be read: permission denied"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"epoch": 3, "lr": 0.1}, "holds a dict with keys 'epoch', 'lr' but no tensors"),
        ({"net": {"w": torch.zeros(1)}}, "keeps its weights under 'net'"),
        (torch.zeros(3), "holds a Tensor, not a state dict"),
        ([torch.zeros(3)], "holds a list, not a state dict"),
    ],
)
def test_files_without_a_state_dict(tmp_path: Path, obj: object, expected: str) -> None:
    path = tmp_path / "odd.pt"
    torch.save(obj, path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    assert expected in _message(excinfo)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_map_location_to_missing_device(tmp_path: Path) -> None:
    path = tmp_path / "sd.pt"
    torch.save(small_cnn().state_dict(), path)
    with pytest.raises(UsageError) as excinfo:
        load_model(str(path), arch=CNN, map_location="cuda")
    assert "needs CUDA" in _message(excinfo)
    with pytest.raises(UsageError) as excinfo:
        load_model(str(path), arch=CNN, map_location="gpu7")
    assert "is not a device" in _message(excinfo)


def test_arch_with_pickle_or_torchscript_is_usage_error(tmp_path: Path) -> None:
    pickled = tmp_path / "whole.pt"
    torch.save(small_cnn(), pickled)
    with pytest.raises(UsageError) as excinfo:
        load_model(str(pickled), arch=CNN, trust_pickle=True)
    assert "--arch is only used with a state dict" in _message(excinfo)
    scripted = tmp_path / "ts.pt"
    _jit_save(small_cnn(), scripted)
    with pytest.raises(UsageError) as excinfo:
        load_model(str(scripted), arch=CNN)
    assert "--arch is only used with a state dict" in _message(excinfo)


def test_trusted_pickle_of_a_non_model(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    torch.save(io.StringIO("x"), path)  # pickles fine, but is no model
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), trust_pickle=True)
    assert "not a model" in _message(excinfo)


def test_trusted_checkpoint_with_pickled_extras_is_a_state_dict(tmp_path: Path) -> None:
    import argparse

    model = small_cnn()
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    assert "argparse.Namespace" in _message(excinfo)
    loaded = load_model(str(path), arch=CNN, trust_pickle=True)
    assert loaded.kind == "state_dict" and _same_weights(loaded.module, model)
    assert loaded.extra["args"] == argparse.Namespace(lr=0.1)


# ---------------------------------------------------------------------- round trips


def _freeze_features(module: nn.Module) -> None:
    for name, param in module.named_parameters():
        if name.startswith(("features.0", "conv1", "layer1")):
            param.requires_grad_(False)


def _round_trip(loaded: LoadedModel, out: Path, **load_kwargs: Any) -> LoadedModel:
    _freeze_features(loaded.module)
    manifest = make_manifest(loaded.module, rules_text="freeze features.0")
    save_model(loaded, out, manifest=manifest)
    back = load_model(str(out), **load_kwargs)
    assert back.kind == loaded.kind if loaded.kind != "arch" else back.kind == "state_dict"
    assert _same_weights(back.module, loaded.module)
    assert _flags(back.module) == _flags(loaded.module)
    assert not all(_flags(back.module).values())
    assert not [n for n in os.listdir(out.parent) if n.endswith(".tmp")]
    return back


def test_round_trip_arch(tmp_path: Path) -> None:
    loaded = load_model(CNN, meta=False)
    back = _round_trip(loaded, tmp_path / "out.pt", arch=CNN)
    assert back.manifest is not None and back.manifest["rules_sha256"]


def test_round_trip_state_dict_keeps_extras(tmp_path: Path) -> None:
    src = tmp_path / "in.pt"
    torch.save({"model_state_dict": small_cnn().state_dict(), "epoch": 2}, src)
    loaded = load_model(str(src), arch=CNN)
    back = _round_trip(loaded, tmp_path / "out.pt", arch=CNN)
    assert back.extra == {"epoch": 2} and back.checkpoint_key == "model_state_dict"
    raw = torch.load(tmp_path / "out.pt", weights_only=True)
    assert set(raw) == {"model_state_dict", "epoch", "freezedsl_manifest"}


def test_save_without_manifest_records_current_flags(tmp_path: Path) -> None:
    loaded = load_model(CNN, meta=False)
    _freeze_features(loaded.module)
    save_model(loaded, tmp_path / "out.pt")
    back = load_model(str(tmp_path / "out.pt"), arch=CNN)
    assert _flags(back.module) == _flags(loaded.module)
    plain = load_model(str(tmp_path / "out.pt"), arch=CNN, apply_manifest=False)
    assert all(_flags(plain.module).values())


def test_round_trip_pickle(tmp_path: Path) -> None:
    src = tmp_path / "in.pt"
    torch.save(small_cnn(), src)
    loaded = load_model(str(src), trust_pickle=True)
    _round_trip(loaded, tmp_path / "out.pt", trust_pickle=True)


def test_round_trip_torchscript(tmp_path: Path) -> None:
    src = tmp_path / "in.pt"
    _jit_save(small_cnn(), src)
    loaded = load_model(str(src), trust_pickle=True)
    assert loaded.kind == "torchscript" and loaded.manifest is None
    back = _round_trip(loaded, tmp_path / "out.pt", trust_pickle=True)
    assert back.manifest is not None and back.manifest["frozen_count"] > 0


def test_round_trip_tied_gpt(tmp_path: Path) -> None:
    loaded = load_model(GPT, meta=False)
    module = loaded.module
    module.transformer.wte.weight.requires_grad_(False)  # type: ignore[union-attr]
    save_model(loaded, tmp_path / "gpt.pt", manifest=make_manifest(module))
    back = load_model(str(tmp_path / "gpt.pt"), arch=GPT).module
    assert back.lm_head.weight is back.transformer.wte.weight  # type: ignore[union-attr]
    assert not back.lm_head.weight.requires_grad  # type: ignore[union-attr]


def test_save_refuses_to_overwrite_input(tmp_path: Path) -> None:
    src = tmp_path / "in.pt"
    torch.save(small_cnn().state_dict(), src)
    loaded = load_model(str(src), arch=CNN)
    with pytest.raises(UsageError) as excinfo:
        save_model(loaded, src)
    assert "is the input file" in _message(excinfo)
    with pytest.raises(ModelLoadError) as excinfo2:
        save_model(loaded, tmp_path / "missing" / "out.pt")
    assert "does not exist" in _message(excinfo2)


@pytest.mark.parametrize("kind", ["arch", "state_dict", "pickle", "torchscript"])
def test_round_trip_resnet18(tmp_path: Path, kind: str) -> None:
    torchvision = pytest.importorskip("torchvision")
    arch = "torchvision.models:resnet18"
    src = tmp_path / "in.pt"
    model = torchvision.models.resnet18(weights=None)
    if kind == "arch":
        loaded = load_model(arch, meta=False)
        _round_trip(loaded, tmp_path / "out.pt", arch=arch)
    elif kind == "state_dict":
        torch.save(model.state_dict(), src)
        _round_trip(load_model(str(src), arch=arch), tmp_path / "out.pt", arch=arch)
    elif kind == "pickle":
        torch.save(model, src)
        with pytest.raises(ModelLoadError) as excinfo:
            load_model(str(src))
        assert "torchvision.models.resnet.ResNet" in _message(excinfo)
        loaded = load_model(str(src), trust_pickle=True)
        _round_trip(loaded, tmp_path / "out.pt", trust_pickle=True)
    else:
        _jit_save(model, src)
        _round_trip(load_model(str(src), trust_pickle=True), tmp_path / "out.pt", trust_pickle=True)


def test_module_exports() -> None:
    for name in loading.__all__:
        assert hasattr(loading, name)


def test_resaving_refreshes_a_loaded_manifest(tmp_path: Path) -> None:
    src = tmp_path / "in.pt"
    model = small_cnn()
    torch.save({"model": model, "freezedsl_manifest": make_manifest(model)}, src)
    loaded = load_model(str(src), trust_pickle=True)
    assert loaded.manifest is not None and loaded.manifest["frozen_count"] == 0
    loaded.module.classifier.requires_grad_(False)
    save_model(loaded, tmp_path / "out.pt")  # no manifest given: made from the flags
    back = load_model(str(tmp_path / "out.pt"), trust_pickle=True)
    assert back.manifest is not None and back.manifest["frozen_count"] == 2
    assert not back.module.classifier.weight.requires_grad  # type: ignore[union-attr]


def test_stale_manifest_in_checkpoint_is_reported(tmp_path: Path) -> None:
    manifest = make_manifest(small_cnn(num_classes=3))
    manifest["requires_grad"]["gone.weight"] = True
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": small_cnn().state_dict(), "freezedsl_manifest": manifest}, path)
    with pytest.raises(ModelLoadError) as excinfo:
        load_model(str(path), arch=CNN)
    assert "stored freeze manifest does not fit" in _message(excinfo)
    assert load_model(str(path), arch=CNN, apply_manifest=False).manifest == manifest


# ------------------------------------------------------------------ apply -o keeps the file's kind


@pytest.mark.parametrize("prefix", ["", "module."])
def test_state_dict_output_loads_with_plain_torch(tmp_path: Path, prefix: str) -> None:
    """`apply -o` on a bare state dict writes a bare state dict: same keys, same prefix,
    loadable by model.load_state_dict(torch.load(OUT)); the freeze sits beside it."""
    from click.testing import CliRunner

    import freezedsl
    from freezedsl.cli import main

    model = small_cnn()
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "in.pt")
    (tmp_path / "r.frz").write_text("freeze features\nfreeze stats features.**\n")
    result = CliRunner().invoke(
        main, ["apply", str(tmp_path / "r.frz"), str(tmp_path / "in.pt"), "--arch", CNN, "-o", str(tmp_path / "out.pt")]
    )
    assert result.exit_code == 0, result.stderr
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert list(out) == list(state)
    fresh = small_cnn()
    fresh.load_state_dict({k.removeprefix(prefix): v for k, v in out.items()})
    assert (tmp_path / "out.pt.freeze.json").exists()
    manifest = freezedsl.restore_freeze(fresh, tmp_path / "out.pt")
    assert manifest["stats_frozen"]
    assert not any(p.requires_grad for p in fresh.features.parameters())
    assert all(p.requires_grad for p in fresh.classifier.parameters())
    fresh.train()
    from freezedsl.application import stats_frozen

    assert all(stats_frozen(m) for m in fresh.features.modules() if isinstance(m, nn.BatchNorm2d))
    back = load_model(str(tmp_path / "out.pt"), arch=CNN)  # freezedsl reapplies the sidecar itself
    assert not any(p.requires_grad for p in back.module.features.parameters())


def test_architecture_output_warns_about_random_weights(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from freezedsl.cli import main

    (tmp_path / "r.frz").write_text("freeze features\n")
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "r.frz"), CNN, "-o", str(tmp_path / "o.pt"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert "freshly initialised (random) weights" in result.stderr


@pytest.mark.parametrize("prefix", ["", "module."])
def test_checkpoint_dict_output_keeps_its_keys_and_the_manifest(tmp_path: Path, prefix: str) -> None:
    import freezedsl

    state = {prefix + k: v for k, v in small_cnn().state_dict().items()}
    torch.save({"model": state, "epoch": 3}, tmp_path / "c.pt")
    loaded = load_model(str(tmp_path / "c.pt"), arch=CNN)
    loaded.module.features.requires_grad_(False)
    save_model(loaded, tmp_path / "o.pt")
    out = torch.load(tmp_path / "o.pt", weights_only=True)
    assert set(out) == {"model", "epoch", "freezedsl_manifest"}
    assert list(out["model"]) == list(state)
    fresh = small_cnn()
    fresh.load_state_dict({k.removeprefix(prefix): v for k, v in out["model"].items()})
    freezedsl.restore_freeze(fresh, tmp_path / "o.pt")
    assert not any(p.requires_grad for p in fresh.features.parameters())


# ------------------------------------------------------------------ builders: meta fallback, no downloads


def test_builder_that_fails_on_meta_falls_back_to_cpu_with_a_note() -> None:
    pytest.importorskip("torchvision")
    loaded = load_model("torchvision.models:regnet_x_400mf")
    assert not loaded.on_meta and loaded.notes and "cannot be built on the meta device" in loaded.notes[0]


def test_detection_builder_never_downloads_its_backbone() -> None:
    pytest.importorskip("torchvision")
    loaded = load_model("torchvision.models.detection:fasterrcnn_mobilenet_v3_large_fpn(weights=None)")
    assert any("weights_backbone=None" in n for n in loaded.notes)


def test_builder_that_would_download_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached: a download would start
    with pytest.raises(ModelLoadError) as excinfo:
        load_model("torchvision.models:resnet18(weights='DEFAULT')")
    text = _message(excinfo)
    assert "tried to download https://" in text and "weights=None" in text
    assert not list(tmp_path.rglob("*.pth"))


def test_device_option_is_checked() -> None:
    with pytest.raises(UsageError, match="is not a device"):
        load_model(CNN, map_location="nowhere")
