"""Architecture spaces, curriculum variants and arm kinds are added by name, without editing the library.

Each registry (`ARCH_SPACES`, `VARIANTS`, `ARM_KINDS`) is a dict filled by a decorator; a name
registered here must reach what the config or `build_arm` builds, and a duplicate or unknown
name must fail with a message that lists the registered names and says how to add one. The
fixture restores every registry after each test, so the names added here stay here.
"""

import pytest
import torch

from gtn_edu import ArchSpace, Curriculum, MLPLearner, Teacher, UnrolledSGD
from gtn_edu.arch_space import ARCH_SPACES, MLPSpace, register_arch_space
from gtn_edu.config import GTNConfig
from gtn_edu.curriculum import VARIANTS, register_curriculum_variant
from gtn_edu.data import Dataset, Split
from gtn_edu.experiment import ARM_KINDS, build_arch_space, build_arm, register_arm_kind
from gtn_edu.teacher import DistilledData

SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True)
def restore_registries():
    """Put every registry back as it was: other tests must not see the names registered here."""
    saved = [(registry, dict(registry)) for registry in (ARCH_SPACES, VARIANTS, ARM_KINDS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before)


def _data() -> Dataset:
    rng = torch.Generator().manual_seed(0)
    split = lambda n: Split(torch.randn(n, *SHAPE, generator=rng), torch.arange(n) % 10)  # noqa: E731
    return Dataset("mnist", split(40), split(20), split(20), torch.zeros(1), torch.ones(1))


def _cfg(**changes) -> GTNConfig:
    tiny = dict(inner_steps=2, inner_batch=10, outer_batch=10, outer_steps=1, latent_dim=4, teacher_hidden=8,
                teacher_channels=4, teacher_conv_channels=4, arch="mlp", arch_scale=0.1, eval_learners=1)
    return GTNConfig(**{**tiny, **changes})


def test_the_built_in_names_are_registered_in_their_old_order():
    assert list(ARCH_SPACES) == ["mnist", "cifar", "mlp"]
    assert list(VARIANTS) == ["none", "all_shuffled", "shuffled_batch", "full"]
    assert [name for name, v in VARIANTS.items() if v.learned] == ["all_shuffled", "shuffled_batch", "full"]
    assert list(ARM_KINDS) == ["gtn", "real", "distilled"]
    assert [name for name, kind in ARM_KINDS.items() if kind.generative] == ["gtn"]


def test_a_registered_arch_space_is_built_from_the_config():
    def one_layer_mlp(cfg, image_shape, num_classes):
        return ArchSpace.mlp(image_shape, num_classes, width_range=(7, 7), max_layers=1, weight_norm=cfg.weight_norm)

    with pytest.raises(ValueError, match="arch must be one of"):  # not a name yet
        _cfg(arch="one_layer_mlp")
    assert register_arch_space("one_layer_mlp")(one_layer_mlp) is one_layer_mlp
    cfg = _cfg(arch="one_layer_mlp", weight_norm=False)
    space = build_arch_space(cfg, SHAPE, 10)
    assert isinstance(space, MLPSpace)
    assert (space.width_range, space.max_layers, space.weight_norm) == ((7, 7), 1, False)
    assert build_arm("real", cfg, _data(), progress=False).arch_space.width_range == (7, 7)  # every arm uses it


def test_a_registered_curriculum_variant_is_sampled_and_its_codes_get_a_meta_gradient():
    @register_curriculum_variant("reversed", learned=True)
    def reversed_order(curriculum, rng):
        return curriculum.codes.flip(0), curriculum.labels.flip(0)

    torch.manual_seed(0)
    cur = Curriculum(3, 10, 10, latent_dim=4, variant="reversed")
    assert cur.variant == "reversed" and set(cur.state_dict()) == {"codes", "labels"}
    z, y = cur.sample()
    torch.testing.assert_close(z, cur.codes.flip(0))
    teacher = Teacher(SHAPE, 10, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    learner = MLPLearner(SHAPE, 10, (5,))
    x_real, y_real = torch.randn(12, *SHAPE), torch.arange(12) % 10
    for mode in ("full", "recompute"):
        cur.codes.grad = None
        state = UnrolledSGD(0.05, 0.5, mode=mode).unroll(learner, teacher.batches(cur))
        learner.meta_loss(state, x_real, y_real).backward()
        assert cur.codes.grad is not None and cur.codes.grad.abs().sum() > 0, mode


def test_a_registered_variant_trains_through_the_config_and_build_arm():
    @register_curriculum_variant("last_batch_first", learned=True)
    def last_batch_first(curriculum, rng):
        order = torch.arange(curriculum.steps).roll(1)
        return curriculum.codes[order], curriculum.labels[order]

    arm = build_arm("gtn", _cfg(curriculum="last_batch_first"), _data(), progress=False)
    assert arm.curriculum.variant == "last_batch_first"
    before = arm.curriculum.codes.detach().clone()
    arm.trainer.fit(1)
    assert not torch.equal(arm.curriculum.codes.detach(), before)  # the meta-gradient reached the codes


def test_a_variant_without_learned_codes_has_no_parameters():
    @register_curriculum_variant("zeros", learned=False)
    def zeros(curriculum, rng):
        shape = (curriculum.steps, curriculum.batch_size, curriculum.latent_dim)
        return torch.zeros(shape, device=curriculum.labels.device), curriculum.labels

    cur = Curriculum(2, 10, 10, latent_dim=3, variant="zeros")
    assert cur.codes is None and list(cur.parameters()) == [] and set(cur.state_dict()) == {"labels"}
    assert cur.sample()[0].shape == (2, 10, 3) and not cur.sample()[0].any()


def test_a_registered_arm_kind_is_built_by_build_arm():
    made = []

    @register_arm_kind("half_distilled", generative=False)
    def half_distilled(cfg, data, generator, generator_kwargs):
        made.append(cfg.inner_steps)
        return DistilledData(data.image_shape, cfg.inner_steps, cfg.inner_batch, data.num_classes)

    @register_arm_kind("gtn_again", generative=True)
    def gtn_again(cfg, data, generator, generator_kwargs):
        return ARM_KINDS["gtn"].make_teacher(cfg, data, generator, generator_kwargs)

    data = _data()
    arm = build_arm("half_distilled", _cfg(curriculum="full"), data, progress=False)
    assert made == [2] and isinstance(arm.teacher, DistilledData) and arm.name == "half_distilled"
    assert arm.curriculum.variant == "none"  # not generative: no learned codes, whatever the config says
    gtn = build_arm("gtn_again", _cfg(curriculum="shuffled_batch"), data, progress=False)
    assert isinstance(gtn.teacher, Teacher) and gtn.curriculum.variant == "shuffled_batch"
    reference = build_arm("gtn", _cfg(curriculum="shuffled_batch"), data, progress=False)  # same seeded streams
    torch.testing.assert_close(gtn.teacher.state_dict(), reference.teacher.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("register, registry, name", [
    (lambda name: register_arch_space(name), "ARCH_SPACES", "mlp"),
    (lambda name: register_curriculum_variant(name, learned=True), "VARIANTS", "full"),
    (lambda name: register_arm_kind(name, generative=False), "ARM_KINDS", "real"),
])
def test_a_duplicate_name_is_refused_and_the_first_kept(register, registry, name):
    before = {"ARCH_SPACES": ARCH_SPACES, "VARIANTS": VARIANTS, "ARM_KINDS": ARM_KINDS}[registry]
    kept = before[name]
    with pytest.raises(ValueError, match=rf"'{name}' is already registered.*del {registry}\['{name}'\]"):
        register(name)(lambda *args: None)
    assert before[name] is kept
    with pytest.raises(ValueError, match="non-empty strings"):
        register("")


def test_unknown_names_list_the_registered_ones_and_how_to_add_one():
    with pytest.raises(ValueError, match=r"'mnist', 'cifar', 'mlp', got 'wide'; .*register_arch_space"):
        GTNConfig(arch="wide")
    with pytest.raises(ValueError, match=r"'full', got 'noisy'; .*register_curriculum_variant"):
        GTNConfig(curriculum="noisy")
    with pytest.raises(ValueError, match=r"none, all_shuffled, shuffled_batch, full, .*register_curriculum_variant"):
        Curriculum(2, 10, 10, variant="noisy")
    with pytest.raises(ValueError, match=r"unknown arm 'ga'; choose one of gtn, real, distilled, .*register_arm_kind"):
        build_arm("ga", _cfg(), _data(), progress=False)
    cfg = _cfg()
    del ARCH_SPACES["mlp"]  # the config was valid when made
    with pytest.raises(ValueError, match=r"unknown architecture space 'mlp'; choose one of mnist, cifar, .*"
                                         "register_arch_space"):
        build_arch_space(cfg, SHAPE, 10)
