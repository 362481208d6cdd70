"""Every tutorial is a smoke test: run each `tutorials/*.py` at the tiny size.

Each tutorial runs in its own Python process, as a reader would run it, with
GTN_EDU_TUTORIAL_SIZE=tiny and matplotlib's non-interactive backend, in a temporary
working directory (so its files land there). A tutorial that raises, or exits non-zero,
fails its test. The worked examples of the docs (`docs/scripts/extending_example.py`)
run the same way, and a last test checks that every public class has an API page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gtn_edu

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.py"))
DOC_SCRIPTS = [ROOT / "docs" / "scripts" / "extending_example.py"]


def _data_root() -> str | None:
    root = os.environ.get("GTN_EDU_DATA")
    if root is None:
        return None
    path = Path(root)
    return str(path if path.is_absolute() else (Path.cwd() / path).resolve())


def run_script(path: Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `path` at the tiny size in a fresh interpreter; return the finished process."""
    env = {**os.environ, "GTN_EDU_TUTORIAL_SIZE": "tiny", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
           "GTN_EDU_TUTORIAL_OUT": str(cwd / "runs")}
    root = _data_root()
    if root is not None:
        env["GTN_EDU_DATA"] = root
    return subprocess.run([sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


_CIFAR = ("CIFAR-10", ("cifar-10-batches-py", "cifar-10-batches-py-partial"))
NEEDS = {"02_cifar10.py": _CIFAR, "03_nas.py": _CIFAR, "04_cartpole.py": None}
"""What each script reads, besides MNIST: a dataset name and the folders that hold it (None: no dataset)."""


def _needs_data(script: str) -> None:
    if script in NEEDS and NEEDS[script] is None:
        return
    root = _data_root()
    name, folders = NEEDS.get(script, ("MNIST", ("MNIST/raw",)))
    if root is None or not any((Path(root) / f).is_dir() for f in folders):
        msg = f"{name} not found: set GTN_EDU_DATA to a folder holding {' or '.join(folders)} (CI does)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI always has the data: a missing copy is a broken setup, not a skip
        pytest.skip(msg)


def test_there_are_tutorials():
    assert TUTORIALS, "no tutorials/NN_*.py found"


@pytest.mark.parametrize("path", TUTORIALS + DOC_SCRIPTS, ids=lambda p: p.name)
def test_tutorial_runs_at_tiny_size(path: Path, tmp_path: Path):
    _needs_data(path.name)
    proc = run_script(path, tmp_path)
    assert proc.returncode == 0, (f"{path.name} failed (exit {proc.returncode}).\n--- stdout (end) ---\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr (end) ---\n{proc.stderr[-3000:]}")


def test_a_broken_tutorial_fails(tmp_path: Path):
    """The runner really reports failures: a script that raises must not pass."""
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %%\nimport os\nassert os.environ['GTN_EDU_TUTORIAL_SIZE'] == 'tiny'\n"
                      "raise RuntimeError('this tutorial is broken')\n")
    proc = run_script(broken, tmp_path, timeout=60)
    assert proc.returncode != 0 and "this tutorial is broken" in proc.stderr


def test_tutorials_are_jupytext_percent_scripts():
    for path in TUTORIALS:
        text = path.read_text()
        assert "format_name: percent" in text and "# %% [markdown]" in text, f"{path.name} is not percent format"


def test_every_public_class_has_an_api_page():
    """Each public name of gtn_edu is rendered by some `::: module` page of docs/api/."""
    pages = {line.split(":::")[1].strip() for page in (ROOT / "docs" / "api").glob("*.md")
             for line in page.read_text().splitlines() if line.startswith(":::")}
    missing = [name for name in gtn_edu.__all__ if getattr(gtn_edu, name).__module__ not in pages]
    assert not missing, f"public names without an API page under docs/api/: {missing}"
