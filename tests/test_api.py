"""The public API reads well: docstrings render as written."""

import importlib
import inspect

import pytest

import gtn_edu
import gtn_edu.nas as nas


def _docstrings():
    for name in gtn_edu.__all__:
        obj = getattr(gtn_edu, name)
        yield name, inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                doc = getattr(member, "__doc__", None)
                if isinstance(doc, str) and not attr.startswith("__"):
                    yield f"{name}.{attr}", doc


def test_no_control_characters_in_docstrings():
    """A non-raw docstring turns "\\frac" into a form feed and "\\beta" into a backspace on the API pages."""
    bad = [name for name, doc in _docstrings() if any(c in doc for c in "\f\b\a\v")]
    assert not bad, f"docstrings with control characters (make them r-strings): {bad}"


def test_names_moved_to_new_modules_still_import_from_their_old_homes():
    """Names moved to new modules stay importable from where they were."""
    from gtn_edu.learner import LearnerState
    from gtn_edu.meta import Callback, MetaLossDivergedError, MetaTrainer, RealBatchLoss
    from gtn_edu.objective import RealBatchLoss as moved

    assert RealBatchLoss is moved and gtn_edu.RealBatchLoss is moved
    state = LearnerState({}, {"w": 1}, {})
    assert state.momentum_buffer is state.opt_state  # the buffer's name before inner rules kept other state
    assert all(callable(x) for x in (Callback, MetaLossDivergedError, MetaTrainer))


NAS_API = {
    # the search space and its operations
    "Genotype", "CellSpace", "CellNetwork", "NASConfig", "FINAL_CHANGES", "OPERATIONS", "PAPER_OPERATIONS",
    "register_operation", "ConvBN",
    # judges of an architecture, and the cached evaluator that runs one
    "Evaluation", "GTNEvaluation", "RealDataEvaluation", "EpochsEvaluation", "SynFlowEvaluation", "NASWOTEvaluation",
    "NASEvaluator", "PROXY_SEEDS", "score_architectures", "mean_over_seeds",
    # the ground truth, rank statistics and tables
    "GroundTruth", "rank_correlations", "paired_bootstrap", "seed_to_seed", "proxy_table", "markdown_table",
    # searches and figures
    "sample_specs", "random_search", "compare_searches", "simulate_searches", "truth_table", "plot_cell",
    "plot_proxies", "plot_searches",
}
"""What `gtn_edu.nas` exports (issue 24, item 5): what tutorial 3, the docs and a search need."""


def test_nas_exports_the_user_api_only():
    assert len(nas.__all__) == len(NAS_API) and set(nas.__all__) == NAS_API
    assert all(hasattr(nas, name) for name in nas.__all__)
    assert not set(nas.MOVED) & NAS_API
    in_namespace = {name for name in vars(nas) if not name.startswith("_")}
    assert not set(nas.MOVED) & in_namespace  # the helpers are not in the package's namespace


def test_nas_helpers_still_import_with_a_warning():
    """`from gtn_edu.nas import canonical` (etc.) worked before issue 24 and still does, naming the module."""
    assert {"canonical", "fingerprint", "Result", "top_half"} <= set(nas.MOVED)
    for name, module in nas.MOVED.items():
        scope = {}
        with pytest.warns(DeprecationWarning, match=f"from {module} import {name}"):
            exec(f"from gtn_edu.nas import {name} as got", scope)
        assert scope["got"] is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        nas.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from gtn_edu.nas import no_such_name", {})
