"""mkdocs hook: the tutorial pages show stored runs; the tutorial scripts are downloads.

The tutorials live beside the package as jupytext percent-format scripts,
`tutorials/NN_name.py`. The site does not execute them: each page renders
`docs/tutorials/NN_name.ipynb`, a notebook executed at the `quick` size and stored with
its outputs by

    python docs/scripts/execute_tutorials.py tutorials/NN_name.py --size quick

which is how to refresh a page after changing its tutorial (`tests/test_tutorial_pages.py`
fails while a stored notebook's cells differ from its script's). CI checks that every
tutorial still runs by executing it at the `tiny` size under pytest
(`tests/test_tutorials.py`).

This hook publishes each `tutorials/NN_name.py` as a static file in the page's folder (the
tutorial links to it as `NN_name.py`), and writes the stored run's details (the notebook's
`gtn_edu_run` metadata) in a note under the page's title.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]


def on_files(files: Files, config) -> Files:
    for path in sorted((ROOT / "tutorials").glob("[0-9]*.py")):
        file = File(f"tutorials/{path.name}", str(ROOT), config["site_dir"], config["use_directory_urls"])
        if config["use_directory_urls"]:  # the page is tutorials/NN_name/index.html
            file.dest_uri = f"tutorials/{path.stem}/{path.name}"
        files.append(file)
    return files


def on_page_content(content: str, page, config, files) -> str:
    src = page.file.src_uri
    if not (src.startswith("tutorials/") and src.endswith(".ipynb")):
        return content
    run = json.loads(Path(page.file.abs_src_path).read_text()).get("metadata", {}).get("gtn_edu_run")
    if not run:
        return content
    e = {k: html.escape(str(v)) for k, v in run.items()}
    threads = f'{run["threads"]} torch thread{"s" if run["threads"] != 1 else ""}'
    note = (f'<div class="admonition info"><p class="admonition-title">Which run this page shows</p>'
            f'<p>Outputs below come from a run at size <code>{e["size"]}</code> on {e["cpu"]} ({threads}), '
            f'{e["date"][:10]}, commit <code>{e["commit"]}</code>, {run["seconds"] / 60:.1f} min. '
            f'CI executes this tutorial at the <code>tiny</code> size.</p></div>')
    head, sep, rest = content.partition("</h1>")  # under the title, or first if there is none
    return head + sep + note + rest if sep else note + content
