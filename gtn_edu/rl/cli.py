"""`gtn-edu rl`: meta-train a CartPole GTN, score fresh one-step policies, run the A2C control.

    gtn-edu rl --quick --out runs/cartpole          # 2-core CPU: under 2 minutes
    gtn-edu rl --resume runs/cartpole               # continue an interrupted run exactly

Writes `summary.json`, `log.jsonl`, `checkpoint.pt`, `figure8.png`, `pairs.png` and
`episode.png` into `--out`.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ..checkpoint_io import CheckpointError, read_checkpoint
from ..runs import (
    OneDefaultHelp,
    StopOnSignal,
    check_device,
    differences,
    refuse_other_run,
    remove_stale_temporaries,
    with_flags,
    writable_folder,
)
from .config import CartPoleConfig

__all__ = ["add_parser", "run"]

_OPTIONS = {"seed": int, "outer_steps": int, "num_envs": int, "max_steps": int, "outer_lr": float,
            "a2c_env_steps": int, "eval_learners": int, "device": str}


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the `rl` subcommand to the `gtn-edu` parser's subparsers."""
    p = sub.add_parser("rl", help="CartPole (appendix H): a GTN that teaches a policy in one SGD step",
                       formatter_class=OneDefaultHelp)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="the CPU size (the default): 200 outer iterations of 32 episodes")
    size.add_argument("--tiny", dest="size", action="store_const", const="tiny", help="seconds: for tests")
    size.add_argument("--paper", dest="size", action="store_const", const="paper",
                      help="longer: 1000 outer iterations of 64 episodes, no weight norm")
    p.add_argument("--out", default="runs/cartpole", help="the run folder")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_FOLDER",
                   help="continue the run in this folder (as `gtn-edu train --resume`; alone: the --out folder) "
                        "from its checkpoint, with the settings it was started with")
    p.add_argument("--checkpoint-every", type=int, default=25, metavar="N", help="outer iterations between checkpoints")
    p.add_argument("--no-figures", action="store_true", help="skip the figures (no matplotlib needed)")
    for name, typ in _OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=typ, default=None,
                       help=f"CartPoleConfig.{name} (default: the size's)")
    p.add_argument("--eval-policies", dest="old_eval_policies", type=int, default=None,
                   help=argparse.SUPPRESS)  # the old name of --eval-learners (`_old_flags`)
    p.set_defaults(size=None)
    return p


def _resume_folder(args: argparse.Namespace) -> None:
    """`--resume DIR` names the run folder, as for `gtn-edu train`; `--resume --out DIR` still works."""
    if isinstance(args.resume, str):
        if args.out not in (None, "runs/cartpole", args.resume):
            raise ValueError(f"--resume {args.resume} and --out {args.out} name two folders; give one")
        args.out = args.resume
    args.resume = args.resume is not None


def _old_flags(args: argparse.Namespace) -> str | None:
    """`--eval-policies N`, the old name of `--eval-learners N`, moved to the new one; the note to print, if any."""
    old = getattr(args, "old_eval_policies", None)
    if old is None:
        return None
    if args.eval_learners is not None:
        raise ValueError("--eval-policies is the old name of --eval-learners; give only --eval-learners")
    args.eval_learners = old
    return "--eval-policies is deprecated: it is now --eval-learners, as for gtn-edu train; use --eval-learners"


def _config(args: argparse.Namespace) -> CartPoleConfig:
    """The run's config; a note on stderr (and a DeprecationWarning) for an old flag, once the config is valid.

    After the config, so that a bad value still fails with one line, as every option does.
    """
    note = _old_flags(args)
    cfg = _settings(args)
    if note:
        print(f"note: {note}", file=sys.stderr)
        warnings.warn(note, DeprecationWarning, stacklevel=2)
    return cfg


def _settings(args: argparse.Namespace) -> CartPoleConfig:
    """A new run's config (the size's, with the flags given), or the resumed run's (its checkpoint's)."""
    given = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    ckpt = Path(args.out) / "checkpoint.pt"
    if not args.resume:
        try:
            return CartPoleConfig.sized(args.size or "quick", **given)
        except ValueError as err:  # name the flags, not the config's fields
            raise ValueError(with_flags(str(err), _OPTIONS, prefix="CartPoleConfig.")) from None
    if not ckpt.exists():
        raise ValueError(f"--resume: no checkpoint.pt in {args.out}; give the --out folder of the run to continue")
    try:
        cfg = CartPoleConfig.from_dict(read_checkpoint(ckpt)["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{ckpt} holds no valid CartPole config ({err}); start a new run") from None
    said = differences(cfg.to_dict(), given) + ([f"--{args.size}"] if args.size else [])
    if said:
        raise ValueError(f"--resume continues a run with the settings it was started with; these differ: "
                         f"{', '.join(said)}. Leave them out, or start a new run without --resume.")
    return cfg


def run(args: argparse.Namespace) -> dict:
    """Run `gtn-edu rl`; returns the summary it writes."""
    from .experiment import run_cartpole

    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be an integer >= 0, got {args.checkpoint_every}")
    _resume_folder(args)
    cfg = _config(args)
    check_device(cfg.device)
    out = writable_folder(args.out)
    if not args.resume:
        refuse_other_run(out, f"gtn-edu rl --resume {out}")
    for stale in remove_stale_temporaries(out):
        print(f"removed {stale}, left by a checkpoint write that was cut short")
    print(f"CartPole GTN: {cfg.outer_steps} outer iterations of {cfg.num_envs} episodes (cap {cfg.max_steps}), "
          f"{cfg.inner_steps} inner step(s) on {cfg.inner_batch} generated pairs, device {cfg.device}"
          + (f"; resuming from {args.out}" if args.resume else ""))
    start = time.perf_counter()
    with StopOnSignal() as stop:  # Ctrl-C or kill: stop after the outer iteration in flight, with its checkpoint
        s = run_cartpole(cfg, args.out, resume=args.resume, checkpoint_every=args.checkpoint_every,
                         figures=not args.no_figures, callbacks=[stop])
    f = s["final"]
    print(f"fresh policies after {cfg.inner_steps} SGD step(s) on the GTN's data: {f['mean']:.1f} +- {f['std']:.1f} "
          f"of {f['max_steps']} ({f['policies']} policies x {f['episodes']} greedy episodes); meta-training played "
          f"{s['meta_env_steps']:,} environment steps")
    if s["a2c_curve"]:
        last = s["a2c_curve"][-1]
        reach = {k: "not reached" if s[f"{k}_steps_to_target"] is None else f"{s[f'{k}_steps_to_target']:,}"
                 for k in ("gtn", "a2c")}
        print(f"A2C control: {last['return']:.1f} after {last['env_steps']:,} environment steps; steps until a "
              f"learning-curve point reached {s['target']:.0f}: GTN {reach['gtn']}, A2C {reach['a2c']}")
    print(f"done in {time.perf_counter() - start:.0f} s; summary and figures in {args.out}/")
    return s

