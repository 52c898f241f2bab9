"""Runner protocol and admin runner models (spec §3.6, §3.7), named as upstream's models."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from .common import RequestModel
from .jobs import JobSettingsResponse


class RunnerRegisterRequest(RequestModel):
    name: Annotated[str, Field(max_length=40)]
    version: str
    git_hash: Annotated[str, Field(max_length=40)]
    source_code_url: str
    priority: Annotated[int, Field(gt=0)]


class RegisteredResponse(BaseModel):
    id: int
    session_token: str


class RunnerJobInfoResponse(BaseModel):
    id: int
    settings: JobSettingsResponse


class Transcript(BaseModel):
    as_txt: str
    as_srt: str
    as_tsv: str
    as_vtt: str
    as_json: dict[str, Any]


class RunnerSubmitResultRequest(RequestModel):
    error_msg: str | None = None
    transcript: Transcript | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "RunnerSubmitResultRequest":
        if self.error_msg is None and self.transcript is None:
            raise ValueError("either error_msg or transcript must be set")
        return self


class HeartbeatRequest(RequestModel):
    progress: Annotated[float, Field(ge=0, le=100)] = 0.0


class HeartbeatResponse(BaseModel):
    abort: bool
    job_assigned: bool


class RunnerCreatedResponse(BaseModel):
    id: int
    token: str


class SessionQuery(BaseModel):
    session_token: str


class InvalidateRunnerQuery(BaseModel):
    runner_id: int


# Wisp runner extensions


class WaitForJobQuery(BaseModel):
    session_token: str
    timeout: Annotated[float, Field(ge=0, le=25)] = 20.0


class ResultUploadResponse(BaseModel):
    url: str
    fields: dict[str, str]
    key: str


class SubmitUploadedResultRequest(RequestModel):
    key: Annotated[str, Field(min_length=1, max_length=1024)]


# Wisp admin extension


class RunnerState(str, Enum):
    offline = "offline"  # not registered, or its lease ran out
    idle = "idle"  # registered, no job
    assigned = "assigned"  # holds a job, has not fetched its audio yet
    processing = "processing"  # fetched the job's audio


class RunnerInfoResponse(BaseModel):
    """One runner in the admin's list (``GET /api/wisp/admin/runners``)."""

    id: int
    name: str | None  # name, version, git_hash, source_code_url, priority: as registered; null offline
    version: str | None
    git_hash: str | None
    source_code_url: str | None
    priority: int | None
    state: RunnerState
    job_id: int | None  # the job it holds (an offline runner holds one until the sweeper frees it)
    progress: float | None  # of that job, as last reported (0-100)
    last_heartbeat: datetime | None  # when its lease was last renewed; null once it went offline cleanly
    created_at: datetime | None
