"""Figures and markdown tables of `reproduce_mnist.py`, drawn from its JSON (any subset of stages)."""

from __future__ import annotations

from pathlib import Path

from report import pyplot

__all__ = ["figures", "fragment"]

ARM_LABEL = {"gtn": "GTN", "real": "real data", "distilled": "dataset distillation"}


def _pct(r: dict | None) -> str:
    return "-" if not r else f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f}"


def _save(fig, path: Path, plt) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _band(ax, xs, mean, std, label):
    m = [100 * v for v in mean]
    s = [100 * v for v in std]
    ax.plot(xs, m, marker="o", ms=3, label=label)
    ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2)


def figures(res: dict, out: Path, stem: str) -> list[Path]:
    """One PNG per figure whose stage has finished."""
    plt = pyplot()
    title = f"{stem} ({res['env']['device_label']})"
    paths = []
    if res["fig2a"]:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
        for kind, r in res["fig2a"].items():
            _band(a, r["curve"]["iteration"], r["curve"]["mean"], r["curve"]["std"], ARM_LABEL[kind])
        a.set(xlabel="outer iteration", ylabel="few-step test accuracy (%)", title="Figure 2a: across meta-training")
        for kind, r in res["fig2b"].items():
            _band(b, list(range(1, len(r["mean"]) + 1)), r["mean"], r["std"], ARM_LABEL[kind])
        b.set(xlabel="inner step", ylabel="test accuracy (%)", title="Figure 2b: across the inner loop (final)")
        for ax in (a, b):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=8)
        paths.append(out / f"{stem}_fig2.png")
        _save(fig, paths[-1], plt)
    if len(res["fig1c"]) > 1:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for variant, r in res["fig1c"].items():
            _band(ax, r["curve"]["iteration"], r["curve"]["mean"], r["curve"]["std"], variant)
        ax.set(xlabel="outer iteration", ylabel="few-step test accuracy (%)", title="Figure 1c: curricula")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=8)
        paths.append(out / f"{stem}_fig1c.png")
        _save(fig, paths[-1], plt)
    if res["fig1b"].get("runs"):
        runs = res["fig1b"]["runs"]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for i, wn in enumerate((True, False)):
            ok = [r["final_meta_loss"] for r in runs if r["weight_norm"] == wn and not r["diverged"]]
            bad = sum(r["diverged"] for r in runs if r["weight_norm"] == wn)
            if ok:
                ax.boxplot([ok], positions=[i], widths=0.5)
                ax.scatter([i] * len(ok), ok, s=12, alpha=0.7)
            label = f"weight norm {'on' if wn else 'off'}" + (f"\n{bad} diverged" if bad else "")
            ax.text(i, 1.0, label, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
        ax.set_xticks([0, 1], ["with weight norm", "without"])
        ax.set(ylabel="final meta-loss (lower is better)", xlim=(-0.6, 1.6))
        ax.set_title("Figure 1b: outer lr x inner steps grid", pad=26)
        ax.grid(alpha=0.3)
        paths.append(out / f"{stem}_fig1b.png")
        _save(fig, paths[-1], plt)
    if res["fig5"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
        for ax, axis, xlabel in zip(axes, ("batch", "steps"), ("inner batch size", "inner steps")):
            for name, r in res["fig5"].get(axis, {}).items():
                _band(ax, r["values"], r["mean"], r["std"], name)
            ax.set(xscale="log", xlabel=xlabel, ylabel="few-step test accuracy (%)")
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_title("Figure 5a: larger batches (T fixed)")
        axes[1].set_title("Figure 5b: more inner steps (batch fixed)")
        fig.suptitle(title, fontsize=8)
        paths.append(out / f"{stem}_fig5.png")
        _save(fig, paths[-1], plt)
    if res["fig7"]:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for kind, r in res["fig7"].items():
            line, = ax.plot(r["sizes"], [100 * v for v in r["ensemble"]], marker="o",
                            label=f"{ARM_LABEL[kind]}: ensemble")
            ax.axhline(100 * r["single"]["mean"], color=line.get_color(), ls="--", lw=1,
                       label=f"{ARM_LABEL[kind]}: single learner (mean)")
        ax.set(xscale="log", xlabel="learners in the ensemble", ylabel="test accuracy (%)",
               title="Figure 7: ensembles trained on one teacher")
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(out / f"{stem}_fig7.png")
        _save(fig, paths[-1], plt)
    return paths


def fragment(res: dict, stem: str, figures: list[Path] = ()) -> str:
    """Markdown tables with the device and settings beside the numbers (and `figures`, linked from docs/)."""
    env, cfg, plan = res["env"], res["config"], res["plan"]
    out = []
    if plan["name"] == "smoke":
        out.append("**Smoke run (tiny sizes, a few outer iterations): it shows the pipeline works, not a result; "
                   "to be replaced by the `--quick` run.**\n")
    stages = ", ".join(f"{k}: {v}" for k, v in res["stages"].items())
    total = res["seconds"].get("total")
    out.append(f"`--{plan['name']}` on **{env['device_label']}** ({env['device']}), torch {env['torch']}, "
               f"commit {env['commit']}, {env['date']}; T={cfg['inner_steps']}, inner batch {cfg['inner_batch']}, "
               f"outer batch {cfg['outer_batch']}, generator FC {cfg['teacher_hidden']} / {cfg['teacher_channels']} "
               f"channels, learner widths x{cfg['arch_scale']}, per-step lr/momentum {cfg['per_step_hyper']}, "
               f"mode {cfg['mode']}. Stages: {stages}."
               + (f" Wall time of this run {total / 60:.1f} min." if total and plan["name"] != "smoke" else "")
               + (f" Time limit {res['time_limit']:.0f} s." if res.get("time_limit") else ""))
    if res["final"]:
        n_test = plan.get("final_test") or 10000
        out += ["", f"Few-step test accuracy (%) of fresh learners (mean +- sd over learners; {n_test} test images):",
                "",
                "| arm | accuracy | outer iterations | learned lr (first, last step) | momentum (first, last) |",
                "|---|---|---|---|---|"]
        for kind, r in res["final"].items():
            its = res["fig2a"].get(kind, {}).get("outer_iterations", "-")
            lr, mom = r["lr"], r["momentum"]
            out.append(f"| {ARM_LABEL[kind]} | {_pct(r)} | {its} | {lr[0]:.3f}, {lr[-1]:.3f} | "
                       f"{mom[0]:.2f}, {mom[-1]:.2f} |")
    if res["fig2b"]:
        out += ["", "Figure 2b, accuracy (%) after inner step t (test subset):", "",
                "| arm | " + " | ".join(f"t={t}" for t in _ticks(len(next(iter(res["fig2b"].values()))["mean"])))
                + " |", "|---" * (1 + len(_ticks(len(next(iter(res["fig2b"].values()))["mean"])))) + "|"]
        for kind, r in res["fig2b"].items():
            out.append(f"| {ARM_LABEL[kind]} | " + " | ".join(f"{100 * r['mean'][t - 1]:.1f}"
                                                            for t in _ticks(len(r["mean"]))) + " |")
    if len(res["fig1c"]) > 1:
        out += ["", "Figure 1c, curricula: few-step accuracy (%) at the last evaluation (test subset):", "",
                "| curriculum | accuracy | outer iterations |", "|---|---|---|"]
        for variant, r in res["fig1c"].items():
            c = r["curve"]
            out.append(f"| {variant} | {100 * c['mean'][-1]:.2f} +- {100 * c['std'][-1]:.2f} | {c['iteration'][-1]} |")
    if res["fig1b"].get("runs"):
        out += ["", "Figure 1b, final meta-loss (mean of the last quarter of iterations):", "",
                "| weight norm | outer lr | T | final meta-loss | iterations |", "|---|---|---|---|---|"]
        for r in res["fig1b"]["runs"]:
            v = "diverged" if r["diverged"] else f"{r['final_meta_loss']:.3f}"
            out.append(f"| {'on' if r['weight_norm'] else 'off'} | {r['outer_lr']:g} | {r['steps']} | {v} | "
                       f"{r['iterations']} |")
    for axis, what in (("batch", "inner batch"), ("steps", "inner steps")):
        rows = res["fig5"].get(axis)
        if rows:
            values = next(iter(rows.values()))["values"]
            out += ["", f"Figure 5, accuracy (%) against {what} (test subset):", "",
                    "| source | " + " | ".join(str(v) for v in values) + " |", "|---" * (1 + len(values)) + "|"]
            for name, r in rows.items():
                out.append(f"| {name} | " + " | ".join(f"{100 * m:.1f}" for m in r["mean"]) + " |")
    if res["fig7"]:
        out += ["", f"Figure 7, ensembles (accuracy %, {plan.get('final_test') or 10000} test images):", "",
                "| teacher | single learner | " + " | ".join(
                    f"ensemble of {n}" for n in next(iter(res["fig7"].values()))["sizes"]) + " |",
                "|---" * (2 + len(next(iter(res["fig7"].values()))["sizes"])) + "|"]
        for kind, r in res["fig7"].items():
            out.append(f"| {ARM_LABEL[kind]} | {_pct(r['single'])} | "
                       + " | ".join(f"{100 * v:.2f}" for v in r["ensemble"]) + " |")
    if res["heldout"]:
        spaces = list(next(iter(res["heldout"].values())))
        n_test = plan.get("final_test") or 10000
        out += ["", f"Architectures held out of meta-training (accuracy %, {n_test} test images):", "",
                "| trained on | " + " | ".join(spaces) + " |", "|---" * (1 + len(spaces)) + "|"]
        for kind, r in res["heldout"].items():
            out.append(f"| {ARM_LABEL[kind]} | " + " | ".join(_pct(r[s]) for s in spaces) + " |")
    for path in figures:
        out += ["", f"![{path.stem}](figures/{path.name})"]
    return "\n".join(out) + "\n"


def _ticks(T: int) -> list[int]:
    """At most eight inner steps to show, always the first and the last."""
    if T <= 8:
        return list(range(1, T + 1))
    return sorted({1, T} | {round(1 + i * (T - 1) / 7) for i in range(8)})
