"""Figure 8 (appendix H): CartPole taught in one SGD step by a GTN, against an A2C control.

    python benchmarks/reproduce_cartpole.py --quick              # 2-core CPU: ~2 min a seed
    python benchmarks/reproduce_cartpole.py --paper --device cuda
    python benchmarks/reproduce_cartpole.py --smoke --out /tmp/x  # seconds (the tests)

For each seed it runs `gtn_edu.rl.run_cartpole` at the plan's size (`CartPoleConfig.sized`):
meta-training of the pair generator by the A2C meta-objective, the final score of 20 fresh
policies trained by ONE SGD step on the generator's 512 pairs (10 greedy episodes each,
episodes capped at 200 steps as in the paper), and the A2C control trained from scratch.
It reports, per seed and as medians over seeds: the final score, the environment steps
meta-training played, and the steps after which each method's learning curve first
reached the target return (190 of 200 by default). Runs are kept (resumable) in
`runs/repro_cartpole_<plan>/seed<k>/`; `--replot` redraws the figures and the markdown
from the stored JSON and those folders without running anything. Outputs in `--out`: `repro_cartpole_<plan>.json`,
the figures `_fig8.png` and `_pairs.png`, and a markdown fragment pasted into
docs/benchmarks/cartpole.md when `--out` is docs/figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, REPO, environment, is_docs_folder, plan_parser, pyplot, update_docs, write_json

from gtn_edu.rl import CartPoleConfig, build_cartpole, run_cartpole
from gtn_edu.rl.config import new_names
from gtn_edu.rl.plots import plot_figure8, plot_pairs

PLANS = {"smoke": "tiny", "quick": "quick", "paper": "paper"}
MEDIANS = ("mean", "meta_env_steps", "gtn_steps_to_target", "a2c_steps_to_target")


def _steps(x) -> str:
    return "not reached" if x is None else f"{x:,}"


def fragment(res: dict, stem: str) -> str:
    """The markdown the benchmarks page shows for one run of this script."""
    env, cfg = res["env"], new_names(res["config"], warn=False)  # a JSON stored before issue 24's renames too
    lines = [
        f"Measured on {env['device_label']}, torch {env['torch']}, gymnasium {res['gymnasium']}, commit "
        f"{env['commit']}, {env['date']}; plan `{res['plan']}`, {res['seconds'] / 60:.1f} min for "
        f"{len(res['seeds'])} seeds run one after the other. Settings: {cfg['outer_steps']} outer iterations, "
        f"{cfg['learners_per_step']} fresh policy x {cfg['num_envs']} sampled episodes each per iteration, one "
        f"inner SGD step on {cfg['inner_batch']} generated pairs, episodes capped at {cfg['max_steps']} steps; "
        f"scored by {cfg['eval_learners']} fresh policies x {cfg['eval_episodes']} greedy episodes. A2C control: "
        f"{cfg['a2c_env_steps']:,} environment steps, {cfg['num_envs']} episodes an update. "
        f"Target return: {res['target']:.0f}.",
        "",
        "| seed | fresh one-step policies: mean return +- sd over policies | episodes at the cap | "
        "meta-training env steps | GTN curve reaches target after | A2C reaches target after | "
        "A2C final return | meta-training seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["seeds"]:
        lines.append(f"| {r['seed']} | **{r['mean']:.1f}** +- {r['std']:.1f} | {100 * r['solved']:.0f}% | "
                     f"{r['meta_env_steps']:,} | {_steps(r['gtn_steps_to_target'])} | "
                     f"{_steps(r['a2c_steps_to_target'])} | {r['a2c_final']:.1f} | {r['meta_seconds']:.0f} |")
    m = res["median"]
    lines += [f"| median | {_median_cell(m['mean'], '{:.1f}')} | | {_median_cell(m['meta_env_steps'])} | "
              f"{_median_cell(m['gtn_steps_to_target'])} | {_median_cell(m['a2c_steps_to_target'])} | | |", "",
              f"![{stem}_fig8](figures/{stem}_fig8.png)", "", f"![{stem}_pairs](figures/{stem}_pairs.png)"]
    return "\n".join(lines)


def _median(values) -> dict:
    """Median of the values that exist (None: a target never reached), and how many there were."""
    got = [v for v in values if v is not None]
    return {"median": statistics.median(got) if got else None, "n": len(got), "of": len(values)}


def _median_cell(m: dict, fmt: str = "{:,.0f}") -> str:
    if m["median"] is None:
        return "not reached"
    return fmt.format(m["median"]) + (f" ({m['n']} of {m['of']} seeds)" if m["n"] < m["of"] else "")


def main(argv=None) -> int:
    ap = plan_parser(__doc__, PLANS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--target", type=float, default=190.0, help="return whose first crossing is reported")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--runs", type=Path, default=None, help="run folders (default runs/repro_cartpole_<plan>)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the networks are tiny)")
    ap.add_argument("--replot", action="store_true",
                    help="redraw the figures and the markdown from the stored JSON and run folders; run nothing")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = args.runs or REPO / "runs" / f"repro_cartpole_{args.plan}"
    stem = f"repro_cartpole_{args.plan}"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        res = json.loads((args.out / f"{stem}.json").read_text())
        res["median"] = {k: _median([r[k] for r in res["seeds"]]) for k in MEDIANS}
    else:
        res = measure(args, runs)
    cap = res["config"]["max_steps"]
    curves = [{"gtn_curve": c["gtn"], "a2c_curve": c["a2c"], "final": {"max_steps": cap}}
              for c in res["curves"].values()]
    first_seed = res["seeds"][0]["seed"]
    first = build_cartpole(CartPoleConfig.from_dict({**res["config"], "seed": first_seed}), progress=False)
    first.load(runs / f"seed{first_seed}" / "checkpoint.pt")
    plt = pyplot()
    figures = {"fig8": plot_figure8(curves), "pairs": plot_pairs(first.teacher, first.curriculum)}
    for suffix, fig in figures.items():
        fig.savefig(args.out / f"{stem}_{suffix}.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    res["figures"] = [f"{stem}_{k}.png" for k in figures]
    write_json(args.out / f"{stem}.json", res)
    text = fragment(res, stem)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out):
        update_docs(stem, text)
    print(text)
    print(f"done; the runs took {res['seconds'] / 60:.1f} min; results in {args.out}/{stem}.*")
    return 0


def measure(args, runs: Path) -> dict:
    """Run (or resume) every seed's `run_cartpole`; the numbers of the JSON."""
    import gymnasium

    start, summaries, rows = time.perf_counter(), [], []
    for seed in args.seeds:
        cfg = CartPoleConfig.sized(PLANS[args.plan], seed=seed, device=args.device)
        s = run_cartpole(cfg, runs / f"seed{seed}", target=args.target, figures=False)
        summaries.append(s)
        rows.append({"seed": seed, "mean": s["final"]["mean"], "std": s["final"]["std"], "solved": s["final"]["solved"],
                     "meta_env_steps": s["meta_env_steps"], "gtn_steps_to_target": s["gtn_steps_to_target"],
                     "a2c_steps_to_target": s["a2c_steps_to_target"],
                     "a2c_final": s["a2c_curve"][-1]["return"] if s["a2c_curve"] else float("nan"),
                     "meta_seconds": s["meta_seconds"], "policy_means": s["final"]["policy_means"]})
        print(f"seed {seed}: {rows[-1]['mean']:.1f} +- {rows[-1]['std']:.1f}; steps to {args.target:.0f}: GTN "
              f"{_steps(s['gtn_steps_to_target'])}, A2C {_steps(s['a2c_steps_to_target'])}", flush=True)
    return {"plan": args.plan, "env": environment(args.device), "gymnasium": gymnasium.__version__,
            "seconds": time.perf_counter() - start, "config": summaries[0]["config"], "target": args.target,
            "seeds": rows, "median": {k: _median([r[k] for r in rows]) for k in MEDIANS},
            "curves": {r["seed"]: {"gtn": s["gtn_curve"], "a2c": s["a2c_curve"]} for r, s in zip(rows, summaries)}}


if __name__ == "__main__":
    sys.exit(main())
