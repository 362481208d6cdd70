# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 3: GTN data as a cheap judge of architectures (NAS)
#
# Neural architecture search (NAS) needs a score for every candidate network, and the
# honest score, training it fully, costs hours. The paper's reason to build a GTN at all
# (section 3.4) is a cheaper judge: train a candidate for a few steps on GTN data and read
# its accuracy. A judge does not need to be *accurate*, only to put the candidates in the
# right *order*, so the paper reports a rank correlation (Figure 3c: Spearman 0.36 over all
# sampled cells, 0.56 over the half the GTN ranks highest). You will
#
# 1. meet the cell search space and draw a cell;
# 2. load a stored *ground truth*: cells trained for real, twice, with different seeds;
# 3. score the first 40 of them four cheap ways: GTN data, tuned real data (the same number
#    of steps), and two *zero-cost proxies* that train nothing (SynFlow, NASWOT);
# 4. draw Figure 3c and put every judge's rank correlation and cost side by side;
# 5. run random searches with each judge and ask what matters: which judge *picks* better
#    architectures.
#
# **Size switch.** `GTN_EDU_TUTORIAL_SIZE` picks the scale:
#
# | size | what it runs | where, how long |
# |---|---|---|
# | `tiny` | the first 6 stored cells, one initialisation each, the shipped GTN data | any CPU, a minute (CI) |
# | `quick` (default) | the first 40 of the 100 stored cells, the shipped GTN data | 2-core CPU: ~20 min |
# | `paper` | your own ground truth and a Table 3 teacher (see below) | one GPU (`cuda`) |
#
# **What is loaded rather than computed.** The ground truth (100 cells x 2 seeds, 200 real
# trainings, about 100 minutes on 2 CPU cores) ships with the library (`GroundTruth.stored()`, made by
# `benchmarks/nas_groundtruth.py`). So does the GTN data: the T=8 batches and the learned
# lr and momentum of the CIFAR-10 quick run (`gtn_edu.export.shipped("cifar10")`, tutorial 2's
# setting meta-trained for 400 outer iterations; the file also carries the lr and momentum
# its real-data arm learned). To judge with a teacher of your own, point
# `GTN_EDU_NAS_TEACHER` at the folder of a `gtn-edu train --dataset cifar10 --out DIR` run
# (it holds `gtn_checkpoint.pt` and `real_checkpoint.pt`); the paper size needs one. Scores are
# cached as they are computed; `GTN_EDU_NAS_CACHE` names a cache to use instead, such as
# the one `benchmarks/reproduce_nas.py --quick` fills (`runs/repro_nas_quick`): with the
# same teacher and settings the judges' scores are read from it rather than computed
# again, and section 3 prints how many were. CIFAR-10 is read from `GTN_EDU_DATA`;
# offline, the partial copy (4000 training images) is used.

# %%
import datetime
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import gtn_edu
from gtn_edu import DataNotFoundError, load_dataset
from gtn_edu.evaluate import bn_images_for
from gtn_edu.experiment import load_arm
from gtn_edu.export import shipped
from gtn_edu.nas import (
    PROXY_SEEDS,
    Genotype,
    GroundTruth,
    GTNEvaluation,
    NASWOTEvaluation,
    RealDataEvaluation,
    SynFlowEvaluation,
    markdown_table,
    paired_bootstrap,
    plot_cell,
    plot_proxies,
    plot_searches,
    proxy_table,
    score_architectures,
    simulate_searches,
)
from gtn_edu.sizes import device_for

# %%
SIZE = os.environ.get("GTN_EDU_TUTORIAL_SIZE", "quick")
TRUTH = os.environ.get("GTN_EDU_NAS_TRUTH")      # a ground-truth JSON of your own (paper size)
TEACHER = os.environ.get("GTN_EDU_NAS_TEACHER")  # a folder with gtn_checkpoint.pt and real_checkpoint.pt
CACHE = os.environ.get("GTN_EDU_NAS_CACHE")      # a score cache to read first (e.g. runs/repro_nas_quick)
device = device_for(SIZE)  # "cpu"; "cuda" for paper (an error naming the fix without a GPU, or a bad SIZE)
# cells scored, initialisations per cell, candidates per random search, searches: one line per size
n_arch, n_inits, search_n, search_seeds = {"tiny": (6, 1, 3, 50), "quick": (40, 2, 10, 1000),
                                           "paper": (None, 3, 100, 1000)}[SIZE]
proxy_seeds = PROXY_SEEDS[:n_inits]
if SIZE == "tiny":
    TEACHER = None  # the tiny size always checks the shipped data's path
if SIZE == "paper" and not (TRUTH and TEACHER):
    raise RuntimeError("the paper size needs GTN_EDU_NAS_TRUTH (a table from `benchmarks/nas_groundtruth.py "
                       "--device cuda --filters 32 --cells-per-stage 3 ...`) and GTN_EDU_NAS_TEACHER (the --out "
                       "folder of `gtn-edu train --dataset cifar10 --device cuda`)")

OUT = Path(os.environ.get("GTN_EDU_TUTORIAL_OUT", "runs/tutorials")) / "03_nas" / SIZE
OUT.mkdir(parents=True, exist_ok=True)
CACHE = Path(CACHE) if CACHE and SIZE != "tiny" else OUT / "cache"
print(f"size {SIZE!r} on {device}; files go to {OUT}/, scores are cached in {CACHE}/")
print(f"gtn_edu {gtn_edu.__version__}, torch {torch.__version__}, {torch.get_num_threads()} CPU "
      f"threads, {datetime.date.today()}")

# %% [markdown]
# ## 1. The search space
#
# The paper searches NAO's space (appendix C). A candidate is two *cells*, a normal one
# and a reduction one. Each has two inputs, the outputs of the two cells before it (`c0`,
# `c1`), and B=5 nodes; node $i$ picks two earlier states and one of 11 operations for
# each, and adds the results:
#
# $$ h_i = \text{op}_a(h_a) + \text{op}_b(h_b). $$
#
# The states no node reads are concatenated into the cell's output. A *genotype* is just
# these choices, a small JSON value:

# %%
truth = GroundTruth.load(TRUTH) if TRUTH else GroundTruth.stored("cifar10")
if n_arch:
    truth = truth.head(n_arch)
space = truth.space
genotype = Genotype.from_dict(truth.genotypes[0])
print(genotype)
print("as JSON:", truth.genotypes[0]["normal"][:2], "...")

fig, axes = plt.subplots(2, 1, figsize=(11, 6.5))
plot_cell(genotype, "normal", axes[0], title="normal cell (stride 1)")
plot_cell(genotype, "reduce", axes[1], title="reduction cell (stride 2 on c0 and c1)")
fig.tight_layout()
plt.show()

# %% [markdown]
# How many candidates are there? Node $i$ (numbered from 2) chooses each of its two inputs
# among $i$ states and each operation among 11, so a cell has
# $\prod_{i=2}^{6} (11 i)^2$ choices, and a genotype the square of that:

# %%
per_cell = 1
for i in range(2, space.num_nodes + 2):
    per_cell *= (len(space.ops) * i) ** 2
print(f"{per_cell:.2e} cells, {per_cell ** 2:.2e} genotypes (many are the same network written differently)")

# %% [markdown]
# A genotype becomes a network by NAO's *blueprint*: a stem convolution, then three stages
# of N normal cells with a reduction cell between stages (halving the resolution,
# doubling the width from F). The paper searches at N=3, F=32. The stored ground truth was
# computed at a size a CPU affords, printed here with how it was made:

# %%
net = space.build(truth.genotypes[0])
print(f"the stored table's space: N={space.cells_per_stage}, F={space.filters}, B={space.num_nodes}, "
      f"{sum(p.numel() for p in net.parameters()):,} weights for this genotype")
s = truth.settings
print(f"ground truth: {len(truth)} cells x seeds {sorted(truth.scores)}, each trained {s.get('epochs')} epochs "
      f"(batch {s.get('batch_size')}, lr {s.get('lr')}) on {s.get('dataset')}, scored on its "
      f"{s.get('score_split', 'val')} split")
print(f"computed on {truth.env.get('device', '?')} at commit {truth.env.get('commit', '?')}; one training took "
      f"{truth.seconds_per_training():.0f} s (median)")

# %% [markdown]
# ## 2. The ground truth, and its own noise
#
# Before judging any proxy, ask how well the ground truth agrees *with itself*. Training
# the same architecture with another seed gives another accuracy; the rank correlation
# between two seeds is the ceiling for a proxy compared against one seed's accuracies.
# Below, proxies are compared with the *mean* of the two seeds, which is less noisy, so
# a good proxy can land a little above this number. (The paper's ground truth trains far
# longer and on the full data; its own noise is smaller.)

# %%
seeds = sorted(truth.scores)
ceiling = truth.seed_to_seed() if len(seeds) > 1 else float("nan")
fig, ax = plt.subplots(figsize=(4.2, 4))
if len(seeds) > 1:
    a, b = (torch.tensor(truth.scores[s]) * 100 for s in seeds[:2])
    ax.scatter(a, b, s=18)
    lo, hi = float(min(a.min(), b.min())) - 1, float(max(a.max(), b.max())) + 1
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
    ax.set(xlabel=f"accuracy, seed {seeds[0]} (%)", ylabel=f"accuracy, seed {seeds[1]} (%)",
           title=f"the ground truth against itself\nSpearman {ceiling:.2f}")
plt.show()
mean_truth = truth.mean
print(f"mean accuracy {100 * sum(mean_truth) / len(mean_truth):.1f}%, from {100 * min(mean_truth):.1f}% "
      f"to {100 * max(mean_truth):.1f}% across architectures")

# %% [markdown]
# ## 3. Four cheap judges
#
# Every judge scores a freshly initialised network; higher is better.
#
# * **GTN evaluation**: T inner steps on the GTN's synthetic batches with its meta-learned
#   learning rate and momentum, then accuracy on real images. The GTN was meta-trained on
#   tutorial 2's learners and never saw a cell network.
# * **Real data, same steps**: the same T steps on random real batches, with the lr and
#   momentum meta-learned for real data (the paper's control).
#
# Both score a cell network with the BatchNorm statistics of real training images
# (`bn_images`, as the quick teacher was meta-trained: tutorial 2, section 1), on the 3600
# training images at the quick size (a score on 400 validation images would carry a
# binomial error of 2 points, about what separates the cells); GTN evaluation's learners
# never train on a real image, and the real-data judge sees only its T x B of them. Each
# cell is scored with several initialisations (`proxy_seeds`) and the score is their mean.
# None of them is a ground-truth seed: with the same seed a judge would train exactly
# the networks the ground truth trained, and agree with it for that reason alone.
# `benchmarks/reproduce_nas.py` also scores both with the last inner batch's statistics.
# * **SynFlow** (Tanaka et al., 2020): sums $|\theta \odot \partial R/\partial\theta|$
#   for the network made positive; no data, no labels, no training.
# * **NASWOT** (Mellor et al., 2021): how differently the untrained network's ReLU
#   patterns code a batch of real images, $\log|\det K|$.
#
# First the GTN data, and the lr and momentum the real-data judge trains with. Without
# `GTN_EDU_NAS_TEACHER` both come from the file that ships with gtn_edu (`shipped`), so
# nothing is meta-trained here:

# %%
try:
    data = load_dataset("cifar10", download=False, device=device)
except DataNotFoundError as err:
    raise DataNotFoundError("This tutorial reads CIFAR-10 from the folder in $GTN_EDU_DATA (now "
                            f"{os.environ.get('GTN_EDU_DATA')!r}).\n" + str(err)) from None

if TEACHER:  # a run of your own: its GTN arm, and its real-data arm for the tuned lr and momentum
    arms = {kind: load_arm(kind, Path(TEACHER) / f"{kind}_checkpoint.pt", data, device=device)
            for kind in ("gtn", "real")}
    gtn_parts = arms["gtn"].teacher, arms["gtn"].curriculum, arms["gtn"].sgd
    real_sgd = arms["real"].sgd
    print(f"loaded the teacher of {TEACHER} ({arms['gtn'].trainer.iteration} outer iterations)")
else:       # the GTN data that ships with gtn_edu: stored batches and their lr and momentum schedule
    gtn_data = shipped("cifar10")
    gtn_parts = gtn_data.teacher().to(device), gtn_data.curriculum().to(device), gtn_data.sgd().to(device)
    real_sgd = gtn_data.real_data_sgd().to(device)  # what the same run's real-data arm learned
    made = gtn_data.meta
    print(f"shipped GTN data: {made['run']} at commit {made['commit']}, {made['outer_iterations']} outer "
          f"iterations; {gtn_data.steps} batches of {gtn_data.batch_size}; it teaches its own learners "
          f"{100 * made['few_step_accuracy']['mean']:.2f}% (test)")
    print("  lr per step:", [round(v, 3) for v in gtn_data.lr.tolist()])

truth.check_proxy_seeds(proxy_seeds)  # refuses a ground-truth seed
scored = data.train if SIZE == "quick" else data.val  # what GTN and real-data evaluation score on
bn_images = bn_images_for("real", data.train)
evaluations = {
    "GTN data": GTNEvaluation(*gtn_parts, scored, bn_images=bn_images),
    "real data, same steps": RealDataEvaluation(data.train, scored, gtn_parts[1].steps, gtn_parts[1].batch_size,
                                                real_sgd, bn_images=bn_images),
    "SynFlow": SynFlowEvaluation(device),
    "NASWOT": NASWOTEvaluation(data.train.x[:64]),
}
print(f"GTN and real-data evaluation: {gtn_parts[1].steps} steps of {gtn_parts[1].batch_size} images, then "
      f"accuracy on {len(scored)} images with the BatchNorm statistics of {len(bn_images)} training images; "
      f"{len(proxy_seeds)} initialisation(s) per cell (evaluator seeds {list(proxy_seeds)}; the ground truth's: "
      f"{sorted(truth.scores)})")

# %% [markdown]
# Now every judge scores every stored architecture. `score_architectures` runs one
# `NASEvaluator` per judge; with a `cache_dir` an interrupted run continues where it
# stopped. The seconds are measured per architecture.

# %%
start = time.perf_counter()
results = score_architectures(space, truth.genotypes, evaluations, cache_dir=CACHE, seeds=proxy_seeds)
computed = sum(not r.cached for rs in results.values() for r in rs)
print(f"scored {len(truth)} architectures with {len(evaluations)} judges in {time.perf_counter() - start:.0f} s "
      f"({computed} of the {len(truth) * len(evaluations)} scores computed now, the others read from the cache)")

# %% [markdown]
# ## 4. Figure 3c: does the judge rank like the truth?
#
# Each dot is one architecture: its cheap score against its ground-truth accuracy
# (averaged over the two seeds). Orange dots are the half the judge ranks highest: a
# search only ever keeps those, so the paper reports the correlation among them too.

# %%
rows = proxy_table(results, mean_truth)
plot_proxies(rows, mean_truth)
plt.show()
print(markdown_table(rows, truth_seconds=truth.seconds_per_training(), ceiling=ceiling))

# %% [markdown]
# Does GTN data rank better than real data at the same steps? Two overlapping intervals do
# not answer that; a *paired* bootstrap does: it resamples the architectures once for both
# judges and looks at the difference of their correlations.

# %%
scores = {r["name"]: r["scores"] for r in rows}
diff = paired_bootstrap(scores["GTN data"], scores["real data, same steps"], mean_truth, n_boot=1000)
print(f"Spearman of GTN data minus real data (same steps): {diff}")

# %% [markdown]
# How to read the table:
#
# * a rank correlation's confidence interval comes from resampling the architectures
#   (bootstrap); with a few dozen of them the intervals are wide, and two judges whose
#   intervals overlap are not shown to differ;
# * the last row is one training against another seed's: the ceiling for a judge compared
#   with one seed (the judges here are compared with the two seeds' mean, a little less
#   noisy, so one may pass it);
# * *seconds per architecture* is what the judge cost when its scores were computed,
#   summed over the initialisations: in this run, or in the run that filled the cache
#   (the page's scores come from `benchmarks/reproduce_nas.py --quick`, computed with four
#   to five processes sharing the 2 cores, about twice a free core's time). The ground
#   truth's seconds come from the stored table (one training per core), so read the
#   "cheaper" column as a rough ratio.

# %% [markdown]
# ## 5. Random search: what a judge is for
#
# A search draws candidates, scores each with the judge and keeps the best. What counts
# is the ground truth of *the architecture it keeps*. With the ground truth of the whole
# pool stored, we can run many searches without training anything new:
# `simulate_searches` draws `n` of the stored cells per search, lets every judge pick
# its best among the same `n`, and looks up the pick's true accuracy.

# %%
searches = simulate_searches({r["name"]: r["scores"] for r in rows}, mean_truth, n=search_n,
                             seeds=range(search_seeds), seconds={r["name"]: r["seconds"] for r in rows})
first = next(iter(searches.values()))
best = 100 * sum(first["best_possible"]) / search_seeds
at_random = 100 * sum(first["sample_mean"]) / search_seeds
print(f"{search_seeds} searches of {search_n} candidates each; a perfect judge would average {best:.1f}%, "
      f"a random pick {at_random:.1f}%")
for name, res in searches.items():
    print(f"  {name:24s} picks {100 * res['mean']:.1f}% on average (sd {100 * res['stdev']:.1f}), "
          f"{res['seconds'][0]:.1f} s a search")

plot_searches(searches, n=search_n)
plt.show()

# %% [markdown]
# ## 6. Reading this honestly
#
# * Everything here is small: 40 architectures (of the 100 in the stored table: the
#   benchmarks page ranks all 100, with tighter intervals), a ground truth of 2 epochs on 3600
#   images scored on 1000, a teacher meta-trained for minutes with T=8 steps (the paper:
#   800 architectures, a ground truth of full training, T=128). The stored table's own
#   seed-to-seed correlation says how much any judge could show at this size.
# * The run on this page judged with the shipped GTN data of the CIFAR-10 quick run (400
#   outer iterations, T=8; on its own learners it beats tuned real data, 36.1% against
#   29.9%, tutorial 2) and that run's real-data schedule. Its scores were computed by an
#   earlier run of this same page and read from its cache (section 3 says how many were
#   computed now); the seconds per architecture are that run's, with other jobs sharing
#   the 2 cores. As a judge of cells the GTN data carries some signal (Spearman 0.32, the
#   interval just reaching zero), but 8 steps of real data rank these cells better (0.59),
#   and the paired bootstrap puts real data ahead in 96% of resamples. The benchmarks
#   page (D. NAS) finds the same over all 100 cells with the run's own teacher (0.31
#   against 0.44; 0.29 against 0.56 with four initialisations a cell): at this size this
#   GTN does not carry over to cell networks as a judge. The paper's teacher trained far
#   longer, with T=128, and its table had 800 cells.
# * Judge and truth no longer share initialisations (`proxy_seeds` 100 and 101 against
#   the table's 0 and 1): before this was fixed, the real-data judge's agreement with the
#   ground truth was 0.39 against seed 0, whose initialisations it shared, and 0.28
#   against seed 1.
# * `benchmarks/reproduce_nas.py --quick` computes the same table with more bootstrap
#   resamples and writes it to the benchmarks page; `--full` is the paper's setting on a
#   GPU.
#
# **Exercises.**
#
# 1. Add a judge: subclass `gtn_edu.nas.Evaluation` (for example the number of weights,
#    or the loss after one step) and put it in `evaluations`. Where does it rank?
# 2. Change `search_n`: with 40 candidates every judge sees the whole pool; with 2 the
#    judge barely matters. Where do GTN data and NASWOT differ most?
# 3. Score on the 400 validation images instead of the 3600 training images (`scored =
#    data.val`), or with one initialisation per cell (`proxy_seeds = PROXY_SEEDS[:1]`):
#    how much of each judge's noise is the scoring set's, and how much the initialisation's?
