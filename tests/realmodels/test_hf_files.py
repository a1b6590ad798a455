"""Hugging Face files as MODEL: save_pretrained folders and bare .safetensors files.

Tiny BERT / GPT-2 / Llama models (hidden size 32, 2 layers) are saved with
``save_pretrained`` (one file, and sharded with a tiny ``max_shard_size``) and with
plain ``torch.save`` as ``pytorch_model.bin``; each is shown, planned and applied
through the CLI and the API. Outputs must load with plain transformers / safetensors
exactly as the inputs did (same logits, tied weights still tied, same file layout),
and the freeze must come back with ``restore_freeze``. Hostile folders and files are
one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import freezedsl
from freezedsl.cli import main
from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.loading import load_model

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

CNN = "freezedsl.testing:small_cnn"


def _bert() -> nn.Module:
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=37, vocab_size=100, num_labels=3)
    return transformers.BertForSequenceClassification(cfg)


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _llama() -> nn.Module:
    cfg = transformers.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                   num_key_value_heads=1, intermediate_size=37, vocab_size=100)
    return transformers.LlamaForCausalLM(cfg)


BUILDERS: dict[str, Callable[[], nn.Module]] = {"bert": _bert, "gpt2": _gpt2, "llama": _llama}
RULES = {"bert": "freeze bert.embeddings\n", "gpt2": "freeze transformer.h[0]\n", "llama": "freeze model.layers[0]\n"}


def _save(model: nn.Module, folder: Path, **kwargs: object) -> None:
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(folder, **kwargs)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Path]]:
    """name -> (reference model in eval mode, its folder); 'NAME-sharded' too."""
    root = tmp_path_factory.mktemp("hf")
    out: dict[str, tuple[nn.Module, Path]] = {}
    for name, build in BUILDERS.items():
        torch.manual_seed(0)
        model = build().eval()
        _save(model, root / name)
        _save(model, root / f"{name}-sharded", max_shard_size="20KB")
        out[name] = (model, root / name)
        out[f"{name}-sharded"] = (model, root / f"{name}-sharded")
    return out


def _logits(model: nn.Module) -> torch.Tensor:
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def _invoke(*args: str) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.frz"
    path.write_text(text)
    return path


def _one_line_error(result: object) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)  # type: ignore[attr-defined]
    err = result.stderr.strip()  # type: ignore[attr-defined]
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama", "gpt2-sharded", "llama-sharded"])
def test_folder_loads_the_saved_weights(saved: dict[str, tuple[nn.Module, Path]], name: str) -> None:
    reference, folder = saved[name]
    loaded = load_model(str(folder))
    assert loaded.kind == "hf_folder" and not loaded.on_meta
    assert type(loaded.module) is type(reference)
    assert torch.equal(_logits(loaded.module), _logits(reference))
    if name.startswith("gpt2"):  # tied: one tensor under two names
        assert loaded.module.lm_head.weight is loaded.module.transformer.wte.weight


def test_meta_load_checks_the_header_only(saved: dict[str, tuple[nn.Module, Path]]) -> None:
    reference, folder = saved["llama-sharded"]
    loaded = load_model(str(folder), meta=True)
    assert loaded.on_meta and all(p.is_meta for p in loaded.module.parameters())
    assert [n for n, _ in loaded.module.named_parameters()] == [n for n, _ in reference.named_parameters()]


def test_bf16_weights_stay_bf16(tmp_path: Path) -> None:
    model = _llama().to(torch.bfloat16)
    _save(model, tmp_path / "m")
    loaded = load_model(str(tmp_path / "m"))
    assert {p.dtype for p in loaded.module.parameters()} == {torch.bfloat16}
    assert _invoke("apply", _rules(tmp_path, RULES["llama"]), tmp_path / "m", "-o", tmp_path / "o").exit_code == 0
    written = safetensors_torch.load_file(tmp_path / "o" / "model.safetensors")
    assert {t.dtype for t in written.values()} == {torch.bfloat16}


# ------------------------------------------------------------------ the CLI and round trips


@pytest.mark.parametrize("name", ["bert", "gpt2-sharded", "llama"])
def test_cli_show_plan_apply_round_trip(
    saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path, name: str
) -> None:
    reference, folder = saved[name]
    model_name = name.split("-")[0]
    rules = _rules(tmp_path, RULES[model_name])
    shown = _invoke("show", folder, "--depth", "1")
    assert shown.exit_code == 0 and type(reference).__name__ in shown.output
    planned = _invoke("plan", rules, folder)
    assert planned.exit_code == 0, planned.output
    out = tmp_path / "out"
    applied = _invoke("apply", rules, folder, "-o", out)
    assert applied.exit_code == 0, applied.output
    assert f"wrote {out}" in applied.output
    # the same files (weights, index, config, generation config), plus the manifest
    assert sorted(os.listdir(out)) == sorted([*os.listdir(folder), "freezedsl_manifest.json"])
    assert (out / "config.json").read_bytes() == (folder / "config.json").read_bytes()
    # plain transformers loads it exactly as it loaded the input
    again = type(reference).from_pretrained(out)
    assert torch.equal(_logits(again), _logits(reference))
    if model_name == "gpt2":
        assert again.lm_head.weight is again.transformer.wte.weight
    # the freeze comes back: restore_freeze on the plain model, or loading with freezedsl
    expected = set(freezedsl.plan(load_model(str(folder), meta=True).module, RULES[model_name]).frozen)
    assert expected
    freezedsl.restore_freeze(again, out)
    back = load_model(str(out)).module
    for model in (again, back):
        assert {n for n, p in model.named_parameters() if not p.requires_grad} == expected


def test_sharded_output_keeps_the_shards(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    _, folder = saved["gpt2-sharded"]
    out = tmp_path / "out"
    assert _invoke("apply", _rules(tmp_path, RULES["gpt2"]), folder, "-o", out, "-q").exit_code == 0
    index_in = json.loads((folder / "model.safetensors.index.json").read_text())
    index_out = json.loads((out / "model.safetensors.index.json").read_text())
    assert index_out["weight_map"] == index_in["weight_map"]
    for shard in set(index_in["weight_map"].values()):
        a, b = safetensors_torch.load_file(folder / shard), safetensors_torch.load_file(out / shard)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_rewriting_a_previous_output_replaces_it(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    _, folder = saved["bert"]
    out = tmp_path / "out"
    rules = _rules(tmp_path, RULES["bert"])
    assert _invoke("apply", rules, folder, "-o", out, "-q").exit_code == 0
    rules.write_text("freeze all\n")
    assert _invoke("apply", rules, folder, "-o", out, "-q").exit_code == 0
    assert not any(p.requires_grad for p in load_model(str(out)).module.parameters())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.frz"]  # no temporary folder left


def test_pytorch_model_bin_folder_is_written_as_safetensors(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    reference, folder = saved["gpt2"]
    binned = tmp_path / "bin"
    binned.mkdir()
    (binned / "config.json").write_bytes((folder / "config.json").read_bytes())
    torch.save(reference.state_dict(), binned / "pytorch_model.bin")
    loaded = load_model(str(binned))
    assert loaded.module.lm_head.weight is loaded.module.transformer.wte.weight
    assert torch.equal(_logits(loaded.module), _logits(reference))
    out = tmp_path / "out"
    assert _invoke("apply", _rules(tmp_path, RULES["gpt2"]), binned, "-o", out, "-q").exit_code == 0
    assert sorted(os.listdir(out)) == ["config.json", "freezedsl_manifest.json", "model.safetensors"]
    again = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(_logits(again), _logits(reference))


# ------------------------------------------------------------------ bare .safetensors files


def test_bare_safetensors_with_model_config(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    reference, folder = saved["gpt2"]
    weights = folder / "model.safetensors"
    config = folder / "config.json"
    for extra in ([], ["--arch", "transformers:GPT2LMHeadModel"]):
        loaded = load_model(str(weights), config=str(config), arch=extra[1] if extra else None)
        assert loaded.kind == "safetensors"
        assert torch.equal(_logits(loaded.module), _logits(reference))
    out = tmp_path / "out.safetensors"
    result = _invoke("apply", _rules(tmp_path, RULES["gpt2"]), weights, "--model-config", config, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out} and {out}.freeze.json" in result.output
    a, b = safetensors_torch.load_file(weights), safetensors_torch.load_file(out)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    model = transformers.GPT2LMHeadModel.from_pretrained(folder)
    freezedsl.restore_freeze(model, out)
    assert not any(p.requires_grad for p in model.transformer.h[0].parameters())
    back = load_model(str(out), config=str(config)).module  # the sidecar is reapplied
    assert not any(p.requires_grad for p in back.transformer.h[0].parameters())


def test_bare_safetensors_with_an_architecture_string(tmp_path: Path) -> None:
    from freezedsl.testing import small_cnn

    torch.manual_seed(0)
    cnn = small_cnn()
    safetensors_torch.save_file(cnn.state_dict(), tmp_path / "cnn.safetensors")
    loaded = load_model(str(tmp_path / "cnn.safetensors"), arch=CNN)
    assert all(torch.equal(a, b) for a, b in zip(loaded.module.state_dict().values(), cnn.state_dict().values()))
    err = _one_line_error(_invoke("show", tmp_path / "cnn.safetensors"))
    assert "holds a safetensors state dict (" in err and "--model-config" in err


def test_arch_module_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--arch mymod:build` finds mymod.py in the current directory, as `python -c` would,
    also through the console script (whose sys.path does not hold the directory)."""
    from freezedsl.testing import small_cnn

    safetensors_torch.save_file(small_cnn().state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "fz_local_arch_mod.py").write_text("from freezedsl.testing import small_cnn as build\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "fz_local_arch_mod", raising=False)
    loaded = load_model("w.safetensors", arch="fz_local_arch_mod:build")
    assert type(loaded.module).__name__ == "SmallCNN"
    assert sys.path[-1] == str(tmp_path)  # appended: installed packages win on a clash


# ------------------------------------------------------------------ hostile and broken input


def _copy_folder(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).write_bytes(item.read_bytes())
    return dst


def _edit_config(folder: Path, **changes: object) -> None:
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


def _lying_header(path: Path) -> None:
    """Rewrite the header so the first tensor's byte range runs past the file's end."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["data_offsets"][1] += 10**6
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "unknown-architecture": (
        lambda f: _edit_config(f, architectures=["TotallyMadeUpModel"]),
        "names the architecture 'TotallyMadeUpModel', which is not a model class of the installed transformers",
    ),
    "unknown-model-type": (
        lambda f: _edit_config(f, model_type="made_up_type"),
        "is not a usable Hugging Face config: ",
    ),
    "auto-map-remote-code": (
        lambda f: _edit_config(f, auto_map={"AutoModel": "modeling_evil.EvilModel"}),
        "asks for the model's own Python code (auto_map), which freezedsl never runs",
    ),
    "config-not-json": (
        lambda f: (f / "config.json").write_text("{not json"),
        "config.json is not valid JSON (line 1, column 2",
    ),
    "no-config": (lambda f: (f / "config.json").unlink(), "has no config.json, so its architecture is unknown"),
    "no-weights": (lambda f: (f / "model.safetensors").unlink(), "has no weights (model.safetensors.index.json, "),
    "truncated-safetensors": (
        lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]),
        "model.safetensors is not a valid safetensors file (Error while deserializing header",
    ),
    "header-lies": (
        lambda f: _lying_header(f / "model.safetensors"),
        "model.safetensors is not a valid safetensors file (",
    ),
    "wrong-shapes": (
        lambda f: _edit_config(f, intermediate_size=40),
        "does not fit transformers:LlamaForCausalLM from ",
    ),
    "symlink-out-of-folder": (
        lambda f: (f / "tokenizer.json").symlink_to(f.parent / "secret.txt"),
        "tokenizer.json is a symlink to ",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_folders(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path, case: str) -> None:
    (tmp_path / "secret.txt").write_text("ssh-rsa AAAA...\n")
    folder = _copy_folder(saved["llama"][1], tmp_path / "m")
    damage, expected = HOSTILE[case]
    damage(folder)
    out = tmp_path / "out"
    err = _one_line_error(_invoke("apply", _rules(tmp_path, "freeze model.layers[0]\n"), folder, "-o", out))
    assert expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "r.frz", "secret.txt"]  # nothing written


SHARD_DAMAGE: dict[str, tuple[Callable[[dict[str, object]], None], str]] = {
    "index-escapes-folder": (
        lambda idx: idx["weight_map"].update({"model.norm.weight": "../elsewhere.safetensors"}),  # type: ignore[union-attr]
        "lists the weight file '../elsewhere.safetensors'; expected a .safetensors file name in the same folder",
    ),
    "index-lists-a-missing-tensor": (
        lambda idx: idx["weight_map"].update({"model.extra.weight": idx["weight_map"]["model.norm.weight"]}),  # type: ignore[index]
        "lists 1 tensor(s) that its weight files do not hold (model.extra.weight)",
    ),
    "index-without-weight-map": (lambda idx: idx.pop("weight_map"), 'has no "weight_map" object'),
    "index-names-a-missing-shard": (
        lambda idx: idx["weight_map"].update({"model.norm.weight": "model-gone.safetensors"}),  # type: ignore[union-attr]
        "model-gone.safetensors does not exist; the model folder is incomplete",
    ),
}


@pytest.mark.parametrize("case", sorted(SHARD_DAMAGE))
def test_hostile_shard_index(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path, case: str) -> None:
    folder = _copy_folder(saved["llama-sharded"][1], tmp_path / "m")
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    damage, expected = SHARD_DAMAGE[case]
    damage(data)
    index.write_text(json.dumps(data))
    err = _one_line_error(_invoke("plan", _rules(tmp_path, "freeze model.layers[0]\n"), folder))
    assert expected in err, err


def test_output_folder_of_the_user_is_never_replaced(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    err = _one_line_error(_invoke("apply", _rules(tmp_path, "freeze all\n"), saved["bert"][1], "-o", mine))
    assert "the folder exists and was not written by freezedsl" in err
    assert os.listdir(mine) == ["notes.txt"]
    err = _one_line_error(_invoke("apply", tmp_path / "r.frz", saved["bert"][1], "-o", saved["bert"][1]))
    assert "is an input" in err or "is the input folder" in err


@pytest.mark.parametrize(
    ("args", "expected", "error"),
    [
        (["--model-config", "CONFIG"], "--model-config is for a bare .safetensors file", UsageError),
        (["--arch", "transformers:GPT2LMHeadModel"], None, None),
    ],
)
def test_option_combinations(
    saved: dict[str, tuple[nn.Module, Path]], args: list[str], expected: str | None, error: type[Exception] | None
) -> None:
    folder = saved["gpt2"][1]
    arch = args[1] if args[0] == "--arch" else None
    config = str(folder / "config.json") if args[0] == "--model-config" else None
    if error is None:
        assert load_model(str(folder), arch=arch, config=config).kind == "hf_folder"
        return
    with pytest.raises(error) as info:
        load_model(str(folder), arch=arch, config=config)
    assert expected is not None and expected in str(info.value)


def test_transformers_class_without_config(saved: dict[str, tuple[nn.Module, Path]]) -> None:
    with pytest.raises(UsageError, match="pass --model-config config.json too"):
        load_model(str(saved["gpt2"][1] / "model.safetensors"), arch="transformers:GPT2LMHeadModel")


def test_missing_package_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from freezedsl.testing import small_cnn

    safetensors_torch.save_file(small_cnn().state_dict(), tmp_path / "w.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ModelLoadError) as info:
        load_model(str(tmp_path / "w.safetensors"), arch=CNN)
    assert str(info.value).endswith("needs the Python package 'safetensors', which is not installed; "
                                    "install it with: pip install freezedsl[hf]")


def test_lint_model_config(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    """`lint --model X.safetensors --model-config config.json` checks rule files against it."""
    folder = saved["gpt2"][1]
    (tmp_path / "typo.frz").write_text("freeze transformer.hh[0]\n")
    result = _invoke("lint", tmp_path / "typo.frz", "--model", folder / "model.safetensors",
                     "--model-config", folder / "config.json")
    assert result.exit_code == 1, result.output
    assert "transformer.hh" in result.output


def test_a_failed_folder_write_leaves_nothing(
    saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freezedsl.loaders import stfiles

    calls = []

    def failing(*args: object) -> object:
        calls.append(args)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args)

    real = stfiles.writer
    monkeypatch.setattr(stfiles, "writer", failing)
    out = tmp_path / "out"
    err = _one_line_error(_invoke("apply", _rules(tmp_path, "freeze all\n"), saved["llama-sharded"][1], "-o", out))
    assert err.endswith("cannot write " + str(out) + ": No space left on device"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.frz"]


def test_remote_code_folder_loads_with_the_users_own_builder(
    saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way out of an auto_map refusal: --arch names the user's builder; the folder's
    config.json (and its code) is then never read."""
    folder = _copy_folder(saved["llama"][1], tmp_path / "m")
    _edit_config(folder, auto_map={"AutoModelForCausalLM": "modeling_evil.EvilModel"})
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    (tmp_path / "fz_my_llama.py").write_text(
        "import transformers\n"
        "def build():\n"
        "    cfg = transformers.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,\n"
        "                                   num_key_value_heads=1, intermediate_size=37, vocab_size=100)\n"
        "    return transformers.LlamaForCausalLM(cfg)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "fz_my_llama", raising=False)
    monkeypatch.setattr(sys, "path", [*sys.path])
    with pytest.raises(ModelLoadError, match=r"auto_map"):
        load_model("m")
    loaded = load_model("m", arch="fz_my_llama:build")
    assert torch.equal(_logits(loaded.module), _logits(saved["llama"][0]))
    out = tmp_path / "out"
    assert _invoke("apply", _rules(tmp_path, "freeze all\n"), "m", "--arch", "fz_my_llama:build", "-o", out).exit_code == 0
    assert (out / "modeling_evil.py").exists()  # copied as a file, never imported


def test_hub_cache_snapshot_links_are_followed(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    """huggingface_hub's cache: snapshots/REV/* are symlinks into ../../blobs/."""
    repo = tmp_path / "models--tiny--gpt2"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for item in saved["gpt2"][1].iterdir():
        blob = repo / "blobs" / f"blob-{item.name}"
        blob.write_bytes(item.read_bytes())
        (snapshot / item.name).symlink_to(os.path.relpath(blob, snapshot))
    loaded = load_model(str(snapshot))
    assert torch.equal(_logits(loaded.module), _logits(saved["gpt2"][0]))


def test_torch_save_state_dict_with_model_config(saved: dict[str, tuple[nn.Module, Path]], tmp_path: Path) -> None:
    """A transformers model's torch.save(state_dict) file takes --model-config too; it stays
    a torch.save state dict (plus OUT.freeze.json) when written."""
    reference, folder = saved["gpt2"]
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    loaded = load_model(str(tmp_path / "w.pt"), config=str(folder / "config.json"))
    assert loaded.kind == "state_dict" and loaded.arch == "transformers:GPT2LMHeadModel"
    assert torch.equal(_logits(loaded.module), _logits(reference))
    out = tmp_path / "o.pt"
    result = _invoke("apply", _rules(tmp_path, RULES["gpt2"]), tmp_path / "w.pt", "--model-config",
                     folder / "config.json", "-o", out)
    assert result.exit_code == 0, result.output
    assert list(torch.load(out, weights_only=True)) == list(reference.state_dict())
    assert (tmp_path / "o.pt.freeze.json").exists()


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds on a busy machine
def test_console_script_finds_an_arch_module_in_the_current_directory(tmp_path: Path) -> None:
    """The real console script (whose sys.path[0] is its bin folder, not the current
    directory) builds `--arch mymod:build` from ./mymod.py, and a bare .safetensors file
    with an architecture string never imports transformers."""
    import subprocess

    from freezedsl.testing import small_cnn

    safetensors_torch.save_file(small_cnn().state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "fz_cwd_arch.py").write_text(
        "import sys\nfrom freezedsl.testing import small_cnn\n"
        "def build():\n    assert 'transformers' not in sys.modules\n    return small_cnn()\n"
    )
    script = Path(sys.executable).parent / "freezedsl"
    proc = subprocess.run(
        [str(script), "show", "w.safetensors", "--arch", "fz_cwd_arch:build", "--depth", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SmallCNN")


def _vit() -> nn.Module:
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=37, image_size=32, patch_size=8)
    return transformers.ViTForImageClassification(cfg)


def _mixtral() -> nn.Module:
    cfg = transformers.MixtralConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     num_key_value_heads=1, intermediate_size=37, vocab_size=100,
                                     num_local_experts=4, num_experts_per_tok=2)
    return transformers.MixtralForCausalLM(cfg)


@pytest.mark.parametrize(("build", "sharded"), [(_vit, False), (_mixtral, True)], ids=["vit", "mixtral-sharded"])
def test_checkpoints_transformers_converts_on_load(tmp_path: Path, build: Callable[[], nn.Module], sharded: bool) -> None:
    """transformers 5 stores ViT's and Mixtral's weights under other names than the model's
    (renamed layers, per-expert tensors it fuses on load): those load through
    from_pretrained and are written back by save_pretrained, still strict about keys."""
    torch.manual_seed(0)
    reference = build().eval()
    _save(reference, tmp_path / "m", **({"max_shard_size": "20KB"} if sharded else {}))
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.layout.converted
    expected = reference.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in loaded.module.state_dict().items())
    assert not load_model(str(tmp_path / "m"), meta=True).on_meta  # meta would need the conversion too
    out = tmp_path / "out"
    assert _invoke("apply", _rules(tmp_path, "freeze all\n"), tmp_path / "m", "-o", out, "-q").exit_code == 0
    assert (out / "config.json").read_bytes() == (tmp_path / "m" / "config.json").read_bytes()
    again = type(reference).from_pretrained(out)
    assert all(torch.equal(expected[k], v) for k, v in again.state_dict().items())
    freezedsl.restore_freeze(again, out)
    assert not any(p.requires_grad for p in again.parameters())
    _edit_config(tmp_path / "m", intermediate_size=40)  # and a config that does not fit is still refused
    with pytest.raises(ModelLoadError, match="does not fit transformers:"):
        load_model(str(tmp_path / "m"))
