"""Speaker labels on a transcript's words and segments, from diarization turns.

Each timed word gets the speaker whose turn overlaps it most, or the nearest turn when none
overlaps it (the words of a short reply can fall in a pause between turns); a word without timing
takes its neighbour's speaker. A run of words is cut where the speaker changes, so every segment
has one speaker (`split_at_speaker_changes`). A segment without words gets the speaker its span
overlaps most, or the nearest one.
"""

from __future__ import annotations

import bisect
from typing import Any, Protocol, Sequence


class Turn(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def speaker(self) -> str: ...


Word = dict[str, Any]


def speaker_at(turns: Sequence[Turn], start: float, end: float) -> str | None:
    """The speaker of the span: most overlap, else the nearest turn; None without turns."""
    if not turns:
        return None
    starts = [t.start for t in turns]
    # turns are in time order and do not overlap: only those from just before `start` can reach in
    first = max(0, bisect.bisect_right(starts, start) - 1)
    best, best_overlap = None, 0.0
    for turn in turns[first:]:
        if turn.start >= end:
            break
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > best_overlap:
            best, best_overlap = turn.speaker, overlap
    if best is not None:
        return best
    middle = (start + end) / 2
    nearest = min(turns, key=lambda t: 0.0 if t.start <= middle <= t.end else min(abs(t.start - middle),
                                                                                  abs(t.end - middle)))
    return nearest.speaker


def label_words(words: list[Word], turns: Sequence[Turn]) -> None:
    """Set each word's "speaker" (in place)."""
    for w in words:
        if "start" in w and "end" in w:
            w["speaker"] = speaker_at(turns, w["start"], w["end"])
    known = [i for i, w in enumerate(words) if w.get("speaker")]
    for i, w in enumerate(words):
        if not w.get("speaker") and known:  # untimed: the speaker of the closest timed word before it
            j = bisect.bisect_right(known, i) - 1
            w["speaker"] = words[known[max(j, 0)]]["speaker"]


def split_at_speaker_changes(words: list[Word]) -> list[list[Word]]:
    """Runs of consecutive words with one speaker."""
    parts: list[list[Word]] = []
    for w in words:
        if parts and parts[-1][-1].get("speaker") == w.get("speaker"):
            parts[-1].append(w)
        else:
            parts.append([w])
    return parts


def label_segments(segments: list[dict[str, Any]], turns: Sequence[Turn]) -> None:
    """Set each segment's "speaker" (in place): its words' (most of them; a tie goes to the one
    speaking first), else by its span."""
    for seg in segments:
        spoken = [w["speaker"] for w in seg.get("words") or [] if w.get("speaker")]
        speaker = max(dict.fromkeys(spoken), key=spoken.count) if spoken else speaker_at(turns, seg["start"], seg["end"])
        if speaker is not None:
            seg["speaker"] = speaker
