"""Golden-file tests of the five transcript formats (spec §10).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and
review the diff of tests/golden/ by eye.

Inputs (tests/golden/cases.json names each case's input and alignment.processing):

* ``plain.json``, ``aligned.json``: well-formed transcripts; ``as_json`` is the input unchanged.
* ``overlap.json``: word spans as aligners give them: "everyone." and the next sentence's
  "Welcome" with one identical span, a partial overlap ("the"/"meeting."), an unaligned segment
  overlapping both neighbours, a zero-length word, a word placed before its predecessor, three
  words sharing one span. Expected: cues in playing order, and ``out.json`` with the same times.
* ``decoded_abbreviations.json`` (``"decoded": true``): decoder segments (faster-whisper's shape,
  word ``probability``) run through ``transcribe.build_transcript`` first: one long clip with
  "Dr. Smith", "Mr. Jones", "St. Mary's.", "No. 5", "e.g.", "Fig. 2", "etc.", "said no.", "John F.
  Kennedy", "plan B. Then", an identical span at a sentence end and a zero-length word; then a
  segment ending "by Prof." followed by one starting "Brown at 3 p.m.". Expected: no segment or
  cue ends on an abbreviation, and cues in playing order.
* ``decoded_dialogue.json`` (decoded, with diarization ``turns``): one clip in which two speakers
  take turns (a one-word "Really?" among them) and a second clip. Expected: segments cut where the
  speaker changes, ``[SPEAKER_NN]: `` in txt, srt and vtt, ``speaker`` on json segments and words
  (json without words when unaligned), and no speakers in tsv.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from types import SimpleNamespace

import pytest

from wisp_runner.diarize import SpeakerTurn
from wisp_runner.job_settings import AlignmentProcessing, AlignmentSettings
from wisp_runner.render import format_timestamp, render_all
from wisp_runner.transcribe import build_transcript

GOLDEN = Path(__file__).parent / "golden"
CASES = json.loads((GOLDEN / "cases.json").read_text())
EXT = {"as_txt": "txt", "as_srt": "srt", "as_vtt": "vtt", "as_tsv": "tsv"}


def _alignment(spec):
    return None if spec is None else AlignmentSettings(processing=AlignmentProcessing(**spec))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    spec = CASES[case]
    transcript = json.loads((GOLDEN / spec["input"]).read_text())
    alignment = _alignment(spec["alignment"])
    if spec.get("decoded"):
        turns = [SpeakerTurn(**t) for t in transcript["turns"]] if "turns" in transcript else None
        transcript = build_transcript(_decoded(transcript["segments"]), transcript["language"], alignment, turns)
    out = render_all(transcript, alignment)
    json_path = GOLDEN / case / "out.json"
    if os.environ.get("UPDATE_GOLDEN"):
        json_path.parent.mkdir(exist_ok=True)
        if out["as_json"] != transcript or spec.get("decoded"):
            json_path.write_text(json.dumps(out["as_json"], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected_json = json.loads(json_path.read_text()) if json_path.exists() else transcript
    assert out["as_json"] == expected_json
    for key, ext in EXT.items():
        path = GOLDEN / case / f"out.{ext}"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(out[key], encoding="utf-8")
        assert out[key] == path.read_text(encoding="utf-8"), f"{case}: {path.name} differs"


def _decoded(segments):
    """Decoder segments as faster-whisper's Segment/Word objects (the attributes build_transcript reads)."""
    return [SimpleNamespace(start=s["start"], end=s["end"], text=s["text"],
                            words=[SimpleNamespace(**w) for w in s.get("words") or []] or None)
            for s in segments]


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


@pytest.mark.parametrize("word, following, previous, ends", [
    ("Dr.", "Smith", "met", False), ("Mrs.", "Brown", None, False), ("St.", "Mary's", "at", False),
    ("Prof.", "Brown", "by", False), ("vs.", "them", "us", False), ("etc.", "and", "pens", False),
    ("e.g.", "London", "cities,", False), ("i.e.", "the", "one,", False), ("U.S.", "Army", "the", False),
    ("No.", "5", "room", False), ("no.", "Later", "said", True), ("Fig.", "2", "in", False),
    ("p.", "12", "on", False), ("a.m.", "on", "9", False), ("p.m.", "Everyone", "3", True),
    ("F.", "Kennedy", "John", False), ("J.", "R.", "by", False), ("B.", "Then", "plan", True),
    ("(Dr.", "Who)", "watch", False), ("left.", "The", "we", True), ("Dr.", None, "the", True),
    ("really?", "Yes", "is", True), ("wait...", "What", "now", True), ("the", "end", "to", False),
])
def test_sentence_ends(word, following, previous, ends):
    from wisp_runner.sentences import ends_sentence

    assert ends_sentence(" " + word, following, previous) is ends


def test_random_overlaps_always_render_playable_cues():
    import random

    from wisp_runner.render import build_cues, order_timings

    rng = random.Random(7)
    shapes = [AlignmentProcessing(), AlignmentProcessing(max_line_width=20, max_line_count=2),
              AlignmentProcessing(highlight_words=True), AlignmentProcessing(max_line_width=12)]
    for _ in range(300):
        segments, t = [], 0.0
        for _ in range(rng.randint(1, 5)):
            words = []
            for _ in range(rng.randint(0, 6)):
                start = round(max(0.0, t + rng.uniform(-0.6, 0.4)), 3)
                end = round(start + rng.choice([0.0, 0.001, rng.uniform(-0.2, 0.8)]), 3)
                words.append({"word": " " + rng.choice(["Dr.", "Smith", "went.", "home", "No.", "5"]),
                              "start": start, "end": end, "score": 0.5})
                t = max(t, end)
            seg = {"start": round(max(0.0, t - rng.uniform(0, 3)), 3), "end": round(t + rng.uniform(-0.5, 0.5), 3),
                   "text": "".join(w["word"] for w in words).strip() or "Hello."}
            if words:
                seg["words"] = words
            segments.append(seg)
        transcript = order_timings({"language": "en", "segments": segments})
        spans = [(s["start"], s["end"]) for s in transcript["segments"]]
        assert all(a < b for a, b in spans) and all(p[1] <= n[0] for p, n in zip(spans, spans[1:])), spans
        timed = [w for s in transcript["segments"] for w in s.get("words", []) if "start" in w]
        assert all(w["start"] < w["end"] for w in timed)
        assert all(p["end"] <= n["start"] for p, n in zip(timed, timed[1:]))
        for processing in shapes:
            cues = build_cues(transcript, processing)
            assert all(c.start < c.end for c in cues), cues
            assert all(p.end <= n.start for p, n in zip(cues, cues[1:])), cues
        assert order_timings(json.loads(json.dumps(transcript))) == transcript  # idempotent
