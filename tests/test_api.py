"""The public API reads well: docstrings render as written."""

import inspect

import gtn_edu


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


def test_import_paths_of_gtn_edu_0_1_still_work():
    """Names moved to new modules stay importable from where they were."""
    from gtn_edu.learner import LearnerState
    from gtn_edu.meta import Callback, MetaLossDivergedError, MetaTrainer, RealBatchLoss
    from gtn_edu.objective import RealBatchLoss as moved

    assert RealBatchLoss is moved and gtn_edu.RealBatchLoss is moved
    state = LearnerState({}, {"w": 1}, {})
    assert state.momentum is state.momentum_buffer  # the old field name reads the buffer
    assert all(callable(x) for x in (Callback, MetaLossDivergedError, MetaTrainer))
