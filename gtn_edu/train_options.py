"""The options of `gtn-edu train` and what a run takes from them, or from its folder on a resume.

One option per `GTNConfig` field, its help taken from the field's docstring entry with the
defaults of each table (`add_config_options`); the config a run trains with: the dataset's
paper table, shrunk by `--quick`, with the options given, or a resumed run's own from its
`run.json` (`config_of`); and the run's other settings (arms, device, thread layout), fresh
or checked against the manifest on a resume (`run_settings`, `resumed_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import re
import typing
from pathlib import Path

import torch

from .checks import unroll_mode, upgraded_config
from .config import CIFARConfig, GTNConfig, MNISTConfig, config_for, quick
from .runs import MANIFEST, differences, read_manifest, with_flags

__all__ = ["add_config_options", "config_of", "resume_folder", "run_settings", "resumed_settings",
           "check_run_options", "parallel_arms"]

_ALIASES = {"inner_steps": "--steps"}


def _field_help() -> dict[str, str]:
    """Each GTNConfig field's help: the first sentence of its entry in the class docstring, and its defaults.

    The defaults are the MNIST table's, then what `--quick` and `--dataset cifar10` (and both) make
    of them where they differ, so `--help` shows each default once with the value a run will use.
    """
    docs, name = {}, None
    for line in inspect.getdoc(GTNConfig).split("Attributes:")[1].splitlines():
        if m := re.match(r" {4}(\w+): (.*)", line):
            name, docs[m.group(1)] = m.group(1), m.group(2)
        elif name and line.startswith(" " * 8):
            docs[name] += " " + line.strip()
    mnist, cifar = MNISTConfig(), CIFARConfig()  # each variant against what it changes
    tables = {"--quick": (quick(mnist), mnist), "cifar10": (cifar, mnist), "cifar10 --quick": (quick(cifar), cifar)}
    show = lambda v: " ".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
    out = {}
    for f in dataclasses.fields(GTNConfig):
        where = "; ".join(f"{label}: {show(getattr(cfg, f.name))}" for label, (cfg, base) in tables.items()
                          if getattr(cfg, f.name) != getattr(base, f.name) and f.name != "dataset")
        sentence = re.split(r"(?<=[a-z)])\. ", docs.get(f.name, ""))[0].rstrip(".")
        out[f.name] = f"{sentence} (default {show(f.default)}" + (f"; {where})" if where else ")")
    return out


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per GTNConfig field (defaults left None so --quick can fill them)."""
    hints, helps = typing.get_type_hints(GTNConfig), _field_help()
    for f in dataclasses.fields(GTNConfig):
        flags = [f"--{f.name.replace('_', '-')}"] + ([_ALIASES[f.name]] if f.name in _ALIASES else [])
        kind, say = hints[f.name], helps[f.name].replace("%", "%%")
        if kind is bool:
            p.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=say)
        elif f.name == "adam_betas":
            p.add_argument(*flags, dest=f.name, type=float, nargs=2, default=None, help=say,
                           metavar=("BETA1", "BETA2"))
        else:
            typ = {int: int, float: float, str: str}.get(kind, float)
            p.add_argument(*flags, dest=f.name, type=typ, default=None, help=say)


def _overrides(args: argparse.Namespace) -> dict:
    """The config fields given on the command line."""
    out = {f.name: getattr(args, f.name) for f in dataclasses.fields(GTNConfig) if getattr(args, f.name) is not None}
    if "adam_betas" in out:
        out["adam_betas"] = tuple(out["adam_betas"])
    if "mode" in out:  # --mode checkpoint, the old name of recompute, warns
        out["mode"] = unroll_mode(out["mode"])
    return out


def config_of(args: argparse.Namespace) -> GTNConfig:
    """The dataset's paper table, shrunk by --quick, with the options given; or a resumed run's own."""
    overrides = _overrides(args)
    if args.resume is not None:
        return _resumedconfig_of(args, overrides)
    try:
        cfg = config_for(overrides.get("dataset", "mnist"))
        if args.quick:
            cfg = quick(cfg)
        return dataclasses.replace(cfg, **overrides)
    except ValueError as err:  # name the flags, not the config's fields
        raise ValueError(with_flags(str(err), [f.name for f in dataclasses.fields(GTNConfig)])) from None


def resume_folder(args: argparse.Namespace) -> Path:
    path = Path(args.resume)
    return path.parent if path.suffix == ".pt" else path


def _resumedconfig_of(args: argparse.Namespace, overrides: dict) -> GTNConfig:
    """The config in the resumed run's manifest; ValueError if a given option disagrees with it."""
    saved = upgraded_config(read_manifest(resume_folder(args))["config"])
    said = differences(saved, overrides)
    if said:
        raise ValueError(f"--resume continues a run with the settings it was started with, but these options differ: "
                         f"{', '.join(said)}. Leave them out, or start a new run without --resume.")
    try:
        return GTNConfig.from_dict(saved)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--resume {args.resume}: the config in {MANIFEST} is not valid ({err}); start a new run") \
            from None


def run_settings(args: argparse.Namespace, n_arms: int) -> dict:
    """What else decides a run's numbers besides its config: arms, device, process and thread layout."""
    parallel = parallel_arms(args, n_arms)
    threads = max(1, (os.cpu_count() or 1) // n_arms) if parallel else torch.get_num_threads()
    return {"arms": ["gtn"] + ([] if args.no_baseline else ["real"]), "device": args.device, "quick": bool(args.quick),
            "parallel_arms": parallel, "threads": threads}


def resumed_settings(args: argparse.Namespace, manifest: dict, device: str) -> dict:
    """The manifest's run settings; ValueError naming each flag given with --resume that disagrees."""
    said = []
    if args.no_baseline and manifest["arms"] != ["gtn"]:
        said.append(f"--no-baseline (the run trains the arms {', '.join(manifest['arms'])})")
    if args.quick and not manifest["quick"]:
        said.append("--quick (the run was started without it)")
    if args.parallel_arms is not None and args.parallel_arms != manifest["parallel_arms"]:
        said.append(f"--{'' if args.parallel_arms else 'no-'}parallel-arms (the run has "
                    f"parallel_arms={manifest['parallel_arms']})")
    if device != manifest["device"]:
        said.append(f"--device {device} (the run's: {manifest['device']})")
    if said:
        raise ValueError(f"--resume continues a run with the settings it was started with, but these options differ: "
                         f"{', '.join(said)}. Leave them out, or start a new run without --resume.")
    return {k: manifest[k] for k in ("arms", "device", "quick", "parallel_arms", "threads")}


def parallel_arms(args: argparse.Namespace, n_arms: int) -> bool:
    """Run the arms side by side? `--parallel-arms`, else yes on a CPU with a core per arm."""
    if args.parallel_arms is not None:
        return args.parallel_arms and n_arms > 1
    return n_arms > 1 and torch.device(args.device).type == "cpu" and (os.cpu_count() or 1) >= n_arms


def check_run_options(args: argparse.Namespace) -> None:
    """The options that are not config fields: ranges, and what goes with --resume."""
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be an integer >= 0, got {args.checkpoint_every}")
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit >= 0):
        raise ValueError(f"--time-limit must be a finite number of seconds >= 0, got {args.time_limit}")
    if args.resume is not None and args.out is not None and \
            Path(args.out).resolve() != resume_folder(args).resolve():
        raise ValueError(f"--resume {args.resume} continues in its own folder; leave out --out {args.out} (or give "
                         "the same folder)")
