"""The site's tutorial pages are stored runs of the current tutorials.

The site renders `docs/tutorials/NN_name.ipynb`, a notebook that
`docs/scripts/execute_tutorials.py` executed at the quick size; it does not run
`tutorials/NN_name.py` itself. These tests fail when a stored notebook is missing, when its
cells (types and sources; outputs and metadata aside) differ from the tutorial script's,
when it is a tiny-size run, or when a code cell was not executed or shows an error.
(`tests/test_tutorials.py` checks that the tutorials themselves run, at the tiny size.)
"""

from __future__ import annotations

import re
from itertools import zip_longest
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.py"))
PAGES = ROOT / "docs" / "tutorials"


def _refresh(script: Path) -> str:
    return f"rerun `python docs/scripts/execute_tutorials.py tutorials/{script.name} --size quick`"


def _cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def cell_difference(want: list[tuple[str, str]], got: list[tuple[str, str]]) -> str | None:
    """None when the two cell lists are equal, else where they first differ."""
    for i, (w, g) in enumerate(zip(want, got)):
        if w[0] != g[0]:
            return f"cell {i} differs: a {w[0]} cell in the tutorial, a {g[0]} cell on the page"
        if w[1] != g[1]:
            lines = list(zip_longest(w[1].splitlines(), g[1].splitlines(), fillvalue="<none>"))
            n, (a, b) = next(((n, ab) for n, ab in enumerate(lines) if ab[0] != ab[1]), (-1, ("", "")))
            if n < 0:
                return f"cell {i} ({w[0]}) differs in its line endings or trailing newlines"
            return f"cell {i} ({w[0]}) differs at its line {n + 1}: the tutorial has {a!r}, the page {b!r}"
    if len(want) != len(got):
        return f"the tutorial has {len(want)} cells, the page {len(got)}"
    return None


def _page(script: Path):
    page = PAGES / f"{script.stem}.ipynb"
    assert page.exists(), f"no stored page {page.relative_to(ROOT)} for {script.name}: {_refresh(script)}"
    return jupytext.read(page)


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_page_shows_the_current_tutorial(script: Path):
    diff = cell_difference(_cells(jupytext.read(script)), _cells(_page(script)))
    assert diff is None, f"docs/tutorials/{script.stem}.ipynb is stale ({diff}): {_refresh(script)}"


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_page_is_a_complete_run_above_tiny_size(script: Path):
    nb = _page(script)
    run = nb.metadata.get("gtn_edu_run", {})
    assert run.get("size") not in (None, "tiny"), (
        f"docs/tutorials/{script.stem}.ipynb holds a run at size {run.get('size')!r}: {_refresh(script)}")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"code cell {i} was not executed: {_refresh(script)}"
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"code cell {i} shows an error ({errors[0].get('ename')}): {_refresh(script)}"


LOCAL_PATH = re.compile(r"(?<![\w.<$])/(?:work|root|home|tmp|Users|mnt)/[\w./-]+")


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_page_prints_no_folder_of_the_machine_that_ran_it(script: Path):
    """Outputs name `<repo>/...` and `$GTN_EDU_DATA/...`, never the absolute folders of the run's machine."""
    for i, cell in enumerate(_page(script).cells):
        for out in cell.get("outputs", []):
            found = LOCAL_PATH.findall(out.get("text", ""))
            assert not found, f"code cell {i} prints {found[0]!r}: {_refresh(script)}"


def test_a_stale_page_is_detected():
    """The comparison can fail: an edited source, a changed cell type, a missing cell."""
    assert TUTORIALS, "no tutorials/NN_*.py found"
    cells = _cells(jupytext.read(TUTORIALS[0]))
    assert cell_difference(cells, list(cells)) is None
    kind, source = cells[-1]
    edited = [*cells[:-1], (kind, source + "\nprint('one more line')")]
    assert "differs" in cell_difference(cells, edited)
    retyped = [("raw" if c[0] != "raw" else "markdown", c[1]) if i == 1 else c for i, c in enumerate(cells)]
    assert "cell 1 differs" in cell_difference(cells, retyped)
    assert "cells" in cell_difference(cells, cells[:-1])
