"""The paper's MNIST results (Figures 1b, 1c, 2a, 2b, 5, 7) and a held-out architecture.

    python benchmarks/reproduce_mnist.py --quick                      # 2 CPU cores, <= 30 min
    python benchmarks/reproduce_mnist.py --full --device cuda         # Table 2 settings, one GPU

Stages, sharing runs where the paper's figures allow it:

1. `main`: meta-train three arms with the same T, batch and outer iterations: GTN (full
   curriculum), real data and dataset distillation, every one with learned lr and
   momentum. Few-step test accuracy of fresh learners along the way (Figure 2a) and
   per inner step at the end (Figure 2b); an ensemble of learners against single
   learners (Figure 7); learners of architectures never used in meta-training (a conv
   space twice as wide, and an MLP space).
2. `curricula`: the three other curriculum variants (Figure 1c; `full` is reused).
3. `more_data`: the no-curriculum generator of stage 2 asked for larger batches and
   more inner steps than it was trained with, against real data (Figure 5).
4. `weight_norm`: final meta-loss with and without weight normalisation over a grid of
   outer learning rates and inner-step counts (Figure 1b).

Each stage writes `repro_<plan>.json`, `repro_<plan>_*.png` and `repro_<plan>.md.txt` into
`--out` as soon as it ends, so a run that is stopped (`--time-limit`, `timeout`) keeps
what it finished. `--time-limit` shares the seconds among the training runs in
proportion to their estimated cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from report import DOCS_FIGURES, environment, is_docs_folder, update_docs, write_json
from repro_report import figures, fragment

from gtn_edu import Curriculum, UnrolledSGD, accuracy_per_step, ensemble_accuracy, few_step_accuracy
from gtn_edu.arch_space import ArchSpace
from gtn_edu.config import GTNConfig, MNISTConfig, quick
from gtn_edu.data import Split, load_dataset
from gtn_edu.experiment import build_arch_space, build_arm
from gtn_edu.meta import MetaLossDivergedError
from gtn_edu.viz import curriculum_images, save_image_grid

COST = {"gtn": 1.0, "real": 0.7, "distilled": 0.75}  # outer-iteration cost relative to the GTN arm


@dataclass
class Plan:
    """How big each stage is. `s_per_iter`: measured GTN cost on 2 CPU cores (None: unknown)."""

    name: str
    cfg: GTNConfig
    main_iters: int
    curve_every: int
    curve_learners: int
    curve_test: int | None  # test images for the curves (None: all 10k)
    final_learners: int
    curriculum_iters: int
    wn_lrs: tuple[float, ...]
    wn_steps: tuple[int, ...]
    wn_iters: int
    more_batches: tuple[int, ...]
    more_steps: tuple[int, ...]
    ensemble_sizes: tuple[int, ...]
    s_per_iter: float | None = None
    final_test: int | None = None  # test images for the final numbers (None: all 10k)


def make_plan(name: str) -> Plan:
    """The `smoke`, `quick` and `full` plans."""
    if name == "full":  # Table 2: T=32, batch 128 (130: balanced labels), 2000 outer iterations
        cfg = MNISTConfig()
        return Plan("full", cfg, 2000, 100, 5, None, 10, 2000, (0.003, 0.01, 0.03), (16, 32), 300,
                    (130, 260, 520, 1040), (32, 64, 128, 256), (2, 4, 8, 16, 32))
    cfg = quick(MNISTConfig())
    if name == "quick":
        return Plan("quick", cfg, 80, 20, 3, 2000, 5, 80, (0.003, 0.01, 0.03), (4, 8), 20,
                    (cfg.inner_batch, 2 * cfg.inner_batch, 4 * cfg.inner_batch, 8 * cfg.inner_batch),
                    (cfg.inner_steps, 2 * cfg.inner_steps, 4 * cfg.inner_steps, 8 * cfg.inner_steps),
                    (2, 4, 8), s_per_iter=1.0)
    cfg = replace(cfg, inner_steps=2, inner_batch=20, outer_batch=20, teacher_hidden=16, teacher_channels=4,
                  teacher_conv_channels=4, arch_scale=0.1, meta_loss_every=0, eval_learners=2)
    return Plan("smoke", cfg, 2, 1, 2, 300, 2, 2, (0.01,), (2,), 2, (20, 40), (2, 4), (2,), s_per_iter=0.02,
                final_test=1000)


def _units(plan: Plan) -> dict[str, float]:
    """Estimated cost of each training stage, in GTN outer iterations at the plan's T and batch."""
    T = plan.cfg.inner_steps
    return {"main": plan.main_iters * sum(COST.values()), "curricula": 3 * plan.curriculum_iters,
            "weight_norm": 2 * len(plan.wn_lrs) * plan.wn_iters * sum(plan.wn_steps) / T}


class Budget:
    """Seconds for each training run when `--time-limit` is set (None: no limit)."""

    def __init__(self, plan: Plan, limit: float | None, start: float) -> None:
        self.start, self.limit = start, limit  # the limit counts from the start of the script
        units = _units(plan)
        self.total = sum(units.values())

    def left(self) -> float | None:
        return None if self.limit is None else self.limit - (time.perf_counter() - self.start)

    def for_run(self, units: float) -> float | None:
        """A run's share: 70% of the limit (the rest for evaluation) times its share of the cost."""
        return None if self.limit is None else max(1.0, 0.7 * self.limit * units / self.total)

    def exhausted(self) -> bool:
        return self.limit is not None and self.left() <= 0


# ---------------------------------------------------------------- helpers
def _eval(arm, split: Split, n: int, seed: int = 1234) -> dict:
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, split, n_learners=n, seed=seed)
    return {"mean": res.mean, "std": res.std, "accuracies": res.accuracies}


def train_with_curve(arm, iters: int, every: int, split: Split, n: int, seconds: float | None, tag: str) -> dict:
    """Meta-train `arm` for `iters` outer iterations, measuring few-step accuracy every `every`."""
    curve = {"iteration": [0], **{k: [v] for k, v in _eval(arm, split, n).items() if k != "accuracies"}}
    start, diverged = time.perf_counter(), None
    while arm.trainer.iteration < iters:
        left = None if seconds is None else seconds - (time.perf_counter() - start)
        if left is not None and left <= 0:
            break
        try:
            arm.trainer.fit(min(every, iters - arm.trainer.iteration), time_limit=left)
        except MetaLossDivergedError as err:
            diverged = str(err)
            break
        acc = _eval(arm, split, n)
        for k in ("mean", "std"):
            curve[k].append(acc[k])
        curve["iteration"].append(arm.trainer.iteration)
        loss = sum(r["meta_loss"] for r in arm.trainer.history[-every:]) / min(every, len(arm.trainer.history))
        print(f"  [{tag}] iteration {arm.trainer.iteration}/{iters}: meta-loss {loss:.3f}, few-step test "
              f"accuracy {100 * acc['mean']:.1f}% ({time.perf_counter() - start:.0f} s)", flush=True)
    seconds_used = time.perf_counter() - start
    return {"curve": curve, "outer_iterations": arm.trainer.iteration, "seconds": seconds_used,
            "s_per_iter": seconds_used / max(1, arm.trainer.iteration), "diverged": diverged,
            "meta_loss": [r["meta_loss"] for r in arm.trainer.history]}


def _stretched_sgd(sgd: UnrolledSGD, steps: int) -> UnrolledSGD:
    """lr and momentum for `steps` inner steps: learned per-step values, the last one held beyond T."""
    if not sgd.per_step:
        return sgd
    idx = torch.arange(steps).clamp_max(sgd.raw_lr.numel() - 1)
    out = UnrolledSGD(per_step=steps, learn=False, mode=sgd.mode).to(sgd.raw_lr.device)
    with torch.no_grad():
        out.raw_lr.copy_(sgd.raw_lr.detach()[idx])
        out.raw_momentum.copy_(sgd.raw_momentum.detach()[idx])
    return out


# ---------------------------------------------------------------- stages
def stage_main(plan: Plan, data, device: str, budget: Budget, res: dict, out: Path) -> dict:
    """Figures 2a, 2b, 7 and the held-out architectures, from one run of each arm."""
    cfg, curve_test, test = plan.cfg, _subset(data.test, plan.curve_test), _subset(data.test, plan.final_test)
    arms = {}
    for kind in ("gtn", "real", "distilled"):
        arm = arms[kind] = build_arm(kind, replace(cfg, outer_steps=plan.main_iters), data, device=device,
                                     progress=False)  # outer_steps: the length of a cosine lr schedule
        seconds = budget.for_run(plan.main_iters * COST[kind])
        res["fig2a"][kind] = train_with_curve(arm, plan.main_iters, plan.curve_every, curve_test,
                                              plan.curve_learners, seconds, kind)
        res["final"][kind] = {**_eval(arm, test, plan.final_learners, seed=cfg.seed + 1000),
                              "lr": arm.sgd.lr.detach().cpu().tolist(),
                              "momentum": arm.sgd.momentum.detach().cpu().tolist()}
        print(f"  [{kind}] final few-step test accuracy {100 * res['final'][kind]['mean']:.2f}% "
              f"+- {100 * res['final'][kind]['std']:.2f} ({plan.final_learners} learners)", flush=True)
    save_image_grid(curriculum_images(arms["gtn"].teacher, arms["gtn"].curriculum),
                    out / f"repro_{plan.name}_samples.png")
    for kind, arm in arms.items():  # Figure 2b: accuracy after every inner step
        steps = accuracy_per_step(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, curve_test,
                                  n_learners=plan.curve_learners)
        res["fig2b"][kind] = {"mean": [s.mean for s in steps], "std": [s.std for s in steps]}
    for kind in ("gtn", "real"):  # Figure 7: ensembles of learners trained on one teacher
        arm, rec = arms[kind], {"sizes": [], "ensemble": []}
        for n in plan.ensemble_sizes:
            acc, single = ensemble_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, test,
                                            n_learners=n, seed=cfg.seed + 2000)
            rec["sizes"].append(n)
            rec["ensemble"].append(acc)
        rec["single"] = {"mean": single.mean, "std": single.std, "accuracies": single.accuracies}
        res["fig7"][kind] = rec
    held_out = {"conv, 2x wider": build_arch_space(replace(cfg, arch_scale=2 * cfg.arch_scale), data.image_shape),
                "MLP": ArchSpace.mlp(data.image_shape, data.num_classes,
                                     width_range=_scaled((64, 256), cfg.arch_scale), weight_norm=cfg.weight_norm)}
    for kind in ("gtn", "real", "distilled"):
        arm = arms[kind]
        res["heldout"][kind] = {"meta-training space": res["final"][kind]}
        for name, space in held_out.items():
            r = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, space, test,
                                  n_learners=plan.final_learners, seed=cfg.seed + 3000)
            res["heldout"][kind][name] = {"mean": r.mean, "std": r.std, "accuracies": r.accuracies}
    return arms


def stage_curricula(plan: Plan, data, device: str, budget: Budget, res: dict) -> dict:
    """Figure 1c: the three other curriculum variants, trained like the main GTN arm."""
    res["fig1c"]["full"] = res["fig2a"]["gtn"]
    arms = {}
    for variant in ("shuffled_batch", "all_shuffled", "none"):
        arm = arms[variant] = build_arm("gtn", replace(plan.cfg, curriculum=variant, outer_steps=plan.curriculum_iters),
                                        data, device=device, progress=False)
        res["fig1c"][variant] = train_with_curve(arm, plan.curriculum_iters, plan.curve_every,
                                                 _subset(data.test, plan.curve_test), plan.curve_learners,
                                                 budget.for_run(plan.curriculum_iters), variant)
    return arms


def stage_more_data(plan: Plan, data, device: str, res: dict, gtn_none, real) -> None:
    """Figure 5: larger inner batches (T fixed) and more inner steps (batch fixed)."""
    cfg, test = plan.cfg, _subset(data.test, plan.curve_test)
    k = data.num_classes
    sources = {"GTN (no curriculum)": gtn_none, "real data": real}
    for axis, values in (("batch", plan.more_batches), ("steps", plan.more_steps)):
        res["fig5"][axis] = {}
        for name, arm in sources.items():
            rows = res["fig5"][axis][name] = {"values": [], "mean": [], "std": []}
            for v in values:
                T, B = (cfg.inner_steps, v) if axis == "batch" else (v, cfg.inner_batch)
                cur = Curriculum(T, B, k, cfg.latent_dim, variant="none").to(device)
                r = few_step_accuracy(arm.teacher, cur, _stretched_sgd(arm.sgd, T), arm.arch_space, test,
                                      n_learners=plan.curve_learners)
                rows["values"].append(v)
                rows["mean"].append(r.mean)
                rows["std"].append(r.std)


def stage_weight_norm(plan: Plan, data, device: str, budget: Budget, res: dict) -> None:
    """Figure 1b: final meta-loss with and without weight normalisation over a small grid."""
    runs = res["fig1b"]["runs"] = []
    for wn in (True, False):
        for lr in plan.wn_lrs:
            for T in plan.wn_steps:
                # constant outer lr (the paper's): the figure is about which lr each setting survives
                cfg = replace(plan.cfg, weight_norm=wn, outer_lr=lr, inner_steps=T, outer_lr_schedule="constant",
                              meta_loss_every=plan.cfg.meta_loss_every if plan.cfg.meta_loss_every < T else 0)
                arm = build_arm("gtn", cfg, data, device=device, progress=False)
                diverged = None
                try:
                    arm.trainer.fit(plan.wn_iters, time_limit=budget.for_run(plan.wn_iters * T / plan.cfg.inner_steps))
                except MetaLossDivergedError as err:
                    diverged = str(err)
                losses = [r["meta_loss"] for r in arm.trainer.history]
                tail = losses[-max(1, len(losses) // 4):]
                final = None if diverged or not losses else sum(tail) / len(tail)
                runs.append({"weight_norm": wn, "outer_lr": lr, "steps": T, "iterations": arm.trainer.iteration,
                             "final_meta_loss": final, "diverged": diverged is not None, "meta_loss": losses})
                print(f"  [weight norm {'on ' if wn else 'off'}] outer lr {lr:g}, T={T}: final meta-loss "
                      f"{'diverged' if diverged else f'{final:.3f}'} after {arm.trainer.iteration} iterations",
                      flush=True)
                if budget.exhausted():
                    return


def _subset(split: Split, n: int | None) -> Split:
    return split if n is None or n >= len(split) else Split(split.x[:n], split.y[:n])


def _scaled(r: tuple[int, int], s: float) -> tuple[int, int]:
    return max(1, round(r[0] * s)), max(1, round(r[1] * s))


# ---------------------------------------------------------------- driver
def estimate(plan: Plan) -> str:
    """A printed time estimate from the measured cost of one GTN outer iteration (2 CPU cores)."""
    units = sum(_units(plan).values())
    if plan.s_per_iter is None:
        return (f"about {units:.0f} GTN-iteration equivalents; no CPU estimate for --{plan.name} (meant for a GPU; "
                "the paper's 2000 iterations took about 1 h on a P6000)")
    s = units * plan.s_per_iter * 1.2  # + evaluation
    when = f"{s / 60:.0f} min" if s >= 120 else f"{s:.0f} s (plus start-up and data loading)"
    return f"estimated {when} on 2 CPU cores ({units:.0f} GTN-iteration equivalents x {plan.s_per_iter} s)"


def write(res: dict, plan: Plan, out: Path) -> None:
    """JSON, figures and the markdown fragment, from whatever stages have finished."""
    write_json(out / f"repro_{plan.name}.json", res)
    try:
        pngs = figures(res, out, f"repro_{plan.name}")
    except ImportError as err:
        pngs = []
        print(f"  figures skipped: {err}")
    (out / f"repro_{plan.name}.md.txt").write_text(fragment(res, f"repro_{plan.name}"))
    if is_docs_folder(out):  # the smoke run stands in for the quick run until that has been run
        samples = out / f"repro_{plan.name}_samples.png"
        pngs = pngs + ([samples] if samples.exists() else [])
        update_docs("repro_quick" if plan.name == "smoke" else f"repro_{plan.name}",
                    fragment(res, f"repro_{plan.name}", pngs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    size = ap.add_mutually_exclusive_group(required=True)
    for name in ("quick", "full", "smoke"):
        size.add_argument(f"--{name}", dest="plan", action="store_const", const=name)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-root", default=None, help="MNIST folder (else $GTN_EDU_DATA, else ~/.cache/gtn_edu)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for the whole run; partial results kept")
    ap.add_argument("--stages", nargs="+", default=["main", "curricula", "more_data", "weight_norm"],
                    choices=["main", "curricula", "more_data", "weight_norm"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    plan = make_plan(args.plan)
    torch.set_num_threads(args.threads or (1 if plan.name == "smoke" else torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = plan.cfg
    print(f"reproduce_mnist --{plan.name} on {args.device}: T={cfg.inner_steps}, batch {cfg.inner_batch}, "
          f"{plan.main_iters} outer iterations per arm; {estimate(plan)}"
          + (f"; time limit {args.time_limit:.0f} s" if args.time_limit else ""), flush=True)
    start = time.perf_counter()
    data = load_dataset("mnist", args.data_root, device=args.device)
    res = {"env": environment(args.device), "plan": {k: v for k, v in vars(plan).items() if k != "cfg"},
           "config": cfg.to_dict(), "time_limit": args.time_limit, "stages": {}, "final": {}, "fig2a": {},
           "fig2b": {}, "fig7": {}, "heldout": {}, "fig1c": {}, "fig5": {}, "fig1b": {}, "seconds": {}}
    budget = Budget(plan, args.time_limit, start)
    arms, curricula = {}, {}
    for stage in ("main", "curricula", "more_data", "weight_norm"):
        if stage not in args.stages:
            res["stages"][stage] = "not requested"
            continue
        if budget.exhausted():
            res["stages"][stage] = "skipped: time limit"
            continue
        if stage == "more_data" and not ("none" in curricula and "real" in arms):
            res["stages"][stage] = "skipped: needs the main and curricula stages"
            continue
        print(f"stage {stage}", flush=True)
        t0 = time.perf_counter()
        if stage == "main":
            arms = stage_main(plan, data, args.device, budget, res, args.out)
        elif stage == "curricula":
            curricula = stage_curricula(plan, data, args.device, budget, res)
        elif stage == "more_data":
            stage_more_data(plan, data, args.device, res, curricula["none"], arms["real"])
        else:
            stage_weight_norm(plan, data, args.device, budget, res)
        res["seconds"][stage] = time.perf_counter() - t0
        res["stages"][stage] = "done"
        res["seconds"]["total"] = time.perf_counter() - start
        write(res, plan, args.out)
    res["seconds"]["total"] = time.perf_counter() - start
    write(res, plan, args.out)
    print(f"done in {res['seconds']['total'] / 60:.1f} min; results in {args.out}/repro_{plan.name}.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
