"""mkdocs hook: publish the tutorials in `tutorials/` as executed pages under `tutorials/`.

The tutorials live beside the package (where pytest and jupytext find them), not inside
`docs/`. This hook adds every `tutorials/NN_*.py` to the site's files before mkdocs-jupyter
looks at them, so the nav can name `tutorials/01_mnist.py` and mkdocs-jupyter executes and
renders it.

The build executes each tutorial at the size in `GTN_EDU_TUTORIAL_SIZE`. Unless you set
it, the docs build uses `tiny` (seconds), so `mkdocs serve` stays quick while you edit;
`GTN_EDU_TUTORIAL_SIZE=quick mkdocs build` renders the CPU-minutes version. `on_config`
also prepares the executing kernel's environment (see the comments there).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("mkdocs.hooks.tutorials")


def _prepend_env(name: str, value: str, sep: str) -> None:
    """Put `value` first in the list-valued environment variable `name` (once)."""
    items = [v for v in os.environ.get(name, "").split(sep) if v]
    if value not in items:
        os.environ[name] = sep.join([value, *items])


def on_config(config):
    size = os.environ.setdefault("GTN_EDU_TUTORIAL_SIZE", "tiny")  # the executing kernel inherits it
    log.info("tutorials execute with GTN_EDU_TUTORIAL_SIZE=%s", size)
    # Without ipywidgets, tqdm warns inside a kernel and falls back to its text bar, which
    # is what a static page can show anyway: keep the warning off the rendered pages.
    _prepend_env("PYTHONWARNINGS", "ignore:IProgress not found", ",")
    _coalesce_streams()
    return config


def _coalesce_streams() -> None:
    """Make nbclient merge each cell's stream outputs and resolve carriage returns.

    A tqdm bar redraws itself with "\r"; without this, the page shows one line per redraw.
    Jupyter front ends do the same merging on screen. nbclient can do it
    (`NotebookClient.coalesce_streams`), but the switch is not a configurable trait, so
    set it on every ExecutePreprocessor that mkdocs-jupyter creates.
    """
    from nbconvert.preprocessors import ExecutePreprocessor

    if getattr(ExecutePreprocessor, "_gtn_edu_coalesce", False):
        return
    init = ExecutePreprocessor.__init__

    def __init__(self, **kw):
        init(self, **kw)
        self.coalesce_streams = True

    ExecutePreprocessor.__init__ = __init__
    ExecutePreprocessor._gtn_edu_coalesce = True


@event_priority(100)  # before mkdocs-jupyter wraps notebook files
def on_files(files: Files, config) -> Files:
    for path in sorted((ROOT / "tutorials").glob("[0-9]*.py")):
        files.append(File(f"tutorials/{path.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
