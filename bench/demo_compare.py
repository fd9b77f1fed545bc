"""Does `make demo` send the same messages to the same places from two source trees?

Issue 16, point 5. Runs ``emberwatch demo`` from each tree (``PYTHONPATH=<tree>/src``, the
same interpreter and packages) in its own temporary folder, or reads demo output folders
already made, and compares what was sent: each email's recipients, subject, text and HTML
parts, and each Slack payload. What differs between any two runs of one tree is masked
first: clock times and dates, the loopback ports, the action links' tokens, Message-ID and
Date headers, MIME boundaries, and how long ago something happened.

The demo's story runs on the wall clock (a poll every 3 s while items appear at fixed
fractions of --duration), so a loaded machine can move a mention into the next poll and
change a message; run each tree twice (``--repeat 2``) to see that noise beside the
difference between trees.

    .venv/bin/python bench/demo_compare.py --tree /tmp/pre16 --tree . [--repeat 2]
    .venv/bin/python bench/demo_compare.py --output A/out --output B/out
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

MASKS = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"localhost:\d+"), "localhost:PORT"),
    (re.compile(r"[A-Za-z0-9_-]{20,}"), "TOKEN"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?"), "TS"),
    (re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b"), "HH:MM"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|seconds?|min|minutes?|h|hours?) ago\b"), "N ago"),
    (re.compile(r"<!date\^\d+\^[^>]*>"), "<!date>"),
    (re.compile(r"\b1[6-9]\d{8}\b"), "EPOCH"),
    (re.compile(r"\b\d+s\b"), "Ns"),  # an incident's age ("open 41s")
]
NUMBER = re.compile(r"\d+(\.\d+)?")


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def messages(output: Path) -> list[tuple[str, str]]:
    """(place, masked content) for each message the demo sent, in a stable order."""
    found = []
    for path in sorted((output / "mail").glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [f"To: {mail['To']}", f"Cc: {mail['Cc']}", f"Subject: {mail['Subject']}"]
        for part in mail.walk():
            if part.get_content_maintype() == "text":
                parts.append(f"--- {part.get_content_type()}\n{part.get_content()}")
        found.append((f"email to {mail['To']}", mask("\n".join(parts))))
    for path in sorted((output / "slack").glob("*.json")):
        payload = json.loads(path.read_text())
        found.append(("slack", mask(json.dumps(payload, indent=1, sort_keys=True))))
    return sorted(found)


def run_demo(tree: Path, folder: Path, duration: float) -> Path:
    out = folder / "out"
    env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
    started = time.perf_counter()
    cpu = os.times()
    subprocess.run(
        [sys.executable, "-m", "emberwatch", "demo", "--output", str(out), "--no-serve",
         "--duration", str(duration)],
        cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    after = os.times()
    used = (after.children_user - cpu.children_user) + (after.children_system - cpu.children_system)
    wall = time.perf_counter() - started
    print(f"  {tree}: demo took {wall:.1f} s wall, {used:.2f} s CPU; {len(messages(out))} messages")
    return out


def compare(a: Path, b: Path, label_a: str, label_b: str) -> int:
    """Print each message that differs; return the number of differences."""
    left, right = messages(a), messages(b)
    print(f"{label_a}: {len(left)} messages; {label_b}: {len(right)} messages")
    counts = {}
    for name, found in (("a", left), ("b", right)):
        for place, _ in found:
            counts.setdefault(place, {"a": 0, "b": 0})[name] += 1
    for place, count in sorted(counts.items()):
        print(f"  {place:40} {count['a']:3} {count['b']:3}")
    differences = numbers = 0
    unmatched_right = list(right)
    for place, text in left:
        if (place, text) in unmatched_right:
            unmatched_right.remove((place, text))
            continue
        # the closest message to the same place on the other side
        candidates = [(p, t) for p, t in unmatched_right if p == place]
        if not candidates:
            differences += 1
            print(f"\n## only in {label_a}: {place}\n{text[:2000]}")
            continue
        best = max(candidates, key=lambda c: difflib.SequenceMatcher(None, text, c[1]).ratio())
        unmatched_right.remove(best)
        if NUMBER.sub("N", text) == NUMBER.sub("N", best[1]):
            pairs = zip(NUMBER.finditer(text), NUMBER.finditer(best[1]), strict=True)
            changed = sorted({f"{x[0]} -> {y[0]}" for x, y in pairs if x[0] != y[0]})
            numbers += 1
            print(f"## {place}: only numbers differ: {', '.join(changed)}")
            continue
        differences += 1
        diff = difflib.unified_diff(
            text.splitlines(), best[1].splitlines(), label_a, label_b, n=1, lineterm=""
        )
        print(f"\n## {place} differs\n" + "\n".join(diff))
    for place, text in unmatched_right:
        differences += 1
        print(f"\n## only in {label_b}: {place}\n{text[:2000]}")
    print(f"\n{differences} message(s) differ in words, {numbers} only in numbers")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, default=[], help="a source tree")
    parser.add_argument("--output", action="append", type=Path, default=[], help="demo output")
    parser.add_argument("--repeat", type=int, default=1, help="demo runs per tree")
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    outputs: list[tuple[str, Path]] = [(str(path), path) for path in args.output]
    if args.tree:
        with open("/proc/loadavg") as load:
            print(f"load average before: {load.read().split()[0]}")
        scratch = Path(tempfile.mkdtemp(prefix="demo-compare-"))
        for round_ in range(args.repeat):
            for number, tree in enumerate(args.tree):  # interleaved, so load hits both
                folder = scratch / f"{number}-{round_}"
                folder.mkdir()
                outputs.append((f"{tree}#{round_ + 1}", run_demo(tree, folder, args.duration)))
    if len(outputs) < 2:
        parser.error("give two trees or two demo outputs")
    base_label, base = outputs[0]
    for label, output in outputs[1:]:
        print(f"\n==== {base_label} vs {label}")
        compare(base, output, base_label, label)


if __name__ == "__main__":
    main()
