#!/usr/bin/env python3
"""Cold `import app` of the Lambda bundle as shipped, with and without its bytecode.

    .venv/bin/python bench/cold_import.py [--bundle infra/build/package/deployment.zip] [--runs 7]

Without --bundle it builds the example stage into a temporary folder first (with requirements.txt
when the package index is reachable, else --no-deps, which it says). It unpacks the bundle twice:
as built (with the __pycache__/*.pyc that infra/build.py adds) and with every .pyc removed. Each run
is a fresh interpreter started in the unpacked folder with PYTHONDONTWRITEBYTECODE=1 (Lambda's
/var/task is read-only, so nothing compiled at run time is kept) and with the site-packages of this
venv hidden only when the bundle has its dependencies (-S with the bundle first on sys.path). The
time is the import alone, measured inside the interpreter. Goal: <= 0.3 s as shipped.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


def build(out: Path) -> tuple[Path, bool]:
    env = {k: v for k, v in os.environ.items() if k not in ("WISP_CONFIG", "WISP_TABLE_PREFIX", "WISP_BUCKET")}
    base = [sys.executable, str(ROOT / "infra" / "build.py"), "--stage", "example",
            "--stage-file", str(ROOT / "infra" / "stages" / "example.yml"), "--out", str(out)]
    done = subprocess.run(base, env=env, capture_output=True, text=True)
    with_deps = done.returncode == 0
    if not with_deps:
        print("note: build with requirements.txt failed (offline?); measuring the --no-deps bundle, whose "
              "dependencies come from this venv's site-packages", file=sys.stderr)
        subprocess.run(base + ["--no-deps"], env=env, check=True, capture_output=True)
    return out / "package" / "deployment.zip", with_deps


def unpack(bundle: Path, into: Path, *, keep_pyc: bool) -> Path:
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            if keep_pyc or not info.filename.endswith(".pyc"):
                zf.extract(info, into)
    return into


def time_import(folder: Path, *, isolated: bool, runs: int) -> list[float]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", WISP_CONFIG=str(folder / "wisp-config.yml"),
               WISP_CLIENT_URL="https://wisp.example.edu/#", WISP_SENDER_EMAIL="wisp@example.edu",
               WISP_ADMIN_PASSWORD="x" * 16, WISP_SECRET_KEY="0" * 64, AWS_DEFAULT_REGION="eu-central-1")
    command = [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, '.'); {PROBE}"] if isolated \
        else [sys.executable, "-c", PROBE]
    times = []
    for _ in range(runs):
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle, with_deps = (args.bundle, True) if args.bundle else build(work / "build")
        shipped = unpack(bundle, work / "shipped", keep_pyc=True)
        bare = unpack(bundle, work / "bare", keep_pyc=False)
        for label, folder in (("without .pyc", bare), ("as shipped (.pyc)", shipped)):
            times = time_import(folder, isolated=with_deps, runs=args.runs)
            print(f"{label:>18}: median {statistics.median(times):.3f} s  "
                  f"(min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
