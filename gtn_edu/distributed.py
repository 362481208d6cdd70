"""Deprecated home of `gtn_edu.fast.distributed` (moved there in 0.2): importing it warns and gives that module."""

import sys
import warnings

from .fast import distributed as _moved

warnings.warn("gtn_edu.distributed moved to gtn_edu.fast.distributed; import it from there", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = _moved
