"""Checks that need a CUDA device (run by `gpu_check.sh`).

1. Meta-gradients (teacher, codes, lr, momentum) in float64, with real-data losses at
   intermediate steps too: `recompute` agrees with `full` on the device (rtol 1e-9),
   and the device agrees with the same problem on the CPU (rtol 1e-7). Every input of
   the problem (weights, codes, learner, real batch) is drawn on the CPU and moved, so
   both devices start from the same numbers; a check passes only if both comparisons do.
2. No host synchronisation inside the inner loop: both unroll modes and the backward
   pass run under `torch.cuda.set_sync_debug_mode("error")`, which raises on any
   operation that waits for the device (`.item()`, `nonzero`, device-to-host copies).
3. Resume on the device is bit-exact (`check_resume`): a `MetaTrainer` living on the
   device (recompute mode, scored after every inner step) fits 2 iterations, saves,
   fits 2 more; a freshly built one loads the file and fits 2. Every teacher, curriculum,
   sgd and Adam tensor, both random-number streams and the logged records (less
   "seconds") must be equal. `load` once mapped the file onto the device, so the RNG
   states became CUDA tensors and resuming raised. Runs with deterministic algorithms.
4. No memory leak in recompute mode with intermediate scored steps (`check_memory`):
   after each outer iteration and `gc.collect()`, `torch.cuda.memory_allocated` after
   the last iteration is not above its value after the second (1 MiB allocator slack),
   and no inner state a callback saw is still alive. Stored states used to leak through
   a reference cycle (an output held by its own autograd `ctx`), several MiB an iteration
   at this check's size.

    python benchmarks/cuda_checks.py --out results/cuda_checks.json

Exit code 0 when every check passes, 1 otherwise; the JSON says which failed and why.
`check_agreement(device, reference)`, `check_resume(device)` and `check_memory(device)`
also run without a GPU (on the CPU, `check_memory` counts live inner-state tensors),
which is how the tests check that they pass and that they can fail.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import traceback
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path

import torch
from report import environment, write_json

from gtn_edu import ArchSpace, Curriculum, OuterAdam, Teacher, UnrolledSGD
from gtn_edu.data import Split
from gtn_edu.meta import Callback, MetaTrainer, RealBatchLoss


def _problem(device: str, dtype: torch.dtype, T: int, per_step: bool):
    """A small meta-gradient problem, the same numbers on every device.

    Everything is drawn on the CPU from seed 0, cast to `dtype` there, then moved to
    `device`: drawing on the device would use that device's random stream.
    """
    torch.manual_seed(0)
    teacher = Teacher((1, 28, 28), 10, latent_dim=16, hidden=64, channels=8, conv_channels=8).to(dtype)
    cur = Curriculum.full(T, 20, 10, latent_dim=16).to(dtype)
    learner = ArchSpace.mnist(channel_ranges=((8, 16), (8, 16)), hidden_range=(16, 32)).sample(
        torch.Generator().manual_seed(0)).to(dtype)
    sgd = UnrolledSGD(0.05, 0.6, per_step=T if per_step else None).to(dtype)
    x = torch.randn(32, 1, 28, 28, dtype=dtype)
    y = torch.randint(10, (32,))
    return teacher.to(device), cur.to(device), learner.to(device), sgd.to(device), x.to(device), y.to(device)


def _meta_grads(mode: str, device: str, dtype: torch.dtype, T: int, per_step: bool, at):
    teacher, cur, learner, sgd, x, y = _problem(device, dtype, T, per_step)
    sgd.mode = mode
    wrt = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    states = sgd.unroll(learner, teacher.batches(cur), at=at)
    loss = torch.stack([learner.meta_loss(s, x, y) for s in states]).mean()
    return torch.autograd.grad(loss, wrt)


def _rel_err(got, want) -> float:
    """Largest error of any tensor, relative to that tensor's largest entry (floored at 1e-8 of the largest
    entry overall: some gradients are zero up to BatchNorm's eps)."""
    floor = 1e-8 * max(float(w.abs().max()) for w in want)
    return max(float((g - w).abs().max()) / max(float(w.abs().max()), floor) for g, w in zip(got, want))


def _agree(got, want, rtol: float) -> bool:
    """Every tensor of `got` is close to its reference, elementwise within `rtol`.

    Entries near zero get an absolute tolerance: `rtol` times the tensor's largest entry,
    and at least 1e-12 times the largest entry of all tensors, since some gradients (the
    biases in front of BatchNorm) are zero up to rounding and their largest entry is noise.
    """
    scale = max(float(w.abs().max()) for w in want)
    return all(torch.allclose(g.cpu(), w.cpu(), rtol=rtol, atol=max(rtol * float(w.abs().max()), 1e-12 * scale))
               for g, w in zip(got, want))


def check_agreement(device: str, reference: str = "cpu") -> dict:
    """float64: recompute == full on `device`, and `device` == `reference` (full mode).

    `agrees` needs both. The errors are reported as `_rel_err` measures them; the keys keep
    the names of the CUDA run (`cuda_vs_cpu_*`) whatever the two devices are.
    """
    T, out = 6, {}
    for per_step in (False, True):
        at = [2, 4, T]
        full = _meta_grads("full", device, torch.float64, T, per_step, at)
        ckpt = _meta_grads("recompute", device, torch.float64, T, per_step, at)
        ref = _meta_grads("full", reference, torch.float64, T, per_step, at)
        full, ckpt, ref = ([t.cpu() for t in grads] for grads in (full, ckpt, ref))
        ok_ck = _agree(ckpt, full, rtol=1e-9)
        ok_ref = _agree(full, ref, rtol=1e-7)
        out[f"per_step={per_step}"] = {
            "devices": [str(device), str(reference)],
            "recompute_vs_full_max_rel_err": _rel_err(ckpt, full), "recompute_vs_full_agrees": ok_ck,
            "cuda_vs_cpu_max_rel_err": _rel_err(full, ref), "cuda_vs_cpu_agrees": ok_ref,
            "agrees": ok_ck and ok_ref}
    return out


def check_no_sync(device: str) -> dict:
    """Run unroll + backward of each mode with sync debug mode 'error'."""
    out = {}
    for mode in ("full", "recompute"):
        teacher, cur, learner, sgd, x, y = _problem(device, torch.float32, 4, True)
        sgd.mode = mode
        batches = teacher.batches(cur)  # built outside: sampling an architecture happens on the host
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            state = sgd.unroll(learner, batches)
            learner.meta_loss(state, x, y).backward()
            out[mode] = {"no_sync": True}
        except RuntimeError as err:
            out[mode] = {"no_sync": False, "error": str(err).splitlines()[0],
                         "where": traceback.format_exc().splitlines()[-3:]}
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return out


def _toy_split(shape: tuple[int, int, int], k: int, n: int = 400) -> Split:
    """Class prototypes plus noise, drawn on the CPU (tests/test_meta.py's toy data)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    protos = torch.randn(k, *shape, generator=g)
    return Split(protos[y] + 0.5 * torch.randn(n, *shape, generator=g), y)


def _resume_trainer(device: str) -> MetaTrainer:
    """tests/test_meta.py::test_resume_is_bit_exact's trainer, built on the CPU and moved to `device`.

    Shuffled batches and per-step lr/momentum, so the data stream and every parameter group matter.
    The trainer takes its device from the curriculum's buffers: its data stream lives there.
    """
    shape, k = (1, 8, 8), 4
    torch.manual_seed(3)
    teacher = Teacher(shape, k, latent_dim=8, hidden=16, channels=4, conv_channels=4).to(device)
    cur = Curriculum.shuffled_batch(3, 8, k, latent_dim=8).to(device)
    sgd = UnrolledSGD(0.05, 0.5, per_step=3, mode="recompute").to(device)
    space = ArchSpace.mnist(shape, k, channel_ranges=((2, 4), (2, 4)), hidden_range=(4, 8))
    return MetaTrainer(teacher, cur, sgd, space, RealBatchLoss(_toy_split(shape, k).to(device), 16),
                       outer=OuterAdam(outer_lr=0.01), meta_loss_every=1, seed=5, progress=False)


def _trainer_tensors(tr: MetaTrainer) -> dict[str, torch.Tensor]:
    out = {f"{name}.{k}": v for name, m in (("teacher", tr.teacher), ("curriculum", tr.curriculum), ("sgd", tr.sgd))
           for k, v in m.state_dict().items()}
    for i, p in enumerate(tr.params):  # Adam's moments: a resumed optimiser must continue too
        for k, v in tr.optimizer.state.get(p, {}).items():
            out[f"adam.{i}.{k}"] = v
    return out


def _without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@contextmanager
def _deterministic():
    """Deterministic kernels (cuDNN, index backward) while resume is compared bit for bit; restored after.

    `warn_only`: an op without a deterministic kernel warns instead of raising; the warnings are
    collected into the list this yields, so a mismatch can be told apart from nondeterminism.
    cuBLAS needs CUBLAS_WORKSPACE_CONFIG before its first call (`main` sets it).
    """
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen: list[str] = []
            yield seen
            seen.extend(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def check_resume(device: str) -> dict:
    """Save after 2 iterations, fit 2 more; a fresh trainer loads and fits 2: all equal.

    `ok` needs every teacher/curriculum/sgd/Adam tensor `torch.equal`, both random-number
    streams equal, the resumed history equal to the saved one, the logged records of the
    last 2 iterations equal (less "seconds"), and no exception (`error` then holds its text).
    """
    out = {"device": str(device), "ok": False, "tensors_equal": None, "rng_equal": None,
           "records_equal": None, "mismatched": [], "max_abs_diff": None, "error": None, "nondeterministic_ops": []}
    try:
        with _deterministic() as nondeterministic, tempfile.TemporaryDirectory() as tmp:
            ck = Path(tmp) / "ck.pt"
            a = _resume_trainer(device)
            a.fit(2)
            a.save(ck)
            tail_a = a.fit(2)
            b = _resume_trainer(device)
            b.load(ck)
            history_equal = b.iteration == 2 and _without_time(b.history) == _without_time(a.history[:2])
            tail_b = b.fit(2)
            sa, sb = _trainer_tensors(a), _trainer_tensors(b)
            mismatched = sorted(k for k in sa.keys() | sb.keys()
                                if k not in sa or k not in sb or not torch.equal(sa[k], sb[k]))
            diffs = [float((sa[k].double() - sb[k].double()).abs().max()) for k in mismatched
                     if k in sa and k in sb and sa[k].shape == sb[k].shape and sa[k].is_floating_point()]
            rng_equal = (torch.equal(a.rng.get_state(), b.rng.get_state())
                         and torch.equal(a.arch_rng.get_state(), b.arch_rng.get_state()))
            out.update(tensors_equal=not mismatched, rng_equal=rng_equal,
                       records_equal=history_equal and _without_time(tail_a) == _without_time(tail_b),
                       mismatched=mismatched[:10], max_abs_diff=max(diffs, default=None),
                       meta_loss=[r["meta_loss"] for r in a.history])
        out["nondeterministic_ops"] = nondeterministic
        out["ok"] = bool(out["tensors_equal"] and out["rng_equal"] and out["records_equal"])
    except Exception as err:  # noqa: BLE001 - the report says what went wrong instead of stopping the other checks
        out["error"] = f"{type(err).__name__}: {err}"
        out["where"] = traceback.format_exc().splitlines()[-6:]
    return out


MEMORY_SLACK = 1 << 20
"""Bytes `torch.cuda.memory_allocated` may grow between the second and the last iteration."""


def _memory_trainer(device: str, callbacks) -> MetaTrainer:
    """Checkpoint mode scored after every inner step, with learners big enough for a leak to show.

    One MLP learner state (1x16x16 inputs, one hidden layer of 512, weights and momentum) is
    about 1 MiB; a leak keeps T = 4 or more of them per iteration, far above `MEMORY_SLACK`.
    """
    shape, k = (1, 16, 16), 4
    torch.manual_seed(0)
    teacher = Teacher(shape, k, latent_dim=8, hidden=16, channels=4, conv_channels=4).to(device)
    cur = Curriculum.full(4, 8, k, latent_dim=8).to(device)
    sgd = UnrolledSGD(0.05, 0.5, mode="recompute").to(device)
    space = ArchSpace.mlp(shape, k, width_range=(512, 512), max_layers=1)
    return MetaTrainer(teacher, cur, sgd, space, RealBatchLoss(_toy_split(shape, k).to(device), 16),
                       outer=OuterAdam(outer_lr=0.01), meta_loss_every=1, callbacks=callbacks, progress=False)


def check_memory(device: str, iterations: int = 20) -> dict:
    """Memory after each outer iteration (after `gc.collect()`) of a recompute-mode trainer with scored steps.

    Two measures: `allocated` (CUDA only: `torch.cuda.memory_allocated`) and `live_tensors`, the
    inner-state tensors a callback saw (through weak references) that are still alive. `ok`:
    after the last iteration neither is above its value after the second (`allocated` within
    `MEMORY_SLACK`). `leak_floor_bytes` is what one leaked iteration would add at the least
    (T states), to show that the slack cannot hide it.
    """
    if iterations < 3:
        raise ValueError(f"iterations must be >= 3 (the last is compared with the second), got {iterations}")
    seen: list[weakref.ref] = []
    state_bytes: list[int] = []

    class Watch(Callback):
        def on_inner_step(self, trainer, t, state, loss):
            seen.extend(weakref.ref(x) for x in state.tensors())
            if not state_bytes:
                state_bytes.append(state.num_bytes())

    cuda = torch.device(device).type == "cuda"
    out = {"device": str(device), "ok": False, "measure": "memory_allocated" if cuda else "live_tensors",
           "slack_bytes": MEMORY_SLACK if cuda else 0, "allocated": [] if cuda else None, "live_tensors": [],
           "error": None}
    try:
        tr = _memory_trainer(device, [Watch()])
        for _ in range(iterations):
            tr.outer_step()
            gc.collect()
            out["live_tensors"].append(sum(r() is not None for r in seen))
            if cuda:
                torch.cuda.synchronize(device)
                out["allocated"].append(torch.cuda.memory_allocated(device))
        out["state_bytes"] = state_bytes[0]
        out["leak_floor_bytes"] = tr.curriculum.steps * state_bytes[0]
        live = out["live_tensors"]
        ok = live[-1] <= live[1]
        if cuda:
            alloc = out["allocated"]
            out["growth_bytes"] = alloc[-1] - alloc[1]
            ok = ok and alloc[-1] <= alloc[1] + MEMORY_SLACK
        out["ok"] = ok
    except Exception as err:  # noqa: BLE001
        out["error"] = f"{type(err).__name__}: {err}"
        out["where"] = traceback.format_exc().splitlines()[-6:]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("cuda_checks.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_checks: no CUDA device", file=sys.stderr)
        return 1
    # Deterministic cuBLAS for check_resume; read once, at cuBLAS's first call, so set before any.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    res = {"env": environment(args.device), "agreement": check_agreement(args.device),
           "no_host_sync": check_no_sync(args.device), "resume": check_resume(args.device),
           "memory": check_memory(args.device)}
    res["passed"] = (all(r["agrees"] for r in res["agreement"].values())
                     and all(r["no_sync"] for r in res["no_host_sync"].values())
                     and res["resume"]["ok"] and res["memory"]["ok"])
    write_json(args.out, res)
    for k, v in {**res["agreement"], **res["no_host_sync"], "resume": res["resume"],
                 "memory": res["memory"]}.items():
        print(f"  {k}: {v}")
    print(f"cuda_checks: {'passed' if res['passed'] else 'FAILED'}; {args.out}")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
