#!/usr/bin/env python3
"""Fetch the pinned Whisper models once and stage them for the runner image.

    python runner_image/tools/fetch_models.py [--large large-v3|large-v3-turbo] [--also MODEL ...]
        [--source https://huggingface.co] [--cache DIR] [--out runner_image/baked_models]

Runs on the operator's machine before ``docker build`` (``runner_image/build-image.sh`` does both).
Standard library only, so it needs nothing installed.

1. Every file of the chosen models (``tools/model_pins.json``: repository, commit, size and SHA-256
   per file) is downloaded into the cache directory, once: a cached file is hashed again and kept
   if it still matches; an interrupted download resumes from its ``.partial`` file. A file whose
   size or SHA-256 differs from its pin is deleted and the run fails; so does a file the source
   does not have. A pin without a hash fails too, after printing the hash it got, so nothing
   unverified is ever staged.
2. ``--out`` is rebuilt to hold exactly the chosen models (hard links into the cache, or copies)
   plus ``registry.yaml``, the runner's model registry: every model under its own names, ``large``
   as another name of the ``--large`` model, and the pip-installed models (``include_builtin``).
   ``MODELS.json`` records where each file came from. The Dockerfile copies the directory.

``--source`` may be any base URL with Hugging Face's ``<repo>/resolve/<commit>/<file>`` layout:
a mirror, a ``file://`` directory for machines without internet, or the tests' local server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

RUNNER_IMAGE = Path(__file__).resolve().parents[1]
DEFAULT_PINS = RUNNER_IMAGE / "tools" / "model_pins.json"
DEFAULT_OUT = RUNNER_IMAGE / "baked_models"
DEFAULT_CACHE = Path.home() / ".cache" / "wisp-runner-models"
DEFAULT_SOURCE = "https://huggingface.co"
LARGE_CHOICES = ("large-v3", "large-v3-turbo")
CHUNK = 1024 * 1024
ATTEMPTS = 4  # per file; a network error resumes where the last attempt stopped
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class FetchError(Exception):
    """A model could not be fetched or did not match its pin; nothing was staged."""


@dataclass(frozen=True)
class FilePin:
    name: str
    size: int | None
    sha256: str | None  # None: not pinned yet (the fetch fails and prints what it got)


@dataclass(frozen=True)
class ModelPin:
    name: str  # directory name in the image, e.g. large-v3
    repo: str  # Hugging Face repository
    revision: str  # commit
    serves: tuple[str, ...]  # job model names this model answers to
    files: tuple[FilePin, ...]


def load_pins(path: Path) -> dict[str, ModelPin]:
    data = json.loads(path.read_text(encoding="utf-8"))
    pins: dict[str, ModelPin] = {}
    for name, spec in data["models"].items():
        files = []
        for fname, fspec in spec["files"].items():
            sha = fspec.get("sha256") or None
            if sha is not None and not SHA256_RE.match(sha):
                raise FetchError(f"{path}: {name}/{fname}: sha256 must be 64 lowercase hex digits")
            files.append(FilePin(fname, fspec.get("size"), sha))
        pins[name] = ModelPin(name, spec["repo"], spec["revision"], tuple(spec.get("serves", [name])), tuple(files))
    return pins


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def matches(pin: FilePin, size: int, sha256: str) -> bool:
    return pin.sha256 == sha256 and (pin.size is None or pin.size == size)


def _download(url: str, partial: Path, say: Callable[[str], None]) -> None:
    """Download url into partial, resuming from the bytes already there (one attempt)."""
    have = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "wisp-runner-fetch-models"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = have > 0 and getattr(response, "status", None) == 206
        if have and not resumed:
            say(f"  the source ignored the resume request; starting {partial.name} again")
        started, written, next_report = time.monotonic(), 0, 512 * CHUNK
        with open(partial, "ab" if resumed else "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
                written += len(block)
                if written >= next_report:
                    rate = written / max(time.monotonic() - started, 1e-6) / 1e6
                    say(f"  {partial.name}: {(written + (have if resumed else 0)) / 1e9:.2f} GB ({rate:.0f} MB/s)")
                    next_report += 512 * CHUNK


def fetch_file(url: str, dest: Path, pin: FilePin, say: Callable[[str], None]) -> bool:
    """Make dest a verified copy of the pinned file; True if it had to be downloaded."""
    if dest.is_file():
        size, sha = file_digest(dest)
        if matches(pin, size, sha):
            return False
        say(f"  cached {dest} does not match its pin; fetching it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _download(url, partial, say)
            break
        except urllib.error.HTTPError as exc:
            partial.unlink(missing_ok=True)
            if exc.code in (401, 403, 404, 410):
                raise FetchError(f"{url}: the source does not have this file (HTTP {exc.code})") from exc
            if attempt == ATTEMPTS:
                raise FetchError(f"{url}: HTTP {exc.code} after {ATTEMPTS} attempts") from exc
            say(f"  {dest.name}: HTTP {exc.code}; trying again (attempt {attempt + 1} of {ATTEMPTS})")
            time.sleep(min(2.0 ** attempt, 30.0))
        except FileNotFoundError as exc:  # file:// source
            raise FetchError(f"{url}: the source does not have this file") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, FileNotFoundError):
                raise FetchError(f"{url}: the source does not have this file") from exc
            if attempt == ATTEMPTS:
                raise FetchError(f"{url}: {reason} after {ATTEMPTS} attempts") from exc
            say(f"  {dest.name}: {reason}; trying again (attempt {attempt + 1} of {ATTEMPTS})")
            time.sleep(min(2.0 ** attempt, 30.0))
    size, sha = file_digest(partial)
    if pin.sha256 is None:
        partial.unlink()
        raise FetchError(f"{url} is not pinned: it has size {size} and sha256 {sha}. Check them against the "
                         "repository's file list and add them to the pins file; nothing was staged")
    if not matches(pin, size, sha):
        partial.unlink()
        raise FetchError(f"{url}: checksum mismatch: expected size {pin.size} sha256 {pin.sha256}, "
                         f"got size {size} sha256 {sha}; the file was deleted and nothing was staged")
    os.replace(partial, dest)
    return True


def fetch_model(model: ModelPin, *, source: str, cache: Path, say: Callable[[str], None]) -> Path:
    """The cache directory holding every file of model, each verified against its pin."""
    target = cache / model.repo.replace("/", "--") / model.revision
    say(f"{model.name}: {model.repo} at {model.revision[:12]}")
    for pin in model.files:
        url = f"{source.rstrip('/')}/{model.repo}/resolve/{model.revision}/{pin.name}"
        fetched = fetch_file(url, target / pin.name, pin, say)
        say(f"  {pin.name}: {'downloaded and' if fetched else 'cached,'} verified (sha256 {pin.sha256})")
    return target


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


def registry_text(models: Sequence[ModelPin], large: str) -> str:
    """The runner's registry file for the staged models (YAML; every value JSON-quoted)."""
    lines = ["# Written by runner_image/tools/fetch_models.py: the models baked into the runner image.",
             "# include_builtin: the pip-installed models (tiny.en, base) are served too.",
             "include_builtin: true", "models:"]
    for model in models:
        lines.append(f"  {json.dumps(model.name)}: {json.dumps(model.name)}")
        lines += [f"  {json.dumps(name)}: {{same_as: {json.dumps(model.name)}}}"
                  for name in model.serves if name != model.name]
    lines.append(f"  \"large\": {{same_as: {json.dumps(large)}}}")
    return "\n".join(lines) + "\n"


def stage(models: Sequence[ModelPin], fetched: dict[str, Path], *, large: str, out: Path) -> None:
    """Rebuild out with exactly these models, registry.yaml and MODELS.json (atomic rename)."""
    tmp = out.with_name(out.name + ".staging")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    baked: dict[str, object] = {}
    for model in models:
        (tmp / model.name).mkdir()
        for pin in model.files:
            _link_or_copy(fetched[model.name] / pin.name, tmp / model.name / pin.name)
        baked[model.name] = {"repo": model.repo, "revision": model.revision, "serves": list(model.serves),
                             "files": {p.name: {"size": p.size, "sha256": p.sha256} for p in model.files}}
    manifest = {"large": large, "models": baked}
    (tmp / "registry.yaml").write_text(registry_text(models, large), encoding="utf-8")
    (tmp / "MODELS.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def run(*, large: str, also: Sequence[str], source: str, cache: Path, out: Path, pins_file: Path,
        say: Callable[[str], None] = print) -> None:
    pins = load_pins(pins_file)
    names = list(dict.fromkeys([large, *also]))
    unknown = [n for n in names if n not in pins]
    if unknown:
        raise FetchError(f"no pin for {', '.join(unknown)} (pinned: {', '.join(sorted(pins))})")
    models = [pins[n] for n in names]
    fetched = {m.name: fetch_model(m, source=source, cache=cache, say=say) for m in models}
    stage(models, fetched, large=large, out=out)
    total = sum(p.size or 0 for m in models for p in m.files)
    say(f"staged {', '.join(names)} ({total / 1e9:.2f} GB) in {out}; 'large' is {large}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", default=os.environ.get("WISP_LARGE_MODEL") or "large-v3",
                        help="the model that serves jobs asking for 'large': large-v3 (default) or large-v3-turbo "
                        "[WISP_LARGE_MODEL]")
    parser.add_argument("--also", action="append", default=[], metavar="MODEL",
                        help="bake another pinned model as well (e.g. large-v3-turbo, which also serves 'turbo')")
    parser.add_argument("--source", default=os.environ.get("WISP_MODEL_SOURCE") or DEFAULT_SOURCE,
                        help=f"base URL with the <repo>/resolve/<commit>/<file> layout [WISP_MODEL_SOURCE; "
                        f"default {DEFAULT_SOURCE}]")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("WISP_MODEL_CACHE") or DEFAULT_CACHE),
                        help=f"download cache, kept between builds [WISP_MODEL_CACHE; default {DEFAULT_CACHE}]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="staging directory the Dockerfile copies")
    parser.add_argument("--pins", type=Path, default=Path(os.environ.get("WISP_MODEL_PINS") or DEFAULT_PINS),
                        help=f"pins file [WISP_MODEL_PINS; default {DEFAULT_PINS}]")
    args = parser.parse_args(argv)
    if args.large not in LARGE_CHOICES:
        parser.error(f"--large must be one of {', '.join(LARGE_CHOICES)}")
    try:
        run(large=args.large, also=args.also, source=args.source, cache=args.cache, out=args.out,
            pins_file=args.pins)
    except FetchError as exc:
        print(f"fetch_models: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
