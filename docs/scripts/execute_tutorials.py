"""Execute a tutorial and store it, outputs included, as the notebook the site shows.

The documentation site does not run the tutorials (a `quick` run takes CPU-minutes); it
renders the notebooks stored in `docs/tutorials/`. This script makes one:

    python docs/scripts/execute_tutorials.py tutorials/01_mnist.py --size quick

It converts `tutorials/NN_name.py` (jupytext percent format) to a notebook, executes it
with nbclient in a `python3` kernel, working directory `tutorials/`, with
`GTN_EDU_TUTORIAL_SIZE=--size`, and writes `docs/tutorials/NN_name.ipynb`. The kernel's
environment: `GTN_EDU_TUTORIAL_OUT` points at `runs/tutorials/` (ignored by git), so the
tutorial's files stay out of the repository; `GTN_EDU_DATA` is kept, or set to
`../shared/data` beside the repository when that exists; `MPLBACKEND` is removed, so the
kernel's inline backend puts the figures into the notebook. Stream outputs are coalesced:
tqdm's carriage-return redraws collapse into the bar's last state.

The notebook's metadata `gtn_edu_run` records the run: size, wall-clock seconds, date,
commit (`+dirty` when `gtn_edu/` or `tutorials/` has uncommitted changes), torch version,
CPU and thread count. `tests/test_tutorial_pages.py` fails when the stored cells no longer
match the tutorial's, and the site prints the run's details above each tutorial.
A failing cell stops the script (exit code 1) and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES = ("tiny", "quick", "paper")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def commit() -> str:
    """`git rev-parse --short HEAD`, with "+dirty" if gtn_edu/ or tutorials/ has uncommitted changes."""
    try:
        dirty = _git("status", "--porcelain", "--", "gtn_edu", "tutorials")
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or `platform.processor()`), with the core count."""
    name = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def kernel_env(size: str, out: Path, cwd: Path) -> dict[str, str]:
    """The environment the kernel inherits (nbclient starts it from this process's environment)."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend puts figures into the notebook
    env["GTN_EDU_TUTORIAL_SIZE"] = size
    env["GTN_EDU_TUTORIAL_OUT"] = os.path.relpath(out, cwd)  # printed by the tutorial: no local paths
    shared = ROOT.parent / "shared" / "data"
    if "GTN_EDU_DATA" in env:
        env["GTN_EDU_DATA"] = str(Path(env["GTN_EDU_DATA"]).resolve())  # relative to where you ran this
    elif shared.is_dir():
        env["GTN_EDU_DATA"] = str(shared.resolve())
    # Without ipywidgets, tqdm warns inside a kernel and falls back to its text bar, which
    # is what a static page can show anyway: keep the warning off the page.
    warnings = [w for w in env.get("PYTHONWARNINGS", "").split(",") if w]
    env["PYTHONWARNINGS"] = ",".join(["ignore:IProgress not found", *warnings])
    return env


def execute(script: Path, size: str, out: Path, dest: Path) -> Path:
    """Run `script` at `size` in a fresh kernel and write the executed notebook to `dest`."""
    import jupytext
    import nbformat
    import torch
    from nbclient import NotebookClient

    nb = jupytext.read(script)
    cwd = ROOT / "tutorials"
    out.mkdir(parents=True, exist_ok=True)
    saved, env = dict(os.environ), kernel_env(size, out, cwd)  # kernel_env reads os.environ: before clear()
    os.environ.clear()
    os.environ.update(env)
    try:
        client = NotebookClient(nb, kernel_name="python3", timeout=None, allow_errors=False,
                                coalesce_streams=True, resources={"metadata": {"path": str(cwd)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
        threads = torch.get_num_threads()  # what the kernel had too: it inherits this environment
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nb.metadata["gtn_edu_run"] = {
        "size": size,
        "seconds": round(seconds, 1),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "threads": threads,
    }
    without_local_paths(nb, {env["GTN_EDU_DATA"]: "$GTN_EDU_DATA", str(ROOT): "<repo>"})
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def without_local_paths(nb, replacements: dict[str, str]) -> None:
    """Replace this machine's folders in the notebook's text outputs (`<repo>/runs/...`, `$GTN_EDU_DATA/...`).

    A stored page shows a real run, but not where it ran: a reader's folders differ. Longer
    paths go first, so a data root inside the repository reads as `$GTN_EDU_DATA`.
    """
    order = sorted(replacements, key=len, reverse=True)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                for path in order:
                    output["text"] = output["text"].replace(path, replacements[path])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tutorials", nargs="+", type=Path, help="tutorials/NN_name.py files")
    ap.add_argument("--size", choices=SIZES, default="quick", help="GTN_EDU_TUTORIAL_SIZE (default: quick)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tutorials",
                    help="GTN_EDU_TUTORIAL_OUT: where the tutorials write their files (default: runs/tutorials)")
    args = ap.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    for script in args.tutorials:
        script = script.resolve()
        dest = ROOT / "docs" / "tutorials" / f"{script.stem}.ipynb"
        print(f"executing {script.relative_to(ROOT)} at size {args.size} ...", flush=True)
        try:
            execute(script, args.size, args.out.resolve(), dest)
        except CellExecutionError as err:
            print(f"{script.name}: a cell failed, nothing written\n{err}", file=sys.stderr)
            return 1
        run = json.loads(dest.read_text())["metadata"]["gtn_edu_run"]
        print(f"wrote {dest.relative_to(ROOT)} ({run['seconds'] / 60:.1f} min, commit {run['commit']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
