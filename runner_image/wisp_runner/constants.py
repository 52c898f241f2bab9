"""Names shared across the runner: routes, env var names, fixed protocol values.

Route names of the Wisp-only extensions live here so that renaming them on the backend side is a
one-line change.
"""

from __future__ import annotations

# --- Project-W runner routes (spec §3.6), relative to <backend url> ---
RUNNERS_PREFIX = "/api/runners"
ROUTE_REGISTER = f"{RUNNERS_PREFIX}/register"
ROUTE_UNREGISTER = f"{RUNNERS_PREFIX}/unregister"
ROUTE_HEARTBEAT = f"{RUNNERS_PREFIX}/heartbeat"
ROUTE_JOB_INFO = f"{RUNNERS_PREFIX}/retrieve_job_info"
ROUTE_JOB_AUDIO = f"{RUNNERS_PREFIX}/retrieve_job_audio"
ROUTE_SUBMIT_RESULT = f"{RUNNERS_PREFIX}/submit_job_result"

# --- Wisp extensions: used only when the backend answers them (404 → fall back) ---
ROUTE_WISP_AUDIO_URL = "/api/wisp/runners/audio_url"
ROUTE_WISP_RESULT_UPLOAD = "/api/wisp/runners/result_upload"
ROUTE_WISP_SUBMIT_UPLOADED = "/api/wisp/runners/submit_uploaded_result"
ROUTE_WISP_WAIT_FOR_JOB = "/api/wisp/runners/wait_for_job"

# Long-poll (wait_for_job) hold time asked of the backend while idle; the backend caps it at 25 s
# (API Gateway ends requests after 29 s).
DEFAULT_LONG_POLL = 20.0
MAX_LONG_POLL = 25.0

SESSION_TOKEN_PARAM = "session_token"
ABORT_MESSAGE = "job was aborted"
SOURCE_CODE_URL = "https://github.com/wisp-stt/wisp"

# Results larger than this are sent through the pre-signed upload extension when available
# (API Gateway + Lambda cap request bodies at about 6 MB).
DEFAULT_INLINE_RESULT_LIMIT = 5 * 1024 * 1024

# Stock runner: heartbeats every 10 s; the backend forgets a runner 60 s after its last heartbeat.
DEFAULT_HEARTBEAT_INTERVAL = 10.0
BACKEND_RUNNER_TTL = 60.0

ENV_PREFIX = "WISP_RUNNER_"

# Languages WhisperX can align (spec §4), in the spec's order.
ALIGNMENT_LANGUAGES = frozenset(
    "en fr de es it ja zh nl uk pt ar cs ru pl hu fi fa el tr da he vi ko ur te hi ca ml no nn "
    "sk sl hr ro eu gl ka lv tl sv".split()
)
ENGLISH_ONLY_SUFFIX = ".en"
