"""The meta-device estimate against real CPU steps and hand-computed FLOPs and bytes."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import freezedsl
from freezedsl.bench import real_inputs, set_trainable
from freezedsl.planning.cost import InputSpec, estimate_cost, trainable_map
from freezedsl.planning.steptrace import trace_step

from .models import COST_FIELDS, ConvNet, mlp, tiny_bert, tiny_llama, tiny_vit

F32 = 4


def real_step(model: nn.Module, plan, specs):
    """The same tracer on real CPU tensors, on a copy trained as the plan says.

    Attention runs torch's math path, as on the meta device in fp32 (the CPU's fused
    kernel has no FLOP formula in FlopCounterMode)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    work = copy.deepcopy(model)
    set_trainable(work, trainable_map(plan))
    inputs = real_inputs(work, specs, None, "cpu")
    tensors = {
        **dict(work.named_parameters(remove_duplicate=False)),
        **dict(work.named_buffers(remove_duplicate=False)),
    }
    with sdpa_kernel(SDPBackend.MATH):
        return trace_step(work, tensors, inputs, call=work)


# ------------------------------------------------------------------ by hand


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 9), i=st.integers(1, 12), h=st.integers(1, 12), o=st.integers(1, 12))
def test_linear_flops_by_hand(b: int, i: int, h: int, o: int) -> None:
    """Linear: forward 2*B*in*out; backward input grad 2*B*in*out and weight grad 2*B*in*out, each only when needed."""
    model = mlp(i, h, o)
    fwd = 2 * b * i * h + 2 * b * h * o
    cases = {
        "": 2 * b * h * o
        + 2 * b * h * o
        + 2 * b * i * h,  # all train: no input grad for the first layer
        "freeze 0": 2 * b * h * o,  # only the last layer's weight grad (no grad flows below it)
        "freeze 2": 2 * b * h * o + 2 * b * i * h,  # input grad of layer 2, weight grad of layer 0
        "freeze 0, 2.weight": 0,  # a bias grad is a sum: no matmul
    }
    for rules, bwd in cases.items():
        est = estimate_cost(freezedsl.plan(model, rules), model, [(b, i)])
        assert est.with_freeze.forward_flops == fwd
        assert est.with_freeze.backward_flops == bwd, rules
        assert est.without_freeze.backward_flops == cases[""]


def test_saved_and_gradient_bytes_by_hand() -> None:
    """Linear-ReLU-Linear, batch 8: ReLU keeps its output (8x32 floats), the second Linear
    reads the same storage, so it counts once; the input and the weights never count."""
    model = mlp(16, 32, 4)
    relu_out = 8 * 32 * F32
    est = estimate_cost(freezedsl.plan(model, "freeze 0"), model, [(8, 16)])
    assert est.without_freeze.saved_bytes == relu_out
    assert est.with_freeze.saved_bytes == relu_out  # layer 2's weight grad needs its input
    assert est.with_freeze.grad_bytes == (32 * 4 + 4) * F32
    assert est.without_freeze.grad_bytes == (16 * 32 + 32 + 32 * 4 + 4) * F32
    assert est.with_freeze.input_bytes == 8 * 16 * F32
    only_bias = estimate_cost(
        freezedsl.plan(model, "freeze 0, 2.weight"), model, [(8, 16)]
    )
    assert only_bias.with_freeze.saved_bytes == 0  # a bias gradient needs no activation
    # adamw: two states per trainable element plus a 4-byte step per tensor
    assert est.with_freeze.optimizer_state_bytes == 2 * (32 * 4 + 4) * F32 + 2 * 4


def test_backward_stop_names_the_first_trainable_parameter() -> None:
    model = ConvNet()
    est = estimate_cost(
        freezedsl.plan(model, "freeze stem, block.0"), model, [(2, 3, 16, 16)]
    )
    assert est.with_freeze.backward_stops_at == "block.1"
    assert est.with_freeze.backward_stop_param == "block.1.weight"
    assert est.without_freeze.backward_stops_at == "stem.0"
    assert est.with_freeze.backward_skipped_ops > 0 == est.without_freeze.backward_skipped_ops
    none = estimate_cost(freezedsl.plan(model, "freeze all"), model, [(2, 3, 16, 16)])
    assert none.with_freeze.backward_stop_param is None and none.with_freeze.backward_flops == 0
    assert "backward (with freeze): none" in none.render()


# ------------------------------------------------------------------ against real CPU steps

MODELS = {
    "mlp": (mlp, [InputSpec((8, 16))], ["freeze 0", "freeze 2"]),
    "convnet": (
        ConvNet,
        [InputSpec((4, 3, 16, 16))],
        ["freeze stem", "freeze stem, block", "freeze all\nunfreeze stem.1"],
    ),
    "vit": (
        tiny_vit,
        [InputSpec((2, 3, 32, 32))],
        [
            "freeze conv_proj, class_token, encoder.pos_embedding, encoder.layers[:2]",
            "freeze all\nunfreeze heads\nunfreeze type=LayerNorm",
        ],
    ),
    "bert": (tiny_bert, [InputSpec((2, 12), ids=True)], ["freeze embeddings, encoder.layer[:1]"]),
    "llama": (
        tiny_llama,
        [InputSpec((2, 12), ids=True)],
        ["freeze model.embed_tokens, model.layers[:1]"],
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_estimate_equals_a_real_cpu_step(name: str) -> None:
    """Meta-device estimate vs the same accounting on real fp32 CPU tensors: FLOPs, saved
    tensors, activation peak and gradients agree (both trace what torch really runs)."""
    build, specs, rule_texts = MODELS[name]
    torch.manual_seed(0)
    model = build()
    for text in rule_texts:
        plan = freezedsl.plan(model, text)
        est = estimate_cost(plan, model, specs).with_freeze
        real = real_step(model, plan, specs)
        assert est.forward_flops == real.forward_flops, text
        assert est.backward_flops == real.backward_flops, text
        assert est.grad_bytes == real.grad_bytes, text
        assert est.saved_bytes == pytest.approx(real.saved_bytes, rel=0.02), text
        assert est.activation_bytes == pytest.approx(real.activation_bytes, rel=0.05), text
        assert est.backward_stop_param == real.first_trainable, text


def test_freeze_saves_activations_and_backward_on_a_real_step() -> None:
    """The saving the estimate reports is there in the real step too (not just arithmetic)."""
    model = ConvNet()
    specs = [InputSpec((8, 3, 32, 32))]
    frozen = real_step(model, freezedsl.plan(model, "freeze stem, block.0"), specs)
    full = real_step(model, freezedsl.plan(model, "unfreeze all"), specs)
    assert frozen.saved_bytes < full.saved_bytes
    assert frozen.backward_flops < full.backward_flops


# ------------------------------------------------------------------ purity and inputs


def test_estimate_changes_nothing_in_the_model() -> None:
    model = ConvNet()
    before = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.stem.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    estimate_cost(freezedsl.plan(model, "freeze block"), model, [(2, 3, 16, 16)], dtype="bf16")
    for n, p in model.named_parameters():
        assert (
            p.requires_grad == flags[n]
            and p.grad is None
            and p.dtype == torch.float32
            and p.device.type == "cpu"
        )
        assert torch.equal(p, before[n][1])
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n])  # BatchNorm's running stats ran on meta copies


def test_dtype_halves_activations_and_weights_state() -> None:
    model = ConvNet()
    plan = freezedsl.plan(model, "freeze stem")
    f32 = estimate_cost(plan, model, [(4, 3, 16, 16)])
    b16 = estimate_cost(plan, model, [(4, 3, 16, 16)], dtype="bf16")
    assert b16.dtype == "bfloat16" and f32.dtype == "float32"
    assert b16.with_freeze.grad_bytes * 2 == f32.with_freeze.grad_bytes
    assert b16.with_freeze.saved_bytes < f32.with_freeze.saved_bytes
    assert b16.with_freeze.forward_flops == f32.with_freeze.forward_flops


def test_plan_cost_accepts_shapes_strings_and_tensors() -> None:
    model = mlp()
    plan = freezedsl.plan(model, "freeze 0")
    a = plan.cost((8, 16))
    b = plan.cost(["8x16"])
    c = plan.cost(torch.zeros(8, 16))
    assert a.with_freeze == b.with_freeze == c.with_freeze
    assert freezedsl.cost(model, "freeze 0", (8, 16)).with_freeze == a.with_freeze
    two = plan.cost([(8, 16)])  # a list of inputs: the same single input
    assert two.with_freeze == a.with_freeze
    d = a.to_dict()
    for side in ("with_freeze", "without_freeze"):
        for key in COST_FIELDS:
            assert isinstance(d[side][key], int)


def test_token_ids_and_value_reads_on_meta() -> None:
    """HF models read values (mask checks): the estimate answers and says so; ids are int64."""
    model = tiny_llama()
    plan = freezedsl.plan(model, "freeze model.embed_tokens, model.layers[:1]")
    est = plan.cost(["ids:2x12"])
    assert est.inputs[0].ids and est.with_freeze.input_bytes == 2 * 12 * 8
    assert est.with_freeze.backward_stops_at == "model.layers.1.input_layernorm"


def test_bad_inputs_are_one_line_usage_errors() -> None:
    model = mlp()
    plan = freezedsl.plan(model, "freeze 0")
    with pytest.raises(freezedsl.UsageError, match="forward failed on inputs 8x15"):
        plan.cost((8, 15))
    with pytest.raises(freezedsl.UsageError, match="positive integers"):
        plan.cost(["8xa"])
    with pytest.raises(freezedsl.UsageError, match="expected one of bf16"):
        plan.cost((8, 16), dtype="int8")
    with pytest.raises(freezedsl.UsageError, match="unknown optimizer"):
        plan.cost((8, 16), optimizer="sgdx")
