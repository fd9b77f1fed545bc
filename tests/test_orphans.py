"""A SIGKILLed ``emberwatch run`` leaves no process behind: its scoring worker notices
its parent is gone and exits, and the multiprocessing resource tracker follows."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from emberwatch.demo.servers import HTTPServer, MailCatcher, SlackServer, free_port
from tests.e2e_support import REPO, Feeds, emberwatch, write_config
from tests.helpers import HAPPY, hn_hit


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, or None once it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = text.rpartition(")")[2].split()[:2]
    return None if state in ("Z", "X") else (int(ppid), state)


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root``, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = found[0]
    below, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in below:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except FileNotFoundError:
                    continue
                below[pid] = cmdline.decode(errors="replace")
                frontier.append(pid)
    return below


def test_a_sigkilled_run_leaves_no_scoring_worker_or_resource_tracker(tmp_path):
    # More new mentions in one poll than MIN_BATCH, so the scoring worker starts.
    feeds = Feeds(hits=[hn_hit(str(i), f"{HAPPY} #{i}") for i in range(48)], rss_items=[])
    server = HTTPServer(feeds.handle).start()
    slack = SlackServer().start()
    mail = MailCatcher().start()
    config = write_config(tmp_path, server.base_url, slack, mail)
    config.write_text(
        "scoring_processes = 1\n"
        + config.read_text()
        + f'\n[http]\nbind = "127.0.0.1:{free_port()}"\nsecret = "{"s" * 40}"\n'
    )
    node = None
    seen: dict[int, str] = {}
    try:
        assert emberwatch("db", "upgrade", "--config", str(config)).returncode == 0
        node = subprocess.Popen(
            [sys.executable, "-m", "emberwatch", "run", "--config", str(config)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        alive: dict[int, str] = {}
        while time.monotonic() < deadline:
            alive = descendants(node.pid)
            seen |= alive
            worker = any("spawn_main" in c for c in alive.values())
            tracker = any("resource_tracker" in c for c in alive.values())
            if worker and tracker:
                break
            assert node.poll() is None, "run ended early"
            time.sleep(0.2)
        time.sleep(1)  # the worker has scored its batch and waits for the next
        alive = descendants(node.pid)
        assert any("spawn_main" in c for c in alive.values()), seen
        assert any("resource_tracker" in c for c in alive.values()), seen

        node.send_signal(signal.SIGKILL)
        node.wait(10)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 5 and any(_stat(pid) for pid in seen):
            time.sleep(0.1)
        left = {pid: cmd for pid, cmd in seen.items() if _stat(pid)}
        print(f"\nleft {time.monotonic() - killed_at:.1f} s after SIGKILL: {left}")
        assert left == {}
    finally:
        for pid in seen:
            if _stat(pid):
                os.kill(pid, signal.SIGKILL)
        if node is not None and node.poll() is None:
            node.kill()
        server.stop()
        slack.stop()
        mail.stop()
