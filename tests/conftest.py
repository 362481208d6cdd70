"""Shared test settings: hypothesis profiles and float64 helpers."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# Torch-heavy property tests: few examples, no deadline. `ci` is loaded when CI is set.
settings.register_profile("ci", max_examples=8, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=8, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """The offline dataset copy: $GTN_EDU_DATA or ../shared/data beside the repository."""
    for cand in (os.environ.get("GTN_EDU_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        msg = "MNIST files not found: set GTN_EDU_DATA to a folder with MNIST/raw/ (CI lays ../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI always has the data: a missing copy is a broken setup, not a skip
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def mnist(data_root):
    from gtn_edu.data import load_dataset

    return load_dataset("mnist", data_root, download=False)


@pytest.fixture
def float64():
    """float64 for every tensor a test makes (finite differences need it); the old default afterwards.

    Use it for a whole module with `pytestmark = pytest.mark.usefixtures("float64")`.
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
