"""Wisp's identity as reported by /api/about."""
from __future__ import annotations

import os

VERSION = "0.6.0"  # the Project-W API version Wisp implements; Wisp's own releases follow it
DESCRIPTION = (
    "Wisp is a serverless speech-to-text platform on AWS that transcribes audio and video with "
    "Whisper and speaks the Project-W API."
)
SOURCE_CODE = "https://github.com/wisp-stt/wisp"  # the runner reports the same URL


def git_hash() -> str:
    """Commit the backend was built from (set at deploy time; 'unknown' in a plain checkout)."""
    return os.environ.get("WISP_GIT_HASH", "unknown")
