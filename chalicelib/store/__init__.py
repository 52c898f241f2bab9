"""PynamoDB models, one table each. ``ALL_MODELS`` is the single list that bootstrap (local
stack, tests) and the deploy template generator create tables from."""
from __future__ import annotations

from pynamodb.models import Model

from .banners import Banner
from .counters import Counter
from .events import EventLog
from .job_settings import JobSettings
from .jobs import Job
from .runners import Runner
from .task_runs import TaskRun
from .throttles import Throttle
from .tokens import Token
from .users import Login, User

ALL_MODELS: list[type[Model]] = [Counter, User, Login, Token, Banner, EventLog, JobSettings, Job, Runner, TaskRun,
                                  Throttle]

