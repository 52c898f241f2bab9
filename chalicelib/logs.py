"""Logging set-up: one line per record to stderr (CloudWatch in Lambda)."""
from __future__ import annotations

import logging
import os


def configure() -> None:
    level = os.environ.get("WISP_LOG_LEVEL", "INFO").upper()
    logger = logging.getLogger("wisp")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
