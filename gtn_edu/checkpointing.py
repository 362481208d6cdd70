"""The old home of `RecomputedUnroll` (as `CheckpointedUnroll`), kept so old imports work.

Issue 24 gave "checkpoint" one meaning, a saved training run: the unroll mode that stores
each step's state and recomputes it backwards is now `mode="recompute"`, in
`gtn_edu.recompute`. Importing this module warns.
"""

import warnings

from .recompute import RecomputedUnroll

__all__ = ["CheckpointedUnroll"]

CheckpointedUnroll = RecomputedUnroll
"""The old name of `gtn_edu.recompute.RecomputedUnroll`."""

warnings.warn("gtn_edu.checkpointing.CheckpointedUnroll is now gtn_edu.recompute.RecomputedUnroll",
              DeprecationWarning, stacklevel=2)
