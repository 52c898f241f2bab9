"""Job and job-settings API models (spec §3.5, §4), named as upstream's ``project_W_lib`` models."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from .common import RequestModel


class TaskEnum(str, Enum):
    transcribe = "transcribe"
    translate = "translate"  # type: ignore[assignment]  # the API's value; shadows str.translate


class JobModelEnum(str, Enum):
    tiny = "tiny"
    tiny_en = "tiny.en"
    base = "base"
    base_en = "base.en"
    small = "small"
    small_en = "small.en"
    medium = "medium"
    medium_en = "medium.en"
    turbo = "turbo"
    large = "large"


LANGUAGE_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi "
    "hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn "
    "no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi "
    "yi yo yue zh"
).split()

ALIGNMENT_LANGUAGES = frozenset(
    "en fr de es it ja zh nl uk pt ar cs ru pl hu fi fa el tr da he vi ko ur te hi ca ml no nn sk sl "
    "hr ro eu gl ka lv tl sv".split()
)

ENGLISH_ONLY_MODELS = frozenset({"tiny.en", "base.en", "small.en", "medium.en"})

JobLangEnum = Enum("JobLangEnum", {code: code for code in LANGUAGE_CODES}, type=str)  # type: ignore[misc]


class InterpolateMethodEnum(str, Enum):
    nearest = "nearest"
    linear = "linear"
    ignore = "ignore"


class JobStatus(str, Enum):
    """Derived status of a job (spec §5.2)."""

    not_queued = "not_queued"
    pending_runner = "pending_runner"
    runner_assigned = "runner_assigned"
    runner_in_progress = "runner_in_progress"
    aborting = "aborting"
    success = "success"
    failed = "failed"
    downloaded = "downloaded"


class JobSortKey(str, Enum):
    creation_time = "creation_time"
    filename = "filename"


class TranscriptTypeEnum(str, Enum):
    as_txt = "as_txt"
    as_srt = "as_srt"
    as_tsv = "as_tsv"
    as_vtt = "as_vtt"
    as_json = "as_json"


# ------------------------------------------------------------------------------------------
# Settings (spec §4). Nested objects have no per-field defaults: sent objects need every key.
# ------------------------------------------------------------------------------------------


class AlignmentProcessingSettings(BaseModel):
    highlight_words: bool
    max_line_count: Annotated[int, Field(ge=1)] | None
    max_line_width: Annotated[int, Field(ge=1)] | None

    @model_validator(mode="after")
    def _count_needs_width(self) -> "AlignmentProcessingSettings":
        if self.max_line_count is not None and self.max_line_width is None:
            raise ValueError("max_line_count requires max_line_width to be set")
        return self


class AlignmentSettings(BaseModel):
    processing: AlignmentProcessingSettings
    return_char_alignments: bool
    interpolate_method: InterpolateMethodEnum


class DiarizationSettings(BaseModel):
    min_speakers: Annotated[int, Field(ge=0)] | None
    max_speakers: Annotated[int, Field(ge=0)] | None

    @model_validator(mode="after")
    def _max_not_below_min(self) -> "DiarizationSettings":
        if self.min_speakers is not None and self.max_speakers is not None and self.max_speakers < self.min_speakers:
            raise ValueError("max_speakers must be greater than or equal to min_speakers")
        return self


class VadSettings(BaseModel):
    vad_onset: Annotated[float, Field(gt=0, lt=1)]
    vad_offset: Annotated[float, Field(gt=0, lt=1)]
    chunk_size: Annotated[int, Field(ge=1, le=30)]


class AsrSettings(BaseModel):
    beam_size: Annotated[int, Field(ge=1)]
    patience: Annotated[float, Field(gt=0)]
    length_penalty: Annotated[float, Field(ge=0, le=1)]
    temperature: Annotated[float, Field(ge=0)]
    temperature_increment_on_fallback: Annotated[float, Field(ge=0)]
    compression_ratio_threshold: Annotated[float, Field(ge=0)]
    log_prob_threshold: float
    no_speech_threshold: float
    initial_prompt: Annotated[str, Field(max_length=2000)] | None
    suppress_tokens: list[int]
    suppress_numerals: bool


def default_alignment() -> AlignmentSettings:
    return AlignmentSettings(
        processing=AlignmentProcessingSettings(highlight_words=False, max_line_count=None, max_line_width=None),
        return_char_alignments=False,
        interpolate_method=InterpolateMethodEnum.nearest,
    )


def default_vad() -> VadSettings:
    return VadSettings(vad_onset=0.5, vad_offset=0.363, chunk_size=30)


def default_asr() -> AsrSettings:
    return AsrSettings(
        beam_size=5, patience=1.0, length_penalty=1.0, temperature=0.0, temperature_increment_on_fallback=0.2,
        compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6, initial_prompt=None,
        suppress_tokens=[-1], suppress_numerals=False,
    )


class JobSettingsResponse(BaseModel):
    """Settings as stored and returned; every key always present."""

    task: TaskEnum
    model: JobModelEnum
    language: JobLangEnum | None
    alignment: AlignmentSettings | None
    diarization: DiarizationSettings | None
    vad_settings: VadSettings
    asr_settings: AsrSettings
    email_notification: bool


class JobSettingsRequest(RequestModel):
    """Settings a user submits; every top-level key optional with the application default."""

    task: TaskEnum = TaskEnum.transcribe
    model: JobModelEnum = JobModelEnum.large
    language: JobLangEnum | None = None
    alignment: AlignmentSettings | None = Field(default_factory=default_alignment)
    diarization: DiarizationSettings | None = None
    vad_settings: VadSettings = Field(default_factory=default_vad)
    asr_settings: AsrSettings = Field(default_factory=default_asr)
    email_notification: bool = False

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "JobSettingsRequest":
        language = self.language.value if self.language is not None else None
        if self.model.value in ENGLISH_ONLY_MODELS and language != "en":
            raise ValueError(f"model {self.model.value} only supports English; set language to 'en'")
        if self.task is TaskEnum.translate and self.alignment is not None:
            raise ValueError("alignment must be null when task is 'translate'")
        if self.alignment is not None and language is not None and language not in ALIGNMENT_LANGUAGES:
            raise ValueError(f"alignment is not available for language '{language}'; set alignment to null")
        if self.task is TaskEnum.translate and language == "en":
            raise ValueError("translating English audio to English is not possible; use task 'transcribe'")
        return self

    def to_response(self) -> JobSettingsResponse:
        return JobSettingsResponse.model_validate(self.model_dump())


def application_defaults() -> JobSettingsResponse:
    return JobSettingsRequest().to_response()


# ------------------------------------------------------------------------------------------
# Queries and responses
# ------------------------------------------------------------------------------------------


class SubmitSettingsQuery(BaseModel):
    is_new_default: bool = False


class SubmitJobQuery(BaseModel):
    job_settings_id: int | None = None


class Body_submit_job(BaseModel):  # noqa: N801 - upstream's generated name
    audio_file: bytes


class CountQuery(BaseModel):
    exclude_finished: bool
    exclude_downloaded: bool


class GetQuery(BaseModel):
    start_index: int
    end_index: int
    sort_key: JobSortKey
    descending: bool
    exclude_finished: bool
    exclude_downloaded: bool


# Job ids one request may name (info, abort, delete): enough for any page a frontend shows, and
# small enough that one request's work and its events stay bounded (422 beyond it).
MAX_JOB_IDS = 1000
JobIds = Annotated[list[int], Field(max_length=MAX_JOB_IDS,
                                    description=f"Job ids, at most {MAX_JOB_IDS} per request")]


class InfoQuery(BaseModel):
    job_ids: JobIds


class DownloadQuery(BaseModel):
    job_id: int
    transcript_type: TranscriptTypeEnum


class JobInfoResponse(BaseModel):
    id: int
    progress: Annotated[float, Field(ge=0, le=100)]
    abort: bool
    creation_timestamp: datetime
    file_name: str
    finish_timestamp: datetime | None
    runner_name: Annotated[str, Field(max_length=40)] | None
    runner_id: int | None
    runner_version: str | None
    runner_git_hash: Annotated[str, Field(max_length=40)] | None
    runner_source_code_url: str | None
    downloaded: bool | None
    error_msg: str | None
    settings: JobSettingsResponse
    step: JobStatus


def settings_from_stored(data: dict[str, Any] | None) -> JobSettingsResponse:
    """A stored settings snapshot (or None → application defaults) as the API model."""
    if data is None:
        return application_defaults()
    return JobSettingsResponse.model_validate(data)


# ------------------------------------------------------------------------------------------
# Wisp extensions: direct uploads and transcript URLs
# ------------------------------------------------------------------------------------------


class UploadRequest(RequestModel):
    file_name: Annotated[str, Field(min_length=1, max_length=1024)]
    # a media type as an HTTP header carries it: no control characters (CR/LF would split the header)
    content_type: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
    size: Annotated[int, Field(ge=1)]


class UploadPartUrl(BaseModel):
    part_number: int
    url: str


class UploadedPart(BaseModel):
    part_number: int
    etag: str
    size: int


class UploadResponse(BaseModel):
    upload_id: str
    key: str
    part_size: int
    parts: list[UploadPartUrl]


class UploadPartsResponse(BaseModel):
    upload_id: str
    key: str
    part_size: int
    uploaded: list[UploadedPart]
    parts: list[UploadPartUrl]  # fresh URLs for the parts not uploaded yet


class CompletedPart(BaseModel):
    part_number: Annotated[int, Field(ge=1, le=10000)]
    etag: Annotated[str, Field(min_length=1)]


class CompleteUploadRequest(RequestModel):
    parts: Annotated[list[CompletedPart], Field(min_length=1)]


class TranscriptUrlQuery(BaseModel):
    transcript_type: TranscriptTypeEnum


class UrlResponse(BaseModel):
    url: str
