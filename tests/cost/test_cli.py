"""`freezedsl plan --input ...` and `freezedsl bench`: output, JSON, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from freezedsl.cli import main

from .models import COST_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CNN = "freezedsl.testing:small_cnn"


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "r.frz"
    path.write_text("freeze features\n")
    return str(path)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_plan_with_input_prints_both_steps_side_by_side(rules: str) -> None:
    out = invoke("plan", rules, CNN, "--input", "8x1x8x8")
    assert out.exit_code == 0, out.output
    text = out.output
    assert "cost of one training step (inputs 8x1x8x8, float32" in text
    for label in (
        "forward FLOPs",
        "backward FLOPs",
        "peak activations",
        "gradients",
        "optimizer state (adamw)",
        "peak training memory",
        "with freeze",
        "full",
        "saved",
    ):
        assert label in text
    assert "backward (with freeze) stops at classifier: classifier.weight is trainable" in text
    assert (
        "memory, gradients and optimizer state only" not in text
    )  # replaced by the whole-step estimate


def test_plan_json_has_integer_cost_fields(rules: str) -> None:
    out = invoke(
        "plan", rules, CNN, "--input", "8x1x8x8", "--dtype", "bf16", "--optimizer", "sgd", "--json"
    )
    assert out.exit_code == 0, out.output
    cost = json.loads(out.output)["cost"]
    assert (
        cost["dtype"] == "bfloat16" and cost["optimizer"] == "sgd" and cost["inputs"] == ["8x1x8x8"]
    )
    for side in ("with_freeze", "without_freeze"):
        for key in COST_FIELDS:
            assert isinstance(cost[side][key], int) and cost[side][key] >= 0
        assert cost[side]["optimizer_state_bytes"] == 0  # plain SGD keeps no state
    assert cost["with_freeze"]["backward_flops"] < cost["without_freeze"]["backward_flops"]
    assert cost["with_freeze"]["backward_stops_at"] == "classifier"


def test_plan_input_ids_and_fz340_on_a_rule_file() -> None:
    out = invoke(
        "plan", str(ROOT / "rules" / "gpt.frz"), "freezedsl.testing:gpt_decoder", "--input-ids", "2x32"
    )
    assert out.exit_code == 0, out.output
    assert "inputs ids 2x32" in out.output
    # reported at the statement that makes the freeze expensive
    lines = (ROOT / "rules" / "gpt.frz").read_text().splitlines()
    line = lines.index("unfreeze type=LayerNorm") + 1
    assert f"gpt.frz:{line}:1: FZ340 " in out.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "8x1xax8"], "--input '8x1xax8': expected a shape of positive integers"),
        (["--input-ids", "0x3"], "--input-ids '0x3': expected a shape of positive integers"),
        (["--input", "8x3x8x8"], "the model's forward failed on inputs 8x3x8x8"),
        (["--dtype", "bf16"], "--dtype needs --input or --input-ids"),
    ],
)
def test_plan_bad_inputs_are_one_line_exit_2(rules: str, args: list[str], message: str) -> None:
    out = invoke("plan", rules, CNN, *args)
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_bench_on_cpu_reports_both_runs_and_the_estimate_error(rules: str) -> None:
    out = invoke(
        "bench", rules, CNN, "--input", "8x1x8x8", "--steps", "2", "--warmup", "1", "--json"
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    w, f = data["measured"]["with_freeze"], data["measured"]["without_freeze"]
    assert w["device"] == f["device"] == "cpu" and w["steps"] == 2
    assert 0 < w["peak_bytes"] < f["peak_bytes"]
    # on CPU the peak is traced on the real tensors, the accounting the estimate uses
    assert abs(data["errors"]["peak_ratio"]) < 0.05
    assert w["grad_bytes"] == data["cost"]["with_freeze"]["grad_bytes"]
    text = invoke("bench", rules, CNN, "--input", "8x1x8x8", "--steps", "1", "--warmup", "0").output
    assert "measured on cpu" in text and "estimate error" in text and "traced" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "bench needs an input"),
        (["--input", "8x1x8x8", "--device", "tpu"], "--device 'tpu': expected cpu, cuda or cuda:N"),
        (["--input", "8x1x8x8", "--optimizer", "lion"], "bench cannot build optimizer 'lion'"),
    ],
)
def test_bench_bad_options_are_one_line_exit_2(rules: str, args: list[str], message: str) -> None:
    out = invoke("bench", rules, CNN, "--steps", "1", "--warmup", "0", *args)
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here")
def test_bench_cuda_without_a_gpu_says_so(rules: str) -> None:
    out = invoke("bench", rules, CNN, "--input", "8x1x8x8", "--device", "cuda")
    assert out.exit_code == 2 and "CUDA is not available here (use --device cpu)" in out.output


def test_progress_bar_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from freezedsl.bench import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, drawn in ((Tty(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        bar = Progress(4, "bench")
        for _ in range(4):
            bar()
        text = stream.getvalue()
        assert ("4/4" in text and text.endswith("\n")) is drawn
        assert bool(text) is drawn
