"""Deprecated home of `gtn_edu.fast.compiled` (moved there in 0.2): importing it warns and gives that module."""

import sys
import warnings

from .fast import compiled as _moved

warnings.warn("gtn_edu.compiled_step moved to gtn_edu.fast.compiled; import it from there", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = _moved
