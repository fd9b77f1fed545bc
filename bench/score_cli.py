"""``emberwatch score`` as a whole process against a plain VADER script (issue 18).

Both read the same JSON lines on stdin, one short text each: the texts of
``../shared/data/sentiment/*.txt`` (tweets and review snippets, used here only as inputs to
time), repeated up to ``-n`` lines. The plain script is::

    import json, sys
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer as S
    a = S()
    [a.polarity_scores(json.loads(l)["text"]) for l in sys.stdin]

Each round runs every command once, interleaved; a command's time is the CPU time (user +
system) of its process, from ``os.wait4``, so other load on a shared machine counts less
than wall time would. The best of the rounds is kept for each time. ``throughput`` is plain
time / emberwatch time in each round, whose runs are seconds apart, and the median of the
rounds (issue 18 asks 0.7). Also reported: start-up alone (empty input) and peak RSS.

    python bench/score_cli.py -n 20000 --rounds 5 [--emberwatch .venv/bin/emberwatch]

Run it with ``PYTHONPATH=SRC`` to time another source tree's ``emberwatch``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT.parent / "shared" / "data" / "sentiment"
PLAIN = (
    "import json, sys\n"
    "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer as S\n"
    "a = S()\n"
    '[a.polarity_scores(json.loads(l)["text"]) for l in sys.stdin]\n'
)


def texts(n: int) -> list[str]:
    found = []
    for path in sorted(SENTIMENT.glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                found.append(parts[2])
    return [found[i % len(found)] for i in range(n)]


def run(command: list[str], stdin: Path) -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB) of one process reading ``stdin``."""
    # Without PYTHONDONTWRITEBYTECODE, as an installed package runs: bytecode is written
    # once, not compiled again in every process.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with stdin.open("rb") as source:
        proc = subprocess.Popen(command, stdin=source, stdout=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 texts, one round")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON here")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--emberwatch", default=str(Path(sys.executable).parent / "emberwatch"))
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds = 2_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "lines.jsonl"
        lines.write_text(
            "".join(json.dumps({"text": t}) + "\n" for t in texts(args.n)), encoding="utf-8"
        )
        empty = Path(tmp) / "empty.jsonl"
        empty.write_text("", encoding="utf-8")
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN, encoding="utf-8")
        commands = {
            "plain VADER": ([sys.executable, str(script)], lines),
            "emberwatch score": ([args.emberwatch, "score"], lines),
            "plain VADER, empty input": ([sys.executable, str(script)], empty),
            "emberwatch score, empty input": ([args.emberwatch, "score"], empty),
        }
        best: dict[str, tuple[float, float]] = {}
        ratios = []
        for _ in range(args.rounds):
            this_round = {}
            for name, (command, stdin) in commands.items():
                cpu, rss = run(command, stdin)
                this_round[name] = cpu
                old = best.get(name, (float("inf"), 0.0))
                best[name] = (min(old[0], cpu), max(old[1], rss))
            ratios.append(this_round["plain VADER"] / this_round["emberwatch score"])
    for name, (cpu, rss) in best.items():
        print(f"{name:<32} {cpu:7.2f} s CPU   peak RSS {rss:6.1f} MiB")
    plain, ours = best["plain VADER"][0], best["emberwatch score"][0]
    # The machine's speed drifts by a fifth from one minute to the next, so the best plain
    # run and the best emberwatch run may come from rounds at different speeds: the
    # throughput is the median of each round's ratio, whose two runs are seconds apart.
    throughput = statistics.median(ratios)
    print("ratio in each round: " + ", ".join(f"{r:.2f}" for r in ratios))
    start_plain, start_ours = (
        best["plain VADER, empty input"][0],
        best["emberwatch score, empty input"][0],
    )
    print(f"throughput, whole process: {throughput:.2f} of plain VADER ({args.n} texts)")
    per_plain = (plain - start_plain) / args.n * 1e6
    per_ours = (ours - start_ours) / args.n * 1e6
    print(f"per text, start-up excluded: {per_ours:.1f} us against {per_plain:.1f} us")
    print(f"start-up: {start_ours:.2f} s against {start_plain:.2f} s")
    # Only now: _common imports SQLAlchemy, and a child's peak RSS counts the memory of the
    # parent it was forked from.
    from _common import Row, finish, verdict

    rss_plain, rss_ours = best["plain VADER"][1], best["emberwatch score"][1]
    rows = [
        Row(
            "score_cli",
            f"emberwatch score, {args.n:,} texts, whole process: CPU s",
            f"{ours:.2f} s",
            f"plain VADER script {plain:.2f} s",
        ),
        Row(
            "score_cli",
            "throughput vs plain VADER, whole process (median of the rounds' ratios)",
            f"{throughput:.2f}",
            "plain VADER = 1; target >= 0.70",
            verdict(throughput >= 0.7),
        ),
        Row(
            "score_cli",
            "per text, start-up excluded",
            f"{per_ours:.1f} us",
            f"plain VADER {per_plain:.1f} us",
        ),
        Row(
            "score_cli",
            "start-up, empty input: CPU s",
            f"{start_ours:.3f} s",
            f"plain VADER {start_plain:.3f} s",
        ),
        Row("score_cli", "peak RSS", f"{rss_ours:.0f} MiB", f"plain VADER {rss_plain:.0f} MiB"),
    ]
    finish(rows, args, f"emberwatch score against plain VADER, best of {args.rounds} rounds")


if __name__ == "__main__":
    main()
