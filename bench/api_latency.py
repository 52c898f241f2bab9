"""Cold-start and request latency of the API (issue: foundation §7).

Prints
* the median time to ``import app`` in a fresh process over several runs, next to a baseline in
  the same run: importing a bare Chalice app (what the framework alone costs);
* the p50 in-process latency of ``POST /api/local-account/login`` and ``GET /api/users/info``
  through Chalice's test client on moto.

Goal: import ≤ 0.4 s median. Run: ``.venv/bin/python bench/api_latency.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "eu-central-1",
    "WISP_SECRET_KEY": "ab" * 32, "WISP_TABLE_PREFIX": "wisp-bench", "WISP_BUCKET": "wisp-bench",
    "WISP_CONFIG": str(ROOT / "tests" / "config" / "test-config.yml"),
}
IMPORT_GOAL_S = 0.4


def import_seconds(statement: str, runs: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, check=True,
                             capture_output=True, text=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def request_latencies(runs: int) -> dict[str, float]:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    from moto import mock_aws

    with mock_aws():
        from chalice.test import Client

        from app import app
        from chalicelib import bootstrap
        from chalicelib.services import accounts
        from chalicelib.settings import get_settings
        from wisp_local import devserver

        devserver.install()
        bootstrap.ensure_all(get_settings())
        accounts.provision_users()
        form = b"username=provisioned-admin@example.org&password=Provisioned-Admin-1!"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        results: dict[str, list[float]] = {"login": [], "users/info": []}
        with Client(app) as client:
            cookie = ""
            for _ in range(max(5, runs // 10)):
                t = time.perf_counter()
                r = client.http.post("/api/local-account/login", headers=headers, body=form)
                results["login"].append(time.perf_counter() - t)
                assert r.status_code == 200, r.body
                cookie = r.headers["Set-Cookie"].split(";")[0]
            for _ in range(runs):
                t = time.perf_counter()
                r = client.http.get("/api/users/info", headers={"Cookie": cookie})
                results["users/info"].append(time.perf_counter() - t)
                assert r.status_code == 200, r.body
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes for the import figure")
    parser.add_argument("--requests", type=int, default=200, help="users/info requests (login: a tenth)")
    args = parser.parse_args()

    baseline = import_seconds("from chalice import Chalice; Chalice(app_name='bare')", args.runs)
    wisp = import_seconds("import app", args.runs)
    latency = request_latencies(args.requests)
    print(f"{'figure':<38}{'value':>10}   goal / baseline")
    print(f"{'import app (median of %d)' % args.runs:<38}{wisp:>9.3f}s   goal ≤ {IMPORT_GOAL_S:.1f}s: "
          f"{'met' if wisp <= IMPORT_GOAL_S else 'NOT met'}")
    print(f"{'import bare Chalice app (baseline)':<38}{baseline:>9.3f}s   Wisp adds {wisp - baseline:.3f}s")
    print(f"{'login p50 (in-process, argon2id)':<38}{latency['login'] * 1000:>8.1f}ms")
    print(f"{'users/info p50 (in-process)':<38}{latency['users/info'] * 1000:>8.1f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
