"""gtn_edu: Generative Teaching Networks, written to be read, taught and extended.

The public API, re-exported here:

* data flow: `Curriculum` -> `Teacher` -> `UnrolledSGD(Learner)` -> meta-loss;
* baselines: `RealData`, `DistilledData`;
* outer loop: `MetaTrainer` with `OuterAdam`, `Callback`; what it minimises: `MetaObjective`, `RealBatchLoss`
  (with `RandomCropFlip` to augment its real batches);
* evaluation: `few_step_accuracy`, `accuracy_per_step`, `ensemble_accuracy`;
* configs: `GTNConfig`, `MNISTConfig`, `CIFARConfig`;
* adding what a config names: `register_arch_space` (`GTNConfig.arch`), `register_curriculum_variant`
  (`GTNConfig.curriculum`), `register_dataset` of a `DatasetSpec` (`GTNConfig.dataset`, `load_dataset`);
  an arm kind of `build_arm`: `gtn_edu.experiment.register_arm_kind`;
* random-number streams: `make_rng`, `derive_seed`.

Random-number generators (`torch.Generator`) are called `rng` throughout: in a library
about a generator network, "generator" always means the GTN.
"""

from .arch_space import ArchSpace, ConvSpace, MLPSpace, register_arch_space
from .augment import RandomCropFlip
from .config import CIFARConfig, GTNConfig, MNISTConfig
from .curriculum import Curriculum, register_curriculum_variant
from .data import DataNotFoundError, Dataset, Split, load_dataset
from .datasets import DatasetSpec, register_dataset
from .evaluate import FewStepResult, accuracy_per_step, ensemble_accuracy, few_step_accuracy
from .learner import ConvLearner, Learner, LearnerState, MLPLearner
from .meta import Callback, MetaLossDivergedError, MetaTrainer, OuterAdam
from .nn import LearnerBatchNorm, UpsampleConv2d, WNConv2d, WNLinear
from .objective import MetaObjective, RealBatchLoss
from .seeding import derive_seed, make_rng
from .teacher import BaseTeacher, DistilledData, RealData, Teacher, TensorBatches, XYTeacher
from .unrolled import UnrolledSGD

__version__ = "0.1.0"

__all__ = [
    "ArchSpace", "ConvSpace", "MLPSpace", "CIFARConfig", "GTNConfig", "MNISTConfig", "Curriculum",
    "DataNotFoundError", "Dataset", "Split", "load_dataset", "FewStepResult", "accuracy_per_step",
    "ensemble_accuracy", "few_step_accuracy", "ConvLearner", "Learner", "LearnerState", "MLPLearner",
    "Callback", "MetaLossDivergedError", "MetaTrainer", "OuterAdam", "MetaObjective", "RealBatchLoss",
    "LearnerBatchNorm",
    "UpsampleConv2d", "WNConv2d", "WNLinear", "BaseTeacher", "DistilledData", "RealData", "Teacher", "TensorBatches",
    "XYTeacher", "UnrolledSGD", "derive_seed", "make_rng", "RandomCropFlip", "register_arch_space",
    "register_curriculum_variant", "DatasetSpec", "register_dataset",
]
