"""Shared output helpers for the benchmark scripts: device labels, JSON, docs fragments.

Every script writes three things into its `--out` folder: a JSON of numbers, PNG
figures, and a markdown fragment (tables with the device and settings beside them),
named `*.md.txt` so that mkdocs does not take it for a page of its own.
When the folder is the docs' `docs/figures/`, the fragment is also pasted into
`docs/benchmarks.md` between the markers `<!-- NAME:begin -->` and `<!-- NAME:end -->`,
so one command refreshes the page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

__all__ = ["REPO", "DOCS_FIGURES", "DOCS_PAGE", "device_label", "environment", "write_json", "update_docs",
           "pyplot", "is_docs_folder", "plan_parser"]

REPO = Path(__file__).resolve().parents[1]
DOCS_FIGURES = REPO / "docs" / "figures"
DOCS_PAGE = REPO / "docs" / "benchmarks.md"


def device_label(device: str) -> str:
    """A human label of the device numbers were measured on, e.g. 'NVIDIA H100 80GB HBM3'."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads > 1 else ''}"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gtn_edu"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty gtn_edu" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: str) -> dict:
    """Device, versions and commit, stored beside every number."""
    return {"device": device, "device_label": device_label(device), "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(), "commit": _git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def plan_parser(doc: str, plans) -> argparse.ArgumentParser:
    """A script's parser with its plans as one required choice (`--smoke`, `--quick`, ...; `args.plan`)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    size = ap.add_mutually_exclusive_group(required=True)
    for name in plans:
        size.add_argument(f"--{name}", dest="plan", action="store_const", const=name)
    return ap


def write_json(path: Path, data: dict) -> Path:
    """Write `data` as indented JSON (via a temporary file, so a kill never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)
    return path


def is_docs_folder(out: Path) -> bool:
    """Whether `out` is the docs' figures folder (then the docs page is refreshed too)."""
    return out.resolve() == DOCS_FIGURES.resolve()


def update_docs(name: str, fragment: str, page: Path = DOCS_PAGE) -> bool:
    """Replace the text between `<!-- name:begin -->` and `<!-- name:end -->` in `page`."""
    if not page.exists():
        return False
    text = page.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(f"{head}{begin}\n{fragment.strip()}\n{end}{tail}")
    return True


def pyplot():
    """matplotlib's pyplot with the Agg backend (`pip install -e ".[bench]"`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
