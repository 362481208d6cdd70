"""Neural architecture search with GTN: the cell search space of section 3.3 and appendix C.

* `OPERATIONS`, `register_operation`, `PAPER_OPERATIONS`: the operations a node may apply
  (`ConvBN`: the conv block a new one can be built from);
* `Genotype`: a normal and a reduction cell of B nodes, sampled uniformly, JSON round-trip;
* `CellNetwork`: a genotype's cells stacked by NAO's blueprint into a `Learner`;
* `CellSpace`: the space as an `ArchSpace` (`sample_spec` / `build`);
* `NASConfig`: the space's settings, with the paper's values as defaults (`FINAL_CHANGES`:
  the final network's);
* `NASEvaluator`: scores a list of genotypes with one `Evaluation`, cached on disk and resumable;
* evaluations: `GTNEvaluation` (T steps on a teacher's data), `RealDataEvaluation`,
  `EpochsEvaluation` (k epochs of real data), and the zero-cost proxies `SynFlowEvaluation`
  and `NASWOTEvaluation`; subclass `Evaluation` for another;
* random search (`sample_specs`, `random_search`, `compare_searches`, `simulate_searches`,
  `truth_table`): the paper's search, and proxies compared by the ground truth of the
  architectures they pick;
* `GroundTruth`: a stored table of real-training results (`benchmarks/nas_groundtruth.py`);
* `plot_cell`, `plot_proxies`, `plot_searches`: a cell as a graph, Figure 3c, search outcomes;
* `score_architectures`, `mean_over_seeds`, `proxy_table`, `markdown_table`: several
  evaluations of the same architectures, averaged over initialisations (`PROXY_SEEDS`),
  ranked against a ground truth (Figure 3c's experiment);
* rank statistics: `rank_correlations` (Spearman over all architectures and over the
  proxy's top half, with bootstrap intervals), `paired_bootstrap` (two proxies against
  each other), `seed_to_seed` (the ground truth's own ceiling).

The package exports what a user needs; the helpers behind it (`canonical`, `Result`,
`spearman`, `top_half`, the network's `Cell`, ...) live in their submodules, listed in
`MOVED`. Importing one of those from `gtn_edu.nas` still works, with a DeprecationWarning
that names the module to import it from.
"""

import importlib
import warnings

from .compare import PROXY_SEEDS, markdown_table, mean_over_seeds, proxy_table, score_architectures
from .config import FINAL_CHANGES, NASConfig
from .draw import plot_cell, plot_proxies, plot_searches
from .evaluations import EpochsEvaluation, Evaluation, GTNEvaluation, RealDataEvaluation
from .evaluator import NASEvaluator
from .genotype import Genotype
from .groundtruth import GroundTruth
from .network import CellNetwork
from .ops import OPERATIONS, PAPER_OPERATIONS, ConvBN, register_operation
from .proxies import NASWOTEvaluation, SynFlowEvaluation
from .search import compare_searches, random_search, sample_specs, simulate_searches, truth_table
from .space import CellSpace
from .stats import paired_bootstrap, rank_correlations, seed_to_seed

__all__ = [
    "OPERATIONS", "PAPER_OPERATIONS", "register_operation", "ConvBN", "Genotype", "CellNetwork", "CellSpace",
    "NASConfig", "FINAL_CHANGES", "Evaluation", "GTNEvaluation", "RealDataEvaluation", "EpochsEvaluation",
    "SynFlowEvaluation", "NASWOTEvaluation", "NASEvaluator", "sample_specs", "random_search", "compare_searches",
    "simulate_searches", "truth_table", "GroundTruth", "PROXY_SEEDS", "score_architectures", "mean_over_seeds",
    "proxy_table", "markdown_table", "rank_correlations", "paired_bootstrap", "seed_to_seed", "plot_cell",
    "plot_proxies", "plot_searches",
]

MOVED = {
    "Node": "gtn_edu.nas.genotype", "Cell": "gtn_edu.nas.network", "FactorizedReduce": "gtn_edu.nas.ops",
    "Pool": "gtn_edu.nas.ops", "check_cell_space": "gtn_edu.nas.space", "fingerprint": "gtn_edu.data",
    "Result": "gtn_edu.nas.evaluator", "canonical": "gtn_edu.nas.evaluator", "SearchResult": "gtn_edu.nas.search",
    "RankCorrelation": "gtn_edu.nas.stats", "PairedDifference": "gtn_edu.nas.stats", "spearman": "gtn_edu.nas.stats",
    "top_half": "gtn_edu.nas.stats", "bootstrap_ci": "gtn_edu.nas.stats",
}
"""Names `gtn_edu.nas` exported before issue 24 and no longer does -> the module to import each from."""


def __getattr__(name: str):
    """`gtn_edu.nas.<old name>` (PEP 562): the object from its module of `MOVED`, with a DeprecationWarning."""
    if name not in MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"gtn_edu.nas.{name} is no longer exported by gtn_edu.nas; use `from {MOVED[name]} import "
                  f"{name}`", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(MOVED[name]), name)
