"""Failure messages reach the user (the job's error_msg): they must not name the runner's files."""

from __future__ import annotations

import time

from wisp_runner.dummy import DummyTranscriber
from wisp_runner.loop import without_local_paths

SETTINGS = {"model": "tiny.en", "language": "en"}


class _CrashingTranscriber(DummyTranscriber):
    """Fails the way decoders do: an exception whose text names the temporary file."""

    def transcribe(self, audio_path, settings, control):
        raise OSError(f"[Errno 1094995529] Invalid data found when processing input: '{audio_path}'")


def _failed(backend, job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backend.jobs[job_id].error_msg is not None:
            return backend.jobs[job_id].error_msg
        time.sleep(0.05)
    raise AssertionError("the job did not fail")


def test_a_crash_is_reported_without_the_temporary_file(backend, start_runner, tmp_path):
    start_runner(backend, _CrashingTranscriber(segments=1))
    message = _failed(backend, backend.submit_job(SETTINGS))
    assert "/tmp" not in message and "wisp-job-" not in message and str(tmp_path) not in message
    assert message.startswith("transcription failed")


def test_local_paths_are_cut_but_urls_and_routes_stay():
    assert without_local_paths("cannot open '/tmp/wisp-job-3-x1/audio': bad") == "cannot open '<file>': bad"
    assert without_local_paths("model at /models/large-v3/model.bin broke") == "model at <file> broke"
    kept = "see https://example.org/a/b and POST /api/wisp/runners/audio_url"
    assert without_local_paths(kept) == kept
