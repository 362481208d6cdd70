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
# # Tutorial 1: a Generative Teaching Network for MNIST
#
# In this tutorial you train a small generator whose only job is to produce
# *training data*: after a handful of SGD steps on its images, a freshly initialised
# network of a random architecture should classify real MNIST digits well. Along the way
# you will
#
# 1. load MNIST and build the pieces of a GTN (teacher, curriculum, unrolled SGD, learners);
# 2. take one meta-gradient step by hand, then meta-train with a progress bar;
# 3. look at the curriculum, the images the learner sees at every inner step;
# 4. compare the few-step accuracy of GTN data with tuned real data;
# 5. train on more steps and bigger batches than the GTN was meta-trained for;
# 6. save the teacher and load it back.
#
# **Size switch.** The environment variable `GTN_EDU_TUTORIAL_SIZE` picks the scale:
#
# | size | what it runs | where, how long |
# |---|---|---|
# | `tiny` | 3 outer iterations of T=4 steps, tiny networks | any CPU, well under a minute (tests, CI) |
# | `quick` (default) | the settings of `--quick` | 2-core CPU: 10 to 15 minutes (see the note above) |
# | `paper` | Table 2, T=32, 2000 outer iterations | one GPU (`cuda`), about 1 h per arm |
#
# Run it as a script (`GTN_EDU_TUTORIAL_SIZE=quick python tutorials/01_mnist.py`), or turn
# it into a notebook with `jupytext --to ipynb tutorials/01_mnist.py`. The script:
# [01_mnist.py](01_mnist.py). MNIST is read from
# the folder in `GTN_EDU_DATA` (torchvision layout, i.e. it holds `MNIST/raw/`).
#
# **On the documentation site** this page shows the outputs of a real run at the `quick`
# size on a 2-core CPU: the first code cell below prints the size, device, versions and
# date, and the note under the title says which commit ran and how long it took. (The
# test suite runs this tutorial at the `tiny` size on every change, which only checks that
# every cell works: at that size the GTN is still near chance.)

# %%
import datetime
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

import gtn_edu
from gtn_edu import (
    Curriculum,
    DataNotFoundError,
    GTNConfig,
    Split,
    UnrolledSGD,
    accuracy_per_step,
    few_step_accuracy,
    load_dataset,
)
from gtn_edu.experiment import build_arm
from gtn_edu.sizes import device_for
from gtn_edu.viz import curriculum_images, save_image_grid

# %% [markdown]
# The size switch. `cfg` is a `GTNConfig`: every setting of the run, with the paper's
# values as defaults (see the [Configs](../../api/config/) page).

# %%
SIZE = os.environ.get("GTN_EDU_TUTORIAL_SIZE", "quick")
cfg = GTNConfig.sized(SIZE, "mnist")  # one call picks the size (gtn_edu.sizes)
device = device_for(SIZE)  # "cpu"; "cuda" for paper (without a GPU: an error naming the fix)

torch.manual_seed(cfg.seed)
OUT = Path(os.environ.get("GTN_EDU_TUTORIAL_OUT", "runs/tutorials")) / "01_mnist" / SIZE
OUT.mkdir(parents=True, exist_ok=True)
print(f"size {SIZE!r} on {device}: T={cfg.inner_steps} inner steps of batch "
      f"{cfg.inner_batch}, {cfg.outer_steps} outer iterations; files go to {OUT}/")
print(f"gtn_edu {gtn_edu.__version__}, torch {torch.__version__}, {torch.get_num_threads()} CPU "
      f"threads, {datetime.date.today()}")

# %% [markdown]
# ## 1. Load MNIST
#
# `load_dataset` returns normalised tensors (mean 0, variance 1, as in the paper), split
# 50k train / 10k validation / 10k test. The GTN is meta-trained against the *training*
# split; every accuracy below is measured on the *test* split.

# %%
try:
    data = load_dataset("mnist", download=False, device=device)
except DataNotFoundError as err:
    raise DataNotFoundError(
        "This tutorial reads MNIST from the folder in $GTN_EDU_DATA (now "
        f"{os.environ.get('GTN_EDU_DATA')!r}): point it at a folder that holds MNIST/raw/, "
        "or run load_dataset('mnist', download=True) once.\n" + str(err)) from None

# The tiny size scores on 1,000 test images to stay fast; the others use all 10,000.
test = data.test if SIZE != "tiny" else Split(data.test.x[:1000], data.test.y[:1000])
print(f"train {tuple(data.train.x.shape)}, val {len(data.val)}, test {len(data.test)}; "
      f"pixel range {data.train.x.min():.2f} .. {data.train.x.max():.2f}")


def show(images: torch.Tensor, title: str, nrow: int = 10) -> None:
    """Draw a (N, 1, H, W) batch with values in [0, 1] as a grid."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=1, pad_value=1.0)
    width = nrow * 0.55
    plt.figure(figsize=(width, width * grid.shape[1] / grid.shape[2]))
    plt.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray")
    plt.title(title)
    plt.axis("off")
    plt.show()


show(data.denormalise(data.train.x[:20]), "real MNIST training images")

# %% [markdown]
# ## 2. The pieces of a GTN
#
# `build_arm` turns a `GTNConfig` into the objects of one experiment (the command line
# `gtn-edu train` uses the same function):
#
# * `teacher`: the generator $x = G(z, y)$;
# * `curriculum`: the learned codes $z_t$ and fixed, balanced labels $y_t$ for each of
#   the T inner steps;
# * `sgd`: SGD with momentum unrolled through T steps, eq. (1) of the paper, with
#   learnable learning rate $\alpha$ and momentum $\beta$;
# * `arch_space`: where a fresh learner of random width comes from every outer iteration;
# * `trainer`: the outer loop (Adam on everything above).

# %%
gtn = build_arm("gtn", cfg, data, device=device, log_path=OUT / "gtn_log.jsonl")
n_weights = sum(p.numel() for p in gtn.teacher.parameters())
print(f"teacher: {n_weights:,} weights")
print(f"curriculum codes: {tuple(gtn.curriculum.codes.shape)} (T, B, latent)")
print(f"inner lr {gtn.sgd.lr.mean():.3f}, momentum {gtn.sgd.momentum.mean():.3f} "
      f"({'one per step' if gtn.sgd.per_step else 'shared'})")
print("a learner from the space:", gtn.arch_space.sample())

# %% [markdown]
# ### One meta-gradient by hand
#
# This is what the trainer does every outer iteration. A fresh learner trains for T
# steps on the teacher's batches, *keeping every step in the autograd graph*; the
# trained weights $\theta_T$ are scored on a batch of real images; `backward()` carries
# the gradient of that score through all T steps into the generator, the codes and
# $\alpha, \beta$.

# %%
learner = gtn.arch_space.sample().to(device)
batches = gtn.teacher.batches(gtn.curriculum)  # x_t = G(z_t, y_t), made lazily
theta_T = gtn.sgd.unroll(learner, batches)     # T differentiable SGD steps
x_real, y_real = data.train.sample(cfg.outer_batch)
meta_loss = learner.meta_loss(theta_T, x_real, y_real)
meta_loss.backward()
print(f"meta-loss {meta_loss.item():.3f}; gradient norms reaching")
for name, p in [("the generator's fc1.v", gtn.teacher.fc1.v),
                ("the curriculum codes", gtn.curriculum.codes),
                ("the inner log-lr", gtn.sgd.raw_lr)]:
    print(f"  {name:<22} {p.grad.norm():.2e}")
gtn.trainer.optimizer.zero_grad(set_to_none=True)  # we only looked; fit() takes the steps

# %% [markdown]
# ## 3. Meta-train
#
# `fit` runs the outer loop with a progress bar (meta-loss, meta-batch accuracy and the
# mean inner learning rate in its postfix) and logs one JSON line per outer iteration.

# %%
gtn.trainer.fit(cfg.outer_steps, desc="GTN")
hist = gtn.trainer.history

fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].plot([r["meta_loss"] for r in hist])
ax[0].set(xlabel="outer iteration", ylabel="meta-loss (real data)", yscale="log")
ax[1].plot([r["meta_acc"] for r in hist])
ax[1].set(xlabel="outer iteration", ylabel="accuracy on the meta-batch")
for a in ax:
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.suptitle("GTN meta-training: a fresh learner every iteration")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The curriculum
#
# Row t shows the first ten images of the batch the learner sees at inner step t. The
# labels are fixed and balanced, so column k always shows class k. After enough
# meta-training the paper found most images unrecognisable as digits, and the last
# batches the most digit-like; at the tiny size the generator has barely moved from its
# initialisation.

# %%
images = curriculum_images(gtn.teacher, gtn.curriculum, per_step=10)  # (T*10, 1, 28, 28)
save_image_grid(images, OUT / "curriculum.png")
show(images, f"curriculum: {cfg.inner_steps} inner steps (rows) x classes 0-9 (columns)")

# %% [markdown]
# With `per_step_hyper` on, the learned lr and momentum of each inner step are part of
# the curriculum too: they say how far the learner moves on each batch.

# %%
steps = range(1, cfg.inner_steps + 1)
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(steps, gtn.sgd.lr.detach().cpu().expand(len(steps)), "o-", label="lr α")
ax.plot(steps, gtn.sgd.momentum.detach().cpu().expand(len(steps)), "s-", label="momentum β")
ax.set(xlabel="inner step t", title="learned inner-loop hyperparameters")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. GTN data against real data
#
# A fair baseline trains on *real* batches of the same size for the same T steps, with
# its learning rate and momentum meta-learned in the same way and for as many outer
# iterations. Then fresh learners (new architectures, new initialisations, never seen in
# meta-training) are trained on each source and scored on the test set.

# %%
real = build_arm("real", cfg, data, device=device, log_path=OUT / "real_log.jsonl")
real.trainer.fit(cfg.outer_steps, desc="real data")


def accuracy(arm, curriculum=None, sgd=None, n=cfg.eval_learners):
    """Few-step test accuracy of `n` fresh learners trained on `arm`'s teacher."""
    return few_step_accuracy(arm.teacher, curriculum or arm.curriculum, sgd or arm.sgd,
                             arm.arch_space, test, n_learners=min(n, cfg.eval_learners))


acc_gtn, acc_real = accuracy(gtn), accuracy(real)
print(f"test accuracy after {cfg.inner_steps} steps of batch {cfg.inner_batch}:")
print(f"  GTN data : {acc_gtn}")
print(f"  real data: {acc_real}")

# %% [markdown]
# Accuracy after every inner step (the paper's Figure 2b). GTN data is built to be good
# *at step T*; real data has no such target.

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for label, arm in [("GTN", gtn), ("real data", real)]:
    per_step = accuracy_per_step(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space,
                                 test, n_learners=min(cfg.eval_learners, 3))
    ax.plot(steps, [r.mean for r in per_step], "o-", label=label)
ax.set(xlabel="inner step", ylabel="test accuracy", title="few-step learning")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. More steps and bigger batches than meta-trained for
#
# The learned curriculum holds exactly T batches of B codes. To get *more* data, feed
# the trained generator fresh Gaussian codes $z \sim \mathcal N(0, I)$ (a "no
# curriculum" sampler) for k times the batch size, or for k times the steps. For more
# steps the learned per-step lr and momentum are stretched: each learned value is used
# for k consecutive steps. The real-data baseline gets the same treatment. (The paper's
# Figure 5 runs this experiment with a generator meta-trained *without* a curriculum.)

# %%
def stretched(sgd: UnrolledSGD, k: int) -> UnrolledSGD:
    """A frozen copy of `sgd` for k times the steps (each per-step value used k times)."""
    if not sgd.per_step:
        return sgd
    out = UnrolledSGD(per_step=sgd.raw_lr.numel() * k, mode=sgd.mode, learn=False)
    out = out.to(sgd.raw_lr.device)
    out.raw_lr.copy_(sgd.raw_lr.detach().repeat_interleave(k))
    out.raw_momentum.copy_(sgd.raw_momentum.detach().repeat_interleave(k))
    return out


T, B, L = cfg.inner_steps, cfg.inner_batch, cfg.latent_dim
print(f"{'data':<20}{'steps':>6}{'batch':>7}   {'GTN':<24}{'real data':<24}")
print(f"{'learned curriculum':<20}{T:>6}{B:>7}   {acc_gtn!s:<24}{acc_real!s:<24}")
for what, k_steps, k_batch in [("fresh codes", 1, 1), ("batch x2", 1, 2), ("batch x4", 1, 4),
                               ("steps x2", 2, 1), ("steps x4", 4, 1)]:
    fresh = Curriculum.no_curriculum(T * k_steps, B * k_batch, 10, L).to(device)
    g, r = (accuracy(arm, fresh, stretched(arm.sgd, k_steps), n=5) for arm in (gtn, real))
    print(f"{what:<20}{T * k_steps:>6}{B * k_batch:>7}   {g!s:<24}{r!s:<24}")

# %% [markdown]
# What to look for: do fresh codes do as well as the learned curriculum (exercise 2 of
# the instructors' page measures this), and does more generated data still help, as it
# did in the paper?

# %% [markdown]
# ## 7. Save the teacher and load it back
#
# A checkpoint is a plain dict (`version`, `config`, `state_dict`, RNG states) that loads
# with `torch.load(..., weights_only=True)`. Loading it into a freshly built arm gives
# back the same teacher: the same images, the same few-step accuracy.

# %%
path = gtn.trainer.save(OUT / "gtn_checkpoint.pt")
ckpt = torch.load(path, weights_only=True)
print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, keys {sorted(ckpt)}")

again = build_arm("gtn", GTNConfig.from_dict(ckpt["config"]), data, device=device,
                  progress=False)
again.trainer.load(path)
same = torch.allclose(curriculum_images(again.teacher, again.curriculum), images, atol=1e-5)
acc_again = accuracy(again)
print(f"same curriculum images: {same}; few-step accuracy {acc_again} (before: {acc_gtn})")
assert same and abs(acc_again.mean - acc_gtn.mean) < 2e-3  # GPUs may differ in the last bits

# %% [markdown]
# ## Where next
#
# * Rerun at `GTN_EDU_TUTORIAL_SIZE=quick` (a 2-core CPU, 10 to 15 minutes) or
#   `paper` (a GPU, the paper's settings), or run the same experiment from the command line:
#   `gtn-edu train --dataset mnist --quick --data-root $GTN_EDU_DATA --out runs/mnist`.
# * The [concept pages](../../concepts/gtn/) explain each piece, and
#   [Extending gtn_edu](../../concepts/extending/) shows how to replace one.
# * The [instructors' page](../../instructors/) lists lab exercises with measured outcomes.
