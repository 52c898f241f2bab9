"""Infra checks: one offline build of a sample stage, shared by the tests in this folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib import aws

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "infra" / "build.py"
EXAMPLE_STAGE = ROOT / "infra" / "stages" / "example.yml"
STAGE = "dev"


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the suite-wide fixture: moto without Wisp's tables (these checks create their own)."""
    aws.reset_clients()
    with mock_aws():
        yield
    aws.reset_clients()


def build_env() -> dict[str, str]:
    """The build's environment, without the test suite's WISP_CONFIG (build.py would package it)."""
    env = dict(os.environ)
    for name in ("WISP_CONFIG", "WISP_TABLE_PREFIX", "WISP_BUCKET", "WISP_SECRET_KEY", "WISP_AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


def run_build(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--stage", STAGE, "--stage-file", str(EXAMPLE_STAGE),
         "--out", str(out), "--no-deps", *extra],
        env=build_env(), capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra/build.py run once on infra/stages/example.yml; returns its output folder."""
    out = tmp_path_factory.mktemp("infra-build")
    done = run_build(out)
    assert done.returncode == 0, done.stderr + done.stdout
    return out


@pytest.fixture(scope="session")
def sam(built: Path) -> dict:
    return json.loads((built / "package" / "sam.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def merge(built: Path) -> dict:
    return json.loads((built / "merge.json").read_text(encoding="utf-8"))
