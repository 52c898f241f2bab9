"""The seam between the protocol loop and the speech code (STYLE §4 item 15).

`loop.py` only knows `Transcriber`; `transcribe.py` (faster-whisper) and `dummy.py` implement it.
A transcript is a plain dict shaped like the `as_json` output of spec §10:
``{"language": str, "segments": [{"start", "end", "text", "words"?, "speaker"?, "chars"?}],
"word_segments"?: [...]}``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

from .errors import JobCancelled
from .job_settings import JobSettings

Transcript = dict[str, Any]


class JobControl:
    """Handed to a transcriber: cooperative cancellation and progress reporting (0–100)."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._progress = 0.0
        self._parts: list[JobControl] = []
        self.cancel_reason = ""

    def cancel(self, reason: str) -> None:
        """Stop the job, and every part of it (`share`), with `reason`."""
        if not self._cancel.is_set():
            self.cancel_reason = reason
            self._cancel.set()
        for part in list(self._parts):
            part.cancel(self.cancel_reason)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Call between units of work; raises JobCancelled once the job must stop."""
        if self._cancel.is_set():
            raise JobCancelled(self.cancel_reason or "cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleep that wakes early on cancel; returns True if cancelled."""
        return self._cancel.wait(seconds)

    def set_progress(self, percent: float) -> None:
        self._progress = min(100.0, max(0.0, float(percent)))

    @property
    def progress(self) -> float:
        return self._progress

    def share(self, *weights: float) -> Sequence["JobControl"]:
        """Controls for parts of the job that run side by side: this job's progress is their
        progress weighted by `weights`; each stops when this job is cancelled or it is itself."""
        total = sum(weights)
        parts = [_Part(self, w / total) for w in weights]
        for part in parts:
            part.siblings = parts
        self._parts.extend(parts)
        if self.cancelled:  # cancelled before the parts were known to `cancel`
            self.cancel(self.cancel_reason)
        return list(parts)


class _Part(JobControl):
    """A part of a job (`JobControl.share`): cancelled with it, or on its own."""

    def __init__(self, parent: JobControl, weight: float) -> None:
        super().__init__()
        self.parent, self.weight = parent, weight
        self.siblings: list[_Part] = []

    def set_progress(self, percent: float) -> None:
        super().set_progress(percent)
        self.parent.set_progress(sum(p.weight * p.progress for p in self.siblings))


class Transcriber(Protocol):
    def check_settings(self, settings: JobSettings) -> None:
        """Raise UnsupportedSettingsError if the job cannot be done; called before the download."""

    def transcribe(self, audio_path: Path, settings: JobSettings, control: JobControl) -> Transcript:
        """Transcribe the file; check `control` often; raise JobFailed for user-facing errors."""
