"""Static lint, ``check`` and ``fmt`` must work where torch is not installed.

The pre-commit hook installs freezedsl without torch (see README), so a child process
with a meta-path hook that refuses ``import torch`` (and the heavy packages that pull it
in) runs the commands; any import of torch makes the run fail loudly.
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
                raise ImportError(f"torch-free test: import of {name} refused")
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = ["freezedsl", *sys.argv[1:]]
    from freezedsl.cli import main
    try:
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
