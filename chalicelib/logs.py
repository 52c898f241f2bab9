"""Logging set-up: one line per record to stderr (CloudWatch in Lambda)."""
from __future__ import annotations

import logging
import os


def configure() -> None:
    level = os.environ.get("WISP_LOG_LEVEL", "INFO").upper()
    logger = logging.getLogger("wisp")
    # exactly one handler: Chalice adds its own to the logger named after the app ("wisp"), which
    # would print every record twice
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
