"""Neural architecture search with GTN: the cell search space of section 3.3 and appendix C.

* `OPERATIONS`, `register_operation`, `PAPER_OPERATIONS`: the operations a node may apply;
* `Genotype`: a normal and a reduction cell of B nodes, sampled uniformly, JSON round-trip;
* `CellNetwork`: a genotype's cells stacked by NAO's blueprint into a `Learner`;
* `CellSpace`: the space as an `ArchSpace` (`sample_spec` / `build`);
* `NASConfig`: the space's settings, with the paper's values as defaults;
* `NASEvaluator`: scores a list of genotypes with one `Evaluation`, cached on disk and resumable;
* evaluations: `GTNEvaluation` (T steps on a teacher's data), `RealDataEvaluation`,
  `EpochsEvaluation` (k epochs of real data), and the zero-cost proxies `SynFlowEvaluation`
  and `NASWOTEvaluation`; subclass `Evaluation` for another;
* random search (`random_search`, `compare_searches`, `simulate_searches`): the paper's
  search, and proxies compared by the ground truth of the architectures they pick;
* `GroundTruth`: a stored table of real-training results (`benchmarks/nas_groundtruth.py`);
* `plot_cell`, `plot_proxies`, `plot_searches`: a cell as a graph, Figure 3c, search outcomes;
* `score_architectures`, `mean_over_seeds`, `proxy_table`, `markdown_table`: several
  evaluations of the same architectures, averaged over initialisations (`PROXY_SEEDS`),
  ranked against a ground truth (Figure 3c's experiment);
* rank statistics (`gtn_edu.nas.stats`): Spearman over all architectures and over the
  proxy's top half, bootstrap intervals, a paired bootstrap of two proxies, the ground
  truth's seed-to-seed ceiling.
"""

from .compare import PROXY_SEEDS, markdown_table, mean_over_seeds, proxy_table, score_architectures
from .config import FINAL_CHANGES, NASConfig
from .draw import plot_cell, plot_proxies, plot_searches
from .evaluations import EpochsEvaluation, Evaluation, GTNEvaluation, RealDataEvaluation, fingerprint
from .evaluator import NASEvaluator, Result, canonical
from .genotype import Genotype, Node
from .groundtruth import GroundTruth
from .network import Cell, CellNetwork
from .ops import OPERATIONS, PAPER_OPERATIONS, ConvBN, FactorizedReduce, Pool, register_operation
from .proxies import NASWOTEvaluation, SynFlowEvaluation
from .search import SearchResult, compare_searches, random_search, sample_specs, simulate_searches, truth_table
from .space import CellSpace, check_cell_space
from .stats import (
    PairedDifference,
    RankCorrelation,
    bootstrap_ci,
    paired_bootstrap,
    rank_correlations,
    seed_to_seed,
    spearman,
    top_half,
)

__all__ = [
    "OPERATIONS", "PAPER_OPERATIONS", "register_operation", "ConvBN", "FactorizedReduce", "Pool", "Genotype",
    "Node", "Cell", "CellNetwork", "CellSpace", "check_cell_space", "NASConfig", "FINAL_CHANGES",
    "Evaluation", "GTNEvaluation", "RealDataEvaluation", "EpochsEvaluation", "SynFlowEvaluation",
    "NASWOTEvaluation", "fingerprint", "NASEvaluator", "Result", "canonical",
    "SearchResult", "sample_specs", "random_search", "compare_searches", "simulate_searches", "truth_table",
    "GroundTruth", "plot_cell", "plot_proxies", "plot_searches", "PROXY_SEEDS", "score_architectures",
    "mean_over_seeds", "proxy_table", "markdown_table", "RankCorrelation", "PairedDifference", "spearman", "top_half",
    "bootstrap_ci", "paired_bootstrap", "rank_correlations", "seed_to_seed",
]
