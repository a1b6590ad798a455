"""Table-driven examples of every syntax form, on a fixed small model, a tiny GPT with a
tied LM head, a TorchScript module and torchvision ResNet-18 / MobileNetV3 on the meta
device. Expected sets are written out by hand (as name prefixes), not computed by the
planner or the reference interpreter."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl import ExpectationError, RuleSyntaxError, SelectionError
from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse
from freezedsl.syntax.printer import format_program

from .models import (
    ScriptableNet,
    SmallNet,
    TinyGPT,
    flags,
    frozen_names,
    snapshot,
    trainable_names,
)

ALL = ("",)


def under(names: list[str], prefixes: tuple[str, ...]) -> set[str]:
    """Names equal to a prefix or below it ("" = every name)."""
    return {n for n in names for p in prefixes if p == "" or n == p or n.startswith(p + ".")}


def names_of(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_parameters(remove_duplicate=False)]


# --------------------------------------------------------------------- SmallNet selectors

BN = tuple(f"layer{i}.{j}.bn{k}" for i, n in ((1, 2), (2, 3)) for j in range(n) for k in (1, 2)) + (
    "stem.1",
)
CONV = tuple(
    f"layer{i}.{j}.conv{k}" for i, n in ((1, 2), (2, 3)) for j in range(n) for k in (1, 2)
) + ("stem.0",)
BIASES = (
    "bias",
    "stem.0.bias",
    "heads.cls.bias",
    "heads.my-head.bias",
    "heads.all.bias",
    "fc.bias",
) + tuple(f"{b}.bias" for b in BN)

SMALL_CASES: list[tuple[str, tuple[str, ...]]] = [
    # paths
    ("all", ALL),
    ("fc", ("fc",)),
    ("fc.bias", ("fc.bias",)),
    ("bias", ("bias",)),
    ("layer1.0", ("layer1.0",)),
    ("layer1.0.bn1", ("layer1.0.bn1",)),
    ("stem.0", ("stem.0",)),
    ("`fc`", ("fc",)),
    ("fc.`bias`", ("fc.bias",)),
    ("heads.`my-head`", ("heads.my-head",)),
    ("heads.all", ("heads.all",)),
    ("heads.`all`", ("heads.all",)),
    ("heads.`all`.weight", ("heads.all.weight",)),
    # globs
    ("*", ALL),
    ("*.weight", ("fc.weight",)),
    ("layer*", ("layer1", "layer2")),
    ("*2", ("layer2",)),
    ("l*r1", ("layer1",)),
    ("*ias", ("bias",)),
    ("layer1.*.bn1", ("layer1.0.bn1", "layer1.1.bn1")),
    ("heads.*", ("heads",)),
    ("heads.*head", ("heads.my-head",)),
    ("*.*.conv*.weight", tuple(f"{c}.weight" for c in CONV[:-1])),
    # **
    ("**", ALL),
    ("**.bias", BIASES),
    ("**.bn2.weight", tuple(f"{b}.weight" for b in BN if b.endswith("bn2"))),
    ("layer1.**", ("layer1",)),
    ("layer1.**.bias", tuple(f"{b}.bias" for b in BN if b.startswith("layer1"))),
    ("**.0.conv1", ("layer1.0.conv1", "layer2.0.conv1")),
    ("**.**.fc", ("fc",)),
    # children[...] and PATH[...]
    ("children[0:2]", ("stem", "layer1")),
    ("children[-1]", ("fc",)),
    ("children[:]", ("stem", "layer1", "layer2", "heads", "fc")),
    ("children[::2]", ("stem", "layer2", "fc")),
    ("children[1:-1]", ("layer1", "layer2", "heads")),
    ("children[-2:]", ("heads", "fc")),
    ("children[::-1]", ("stem", "layer1", "layer2", "heads", "fc")),
    ("children [ 3 ]", ("heads",)),
    ("layer2[1:]", ("layer2.1", "layer2.2")),
    ("layer2[::-1]", ("layer2",)),
    ("layer2[0:3:2]", ("layer2.0", "layer2.2")),
    ("layer2[+1]", ("layer2.1",)),
    ("layer2[-1].conv1", ("layer2.2.conv1",)),
    ("layer2[-3]", ("layer2.0",)),
    ("layer*[2]", ("layer2.2",)),  # out of range for layer1: skipped there
    ("layer*[-1].bn1.bias", ("layer1.1.bn1.bias", "layer2.2.bn1.bias")),
    ("layer*[1:][0].*", ()),  # ConvBlock children have no children: but see below
    ("stem[1]", ("stem.1",)),
    ("heads[1]", ("heads.my-head",)),
    ("heads[-1]", ("heads.all",)),
    ("children[1][0].bn1", ("layer1.0.bn1",)),
    ("children[1:3][-1]", ("layer1.1", "layer2.2")),
    # regexes
    ('name~"layer[12]"', ("layer1", "layer2")),
    (r'name~"^layer1\.0\."', ("layer1.0",)),
    ('name~"bias$"', BIASES),
    (r'name~"\.bn\d\.weight$"', tuple(f"{b}.weight" for b in BN if "bn" in b)),
    ('name~"my-head"', ("heads.my-head",)),
    ('name ~ "^fc"', ("fc",)),
    ('name~"^(scale|bias)$"', ("scale", "bias")),
    # types
    ("type=BatchNorm2d", BN),
    ("type=batchnorm.BatchNorm2d", BN),
    ("type=torch.nn.modules.batchnorm.BatchNorm2d", BN),
    ("type=_BatchNorm", BN),
    ("type=_NormBase", BN),
    ("type=ConvBlock", ("layer1", "layer2")),
    ("type=models.ConvBlock", ("layer1", "layer2")),
    ("type=Module", ALL),
    ("type=SmallNet", ALL),
    ("type=Linear", ("heads", "fc")),
    ("type = Linear", ("heads", "fc")),
    ('type~"Norm"', BN),
    ('type~"^Conv"', ("stem.0", "layer1", "layer2")),
    ('type~"^Conv2d$"', CONV),
    ('type~"Dict"', ("heads",)),
    # lists, except, groups
    ("fc, fc.bias, stem", ("fc", "stem")),
    ("all except fc, stem", ("scale", "bias", "layer1", "layer2", "heads")),
    ("layer1, layer2 except layer1.0", ("layer1.1", "layer2")),
    ("all except layer1 except layer1.0?", ("scale", "bias", "stem", "layer2", "heads", "fc")),
    (
        "all except (layer1 except layer1.0)",
        ("scale", "bias", "stem", "layer1.0", "layer2", "heads", "fc"),
    ),
    ("(layer1 except layer1.0), fc", ("layer1.1", "fc")),
    ("(fc, stem)", ("fc", "stem")),
    ("type=BatchNorm2d except **.bias", tuple(f"{b}.weight" for b in BN)),
    ("layer2 except\n    layer2[0]", ("layer2.1", "layer2.2")),
    ("fc,\n    stem", ("fc", "stem")),
    # optional atoms
    ("fc, nothere?", ("fc",)),
    ("(nothere, fc)?", ("fc",)),
    ("fc, layer9.x?", ("fc",)),
    ("type=GRU?, fc", ("fc",)),
    ('name~"zzz"?, fc', ("fc",)),
    ("children[9]?, fc", ("fc",)),
    ("layer1[5:]?, fc", ("fc",)),
    ("all except nothere?", ALL),
    ("nothere?", ()),
    ("(nothere, alsonot)?", ()),
    ("stem.2?", ()),
    ("stem.2?, fc", ("fc",)),  # ReLU: matches only a module without parameters; optional
    # comments
    ("fc  # the head", ("fc",)),
]
# `layer*[1:][0].*`: layer1[1:] = layer1.1, layer2[1:] = layer2.1, layer2.2; [0] of a
# ConvBlock is its conv1; `.*` of a conv is its parameters.
SMALL_CASES[[c[0] for c in SMALL_CASES].index("layer*[1:][0].*")] = (
    "layer*[1:][0].*",
    ("layer1.1.conv1", "layer2.1.conv1", "layer2.2.conv1"),
)


@pytest.mark.parametrize(("selector", "prefixes"), SMALL_CASES, ids=[c[0] for c in SMALL_CASES])
def test_selector_on_small_net(selector: str, prefixes: tuple[str, ...]) -> None:
    model = SmallNet()
    want = under(names_of(model), prefixes)
    plan = freezedsl.apply(model, f"freeze {selector}")
    assert frozen_names(model) == want
    assert set(plan.frozen) == want
    for p in plan.params:
        assert p.decided_by == (1 if p.name in want else None)
    # and the opposite: unfreeze on a frozen model
    model = SmallNet()
    for p in model.parameters():
        p.requires_grad_(False)
    freezedsl.apply(model, f"unfreeze {selector}")
    assert trainable_names(model) == want
    # the canonical form means the same
    canonical = freezedsl.format(f"freeze {selector}")
    model = SmallNet()
    freezedsl.apply(model, canonical)
    assert frozen_names(model) == want, canonical


# --------------------------------------------------------------------- programs on SmallNet

PROGRAM_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("freeze all; unfreeze fc", ("scale", "bias", "stem", "layer1", "layer2", "heads")),
    (
        "freeze all\nunfreeze layer1\nfreeze layer1.0.bn1",
        ("scale", "bias", "stem", "layer1.0.bn1", "layer2", "heads", "fc"),
    ),
    ("freeze fc; unfreeze all", ()),
    ("unfreeze fc; freeze fc", ("fc",)),
    ("freeze fc;;; freeze stem;", ("fc", "stem")),
    (
        "\n\n# only a comment\nfreeze fc # trailing\n\n# own line\nunfreeze fc.bias\n",
        ("fc.weight",),
    ),
    ("freeze layer1\r\nunfreeze layer1[0]\r\n", ("layer1.1",)),
    (
        "freeze children[0:2]; unfreeze **.bias",
        tuple(f"{b}.weight" for b in BN[:4] + BN[-1:]) + CONV[:4] + ("stem.0.weight",),
    ),
    ("expect frozen fc; freeze fc", ("fc",)),  # expectations are checked after every rule
    (
        "freeze fc; expect frozen fc.weight; unfreeze fc.bias; expect trainable fc.bias",
        ("fc.weight",),
    ),
    ("", ()),
    ("# nothing but comments", ()),
]


@pytest.mark.parametrize(("text", "prefixes"), PROGRAM_CASES, ids=range(len(PROGRAM_CASES)))
def test_program_on_small_net(text: str, prefixes: tuple[str, ...]) -> None:
    model = SmallNet()
    freezedsl.apply(model, text)
    assert frozen_names(model) == under(names_of(model), prefixes)


def test_untouched_parameters_keep_their_state() -> None:
    model = SmallNet()
    model.fc.bias.requires_grad_(False)
    model.stem[0].weight.requires_grad_(False)
    plan = freezedsl.apply(model, "freeze layer1; unfreeze stem")
    assert frozen_names(model) == under(names_of(model), ("layer1", "fc.bias"))
    kept = {p.name for p in plan.params if p.decided_by is None}
    assert kept == under(names_of(model), ("scale", "bias", "layer2", "heads", "fc"))
    assert {p.name for p in plan.changed} == under(names_of(model), ("layer1", "stem.0.weight"))


# --------------------------------------------------------------------- expectations


def hundred() -> nn.Module:
    """100 parameter elements: 0 has 90, 1 has 10."""
    return nn.Sequential(nn.Linear(9, 9), nn.Linear(9, 1))


SHARE_CASES: list[tuple[str, bool]] = [
    ("expect trainable 10%", True),
    ("expect trainable == 10%", True),
    ("expect trainable 10.000%", True),
    ("expect trainable 9.99%", False),
    ("expect trainable < 10%", False),
    ("expect trainable <= 10%", True),
    ("expect trainable > 10%", False),
    ("expect trainable >= 10%", True),
    ("expect trainable > 9.9%", True),
    ("expect trainable 10%..10%", True),
    ("expect trainable 1%..10%", True),
    ("expect trainable 10%..100%", True),
    ("expect trainable 0%..9.99%", False),
    ("expect trainable 10.01%..20%", False),
    ("expect frozen 90%", True),
    ("expect frozen 1%..89.9%", False),
    ("expect frozen >= 90%", True),
    ("expect frozen < 90%", False),
    ("expect frozen 0", True),  # a path: module 0 is frozen
    ("expect trainable 1", True),
    ("expect frozen 1", False),
    ("expect trainable 0.bias?", False),
    ("expect frozen 0 except 0.bias", True),
    ("expect trainable 0%", False),
    ("expect frozen 100%", False),
]


@pytest.mark.parametrize(("expect", "ok"), SHARE_CASES, ids=[c[0] for c in SHARE_CASES])
def test_expectations(expect: str, ok: bool) -> None:
    model = hundred()
    before = flags(model)
    text = f"freeze 0\n{expect}\n"
    plan = freezedsl.plan(model, text)
    assert plan.ok is ok
    assert [e.ok for e in plan.expectations] == [ok]
    assert plan.trainable_percent == pytest.approx(10.0)
    assert flags(model) == before
    if ok:
        freezedsl.apply(model, text)
        assert frozen_names(model) == {"0.weight", "0.bias"}
    else:
        with pytest.raises(ExpectationError) as info:
            freezedsl.apply(model, text)
        err = info.value
        assert err.exit_code == 1
        assert (err.line, err.col) == (2, 1)
        assert "nothing was applied" in err.message
        assert flags(model) == before


def test_every_failed_expectation_is_reported() -> None:
    model = hundred()
    text = "expect frozen 0\nfreeze 1\nexpect trainable 1\nexpect trainable 50%\n"
    with pytest.raises(ExpectationError) as info:
        freezedsl.apply(model, text)
    failures = getattr(info.value, "failures", [])
    assert [f.line for f in failures] == [1, 3, 4]
    assert info.value.line == 1


def test_share_of_a_model_without_parameters() -> None:
    plan = freezedsl.plan(nn.ReLU(), "expect trainable 0%")
    assert plan.ok
    assert plan.params == []
    assert plan.trainable_percent == 0.0


# --------------------------------------------------------------------- tied parameters


def test_tied_lm_head_is_one_parameter(gpt: TinyGPT) -> None:
    plan = freezedsl.plan(gpt, "freeze all")
    tied = [p for p in plan.params if len(p.aliases) > 1]
    assert [(p.name, p.aliases) for p in tied] == [
        ("transformer.wte.weight", ("transformer.wte.weight", "lm_head.weight"))
    ]
    assert len(plan.params) == len(list(gpt.parameters()))
    assert plan.total_elements == sum(p.numel() for p in gpt.parameters())
    assert plan.warnings == []
    assert plan.state_of("lm_head.weight") is False


@pytest.mark.parametrize(
    ("text", "trainable", "warns"),
    [
        ("freeze all; unfreeze lm_head", True, True),
        ("freeze lm_head", False, True),  # transformer.wte.weight: no statement; lm_head: frozen
        ("freeze transformer.wte, lm_head", False, False),
        ("freeze all; unfreeze transformer.wte", True, True),
        ("unfreeze all; freeze transformer.wte", False, True),
        ('freeze name~"lm_head"', False, True),
        ('freeze name~"wte|lm_head"', False, False),
        # `except` removes the whole tensor when it names any of its names (issue 13.4)
        ("freeze all except lm_head", True, False),
        ("freeze all except transformer.wte", True, False),
        ('freeze all except name~"^lm_head"', True, False),
        ("unfreeze all; freeze all except lm_head; unfreeze transformer.h", True, False),
        ("freeze all; unfreeze transformer.wte, lm_head", True, False),
        ("freeze all; freeze lm_head", False, False),  # decided by two statements, the same way
        ("unfreeze lm_head", True, False),  # wte undecided but already trainable: all agree
        ("freeze all; unfreeze transformer.h[-1], lm_head; unfreeze transformer.wte", True, False),
    ],
)
def test_tied_follows_the_latest_statement_matching_any_name(
    gpt: TinyGPT, text: str, trainable: bool, warns: bool
) -> None:
    plan = freezedsl.apply(gpt, text)
    assert gpt.lm_head.weight is gpt.transformer.wte.weight
    assert gpt.lm_head.weight.requires_grad is trainable
    warnings = [w for w in plan.warnings if "lm_head.weight" in w and "transformer.wte.weight" in w]
    assert bool(warnings) is warns, plan.warnings


def test_tied_expectations(gpt: TinyGPT) -> None:
    text = "freeze transformer.wte\nexpect trainable lm_head\n"
    plan = freezedsl.plan(gpt, text)
    assert not plan.ok
    assert "lm_head" in plan.expectations[0].detail or "wte" in plan.expectations[0].detail
    with pytest.raises(ExpectationError):
        freezedsl.apply(gpt, text)
    assert gpt.lm_head.weight.requires_grad


def test_shared_submodule_is_selected_under_both_paths() -> None:
    shared = nn.Linear(2, 2)
    model = nn.ModuleDict(
        {
            "enc": nn.Sequential(shared, nn.Linear(2, 3)),
            "dec": nn.Sequential(nn.Linear(3, 2), shared),
        }
    )
    plan = freezedsl.apply(model, "freeze dec[-1]")
    assert not shared.weight.requires_grad
    assert [p.aliases for p in plan.params if len(p.aliases) > 1] == [
        ("enc.0.weight", "dec.1.weight"),
        ("enc.0.bias", "dec.1.bias"),
    ]
    assert any("enc.0.weight" in w for w in plan.warnings)
    plan = freezedsl.plan(model, "freeze type=Linear")
    assert len(plan.params) == 6


def test_index_counts_named_children_once() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential()
    model.add_module("a", shared)
    model.add_module("b", shared)
    model.add_module("c", nn.Linear(2, 3))
    assert [n for n, _ in model.named_children()] == ["a", "c"]
    freezedsl.apply(model, "freeze children[1]")
    assert frozen_names(model) == {"c.weight", "c.bias"}


# --------------------------------------------------------------------- quoting, keywords


def test_backticks_at_the_start_of_a_path() -> None:
    def make() -> nn.Module:
        return nn.ModuleDict(
            {
                "all": nn.Linear(2, 2),
                "x": nn.Linear(2, 2),
                "my-mod": nn.Linear(2, 1),
                "é": nn.Linear(1, 1),
            }
        )

    cases = {
        "freeze `all`": {"all.weight", "all.bias"},
        "freeze all": set(names_of(make())),
        "freeze `all`.weight": {"all.weight"},
        "freeze `my-mod`, `é`.bias": {"my-mod.weight", "my-mod.bias", "é.bias"},
        "freeze `all`?": {"all.weight", "all.bias"},
        "freeze `x`": {"x.weight", "x.bias"},
    }
    for text, want in cases.items():
        model = make()
        freezedsl.apply(model, text)
        assert frozen_names(model) == want, text
        assert parse(freezedsl.format(text)) == parse(text), text


# (`to`, `children`, `type` cannot be module names: nn.Module has such attributes.)
KEYWORD_NAMES = ["name", "except", "freeze", "unfreeze", "expect", "trainable", "frozen", "convert", "lr",
                 "at", "epoch", "decay", "over", "allx", "stats"]  # fmt: skip


@pytest.mark.parametrize("word", KEYWORD_NAMES)
@pytest.mark.parametrize(
    "shape",
    ["freeze {w}", "freeze {w}.weight", "freeze {w}, y", "freeze y, {w}", "freeze all except {w}",
     "expect frozen {w}", "freeze {w}?", "freeze {w}[0]?", "freeze ({w})"],
)  # fmt: skip
def test_keywords_are_plain_names_in_paths(word: str, shape: str) -> None:
    """A module may be called like a keyword: the printed program must parse back."""
    text = shape.format(w=word)
    program = parse(text)
    assert parse(format_program(program)) == program
    model = nn.ModuleDict({word: nn.Linear(2, 2), "y": nn.Linear(2, 2)})
    freezedsl.plan(model, text)


def test_module_named_stats_round_trips_before_except() -> None:
    program = ast.Program(
        (
            ast.Rule(
                "freeze", ast.Except(ast.Path((ast.Word("stats"),)), ast.Path((ast.Word("y"),)))
            ),
        )
    )
    assert parse(format_program(program)) == program


# --------------------------------------------------------------------- selection errors


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("freeze nothere", 1, 8),
        ("freeze fc\nunfreeze fc, nothere", 2, 14),
        ("freeze fc, layer1.7", 1, 12),
        ("freeze layer1[5]", 1, 8),
        ("freeze layer1[5:]", 1, 8),
        ("freeze children[9]", 1, 8),
        ("freeze fc[0]", 1, 8),
        ("freeze fc.weight[0]", 1, 8),
        ('freeze name~"^nothere"', 1, 8),
        ("freeze type=BatchNorm1d", 1, 8),
        ('freeze type~"GRU"', 1, 8),
        ("freeze stem.2", 1, 8),  # a ReLU: no parameters
        ("freeze fc, stem.2", 1, 12),  # even next to atoms that do select parameters
        ("freeze all except stem.2", 1, 19),
        ('freeze type~"ReLU", fc', 1, 8),
        ("freeze fc except fc", 1, 8),
        ("freeze fc except nothere", 1, 18),  # excluded atoms must match too
        ("freeze all except (fc, nothere)", 1, 24),
        ("freeze layer1 except stem", 1, 22),  # an except part must remove something
        ("freeze layer1 except layer1.0, fc", 1, 32),
        ("freeze all except layer1 except layer1.0", 1, 33),
        ("freeze layer1\nexpect frozen layer1 except fc", 2, 29),
        ("expect frozen nothere", 1, 15),
        ("  freeze layer1.*.bn3", 1, 10),
        ("freeze fc\n\n\tfreeze fcc", 3, 9),
    ],
)
def test_selection_errors_are_located(text: str, line: int, col: int) -> None:
    model = SmallNet()
    before = flags(model)
    with pytest.raises(SelectionError) as info:
        freezedsl.apply(model, text)
    err = info.value
    assert (err.line, err.col) == (line, col), str(err)
    assert err.exit_code == 2
    assert err.source_line == text.split("\n")[line - 1]
    assert flags(model) == before
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("freeze", 1, 7),
        ("freeze layer1[1:2:0]", 1, 19),
        ('freeze name~"layer[12"', 1, 19),  # at the `[`
        ("freeze fc,", 1, 11),
        ("expect trainable 101%", 1, 18),
        ("expect trainable 5%..1%", 1, 18),
        ("freeze **fc", 1, 8),
        ("freeze fc\nfreez fc", 2, 1),
        ("freeze fc)", 1, 10),
        ("freeze (fc", 1, 11),
        ('freeze "fc"', 1, 8),
        ("freeze fc\x00", 1, 10),
        ("freeze a??", 1, 10),
    ],
)
def test_syntax_errors_are_located(text: str, line: int, col: int) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        freezedsl.compile(text)
    assert (info.value.line, info.value.col) == (line, col), str(info.value)


# --------------------------------------------------------------------- integer parameters


def test_integer_parameters_can_be_frozen_but_not_unfrozen() -> None:
    model = nn.Module()
    model.lin = nn.Linear(2, 2)
    model.register_parameter(
        "steps", nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)
    )
    freezedsl.apply(model, "freeze all")
    assert frozen_names(model) == {"lin.weight", "lin.bias", "steps"}
    with pytest.raises(SelectionError) as info:
        freezedsl.apply(model, "unfreeze all")
    assert "steps" in str(info.value)
    assert frozen_names(model) == {"lin.weight", "lin.bias", "steps"}
    freezedsl.apply(model, "unfreeze all except steps")
    assert frozen_names(model) == {"steps"}


# --------------------------------------------------------------------- TorchScript


@pytest.fixture
def scripted() -> torch.jit.ScriptModule:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(ScriptableNet())


SCRIPT_CASES = [
    ("freeze features; unfreeze features[-1]", ("features.0", "features.1")),
    ("freeze type=BatchNorm1d", ("features.1",)),
    ('freeze type~"Linear"', ("features.0", "features.3", "head")),
    ("freeze **.bias", ("features.0.bias", "features.1.bias", "features.3.bias", "head.bias")),
    ("freeze children[0][0:2]", ("features.0", "features.1")),
    ('freeze name~"^head"', ("head",)),
    ("freeze all except head", ("features",)),
]


@pytest.mark.parametrize(("text", "prefixes"), SCRIPT_CASES, ids=[c[0] for c in SCRIPT_CASES])
def test_torchscript_module(
    scripted: torch.jit.ScriptModule, text: str, prefixes: tuple[str, ...]
) -> None:
    names = [n for n, _ in scripted.named_parameters()]
    plan = freezedsl.apply(scripted, text)
    assert {n for n, p in scripted.named_parameters() if not p.requires_grad} == under(
        names, prefixes
    )
    assert set(plan.frozen) == under(names, prefixes)
    assert plan.model_class == "ScriptableNet"


@pytest.mark.parametrize("text", ["freeze type=batchnorm.BatchNorm1d", "freeze type=_BatchNorm"])
def test_torchscript_type_dotted_and_base(scripted: torch.jit.ScriptModule, text: str) -> None:
    freezedsl.apply(scripted, text)
    assert {n for n, p in scripted.named_parameters() if not p.requires_grad} == {
        "features.1.weight",
        "features.1.bias",
    }


# --------------------------------------------------------------------- torchvision on meta

CARD = 'freeze children[0:6]; unfreeze fc; freeze name~"layer[12]"'
RESNET_BN = tuple(
    [f"layer{i}.{j}.bn{k}" for i in range(1, 5) for j in range(2) for k in (1, 2)]
    + [f"layer{i}.0.downsample.1" for i in (2, 3, 4)]
    + ["bn1"]
)

RESNET_CASES: list[tuple[str, tuple[str, ...]]] = [
    (CARD, ("conv1", "bn1", "layer1", "layer2")),
    ("freeze children[0:6]", ("conv1", "bn1", "layer1", "layer2")),
    ("freeze layer4[-1].conv1", ("layer4.1.conv1",)),
    ("freeze type=BatchNorm2d", RESNET_BN),
    ("freeze type=batchnorm.BatchNorm2d", RESNET_BN),
    ('freeze type~"Norm"', RESNET_BN),
    ("freeze type=BasicBlock", ("layer1", "layer2", "layer3", "layer4")),
    ("freeze **.bias", tuple(f"{b}.bias" for b in RESNET_BN) + ("fc.bias",)),
    ("freeze layer*[0].downsample", ("layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample")),
    ("freeze *[1]", ("layer1.1", "layer2.1", "layer3.1", "layer4.1")),
    ("freeze children[-2:]", ("fc",)),  # avgpool holds no parameters
    ("freeze all except fc, bn1", ("conv1", "layer1", "layer2", "layer3", "layer4")),
    ("freeze layer4[::-1][1]", ("layer4.1.bn1", "layer4.0.bn1")),
    ("freeze all; unfreeze layer4[-1:], fc; freeze **.bn*.bias", ("conv1", "bn1", "layer1", "layer2", "layer3",
                                                                  "layer4.0") + tuple(f"layer4.1.bn{k}.bias" for k in (1, 2))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "prefixes"), RESNET_CASES, ids=[c[0] for c in RESNET_CASES])
def test_resnet18_meta(resnet: nn.Module, text: str, prefixes: tuple[str, ...]) -> None:
    snap = snapshot(resnet)
    plan = freezedsl.apply(resnet, text)
    want = under(names_of(resnet), prefixes)
    assert frozen_names(resnet) == want
    assert set(plan.frozen) == want
    assert all(p.device.type == "meta" for p in resnet.parameters())
    assert snapshot(resnet) == snap


def test_resnet_rule_file(resnet: nn.Module, repo: Path) -> None:
    plan = freezedsl.apply(resnet, repo / "rules" / "resnet.frz")
    assert plan.ok
    assert frozen_names(resnet) == under(names_of(resnet), ("conv1", "bn1", "layer1", "layer2"))
    assert Decimal(str(plan.trainable_percent)) > 50


def test_torch_nn_dotted_name_is_not_a_qualname_suffix(resnet: nn.Module) -> None:
    # `torch.nn.BatchNorm2d` is how people write the class, but its qualname is
    # torch.nn.modules.batchnorm.BatchNorm2d: by the suffix rule it matches nothing.
    with pytest.raises(SelectionError) as info:
        freezedsl.plan(resnet, "freeze type=torch.nn.BatchNorm2d")
    assert "type=BatchNorm2d" in str(info.value)


def test_mobilenet_rule_file(mobilenet: Any, repo: Path) -> None:
    plan = freezedsl.apply(mobilenet, repo / "rules" / "mobilenet.frz")
    assert plan.ok
    n = len(mobilenet.features)
    want = under(names_of(mobilenet), tuple(f"features.{i}" for i in range(n - 3)))
    assert frozen_names(mobilenet) == want


# --------------------------------------------------------------------- wrappers (DDP: tests/distributed)


def test_data_parallel_uses_bare_names_and_warns() -> None:
    inner = SmallNet()
    wrapped = nn.DataParallel(inner)
    plan = freezedsl.apply(wrapped, "freeze all; unfreeze fc")
    assert trainable_names(inner) == {"fc.weight", "fc.bias"}
    assert plan.wrapper == "DataParallel"
    assert any("DataParallel" in w for w in plan.warnings)
    with pytest.raises(SelectionError, match="module"):
        freezedsl.plan(wrapped, "freeze module.fc")


@pytest.mark.slow
def test_torch_compile_wrapper_uses_bare_names() -> None:
    inner = SmallNet()
    plan = freezedsl.apply(torch.compile(inner), "freeze fc")
    assert frozen_names(inner) == {"fc.weight", "fc.bias"}
    assert plan.wrapper == "OptimizedModule"
