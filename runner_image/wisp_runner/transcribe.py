"""faster-whisper transcriber: the only module that touches CTranslate2 / the GPU.

How §4 settings map onto faster-whisper 1.2.x:

* ``vad_settings``: Silero VAD (``VadOptions``) with ``threshold = vad_onset``,
  ``neg_threshold = vad_offset`` and ``max_speech_duration_s = chunk_size``; speech regions are
  then merged into clips spanning at most ``chunk_size`` seconds (silence between merged regions
  stays inside the clip, as in WhisperX). Both decoding paths below decode exactly these clips.
* ``asr_settings``: beam_size, patience, length_penalty, initial_prompt and suppress_tokens are
  passed through; temperature + temperature_increment_on_fallback → temperature tuple
  (`AsrSettings.temperatures`); compression_ratio_threshold / log_prob_threshold /
  no_speech_threshold drive fallback and silence skipping; suppress_numerals adds every token
  whose text holds a digit or a currency/percent sign.
* ``alignment`` → ``word_timestamps=True`` (cross-attention timings, word ``score`` = probability);
  ``interpolate_method`` fills timings of words faster-whisper could not place (zero duration);
  ``return_char_alignments`` spreads each word's span evenly over its characters;
  ``processing`` shapes subtitles (render.py).

Decoding paths:

* **batched** (default, ``batch_size > 1``; on CPU run as *lanes side by side*, below): clips
  are decoded at the first temperature without timestamp tokens (one segment per clip), several
  per batch, each with its own prompt:
  ``initial_prompt`` (if any) followed by the last ``CONTEXT_TOKENS`` tokens of the text of the
  clip before it, as Whisper's ``condition_on_previous_text`` does. Context is what keeps a
  clip's first words consistent with the rest of the recording (without it, 30 s clips of
  espeak-ng speech decoded cold came out with about twice the sequential decoder's WER: "Santa
  number ten" for "Sentence number ten", which then repeats through the clip). To keep batches,
  the clips are split into contiguous *lanes* (``plan_lanes``: at most ``batch_size`` lanes of at
  least ``MIN_LANE_CLIPS`` clips); batch *k* holds the *k*-th clip of every lane, conditioned on
  the (*k*-1)-th clip of its lane, and at the end the first clip of every lane but the first is
  decoded again with the text of the clip before it. So every clip except the first one gets its
  predecessor as context, at the cost of (lanes - 1) extra clip decodes. Context is not passed on
  from a clip that needed a fallback above temperature 0.5 or whose text fails
  compression_ratio_threshold (no repetition loop is fed forward). faster-whisper has no
  per-clip prompts in batched mode, so ``_ClipDecoder`` drives CTranslate2 directly (features,
  encode, generate, word alignment). Fallback thresholds are applied per clip by this module: a
  clip judged silent (no_speech_threshold + log_prob_threshold) is dropped, and a clip failing
  compression_ratio_threshold or log_prob_threshold is decoded again, alone, by the sequential
  decoder with the remaining temperatures. Every clip gets word timings (jobs without alignment
  drop them from the transcript): when VAD finds speech after a clip's last word, the decoder
  ended its text early, and that tail is decoded again by the sequential decoder
  (`_complete_clip`). With alignment the clip is cut into sentences using word timings; without,
  a segment is a whole clip (its times those of its first and last word).
* **lanes side by side** (the batched path on CPU, `_LaneRun`): the same lanes, contexts, second
  decodes of lane starts, fallback rules and word alignment (so the same transcript, except that
  no context is cut to the length of a shorter one in its batch), computed differently: the
  model is loaded as one CTranslate2 replica per core with one thread each
  (`cpu_parallelism`), and each core works on its own clip (a lane's next clip, a lane start's
  second decode, an encoder pass ahead of time, a word alignment) instead of all cores working on
  one batch. Measured on 2 cores with tiny.en: a batch of 6 clips in one beam-search call takes as
  long as the 6 clips one after the other (beam search on CPU is bound by memory traffic), and one
  decoder call on 2 threads is slower than on 1. Every clip is encoded once; the encoder output
  is kept for its second decode and its word alignment (done once its text is final), then freed.
* **diarization** (``diarization`` set): speakers are found beside the decoding, in a second
  thread (`diarize.py`); words are labelled and segments cut where the speaker changes
  (`build_transcript`, `speakers.py`).
* **sequential** (``batch_size <= 1``): ``WhisperModel.transcribe`` over the same clips with the
  full temperature tuple, thresholds and ``condition_on_previous_text`` (reset after hot
  fallbacks). No §4 setting forces this path; only runner configuration does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .constants import ALIGNMENT_LANGUAGES, ENGLISH_ONLY_SUFFIX
from .diarize import SpeakerDiarizer, SpeakerTurn
from .errors import JobFailed, UnsupportedSettingsError
from .interfaces import JobControl, Transcript
from .job_settings import (
    AlignmentSettings,
    JobSettings,
    check_alignment_language,
    check_common,
    diarization_unavailable,
)
from .registry import ModelRegistry
from .render import order_timings
from .sentences import ends_sentence
from .speakers import label_segments, label_words, split_at_speaker_changes

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NUMERAL_CHARS = set("%$£€¥₹")
MIN_SILENCE_MS = 160  # as faster-whisper's batched default: split speech at short pauses
SPEECH_PAD_MS = 400


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WhisperTranscriber:
    """Transcriber backed by faster-whisper; models are loaded once and kept across jobs."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        device: str = "cpu",
        compute_type: str | None = None,
        batch_size: int = 8,
        cpu_threads: int = 0,
        device_index: int = 0,
        diarizer: SpeakerDiarizer | None = None,
        no_diarization: str = "it is turned off",
    ) -> None:
        self.registry = registry
        self.diarizer = diarizer  # None: jobs asking for speaker labels fail, saying `no_diarization`
        self.no_diarization = no_diarization
        self.device = device
        self.compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        self.batch_size = max(1, int(batch_size))
        self.cpu_threads = cpu_threads
        self.workers, self.intra_threads = self.cpu_parallelism()
        self.device_index = device_index
        self._models: dict[str, Any] = {}
        self._numerals: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.load_seconds: dict[str, float] = {}

    def cpu_parallelism(self) -> tuple[int, int]:
        """(model replicas, intra-op threads each) for CTranslate2.

        CPU with batch_size > 1: one replica per core (at most batch_size), one thread each, so
        that the cores decode different clips (see `_LaneRun`); cpu_threads (0 = every core this
        process may use) is the total. Otherwise one replica with cpu_threads threads."""
        if self.device != "cpu" or self.batch_size <= 1:
            return 1, self.cpu_threads
        cores = self.cpu_threads or available_cores()
        workers = max(1, min(cores, self.batch_size))
        return workers, max(1, cores // workers)

    # ------------------------------------------------------------ model cache
    def check_settings(self, settings: JobSettings) -> None:
        check_common(settings)
        if settings.diarization is not None and self.diarizer is None:
            raise diarization_unavailable(self.no_diarization)
        if settings.model not in self.registry:
            available = ", ".join(self.registry.names()) or "none"
            raise UnsupportedSettingsError(
                f"model '{settings.model}' is not available on this runner (available: {available})"
            )
        target = self.registry.target(settings.model)
        if target != settings.model and target.endswith(ENGLISH_ONLY_SUFFIX):
            served = f"model '{settings.model}' is served by the English-only model '{target}' on this runner"
            if settings.language not in (None, "en"):
                raise UnsupportedSettingsError(f"{served}; language '{settings.language}' is not possible")
            if settings.task == "translate":
                raise UnsupportedSettingsError(f"{served}, which cannot translate")

    def load_model(self, name: str) -> Any:
        with self._lock:
            if name not in self._models:
                from faster_whisper import WhisperModel

                started = time.perf_counter()
                try:
                    path = self.registry.resolve(name)
                    self._models[name] = WhisperModel(
                        str(path),
                        device=self.device,
                        device_index=self.device_index,
                        compute_type=self.compute_type,
                        cpu_threads=self.intra_threads,
                        num_workers=self.workers,
                        local_files_only=True,
                    )
                    from faster_whisper.vad import get_vad_model

                    get_vad_model()  # Silero VAD (ONNX), loaded once per process, with the model
                except Exception as exc:  # noqa: BLE001 — reported to the user, logged in full
                    log.exception("loading model %s failed", name)
                    raise JobFailed(f"could not load model '{name}' on this runner") from exc
                self.load_seconds[name] = time.perf_counter() - started
                log.info("loaded model %s in %.1f s", name, self.load_seconds[name])
            return self._models[name]

    # ------------------------------------------------------------ entry points
    def transcribe(self, audio_path: Path, settings: JobSettings, control: JobControl) -> Transcript:
        from faster_whisper import decode_audio

        self.check_settings(settings)
        model = self.load_model(self.registry.target(settings.model))
        control.check_cancelled()
        try:
            audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
        except Exception as exc:  # noqa: BLE001 — PyAV raises many types for bad input
            # PyAV's text names the runner's temporary file: logged here, not sent to the user
            log.warning("decoding %s failed: %s", audio_path, exc)
            raise JobFailed("The audio could not be decoded: the file is damaged or in a format this "
                            "runner cannot read") from exc
        return self.transcribe_array(audio, settings, control, model=model)

    def transcribe_array(
        self, audio: np.ndarray, settings: JobSettings, control: JobControl, *, model: Any = None
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 samples (decoded once by the caller); with diarization,
        the speakers are found at the same time, in a second thread."""
        self.check_settings(settings)
        model = model or self.load_model(self.registry.target(settings.model))
        control.check_cancelled()
        # An alias is never silent: as_json says which model actually ran (an extra key).
        served = self.registry.describe(settings.model)
        extra = {"model": served} if served != settings.model else {}
        if settings.diarization is None or self.diarizer is None:
            segments, language = self._decode(model, audio, settings, control)
            turns = None
        else:
            speech, voices = control.share(TRANSCRIPTION_SHARE, 1 - TRANSCRIPTION_SHARE)
            diarizer, wanted = self.diarizer, settings.diarization
            with _Beside(lambda: diarizer.diarize(audio, wanted, voices), voices, "wisp-diarize") as speakers:
                segments, language = self._decode(model, audio, settings, speech)
                turns = speakers.result()
        control.set_progress(100)
        if not segments:
            return {"language": language, "segments": [], **({"word_segments": []} if settings.alignment else {}),
                    **extra}
        return {**build_transcript(segments, language, settings.alignment, turns), **extra}

    def _decode(self, model: Any, audio: np.ndarray, settings: JobSettings,
                control: JobControl) -> tuple[list[Any], str]:
        """Decoded segments (with word timings when aligned or diarized) and the language."""
        regions = self.speech_regions(audio, settings)
        clips = merge_regions(regions, settings.vad_settings.chunk_size)
        control.check_cancelled()
        language = self._language(model, audio, clips, settings)
        control.set_progress(2)
        if not clips:
            return [], language
        options = self.decode_options(model, settings, language)
        if self.batch_size > 1 or settings.diarization is not None:
            # Batched clips always get word timings, even for a job without alignment: they show
            # where the decoder stopped (`_complete_clip`); with diarization they show where the
            # speaker changes. The transcript only keeps them if the job asked for alignment.
            options = {**options, "word_timestamps": True}
        if self.batch_size > 1 and self.device == "cpu":
            workers = int(getattr(model.model, "num_workers", 1) or 1)
            segments = _LaneRun(self, model, audio, clips, regions, options, control, workers).run()
        elif self.batch_size > 1:
            segments = self._batched(model, audio, clips, regions, options, control)
        else:
            segments = self._sequential(model, audio, clips, options, control)
        control.set_progress(100)
        return segments, language

    # ------------------------------------------------------------ settings → options
    def speech_clips(self, audio: np.ndarray, settings: JobSettings) -> list[tuple[float, float]]:
        """VAD speech regions merged into clips of at most chunk_size seconds (start, end in s)."""
        return merge_regions(self.speech_regions(audio, settings), settings.vad_settings.chunk_size)

    def speech_regions(self, audio: np.ndarray, settings: JobSettings) -> list[tuple[float, float]]:
        """Silero VAD speech regions (start, end in s), each at most chunk_size seconds."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        vad = settings.vad_settings
        opts = VadOptions(
            threshold=vad.vad_onset,
            neg_threshold=vad.vad_offset,
            max_speech_duration_s=float(vad.chunk_size),
            min_silence_duration_ms=MIN_SILENCE_MS,
            speech_pad_ms=SPEECH_PAD_MS,
        )
        regions = get_speech_timestamps(audio, opts, sampling_rate=SAMPLE_RATE)
        return [(int(r["start"]) / SAMPLE_RATE, int(r["end"]) / SAMPLE_RATE) for r in regions]

    def _language(self, model: Any, audio: np.ndarray, clips: list[tuple[float, float]], settings: JobSettings) -> str:
        if not model.model.is_multilingual:
            if settings.language not in (None, "en"):
                raise UnsupportedSettingsError(f"model '{settings.model}' is English-only")
            return "en"
        if settings.language is not None:
            if settings.language not in model.supported_languages:
                raise UnsupportedSettingsError(f"model '{settings.model}' does not know language '{settings.language}'")
            return settings.language
        if not clips:
            return "en"  # nothing to detect from; the transcript is empty anyway
        speech = np.concatenate([audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)] for s, e in clips])
        language, probability, _ = model.detect_language(audio=speech[: 30 * SAMPLE_RATE])
        log.info("detected language %s (p=%.2f)", language, probability)
        if settings.alignment is not None and language not in ALIGNMENT_LANGUAGES:
            check_alignment_language(language)
        return language

    def numeral_tokens(self, model: Any, settings: JobSettings) -> list[int]:
        """Token ids whose text contains a digit or a currency/percent sign (cached per model)."""
        name = self.registry.target(settings.model)
        if name not in self._numerals:
            hf = model.hf_tokenizer
            eot = hf.token_to_id("<|endoftext|>")
            texts = hf.decode_batch([[i] for i in range(eot)])
            self._numerals[name] = [
                i for i, text in enumerate(texts) if any(c.isdigit() or c in NUMERAL_CHARS for c in text)
            ]
        return self._numerals[name]

    def decode_options(self, model: Any, settings: JobSettings, language: str) -> dict[str, Any]:
        asr = settings.asr_settings
        suppress = list(asr.suppress_tokens)
        if asr.suppress_numerals:
            suppress = sorted(set(suppress) | set(self.numeral_tokens(model, settings)))
            if -1 in asr.suppress_tokens and -1 not in suppress:
                suppress.insert(0, -1)
        return {
            "language": language,
            "task": settings.task,
            "beam_size": asr.beam_size,
            "patience": asr.patience,
            "length_penalty": asr.length_penalty,
            "temperatures": asr.temperatures(),
            "compression_ratio_threshold": asr.compression_ratio_threshold,
            "log_prob_threshold": asr.log_prob_threshold,
            "no_speech_threshold": asr.no_speech_threshold,
            "initial_prompt": asr.initial_prompt,
            "suppress_tokens": suppress,
            "word_timestamps": settings.alignment is not None,
        }

    @staticmethod
    def _fw_kwargs(options: dict[str, Any], temperature: Any) -> dict[str, Any]:
        kw = {k: v for k, v in options.items() if k != "temperatures"}
        kw["suppress_tokens"] = list(options["suppress_tokens"])  # faster-whisper extends it in place
        kw["temperature"] = temperature
        return kw

    # ------------------------------------------------------------ decoding paths
    def _sequential(self, model: Any, audio: np.ndarray, clips: list[tuple[float, float]], options: dict[str, Any],
                    control: JobControl) -> list[Any]:
        flat = [t for clip in clips for t in clip]
        total = sum(e - s for s, e in clips) or 1.0
        segs_iter, _ = model.transcribe(
            audio,
            **self._fw_kwargs(options, list(options["temperatures"])),
            vad_filter=False,
            clip_timestamps=flat,
            condition_on_previous_text=True,  # reset after hot fallbacks (prompt_reset_on_temperature)
        )
        out = []
        for seg in segs_iter:
            out.append(seg)
            done = sum(min(e, seg.end) - s for s, e in clips if s < seg.end)
            control.set_progress(2 + 97 * done / total)
            control.check_cancelled()
        return out

    def _batched(self, model: Any, audio: np.ndarray, clips: list[tuple[float, float]],
                 regions: list[tuple[float, float]], options: dict[str, Any], control: JobControl) -> list[Any]:
        """Batched decoding with previous-text context ("lanes"; see the module docstring)."""
        n = len(clips)
        lanes = plan_lanes(n, self.batch_size)
        decoder = _ClipDecoder(model, audio, clips, options)
        results: dict[int, list[Any]] = {}
        total = sum(e - s for s, e in clips) or 1.0
        done = 0.0

        def run(indices: list[int], with_context: bool) -> None:
            nonlocal done
            control.check_cancelled()
            contexts = [decoder.context(results, i) if with_context else None for i in indices]
            for i, seg in zip(indices, decoder.decode(indices, contexts)):
                start, end = clips[i]
                control.check_cancelled()
                first = i not in results
                results[i] = self._judge_clip(model, audio, start, end, [seg] if seg else [], options, control)
                if first:
                    done += end - start
            control.set_progress(2 + 97 * done / total)

        for wave in range(max(len(lane) for lane in lanes)):
            run([lane[wave] for lane in lanes if wave < len(lane)], with_context=wave > 0)
        # Lane starts other than clip 0 were decoded without context; decode them again with the
        # text of the clip before them (the last clip of the previous lane, now known).
        starts = [lane[0] for lane in lanes[1:]]
        if starts:
            run(starts, with_context=True)
        for i in range(n):
            control.check_cancelled()
            results[i] = self._complete_clip(model, audio, clips[i], regions, results.get(i, []), options)
        return [seg for i in range(n) for seg in results.get(i, [])]

    def _judge_clip(self, model: Any, audio: np.ndarray, start: float, end: float, segs: list[Any],
                    options: dict[str, Any], control: JobControl) -> list[Any]:
        """Apply Whisper's fallback rules to one batched clip (batched mode has none)."""
        if not segs:
            return []
        avg_logprob, no_speech = segs[0].avg_logprob, segs[0].no_speech_prob
        cr_thr, lp_thr, ns_thr = (
            options["compression_ratio_threshold"], options["log_prob_threshold"], options["no_speech_threshold"],
        )
        if ns_thr is not None and no_speech > ns_thr and not (lp_thr is not None and avg_logprob > lp_thr):
            return []  # silence
        ratio = compression_ratio(" ".join(s.text.strip() for s in segs))
        needs_fallback = (cr_thr is not None and ratio > cr_thr) or (lp_thr is not None and avg_logprob < lp_thr)
        temps = options["temperatures"]
        if not needs_fallback or len(temps) < 2:
            return segs
        control.check_cancelled()
        log.debug("clip %.1f–%.1f s: fallback (ratio %.2f, logprob %.2f)", start, end, ratio, avg_logprob)
        piece = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        redo, _ = model.transcribe(
            piece,
            **self._fw_kwargs(options, list(temps[1:])),
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return [_shift(seg, start) for seg in redo]

    def _complete_clip(self, model: Any, audio: np.ndarray, clip: tuple[float, float],
                       regions: list[tuple[float, float]], segs: list[Any], options: dict[str, Any]) -> list[Any]:
        """Decode what a batched clip's text left out: the speech after its last word.

        A clip decoded without timestamp tokens is one segment, and the decoder may end it early:
        after a change of voice, Whisper often predicts the end of the text although speech
        follows (tiny.en dropped whole turns of a two-voice dialogue that way). The sequential
        decoder cannot lose speech like this, as its timestamp tokens move it past what it has
        read. So when VAD finds at least `TAIL_SPEECH_S` of speech after the clip's last word,
        that tail is decoded again by the sequential decoder. It is not prompted with the clip's
        text: on the dialogue that showed the fault, that prompt made tiny.en add a "Thank you
        very much." in the tail's trailing silence. A clip judged silent (no segments) is left
        as it is."""
        words = [w for seg in segs for w in seg.words or []]
        if not words:
            return segs
        tail = uncovered_speech(regions, clip, max(w.end for w in words))
        if tail is None:
            return segs
        start, end = tail
        log.debug("clip %.1f–%.1f s: text ends early; decoding %.1f–%.1f s again", *clip, start, end)
        piece = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        redo, _ = model.transcribe(
            piece,
            **self._fw_kwargs(options, list(options["temperatures"])),
            vad_filter=False,
            condition_on_previous_text=True,
        )
        return segs + [_shift(seg, start) for seg in redo]


TAIL_SPEECH_S = 1.5  # VAD speech after a clip's last word (beyond its padding) that means text is missing


def merge_regions(regions: list[tuple[float, float]], chunk_size: float) -> list[tuple[float, float]]:
    """VAD speech regions merged into clips of at most chunk_size seconds (start, end in s); the
    silence between merged regions stays inside the clip, as in WhisperX."""
    clips: list[list[int]] = []
    limit = int(chunk_size * SAMPLE_RATE)
    for start_s, end_s in regions:
        start, end = int(round(start_s * SAMPLE_RATE)), int(round(end_s * SAMPLE_RATE))
        if clips and end - clips[-1][0] <= limit:
            clips[-1][1] = end
        else:
            clips.append([start, min(end, start + limit)])
    return [(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in clips]


def uncovered_speech(regions: list[tuple[float, float]], clip: tuple[float, float],
                     last_word_end: float) -> tuple[float, float] | None:
    """(start, end) of the part of `clip` after `last_word_end` that needs decoding again, when VAD
    finds at least TAIL_SPEECH_S of speech there (its regions carry SPEECH_PAD_MS of padding at
    each end, which is not counted); None when the text reaches the clip's speech."""
    begin, end = clip
    pad = SPEECH_PAD_MS / 1000
    after = [(max(s, last_word_end), min(e, end)) for s, e in regions if e > last_word_end and s < end]
    speech = sum(max(0.0, b - a - pad) for a, b in after)
    if speech < TAIL_SPEECH_S:
        return None
    return max(begin, after[0][0]), end


def plan_lanes(n: int, batch_size: int) -> list[list[int]]:
    """Split clips 0..n-1 into contiguous lanes decoded side by side, one clip per lane per batch.

    At most `batch_size` lanes and at least MIN_LANE_CLIPS clips per lane, so that most clips
    follow a clip of their own lane and can be given its text as context (short files on a few
    CPU cores gain little from wide batches anyway; long files on a GPU still fill every batch)."""
    if n == 0:
        return []
    count = max(1, min(batch_size, n // MIN_LANE_CLIPS))
    size, extra = divmod(n, count)
    lanes, start = [], 0
    for r in range(count):
        length = size + (1 if r < extra else 0)
        lanes.append(list(range(start, start + length)))
        start += length
    return lanes


MIN_LANE_CLIPS = 3
CONTEXT_TOKENS = 96  # tokens of the previous clip's text given as prompt (Whisper allows up to 223)
CONTEXT_MAX_TEMPERATURE = 0.5  # as Whisper's prompt_reset_on_temperature: hot fallbacks give no context


def clip_features(model: Any, audio: np.ndarray, clip: tuple[float, float]) -> np.ndarray:
    """Log-mel features of one clip, padded to 30 s."""
    from faster_whisper.audio import pad_or_trim

    s, e = clip
    return pad_or_trim(model.feature_extractor(audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)])[..., :-1])


class _ClipDecoder:
    """Decodes clips with a per-clip prompt (user prompt + the previous clip's text).

    BatchedInferencePipeline gives every clip the same prompt; here each clip gets its own.
    CTranslate2 needs the start-of-transcript token at the same position across a batch, so the
    contexts of one batch are cut to a common length, and clips without context go in a batch of
    their own. With ``cache_encoder`` (the CPU path, one clip per call) every clip is encoded once
    (`encode`) and its encoder output is reused for the second decode of a lane start and for word
    alignment, which is then done separately (`align`) once the clip's text is final."""

    def __init__(self, model: Any, audio: np.ndarray, clips: list[tuple[float, float]], options: dict[str, Any],
                 *, cache_encoder: bool = False):
        import inspect

        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model, self.audio, self.clips, self.options = model, audio, clips, options
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                                   task=options["task"], language=options["language"])
        self.suppress = get_suppressed_tokens(self.tokenizer, list(options["suppress_tokens"]))
        prompt = options.get("initial_prompt")
        self.user_prompt = self.tokenizer.encode(" " + prompt.strip()) if prompt else []
        self.temperature = float(options["temperatures"][0])
        defaults = inspect.signature(WhisperModel.transcribe).parameters
        self.prepend = defaults["prepend_punctuations"].default
        self.append = defaults["append_punctuations"].default
        self.cache_encoder = cache_encoder
        self._encoded: dict[int, Any] = {}  # clip → encoder output (cache_encoder only)
        self._pieces: dict[int, dict[str, Any]] = {}  # clip → last decoded piece, for `align`

    def context(self, results: dict[int, list[Any]], index: int) -> list[int] | None:
        """Text tokens of the nearest decoded clip before `index` that produced usable text."""
        cr_thr = self.options["compression_ratio_threshold"]
        for j in range(index - 1, -1, -1):
            segs = results.get(j)
            if segs is None:
                continue
            if not segs:
                continue  # silent clip: look further back, as Whisper keeps its older context
            if any((s.temperature or 0.0) > CONTEXT_MAX_TEMPERATURE for s in segs):
                return None
            text = " ".join(s.text.strip() for s in segs).strip()
            if not text or (cr_thr is not None and compression_ratio(text) > cr_thr):
                return None  # a repetition loop must not be fed forward
            return self.tokenizer.encode(" " + text)[-CONTEXT_TOKENS:]
        return None

    # ------------------------------------------------------------ features and encoder
    def features(self, i: int) -> np.ndarray:
        return clip_features(self.model, self.audio, self.clips[i])

    def encode(self, i: int) -> Any:
        """Encoder output of clip `i` alone (computed once with cache_encoder)."""
        out = self._encoded.get(i)
        if out is None:
            out = self.model.encode(self.features(i)[None])
            if self.cache_encoder:
                self._encoded[i] = out
        return out

    def release(self, i: int) -> None:
        """Forget clip `i`'s encoder output and piece (it is final and aligned)."""
        self._encoded.pop(i, None)
        self._pieces.pop(i, None)

    # ------------------------------------------------------------ decoding
    def decode(self, indices: list[int], contexts: list[list[int] | None]) -> list[Any]:
        out: list[Any] = [None] * len(indices)
        with_ctx = [k for k, c in enumerate(contexts) if c]
        without = [k for k, c in enumerate(contexts) if not c]
        for group in (without, with_ctx):
            if not group:
                continue
            keep = min(len(contexts[k] or []) for k in group)
            prompts = []
            for k in group:
                ctx = (contexts[k] or [])[-keep:] if keep else []
                prompts.append(self.model.get_prompt(self.tokenizer, self.user_prompt + ctx, without_timestamps=True))
            for k, seg in zip(group, self._decode_batch([indices[k] for k in group], prompts)):
                out[k] = seg
        return out

    def _decode_batch(self, indices: list[int], prompts: list[list[int]]) -> list[Any]:
        model, tok = self.model, self.tokenizer
        fps = model.frames_per_second
        if self.cache_encoder and len(indices) == 1:
            feats = None
            encoder_output = self.encode(indices[0])
        else:
            feats = [self.features(i) for i in indices]
            encoder_output = model.encode(np.stack(feats))
        opts = self.options
        kwargs: dict[str, Any] = dict(
            max_length=model.max_length, suppress_blank=True, suppress_tokens=self.suppress,
            return_scores=True, return_no_speech_prob=True, length_penalty=opts["length_penalty"],
        )
        if self.temperature > 0:
            kwargs.update(beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=self.temperature)
        else:
            kwargs.update(beam_size=opts["beam_size"], patience=opts["patience"])
        results = model.model.generate(encoder_output, prompts, **kwargs)
        pieces = []
        for i, res in zip(indices, results):
            tokens = [t for t in res.sequences_ids[0] if t < tok.eot]
            n_tok = len(res.sequences_ids[0])
            avg_logprob = res.scores[0] * (n_tok ** opts["length_penalty"]) / (n_tok + 1)
            s, e = self.clips[i]
            pieces.append({"tokens": tokens, "seek": int(round(s * fps)), "start": s, "end": e,
                           "avg_logprob": avg_logprob, "no_speech_prob": res.no_speech_prob})
        if opts["word_timestamps"] and not self.cache_encoder:
            sizes = [self._num_frames(i) for i in indices]
            if all(p["tokens"] for p in pieces):
                model.add_word_timestamps([[p] for p in pieces], tok, encoder_output, sizes,
                                          self.prepend, self.append, 0.0)
            else:  # the aligner needs text in every clip of its batch: align the others alone
                assert feats is not None  # encoder output is only cached (feats None) with cache_encoder
                for k, p in enumerate(pieces):
                    if p["tokens"]:
                        model.add_word_timestamps([[p]], tok, model.encode(feats[k][None]), [sizes[k]],
                                                  self.prepend, self.append, 0.0)
        return [self._segment(i, p) for i, p in zip(indices, pieces)]

    def _num_frames(self, i: int) -> int:
        s, e = self.clips[i]
        return int(np.ceil(e - s) * self.model.frames_per_second)

    def _segment(self, i: int, p: dict[str, Any]) -> Any:
        from faster_whisper.transcribe import Segment, Word

        if not p["tokens"]:
            return None
        text = self.tokenizer.decode(p["tokens"])
        if self.cache_encoder:
            self._pieces[i] = p  # aligned later, once this clip's text is final
        words = [Word(**w) for w in p["words"]] if "words" in p else None
        return Segment(
            id=i + 1, seek=p["seek"], start=round(p["start"], 3), end=round(p["end"], 3), text=text,
            tokens=p["tokens"], avg_logprob=p["avg_logprob"], compression_ratio=compression_ratio(text),
            no_speech_prob=p["no_speech_prob"], words=words, temperature=self.temperature,
        )

    def align(self, i: int, seg: Any) -> None:
        """Word timings for clip `i`'s final decoded segment, from its cached encoder output (as
        faster-whisper's word_timestamps: cross-attention + DTW), with the segment's start/end
        moved to its first/last word as faster-whisper does."""
        from faster_whisper.transcribe import Word

        p = self._pieces[i]
        self.model.add_word_timestamps([[p]], self.tokenizer, self.encode(i), [self._num_frames(i)],
                                       self.prepend, self.append, 0.0)
        seg.words = [Word(**w) for w in p["words"]]
        seg.start, seg.end = round(p["start"], 3), round(p["end"], 3)


class _LaneRun:
    """The CPU decoding path: the lanes of `plan_lanes` decoded side by side by `workers` threads,
    each CTranslate2 call taking one clip on its own model replica (one core each). On CPU,
    putting several clips in one ``generate`` call is no faster than decoding them one after the
    other (beam search there is bound by memory traffic, not arithmetic), and one intra-op thread
    per call wastes less than two; so the cores work on different clips instead.

    Work items, taken by whichever worker is free, by priority:

    1. the next first-pass decode of a lane whose clip is encoded (context: the text of the clip
       before it in the lane; the first clip of a lane has none);
    2. the second decode of a lane start once the previous lane is done (context: the text of
       the clip before it), as in the batched path;
    3. encoding the clip an idle lane waits for;
    4. word alignment of a clip whose text is final (from its cached encoder output);
    5. encoding the next clips of a busy lane (at most two ahead, to bound memory).

    Every clip is encoded once. The result does not depend on timing: a context only ever comes
    from clips of the same lane (first pass) or of the previous, finished lane (second decode)."""

    LOOKAHEAD = 2

    def __init__(self, transcriber: WhisperTranscriber, model: Any, audio: np.ndarray,
                 clips: list[tuple[float, float]], regions: list[tuple[float, float]], options: dict[str, Any],
                 control: JobControl, workers: int):
        self.tr, self.model, self.audio, self.clips, self.regions = transcriber, model, audio, clips, regions
        self.options, self.control = options, control
        self.align_words = bool(options["word_timestamps"])
        self.decoder = _ClipDecoder(model, audio, clips, options, cache_encoder=True)
        self.lanes = plan_lanes(len(clips), min(transcriber.batch_size, workers))
        self.workers = max(1, min(workers, len(clips)))
        self.pos = [0] * len(self.lanes)  # first-pass decodes started, per lane
        self.busy = [False] * len(self.lanes)  # a first-pass decode of the lane is running
        self.redo = {lane[0]: k for k, lane in enumerate(self.lanes) if k > 0}  # lane start → its lane
        self.encoded: set[int] = set()
        self.encoding: set[int] = set()
        self.first_pass: dict[int, list[Any]] = {}  # judged segments of the first decode
        self.results: dict[int, list[Any]] = {}  # final judged segments
        self.to_align: list[int] = []
        self.aligning = 0
        self.done_seconds = 0.0
        self.total_seconds = sum(e - s for s, e in clips) or 1.0
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    # ------------------------------------------------------------ scheduling (under self.cond)
    def _lane_done(self, k: int) -> bool:
        return self.pos[k] == len(self.lanes[k]) and not self.busy[k]

    def _next(self) -> tuple[Any, ...] | None:
        lanes = self.lanes
        for k, lane in enumerate(lanes):  # 1
            if not self.busy[k] and self.pos[k] < len(lane) and lane[self.pos[k]] in self.encoded:
                return ("decode", k, self.pos[k])
        for s, k in self.redo.items():  # 2
            if s in self.first_pass and self._lane_done(k - 1):
                return ("redo", s, k)
        for k, lane in enumerate(lanes):  # 3
            if not self.busy[k] and self.pos[k] < len(lane):
                i = lane[self.pos[k]]
                if i not in self.encoded and i not in self.encoding:
                    return ("encode", i)
        if self.to_align:  # 4
            return ("align", self.to_align[0])
        for k, lane in enumerate(lanes):  # 5
            for i in lane[self.pos[k]: self.pos[k] + self.LOOKAHEAD]:
                if i not in self.encoded and i not in self.encoding:
                    return ("encode", i)
        return None

    def _take(self) -> tuple[Any, ...] | None:
        """Wait for a work item; None once all work is done or a worker failed."""
        with self.cond:
            while True:
                if self.error is not None:
                    return None
                if len(self.results) == len(self.clips) and not self.to_align and not self.aligning:
                    return None
                item = self._next()
                if item is not None:
                    if item[0] == "decode":
                        self.busy[item[1]] = True
                        self.pos[item[1]] += 1
                    elif item[0] == "redo":
                        del self.redo[item[1]]
                    elif item[0] == "encode":
                        self.encoding.add(item[1])
                    else:
                        self.to_align.pop(0)
                        self.aligning += 1
                    return item
                self.cond.wait()

    def _finalise(self, i: int, segs: list[Any]) -> None:
        """(under self.cond) clip i's segments are final: queue its word alignment."""
        self.results[i] = segs
        if self.align_words and any(s.words is None for s in segs):
            self.to_align.append(i)  # decoded here (fallback segments come with their words)
        else:
            self.decoder.release(i)

    # ------------------------------------------------------------ work
    def _decode(self, i: int, context: list[int] | None) -> list[Any]:
        seg = self.decoder.decode([i], [context])[0]
        s, e = self.clips[i]
        self.control.check_cancelled()
        return self.tr._judge_clip(self.model, self.audio, s, e, [seg] if seg else [], self.options, self.control)

    def _run(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "encode":
            self.decoder.encode(item[1])
            with self.cond:
                self.encoding.discard(item[1])
                self.encoded.add(item[1])
        elif kind == "decode":
            k, p = item[1], item[2]
            lane = self.lanes[k]
            i = lane[p]
            with self.cond:
                context = self.decoder.context({j: self.first_pass[j] for j in lane[:p]}, i) if p else None
            segs = self._decode(i, context)
            s, e = self.clips[i]
            with self.cond:
                self.first_pass[i] = segs
                self.busy[k] = False
                if not (p == 0 and k > 0):  # a lane start is decoded again (2.)
                    self._finalise(i, segs)
                self.done_seconds += e - s
                self.control.set_progress(2 + 97 * self.done_seconds / self.total_seconds)
        elif kind == "redo":
            s, k = item[1], item[2]
            prev = self.lanes[k - 1]
            with self.cond:  # the previous lane's own start may be in its second decode: use its first
                context = self.decoder.context(
                    {j: self.first_pass[j] if j == prev[0] else self.results[j] for j in prev}, s)
            # without a context the second decode would repeat the first one exactly
            segs = self._decode(s, context) if context else self.first_pass[s]
            with self.cond:
                self._finalise(s, segs)
        else:  # align, then decode what the clip's text left out
            i = item[1]
            for seg in self.results[i]:
                if seg.words is None:
                    self.decoder.align(i, seg)
            self.decoder.release(i)
            segs = self.tr._complete_clip(self.model, self.audio, self.clips[i], self.regions, self.results[i],
                                          self.options)
            with self.cond:
                self.results[i] = segs
                self.aligning -= 1

    def _worker(self) -> None:
        try:
            while True:
                item = self._take()
                if item is None:
                    return
                self.control.check_cancelled()
                self._run(item)
                with self.cond:
                    self.cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 — re-raised by run() in the calling thread
            with self.cond:
                if self.error is None:
                    self.error = exc
                self.cond.notify_all()

    def run(self) -> list[Any]:
        threads = [threading.Thread(target=self._worker, name=f"wisp-decode-{n + 1}", daemon=True)
                   for n in range(self.workers - 1)]
        for t in threads:
            t.start()
        self._worker()
        for t in threads:
            t.join()
        if self.error is not None:
            raise self.error
        return [seg for i in range(len(self.clips)) for seg in self.results.get(i, [])]


TRANSCRIPTION_SHARE = 0.8  # of a diarized job's progress; finding the speakers is the rest


class _Beside:
    """Runs `work` in a thread beside the caller's: ``with _Beside(work, control, name) as job``,
    then ``job.result()`` waits for it and returns its result or raises its error. If the block
    fails, `control` is cancelled and the thread waited for before the error goes on."""

    def __init__(self, work: Callable[[], Any], control: JobControl, name: str) -> None:
        self.work, self.control = work, control
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.value = self.work()
        except BaseException as exc:  # noqa: BLE001 — re-raised by result() in the calling thread
            self.error = exc

    def __enter__(self) -> "_Beside":
        self.thread.start()
        return self

    def result(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is not None:
            self.control.cancel("the transcription stopped")
            self.thread.join()


def _shift(seg: Any, offset: float) -> Any:
    seg.start = round(seg.start + offset, 3)
    seg.end = round(seg.end + offset, 3)
    if seg.words:
        for w in seg.words:
            w.start = round(w.start + offset, 3)
            w.end = round(w.end + offset, 3)
    return seg


# ------------------------------------------------------------------ result shaping

def build_transcript(segments: list[Any], language: str, alignment: AlignmentSettings | None,
                     turns: Sequence[SpeakerTurn] | None = None) -> Transcript:
    """The §10 result object from decoded segments: with alignment, cut into sentences by word
    timings; with speaker turns (diarization), every word and segment labelled with its speaker
    and segments cut where the speaker changes (by word timings, which are then dropped again
    when the job did not ask for alignment); a segment that ends on an abbreviation ("Dr.") is
    joined with the next one; times in playing order (`render.order_timings`)."""
    out_segments: list[dict[str, Any]] = []
    for group in _join_after_abbreviations([s for s in sorted(segments, key=lambda s: s.start) if s.text.strip()]):
        item: dict[str, Any] = {"start": round(group[0].start, 3), "end": round(group[-1].end, 3),
                                "text": " ".join(seg.text.strip() for seg in group)}
        words = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3), "score": round(w.probability, 3)}
            for seg in group for w in (seg.words or [])
        ]
        if alignment is not None:
            interpolate_words(words, alignment.interpolate_method)
            parts = split_sentences(words) if words else [[]]
        elif turns is not None and words:
            parts = [words]
        else:
            out_segments.append(item)
            continue
        if turns is not None:
            label_words(words, turns)
            parts = [run for part in parts for run in (split_at_speaker_changes(part) if part else [part])]
        for part in parts:
            piece = dict(item)
            if part:
                timed = [w for w in part if "start" in w]
                if timed:
                    piece["start"], piece["end"] = timed[0]["start"], timed[-1]["end"]
                piece["text"] = "".join(w["word"] for w in part).strip()
            piece["words"] = part
            out_segments.append(piece)
    if turns is not None:
        label_segments(out_segments, turns)
    result: Transcript = {"language": language, "segments": out_segments}
    order_timings(result)  # before chars and word_segments, which copy the final word spans
    if alignment is not None:
        if alignment.return_char_alignments:
            for piece in out_segments:
                piece["chars"] = char_alignments(piece["words"])
        result["word_segments"] = [dict(w) for s in out_segments for w in s["words"]]
    else:
        for piece in out_segments:
            piece.pop("words", None)  # only there to find where the speaker changes
    return result


def _join_after_abbreviations(segments: list[Any]) -> list[list[Any]]:
    """Group decoded segments so that none ends on an abbreviation that does not end a sentence."""
    groups: list[list[Any]] = []
    for seg in segments:
        if groups:
            before = groups[-1][-1].text.split()
            if before and before[-1].endswith(".") and not ends_sentence(
                before[-1], seg.text.split()[0], before[-2] if len(before) > 1 else None
            ):
                groups[-1].append(seg)
                continue
        groups.append([seg])
    return groups


def split_sentences(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Batched clips are decoded as one segment of up to chunk_size seconds; with word timings we
    can cut them into sentences with exact times (as WhisperX does after alignment), but not
    after an abbreviation (`ends_sentence`)."""
    parts: list[list[dict[str, Any]]] = [[]]
    for i, w in enumerate(words):
        parts[-1].append(w)
        following = words[i + 1]["word"] if i + 1 < len(words) else None
        previous = words[i - 1]["word"] if i else None
        if ends_sentence(w["word"], following, previous) and following is not None:
            parts.append([])
    return [p for p in parts if p]


def interpolate_words(words: list[dict[str, Any]], method: str) -> None:
    """Fill timings of words without a usable span (zero duration), like WhisperX's
    ``interpolate_method``: nearest neighbour, linear by word index, or drop the timing."""
    aligned = [i for i, w in enumerate(words) if w["end"] > w["start"]]
    missing = [i for i, w in enumerate(words) if w["end"] <= w["start"]]
    if not missing:
        return
    if method == "ignore" or not aligned:
        for i in missing:
            words[i].pop("start", None)
            words[i].pop("end", None)
        return
    for key in ("start", "end"):
        xs = np.array(aligned, dtype=float)
        ys = np.array([words[i][key] for i in aligned], dtype=float)
        for i in missing:
            if method == "linear":
                value = float(np.interp(i, xs, ys))  # clamps at the edges
            else:  # nearest; ties go to the earlier word
                value = float(ys[int(np.argmin(np.abs(xs - i)))])
            words[i][key] = round(value, 3)
    for i in missing:  # keep start <= end after filling the columns independently
        if words[i]["end"] < words[i]["start"]:
            words[i]["start"], words[i]["end"] = words[i]["end"], words[i]["start"]


def char_alignments(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-character timings approximated by spreading each word's span evenly over its letters
    (faster-whisper has no CTC alignment); spaces between words carry no timing, as in WhisperX."""
    chars: list[dict[str, Any]] = []
    for n, w in enumerate(words):
        core = w["word"].strip()
        if n:
            chars.append({"char": " "})
        if "start" not in w or not core:
            chars.extend({"char": c} for c in core)
            continue
        step = (w["end"] - w["start"]) / len(core)
        for k, c in enumerate(core):
            chars.append({
                "char": c,
                "start": round(w["start"] + k * step, 3),
                "end": round(w["start"] + (k + 1) * step, 3),
                "score": w["score"],
            })
    return chars
