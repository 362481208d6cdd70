"""CartPole GTN data on policies it was not meta-trained with: other widths and depths (issue 25).

    python benchmarks/cartpole_architectures.py --quick      # CPU, a few minutes
    python benchmarks/cartpole_architectures.py --smoke      # seconds (the tests)

The paper's CartPole learners are all 4 -> 64 tanh -> 2, and it says its RL data "has not
yet been shown to work with different architectures". This meta-trains the CartPole GTN
of `gtn_edu.rl` at the plan's size (`CartPoleConfig.sized`, seed 0: the tutorial's run) on
64-unit policies, then gives its 512 pairs and learned lr to fresh policies of other
hidden widths and depths (tanh layers, Kaiming-normal weights, zero biases): each takes the
same ONE SGD step, then plays greedy episodes (20 policies x 10 episodes, capped at 200,
the paper's score). The same policies (one `seed`) are scored for every architecture.
Outputs in `--out`: `cartpole_architectures.json`, `.png`, and a markdown fragment pasted
into docs/benchmarks/cartpole.md (between the `cartpole_architectures` markers) when `--out`
is docs/figures.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from report import DOCS_FIGURES, environment, is_docs_folder, plan_parser, pyplot, update_docs, write_json

from gtn_edu.arch_space import ArchSpace, seeded_build
from gtn_edu.rl import CartPoleConfig, build_cartpole, one_step_returns
from gtn_edu.rl.policy import PolicyLearner

PLANS = {
    "smoke": dict(size="tiny", policies=2, episodes=2,
                  architectures=[(64,), (16,), (64, 64)]),
    "quick": dict(size="quick", policies=20, episodes=10,
                  architectures=[(64,), (16,), (32,), (128,), (256,), (64, 64), (64, 64, 64), (16, 16), (256, 256)]),
}


@dataclass
class FixedPolicies(ArchSpace):
    """Fresh policies of one architecture (`hidden`: the widths of the tanh layers), new initialisations."""

    hidden: tuple[int, ...]

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        return {"hidden": list(self.hidden)}

    def build(self, spec: dict, rng: torch.Generator | None = None) -> PolicyLearner:
        return seeded_build(lambda: PolicyLearner(tuple(spec["hidden"])), rng)


def name(hidden: tuple[int, ...]) -> str:
    return "4 -> " + " -> ".join(f"{h} tanh" for h in hidden) + " -> 2"


def main(argv=None) -> int:
    ap = plan_parser(__doc__, PLANS)
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = PLANS[args.plan]
    cfg = CartPoleConfig.sized(plan["size"], a2c_env_steps=0)
    start = time.perf_counter()
    run = build_cartpole(cfg, progress=False)
    run.trainer.fit(cfg.outer_steps, desc="CartPole GTN (64-unit policies)")
    meta_seconds = time.perf_counter() - start
    rows = []
    for hidden in plan["architectures"]:
        t0 = time.perf_counter()
        s = one_step_returns(run.teacher, run.curriculum, run.sgd, FixedPolicies(hidden), policies=plan["policies"],
                             episodes=plan["episodes"], seed=cfg.seed, max_steps=cfg.max_steps)
        rows.append({"hidden": list(hidden), "name": name(hidden), "mean": s.mean, "std": s.std, "solved": s.solved,
                     "policy_means": s.policy_means.tolist(), "seconds": time.perf_counter() - t0,
                     "trained_on": list(hidden) == [cfg.policy_hidden]})
        print(f"{name(hidden):>34}: {s.mean:6.1f} +- {s.std:5.1f}, {100 * s.solved:3.0f}% of episodes at the cap",
              flush=True)
    res = {"plan": args.plan, "env": environment("cpu"), "config": cfg.to_dict(), "meta_seconds": meta_seconds,
           "seconds": time.perf_counter() - start, "lr": run.sgd.lr.detach().tolist(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "cartpole_architectures" + ("_smoke" if args.plan == "smoke" else "")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    shown = rows[::-1]  # the first row on top
    ax.boxplot([r["policy_means"] for r in shown], orientation="horizontal",
               tick_labels=[r["name"] + (" (meta-trained on)" if r["trained_on"] else "") for r in shown])
    ax.set_xlabel(f"mean return of each fresh policy after ONE SGD step ({plan['episodes']} greedy episodes)")
    ax.axvline(cfg.max_steps, color="0.7", lw=0.8)
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=110)
    plt.close(fig)
    write_json(args.out / f"{stem}.json", res)
    env = res["env"]
    text = "\n".join([
        f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}; plan "
        f"`{args.plan}` (`CartPoleConfig.sized(\"{plan['size']}\")`, seed {cfg.seed}): meta-training on "
        f"{cfg.policy_hidden}-unit policies {meta_seconds / 60:.1f} min, the table "
        f"{(res['seconds'] - meta_seconds) / 60:.1f} min. Each row: {plan['policies']} fresh policies of that "
        "architecture, each trained by ONE SGD step on the "
        f"GTN's {cfg.inner_batch} pairs with its learned lr, then {plan['episodes']} greedy episodes each (cap "
        f"{cfg.max_steps}); mean +- sd over the policies' mean returns.", "",
        "| policy | mean return +- sd | episodes at the cap | |", "|---|---|---|---|",
        *[f"| {r['name']} | {r['mean']:.1f} +- {r['std']:.1f} | {100 * r['solved']:.0f}% | "
          f"{'meta-trained on' if r['trained_on'] else ''} |" for r in rows], "",
        f"![{stem}](figures/{stem}.png)"]) + "\n"
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out) and args.plan != "smoke":
        update_docs("cartpole_architectures", text)
    print(f"done in {res['seconds'] / 60:.1f} min; results in {args.out}/{stem}.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
