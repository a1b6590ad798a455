"""Static lint, ``check`` and ``fmt`` must work where torch is not installed.

torch is the optional ``freezedsl[torch]`` extra and the pre-commit hooks install
freezedsl without it, so a child process with a meta-path hook that makes ``import
torch`` (and the heavy packages that pull it in) fail as a missing package does runs
the commands; any import of torch makes the run fail loudly. The commands that need
torch must say so in one line, exit code 2.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = ("torch", "torchvision", "lightning", "pytorch_lightning", "transformers")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (refused)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = ["freezedsl", *sys.argv[1:]]
    try:
        if sys.argv[1] == "-c":
            exec(sys.argv[2])
        else:
            from freezedsl.cli import main
            main()
    finally:
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        if leaked:
            print("LEAKED", leaked)
    """
)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "blocked_cli.py"
    script.write_text(BLOCKER, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_static_lint_check_fmt_without_torch(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import torch\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "model.backbone.requires_grad_(False)\n",
        encoding="utf-8",
    )
    (tmp_path / "rules.frz").write_text("freeze backbone\n", encoding="utf-8")
    lint = _run(tmp_path, "lint", "--no-run", "train.py", "rules.frz")
    assert "FZ201" in lint.stdout, lint.stdout + lint.stderr
    assert lint.returncode == 1 and "refused" not in lint.stderr + lint.stdout
    assert "LEAKED" not in lint.stdout
    for args in (("check", "rules.frz"), ("fmt", "--check", "rules.frz")):
        res = _run(tmp_path, *args)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "LEAKED" not in res.stdout and "refused" not in res.stderr


NEEDS = "needs PyTorch: pip install 'freezedsl[torch]'"


def test_static_lint_with_settings_without_torch(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.freezedsl.lint]\nignore = ['FZ204']\n", encoding="utf-8"
    )
    (tmp_path / "train.py").write_text(
        "model.requires_grad = False\nmodel.backbone.require_grad = False\n", encoding="utf-8"
    )
    res = _run(tmp_path, "lint", "--no-run", "--select", "FZ2", ".")
    assert res.returncode == 1 and "FZ204" in res.stdout and "FZ205" in res.stdout, res.stderr
    assert "LEAKED" not in res.stdout


def test_commands_that_need_torch_say_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "rules.frz").write_text("freeze backbone\n", encoding="utf-8")
    (tmp_path / "train.py").write_text("print('hi')\n", encoding="utf-8")
    model = "torchvision.models:resnet18"
    cases = {
        ("show", model): "freezedsl show " + NEEDS,
        ("plan", "rules.frz", model): "freezedsl plan " + NEEDS,
        ("apply", "rules.frz", model, "-o", "out.pt"): "freezedsl apply " + NEEDS,
        ("lint", "train.py"): "freezedsl lint SCRIPT.py (running a script) " + NEEDS,
        ("lint", "--no-run", "rules.frz", "--model", model): "freezedsl lint --model " + NEEDS,
        ("lint", "--no-run", "train.py", "--select", "FZ3"): (
            "freezedsl lint with runtime codes (FZ3xx) in the selection " + NEEDS
        ),
        ("rule", "FZ301"): (
            "freezedsl: 'FZ301' is not a static rule, and runtime rules (FZ3xx) need PyTorch: "
            "pip install 'freezedsl[torch]'"
        ),
    }
    for args, line in cases.items():
        res = _run(tmp_path, *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr == line + "\n", (args, res.stderr)
    assert not (tmp_path / "out.pt").exists()


def test_rule_documents_static_rules_without_torch(tmp_path: Path) -> None:
    res = _run(tmp_path, "rule", "FZ204")
    assert res.returncode == 0 and "requires-grad-on-module" in res.stdout, res.stderr
    res = _run(tmp_path, "rule", "--all")
    assert res.returncode == 0 and "FZ214" in res.stdout and "FZ301" not in res.stdout
    assert res.stderr == (
        "freezedsl: runtime rules (FZ3xx) not listed: they need PyTorch: "
        "pip install 'freezedsl[torch]'\n"
    )


def test_library_without_torch(tmp_path: Path) -> None:
    """Compiling and formatting rules works; torch-needing API names the extra."""
    code = (
        "import freezedsl\n"
        "rules = freezedsl.compile('freeze backbone\\n')\n"
        "print(type(rules).__name__, freezedsl.format('freeze   backbone\\n').strip())\n"
        "try:\n"
        "    freezedsl.restore_freeze\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('ERR', exc.name, exc)\n"
    )
    res = _run(tmp_path, "-c", code)
    assert res.returncode == 0, res.stderr
    assert "Rules freeze backbone" in res.stdout
    assert "ERR torch freezedsl.restore_freeze " + NEEDS in res.stdout
