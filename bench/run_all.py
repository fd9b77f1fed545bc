"""Run every benchmark, each in its own process, and print one combined table.

Run ``python bench/run_all.py [--quick | --full]`` (``make bench`` runs it plainly). Each
bench prints its own details as it goes; the table at the end gathers their figures, with
the baseline or target beside each and whether the target was met. Targets are
informational: the exit status is non-zero only when a bench itself fails to run.

Plainly, ingest runs 20,000 mentions per backend and console 5 rounds a page, so that the
whole run takes about 12 minutes on 2 loaded cores (fanout alone about 4); ``--full``
runs every bench at its own default (ingest: 100,000, about half an hour on 2 cores,
because incident grouping slows as alerts accumulate).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, arguments, machine, print_table

HERE = Path(__file__).resolve().parent
BENCHES = (
    "ingest.py",
    "fanout.py",
    "latency.py",
    "console.py",
    "replay.py",
    "score_cli.py",
    "startup.py",
)
PLAIN = {
    "ingest.py": ["-n", "20000"],
    "console.py": ["--rounds", "5"],
    "score_cli.py": ["-n", "20000", "--rounds", "3"],
}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every bench at its own default")
    args = parser.parse_args()
    rows: list[Row] = []
    broken: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emberwatch-bench-") as folder:
        for name in BENCHES:
            out = Path(folder) / f"{name}.json"
            command = [sys.executable, str(HERE / name), "--json", str(out)]
            if args.quick:
                command.append("--quick")
            elif not args.full:
                command += PLAIN.get(name, [])
            print(f"== {' '.join([name, *command[4:]])}", flush=True)
            bench_started = time.monotonic()
            code = subprocess.run(command, check=False).returncode
            print(f"   ({time.monotonic() - bench_started:.0f} s)\n", flush=True)
            if code != 0 or not out.exists():
                broken.append(name)
                rows.append(Row(name.removesuffix(".py"), "did not finish", f"exit {code}"))
                continue
            rows += [Row(**row) for row in json.loads(out.read_text())]
    print(f"machine: {machine()}; all benches took {time.monotonic() - started:.0f} s")
    print_table(rows, "Emberwatch benchmarks (targets are informational)")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows]), encoding="utf-8")
    if broken:
        sys.exit(f"failed to run: {', '.join(broken)}")


if __name__ == "__main__":
    main()
