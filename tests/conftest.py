"""Shared fixtures: real data from ../shared/data and small real training runs, built once per session."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def shared_data(name: str) -> str:
    """Path of a real dataset; in CI a missing dataset fails the test instead of skipping it."""
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        message = f"real dataset {path} not found (see ../shared/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """The installed `tfgan` entry point in a subprocess, as users run it."""
    return subprocess.run([sys.executable, "-m", "tfganomaly.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A calibrated GANomaly trained for 6 epochs on the built-in digits (digit 0 anomalous)."""
    from tfganomaly.config import GANomalyConfig
    from tfganomaly.data import DatasetSpec
    from tfganomaly.training import fit_run
    out = tmp_path_factory.mktemp("runs")
    return fit_run(GANomalyConfig(epochs=6), DatasetSpec(), out=str(out), name="digits", verbose=0)


@pytest.fixture(scope="session")
def digits_test_images(digits_run):
    from tfganomaly.data import ImageSpec
    return digits_run.splits.test.load(ImageSpec.of(digits_run.model.config)), digits_run.splits.test.labels
