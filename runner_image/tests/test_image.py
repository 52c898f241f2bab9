"""The runner image, checked without Docker: what the Dockerfile says, and its model steps run
outside a container (the staged models copied to where the image puts them, under a temporary root,
and the Dockerfile's own check command run against them)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tools import fetch_models

RUNNER_DIR = Path(__file__).resolve().parents[1]
DOCKERFILE = RUNNER_DIR / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def env() -> dict[str, str]:
    values: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                values[key] = value
    return values


def test_base_is_the_cuda_12_8_runtime_without_cudnn_pinned_by_digest():
    [base] = [rest for word, rest in instructions() if word == "FROM"]
    assert re.fullmatch(r"nvidia/cuda:12\.8\.\d+-runtime-ubuntu24\.04@sha256:[0-9a-f]{64}", base), base
    assert "cudnn" not in base


def test_the_cuda_reasoning_names_the_pinned_ctranslate2():
    # The base image's CUDA version was chosen for this wheel: bumping ctranslate2 means checking it again.
    pinned = re.search(r"^ctranslate2==(\S+)$", (RUNNER_DIR / "requirements.txt").read_text(), re.M)
    assert pinned and f"CTranslate2 {pinned.group(1)}" in DOCKERFILE.read_text()


def test_the_runner_serves_large_from_the_baked_models_offline():
    values = env()
    copies = [rest.split() for word, rest in instructions() if word == "COPY" and "baked_models/" in rest]
    assert copies == [["baked_models/", "/opt/wisp-models/"]]
    assert values["WISP_RUNNER_MODEL_REGISTRY"] == "/opt/wisp-models/registry.yaml"
    assert values["WISP_RUNNER_PRELOAD"] == "large" and values["HF_HUB_OFFLINE"] == "1"
    assert ("RUN", "python -m wisp_runner.registry --require large") in instructions()
    ignored = (RUNNER_DIR / ".dockerignore").read_text().split()
    assert "!baked_models/" in ignored and "!wisp_runner/" in ignored and "*" in ignored


def test_dockerfile_model_steps_outside_a_container(tmp_path):
    # GIVEN a staged model (a fake one, served from a file:// stand-in for the Hub)
    files = {"model.bin": b"weights", "config.json": b"{}", "tokenizer.json": b"{}", "vocabulary.json": b"[]",
             "preprocessor_config.json": b"{}"}
    hub = tmp_path / "hub" / "example" / "large" / "resolve" / ("a" * 40)
    hub.mkdir(parents=True)
    for name, data in files.items():
        (hub / name).write_bytes(data)
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps({"models": {"large-v3": {
        "repo": "example/large", "revision": "a" * 40, "serves": ["large-v3"],
        "files": {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()}}}}))
    staged = tmp_path / "baked_models"
    fetch_models.run(large="large-v3", also=(), source=(tmp_path / "hub").as_uri(), cache=tmp_path / "cache",
                     out=staged, pins_file=pins, say=lambda _line: None)

    # WHEN the Dockerfile's COPY and check run under a temporary root
    root = tmp_path / "image"
    [[src, dest]] = [rest.split() for word, rest in instructions() if word == "COPY" and "baked_models/" in rest]
    shutil.copytree(staged, root / dest.strip("/"))
    image_env = {**os.environ, **{k: v.replace("/opt/", f"{root}/opt/") for k, v in env().items()
                                  if k.startswith(("WISP_RUNNER_MODEL", "HF_HUB"))}}
    [check] = [rest for word, rest in instructions() if word == "RUN" and "wisp_runner.registry" in rest]
    argv = [sys.executable if arg == "python" else arg for arg in shlex.split(check)]
    done = subprocess.run(argv, cwd=RUNNER_DIR, env=image_env, capture_output=True, text=True, timeout=60)

    # THEN large is served by the baked model
    assert done.returncode == 0, done.stderr
    assert "large -> large-v3" in done.stdout.splitlines()

    # AND an incomplete model fails the build
    (root / dest.strip("/") / "large-v3" / "tokenizer.json").unlink()
    done = subprocess.run(argv, cwd=RUNNER_DIR, env=image_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "lacks tokenizer.json" in done.stderr


def test_build_script_fetches_then_builds(tmp_path):
    """build-image.sh as documented, with a stand-in docker on PATH and a file:// model source."""
    work = tmp_path / "runner_image"
    (work / "tools").mkdir(parents=True)
    shutil.copy2(RUNNER_DIR / "build-image.sh", work)
    shutil.copy2(RUNNER_DIR / "tools" / "fetch_models.py", work / "tools")
    data = {"model.bin": b"w", "config.json": b"{}", "tokenizer.json": b"{}", "vocabulary.json": b"[]"}
    for model in ("large-v3-turbo", "large-v3"):
        hub = tmp_path / "hub" / "example" / model / "resolve" / ("b" * 40)
        hub.mkdir(parents=True)
        for name, content in data.items():
            (hub / name).write_bytes(content)
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps({"models": {model: {
        "repo": f"example/{model}", "revision": "b" * 40, "serves": [model],
        "files": {n: {"size": len(c), "sha256": hashlib.sha256(c).hexdigest()} for n, c in data.items()}}
        for model in ("large-v3", "large-v3-turbo")}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/docker-args\n')
    (bin_dir / "docker").chmod(0o755)
    run_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable,
               "WISP_MODEL_PINS": str(pins), "WISP_MODEL_SOURCE": (tmp_path / "hub").as_uri(),
               "WISP_MODEL_CACHE": str(tmp_path / "cache"), "WISP_LARGE_MODEL": "large-v3-turbo"}
    done = subprocess.run(["bash", str(work / "build-image.sh"), "wisp-runner:test"], env=run_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'large' is large-v3-turbo" in done.stdout
    assert '"large": {same_as: "large-v3-turbo"}' in (work / "baked_models" / "registry.yaml").read_text()
    args = (tmp_path / "docker-args").read_text().split()
    assert args[:3] == ["build", "--platform", "linux/amd64"] and args[-3:] == ["-t", "wisp-runner:test", str(work)]

    # A failed verification stops the script before docker runs.
    (tmp_path / "docker-args").unlink()
    shutil.rmtree(tmp_path / "cache")
    (tmp_path / "hub" / "example" / "large-v3" / "resolve" / ("b" * 40) / "model.bin").write_bytes(b"x")
    done = subprocess.run(["bash", str(work / "build-image.sh"), "wisp-runner:test"],
                          env={**run_env, "WISP_LARGE_MODEL": "large-v3"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "checksum mismatch" in done.stderr
    assert not (tmp_path / "docker-args").exists()
