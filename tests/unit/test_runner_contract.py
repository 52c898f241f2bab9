"""The backend and the runner agree on what they exchange (spec §4, §6).

The runner (``runner_image/wisp_runner``) never imports chalicelib; it keeps its own copy of the
job-settings shape, of the alignment languages and of the abort message. These tests fail when
the two copies drift apart: a renamed or added settings field, a changed enum value or default,
a language added on one side, a reworded abort message.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import typing
from pathlib import Path

import pytest

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner_image"
if str(RUNNER_DIR) not in sys.path:
    sys.path.insert(0, str(RUNNER_DIR))

from chalicelib.schemas import jobs as backend  # noqa: E402
from wisp_runner import constants as runner_constants  # noqa: E402
from wisp_runner import job_settings as runner  # noqa: E402

# (backend pydantic model, runner dataclass) for every object of the settings tree
PAIRS = [
    (backend.JobSettingsResponse, runner.JobSettings),
    (backend.JobSettingsRequest, runner.JobSettings),
    (backend.AlignmentSettings, runner.AlignmentSettings),
    (backend.AlignmentProcessingSettings, runner.AlignmentProcessing),
    (backend.DiarizationSettings, runner.DiarizationSettings),
    (backend.VadSettings, runner.VadSettings),
    (backend.AsrSettings, runner.AsrSettings),
]

# Where the backend keeps the abort message: first the module named in issue 10, then where it is
# being moved to. Update this list (not the assertion) when it moves again.
ABORT_MESSAGE_HOMES = ("chalicelib.store.lifecycle",)


def backend_abort_message() -> str:
    for module in ABORT_MESSAGE_HOMES:
        try:
            return str(importlib.import_module(module).ABORTED)
        except (ImportError, AttributeError):
            continue
    pytest.fail(f"the backend's ABORTED constant is in none of {ABORT_MESSAGE_HOMES}")


def as_json(value: object) -> object:
    """A runner dataclass as the JSON the backend would send (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(value)))  # type: ignore[arg-type]


def literal_values(cls: type, field: str) -> set[str]:
    hint = typing.get_type_hints(cls)[field]
    return set(typing.get_args(hint))


@pytest.mark.parametrize("model, dataclass", PAIRS, ids=lambda x: x.__name__)
def test_settings_objects_have_the_same_fields(model, dataclass):
    assert set(model.model_fields) == {f.name for f in dataclasses.fields(dataclass)}


def test_enum_values_agree():
    assert {t.value for t in backend.TaskEnum} == literal_values(runner.JobSettings, "task")
    assert {m.value for m in backend.InterpolateMethodEnum} == set(typing.get_args(runner.InterpolateMethod))
    assert literal_values(runner.AlignmentSettings, "interpolate_method") == {m.value for m in backend.InterpolateMethodEnum}


def test_english_only_models_agree():
    models = [m.value for m in backend.JobModelEnum]
    assert {m for m in models if runner.JobSettings(model=m).english_only_model} == set(backend.ENGLISH_ONLY_MODELS)


def test_defaults_agree():
    defaults = backend.application_defaults().model_dump(mode="json")
    assert as_json(runner.JobSettings()) == defaults
    # what the backend sends for a job with default settings reads as the runner's defaults
    assert runner.parse_job_settings(defaults) == runner.JobSettings()
    assert runner.parse_job_settings(backend.JobSettingsRequest().model_dump(mode="json")) == runner.JobSettings()


def test_every_field_the_backend_sends_is_read_by_the_runner():
    # GIVEN settings in which every field differs from its default
    sent = backend.JobSettingsResponse(
        task="transcribe", model="base", language="de",
        alignment={"processing": {"highlight_words": True, "max_line_count": 2, "max_line_width": 40},
                   "return_char_alignments": True, "interpolate_method": "linear"},
        diarization={"min_speakers": 1, "max_speakers": 3},
        vad_settings={"vad_onset": 0.4, "vad_offset": 0.2, "chunk_size": 12},
        asr_settings={"beam_size": 3, "patience": 1.5, "length_penalty": 0.5, "temperature": 0.1,
                      "temperature_increment_on_fallback": 0.3, "compression_ratio_threshold": 2.0,
                      "log_prob_threshold": -0.5, "no_speech_threshold": 0.4, "initial_prompt": "Hello.",
                      "suppress_tokens": [-1, 50], "suppress_numerals": True},
        email_notification=True,
    ).model_dump(mode="json")
    assert as_json(runner.JobSettings()) != sent
    # WHEN the runner parses them THEN it holds exactly what was sent (nothing dropped as unknown)
    assert as_json(runner.parse_job_settings(sent)) == sent


def boundary_values(model: type) -> list[tuple[str, float]]:
    """(field, value) at each end of every numeric range the backend allows (from its Field bounds)."""
    out = []
    for name, info in model.model_fields.items():
        for bound in info.metadata:
            for attr, step in (("ge", 0.0), ("le", 0.0), ("gt", 0.001), ("lt", -0.001)):
                limit = getattr(bound, attr, None)
                if limit is not None:
                    value = limit + step if info.annotation is float else limit + (1 if step > 0 else -1 if step < 0 else 0)
                    out.append((name, value))
    return out


def check_on_runner(request: object) -> None:
    runner.check_common(runner.parse_job_settings(request.to_response().model_dump(mode="json")))  # type: ignore[attr-defined]


@pytest.mark.parametrize("language", sorted(backend.ALIGNMENT_LANGUAGES))
def test_alignment_languages_the_backend_accepts_pass_the_runners_checks(language):
    check_on_runner(backend.JobSettingsRequest(model="base", language=language,
                                               diarization={"min_speakers": None, "max_speakers": None}))


@pytest.mark.parametrize("low, high", [(None, None), (0, None), (None, 0), (0, 0), (1, 1), (0, 15), (3, None), (None, 2)])
def test_speaker_bounds_the_backend_accepts_pass_the_runners_checks(low, high):
    check_on_runner(backend.JobSettingsRequest(model="base", language="en",
                                               diarization={"min_speakers": low, "max_speakers": high}))


def test_speaker_bounds_the_backend_refuses_the_runner_refuses_too():
    import pydantic

    with pytest.raises(pydantic.ValidationError):
        backend.JobSettingsRequest(diarization={"min_speakers": 3, "max_speakers": 2})
    with pytest.raises(runner.UnsupportedSettingsError):
        runner.check_common(runner.parse_job_settings({"diarization": {"min_speakers": 3, "max_speakers": 2}}))


@pytest.mark.parametrize("group, field, value", [
    ("vad_settings", *edge) for edge in boundary_values(backend.VadSettings)
] + [("asr_settings", *edge) for edge in boundary_values(backend.AsrSettings)])
def test_range_edges_the_backend_accepts_pass_the_runners_checks(group, field, value):
    defaults = {"vad_settings": backend.default_vad(), "asr_settings": backend.default_asr()}[group].model_dump()
    request = backend.JobSettingsRequest(model="base", language="en", **{group: {**defaults, field: value}})
    check_on_runner(request)


def test_alignment_languages_agree():
    assert set(runner_constants.ALIGNMENT_LANGUAGES) == set(backend.ALIGNMENT_LANGUAGES)
    assert set(backend.ALIGNMENT_LANGUAGES) <= set(backend.LANGUAGE_CODES)


def test_abort_message_agrees():
    assert runner_constants.ABORT_MESSAGE == backend_abort_message() == "job was aborted"
