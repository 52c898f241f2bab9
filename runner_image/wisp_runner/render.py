"""Transcript renderers for the five formats the backend stores (spec §10).

Input is a transcript dict (see interfaces.py). Subtitle shaping follows the job's
`alignment.processing` settings:

* no word timings → one cue per segment;
* word timings, `max_line_width` and `max_line_count` both set → words flow across segments into
  cues of at most `max_line_count` lines of at most `max_line_width` characters; a pause longer
  than 3 s or a change of speaker starts a new cue;
* word timings otherwise → one cue per segment, wrapped at `max_line_width` when set;
* `highlight_words` → one cue per word showing the whole cue text with that word in `<u>…</u>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from .job_settings import AlignmentProcessing, AlignmentSettings

PAUSE_SPLIT_SECONDS = 3.0

Word = dict[str, Any]


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def render_all(transcript: dict[str, Any], alignment: AlignmentSettings | None) -> dict[str, Any]:
    """All five renderings, keyed as in the submit_job_result body (`Transcript`)."""
    processing = alignment.processing if alignment is not None else AlignmentProcessing()
    cues = build_cues(transcript, processing)
    return {
        "as_txt": render_txt(transcript),
        "as_srt": render_srt(cues),
        "as_vtt": render_vtt(cues),
        "as_tsv": render_tsv(transcript),
        "as_json": json.loads(json.dumps(transcript)),  # a deep, JSON-clean copy
    }


# ------------------------------------------------------------------ plain formats

def speaker_prefix(speaker: Any) -> str:
    return f"[{speaker}]: " if speaker not in (None, "") else ""


def render_txt(transcript: dict[str, Any]) -> str:
    lines = []
    for seg in transcript.get("segments", []):
        text = str(seg.get("text", "")).strip()
        if text:
            lines.append(speaker_prefix(seg.get("speaker")) + text)
    return "".join(line + "\n" for line in lines)


def render_tsv(transcript: dict[str, Any]) -> str:
    rows = ["start\tend\ttext"]
    for seg in transcript.get("segments", []):
        text = " ".join(str(seg.get("text", "")).replace("\t", " ").split())
        if text:
            rows.append(f"{_ms(seg['start'])}\t{_ms(seg['end'])}\t{text}")
    return "".join(row + "\n" for row in rows)


def render_srt(cues: Iterable[Cue]) -> str:
    out = []
    for number, cue in enumerate(cues, start=1):
        out.append(f"{number}\n{format_timestamp(cue.start, ',', True)} --> "
                   f"{format_timestamp(cue.end, ',', True)}\n{cue.text}\n")
    return "\n".join(out)


def render_vtt(cues: Iterable[Cue]) -> str:
    out = ["WEBVTT\n"]
    for cue in cues:
        out.append(f"{format_timestamp(cue.start, '.', False)} --> "
                   f"{format_timestamp(cue.end, '.', False)}\n{cue.text}\n")
    return "\n".join(out)


def _ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000))


def format_timestamp(seconds: float, decimal_marker: str, always_hours: bool) -> str:
    ms = max(0, _ms(seconds))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


# ------------------------------------------------------------------ subtitle cues

def _timed(word: Word) -> bool:
    return word.get("start") is not None and word.get("end") is not None


class _Joiner:
    """Joins word strings: faster-whisper words carry their leading space (and CJK words none),
    WhisperX-style words carry none and need one."""

    def __init__(self, transcript: dict[str, Any]) -> None:
        words = [w for s in transcript.get("segments", []) for w in s.get("words") or []]
        self.raw = any(str(w.get("word", ""))[:1].isspace() for w in words)

    def join(self, words: list[Word], highlight: int | None = None) -> str:
        parts = []
        for i, w in enumerate(words):
            text = str(w.get("word", ""))
            lead = text[: len(text) - len(text.lstrip())] if self.raw else " "
            core = text.strip()
            if i == highlight:
                core = f"<u>{core}</u>"
            parts.append(lead + core)
        return "".join(parts).strip()


def build_cues(transcript: dict[str, Any], processing: AlignmentProcessing) -> list[Cue]:
    segments = transcript.get("segments", [])
    joiner = _Joiner(transcript)
    # A cue is a list of lines, a line a list of words; the speaker goes in front of line one.
    groups: list[tuple[Any, list[list[Word]], dict[str, Any] | None]] = []
    width, count = processing.max_line_width, processing.max_line_count
    flow = width is not None and count is not None

    if flow:
        lines: list[list[Word]] = []
        speaker: Any = None
        last_end: float | None = None
        for seg in segments:
            for w in seg.get("words") or []:
                w_speaker = w.get("speaker", seg.get("speaker"))
                pause = _timed(w) and last_end is not None and w["start"] - last_end > PAUSE_SPLIT_SECONDS
                if lines and (pause or w_speaker != speaker):
                    groups.append((speaker, lines, None))
                    lines = []
                speaker = w_speaker
                if lines and len(joiner.join(lines[-1] + [w])) <= width:
                    lines[-1].append(w)
                elif lines and len(lines) < count:
                    lines.append([w])
                else:
                    if lines:
                        groups.append((speaker, lines, None))
                    lines = [[w]]
                if _timed(w):
                    last_end = w["end"]
            if not seg.get("words") and str(seg.get("text", "")).strip():
                if lines:  # an unaligned segment in an aligned transcript keeps its own cue
                    groups.append((speaker, lines, None))
                    lines = []
                groups.append((seg.get("speaker"), [], seg))
        if lines:
            groups.append((speaker, lines, None))
    else:
        for seg in segments:
            words = seg.get("words") or []
            if not words:
                groups.append((seg.get("speaker"), [], seg))
                continue
            if width is None:
                lines = [list(words)]
            else:
                lines = []
                for w in words:
                    if lines and len(joiner.join(lines[-1] + [w])) <= width:
                        lines[-1].append(w)
                    else:
                        lines.append([w])
            groups.append((seg.get("speaker"), lines, seg))

    cues: list[Cue] = []
    for speaker, lines, seg in groups:
        prefix = speaker_prefix(speaker)
        words = [w for line in lines for w in line]
        if not words:  # segment without word timings
            assert seg is not None
            text = str(seg.get("text", "")).strip()
            if text:
                cues.append(Cue(float(seg["start"]), float(seg["end"]), prefix + text))
            continue
        timed = [w for w in words if _timed(w)]
        if not timed and seg is None:
            continue
        start = float(timed[0]["start"]) if timed else float(seg["start"])  # type: ignore[index]
        end = float(timed[-1]["end"]) if timed else float(seg["end"])  # type: ignore[index]
        if not processing.highlight_words:
            text = "\n".join(joiner.join(line) for line in lines)
            cues.append(Cue(start, end, prefix + text))
            continue
        flat_index = 0
        positions = []  # (line index, index in line) of each word
        for li, line in enumerate(lines):
            for wi in range(len(line)):
                positions.append((li, wi))
        for flat_index, w in enumerate(words):
            if not _timed(w):
                continue
            li, wi = positions[flat_index]
            text = "\n".join(
                joiner.join(line, highlight=wi if k == li else None) for k, line in enumerate(lines)
            )
            cues.append(Cue(float(w["start"]), float(w["end"]), prefix + text))
    return cues
