"""Job settings (spec §4) as typed objects, plus the checks every transcriber shares.

The backend validates requests, but a runner must not trust that: anything it cannot honour fails
the job at once with a message the user can act on, instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .constants import ALIGNMENT_LANGUAGES, ENGLISH_ONLY_SUFFIX
from .errors import UnsupportedSettingsError

InterpolateMethod = Literal["nearest", "linear", "ignore"]


@dataclass(frozen=True)
class AlignmentProcessing:
    highlight_words: bool = False
    max_line_count: int | None = None
    max_line_width: int | None = None


@dataclass(frozen=True)
class AlignmentSettings:
    processing: AlignmentProcessing = field(default_factory=AlignmentProcessing)
    return_char_alignments: bool = False
    interpolate_method: InterpolateMethod = "nearest"


@dataclass(frozen=True)
class VadSettings:
    vad_onset: float = 0.5
    vad_offset: float = 0.363
    chunk_size: int = 30


@dataclass(frozen=True)
class AsrSettings:
    beam_size: int = 5
    patience: float = 1.0
    length_penalty: float = 1.0
    temperature: float = 0.0
    temperature_increment_on_fallback: float = 0.2
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    initial_prompt: str | None = None
    suppress_tokens: tuple[int, ...] = (-1,)
    suppress_numerals: bool = False

    def temperatures(self) -> tuple[float, ...]:
        """Temperature schedule for fallback: start, start+inc, ... up to 1.0 (inclusive).

        An increment of 0 (or a start above 1.0) means "no fallback": one temperature only.
        """
        start, inc = float(self.temperature), float(self.temperature_increment_on_fallback)
        if inc <= 0 or start >= 1.0:
            return (start,)
        temps: list[float] = []
        step = 0
        while True:
            t = round(start + step * inc, 6)  # avoid 0.6000000000000001
            if t > 1.0 + 1e-9:
                break
            temps.append(t)
            step += 1
        return tuple(temps)


@dataclass(frozen=True)
class DiarizationSettings:
    min_speakers: int | None = None
    max_speakers: int | None = None

    def bounds(self) -> tuple[int, int | None]:
        """(at least, at most) speakers: at least 1, and no upper bound for null or 0."""
        return max(1, self.min_speakers or 1), self.max_speakers or None


@dataclass(frozen=True)
class JobSettings:
    task: Literal["transcribe", "translate"] = "transcribe"
    model: str = "large"
    language: str | None = None
    alignment: AlignmentSettings | None = field(default_factory=AlignmentSettings)
    diarization: DiarizationSettings | None = None
    vad_settings: VadSettings = field(default_factory=VadSettings)
    asr_settings: AsrSettings = field(default_factory=AsrSettings)
    email_notification: bool = False

    @property
    def english_only_model(self) -> bool:
        return self.model.endswith(ENGLISH_ONLY_SUFFIX)


def _sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise UnsupportedSettingsError(f"invalid job settings: '{key}' must be an object")
    return value


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """Keep only the fields the dataclass knows (the API ignores unknown extra fields)."""
    names = set(cls.__dataclass_fields__)
    return {k: v for k, v in data.items() if k in names}


def parse_job_settings(data: dict[str, Any] | None) -> JobSettings:
    """Build JobSettings from a JobSettingsResponse dict; missing top-level keys take §4 defaults."""
    if data is None:
        return JobSettings()
    if not isinstance(data, dict):
        raise UnsupportedSettingsError("invalid job settings: expected a JSON object")
    try:
        kwargs = _known(JobSettings, data)
        if "alignment" in data and data["alignment"] is not None:
            align = _sub(data, "alignment")
            proc = AlignmentProcessing(**_known(AlignmentProcessing, align.get("processing") or {}))
            kwargs["alignment"] = AlignmentSettings(
                **{**_known(AlignmentSettings, align), "processing": proc}
            )
        if "diarization" in data and data["diarization"] is not None:
            kwargs["diarization"] = DiarizationSettings(**_known(DiarizationSettings, _sub(data, "diarization")))
        if "vad_settings" in data:
            kwargs["vad_settings"] = VadSettings(**_known(VadSettings, _sub(data, "vad_settings")))
        if "asr_settings" in data:
            asr = _known(AsrSettings, _sub(data, "asr_settings"))
            if asr.get("suppress_tokens") is not None:
                asr["suppress_tokens"] = tuple(int(t) for t in asr["suppress_tokens"])
            else:
                asr["suppress_tokens"] = ()
            kwargs["asr_settings"] = AsrSettings(**asr)
        return JobSettings(**kwargs)
    except TypeError as exc:  # wrong shapes, e.g. a list where an object belongs
        raise UnsupportedSettingsError(f"invalid job settings: {exc}") from exc


def check_common(settings: JobSettings) -> None:
    """Reject what no Wisp transcriber supports, before any audio is downloaded."""
    if settings.task not in ("transcribe", "translate"):
        raise UnsupportedSettingsError(f"unknown task '{settings.task}'")
    if settings.diarization is not None:
        check_speaker_bounds(settings.diarization)
    if settings.english_only_model and settings.language not in (None, "en"):
        raise UnsupportedSettingsError(
            f"model '{settings.model}' is English-only but language '{settings.language}' was requested"
        )
    if settings.task == "translate":
        if settings.english_only_model:
            raise UnsupportedSettingsError(f"model '{settings.model}' is English-only and cannot translate")
        if settings.alignment is not None:
            raise UnsupportedSettingsError("translation cannot be combined with word alignment")
        if settings.language == "en":
            raise UnsupportedSettingsError("translating English audio to English is not supported")
    if settings.alignment is not None and settings.language is not None:
        check_alignment_language(settings.language)
    vad = settings.vad_settings
    if not (0 < vad.vad_onset < 1 and 0 < vad.vad_offset < 1 and 1 <= vad.chunk_size <= 30):
        raise UnsupportedSettingsError("invalid VAD settings (onset/offset in (0,1), chunk_size 1..30)")
    asr = settings.asr_settings
    if asr.beam_size < 1 or asr.patience <= 0 or asr.temperature < 0:
        raise UnsupportedSettingsError("invalid ASR settings (beam_size ≥ 1, patience > 0, temperature ≥ 0)")
    proc = settings.alignment.processing if settings.alignment else None
    if proc and proc.max_line_count is not None and proc.max_line_width is None:
        raise UnsupportedSettingsError("max_line_count requires max_line_width")


def check_speaker_bounds(settings: DiarizationSettings) -> None:
    """Reject speaker bounds no clustering can meet. The API allows 0 for both; 0, like null, sets
    no bound (`DiarizationSettings.bounds`)."""
    lo, hi = settings.min_speakers, settings.max_speakers
    if (lo is not None and lo < 0) or (hi is not None and hi < 0):
        raise UnsupportedSettingsError("min_speakers and max_speakers must not be negative")
    if lo and hi and lo > hi:
        raise UnsupportedSettingsError("min_speakers must not be greater than max_speakers")


def diarization_unavailable(reason: str) -> UnsupportedSettingsError:
    """The error for a job asking for speaker labels from a runner that cannot give them."""
    return UnsupportedSettingsError(
        f"speaker diarization is not available on this runner ({reason}); resubmit with diarization disabled"
    )


def check_alignment_language(language: str) -> None:
    if language not in ALIGNMENT_LANGUAGES:
        raise UnsupportedSettingsError(
            f"word alignment is not available for language '{language}'; "
            "resubmit with alignment disabled"
        )
