"""Smoke versions of the benchmark scripts: each runs end to end in about 20 s and writes sane results.

The peer libraries of the cost benchmark (`higher`, `torchopt`) come with the `bench`
extra; without them their variants are left out and the rest still runs.
"""

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from gtn_edu import load_dataset
from gtn_edu.nas import GroundTruth

BENCH = REPO / "benchmarks"
PEERS = [name for name in ("higher", "torchopt") if importlib.util.find_spec(name) is not None]


def _run(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.parametrize("name", ["higher", "torchopt"])
def test_peer_library_is_compared(name):
    """Says, as a skip, when a peer of the cost benchmark is missing (CI may install only `.[dev]`)."""
    if name not in PEERS:
        pytest.skip(f"{name} is not installed, so the cost benchmark leaves it out: pip install -e '.[bench]'")
    assert importlib.util.find_spec(name) is not None


def test_metagrad_cost_smoke(tmp_path):
    variants = ["plain", "gtn_nograd", "gtn_full", "gtn_recompute", *PEERS]
    _run("metagrad_cost.py", "--smoke", "--out", str(tmp_path), "--variants", *variants)
    res = json.loads((tmp_path / "metagrad_cost.json").read_text())
    assert (tmp_path / "metagrad_cost.png").stat().st_size > 0
    assert "| T |" in (tmp_path / "metagrad_cost.md.txt").read_text()
    # every variant gives the same float64 meta-gradient (teacher, codes, lr and momentum)
    ag = res["agreement"]
    assert ag["all_agree"] and set(ag["variants"]) >= {"gtn_recompute", "plain", *PEERS}
    for v in ("gtn_recompute", *PEERS):
        assert ag["variants"][v]["max_rel_err"] < 1e-9
        assert {"codes", "raw_lr", "raw_momentum"} <= set(ag["variants"][v]["compared"])
    # timing: medians and ratios for every variant and T; plain is the unit
    assert res["settings"]["steps"] == [2, 4]
    for v in variants:
        for T in ("2", "4"):
            rec = res["timing"][v][T]
            assert len(rec["seconds"]) == 2 and rec["median_s"] > 0 and rec["ratio_to_plain"] > 0
    assert res["timing"]["plain"]["4"]["ratio_to_plain"] == 1.0
    # memory: a number per variant and T; the full unroll's memory grows with T
    for v in variants:
        assert set(res["memory"][v]["peak_bytes"]) == {"2", "4"}
    full = res["memory"]["gtn_full"]["peak_bytes"]
    assert full["4"] > full["2"] > 0
    assert res["learner"]["state_bytes"] > 0
    assert {t["name"] for t in res["targets"]} >= {"recompute time at T=32 <= 3x plain training"}


def test_metagrad_cost_aborts_when_a_variant_disagrees(tmp_path, monkeypatch):
    """A meta-gradient that is off by 1e-6 stops the benchmark before anything is timed."""
    monkeypatch.syspath_prepend(str(BENCH))
    import metagrad_cost
    import metagrad_variants

    right = metagrad_variants.VARIANTS["gtn_recompute"]

    def slightly_wrong(p, T):
        run = right(p, T)
        return lambda: [None if g is None else g * (1 + 1e-6) for g in run()]

    monkeypatch.setitem(metagrad_variants.VARIANTS, "gtn_recompute", slightly_wrong)
    threads = torch.get_num_threads()
    try:
        rc = metagrad_cost.main(["--smoke", "--out", str(tmp_path), "--variants", "plain", "gtn_full",
                                 "gtn_recompute"])
    finally:
        torch.set_num_threads(threads)  # --smoke sets one thread
    assert rc == 1
    res = json.loads((tmp_path / "metagrad_cost.json").read_text())
    assert not res["agreement"]["all_agree"] and "timing" not in res


def test_reproduce_mnist_smoke(tmp_path, data_root):
    proc = _run("reproduce_mnist.py", "--smoke", "--device", "cpu", "--data-root", str(data_root),
                "--out", str(tmp_path))
    assert "estimated" in proc.stdout  # the time estimate is printed first
    res = json.loads((tmp_path / "repro_smoke.json").read_text())
    assert all(v == "done" for v in res["stages"].values()), res["stages"]
    for arm in ("gtn", "real", "distilled"):
        assert 0 <= res["final"][arm]["mean"] <= 1
        assert res["fig2a"][arm]["curve"]["iteration"][-1] == 2
        assert len(res["fig2b"][arm]["mean"]) == res["config"]["inner_steps"]
    assert set(res["fig1c"]) == {"full", "shuffled_batch", "all_shuffled", "none"}
    assert {(r["weight_norm"], r["steps"]) for r in res["fig1b"]["runs"]} == {(True, 2), (False, 2)}
    assert res["fig5"]["batch"]["real data"]["values"] == [20, 40]
    assert res["fig5"]["steps"]["GTN (no curriculum)"]["values"] == [2, 4]
    assert len(res["fig7"]["gtn"]["ensemble"]) == 1
    assert set(res["heldout"]["gtn"]) == {"meta-training space", "conv, 2x wider", "MLP"}
    for fig in ("fig2", "fig1c", "fig1b", "fig5", "fig7", "samples"):
        assert (tmp_path / f"repro_smoke_{fig}.png").stat().st_size > 0
    assert "Few-step test accuracy" in (tmp_path / "repro_smoke.md.txt").read_text()


def test_reproduce_mnist_time_limit_keeps_partial_results(tmp_path, data_root):
    _run("reproduce_mnist.py", "--smoke", "--device", "cpu", "--data-root", str(data_root), "--out",
         str(tmp_path), "--time-limit", "0.001", "--stages", "main", "weight_norm")
    res = json.loads((tmp_path / "repro_smoke.json").read_text())
    assert res["stages"] == {"main": "skipped: time limit", "curricula": "not requested",
                             "more_data": "not requested", "weight_norm": "skipped: time limit"}
    assert (tmp_path / "repro_smoke.md.txt").exists()


def test_reproduce_cifar10_smoke(tmp_path, data_root):
    if not (data_root / "cifar-10-batches-py-partial").is_dir() and not (data_root / "cifar-10-batches-py").is_dir():
        msg = "no CIFAR-10 beside MNIST (CI lays ../shared/data with a partial copy)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    run = tmp_path / "run"
    _run("reproduce_cifar10.py", "--smoke", "--device", "cpu", "--data-root", str(data_root), "--out",
         str(tmp_path), "--run-dir", str(run))
    res = json.loads((tmp_path / "repro_cifar10_smoke.json").read_text())
    assert set(res["arms"]) == {"gtn", "real"}
    for arm in res["arms"].values():
        for split in ("train", "test"):
            curve = arm["curves"][split]
            assert len(curve["mean"]) == len(curve["std"]) == 3  # one point per inner step
            assert all(0 <= m <= 1 for m in curve["mean"]) and len(curve["final"]) == 2
        assert len(arm["meta_loss"]) == 2
    # the evaluation's last point is the accuracy the training command reported (same learners)
    for kind in ("gtn", "real"):
        assert res["arms"][kind]["curves"]["test"]["mean"][-1] == pytest.approx(
            res["train_summary"][kind]["test_accuracy_mean"], abs=1e-6)
    assert res["fig3b_steps"] == [1, 2, 3] and set(res["gtn_ahead_at"]) == {"train", "test"}
    for fig in ("fig3a", "fig3b", "metaloss"):
        assert (tmp_path / f"repro_cifar10_smoke_{fig}.png").stat().st_size > 0
    assert "| GTN | 200 train |" in (tmp_path / "repro_cifar10_smoke.md.txt").read_text()
    # --resume continues from the checkpoints: nothing left to train, the same numbers again
    _run("reproduce_cifar10.py", "--smoke", "--device", "cpu", "--data-root", str(data_root), "--out",
         str(tmp_path), "--run-dir", str(run), "--resume")
    again = json.loads((tmp_path / "repro_cifar10_smoke.json").read_text())
    assert again["arms"]["gtn"]["curves"] == res["arms"]["gtn"]["curves"]


def test_nas_groundtruth_smoke_and_resume(tmp_path, data_root):
    out, cache = tmp_path / "gt.json", tmp_path / "cache"
    args = ("--smoke", "--dataset", "fashion-mnist", "--data-root", str(data_root), "--out", str(out),
            "--cache-dir", str(cache))
    _run("nas_groundtruth.py", *args)
    res = json.loads(out.read_text())
    assert res["complete"] and len(res["architectures"]) == 3 and res["space"]["filters"] == 4
    for arch in res["architectures"]:
        assert set(arch["accuracy"]) == {"0", "1"} and all(0 <= a <= 1 for a in arch["accuracy"].values())
    assert res["seed_to_seed_spearman"] is None or -1 <= res["seed_to_seed_spearman"] <= 1
    # a second run reads every training from the cache: the same table, no new work
    proc = _run("nas_groundtruth.py", *args)
    assert json.loads(out.read_text())["architectures"] == res["architectures"]
    assert "6 trainings" in proc.stdout
    truth = GroundTruth.load(out)  # what the tutorial and reproduce_nas.py read
    assert len(truth) == 3 and sorted(truth.scores) == [0, 1] and truth.space.filters == 4


def test_reproduce_nas_smoke_and_resume(tmp_path, data_root):
    """reproduce_nas.py on a smoke ground truth: the table, the searches, the figures; a rerun reads the cache."""
    gt = tmp_path / "gt.json"
    _run("nas_groundtruth.py", "--smoke", "--data-root", str(data_root), "--out", str(gt), "--cache-dir",
         str(tmp_path / "gtcache"))
    args = ("--smoke", "--truth", str(gt), "--data-root", str(data_root), "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"))
    stopped = _run("reproduce_nas.py", *args, "--time-limit", "0.001")
    assert "stopped by --time-limit" in stopped.stdout and not (tmp_path / "out" / "repro_nas_smoke.json").exists()
    _run("reproduce_nas.py", *args)
    res = json.loads((tmp_path / "out" / "repro_nas_smoke.json").read_text())
    bn = ", BN of 64 real images"
    names = ["GTN data", "real data, same steps", "GTN data" + bn, "real data, same steps" + bn,
             "real training, 1 epoch of 32 images", "SynFlow", "NASWOT"]
    assert list(res["rank_correlations"]) == names and len(res["ground_truth"]) == 3
    assert res["settings"]["proxy_seeds"] == [100, 101] and res["settings"]["score_on"] == "val"
    for name in names:
        assert -1 <= res["rank_correlations"][name]["all"]["rho"] <= 1 and len(res["scores"][name]) == 3
        assert len(res["searches"]["evaluations"][name]["picked_truth"]) == 20
        per_seed = res["scores_per_seed"][name]  # the table's score: the mean over the proxy seeds
        assert list(per_seed) == ["100", "101"]
        assert res["scores"][name] == pytest.approx([statistics.fmean(s) for s in zip(*per_seed.values())])
    assert min(res["ground_truth"]) <= res["searches"]["random_mean"] <= res["searches"]["perfect_mean"]
    assert list(res["paired_bootstrap"]) == ["last inner batch", "64 real images"]
    for d in res["paired_bootstrap"].values():
        assert -2 <= d["difference"] <= 2 and 0 <= d["above_zero"] <= 1 and d["n"] == 3
    text = (tmp_path / "out" / "repro_nas_smoke.md.txt").read_text()
    assert "| GTN data |" in text and "seed vs seed" in text and "a perfect evaluation" in text
    assert "| last inner batch | " in text and "evaluator seeds [100, 101]" in text
    for fig in ("fig3c", "search"):
        assert (tmp_path / "out" / f"repro_nas_smoke_{fig}.png").stat().st_size > 0


def test_reproduce_cartpole_smoke(tmp_path):
    """reproduce_cartpole.py at the tiny size: per-seed rows, medians, both figures, the markdown fragment."""
    args = ("--smoke", "--seeds", "0", "1", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"))
    _run("reproduce_cartpole.py", *args)
    res = json.loads((tmp_path / "out" / "repro_cartpole_smoke.json").read_text())
    assert [r["seed"] for r in res["seeds"]] == [0, 1] and res["config"]["outer_steps"] == 3
    assert res["median"]["meta_env_steps"]["median"] == statistics.median(r["meta_env_steps"] for r in res["seeds"])
    assert all(0 < r["mean"] <= res["config"]["max_steps"] for r in res["seeds"])
    for fig in ("fig8", "pairs"):
        assert (tmp_path / "out" / f"repro_cartpole_smoke_{fig}.png").stat().st_size > 0
    text = (tmp_path / "out" / "repro_cartpole_smoke.md.txt").read_text()
    assert "| median |" in text and "fresh one-step policies" in text
    before = (tmp_path / "out" / "repro_cartpole_smoke.json").read_text()
    _run("reproduce_cartpole.py", *args, "--replot")  # redraws from the JSON, runs nothing
    assert json.loads((tmp_path / "out" / "repro_cartpole_smoke.json").read_text())["seeds"] == res["seeds"]
    assert before.count('"seed"') == (tmp_path / "out" / "repro_cartpole_smoke.json").read_text().count('"seed"')


def test_cartpole_architectures_smoke(tmp_path, monkeypatch):
    """cartpole_architectures.py at the tiny size: one row per architecture, deeper policies really deeper."""
    _run("cartpole_architectures.py", "--smoke", "--out", str(tmp_path))
    res = json.loads((tmp_path / "cartpole_architectures_smoke.json").read_text())
    assert [r["hidden"] for r in res["rows"]] == [[64], [16], [64, 64]]
    assert [r["trained_on"] for r in res["rows"]] == [True, False, False]
    assert all(0 < r["mean"] <= res["config"]["max_steps"] and len(r["policy_means"]) == 2 for r in res["rows"])
    text = (tmp_path / "cartpole_architectures_smoke.md.txt").read_text()
    assert "| 4 -> 64 tanh -> 64 tanh -> 2 |" in text and "meta-trained on" in text
    assert (tmp_path / "cartpole_architectures_smoke.png").stat().st_size > 0
    monkeypatch.syspath_prepend(str(BENCH))
    from cartpole_architectures import FixedPolicies

    deep = FixedPolicies((8, 8)).sample(torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in deep.parameters()] == [(8, 4), (8,), (8, 8), (8,), (2, 8), (2,)]


def test_xy_teacher_smoke(tmp_path, data_root):
    """xy_teacher.py at a tiny size: the three arms (one per process works too), the table, the figure."""
    runs = tmp_path / "runs"
    _run("xy_teacher.py", "--smoke", "--arm", "xy", "--data-root", str(data_root), "--runs", str(runs), "--out",
         str(tmp_path))
    first = json.loads((runs / "xy.json").read_text())
    _run("xy_teacher.py", "--smoke", "--data-root", str(data_root), "--runs", str(runs), "--out", str(tmp_path))
    res = json.loads((tmp_path / "xy_teacher_smoke.json").read_text())
    assert set(res["arms"]) == {"conditioned", "xy", "xy_conditioned"} and res["arms"]["xy"] == first  # reused
    assert all(len(a["meta_loss"]) == 3 and len(a["test_accuracies"]) == 2 for a in res["arms"].values())
    assert res["arms"]["xy"]["meta_loss"] != res["arms"]["conditioned"]["meta_loss"]  # really another teacher
    assert "| XY-generator G(z) -> (x, p) |" in (tmp_path / "xy_teacher_smoke.md.txt").read_text()
    assert (tmp_path / "xy_teacher_smoke.png").stat().st_size > 0


def test_gtn_gan_smoke(tmp_path, data_root):
    """gtn_gan.py at a tiny size: three arms, the GAN's early and late samples judged, the table and figures."""
    runs = tmp_path / "runs"
    _run("gtn_gan.py", "--smoke", "--data-root", str(data_root), "--runs", str(runs), "--out", str(tmp_path))
    res = json.loads((tmp_path / "gtn_gan_smoke.json").read_text())
    assert set(res["arms"]) == {"gan", "gtn", "gtn_gan"}
    assert set(res["judged"]) == {"gan_early", "gan", "gtn", "gtn_gan"}
    assert res["arms"]["gan"]["updates"] == 6 and len(res["arms"]["gtn_gan"]["curve"]) == 3
    assert len(res["arms"]["gtn"]["test_accuracies"]) == 2 and "mean" not in res["arms"]["gan"]
    assert res["arms"]["gtn"]["curve"] != res["arms"]["gtn_gan"]["curve"]  # lambda changes the meta-loss
    for j in res["judged"].values():
        assert sum(j["histogram"]) == pytest.approx(1) and 0 <= j["entropy_bits"] <= math.log2(10) + 1e-9
    text = (tmp_path / "gtn_gan_smoke.md.txt").read_text()
    assert "| GAN, early | 3 |" in text and "| GTN-GAN | 3 |" in text
    assert (tmp_path / "gtn_gan_smoke_samples.png").stat().st_size > 0
    assert (tmp_path / "gtn_gan_smoke_classes.png").stat().st_size > 0


def test_an_interrupted_gtn_gan_arm_resumes_exactly(tmp_path, data_root, monkeypatch):
    """A GTN-GAN arm stopped after one iteration continues from its checkpoint to the uninterrupted run's curve."""
    monkeypatch.syspath_prepend(str(BENCH))
    import gtn_gan

    data = load_dataset("mnist", data_root, download=False)
    whole = gtn_gan.train_arm("gtn_gan", "smoke", data, tmp_path / "whole")
    part = tmp_path / "part"
    part.mkdir()
    _, arm = gtn_gan.build("gtn_gan", "smoke", data)
    arm.trainer.fit(1, checkpoint=part / "gtn_gan_checkpoint.pt")  # as if stopped after iteration 1
    resumed = gtn_gan.train_arm("gtn_gan", "smoke", data, part)
    assert len(resumed["curve"]) == 3 and resumed["curve"] == whole["curve"] and resumed["d_fake"] == whole["d_fake"]
    assert resumed["test_accuracies"] == whole["test_accuracies"]


def test_a_peer_that_does_not_import_is_skipped_with_a_reason(monkeypatch):
    """A bare GPU machine may have torchopt without graphviz: the cost benchmark must skip it, not crash."""
    monkeypatch.syspath_prepend(str(BENCH))
    import metagrad_variants

    real_import = metagrad_variants.importlib.import_module

    def broken(name, *a, **k):
        if name == "torchopt":
            raise ModuleNotFoundError("No module named 'graphviz'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(metagrad_variants.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(metagrad_variants.importlib, "import_module", broken)
    assert not metagrad_variants.available("torchopt")
    assert "graphviz" in metagrad_variants.missing_reason("torchopt")
    assert metagrad_variants.available("gtn_recompute") and metagrad_variants.missing_reason("plain") is None


def test_step_cost_smoke(tmp_path):
    """step_cost.py counts operations per step for the three phases and times both modes."""
    _run("step_cost.py", "--smoke", "--repeats", "1", "--out", str(tmp_path))
    res = json.loads((tmp_path / "step_cost_smoke.json").read_text())
    per = res["per_step"]
    assert set(per) == {"forward step", "backward step", "full step"}
    for d in per.values():
        assert d["aten_ops"] >= d["leaf_ops"] >= d["compute_ops"] > 10
    assert per["backward step"]["compute_ops"] > per["forward step"]["compute_ops"]  # recompute + backprop
    assert all(s > 0 for s in res["seconds_per_outer_iteration"].values())
    assert "| backward step |" in (tmp_path / "step_cost_smoke.md.txt").read_text()


def test_stack_cost_smoke(tmp_path):
    """stack_cost.py times the three ways for MLP and conv learners, and their meta-gradients agree."""
    _run("stack_cost.py", "--smoke", "--repeats", "1", "--modes", "full", "--curricula", "full", "--learners", "2",
         "--out", str(tmp_path))
    res = json.loads((tmp_path / "stack_cost_smoke.json").read_text())
    assert [(r["k"], r["mode"], r["curriculum"]) for r in res["rows"]] == [(2, "full", "full")] * 2
    for r in res["rows"]:  # the full curriculum: all three ways, the batches shared or not
        assert min(r["separate_s"], r["one_at_a_time_s"], r["stacked_s"], r["ratio"], r["once_ratio"]) > 0
        assert r["grad_rel_diff"] < 1e-4  # the same meta-gradient, to float32 rounding
    assert "| conv [2, 4] / 8 | 2 | full | full |" in (tmp_path / "stack_cost_smoke.md.txt").read_text()


def test_compile_probe_steps_like_the_engine(monkeypatch):
    """The probe's eager inner step (torch.func.grad + eq. (1)) is UnrolledSGD's step, in float64.

    Compiling is left out (minutes); what is checked is that the probe measures the engine's computation.
    """
    monkeypatch.syspath_prepend(str(BENCH))
    import compile_probe

    from gtn_edu import UnrolledSGD
    from gtn_edu.arch_space import ArchSpace

    space = ArchSpace.mnist((1, 28, 28), 10, **compile_probe.SMOKE_SPACE)
    learner = space.sample(torch.Generator().manual_seed(3)).double()
    state = learner.init_state()
    state = state.with_tensors([t + 0.01 if t.is_floating_point() else t for t in state.tensors()])
    x, y = torch.randn(10, 1, 28, 28, dtype=torch.float64), torch.arange(10)
    sgd = UnrolledSGD(lr=0.1, momentum=0.5).double()
    lr, beta = sgd.raw_lr[0].exp().detach(), sgd.raw_momentum[0].sigmoid().detach()  # as the engine reads them
    compile_probe._SLOT.update(learner=learner, buffers=state.buffers)
    new_p, new_m = compile_probe.inner_step(state.params, state.momentum_buffer, x, y, lr, beta)

    class OneBatch:
        steps, tensors = 1, ()

        def batch(self, t, tensors):
            return x, y

    engine, _ = sgd.step(learner, OneBatch(), 0, state, (sgd.raw_lr, sgd.raw_momentum), (), differentiable=False)
    for k in new_p:
        torch.testing.assert_close(new_p[k], engine.params[k], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(new_m[k], engine.momentum_buffer[k], rtol=1e-12, atol=1e-12)
    grads = compile_probe.step_and_backward(compile_probe.inner_step, state, x, y, torch.float64)
    assert all(torch.isfinite(g).all() for g in grads) and grads[-2].abs() > 0  # d/d lr reaches the step


def test_compile_probe_unfold_convolution_equals_conv2d(monkeypatch):
    """`--conv unfold` (im2col: F.unfold and a matrix product) computes what F.conv2d does, gradients included."""
    monkeypatch.syspath_prepend(str(BENCH))
    import compile_probe

    from gtn_edu.nn import WNConv2d

    for stride in (1, 2):
        conv = WNConv2d(3, 5, 3, stride=stride).double()
        x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
        ref = conv(x)
        g_ref = torch.autograd.grad(ref.square().sum(), [x, *conv.parameters()])
        compile_probe.use_unfold_convs(conv)
        assert type(conv) is compile_probe.UnfoldConv2d
        out = conv(x)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        for a, b in zip(torch.autograd.grad(out.square().sum(), [x, *conv.parameters()]), g_ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_compile_probe_dynamic_widths_settings_are_scoped(monkeypatch):
    """`--dynamic-widths` compiles under four changed settings, and leaves torch as it was afterwards."""
    monkeypatch.syspath_prepend(str(BENCH))
    import compile_probe
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    import torch.fx.experimental._config as fx_config
    from torch._inductor.lowering import lowerings

    conv = torch.ops.aten.convolution.default
    before = (dynamo_config.force_parameter_static_shapes, fx_config.use_duck_shape, inductor_config.fx_graph_cache,
              functorch_config.enable_autograd_cache, lowerings.get(conv))
    with compile_probe.dynamic_widths(True):
        assert dynamo_config.force_parameter_static_shapes is False
        assert fx_config.use_duck_shape is False
        assert inductor_config.fx_graph_cache is False and functorch_config.enable_autograd_cache is False
        assert lowerings.get(conv) is not before[-1]  # the plain aten call replaces inductor's lowering
    after = (dynamo_config.force_parameter_static_shapes, fx_config.use_duck_shape, inductor_config.fx_graph_cache,
             functorch_config.enable_autograd_cache, lowerings.get(conv))
    assert after == before
    with compile_probe.dynamic_widths(False):
        assert lowerings.get(conv) is before[-1]


def test_cifar10_levers_probe_runs_one_arm(data_root, capsys, monkeypatch):
    """The lever probe of CHANGELOG.md, session 11, at a tiny size: one JSON line, validation accuracies."""
    monkeypatch.syspath_prepend(str(BENCH))
    import cifar10_levers

    res = cifar10_levers.main(["--arm", "gtn", "--data-root", str(data_root), "--set", "outer_steps=2",
                               "eval_learners=2", "inner_steps=2", "arch_scale=0.0625", "teacher_hidden=16",
                               "teacher_channels=4", "teacher_conv_channels=4", "arch=mnist"])
    assert res["changes"]["arch"] == "mnist" and len(res["val_accuracies"]) == 2
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["val_accuracy"] == res["val_accuracy"]
