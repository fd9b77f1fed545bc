"""Start-up: ``emberwatch --help``, ``score`` on empty input and ``sources parse``, whole process.

Each command runs ``--runs`` times (default 10), interleaved with the baselines so that a
change in the machine's load touches all alike, after one warm-up run of each. The warm-up
fills the page cache and writes bytecode, as installing the package does: the children run
without ``PYTHONDONTWRITEBYTECODE``, so a shell that sets it is not measured compiling every
module on every run. The figures are medians of each process's wall time and of its CPU
time (user + system, from ``os.wait4``). The baseline is a plain script that imports VADER
and builds its analyzer, the least a sentiment scorer in Python starts with, and beside it
the interpreter alone (``python -c pass``). Issue 18 asks each command to finish in under
0.25 s (median wall time, on a quiet machine).

    python bench/startup.py [--runs 10] [--emberwatch .venv/bin/emberwatch] [--json FILE]

Run it with ``PYTHONPATH=SRC`` to time another source tree's ``emberwatch``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = ROOT / "tests" / "fixtures" / "hackernews" / "search_by_date.json"
TARGET_S = 0.25
PLAIN_VADER = (
    "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer\n"
    "SentimentIntensityAnalyzer()\n"
)


def run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process, its input empty and its output thrown away."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON here")
    parser.add_argument("--runs", type=int, default=10, help="counted runs of each command")
    parser.add_argument("--emberwatch", default=str(Path(sys.executable).parent / "emberwatch"))
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    ours = {
        "emberwatch --help": [args.emberwatch, "--help"],
        "emberwatch score </dev/null": [args.emberwatch, "score"],
        "emberwatch sources parse hackernews FILE": [
            args.emberwatch,
            "sources",
            "parse",
            "hackernews",
            str(BODY),
        ],
    }
    baselines = {
        "plain VADER": [sys.executable, "-c", PLAIN_VADER],
        "python alone": [sys.executable, "-c", "pass"],
    }
    commands = {**ours, **baselines}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for command in commands.values():  # the warm-up
        run(command)
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(run(command))
    wall = {n: statistics.median(w for w, _ in found) for n, found in times.items()}
    cpu = {n: statistics.median(c for _, c in found) for n, found in times.items()}
    for name in commands:
        print(f"{name:<42} wall {wall[name]:6.3f} s   CPU {cpu[name]:6.3f} s   (median of {runs})")
    # Only now: _common imports SQLAlchemy, which would make each fork of this process
    # heavier while the commands are timed.
    from _common import Row, finish, verdict

    base = (
        f"plain VADER {wall['plain VADER']:.3f} s (CPU {cpu['plain VADER']:.3f}); "
        f"python alone {wall['python alone']:.3f} s; target < {TARGET_S} s"
    )
    rows = [
        Row(
            "startup",
            f"{name}, wall (CPU), median of {runs}",
            f"{wall[name]:.3f} s ({cpu[name]:.3f})",
            base,
            verdict(wall[name] < TARGET_S),
        )
        for name in ours
    ]
    finish(rows, args, "Start-up, whole process")


if __name__ == "__main__":
    main()
