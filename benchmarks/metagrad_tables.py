"""Targets, markdown tables and the figure of `metagrad_cost.py`.

    python benchmarks/metagrad_tables.py docs/figures/metagrad_cost.json   # re-draw from a saved JSON

The issue's targets (measured on CPU):

* the recomputing meta-gradient (`mode="recompute"`) at most 3x the time of plain training at T=32;
* its memory growth per added inner step at most 3x the bytes of the learner's
  weights, momentum and BN statistics (`LearnerState.num_bytes()`);
* at equal T, gtn_edu `full` no slower than higher's and torchopt's;
* `recompute` peak memory at T=128 at most 0.3x higher's and torchopt's.
"""

from __future__ import annotations

from pathlib import Path

from report import pyplot

__all__ = ["targets", "fragment", "plot", "ORDER"]

ORDER = ("plain", "gtn_nograd", "gtn_full", "gtn_recompute", "higher", "torchopt")
MIB = 2**20


def _verdict(value: float | None, limit: float, unit: str, missing: str) -> tuple[bool | None, str]:
    if value is None:
        return None, f"not measured ({missing})"
    ok = value <= limit
    return ok, f"{'holds' if ok else 'MISSED'}: {value:.3g}{unit} {'<=' if ok else '>'} {limit:g}{unit}"


def _peak_at(mem: dict, variant: str, T: int) -> tuple[float | None, bool]:
    """Measured peak at T, else extrapolated linearly from the last two measured points."""
    pts = mem.get(variant, {}).get("peak_bytes", {})
    if T in pts:
        return pts[T], False
    ts = sorted(pts)
    if len(ts) < 2:
        return None, True
    slope = (pts[ts[-1]] - pts[ts[-2]]) / (ts[-1] - ts[-2])
    return pts[ts[-1]] + max(0.0, slope) * (T - ts[-1]), True


def targets(res: dict) -> list[dict]:
    """The four targets of the issue, each with its value and verdict."""
    tm, mem, state = res["timing"], res.get("memory", {}), res["learner"]["state_bytes"]
    out = []

    def add(name, value, limit, unit, missing, note=""):
        ok, verdict = _verdict(value, limit, unit, missing)
        out.append({"name": name, "value": value, "limit": limit, "holds": ok, "verdict": verdict + note})

    r = tm.get("gtn_recompute", {}).get(32, {}).get("ratio_to_plain")
    add("recompute time at T=32 <= 3x plain training", r, 3.0, "x", "T=32 not timed")
    g = mem.get("gtn_recompute", {}).get("growth_per_step_bytes")
    add("recompute memory growth per inner step <= 3x learner state", None if g is None else g / state, 3.0,
        "x state", "no memory sweep with two or more T")
    for peer in ("higher", "torchopt"):
        ratios = {T: rec[f"ratio_to_{peer}"] for T, rec in tm.get("gtn_full", {}).items()
                  if f"ratio_to_{peer}" in rec}
        worst = max(ratios, key=ratios.get) if ratios else None
        add(f"gtn full no slower than {peer} at equal T", ratios.get(worst), 1.0, "x",
            f"{peer} not timed", f" (worst T={worst}; all T: "
            + ", ".join(f"{T}: {v:.2f}x" for T, v in sorted(ratios.items())) + ")" if ratios else "")
    ck = mem.get("gtn_recompute", {}).get("peak_bytes", {}).get(128)
    for peer in ("higher", "torchopt"):
        theirs, extrapolated = _peak_at(mem, peer, 128)
        value = ck / theirs if ck is not None and theirs else None
        note = " (theirs extrapolated from smaller T: they stopped at the memory limit)" if (
            value is not None and extrapolated) else ""
        add(f"recompute peak memory at T=128 <= 0.3x {peer}", value, 0.3, "x", "T=128 not measured", note)
    return out


def _header(res: dict) -> str:
    env, lr, pb = res["env"], res["learner"], res["problem"]
    lines = []
    if res["smoke"]:
        lines.append("**Smoke run (tiny sizes, T <= 4): to be replaced by the full run.** At these sizes Python "
                     "overhead sets the times and the allocator's granularity the memory numbers (a growth can come "
                     "out negative), so they say nothing about the targets.\n")
    lines.append(
        f"Measured on **{env['device_label']}** ({env['device']}), torch {env['torch']}, commit {env['commit']}, "
        f"{env['date']}. Learner: conv channels {tuple(lr['conv_channels'])}, hidden {lr['hidden']}, "
        f"{lr['learner_params']:,} weights; state (weights + momentum + BN statistics) "
        f"{lr['state_bytes'] / MIB:.2f} MiB. Teacher: {lr['teacher_params']:,} weights. Inner batch {pb['batch']}, "
        f"float32. Times ({'CPU time of the process' if res['settings'].get('clock') == 'cpu' else 'wall clock'}) "
        f"are medians of {res['settings']['repeats']} interleaved repeats; ratios are paired within each repeat.")
    return "\n".join(lines)


def fragment(res: dict) -> str:
    """The markdown tables for docs/benchmarks/cost.md."""
    vs = [v for v in ORDER if v in res["variants"]]
    steps = res["settings"]["steps"]
    tm, mem = res["timing"], res.get("memory", {})
    ag = res["agreement"]
    out = [_header(res), ""]
    out.append(f"Float64 agreement on a tiny problem (T={ag['T']}), maximum relative error against gtn `full`: "
               + ", ".join(f"{v} {r.get('max_rel_err', r.get('max_abs_err')):.1e}"
                           for v, r in ag["variants"].items())
               + (" - all agree." if ag["all_agree"] else " - **DISAGREE**."))
    out += ["", "Time as a ratio to plain training (lower is better):", "",
            "| T | " + " | ".join(vs) + " |", "|---" * (len(vs) + 1) + "|"]
    for T in steps:
        cells = [f"{tm[v][T]['ratio_to_plain']:.2f}" if T in tm.get(v, {}) else "-" for v in vs]
        out.append(f"| {T} | " + " | ".join(cells) + " |")
    if mem:
        procs = {"per-cell": "a fresh process per cell", "per-variant": "a fresh process per variant",
                 "one-process": "one fresh process for all cells", "in-process": "measured in the benchmark's process"}
        how = procs.get(res["settings"].get("memory_procs"), "")
        out += ["", f"Peak memory above set-up, MiB ({how}; - : stopped):", "",
                "| T | " + " | ".join(vs) + " |", "|---" * (len(vs) + 1) + "|"]
        for T in steps:
            cells = [f"{mem[v]['peak_bytes'][T] / MIB:.1f}" if T in mem.get(v, {}).get("peak_bytes", {}) else "-"
                     for v in vs]
            out.append(f"| {T} | " + " | ".join(cells) + " |")
        state = res["learner"]["state_bytes"]
        out += ["", "| variant | growth per added inner step, MiB | in learner states | stopped |", "|---|---|---|---|"]
        for v in vs:
            g = mem.get(v, {}).get("growth_per_step_bytes")
            stop = mem.get(v, {}).get("stopped_at")
            why = f"at T={stop}: {mem[v]['why']}" if stop else ""
            out.append(f"| {v} | {'-' if g is None else f'{g / MIB:.2f}'} | "
                       f"{'-' if g is None else f'{g / state:.2f}x'} | {why} |")
    out += ["", "Targets:", ""] + [f"- {t['name']}: {t['verdict']}" for t in res["targets"]]
    f32 = res.get("float32_rel_err_vs_reference", {})
    if f32:
        out += ["", "float32 meta-gradients at benchmark size, maximum relative difference from "
                + f"{next(iter(f32.values()))['reference']}: "
                + "; ".join(f"T={T}: " + ", ".join(f"{v} {e:.1e}" for v, e in r.items() if v != "reference")
                            for T, r in f32.items())]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path) -> Path:
    """Two panels: time ratio to plain training vs T, peak memory vs T (log axes)."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    tm, mem = res["timing"], res.get("memory", {})
    for v in (v for v in ORDER if v in res["variants"] and v != "plain"):
        ts = sorted(tm.get(v, {}))
        if ts:
            a1.plot(ts, [tm[v][T]["ratio_to_plain"] for T in ts], marker="o", label=v)
    a1.axhline(3.0, color="gray", ls="--", lw=1, label="target for recompute (3x)")
    a1.set(xscale="log", yscale="log", xlabel="inner steps T", ylabel="time / plain training",
           title="meta-gradient time (median ratio)")
    for v in (v for v in ORDER if v in res["variants"]):
        pts = mem.get(v, {}).get("peak_bytes", {})
        ts = sorted(pts)
        if ts:
            stop = mem[v].get("stopped_at")
            a2.plot(ts, [max(pts[T], 1) / MIB for T in ts], marker="o",
                    label=v + (f" (stopped at T={stop})" if stop else ""))
    if mem:
        ts = res["settings"]["steps"]
        a2.plot(ts, [3 * res["learner"]["state_bytes"] * T / MIB for T in ts], color="gray", ls="--", lw=1,
                label="3 x learner state x T")
        a2.set(xscale="log", yscale="log", xlabel="inner steps T", ylabel="peak memory above set-up (MiB)",
               title="peak memory")
        a2.legend(fontsize=7)
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3, which="both")
    a1.legend(fontsize=7)
    fig.suptitle(f"{'SMOKE - ' if res['smoke'] else ''}{res['env']['device_label']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def load(path: Path) -> dict:
    """A result JSON with its T keys turned back into integers."""
    import json

    text = Path(path).read_text().replace('"gtn_checkpoint"', '"gtn_recompute"')  # the variant's name before issue 24
    res = json.loads(text.replace('"name": "checkpoint ', '"name": "recompute '))
    res["timing"] = {v: {int(T): r for T, r in d.items()} for v, d in res.get("timing", {}).items()}
    for rec in res.get("memory", {}).values():
        rec["peak_bytes"] = {int(T): b for T, b in rec["peak_bytes"].items()}
    res["float32_rel_err_vs_reference"] = {int(T): r for T, r in res.get("float32_rel_err_vs_reference", {}).items()}
    return res


if __name__ == "__main__":  # re-draw the figure and tables of a saved result without measuring again
    import sys

    from report import is_docs_folder, update_docs

    for arg in sys.argv[1:]:
        path = Path(arg)
        res = load(path)
        res["targets"] = targets(res)
        plot(res, path.with_suffix(".png"))
        text = fragment(res)
        path.with_suffix(".md.txt").write_text(text)
        if is_docs_folder(path.parent):
            update_docs(path.stem, text + f"\n![{path.stem}](figures/{path.stem}.png)\n")
        print(f"re-drew {path.with_suffix('.png')} and {path.with_suffix('.md.txt')}")
