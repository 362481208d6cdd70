"""Appendix I, Figures 9 and 10: GTN-GAN against a plain GAN of the same generator (mode collapse).

    python benchmarks/gtn_gan.py --quick --arm gtn --threads 1 &       # one arm a process;
    python benchmarks/gtn_gan.py --quick --arm gtn_gan --threads 1 &   # each saves its teacher
    wait; python benchmarks/gtn_gan.py --quick                         # the GAN arm, then figures and table
    python benchmarks/gtn_gan.py --smoke                               # seconds (the tests)

Three ways to train the same generator (`Teacher`, `gtn-edu train --dataset mnist --quick`'s
size, codes drawn fresh each time: `curriculum="none"`) against the same discriminator
(`gtn_edu.gan.Discriminator`, Adam 2e-4, betas (0.5, 0.999), one step per generator step):

* `gan`: a plain GAN. The generator minimises only the GAN loss $-\\log D(G(z, y))$; the
  discriminator never sees a label, so nothing asks the generator to use $y$. Adam 2e-4,
  betas (0.5, 0.999), `GAN_STEPS` updates; samples are kept after as many updates as the
  GTN arms make (Figure 9's "early") and at the end ("late").
* `gtn`: the GTN of the quick size (`GANObjective` with $\\lambda = 0$: the discriminator
  trains alongside and only watches, so its $D(G)$ says how real the GTN's images look).
* `gtn_gan`: GTN-GAN, $\\lambda$ = `WEIGHT`: meta-loss plus the GAN loss (Figure 10).

Each generator is then judged by a small CNN trained on real MNIST (`classifier`, its test
accuracy is reported): it labels 980 generated images (98 per conditioning label, fixed
codes, in balanced batches of the training batch size); the class histogram shows mode
collapse, and "label agreement" says whether the images are of the class they were asked
for. The GTN arms' few-step test accuracy (10 fresh learners of the quick space) says
whether the data still teaches. Outputs in `--out`:
`gtn_gan_<plan>.json`, `_samples.png`, `_classes.png` and a markdown fragment pasted into
docs/benchmarks/gan.md between the `gtn_gan` markers when `--out` is docs/figures.
A finished arm is read back from `--runs`; an interrupted GTN arm continues exactly from
its checkpoint there (`<arm>_checkpoint.pt`, every 50 iterations and on Ctrl-C).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from report import arm_args, environment, is_docs_folder, pyplot, train_arms, update_docs, write_json
from torch import nn
from tqdm import tqdm

from gtn_edu import GTNConfig, few_step_accuracy, load_dataset
from gtn_edu.evaluate import bn_images_for
from gtn_edu.experiment import build_arm
from gtn_edu.gan import Discriminator, GANObjective, gan_step
from gtn_edu.seeding import seeded

ARMS = ("gtn", "gtn_gan", "gan")
LABELS = {"gan_early": "GAN, early", "gan": "GAN, late", "gtn": "GTN", "gtn_gan": "GTN-GAN"}
WEIGHT = 1.0  # lambda of GTN-GAN
SMOKE = dict(inner_steps=2, inner_batch=20, outer_batch=20, outer_steps=3, eval_learners=2, teacher_hidden=16,
             teacher_channels=4, teacher_conv_channels=4, arch_scale=0.1)
PLANS = {"smoke": SMOKE, "quick": {}}
GAN_STEPS = {"smoke": 6, "quick": 3000}
CLASSIFIER_STEPS = {"smoke": 20, "quick": 940}  # batches of 128: two epochs of MNIST at the quick plan


def config(plan: str) -> GTNConfig:
    return GTNConfig.sized("quick", "mnist", curriculum="none", **PLANS[plan])


def build(name: str, plan: str, data):
    """The arm with its `GANObjective` (lambda 0 for `gtn`); teacher and discriminator start from the config's seed."""
    cfg = config(plan)
    arm = build_arm("gtn", cfg, data, progress=plan != "smoke")
    with seeded(cfg.seed, "init/discriminator"):  # D's initial weights from the stream of that purpose
        discriminator = Discriminator(data.image_shape)
    arm.trainer.objective = GANObjective(arm.trainer.objective, arm.teacher, arm.curriculum, data.train,
                                         weight=0.0 if name == "gtn" else WEIGHT, batch_size=128,
                                         discriminator=discriminator)
    return cfg, arm


def train_arm(name: str, plan: str, data, runs: Path) -> dict:
    """Train one arm, or read it back; saves the teacher (and the GAN's early snapshot) beside its JSON."""
    path = runs / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg, arm = build(name, plan, data)
    start = time.perf_counter()
    if name == "gan":
        rng = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.Adam(arm.teacher.parameters(), lr=2e-4, betas=(0.5, 0.999))
        history = []
        for step in tqdm(range(GAN_STEPS[plan]), desc="gan", disable=plan == "smoke"):
            history.append(gan_step(arm.trainer.objective, opt, rng))
            if step + 1 == cfg.outer_steps:  # as many generator updates as a GTN arm makes
                torch.save(arm.teacher.state_dict(), runs / "gan_early.pt")
        curve = [h["gan_loss"] for h in history]
    else:  # resumable: an interrupted arm continues from its checkpoint, exactly
        ckpt = runs / f"{name}_checkpoint.pt"
        if ckpt.exists():
            arm.trainer.load(ckpt)
        arm.trainer.fit(cfg.outer_steps - arm.trainer.iteration, desc=name, checkpoint=ckpt, checkpoint_every=50)
        history = arm.trainer.history  # all iterations, the resumed ones included
        curve = [r["meta_loss"] for r in history]
    seconds = time.perf_counter() - start  # of this process (after a resume: of its part)
    torch.save(arm.teacher.state_dict(), runs / f"{name}.pt")
    out = {"arm": name, "seconds": seconds, "threads": torch.get_num_threads(), "curve": curve,
           "d_fake": [float(r.get("d_fake", math.nan)) for r in history] if name != "gan" else [],
           "updates": len(history)}
    if name != "gan":
        res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test, seed=cfg.seed,
                                n_learners=cfg.eval_learners, bn_images=bn_images_for(cfg.bn_stats, data.train))
        out.update(test_accuracies=res.accuracies, mean=res.mean, std=res.std)
    write_json(path, out)
    return out


def classifier(data, plan: str, runs: Path) -> tuple[nn.Module, float]:
    """A small CNN trained on real MNIST (stored in `runs`): the judge of what the generators draw."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    path = runs / "classifier.pt"
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        opt, rng = torch.optim.Adam(net.parameters(), lr=1e-3), torch.Generator().manual_seed(0)
        for _ in tqdm(range(CLASSIFIER_STEPS[plan]), desc="classifier", disable=plan == "smoke"):
            x, y = data.train.sample(128, rng)
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.save(net.state_dict(), path)
    net.eval()
    with torch.no_grad():
        acc = (net(data.test.x).argmax(1) == data.test.y).float().mean().item()
    return net, acc


@torch.no_grad()
def samples(teacher, cfg: GTNConfig, batches: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    """Images for fixed codes (seed 0), in batches of the training batch with balanced labels: (x, y)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(cfg.inner_batch) % 10
    xs = [teacher(torch.randn(cfg.inner_batch, cfg.latent_dim, generator=g), y) for _ in range(batches)]
    return torch.cat(xs), y.repeat(batches)


def judge(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Class histogram of the classifier's labels, its entropy, classes covered, agreement, confidence."""
    with torch.no_grad():
        p = net(x).softmax(1)
    pred = p.argmax(1)
    hist = torch.bincount(pred, minlength=10).float() / len(pred)
    entropy = -(hist[hist > 0] * hist[hist > 0].log2()).sum().item()
    return {"images": len(pred), "histogram": hist.tolist(), "entropy_bits": entropy,
            "covered": int((hist >= 0.05).sum()),
            "agreement": (pred == y).float().mean().item(), "confidence": p.max(1).values.mean().item()}


def summary(result: dict) -> str:
    """One line on a trained arm (`--arm`)."""
    return f"{result['updates']} generator updates in {result['seconds'] / 60:.1f} min"


def main(argv=None) -> int:
    args, runs = arm_args(__doc__, PLANS, ARMS, "gtn_gan", argv)
    cfg, data = config(args.plan), load_dataset("mnist", args.data_root, download=False)
    results = train_arms(args, ARMS, lambda name: train_arm(name, args.plan, data, runs), summary)
    if results is None:  # one arm only
        return 0
    net, net_acc = classifier(data, args.plan, runs)
    teacher = build("gtn", args.plan, data)[1].teacher.eval()
    judged, images = {}, {}
    for name in ("gan_early", "gan", "gtn", "gtn_gan"):
        teacher.load_state_dict(torch.load(runs / f"{name}.pt", weights_only=True))
        x, y = samples(teacher, cfg)
        judged[name], images[name] = judge(net, x, y), (x, y)
    stem = f"gtn_gan_{args.plan}"
    args.out.mkdir(parents=True, exist_ok=True)
    plot(images, judged, data, args.out / f"{stem}_samples.png", args.out / f"{stem}_classes.png")
    env = environment("cpu")
    write_json(args.out / f"{stem}.json", {"plan": args.plan, "env": env, "config": cfg.to_dict(), "weight": WEIGHT,
                                           "classifier_test_accuracy": net_acc, "arms": results, "judged": judged})
    text = fragment(results, judged, net_acc, cfg, env, args.plan, stem)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out) and args.plan != "smoke":
        update_docs("gtn_gan", text)
    print(text)
    return 0


def plot(images: dict, judged: dict, data, samples_png: Path, classes_png: Path) -> None:
    from torchvision.utils import make_grid

    plt = pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.6))
    for ax, (name, (x, y)) in zip(axes, images.items()):
        order = torch.cat([torch.nonzero(y == k).flatten()[:8] for k in range(10)])  # row k: asked for class k
        grid = make_grid((x[order] * data.std + data.mean).clamp(0, 1), nrow=8, padding=1)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray")
        ax.set(title=f"{LABELS[name]}\n{judged[name]['covered']} classes, agreement "
                     f"{100 * judged[name]['agreement']:.0f}%", xticks=[], yticks=[])
    axes[0].set_ylabel("row k: label k asked for")
    fig.tight_layout()
    fig.savefig(samples_png, dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(judged), figsize=(3.2 * len(judged), 2.6), sharey=True)
    for ax, (name, j) in zip(axes, judged.items()):
        ax.bar(range(10), [100 * h for h in j["histogram"]], color="tab:blue")
        ax.axhline(10, color="0.5", lw=1, ls="--")
        ax.set(title=f"{LABELS[name]}: {j['entropy_bits']:.2f} bits", xlabel="class the classifier sees",
               xticks=range(10))
    axes[0].set_ylabel("% of generated images")
    fig.tight_layout()
    fig.savefig(classes_png, dpi=110)
    plt.close(fig)


def fragment(results, judged, net_acc, cfg, env, plan, stem) -> str:
    rows = []
    for name, j in judged.items():
        r = results["gan" if name == "gan_early" else name]
        updates = cfg.outer_steps if name == "gan_early" else r["updates"]
        acc = f"{100 * r['mean']:.2f}% +- {100 * r['std']:.2f}" if "mean" in r else "-"
        d_fake = f"{r['d_fake'][-1]:.2f}" if r.get("d_fake") else "-"
        rows.append(f"| {LABELS[name]} | {updates} | {j['covered']} | {j['entropy_bits']:.2f} | "
                    f"{100 * j['agreement']:.1f}% | {j['confidence']:.2f} | {d_fake} | {acc} | "
                    f"{r['seconds'] / 60:.1f} ({r['threads']}) |")
    return "\n".join([
        f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}; plan "
        f"`{plan}`: MNIST, `gtn-edu train --quick`'s generator and learners, fresh codes each time "
        f"(`curriculum=\"none\"`), seed {cfg.seed}; GTN arms {cfg.outer_steps} outer iterations of T="
        f"{cfg.inner_steps} steps; GTN-GAN's lambda = {WEIGHT}. The judge is a CNN trained on real MNIST "
        f"({100 * net_acc:.2f}% test accuracy); it labels {judged['gtn']['images']} images per generator "
        "(as many of each conditioning label, the same codes). A class is covered when it gets at least 5% of "
        "the images; entropy of the histogram in bits (uniform: 3.32).", "",
        "| generator | updates | classes covered | histogram entropy (bits) | label agreement | classifier "
        "confidence | D(G) at the end | few-step test accuracy | minutes (threads) |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"![samples]({'figures'}/{stem}_samples.png)", "",
        f"![class histograms]({'figures'}/{stem}_classes.png)"]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
