"""`benchmarks/cuda_checks.py` without a GPU: its checks pass on the CPU and fail on the defects they look for.

`check_agreement(device, reference)` compares the meta-gradients of one problem on two
devices; here both are the CPU. `check_resume` and `check_memory` run their trainers on
the CPU; each is shown to fail by putting its defect back with a monkeypatch. The script
imports its neighbour `report`, so `benchmarks/` goes on the import path first.
"""

import sys

import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import cuda_checks  # noqa: E402

from gtn_edu.meta import MetaTrainer  # noqa: E402
from gtn_edu.recompute import RecomputedUnroll  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """The problem is small: one thread is as fast, and two slow down tenfold on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_agreement_passes_on_the_cpu():
    res = cuda_checks.check_agreement("cpu", reference="cpu")
    assert set(res) == {"per_step=False", "per_step=True"}
    for r in res.values():
        assert r["agrees"] and r["recompute_vs_full_agrees"] and r["cuda_vs_cpu_agrees"], r
        # the same computation twice; recompute mode recomputes in another order (rounding, ~1e-15 absolute,
        # which _rel_err measures against 1e-8 of the largest gradient where a gradient is zero)
        assert r["cuda_vs_cpu_max_rel_err"] < 1e-12 and r["recompute_vs_full_max_rel_err"] < 1e-6, r


def test_agreement_fails_when_the_reference_differs(monkeypatch):
    """A 1% error in one gradient of the reference device is caught, while recompute == full still holds.

    The reference is passed as a `torch.device`, the device under test as a string, so the fake
    `_meta_grads` can tell the reference's calls apart although both are the CPU.
    """
    real = cuda_checks._meta_grads
    reference = torch.device("cpu")

    def perturbed(mode, device, *args):
        grads = list(real(mode, device, *args))
        if isinstance(device, torch.device):
            grads[0] = grads[0] * 1.01  # the first teacher weight's gradient
        return tuple(grads)

    monkeypatch.setattr(cuda_checks, "_meta_grads", perturbed)
    res = cuda_checks.check_agreement("cpu", reference=reference)
    for r in res.values():
        assert not r["agrees"] and not r["cuda_vs_cpu_agrees"], r
        assert r["recompute_vs_full_agrees"], r
        assert r["cuda_vs_cpu_max_rel_err"] == pytest.approx(0.01 / 1.01, rel=1e-6), r


def test_resume_passes_on_the_cpu():
    def settings():
        return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    before = settings()
    res = cuda_checks.check_resume("cpu")
    assert res["ok"] and res["error"] is None, res
    assert res["tensors_equal"] and res["rng_equal"] and res["records_equal"] and not res["mismatched"], res
    assert len(res["meta_loss"]) == 4
    assert settings() == before  # the check turns deterministic algorithms on only while it runs


def test_resume_fails_when_the_data_stream_is_not_restored(monkeypatch):
    """`load_state_dict` that keeps the fresh trainer's data stream: shuffles and real batches differ."""
    real = MetaTrainer.load_state_dict

    def forgetful(self, ckpt):
        fresh = self.rng.get_state()
        real(self, ckpt)
        self.rng.set_state(fresh)

    monkeypatch.setattr(MetaTrainer, "load_state_dict", forgetful)
    res = cuda_checks.check_resume("cpu")
    assert not res["ok"] and res["error"] is None, res
    assert not res["records_equal"] and not res["tensors_equal"] and not res["rng_equal"], res
    assert res["mismatched"] and res["max_abs_diff"] > 0, res


def test_resume_reports_an_exception(monkeypatch):
    """A load that raises (as CUDA RNG states did) is a failed check with the error's text, not a crash."""
    def broken(self, path):
        raise TypeError("RNG state must be a torch.ByteTensor")

    monkeypatch.setattr(MetaTrainer, "load", broken)
    res = cuda_checks.check_resume("cpu")
    assert not res["ok"] and res["error"] == "TypeError: RNG state must be a torch.ByteTensor", res


def test_memory_passes_on_the_cpu():
    res = cuda_checks.check_memory("cpu", iterations=5)
    assert res["ok"] and res["error"] is None, res
    assert res["measure"] == "live_tensors" and res["live_tensors"] == [0] * 5, res
    assert res["leak_floor_bytes"] > 2 * cuda_checks.MEMORY_SLACK, res  # on CUDA the slack cannot hide a leak


def test_memory_fails_on_the_old_reference_cycle(monkeypatch):
    """The leak put back: `RecomputedUnroll`'s ctx holds its own outputs, as it did before the fix."""
    real = RecomputedUnroll.forward

    def leaky(ctx, *args):
        outputs = real(ctx, *args)
        ctx.outputs = outputs
        return outputs

    monkeypatch.setattr(RecomputedUnroll, "forward", staticmethod(leaky))
    res = cuda_checks.check_memory("cpu", iterations=4)
    assert not res["ok"] and res["error"] is None, res
    live = res["live_tensors"]
    assert live[0] > 0 and all(b > a for a, b in zip(live, live[1:])), res
