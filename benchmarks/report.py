"""Shared output helpers for the benchmark scripts: device labels, JSON, docs fragments.

Every script writes three things into its `--out` folder: a JSON of numbers, PNG
figures, and a markdown fragment (tables with the device and settings beside them),
named `*.md.txt` so that mkdocs does not take it for a page of its own.
When the folder is the docs' `docs/figures/`, the fragment is also pasted into the
benchmarks page that holds the markers `<!-- NAME:begin -->` and `<!-- NAME:end -->`
(one page per experiment under `docs/benchmarks/`), so one command refreshes the page.
Fragments link figures as `figures/NAME.png`, relative to `docs/`; `update_docs` adjusts
the links for a page in a subfolder.
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

__all__ = ["REPO", "DOCS", "DOCS_FIGURES", "DOCS_BENCHMARKS", "DOCS_PAGE", "device_label", "environment",
           "write_json", "docs_pages", "update_docs", "pyplot", "is_docs_folder", "plan_parser", "arm_args",
           "train_arms"]

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
DOCS_FIGURES = DOCS / "figures"
DOCS_BENCHMARKS = DOCS / "benchmarks"       # one page per experiment, index.md first
DOCS_PAGE = DOCS_BENCHMARKS / "index.md"    # the benchmarks' landing page (was docs/benchmarks.md)
_LEGACY_PAGE = DOCS / "benchmarks.md"       # the single page before the split, if a checkout still has it


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


def arm_args(doc: str, plans, arms, stem: str, argv=None) -> tuple[argparse.Namespace, Path]:
    """The command line of a script whose arms may run one per process, and its per-arm folder.

    Options: the plans, `--arm` (train one arm, then stop), `--data-root`, `--out` (default
    docs/figures), `--runs` (default `runs/<stem>_<plan>`, created) and `--threads`
    (applied here). Returns (the arguments, the per-arm folder).
    """
    ap = plan_parser(doc, plans)
    ap.add_argument("--arm", choices=sorted(arms), default=None, help="train this arm only (default: all, then report)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--runs", type=Path, default=None, help=f"per-arm results (default runs/{stem}_<plan>)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.runs or REPO / "runs" / f"{stem}_{args.plan}"
    runs.mkdir(parents=True, exist_ok=True)
    return args, runs


def train_arms(args: argparse.Namespace, arms, train, summary) -> dict | None:
    """`--arm NAME`: `train(NAME)`, print `NAME: summary(result)` and return None; else `{name: train(name)}`."""
    if args.arm:
        print(f"{args.arm}: {summary(train(args.arm))}")
        return None
    return {name: train(name) for name in arms}


def write_json(path: Path, data: dict) -> Path:
    """Write `data` as indented JSON (via a temporary file, so a kill never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)
    return path


def is_docs_folder(out: Path) -> bool:
    """Whether `out` is the docs' figures folder (then the benchmarks pages are refreshed too)."""
    return out.resolve() == DOCS_FIGURES.resolve()


def docs_pages() -> list[Path]:
    """The pages `update_docs` looks in: `docs/benchmarks/*.md`, and `docs/benchmarks.md` if it exists."""
    pages = sorted(DOCS_BENCHMARKS.glob("*.md"))
    return pages + [_LEGACY_PAGE] if _LEGACY_PAGE.exists() else pages


def _relink(fragment: str, page: Path) -> str:
    """Rewrite the fragment's `](figures/` links (relative to `docs/`) for `page`'s folder."""
    try:
        depth = len(page.resolve().parent.relative_to(DOCS.resolve()).parts)
    except ValueError:  # a page outside docs/: links left as they are
        return fragment
    return fragment.replace("](figures/", "](" + "../" * depth + "figures/") if depth else fragment


def update_docs(name: str, fragment: str, page: Path | None = None) -> bool:
    """Replace the text between `<!-- name:begin -->` and `<!-- name:end -->` with `fragment`.

    Without `page`, every page of `docs_pages()` that holds both markers is updated (there
    should be one). The fragment's figure links `](figures/...)` are relative to `docs/`; in
    a page one folder deeper they become `](../figures/...)`. Returns whether a page changed.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    done = False
    for path in docs_pages() if page is None else [Path(page)]:
        if not path.exists():
            continue
        text = path.read_text()
        if begin not in text or end not in text:
            continue
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        path.write_text(f"{head}{begin}\n{_relink(fragment, path).strip()}\n{end}{tail}")
        done = True
    return done


def pyplot():
    """matplotlib's pyplot with the Agg backend (`pip install -e ".[bench]"`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
