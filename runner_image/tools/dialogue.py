#!/usr/bin/env python3
"""A spoken two-person interview made with espeak-ng, for trying and testing speaker diarization.

    python runner_image/tools/dialogue.py dialogue.wav [--gap 1.0] [--repeat 1] [--long]

Two clearly different voices take turns (an interviewer: ``en-us`` at pitch 30; a librarian:
``en+f3`` at pitch 80), eight turns, about 53 s with the default one-second pauses; `--long` goes
on with fourteen more turns (about 2.3 minutes in all). `--repeat` plays it several times over.
The script and each turn's time span are returned by `make_dialogue` (and printed by the
command), so tests know who said what, when; `script_heard` and `by_majority` score a transcript
of it (how much of the script came back; how much of it went to the right voice). Standard
library only, plus the ``espeak-ng`` program (and jiwer for `script_heard`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import wave
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

VOICES = {"interviewer": ("en-us", 30), "librarian": ("en+f3", 80)}
SCRIPT = (
    ("interviewer", "Good morning. Thank you for coming in today. I would like to ask you a few questions "
                    "about your work at the library."),
    ("librarian", "Of course. I have worked there for almost eleven years, mostly in the archive on the "
                  "second floor."),
    ("interviewer", "What does a normal day look like for you?"),
    ("librarian", "I open the reading room at nine. Then I answer letters from researchers and fetch the "
                  "boxes they have ordered."),
    ("interviewer", "Which part of the job do you enjoy the most?"),
    ("librarian", "Finding something that nobody has looked at for a long time. Last winter we found a "
                  "diary from an old ship captain."),
    ("interviewer", "That sounds wonderful. Is there anything you would change?"),
    ("librarian", "I would like more space for the maps, and a second scanner, because the queue is "
                  "always very long."),
)

# The interview goes on (about 85 s more): different sentences, for a longer recording in which
# nothing is said twice (benchmarks; a verbatim repeat is easier to split into extra speakers).
SCRIPT_GOES_ON = (
    ("interviewer", "How did you first come to work in an archive?"),
    ("librarian", "I studied history, and during my last summer I helped to sort the letters of a "
                  "famous painter. After that I never wanted to leave."),
    ("interviewer", "What was the strangest request you ever had?"),
    ("librarian", "A man wanted every newspaper from the year his grandmother was born, because he "
                  "believed she had won a baking competition."),
    ("interviewer", "And had she?"),
    ("librarian", "She came second, with an apple cake. He was delighted anyway and sent us a photograph."),
    ("interviewer", "How has the work changed since you started?"),
    ("librarian", "Most people now ask by e-mail, and they expect a scan within a day. The old paper "
                  "still has to be handled slowly, so we plan our weeks very carefully."),
    ("interviewer", "Do young people still visit the reading room?"),
    ("librarian", "More than you would think. School classes come every spring, and students often "
                  "stay until we close."),
    ("interviewer", "What would you tell someone who wants to do your job?"),
    ("librarian", "Be patient, be curious, and learn to read old handwriting. The rest comes with time."),
    ("interviewer", "Thank you very much for your time."),
    ("librarian", "It was a pleasure. Come and visit us on the second floor."),
)


@dataclass(frozen=True)
class Turn:
    voice: str
    text: str
    start: float
    end: float


def speak(text: str, voice: str, pitch: int, speed: int = 150) -> tuple[int, bytes]:
    """(sample rate, 16-bit mono PCM) of `text` spoken by espeak-ng."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turn.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
                       check=True)
        with wave.open(str(path)) as w:
            return w.getframerate(), w.readframes(w.getnframes())


def make_dialogue(path: Path, *, gap: float = 1.0, repeat: int = 1,
                  script: tuple[tuple[str, str], ...] = SCRIPT) -> list[Turn]:
    """Write the dialogue to `path` (WAV) and return its turns with their times in seconds."""
    turns: list[Turn] = []
    pcm = bytearray()
    rate = 0
    for _ in range(repeat):
        for voice, text in script:
            rate, audio = speak(text, *VOICES[voice])
            start = len(pcm) / 2 / rate
            pcm += audio
            turns.append(Turn(voice, text, round(start, 3), round(len(pcm) / 2 / rate, 3)))
            pcm += b"\0\0" * int(gap * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(pcm))
    return turns


# ------------------------------------------------------------------ scoring a transcript of it

def voice_at(turns: Sequence[Turn], start: float, end: float | None = None) -> str:
    """The voice speaking at `start` (or the middle of start–end): the turn holding that moment,
    else the nearest turn."""
    moment = start if end is None else (start + end) / 2
    return min(turns, key=lambda t: 0.0 if t.start <= moment <= t.end
               else min(abs(t.start - moment), abs(t.end - moment))).voice


@dataclass(frozen=True)
class Majority:
    share: float  # of the weight, on labels that stand for the right voice
    voice_of: dict[str, str]  # speaker label → the voice it stands for
    tally: dict[str, Counter[str]]  # speaker label → weight per true voice


def by_majority(votes: Iterable[tuple[str, str, float]]) -> Majority:
    """Scores (speaker label, true voice, weight) votes: each label stands for the voice most of
    its weight has (labels are arbitrary names)."""
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for label, voice, weight in votes:
        tally[label][voice] += weight
    voice_of = {label: c.most_common(1)[0][0] for label, c in tally.items()}
    total = sum(sum(c.values()) for c in tally.values())
    right = sum(c[voice_of[label]] for label, c in tally.items())
    return Majority(right / total if total else 0.0, voice_of, dict(tally))


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept) or ``[SPEAKER_NN]: `` prefixes."""
    return re.sub(r"[^a-z0-9' ]+", " ", re.sub(r"\[SPEAKER_\d+\]: ", " ", text).lower()).split()


@dataclass(frozen=True)
class Heard:
    came_back: float  # share of the script's words that came back, rightly or misheard (not deleted)
    right: float  # share that came back right (hits)
    wer: float


def script_heard(script: str, transcript: str) -> Heard:
    """The script and a transcript aligned word for word, as WER does (needs the jiwer package)."""
    import jiwer

    reference = words_of(script)
    found = jiwer.process_words(" ".join(reference), " ".join(words_of(transcript)))
    return Heard(1 - found.deletions / len(reference), found.hits / len(reference), float(found.wer))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence after each turn")
    parser.add_argument("--repeat", type=int, default=1, help="play the interview this many times")
    parser.add_argument("--long", action="store_true", help="the interview goes on: 22 turns, not 8")
    args = parser.parse_args(argv)
    script = SCRIPT + SCRIPT_GOES_ON if args.long else SCRIPT
    for turn in make_dialogue(args.out, gap=args.gap, repeat=args.repeat, script=script):
        print(f"{turn.start:7.2f} {turn.end:7.2f} {turn.voice:<11} {turn.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
