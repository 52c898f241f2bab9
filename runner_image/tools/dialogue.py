#!/usr/bin/env python3
"""A spoken two-person interview made with espeak-ng, for trying and testing speaker diarization.

    python runner_image/tools/dialogue.py dialogue.wav [--gap 1.0] [--repeat 1]

Two clearly different voices take turns (an interviewer: ``en-us`` at pitch 30; a librarian:
``en+f3`` at pitch 80), eight turns, about 53 s with the default one-second pauses. `--repeat`
plays the interview several times over (for benchmarks). The script and each turn's time span are
returned by `make_dialogue` (and printed by the command), so tests know who said what, when.
Standard library only, plus the ``espeak-ng`` program.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence after each turn")
    parser.add_argument("--repeat", type=int, default=1, help="play the interview this many times")
    args = parser.parse_args(argv)
    for turn in make_dialogue(args.out, gap=args.gap, repeat=args.repeat):
        print(f"{turn.start:7.2f} {turn.end:7.2f} {turn.voice:<11} {turn.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
