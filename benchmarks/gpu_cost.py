"""Estimated against measured cost of a freeze, on a GPU: ResNet-50, ViT-B/16, BERT-base, a Llama-style decoder.

For each model and each rule text (full fine-tuning, a partial freeze, a linear probe,
and for ViT the repository's rules/vit.frz with its trainable LayerNorm islands):

1. estimate one bf16 training step with ``freezedsl.planning.cost.estimate_cost`` on
   the meta device (CPU, seconds);
2. measure it with ``freezedsl.bench.measure_step`` on the device: bf16 weights,
   AdamW, loss ``output.float().sum()``, 3 warm-up steps, median of 10 timed steps
   (``torch.cuda.synchronize`` around each), peak memory =
   ``max_memory_allocated`` after ``reset_peak_memory_stats`` minus the weights;
3. compare the ratios (with freeze / full) of peak memory and step time.

Writes ``gpu_cost.json`` and ``gpu_cost.md`` to $OUT (default ./out;
``gpu_cost_estimate.*`` with --estimate-only). Each model is
guarded: a failure is recorded and the others still run. No network: weights=None
and configs only.

    PYTHONPATH=. python benchmarks/gpu_cost.py            # on the GPU machine
    PYTHONPATH=. python benchmarks/gpu_cost.py --smoke    # tiny models on CPU (tests)
    python benchmarks/gpu_cost.py --estimate-only --out benchmarks/results   # estimates only, any machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch

import freezedsl
from freezedsl.bench import measure_step, real_inputs, set_trainable
from freezedsl.lint.cost import check_expensive_freeze
from freezedsl.planning.cost import InputSpec, estimate_cost, trainable_map

GOAL_MEMORY = 0.10  # |estimated ratio - measured ratio| goals of issue 14
GOAL_TIME = 0.12


@dataclass
class Case:
    name: str
    build: Callable[[], torch.nn.Module]
    inputs: list[InputSpec]
    rules: dict[str, str]  # label -> rule text; "full" is always measured too


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cases(smoke: bool) -> list[Case]:
    import torchvision

    def resnet() -> torch.nn.Module:
        if smoke:
            from torchvision.models.resnet import BasicBlock, ResNet

            return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
        return torchvision.models.resnet50(weights=None)

    def vit() -> torch.nn.Module:
        if smoke:
            from torchvision.models.vision_transformer import VisionTransformer

            return VisionTransformer(
                image_size=32, patch_size=16, num_layers=4, num_heads=2, hidden_dim=32, mlp_dim=64
            )
        return torchvision.models.vit_b_16(weights=None)

    def bert() -> torch.nn.Module:
        from transformers import BertConfig, BertModel

        cfg = (
            BertConfig(
                hidden_size=32,
                num_hidden_layers=4,
                num_attention_heads=2,
                intermediate_size=64,
                vocab_size=128,
            )
            if smoke
            else BertConfig()
        )
        return BertModel(cfg)

    def llama() -> torch.nn.Module:
        from transformers import LlamaConfig, LlamaForCausalLM

        # (hidden, intermediate, layers, heads, vocab): about 1B parameters, or tiny
        hidden, inter, layers, heads, vocab = (
            (32, 64, 4, 2, 128) if smoke else (2048, 5632, 16, 16, 32000)
        )
        cfg = LlamaConfig(
            hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=2048, use_cache=False,
        )  # fmt: skip
        return LlamaForCausalLM(cfg)

    img = [InputSpec((2, 3, 32, 32))] if smoke else [InputSpec((128, 3, 224, 224))]
    half = "first half of layers"

    def ids(tiny: tuple[int, int], real: tuple[int, int]) -> list[InputSpec]:
        return [InputSpec(tiny if smoke else real, ids=True)]

    def case(
        name: str,
        build: Callable[[], torch.nn.Module],
        inputs: list[InputSpec],
        head: str,
        **rules: str,
    ) -> Case:
        """Name (tiny in --smoke), the given rule texts, and a linear probe training ``head``."""
        texts = dict(rules)
        texts["linear probe"] = f"freeze all\nunfreeze {head}\n"
        return Case(name.split("|")[bool(smoke)], build, inputs, texts)

    vit_frz = (ROOT / "rules" / "vit.frz").read_text()
    vit_half = 2 if smoke else 6
    return [
        case(
            "resnet50|resnet (tiny)",
            resnet,
            img,
            "fc",
            **{"partial (children[0:6])": "freeze children[0:6]\n"},
        ),
        case(
            "vit_b_16|vit (tiny)",
            vit,
            img,
            "heads",
            **{
                f"partial ({half})": f"freeze conv_proj, class_token, encoder.pos_embedding, encoder.layers[:{vit_half}]\n",
                "rules/vit.frz (LayerNorm islands)": vit_frz,
            },
        ),
        case(
            "bert-base|bert (tiny)",
            bert,
            ids((2, 16), (8, 512)),
            "pooler",
            **{f"partial ({half})": f"freeze embeddings, encoder.layer[:{2 if smoke else 6}]\n"},
        ),
        case(
            "llama-1b|llama (tiny)",
            llama,
            ids((2, 16), (8, 1024)),
            "lm_head",
            **{
                f"partial ({half})": f"freeze model.embed_tokens, model.layers[:{2 if smoke else 8}]\n"
            },
        ),
    ]


def run_case(
    case: Case, device: str, dtype: torch.dtype, steps: int, warmup: int, measure: bool = True
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with torch.device("meta"):
        meta_model = case.build()
    estimates: dict[str, Any] = {}
    plans: dict[str, Any] = {}
    for label, text in case.rules.items():
        plan = freezedsl.compile(text).plan(meta_model)
        start = time.perf_counter()
        est = estimate_cost(
            plan,
            meta_model,
            case.inputs,
            dtype="bf16" if dtype == torch.bfloat16 else "fp32",
            optimizer="adamw",
            foreach=device.startswith("cuda") or not measure,
            checks=(check_expensive_freeze,),
        )
        estimates[label] = (est, time.perf_counter() - start)
        plans[label] = trainable_map(plan)
        _log(
            f"  estimate {label}: {estimates[label][1]:.2f}s, peak ratio {est.ratio('peak_bytes'):.3f}, time ratio {est.ratio('step_time'):.3f}"
        )
    del meta_model
    measured: dict[str, Any] = {}
    configs: list[tuple[str, dict[str, bool] | None]] = (
        [("full", None), *plans.items()] if measure else []
    )
    if measure:
        torch.manual_seed(0)
        with torch.device(device):
            model = case.build()
        model.to(dtype=dtype).train()
        inputs = real_inputs(model, case.inputs, dtype, device)
    for label, flags in configs:
        set_trainable(model, flags)
        try:
            m = measure_step(model, inputs, optimizer="adamw", steps=steps, warmup=warmup)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: record it, keep the rest
            _log(f"  measure {label}: FAILED {type(exc).__name__}: {exc}")
            measured[label] = None
            rows.append(
                {"model": case.name, "rules": label, "error": f"{type(exc).__name__}: {exc}"}
            )
            continue
        finally:
            for p in model.parameters():
                p.grad = None
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        measured[label] = m
        _log(
            f"  measure {label}: {m.step_seconds * 1e3:.1f} ms/step, peak {m.peak_bytes / 2**30:.2f} GiB"
        )
    full = measured.get("full")
    for label, (est, secs) in estimates.items():
        m = measured.get(label)
        row: dict[str, Any] = {
            "model": case.name,
            "rules": label,
            "inputs": [str(i) for i in case.inputs],
            "estimate_seconds": round(secs, 3),
            "estimate": est.to_dict(),
            "findings": [d.format() for d in est.findings],
        }
        row["est_peak_ratio"] = est.ratio("peak_bytes")
        row["est_time_ratio"] = est.ratio("step_time")
        row["est_flops_ratio"] = est.ratio("flops")
        if m is not None and full is not None:
            row["measured"] = m.to_dict()
            row["measured_full"] = full.to_dict()
            row["meas_peak_ratio"] = m.peak_bytes / full.peak_bytes if full.peak_bytes else 1.0
            row["meas_time_ratio"] = (
                m.step_seconds / full.step_seconds if full.step_seconds else 1.0
            )
            row["peak_ratio_error"] = row["est_peak_ratio"] - row["meas_peak_ratio"]
            row["time_ratio_error"] = row["est_time_ratio"] - row["meas_time_ratio"]
            row["est_peak_bytes_full"] = est.without_freeze.peak_bytes
            row["meas_peak_bytes_full"] = full.peak_bytes
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        "# Cost of a freeze: estimated vs measured",
        "",
        (
            f"Device: {meta['device_name']}; torch {meta['torch']}; dtype {meta['dtype']}; AdamW; "
            f"loss output.float().sum(); {meta['warmup']} warm-up + median of {meta['steps']} steps."
        ),
        (
            "Ratios are with freeze / full fine-tuning (lower saves more). Goals: peak memory within "
            f"{GOAL_MEMORY}, step time within {GOAL_TIME}."
        ),
        "",
        "| model | rules | peak mem est | peak mem measured | error | step time est | step time measured | error | FLOPs est | estimate s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r and "est_peak_ratio" not in r:
            out.append(f"| {r['model']} | {r['rules']} | failed: {r['error'][:80]} | | | | | | | |")
            continue
        if "meas_peak_ratio" in r:
            pe, te = r["peak_ratio_error"], r["time_ratio_error"]
            mp = f"{r['meas_peak_ratio']:.3f}"
            mt = f"{r['meas_time_ratio']:.3f}"
            pes = f"{pe:+.3f}" + ("" if abs(pe) <= GOAL_MEMORY else " ✗")
            tes = f"{te:+.3f}" + ("" if abs(te) <= GOAL_TIME else " ✗")
        else:
            mp = mt = pes = tes = "n/a"
        out.append(
            f"| {r['model']} | {r['rules']} | {r['est_peak_ratio']:.3f} | {mp} | {pes} | "
            f"{r['est_time_ratio']:.3f} | {mt} | {tes} | {r['est_flops_ratio']:.3f} | {r['estimate_seconds']:.2f} |"
        )
    fulls = {r["model"]: r for r in rows if "meas_peak_bytes_full" in r}
    if fulls:
        out += [
            "",
            "Full fine-tuning, absolute peak memory above the weights:",
            "",
            "| model | estimated GiB | measured GiB | measured ms/step |",
            "|---|---|---|---|",
        ]
        for name, r in fulls.items():
            out.append(
                f"| {name} | {r['est_peak_bytes_full'] / 2**30:.2f} | {r['meas_peak_bytes_full'] / 2**30:.2f} | "
                f"{r['measured_full']['step_seconds'] * 1e3:.1f} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny models on CPU, 1 warm-up + 1 step (for tests)"
    )
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    parser.add_argument(
        "--out", default=os.environ.get("OUT", "out"), help="output folder (default $OUT or ./out)"
    )
    parser.add_argument("--only", default=None, help="comma-separated model names to run")
    parser.add_argument(
        "--estimate-only", action="store_true", help="estimate (meta device) without measuring"
    )
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.smoke or args.estimate_only else "cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    steps, warmup = (1, 1) if args.smoke else (10, 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else ("none (estimate only)" if args.estimate_only else "cpu"),
        "torch": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "steps": steps,
        "warmup": warmup,
        "smoke": args.smoke,
    }
    stem = "gpu_cost_estimate" if args.estimate_only else "gpu_cost"
    rows: list[dict[str, Any]] = []
    begin = time.perf_counter()
    for case in cases(args.smoke):
        if args.only and case.name not in args.only.split(","):
            continue
        _log(f"{case.name}: inputs {', '.join(map(str, case.inputs))}")
        try:
            rows.extend(
                run_case(case, device, dtype, steps, warmup, measure=not args.estimate_only)
            )
        except Exception as exc:  # noqa: BLE001 - one model's failure must not lose the others
            _log(f"{case.name}: FAILED {type(exc).__name__}: {exc}")
            traceback.print_exc()
            rows.append({"model": case.name, "rules": "*", "error": f"{type(exc).__name__}: {exc}"})
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        # write after every model: a later crash or timeout loses nothing measured
        (out / f"{stem}.json").write_text(
            json.dumps({"meta": meta, "rows": rows}, indent=2, default=str)
        )
        (out / f"{stem}.md").write_text(markdown(rows, meta))
    _log(f"done in {time.perf_counter() - begin:.0f}s; wrote {out / stem}.md and .json")
    print((out / f"{stem}.md").read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
