"""Runner configuration (flags + WISP_RUNNER_* env), registry files and the token secret."""

from __future__ import annotations

import json

import pytest

from wisp_runner.__main__ import check_health
from wisp_runner.client import fetch_token_from_secret
from wisp_runner.errors import FatalRunnerError
from wisp_runner.registry import ModelEntry, ModelRegistry, load_registry_file
from wisp_runner.settings import build_parser, config_from_args


def parse(argv, monkeypatch=None):
    return config_from_args(build_parser().parse_args(argv))


def test_flags(tmp_path):
    cfg = parse(["--backend-url", "http://b/", "--token", "t", "--name", "gpu-1", "--priority", "5",
                 "--heartbeat-interval", "0.5", "--batch-size", "4", "--preload", "tiny.en, base"])
    assert cfg.backend_url == "http://b" and cfg.priority == 5 and cfg.heartbeat_interval == 0.5
    assert cfg.preload == ("tiny.en", "base") and cfg.batch_size == 4


def test_env_defaults(monkeypatch):
    monkeypatch.setenv("WISP_RUNNER_BACKEND_URL", "https://wisp.example")
    monkeypatch.setenv("WISP_RUNNER_TOKEN_SECRET_NAME", "wisp/runner")
    monkeypatch.setenv("WISP_RUNNER_DEVICE", "cuda")
    monkeypatch.setenv("WISP_RUNNER_DUMMY", "1")
    cfg = parse([])
    assert cfg.backend_url == "https://wisp.example" and cfg.tokens == ()
    assert cfg.token_secret_name == "wisp/runner" and cfg.device == "cuda" and cfg.dummy
    assert cfg.priority == 100 and cfg.heartbeat_interval == 10.0


@pytest.mark.parametrize("argv, needle", [
    (["--token", "t"], "backend-url"),
    (["--backend-url", "http://b"], "token"),
    (["--backend-url", "http://b", "--token", "t", "--name", "x" * 41], "name"),
    (["--backend-url", "http://b", "--token", "t", "--priority", "0"], "priority"),
    (["--backend-url", "ftp://b", "--token", "t"], "http"),
    (["--backend-url", "http://b", "--token", "t", "--heartbeat-interval", "90"], "60"),
])
def test_invalid_config(argv, needle, monkeypatch):
    for var in ("BACKEND_URL", "TOKEN", "TOKEN_SECRET_NAME"):
        monkeypatch.delenv(f"WISP_RUNNER_{var}", raising=False)
    with pytest.raises(FatalRunnerError, match=needle):
        parse(argv)


def test_token_from_secret():
    class FakeSecrets:
        def __init__(self, value):
            self.value = value

        def get_secret_value(self, SecretId):
            assert SecretId == "wisp/runner"
            return {"SecretString": self.value}

    assert fetch_token_from_secret("wisp/runner", client_factory=lambda: FakeSecrets("abc\n")) == "abc"
    assert fetch_token_from_secret("wisp/runner", client_factory=lambda: FakeSecrets('{"token": "xyz"}')) == "xyz"


def test_registry_file_yaml_and_json(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "reg.yaml").write_text("models:\n  small: m\n  large: /abs/large\n")
    entries = load_registry_file(tmp_path / "reg.yaml")
    assert entries["small"].path == tmp_path / "m" and str(entries["large"].path) == "/abs/large"
    (tmp_path / "reg.json").write_text(json.dumps({"tiny": "m"}))
    assert load_registry_file(tmp_path / "reg.json")["tiny"].path == tmp_path / "m"


def test_split_model_is_assembled_once(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.json").write_text("{}")
    (files / "tokenizer.json").write_text("{}")
    (tmp_path / "p1").write_bytes(b"abc")
    (tmp_path / "p2").write_bytes(b"defg")
    reg = ModelRegistry({"base": ModelEntry("base", parts=(tmp_path / "p1", tmp_path / "p2"), files_dir=files)},
                        tmp_path / "cache")
    path = reg.resolve("base")
    assert (path / "model.bin").read_bytes() == b"abcdefg"
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert reg.resolve("base") == path and (path / "model.bin").stat().st_mtime_ns == mtime


def test_health_check(tmp_path):
    assert check_health(str(tmp_path / "missing"), 10) == 1
    (tmp_path / "h").write_text("1")
    assert check_health(str(tmp_path / "h"), 10) == 0


def test_token_list_from_flags_and_env(monkeypatch):
    for var in ("TOKEN", "TOKENS"):
        monkeypatch.delenv(f"WISP_RUNNER_{var}", raising=False)
    cfg = parse(["--backend-url", "http://b", "--token", "a", "--token", "b", "--token", "a"])
    assert cfg.tokens == ("a", "b")
    monkeypatch.setenv("WISP_RUNNER_TOKENS", " x, y ,,z ")
    monkeypatch.setenv("WISP_RUNNER_TOKEN", "single")
    assert parse(["--backend-url", "http://b"]).tokens == ("x", "y", "z")
    assert parse(["--backend-url", "http://b", "--token", "flag"]).tokens == ("flag",)  # flags win
    monkeypatch.delenv("WISP_RUNNER_TOKENS")
    assert parse(["--backend-url", "http://b"]).tokens == ("single",)


def test_token_secret_shapes():
    from wisp_runner.client import fetch_tokens_from_secret, parse_token_secret

    assert parse_token_secret("plain-token\n") == ["plain-token"]
    assert parse_token_secret('{"tokens": ["t1", "t2", "t1"]}') == ["t1", "t2"]
    assert parse_token_secret('{"token": "one"}') == ["one"]
    assert parse_token_secret('["a", "b"]') == ["a", "b"]
    for bad in ('{"other": 1}', '{"tokens": []}', "   "):
        with pytest.raises(ValueError):
            parse_token_secret(bad)

    class FakeSecrets:
        def get_secret_value(self, SecretId):
            return {"SecretString": '{"tokens": ["t1", "t2"]}'}

    assert fetch_tokens_from_secret("wisp/runner", client_factory=FakeSecrets) == ["t1", "t2"]


def test_long_poll_flag(monkeypatch):
    monkeypatch.delenv("WISP_RUNNER_LONG_POLL", raising=False)
    assert parse(["--backend-url", "http://b", "--token", "t"]).long_poll == 20
    assert parse(["--backend-url", "http://b", "--token", "t", "--long-poll", "0"]).long_poll == 0
    monkeypatch.setenv("WISP_RUNNER_LONG_POLL", "5")
    assert parse(["--backend-url", "http://b", "--token", "t"]).long_poll == 5
    with pytest.raises(FatalRunnerError, match="long-poll"):
        parse(["--backend-url", "http://b", "--token", "t", "--long-poll", "30"])


def test_alias_flags_and_env(monkeypatch):
    monkeypatch.delenv("WISP_RUNNER_ALIASES", raising=False)
    cfg = parse(["--backend-url", "http://b", "--token", "t", "--alias", "large=tiny.en", "--alias", "turbo = base"])
    assert cfg.aliases == (("large", "tiny.en"), ("turbo", "base"))
    monkeypatch.setenv("WISP_RUNNER_ALIASES", "large=tiny.en,medium=tiny.en")
    assert dict(parse(["--backend-url", "http://b", "--token", "t"]).aliases) == {"large": "tiny.en", "medium": "tiny.en"}
    for bad in ("large", "=tiny.en", "large=large"):
        with pytest.raises(FatalRunnerError, match="alias"):
            parse(["--backend-url", "http://b", "--token", "t", "--alias", bad])


def test_registry_aliases(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(b"x")
    (tmp_path / "reg.yaml").write_text("models:\n  tiny.en: m\n  large: {alias_of: tiny.en}\n")
    reg = ModelRegistry.from_config(tmp_path / "reg.yaml", tmp_path / "cache")
    assert "large" in reg and reg.names() == ["large", "tiny.en"]
    assert reg.aliases() == {"large": "tiny.en"} and reg.target("large") == "tiny.en"
    assert reg.resolve("large") == tmp_path / "m"
    assert reg.describe("large") == "tiny.en (serving 'large')" and reg.describe("tiny.en") == "tiny.en"
    reg.add_aliases({"turbo": "tiny.en"})
    assert reg.target("turbo") == "tiny.en"
    with pytest.raises(FatalRunnerError, match="no model 'small'"):
        reg.add_aliases({"medium": "small"})
    with pytest.raises(FatalRunnerError, match="aliases cannot point at aliases"):
        reg.add_aliases({"medium": "large"})


def test_alias_is_logged_at_start(tmp_path, caplog):
    from wisp_runner.__main__ import make_transcriber

    (tmp_path / "m").mkdir()
    (tmp_path / "reg.json").write_text(json.dumps({"tiny.en": "m"}))
    cfg = parse(["--backend-url", "http://b", "--token", "t", "--model-registry", str(tmp_path / "reg.json"),
                 "--alias", "large=tiny.en"])
    with caplog.at_level("WARNING"):
        transcriber = make_transcriber(cfg)
    assert "large" in transcriber.registry
    assert any("jobs asking for 'large' are transcribed with 'tiny.en'" in r.message for r in caplog.records)
