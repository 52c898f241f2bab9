"""Deterministic fake transcriber for CI and end-to-end tests: no model, no GPU.

It sleeps `segment_seconds` per segment (checking for cancellation in between), so tests can
abort or stop a runner mid-job. Env overrides: WISP_RUNNER_DUMMY_SEGMENTS, WISP_RUNNER_DUMMY_SEGMENT_SECONDS.
"""

from __future__ import annotations

import os
from pathlib import Path

from .constants import ENV_PREFIX
from .errors import JobFailed
from .interfaces import JobControl, Transcript
from .job_settings import JobSettings, check_common, diarization_unavailable

LINES = ("Space, the final frontier.", "These are the voyages of a small transcription runner.")


class DummyTranscriber:
    def __init__(self, *, segments: int | None = None, segment_seconds: float | None = None) -> None:
        self.segments = segments if segments is not None else int(os.environ.get(ENV_PREFIX + "DUMMY_SEGMENTS", "2"))
        self.segment_seconds = (
            segment_seconds if segment_seconds is not None
            else float(os.environ.get(ENV_PREFIX + "DUMMY_SEGMENT_SECONDS", "0.05"))
        )

    def check_settings(self, settings: JobSettings) -> None:
        check_common(settings)
        if settings.diarization is not None:
            raise diarization_unavailable("the dummy transcriber has no speaker model")

    def transcribe(self, audio_path: Path, settings: JobSettings, control: JobControl) -> Transcript:
        self.check_settings(settings)
        if audio_path.stat().st_size == 0:
            raise JobFailed("The audio could not be decoded: the file is empty")
        segments = []
        for i in range(self.segments):
            if control.wait(self.segment_seconds):
                control.check_cancelled()
            start, end = 6.089 + 10 * i, 14.663 + 10 * i
            text = LINES[i % len(LINES)]
            seg: dict = {"start": start, "end": end, "text": text}
            if settings.alignment is not None:
                tokens = text.split()
                step = (end - start) / len(tokens)
                seg["words"] = [
                    {"word": w, "start": round(start + k * step, 3), "end": round(start + (k + 1) * step, 3), "score": 0.9}
                    for k, w in enumerate(tokens)
                ]
            segments.append(seg)
            control.set_progress(100 * (i + 1) / max(1, self.segments))
        control.check_cancelled()
        result: Transcript = {"language": settings.language or "en", "segments": segments}
        if settings.alignment is not None:
            result["word_segments"] = [w for s in segments for w in s["words"]]
        return result
