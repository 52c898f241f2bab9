"""The runner loop against the fake backend over real HTTP (dummy transcriber, no model)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wisp_runner.constants import ABORT_MESSAGE
from wisp_runner.dummy import DummyTranscriber

RUNNER_DIR = Path(__file__).resolve().parents[1]
FORMATS = {"as_txt", "as_srt", "as_tsv", "as_vtt", "as_json"}


def test_register_heartbeat_and_job(backend, start_runner):
    # GIVEN a registered runner
    runner, _ = start_runner(backend, DummyTranscriber(segments=3, segment_seconds=0.15))
    assert backend.wait_for(lambda: backend.online)
    # WHEN a job is submitted
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    # THEN it is transcribed and all five formats are submitted
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    transcript = backend.jobs[job_id].transcript
    assert set(transcript) == FORMATS
    assert "Space, the final frontier." in transcript["as_txt"]
    assert transcript["as_vtt"].startswith("WEBVTT\n\n")
    # registration carried the RunnerRegisterRequest fields
    reg = backend.calls_to("/register")[0]
    assert reg.body["name"] == "test-runner" and reg.body["priority"] == 100
    assert set(reg.body) == {"name", "version", "git_hash", "source_code_url", "priority"}
    # every call after register carries the session token
    session = backend.online[1].session
    later = [c for c in backend.calls if not c.path.endswith("/register")]
    assert later and all(c.query.get("session_token") == [session] for c in later)
    # heartbeats ran during the job and reported progress
    beats = backend.calls_to("/heartbeat")
    assert len(beats) >= 3
    assert any(0 < b.body["progress"] <= 100 for b in beats)


def test_register_conflict_unregisters_once(backend, start_runner):
    # GIVEN the backend still lists the runner as online (e.g. after a crash)
    backend.online[1] = __import__("tests.fake_backend", fromlist=["OnlineRunner"]).OnlineRunner(1, "old", {})
    start_runner(backend, DummyTranscriber())
    # THEN the runner unregisters once and registers again
    assert backend.wait_for(lambda: backend.online.get(1) and backend.online[1].session != "old")
    assert len(backend.calls_to("/unregister")) == 1
    assert len(backend.calls_to("/register")) == 2


def test_abort_mid_transcription_stops_quickly(backend, start_runner):
    runner, _ = start_runner(backend, DummyTranscriber(segments=200, segment_seconds=0.1))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en", "alignment": None})
    assert backend.wait_for(lambda: backend.jobs[job_id].progress > 0, timeout=10)
    aborted_at = time.monotonic()
    backend.abort_job(job_id)
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "failed", timeout=5)
    job = backend.jobs[job_id]
    assert job.error_msg == ABORT_MESSAGE
    assert job.finished_at - aborted_at < 2.0
    # the runner is idle again and takes the next job
    nxt = backend.submit_job({"model": "tiny.en", "language": "en"})
    runner.transcriber.segments = 1
    assert backend.wait_for(lambda: backend.jobs[nxt].state == "success", timeout=10)


def test_backend_restart_reregisters_and_reruns_job(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=30, segment_seconds=0.1))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "in_process", timeout=5)
    # WHEN the backend restarts and forgets the runner mid-job
    backend.restart()
    # THEN the runner drops the job silently, registers again and gets the re-queued job
    assert backend.wait_for(lambda: len(backend.calls_to("/register")) >= 2, timeout=5)
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=15)
    assert backend.jobs[job_id].error_msg is None


def test_transient_errors_are_retried(backend, start_runner):
    backend.fail_routes = {"/register": 2, "/retrieve_job_info": 2, "/submit_job_result": 2}
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)


def test_unsupported_settings_fail_at_once(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=50, segment_seconds=0.1))
    job_id = backend.submit_job({"model": "tiny", "diarization": {"min_speakers": None, "max_speakers": None}})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "failed", timeout=3)
    assert "diarization" in backend.jobs[job_id].error_msg


def test_wrong_audio_content_type_fails_job(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"}, content_type="text/html")
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "failed", timeout=5)
    assert "content type" in backend.jobs[job_id].error_msg


def test_wisp_extensions_used_when_offered(backend, start_runner):
    backend.offer_extensions = True
    start_runner(backend, DummyTranscriber(segments=2), inline_result_limit=10)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    assert backend.calls_to("/wisp/audio_url") and not backend.calls_to("/retrieve_job_audio")
    assert backend.calls_to("/s3/upload") and backend.calls_to("/wisp/submit_uploaded_result")
    assert not backend.calls_to("/submit_job_result")


def test_extensions_fall_back_on_404(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=1), inline_result_limit=10)
    first = backend.submit_job({"model": "tiny.en", "language": "en"})
    second = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[second].state == "success", timeout=10)
    assert backend.jobs[first].state == "success"
    # each extension is tried once, then remembered as missing
    assert len(backend.calls_to("/wisp/audio_url")) == 1
    assert len(backend.calls_to("/wisp/result_upload")) == 1


def test_bad_token_exits_nonzero(backend, start_runner):
    _, thread = start_runner(backend, DummyTranscriber(), token="wrong")
    thread.join(timeout=5)
    assert thread.result["rc"] == 2


def test_sigterm_releases_job_and_unregisters(backend, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(RUNNER_DIR), "WISP_RUNNER_DUMMY_SEGMENTS": "300",
           "WISP_RUNNER_DUMMY_SEGMENT_SECONDS": "0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wisp_runner", "--backend-url", backend.url, "--token", "good-token",
         "--dummy", "--heartbeat-interval", "0.2", "--health-file", str(tmp_path / "health")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
        assert backend.wait_for(lambda: backend.jobs[job_id].progress > 0, timeout=15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stdout.read().decode()
    # the job went back to the queue (not failed), and the runner is offline
    assert backend.jobs[job_id].state == "pending", log
    assert backend.jobs[job_id].error_msg is None
    assert not backend.online
    assert backend.calls_to("/unregister")
    assert not backend.calls_to("/submit_job_result")
