#!/usr/bin/env python3
"""Gzipped size of the JavaScript the web app's first load fetches. Goal: <= 150 KB.

    .venv/bin/python bench/web_size.py [--dist web/dist] [--build]

The first load is what ``index.html`` names: its module scripts and the chunks Vite preloads with
them (``<link rel="modulepreload">``). Pages loaded on demand (their own chunks) are listed apart,
not counted. Each file is gzipped at level 9, as a CDN compresses it. --build runs
``npm run build`` in web/ first (``make web`` does the same when a source changed).
"""
from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_KB = 150.0


def gzipped_kb(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def first_load(dist: Path) -> list[Path]:
    html = (dist / "index.html").read_text(encoding="utf-8")
    names = re.findall(r'<script[^>]*type="module"[^>]*src="([^"]+)"', html)
    names += re.findall(r'<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"', html)
    return [dist / name.removeprefix("./").removeprefix("/") for name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "web" / "dist")
    parser.add_argument("--build", action="store_true", help="npm run build in web/ first")
    args = parser.parse_args()
    if args.build:
        subprocess.run(["npm", "run", "--prefix", str(ROOT / "web"), "--silent", "build"], check=True)
    if not (args.dist / "index.html").is_file():
        print(f"{args.dist}/index.html is missing: build the web app first (make web, or --build)", file=sys.stderr)
        return 2
    first = first_load(args.dist)
    total = sum(gzipped_kb(path) for path in first)
    for path in first:
        print(f"  first load  {gzipped_kb(path):8.1f} KB  {path.relative_to(args.dist)}")
    for path in sorted(set((args.dist / "assets").glob("*.js")) - set(first)):
        print(f"  on demand   {gzipped_kb(path):8.1f} KB  {path.relative_to(args.dist)}")
    verdict = "ok" if total <= GOAL_KB else "OVER THE GOAL"
    print(f"first-load JavaScript: {total:.1f} KB gzipped (goal <= {GOAL_KB:.0f} KB): {verdict}")
    return 0 if total <= GOAL_KB else 1


if __name__ == "__main__":
    sys.exit(main())
