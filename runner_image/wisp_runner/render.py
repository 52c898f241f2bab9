"""Transcript renderers for the five formats the backend stores (spec §10).

Input is a transcript dict (see interfaces.py). Subtitle shaping follows the job's
`alignment.processing` settings:

* no word timings → one cue per segment;
* word timings, `max_line_width` and `max_line_count` both set → words flow across segments into
  cues of at most `max_line_count` lines of at most `max_line_width` characters; a pause longer
  than 3 s or a change of speaker starts a new cue; a cue that is full never ends on an
  abbreviation such as "Dr." (sentences.py): that word starts the next cue;
* word timings otherwise → one cue per segment, wrapped at `max_line_width` when set;
* `highlight_words` → one cue per word showing the whole cue text with that word in `<u>…</u>`.

Before anything is rendered, `order_timings` puts the transcript's times in playing order (words
first, then segments), so that no two cues overlap and srt, vtt, tsv and json show the same times.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Iterable

from .job_settings import AlignmentProcessing, AlignmentSettings
from .sentences import ends_sentence

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
    transcript = order_timings(copy.deepcopy(transcript))  # every format renders the same times
    cues = build_cues(transcript, processing)
    return {
        "as_txt": render_txt(transcript),
        "as_srt": render_srt(cues),
        "as_vtt": render_vtt(cues),
        "as_tsv": render_tsv(transcript),
        "as_json": json.loads(json.dumps(transcript)),  # JSON-clean
    }


# ------------------------------------------------------------------ playing order

def order_timings(transcript: dict[str, Any]) -> dict[str, Any]:
    """Make the transcript's times playable, in place (and return it); a no-op when they already are.

    Word aligners can give neighbouring words overlapping or identical spans (Whisper's
    cross-attention timings; "nearest" interpolation copies a neighbour's span), and when two such
    words end up in different segments, players show two captions at once. Afterwards:

    * every timed word has start < end and starts at or after the previous timed word's end. Words
      sharing one span split it in proportion to their length; a partial overlap is cut at its
      middle; a word whose span cannot be fitted in (it lies wholly before its predecessor, or is
      empty) loses its timing, as with interpolate_method "ignore";
    * every segment covers its timed words, has start < end and starts at or after the previous
      segment's end (an overlap is cut between the two segments' words; words that lie before a
      preceding segment without timed words lose their timing).

    When a time had to change, `word_segments` (if present) is rebuilt from the segments' words.
    """
    segments = transcript.get("segments") or []
    before = json.dumps(segments, sort_keys=True, default=str)
    _order_words([w for seg in segments for w in seg.get("words") or []])
    _order_segments(segments)
    if "word_segments" in transcript and json.dumps(segments, sort_keys=True, default=str) != before:
        transcript["word_segments"] = [dict(w) for seg in segments for w in seg.get("words") or []]
    return transcript


def _ms_of(item: dict[str, Any], key: str) -> int:
    return _ms(item[key])


def _set_ms(item: dict[str, Any], key: str, ms: int) -> None:
    if _ms(item[key]) != ms:  # untouched times keep their precision
        item[key] = round(ms / 1000, 3)


def _untime(word: Word) -> None:
    word.pop("start", None)
    word.pop("end", None)


def _order_words(words: list[Word]) -> None:
    timed = []
    for w in words:
        if not _timed(w):
            continue
        if _ms_of(w, "end") <= _ms_of(w, "start"):
            _untime(w)  # an empty or reversed span says nothing about where the word is
        else:
            timed.append(w)
    # Runs of words with one identical span share it in proportion to their length.
    i = 0
    while i < len(timed):
        span = (_ms_of(timed[i], "start"), _ms_of(timed[i], "end"))
        j = i + 1
        while j < len(timed) and (_ms_of(timed[j], "start"), _ms_of(timed[j], "end")) == span:
            j += 1
        if j - i > 1:
            _share_span(timed[i:j], *span)
        i = j
    previous: Word | None = None
    for w in timed:
        if not _timed(w):
            continue
        if previous is not None and _ms_of(w, "start") < _ms_of(previous, "end"):
            lo = max(_ms_of(previous, "start"), _ms_of(w, "start"))
            hi = min(_ms_of(previous, "end"), _ms_of(w, "end"))
            cut = (lo + hi) // 2
            if _ms_of(previous, "start") < cut < _ms_of(w, "end"):
                _set_ms(previous, "end", cut)
                _set_ms(w, "start", cut)
            else:
                _untime(w)
                continue
        previous = w


def _share_span(run: list[Word], start: int, end: int) -> None:
    weights = [max(1, len(str(w.get("word", "")).strip())) for w in run]
    total, edges, acc = sum(weights), [start], 0
    for weight in weights:
        acc += weight
        edges.append(start + (end - start) * acc // total)
    for k, w in enumerate(run):
        if edges[k + 1] > edges[k]:
            _set_ms(w, "start", edges[k])
            _set_ms(w, "end", edges[k + 1])
        else:  # a span too short to share at millisecond precision
            _untime(w)


def _word_bounds(seg: dict[str, Any]) -> tuple[int, int] | None:
    timed = [w for w in seg.get("words") or [] if _timed(w)]
    return (_ms_of(timed[0], "start"), _ms_of(timed[-1], "end")) if timed else None


def _order_segments(segments: list[dict[str, Any]]) -> None:
    for seg in segments:
        words = _word_bounds(seg)
        if words:
            _set_ms(seg, "start", min(_ms_of(seg, "start"), words[0]))
            _set_ms(seg, "end", max(_ms_of(seg, "end"), words[1]))
        elif _ms_of(seg, "end") <= _ms_of(seg, "start"):
            _set_ms(seg, "end", _ms_of(seg, "start") + 1)
    for a, b in zip(segments, segments[1:]):
        a_start, a_end, b_start = _ms_of(a, "start"), _ms_of(a, "end"), _ms_of(b, "start")
        if b_start >= a_end:
            continue
        # The cut stays after a's words and before b's, so each segment keeps covering its words.
        a_words = _word_bounds(a)
        lo = a_words[1] if a_words else a_start + 1
        for w in b.get("words") or []:
            if _timed(w) and _ms_of(w, "start") < lo:
                _untime(w)  # b's words lie before a (only possible when a has no timed words)
        b_words = _word_bounds(b)
        b_end = _ms_of(b, "end")
        hi = b_words[0] if b_words else b_end - 1
        if lo <= hi:
            cut = min(max((max(a_start, b_start) + min(a_end, b_end)) // 2, lo), hi)
            _set_ms(a, "end", cut)
            _set_ms(b, "start", cut)
        else:  # b (without timed words) lies wholly before a's words: move it behind a
            _set_ms(b, "start", a_end)
            _set_ms(b, "end", max(b_end, a_end + 1))


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


def _carry_abbreviation(lines: list[list[Word]], following: Word) -> list[Word]:
    """A full cue must not end on "Dr." before "Smith": take that word off it (unless it is the
    cue's only word) to start the next cue with."""
    words = [w for line in lines for w in line]
    if len(words) < 2:
        return []
    last = str(words[-1].get("word", ""))
    if ends_sentence(last, str(following.get("word", "")), str(words[-2].get("word", ""))):
        return []
    if not last.strip().endswith("."):
        return []
    lines[-1].pop()
    if not lines[-1]:
        lines.pop()
    return [words[-1]]


def build_cues(transcript: dict[str, Any], processing: AlignmentProcessing) -> list[Cue]:
    segments = transcript.get("segments", [])
    joiner = _Joiner(transcript)
    # A cue is a list of lines, a line a list of words; the speaker goes in front of line one.
    groups: list[tuple[Any, list[list[Word]], dict[str, Any] | None]] = []
    width, count = processing.max_line_width, processing.max_line_count

    if width is not None and count is not None:  # words flow across segments
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
                    carried = _carry_abbreviation(lines, w)
                    if lines:
                        groups.append((speaker, lines, None))
                    together = carried + [w]
                    lines = [together] if len(joiner.join(together)) <= width or count < 2 else [carried, [w]]
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
