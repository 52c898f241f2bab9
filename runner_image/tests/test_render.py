"""Golden-file tests of the five transcript formats (spec §10).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and
review the diff of tests/golden/ by eye.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wisp_runner.job_settings import AlignmentProcessing, AlignmentSettings
from wisp_runner.render import format_timestamp, render_all

GOLDEN = Path(__file__).parent / "golden"
CASES = json.loads((GOLDEN / "cases.json").read_text())
EXT = {"as_txt": "txt", "as_srt": "srt", "as_vtt": "vtt", "as_tsv": "tsv"}


def _alignment(spec):
    return None if spec is None else AlignmentSettings(processing=AlignmentProcessing(**spec))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    spec = CASES[case]
    transcript = json.loads((GOLDEN / spec["input"]).read_text())
    out = render_all(transcript, _alignment(spec["alignment"]))
    assert out["as_json"] == transcript
    for key, ext in EXT.items():
        path = GOLDEN / case / f"out.{ext}"
        if os.environ.get("UPDATE_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(out[key], encoding="utf-8")
        assert out[key] == path.read_text(encoding="utf-8"), f"{case}: {path.name} differs"


def test_timestamps():
    assert format_timestamp(6.089, ",", True) == "00:00:06,089"
    assert format_timestamp(14.6635, ".", False) == "00:14.664"
    assert format_timestamp(3725.25, ".", False) == "01:02:05.250"
    assert format_timestamp(0.0004, ",", True) == "00:00:00,000"


def test_json_is_a_copy():
    transcript = {"language": "en", "segments": [{"start": 0.0, "end": 1.0, "text": "hi"}]}
    out = render_all(transcript, None)
    out["as_json"]["segments"][0]["text"] = "changed"
    assert transcript["segments"][0]["text"] == "hi"


def test_words_without_timing_are_kept_in_text():
    transcript = {"language": "en", "segments": [{"start": 1.0, "end": 2.0, "text": "a b c", "words": [
        {"word": "a", "start": 1.0, "end": 1.2, "score": 1}, {"word": "b", "score": 1},
        {"word": "c", "start": 1.5, "end": 2.0, "score": 1}]}]}
    out = render_all(transcript, AlignmentSettings())
    assert out["as_srt"] == "1\n00:00:01,000 --> 00:00:02,000\na b c\n"
    hl = render_all(transcript, AlignmentSettings(processing=AlignmentProcessing(highlight_words=True)))
    assert hl["as_vtt"].count("-->") == 2  # the untimed word gets no cue of its own
