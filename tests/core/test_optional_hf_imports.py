"""Hugging Face packages stay optional: importing freezedsl or running the CLI imports none.

Why: `pip install freezedsl` without the `hf` extra must work, and a user who never gives a
Hugging Face file should not pay transformers' import time (seconds).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKED = ("transformers", "safetensors", "peft", "accelerate")

PROBE = (
    "import sys\n"
    "{body}\n"
    "leaked = sorted({{m.split('.')[0] for m in sys.modules}} & set({blocked!r}))\n"
    "assert not leaked, leaked\n"
)


@pytest.mark.parametrize(
    "body",
    [
        "import freezedsl",
        "import freezedsl.api, freezedsl.loading, freezedsl.integrations",
        (
            "from click.testing import CliRunner\n"
            "from freezedsl.cli import main\n"
            "r = CliRunner().invoke(main, ['--help'])\n"
            "assert r.exit_code == 0, r.output"
        ),
        (  # PEFT support is by class name: planning and the PEFT checks never import peft
            "import torch, freezedsl\n"
            "from freezedsl.lint.peft_checks import check_adapters\n"
            "m = torch.nn.Sequential(torch.nn.Linear(2, 2))\n"
            "assert freezedsl.plan(m, 'freeze all except type=adapter?').trainable == []\n"
            "assert check_adapters(m) == []"
        ),
    ],
    ids=["package", "api-loading-integrations", "cli-help", "peft-support"],
)
def test_no_hf_package_imported(body: str) -> None:
    code = PROBE.format(body=body, blocked=BLOCKED)
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
