"""Does a password-reset request take as long for an unknown address as for an existing one?

Sends 20 requests for each, alternating, in-process against moto (the mail goes through moto's
SES), and prints the spread of both. The baseline, in the same run, is the same requests with the
constant-time floor switched off: that is how far apart the two paths are by themselves.

    .venv/bin/python bench/reset_timing.py
"""
from __future__ import annotations

import statistics
import time

import _env  # noqa: F401

TRIES = 20


def measure(api: object, floor: float) -> dict[str, list[float]]:
    from chalicelib.services import throttles

    throttles.CONSTANT_ANSWER_S = floor
    times: dict[str, list[float]] = {"existing": [], "unknown": []}
    for i in range(TRIES):
        for kind, email in (("existing", f"user{i % 3}@example.org"), ("unknown", f"nobody{i}@example.org")):
            started = time.perf_counter()
            r = api.get("/api/local-account/request_password_reset", query={"email": email})  # type: ignore[attr-defined]
            times[kind].append((time.perf_counter() - started) * 1000)
            assert r.status_code in (200, 429), r.status_code
    return times


def main() -> None:
    import dataclasses

    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import bootstrap
    from chalicelib.services import throttles
    from chalicelib.settings import get_settings
    from tests import factories
    from tests.support import Api

    for name in ("RESET_PER_ADDRESS", "RESET_PER_ACCOUNT"):  # measure the paths, not the throttle
        setattr(throttles, name, dataclasses.replace(getattr(throttles, name), limit=10_000))
    floor = throttles.CONSTANT_ANSWER_S
    with mock_aws(), Client(app) as client:
        bootstrap.ensure_all(get_settings())
        for i in range(3):
            factories.make_user(f"user{i}@example.org")
        api = Api(client)
        measure(api, floor)  # warm up
        for label, setting in (("baseline, no floor", 0.0), (f"with the {floor:.2f} s floor", floor)):
            times = measure(api, setting)
            print(f"{label}:")
            for kind, values in times.items():
                print(f"  {kind:8}  median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   "
                      f"max {max(values):7.1f}")
            gap = abs(statistics.median(times["existing"]) - statistics.median(times["unknown"]))
            overlap = min(times["existing"]) <= max(times["unknown"]) and min(times["unknown"]) <= max(times["existing"])
            print(f"  gap of the medians {gap:.1f} ms; ranges overlap: {overlap}")


if __name__ == "__main__":
    main()
