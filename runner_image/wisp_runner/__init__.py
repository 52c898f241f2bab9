"""Wisp transcription runner: speaks the Project-W runner protocol (/api/runners/*)."""

__version__ = "0.1.0"
