"""The console in a real browser: Debian's chromium, driven through its chromedriver by
Selenium, against a real ``emberwatch demo --serve`` process (the real pipeline on the
demo's story, then the console on its database).

A person logs in, sees the demo's incidents, opens the most urgent one, acknowledges it
(their name is recorded), marks a mention "not a complaint" (the label is in the
database), exports a search as CSV through the browser's download and reads it back, and
logs out. The same walk takes the README's screenshots, at desktop and phone width: they
go to ``$EMBERWATCH_SCREENSHOTS`` when set (``docs/screenshots`` to refresh the README's),
else to a temporary folder, so a test run never changes the repository.

Nothing is downloaded at run time: the browser and driver paths are given, so Selenium
Manager never runs. Without chromium the tests skip, except under ``CI`` where a missing
browser is a failure (``.ci/run`` installs it).
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import Session, select

from emberwatch.models import Incident, Label
from tests.e2e_support import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
DEMO = (sys.executable, "-m", "emberwatch.cli", "demo")
DESKTOP = (1280, 900)
PHONE = (390, 844)
DEMO_START_TIMEOUT = 120.0
WAIT = 20.0


def _browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return
    reason = f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason} (.ci/run installs them)")
    pytest.skip(f"browser tests need Debian's chromium: {reason}")


@dataclass
class Demo:
    """A running ``emberwatch demo --serve`` and what it printed."""

    process: subprocess.Popen[str]
    output: Path
    url: str = ""
    user: str = ""
    password: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def database(self) -> sa.Engine:
        return sa.create_engine(f"sqlite:///{self.output / 'emberwatch.db'}")


def _read_lines(demo: Demo, serving: threading.Event) -> None:
    assert demo.process.stdout is not None
    for line in demo.process.stdout:
        demo.lines.append(line.rstrip("\n"))
        login = re.search(r"console: (http://\S+)\s+log in as (\S+) / (\S+)", line)
        if login:
            demo.url, demo.user, demo.password = login[1].rstrip("/"), login[2], login[3]
        if line.startswith("Serving the console at"):
            serving.set()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    _browser_or_skip()
    output = tmp_path_factory.mktemp("browser") / "demo-output"
    process = subprocess.Popen(
        [*DEMO, "--serve", "--duration", "8", "--output", str(output)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    running = Demo(process, output)
    serving = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(running, serving), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEMO_START_TIMEOUT
        while not serving.wait(0.2):
            output_so_far = "\n".join(running.lines)
            assert process.poll() is None, f"the demo exited early:\n{output_so_far}"
            assert time.monotonic() < deadline, f"the demo never served:\n{output_so_far}"
        assert running.url and running.password, "\n".join(running.lines)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)
    # Ctrl-C ends the serving demo cleanly.
    assert process.returncode == 0, "\n".join(running.lines)
    assert "stopped serving the console" in running.lines[-1]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(demo, downloads, tmp_path_factory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        },
    )
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager may never fetch anything
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    wanted = os.environ.get("EMBERWATCH_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    if not folder.is_absolute():
        folder = REPO / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shoot(driver: WebDriver, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT)


def _click(driver: WebDriver, css: str) -> None:
    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _log_in(driver: WebDriver, demo: Demo, shots: Path | None = None) -> None:
    driver.get(demo.url + "/")
    _wait(driver).until(until.url_contains("/login"))
    driver.find_element(By.ID, "username").send_keys(demo.user)
    if shots is not None:
        _shoot(driver, shots, "login")
    driver.find_element(By.ID, "password").send_keys(demo.password)
    driver.find_element(By.CSS_SELECTOR, "section.login button[type=submit]").click()
    _wait(driver).until(until.presence_of_element_located((By.CSS_SELECTOR, "table.incidents")))


def _log_out(driver: WebDriver) -> None:
    _click(driver, "header .who button")
    _wait(driver).until(until.url_contains("/login"))


def test_a_person_works_an_incident_in_a_real_browser(browser, demo, downloads, shots):
    driver = browser

    # Every page needs a login: the browser lands on /login, and the demo's login works.
    _log_in(driver, demo, shots)
    assert f"Logged in as {demo.user}" in driver.find_element(By.CSS_SELECTOR, ".who").text

    # The demo's incidents, most urgent first.
    links = driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody a[href^='/incidents/']")
    assert links, driver.page_source
    with Session(demo.database) as session:
        open_ids = {i.id for i in session.exec(select(Incident)) if i.status != "resolved"}
    shown = {int(a.get_attribute("href").rsplit("/", 1)[1]) for a in links}
    assert shown == open_ids
    _shoot(driver, shots, "incidents")

    # Open the most urgent one: the why, the playbook, the draft reply, its mentions.
    incident_id = int(links[0].get_attribute("href").rsplit("/", 1)[1])
    links[0].click()
    _wait(driver).until(until.url_contains(f"/incidents/{incident_id}"))
    for section in ("why", "playbook", "draft", "mentions", "history"):
        assert driver.find_elements(By.ID, section), f"no #{section} on the incident page"
    _shoot(driver, shots, "incident")

    # Acknowledge: the page and the database name the logged-in user.
    _click(driver, f"form[action='/incidents/{incident_id}/ack'] button")
    _wait(driver).until(until.url_contains("done=ack"))
    flash = driver.find_element(By.CSS_SELECTOR, "p.flash").text
    assert flash == f"Acknowledged by {demo.user}.", flash
    history = driver.find_element(By.CSS_SELECTOR, "ol.history").text
    assert f"{demo.user} acknowledged" in history, history
    with Session(demo.database) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        assert (incident.status, incident.acknowledged_by) == ("acknowledged", demo.user)

    # "wrong?" on the newest mention: not a complaint; the label is stored as the user.
    article = driver.find_element(By.CSS_SELECTOR, "#mentions article.mention")
    mention_id = int(article.get_attribute("id").removeprefix("m"))
    _click(driver, f"#m{mention_id} details.wrong summary")
    _click(driver, f"#m{mention_id} input[name=complaint][value=no]")
    _click(driver, f"#m{mention_id} details.wrong button[type=submit]")
    _wait(driver).until(until.url_contains(f"labelled={mention_id}"))
    labelled = driver.find_element(By.CSS_SELECTOR, f"#m{mention_id} p.labelled").text
    assert f"not a complaint ({demo.user})" in labelled, labelled
    with Session(demo.database) as session:
        labels = session.exec(select(Label).where(Label.mention_id == mention_id)).all()
    assert [(x.field, x.value, x.labelled_by, x.via) for x in labels] == [
        ("complaint", "false", demo.user, "console")
    ]

    # Search the mentions by text, then export the search through the browser's download.
    driver.get(demo.url + "/mentions")
    search = driver.find_element(By.NAME, "q")
    search.send_keys("courier")
    search.submit()
    _wait(driver).until(until.url_contains("q=courier"))
    found = driver.find_elements(By.CSS_SELECTOR, "article.mention")
    assert found and all("courier" in a.text.lower() for a in found)
    _shoot(driver, shots, "mentions")
    _click(driver, "a[href*='format=csv']")
    exported = _downloaded(downloads, "emberwatch-mentions-*.csv")
    with exported.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(found)
    assert all("courier" in " ".join(row.values()).lower() for row in rows)

    # Phone width: the list and the incident page on on-call's phone.
    driver.set_window_size(*PHONE)
    try:
        driver.get(demo.url + "/")
        _shoot(driver, shots, "incidents-phone")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0], f"the incident list scrolls sideways on a phone ({width}px)"
        driver.get(f"{demo.url}/incidents/{incident_id}")
        _shoot(driver, shots, "incident-phone")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0], f"the incident page scrolls sideways on a phone ({width}px)"
    finally:
        driver.set_window_size(*DESKTOP)

    # Log out: back to /login, and the pages need a login again.
    _log_out(driver)
    driver.get(demo.url + "/mentions")
    _wait(driver).until(until.url_contains("/login"))
    assert driver.find_elements(By.ID, "password")


def _downloaded(folder: Path, pattern: str) -> Path:
    """The finished download matching ``pattern`` (Chromium writes *.crdownload first)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        done = sorted(folder.glob(pattern))
        if done and not list(folder.glob("*.crdownload")):
            return done[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} downloaded into {folder}: {os.listdir(folder)}")
