"""Test set-up, in the order the design needs (STYLE §4.12):

1. fake AWS credentials and every Wisp environment variable, before anything imports chalicelib;
2. moto around every test; 3. tables, bucket and sender identity; 4. only then the app.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-central-1",
    WISP_TABLE_PREFIX="wisp-test",
    WISP_BUCKET="wisp-test-bucket",
    WISP_CONFIG=str(ROOT / "tests" / "config" / "test-config.yml"),
    WISP_SECRET_KEY="0123456789abcdef" * 4,
)
os.environ.pop("WISP_AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


from wisp_local import devserver  # noqa: E402

devserver.install()

from tests.support import *  # noqa: E402,F401,F403  (shared fixtures and helpers)
