"""Deprecated home of `gtn_edu.fast.stacked` (moved there in 0.2): importing it warns and gives that module."""

import sys
import warnings

from .fast import stacked as _moved

warnings.warn("gtn_edu.stacked moved to gtn_edu.fast.stacked; import it from there", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = _moved
