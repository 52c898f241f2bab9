"""The runner loop against the fake backend over real HTTP (dummy transcriber, no model)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from wisp_runner.constants import ABORT_MESSAGE
from wisp_runner.dummy import DummyTranscriber

from .conftest import runner_process

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
    assert backend.calls_to("/runners/audio_url") and not backend.calls_to("/retrieve_job_audio")
    assert backend.calls_to("/s3/upload") and backend.calls_to("/runners/submit_uploaded_result")
    assert not backend.calls_to("/submit_job_result")


def test_extensions_fall_back_on_404(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=1), inline_result_limit=10)
    first = backend.submit_job({"model": "tiny.en", "language": "en"})
    second = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[second].state == "success", timeout=10)
    assert backend.jobs[first].state == "success"
    # each extension is tried once, then remembered as missing
    assert len(backend.calls_to("/runners/audio_url")) == 1
    assert len(backend.calls_to("/runners/result_upload")) == 1


def test_bad_token_exits_nonzero(backend, start_runner):
    _, thread = start_runner(backend, DummyTranscriber(), token="wrong")
    thread.join(timeout=5)
    assert thread.result["rc"] == 2


def test_sigterm_releases_job_and_unregisters(backend, tmp_path):
    with runner_process(backend, tmp_path, "--token", "good-token",
                        env={"WISP_RUNNER_DUMMY_SEGMENTS": "300", "WISP_RUNNER_DUMMY_SEGMENT_SECONDS": "0.1"}) as proc:
        job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
        assert backend.wait_for(lambda: backend.jobs[job_id].progress > 0, timeout=15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    log = proc.output
    # the job went back to the queue (not failed), and the runner is offline
    assert backend.jobs[job_id].state == "pending", log
    assert backend.jobs[job_id].error_msg is None
    assert not backend.online
    assert backend.calls_to("/unregister")
    assert not backend.calls_to("/submit_job_result")


# ---------------------------------------------------------------- Wisp extensions: exact shapes

def test_uploaded_result_uses_the_key_from_result_upload(backend, start_runner):
    backend.offer_extensions = True
    start_runner(backend, DummyTranscriber(segments=2), inline_result_limit=10)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    [upload] = backend.calls_to("/runners/result_upload")
    [submit] = backend.calls_to("/runners/submit_uploaded_result")
    assert submit.body == {"key": submit.body["key"]} and submit.body["key"].startswith(f"results/{job_id}/")
    assert upload.query["session_token"] == submit.query["session_token"]
    assert set(backend.jobs[job_id].transcript) == FORMATS


def test_aborted_audio_url_does_not_disable_the_extension(backend, start_runner):
    """405 from audio_url means "job aborted" (the route exists): the job is released, and the next
    job still uses audio_url."""
    backend.offer_extensions = True
    backend.abort_job(first := backend.submit_job({"model": "tiny.en", "language": "en"}))
    runner, _ = start_runner(backend, DummyTranscriber(segments=1))
    assert backend.wait_for(lambda: backend.jobs[first].state == "failed", timeout=10)
    second = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[second].state == "success", timeout=10)
    assert runner.client.has_audio_url is True
    assert not backend.calls_to("/retrieve_job_audio")


# ---------------------------------------------------------------- long-poll dispatch

def test_idle_runner_long_polls_and_picks_a_job_up_at_once(backend, start_runner):
    # GIVEN an idle runner with a slow heartbeat interval (plain heartbeats would take ~5 s)
    start_runner(backend, DummyTranscriber(segments=1), heartbeat_interval=5, long_poll=20)
    assert backend.wait_for(lambda: backend.calls_to("/runners/wait_for_job"), timeout=5)
    time.sleep(0.3)
    # WHEN a job is submitted
    submitted = time.monotonic()
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    # THEN the runner holds its audio within half a second
    assert backend.wait_for(lambda: backend.jobs[job_id].in_process_at is not None, timeout=5)
    assert backend.jobs[job_id].in_process_at - submitted < 0.5
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    polls = backend.calls_to("/runners/wait_for_job")
    assert all(p.query["timeout"] == ["20"] and p.query["session_token"] for p in polls)
    # idle → long-polls only (one plain heartbeat right after registering, while it looked for a job)
    assert all(b.at < submitted for b in backend.calls_to("/heartbeat"))


def test_busy_runner_sends_heartbeats_with_progress(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=20, segment_seconds=0.05), heartbeat_interval=0.1)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    beats = backend.calls_to("/heartbeat")
    assert len(beats) >= 3 and any(0 < b.body["progress"] < 100 for b in beats)
    # idle again afterwards: back to long-polling
    done = len(backend.calls_to("/runners/wait_for_job"))
    assert backend.wait_for(lambda: len(backend.calls_to("/runners/wait_for_job")) > done, timeout=5)


def test_abort_is_seen_while_long_polling_is_off_for_busy_runners(backend, start_runner):
    runner, _ = start_runner(backend, DummyTranscriber(segments=200, segment_seconds=0.05), heartbeat_interval=0.1)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].progress > 0, timeout=10)
    backend.abort_job(job_id)
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "failed", timeout=3)
    assert backend.jobs[job_id].error_msg == ABORT_MESSAGE


def test_without_wait_for_job_the_runner_falls_back_to_heartbeats(start_runner):
    from .fake_backend import FakeBackend

    backend = FakeBackend(offer_wait_for_job=False).start()
    try:
        runner, _ = start_runner(backend, DummyTranscriber(segments=1), heartbeat_interval=0.1)
        assert backend.wait_for(lambda: len(backend.calls_to("/heartbeat")) >= 5, timeout=5)
        job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
        assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
        assert len(backend.calls_to("/runners/wait_for_job")) == 1  # tried once, then remembered
        assert runner.client.has_wait_for_job is False
    finally:
        backend.close()


def test_backend_restart_during_long_poll_reregisters(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=1), heartbeat_interval=0.2)
    assert backend.wait_for(lambda: backend.calls_to("/runners/wait_for_job"), timeout=5)
    backend.restart()
    assert backend.wait_for(lambda: len(backend.calls_to("/register")) >= 2 and backend.online, timeout=10)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)


# ---------------------------------------------------------------- several tokens (scaled tasks)

def _occupy(backend, runner_id: int) -> None:
    from .fake_backend import OnlineRunner

    # busy with a job of its own (id 0), so the fake assigns new jobs to our runner only
    backend.online[runner_id] = OnlineRunner(runner_id, f"held-by-another-task-{runner_id}", {}, job_id=0)


def test_taken_token_is_skipped_without_unregistering(backend, start_runner):
    # GIVEN another task holds the first token
    _occupy(backend, 1)
    runner, _ = start_runner(backend, DummyTranscriber(segments=1), tokens=["good-token", "token-2", "token-3"])
    # THEN the runner registers with the second token and never unregisters the first
    assert backend.wait_for(lambda: 2 in backend.online, timeout=5)
    assert backend.online[1].session == "held-by-another-task-1"
    assert not backend.calls_to("/unregister")
    assert backend.wait_for(lambda: runner.client.runner_id == 2, timeout=5)
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    assert backend.jobs[job_id].runner_id == 2


def test_all_tokens_taken_waits_for_one_to_free(backend, start_runner):
    _occupy(backend, 1)
    _occupy(backend, 2)
    start_runner(backend, DummyTranscriber(segments=1), tokens=["good-token", "token-2"])
    assert backend.wait_for(lambda: len(backend.calls_to("/register")) >= 2, timeout=5)
    assert not backend.calls_to("/unregister")
    # WHEN the other task holding token-2 goes away
    with backend.lock:
        del backend.online[2]
    # THEN the runner takes it on its next round
    assert backend.wait_for(lambda: 2 in backend.online and backend.online[2].session.startswith("held") is False,
                            timeout=10)
    assert not backend.calls_to("/unregister")


def test_rejected_token_is_skipped(backend, start_runner):
    runner, _ = start_runner(backend, DummyTranscriber(segments=1), tokens=["revoked", "token-3"])
    assert backend.wait_for(lambda: 3 in backend.online, timeout=5)
    assert backend.wait_for(lambda: runner.client.runner_id == 3, timeout=5)


def test_every_token_rejected_exits_nonzero(backend, start_runner):
    _, thread = start_runner(backend, DummyTranscriber(), tokens=["revoked-1", "revoked-2"])
    thread.join(timeout=5)
    assert thread.result["rc"] == 2


def test_reregistration_keeps_its_token(backend, start_runner):
    _occupy(backend, 1)
    start_runner(backend, DummyTranscriber(segments=1), tokens=["good-token", "token-2"], heartbeat_interval=0.1)
    assert backend.wait_for(lambda: 2 in backend.online, timeout=5)
    # WHEN the backend forgets runner 2 (restart) while the other task re-registers token 1 too
    with backend.lock:
        del backend.online[2]
    # THEN the runner comes back as runner 2 (its own token first), releasing only its own registration
    assert backend.wait_for(lambda: 2 in backend.online, timeout=10)
    assert backend.online[1].session == "held-by-another-task-1"
    unregisters = backend.calls_to("/unregister")
    assert unregisters and all(c.query.get("session_token") != ["held-by-another-task-1"] for c in unregisters)


def test_cli_token_list_from_env(backend, tmp_path):
    _occupy(backend, 1)
    # WISP_RUNNER_TOKENS wins over a WISP_RUNNER_TOKEN that may be set in the environment
    with runner_process(backend, tmp_path, env={"WISP_RUNNER_TOKENS": "good-token, token-2"}) as proc:
        assert backend.wait_for(lambda: 2 in backend.online, timeout=15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    log = proc.output
    assert "token 1 of 2 is in use by another runner" in log and "with token 2 of 2" in log, log
    assert "good-token" not in log and "token-2" not in log  # tokens are never logged
    assert 1 in backend.online and 2 not in backend.online
