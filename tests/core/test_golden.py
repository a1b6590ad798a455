"""Golden tests: rendered error messages and plan reports, reviewed by eye.

Rewrite after a deliberate change with ``UPDATE_GOLDEN=1 pytest tests/core/test_golden.py``
and review the diff of tests/golden/core/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import freezedsl
from freezedsl import FreezeError

from .conftest import check_golden
from .models import SmallNet, TinyGPT, mobilenet_v3_small_meta, resnet18_meta

# (case name, rule text); planned and applied against torchvision resnet18 (meta).
ERROR_CASES: list[tuple[str, str]] = [
    # syntax
    ("missing selector", "freeze"),
    ("keyword typo", "freez fc"),
    ("dangling comma", "freeze fc,"),
    ("unclosed index", "freeze layer4["),
    ("slice step zero", "freeze layer4[1:2:0]"),
    ("bad regex", 'freeze name~"layer[12"'),
    ("unquoted regex", "freeze name~layer1"),
    ("string as path", 'freeze "fc"'),
    ("equals sign", "freeze fc = 1"),
    ("share over 100", "expect trainable 150%"),
    ("empty range", "expect trainable 10%..5%"),
    ("unknown state", "expect maybe fc"),
    ("unclosed paren", "freeze (fc, bn1"),
    ("double star in word", "freeze **fc"),
    ("double question mark", "freeze fc??"),
    ("control character", "freeze fc\x01"),
    ("bad character in path", "freeze layer4.1.conv-1"),
    ("except without base", "freeze except fc"),
    ("second line", "freeze fc\nunfreeze layer4 layer3"),
    # selection
    ("did you mean (deep)", "freeze layer4.1.conv3"),
    ("did you mean (top)", "freeze fcc"),
    ("no such stage", "unfreeze layer5"),
    ("DDP prefix", "freeze module.layer4"),
    ("index out of range", "freeze layer4[2]"),
    ("slice selects nothing", "freeze layer4[5:]"),
    ("index a leaf module", "freeze fc[0]"),
    ("index a parameter", "freeze fc.weight[0]"),
    ("children out of range", "freeze children[20]"),
    ("type typo", "freeze type=BatchNorm"),
    ("type torch.nn name", "freeze type=torch.nn.BatchNorm2d"),
    ("type regex no match", 'freeze type~"^Norm"'),
    ("name regex no match", 'freeze name~"^encoder"'),
    ("module without parameters", "freeze relu"),
    ("except removes everything", "freeze fc except fc"),
    ("excluded atom missing", "freeze all except fc, head"),
    ("expect selector missing", "freeze all\nexpect trainable head"),
    ("tab before statement", "freeze fc\n\tfreeze nothere"),
    # tensor selectors
    ("unknown dtype", "freeze dtype=flot32"),
    ("negative ndim", "weight_decay 0 ndim<=-1"),
    ("ndim matches nothing", "weight_decay 0 ndim=3"),
    ("dtype matches nothing", "freeze dtype=bfloat16"),
    ("shape matches nothing", "freeze shape=[7]"),
    ("bad shape size", "freeze shape=[*, -1]"),
    ("initially frozen matches nothing", "freeze all\nunfreeze all except initially frozen"),
    # lr decay layers
    ("layer braces outside lr decay", "freeze {layer1, layer2}"),
    ("layer inside a layer", "lr decay 0.5 over {conv1, {bn1}}, layer1"),
    ("unclosed layer", "lr decay 0.5 over {conv1, bn1"),
    ("min scale over 1", "lr decay 0.5 over layer1, layer2 min 2"),
    ("decay clause typo", "lr decay 0.5 over layer1, layer2 freeze 0.1"),
    # expectations
    ("expect selector fails", "freeze all\nexpect trainable fc"),
    ("expect share fails", "freeze all; unfreeze fc\nexpect trainable >= 10%"),
    ("expect range fails", "freeze layer1\nexpect frozen 50%..100%"),
]


def render_error(text: str) -> str:
    model = resnet18_meta()
    try:
        freezedsl.apply(model, text)
    except FreezeError as err:
        return f"{type(err).__name__} (exit {err.exit_code})\n{err.render()}"
    return "no error"


def test_error_messages() -> None:
    out: list[str] = []
    for name, text in ERROR_CASES:
        out.append(f"=== {name}\n{text.rstrip()}\n---\n{render_error(text)}\n")
    check_golden("errors.txt", "\n".join(out))


def test_every_error_case_is_an_error() -> None:
    assert all(render_error(text) != "no error" for _, text in ERROR_CASES)


def test_rule_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.frz"
    path.write_text("# header\nfreeze all\nunfreeze layer4.2\n", encoding="utf-8")
    with pytest.raises(FreezeError) as info:
        freezedsl.apply(resnet18_meta(), path)
    err = info.value
    assert err.path == str(path)
    assert err.render().replace(str(path), "bad.frz") == (
        "bad.frz:3:10: layer4.2 matches nothing in ResNet; did you mean 'layer4.1', 'layer4.0' or 'layer4'? "
        "(or write layer4.2? if it may match nothing)\n"
        "  unfreeze layer4.2\n"
        "           ^"
    )


CARD = 'freeze children[0:6]; unfreeze fc; freeze name~"layer[12]"'


def _plan_report(name: str, model_name: str, text: str, path: str | None) -> str:
    model = {"resnet18": resnet18_meta, "mobilenet_v3_small": mobilenet_v3_small_meta, "tinygpt": TinyGPT,
             "smallnet": SmallNet}[model_name]()  # fmt: skip
    plan = freezedsl.compile(text, path=path).plan(model)
    return (
        f"##### {name} on {model_name}\n"
        f"{plan.render()}\n\n"
        f"##### {name} on {model_name} (explain)\n"
        f"{plan.render(explain=True)}\n"
    )


PLAN_CASES: list[tuple[str, str, str | None, str]] = [
    ("plan_resnet_frz.txt", "resnet18", "rules/resnet.frz", ""),
    ("plan_resnet_card.txt", "resnet18", None, CARD),
    ("plan_mobilenet_frz.txt", "mobilenet_v3_small", "rules/mobilenet.frz", ""),
    (
        "plan_resnet_bn.txt",
        "resnet18",
        None,
        (
            "# keep BatchNorm trainable, and fail an expectation on purpose\n"
            "freeze all\nunfreeze type=BatchNorm2d, fc\n\nexpect frozen layer4\nexpect trainable < 1%\n"
        ),
    ),
    (
        "plan_gpt_tied.txt",
        "tinygpt",
        None,
        "freeze all\nunfreeze transformer.h[-1], lm_head\nexpect trainable transformer.wte\n",
    ),
]


@pytest.mark.parametrize(
    ("golden", "model_name", "path", "text"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES]
)
def test_plan_reports(
    golden: str, model_name: str, path: str | None, text: str, repo: Path
) -> None:
    if path is not None:
        text = (repo / path).read_text(encoding="utf-8")
    check_golden(golden, _plan_report(path or "<rules>", model_name, text, path))


# --------------------------------------------------------------------- unclear messages (fixed)


def _syntax_message(text: str) -> str:
    with pytest.raises(FreezeError) as info:
        freezedsl.compile(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "closer"),
    [
        ("freeze (fc", "')'"),
        ("freeze (fc, bn1\nunfreeze fc", "')'"),
        ("freeze layer4[1", "']'"),
        ("freeze layer4[1:", "']'"),
    ],
)
def test_unclosed_bracket_names_the_closing_bracket(text: str, closer: str) -> None:
    message = _syntax_message(text)
    assert closer in message, message
    assert "';' or a new line" not in message, message


@pytest.mark.parametrize("text", ["freeze fc??", "freeze fc = 1", "unfreeze layer4 layer3"])
def test_end_of_statement_errors_do_not_offer_to(text: str) -> None:
    assert "'to'" not in _syntax_message(text)


def test_children_out_of_range_names_the_root() -> None:
    with pytest.raises(FreezeError) as info:
        freezedsl.plan(resnet18_meta(), "freeze children[20]")
    assert "children has" not in str(info.value)
    assert "ResNet" in str(info.value)
