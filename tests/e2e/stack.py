"""Start the local stack as ``make run`` does, in a subprocess with free ports, and talk to it over
real HTTP: shared by every end-to-end test that needs a running stack."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
PASSWORD = "Local-Stack-Test-1!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Stack:
    process: subprocess.Popen
    url: str
    aws_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_runner(self) -> None:
        """Until its local runner has registered (``WISP_LOCAL_RUNNER=1``)."""
        deadline = time.monotonic() + START_TIMEOUT
        while "registered as runner" not in self.output():
            assert time.monotonic() < deadline and self.process.poll() is None, self.output()[-4000:]
            time.sleep(0.3)

    def kill(self) -> None:
        """At teardown: the stack and every process it started (its runner has a process group of
        its own), whatever state the test left them in."""
        if self.process.poll() is not None:
            return
        below = descendants(self.process.pid)
        self.process.kill()
        self.process.wait()
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> int:
        """SIGTERM, as a terminal or service manager does; returns the exit status."""
        below = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the stack did not stop within {STOP_TIMEOUT} s:\n{self.output()[-4000:]}")
        leftovers = {pid for pid in below if alive(pid)}
        assert not leftovers, f"processes left behind: {leftovers}"
        return code


def start_stack(state_dir: Path, log: Path, **extra_env: str) -> Stack:
    port, moto_port = free_port(), free_port()
    # a clean environment: nothing of the test suite's own settings (tests/conftest.py) leaks in
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WISP_", "AWS_", "MOTO_"))}
    env.update(PORT=str(port), WISP_MOTO_PORT=str(moto_port), WISP_STATE_DIR=str(state_dir),
               WISP_LOCAL_RUNNER="0", PYTHONUNBUFFERED="1")
    env.update(extra_env)
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "wisp_local"], cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    stack = Stack(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the stack exited with {process.returncode}:\n{stack.output()[-4000:]}")
        try:
            if requests.get(f"{stack.url}/api/about", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"the stack did not answer within {START_TIMEOUT} s:\n{stack.output()[-4000:]}")
    # the API answers before the start-up banner is printed; wait for it so tests can read it
    while "Wisp is running." not in stack.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    return stack


@contextlib.contextmanager
def stack_with_runner(folder: Path, **extra_env: str) -> Iterator[Stack]:
    """A stack with its local runner registered, as `make run` starts it, for a module's tests;
    at the end it must stop cleanly (exit status 0)."""
    started = start_stack(folder / "state", folder / "stack.log", WISP_LOCAL_RUNNER="1", **extra_env)
    try:
        started.wait_for_runner()
        yield started
    finally:
        if started.process.poll() is None:
            assert started.stop() == 0


def readme_blocks(heading: str) -> list[str]:
    """The ```sh blocks of README.md's section ``## <heading>``, dedented, in order."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {heading}\n")
    section = readme[start:readme.index("\n## ", start + 1)]
    return [textwrap.dedent(b) for b in re.findall(r"^ *```sh\n(.*?)^ *```", section, re.S | re.M)]


def run_as_typed(stack: Stack, commands: str, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Documented commands run by bash as written, in the repository folder, with a clean
    environment: PORT and WISP_STATE_DIR as `stack` was started with (the README's commands honour
    them like `make run`); HOME and TMPDIR in `home`."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", commands], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout,
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home),
             "TMPDIR": str(home), "PORT": stack.url.rsplit(":", 1)[1],
             "WISP_STATE_DIR": str(stack.log.parent / "state")},
    )


def sent_mail(stack: Stack, to: str) -> list[str]:
    """Bodies of the messages moto's SES accepted for ``to``, oldest first."""
    data = requests.get(f"{stack.aws_url}/moto-api/data.json", timeout=10).json()
    return [m["body"] for m in data.get("ses", {}).get("Message", [])
            if to in (m.get("destinations") or {}).get("ToAddresses", [])]


def activation_token(stack: Stack, email: str) -> str:
    bodies = sent_mail(stack, email)
    assert bodies, f"no mail to {email}"
    match = re.search(r"/#/local/activate\?token=(\S+)", bodies[-1])
    assert match, bodies[-1]
    return match.group(1)


def sign_up_and_activate(stack: Stack, email: str, password: str = PASSWORD) -> None:
    r = requests.post(f"{stack.url}/api/local-account/signup", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token = activation_token(stack, email)
    # the link points at the landing page of this very stack
    assert f"{stack.url}/#/local/activate?token=" in sent_mail(stack, email)[-1]
    r = requests.post(f"{stack.url}/api/local-account/activate", params={"token": token})
    assert (r.status_code, r.json()) == (200, "Success"), r.text


def log_in(stack: Stack, email: str, password: str = PASSWORD, scope: str = "") -> str:
    r = requests.post(f"{stack.url}/api/local-account/login",
                      data={"username": email, "password": password, "scope": scope})
    assert r.status_code == 200, r.text
    secret = r.cookies["token"]
    assert secret not in r.text  # the token travels only in the cookie
    return secret
