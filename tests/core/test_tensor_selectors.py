"""Selectors by tensor: ``ndim``, ``numel``, ``dtype``, ``initially frozen`` (issue 13.6).

They fit the ``type=`` / ``name~`` forms (a keyword glued to its operator), read only
shapes, dtypes and flags (so they work on the meta device), and select parameters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse
from freezedsl.syntax.printer import format_program

from .models import resnet18_meta


def _selector(text: str) -> ast.Selector:
    st = parse(f"freeze {text}").statements[0]
    assert isinstance(st, ast.Rule)
    return st.selector


@pytest.mark.parametrize(
    ("text", "atom", "printed"),
    [
        ("ndim<=1", ast.TensorCompare("ndim", "<=", 1), "ndim<=1"),
        ("ndim = 1", ast.TensorCompare("ndim", "==", 1), "ndim=1"),
        ("ndim==2", ast.TensorCompare("ndim", "==", 2), "ndim=2"),
        ("ndim!=4", ast.TensorCompare("ndim", "!=", 4), "ndim!=4"),
        ("numel >= 1000000", ast.TensorCompare("numel", ">=", 1000000), "numel>=1000000"),
        ("numel<10", ast.TensorCompare("numel", "<", 10), "numel<10"),
        ("numel>0", ast.TensorCompare("numel", ">", 0), "numel>0"),
        ("dtype=bfloat16", ast.DtypeIs("bfloat16"), "dtype=bfloat16"),
        ("dtype = torch.half", ast.DtypeIs("float16"), "dtype=float16"),
        ("dtype=long", ast.DtypeIs("int64"), "dtype=int64"),
        ("shape=[*, 768]", ast.ShapeIs((None, 768)), "shape=[*, 768]"),
        ("shape = [ 3,4 ]", ast.ShapeIs((3, 4)), "shape=[3, 4]"),
        ("shape=[]", ast.ShapeIs(()), "shape=[]"),
        ("initially frozen", ast.Initially("frozen"), "initially frozen"),
        ("initially   trainable", ast.Initially("trainable"), "initially trainable"),
    ],
)
def test_tensor_atoms_parse_and_print(text: str, atom: ast.Selector, printed: str) -> None:
    assert _selector(text) == atom
    assert format_program(parse(f"freeze {text}")) == f"freeze {printed}\n"
    assert parse(format_program(parse(f"freeze {text}"))) == parse(f"freeze {text}")


@pytest.mark.parametrize(
    "text",
    ["ndim", "ndim.weight", "numel", "dtype", "dtype.x", "shape", "shape.weight", "shape[0]", "initially", "initially.frozen", "initially_frozen",
     "x.ndim", "blocks.initially"],
)
def test_the_words_stay_paths_where_no_operator_follows(text: str) -> None:
    assert isinstance(_selector(text), ast.Path)


def test_tensor_atoms_combine_with_other_selectors() -> None:
    sel = _selector("all except ndim<=1, initially frozen")
    assert sel == ast.Except(ast.All(), ast.Union_((ast.TensorCompare("ndim", "<=", 1), ast.Initially("frozen"))))
    assert _selector("(blocks, head) except dtype=float16?") == ast.Except(
        ast.Union_((ast.Path((ast.Word("blocks"),)), ast.Path((ast.Word("head"),)))),
        ast.Maybe(ast.DtypeIs("float16")),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("freeze dtype=flot32", "unknown dtype 'flot32'; did you mean float32"),
        ("freeze dtype=Linear", "unknown dtype 'Linear'"),
        ("freeze ndim<=-1", "ndim compares with a count such as ndim<=1; -1 is not one"),
        ("freeze numel>+5", "numel compares with a count"),
        ("freeze ndim<=x", "expected a whole number"),
        ("freeze shape=[-1]", "a shape holds sizes such as 768 or *; -1 is not one"),
        ("freeze shape=[a]", "a size such as 768 or * (any size)"),
        ("freeze shape=[3", "']' to close the '['"),
        ("freeze ndim<=", "expected a whole number"),
    ],
)
def test_bad_tensor_atoms_are_located_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(freezedsl.RuleSyntaxError) as info:
        freezedsl.compile(text)
    assert message in str(info.value), str(info.value)
    assert info.value.exit_code == 2


def test_no_weight_decay_on_1d_parameters_like_timm() -> None:
    """``weight_decay 0 ndim<=1`` is timm's ``weight_decay_exclude_1d``: biases and norm
    weights, on the meta device."""
    model = resnet18_meta()
    groups = freezedsl.param_groups(model, "weight_decay 0 ndim<=1", lr=0.1, weight_decay=0.05)
    zero = {n for g in groups if g["weight_decay"] == 0 for n in g["param_names"]}
    assert zero == {n for n, p in model.named_parameters() if p.ndim <= 1}
    assert zero and all(g["weight_decay"] == 0.05 for g in groups if not set(g["param_names"]) & zero)


def test_shape_selects_by_tensor_shape() -> None:
    model = resnet18_meta()
    assert freezedsl.plan(model, "freeze shape=[*, 512]").frozen == ["fc.weight"]
    frozen = freezedsl.plan(model, "freeze shape=[512, *, 3, 3]").frozen
    assert frozen == [n for n, p in model.named_parameters() if p.shape[0] == 512 and p.shape[2:] == (3, 3)]
    with pytest.raises(freezedsl.SelectionError, match=r"shapes \[64\], \[64, 3, 7, 7\]"):
        freezedsl.plan(model, "freeze shape=[7]")


def test_numel_and_dtype_select_by_tensor() -> None:
    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(3, 2))
    model[1].to(torch.float64)
    plan = freezedsl.plan(model, "freeze numel>=1000; unfreeze dtype=float64")
    assert plan.frozen == ["0.weight"]
    assert freezedsl.plan(model, "freeze numel<3").frozen == ["1.bias"]
    with pytest.raises(freezedsl.SelectionError, match="dtypes float32, float64"):
        freezedsl.plan(model, "freeze dtype=bfloat16")
    assert freezedsl.plan(model, "freeze dtype=bfloat16?").frozen == []


class _WithFixedTable(nn.Module):
    """Like Whisper's encoder: the library freezes a fixed position table on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.embed_positions = nn.Embedding(8, 4)
        self.embed_positions.requires_grad_(False)
        self.layer = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)


def test_initially_frozen_survives_earlier_rules() -> None:
    model = _WithFixedTable()
    freezedsl.apply(model, "freeze all; unfreeze head")
    # later (another phase, another apply): "train everything the library did not freeze"
    plan = freezedsl.apply(model, "unfreeze all except initially frozen")
    assert plan.warnings == []
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["embed_positions.weight"]
    assert freezedsl.plan(model, "freeze initially trainable").trainable == []


def test_unfreeze_all_warns_when_it_trains_what_the_library_froze() -> None:
    model = _WithFixedTable()
    (warning,) = freezedsl.plan(model, "freeze all\nunfreeze all").warnings
    assert "line 2 (unfreeze all) makes 1 tensors trainable" in warning
    assert "embed_positions.weight" in warning and "unfreeze all except initially frozen" in warning
    # saying it by name, or excluding it, is explicit: no warning
    assert freezedsl.plan(model, "unfreeze all; unfreeze embed_positions").warnings == []
    assert freezedsl.plan(model, "unfreeze all except initially frozen").warnings == []
    assert freezedsl.plan(model, "unfreeze layer, head").warnings == []


def test_initially_frozen_in_a_schedule() -> None:
    model = _WithFixedTable()
    rules = freezedsl.compile("freeze all\nunfreeze head\nat epoch 2: unfreeze all except initially frozen")
    sched = freezedsl.Schedule(rules, model)
    sched.epoch_start(2)
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["embed_positions.weight"]


# ----------------------------------------------------------------- lr decay layers and clauses


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("lr decay 0.75 over {cls_token,pos_embed , patch_embed}, blocks[:]",
         "lr decay 0.75 over {cls_token, pos_embed, patch_embed}, blocks[:]"),
        ("lr decay 0.75 over blocks[:] min 0.010", "lr decay 0.75 over blocks[:] min 0.01"),
        ("lr decay 0.75 over blocks[:]  freeze  below 0.1", "lr decay 0.75 over blocks[:] freeze below 0.1"),
        ("weight_decay decay 0.9 over {\n  a, b\n}, c min 0 freeze below 1",
         "weight_decay decay 0.9 over {a, b}, c min 0 freeze below 1"),
        ("lr decay 0.5 over {a}? , b except b.bias", "lr decay 0.5 over {a}?, b except b.bias"),
    ],
)
def test_decay_layers_and_clauses_round_trip(text: str, printed: str) -> None:
    program = parse(text)
    assert format_program(program) == printed + "\n"
    assert parse(format_program(program)) == program


def test_decay_clauses_are_fields() -> None:
    (st,) = parse("lr decay 0.5 over {a, b}, c min 0.1 freeze below 0.2").statements
    assert isinstance(st, ast.HyperDecay)
    assert str(st.min_scale) == "0.1" and str(st.freeze_below) == "0.2"
    assert isinstance(st.selector, ast.Union_) and isinstance(st.selector.items[0], ast.Layer)


@pytest.mark.parametrize(
    "text",
    ["freeze {a}", "unfreeze all except {a}", "expect frozen {a}", "freeze stats {a}",
     "convert {a} to FrozenBatchNorm2d", "lr 2x {a}", "at epoch 1: freeze {a}"],
)
def test_braces_only_stand_in_lr_decay(text: str) -> None:
    with pytest.raises(freezedsl.RuleSyntaxError, match="groups modules into one layer"):
        freezedsl.compile(text)


def test_min_and_freeze_are_still_names_elsewhere() -> None:
    assert isinstance(_selector("min"), ast.Path)
    assert isinstance(_selector("below.freeze"), ast.Path)
    assert parse("lr decay 0.5 over min, below").statements[0].selector == ast.Union_(
        (ast.Path((ast.Word("min"),)), ast.Path((ast.Word("below"),)))
    )


def test_lint_reports_unfreeze_all_of_initially_frozen_as_fz117() -> None:
    from freezedsl.lint.rulefiles import check_source

    model = _WithFixedTable()
    found = [(d.code, d.line) for d in check_source("r.frz", "freeze all\nunfreeze all", model=model)]
    assert ("FZ117", 2) in found
    clean = check_source("r.frz", "freeze all\nunfreeze all except initially frozen", model=model)
    assert not [d for d in clean if d.code == "FZ117"]


def test_shape_sizes_may_continue_on_the_next_line_after_a_comma() -> None:
    """Found by the format property test: a size after a line break lexed as a name."""
    broken = parse("freeze shape=[*,\n    768]\nfreeze shape=[\n4, 5\n]").statements
    flat = parse("freeze shape=[*, 768]\nfreeze shape=[4, 5]").statements
    assert [s.selector for s in broken] == [s.selector for s in flat]
    assert freezedsl.format("freeze shape=[*,\n   768]") == "freeze shape=[*, 768]\n"
