"""Settings parsing, mapping and the checks that fail unsupported jobs at once."""

from __future__ import annotations

import pytest

from wisp_runner.errors import UnsupportedSettingsError
from wisp_runner.job_settings import AsrSettings, check_common, parse_job_settings

DEFAULTS = {"task": "transcribe", "model": "large", "language": None,
            "alignment": {"processing": {"highlight_words": False, "max_line_count": None, "max_line_width": None},
                          "return_char_alignments": False, "interpolate_method": "nearest"},
            "diarization": None, "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 30},
            "asr_settings": {"beam_size": 5, "patience": 1.0, "length_penalty": 1.0, "temperature": 0.0,
                             "temperature_increment_on_fallback": 0.2, "compression_ratio_threshold": 2.4,
                             "log_prob_threshold": -1.0, "no_speech_threshold": 0.6, "initial_prompt": None,
                             "suppress_tokens": [-1], "suppress_numerals": False},
            "email_notification": False}


def test_spec_defaults_roundtrip():
    s = parse_job_settings(DEFAULTS)
    assert s == parse_job_settings({})  # an empty object means all §4 defaults
    assert s.alignment is not None and s.alignment.interpolate_method == "nearest"
    assert s.asr_settings.suppress_tokens == (-1,)


def test_unknown_fields_are_ignored():
    assert parse_job_settings({**DEFAULTS, "future_field": 1}).model == "large"


@pytest.mark.parametrize("start, inc, expected", [
    (0.0, 0.2, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
    (0.5, 0.25, (0.5, 0.75, 1.0)),
    (0.3, 0.0, (0.3,)),
    (1.5, 0.2, (1.5,)),
])
def test_temperature_schedule(start, inc, expected):
    asr = AsrSettings(temperature=start, temperature_increment_on_fallback=inc)
    assert asr.temperatures() == pytest.approx(expected)


@pytest.mark.parametrize("patch, needle", [
    ({"diarization": {"min_speakers": 3, "max_speakers": 2}}, "min_speakers must not be greater"),
    ({"diarization": {"min_speakers": -1, "max_speakers": None}}, "must not be negative"),
    ({"model": "tiny.en", "language": "de", "alignment": None}, "English-only"),
    ({"model": "base", "language": "sw"}, "alignment is not available"),
    ({"task": "translate", "language": "de"}, "translation cannot be combined"),
    ({"task": "translate", "language": "en", "alignment": None}, "English audio to English"),
    ({"task": "translate", "model": "tiny.en", "alignment": None}, "cannot translate"),
    ({"alignment": {"processing": {"highlight_words": False, "max_line_count": 2, "max_line_width": None},
                    "return_char_alignments": False, "interpolate_method": "nearest"}}, "max_line_width"),
    ({"vad_settings": {"vad_onset": 0.5, "vad_offset": 0.3, "chunk_size": 45}}, "VAD"),
    ({"asr_settings": {**DEFAULTS["asr_settings"], "beam_size": 0}}, "beam_size"),
])
def test_unsupported_settings(patch, needle):
    with pytest.raises(UnsupportedSettingsError, match=needle):
        check_common(parse_job_settings({**DEFAULTS, **patch}))


def test_supported_combinations_pass():
    check_common(parse_job_settings({**DEFAULTS, "model": "tiny.en", "language": "en"}))
    check_common(parse_job_settings({**DEFAULTS, "task": "translate", "language": "sw", "alignment": None}))
    check_common(parse_job_settings({**DEFAULTS, "language": "sw", "alignment": None}))
    for bounds in ({"min_speakers": None, "max_speakers": None}, {"min_speakers": 0, "max_speakers": 1},
                   {"min_speakers": 2, "max_speakers": 2}, {"min_speakers": 0, "max_speakers": 0}):
        check_common(parse_job_settings({**DEFAULTS, "diarization": bounds}))


def test_speaker_bounds():
    from wisp_runner.job_settings import DiarizationSettings

    assert DiarizationSettings().bounds() == (1, None)
    assert DiarizationSettings(0, 0).bounds() == (1, None)  # 0 sets no bound, as null does
    assert DiarizationSettings(2, 4).bounds() == (2, 4)


def test_bad_shapes_become_job_errors():
    with pytest.raises(UnsupportedSettingsError):
        parse_job_settings({"vad_settings": [1, 2]})
