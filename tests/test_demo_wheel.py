"""`emberwatch demo` runs from an installed wheel, away from the repository.

The wheel is built from a copy of the sources (nothing is written into the working tree),
without build isolation (the dev extra carries setuptools), and installed with
``--no-index --no-deps`` into a fresh venv. Its dependencies come from the test venv,
whose site-packages the fresh venv reads through a ``.pth`` line: such a path's own
``.pth`` files are not processed, so the editable emberwatch installed there stays
invisible. No network is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    emberwatch: Path
    home: Path  # an empty folder to run in: no config/ around


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(
        REPO / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)

    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        tmp / "dist",
        source,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp / "dist").glob("emberwatch-*.whl")

    venv = tmp / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(purelib.stdout.strip()) / "_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    pip = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-deps", wheel
    )
    assert pip.returncode == 0, pip.stderr
    home = tmp / "home"
    home.mkdir()
    return Installed(wheel, python, venv / "bin" / "emberwatch", home)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMBERWATCH_CONFIG")}
    return {**env, **extra}


def test_the_wheel_carries_the_demo_config_and_asks_for_aiosmtpd_only_in_its_extra(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        assert "emberwatch/demo/demo.toml" in wheel.namelist()
        [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        lines = wheel.read(metadata).decode().splitlines()
    requires = [
        Requirement(line.partition(":")[2]) for line in lines if line.startswith("Requires-Dist:")
    ]
    runtime = {r.name.lower() for r in requires if r.marker is None}
    assert "aiosmtpd" not in runtime
    smtpd = [r for r in requires if r.name.lower() == "aiosmtpd"]
    assert any(r.marker and r.marker.evaluate({"extra": "demo"}) for r in smtpd)
    assert "matplotlib" not in {r.name.lower() for r in requires}


def test_the_installed_package_finds_its_demo_config(installed):
    found = _run(
        installed.python,
        "-c",
        "import emberwatch.demo as d; print(d.__file__); print(d.packaged_config().is_file())",
        cwd=installed.home,
        env=_env(),
    )
    assert found.returncode == 0, found.stderr
    module, is_file = found.stdout.split()
    assert Path(module).is_relative_to(installed.python.parents[1])  # the wheel, not src/
    assert is_file == "True"


def test_the_installed_demo_command_helps_and_runs_away_from_the_repository(installed):
    helped = _run(installed.emberwatch, "demo", "--help", cwd=installed.home, env=_env())
    assert helped.returncode == 0, helped.stderr
    assert "Usage: emberwatch demo" in helped.stdout

    ran = _run(
        installed.emberwatch,
        "demo",
        "--duration",
        "5",
        "--output",
        "out",
        cwd=installed.home,
        env=_env(),
    )
    assert ran.returncode == 0, ran.stderr
    assert "Summary" in ran.stdout
    assert (installed.home / "out" / "digest.html").is_file()
    assert list((installed.home / "out" / "mail").glob("*.eml"))


def test_the_installed_demo_without_aiosmtpd_prints_one_line(installed, tmp_path):
    # A stand-in aiosmtpd, first on the path, that is not there.
    (tmp_path / "aiosmtpd").mkdir()
    (tmp_path / "aiosmtpd" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'aiosmtpd'\", name='aiosmtpd')\n",
        encoding="utf-8",
    )
    ran = _run(
        installed.emberwatch,
        "demo",
        "--duration",
        "5",
        cwd=installed.home,
        env=_env(PYTHONPATH=str(tmp_path)),
    )
    assert ran.returncode != 0
    assert ran.stdout == ""
    assert ran.stderr.splitlines() == [
        "emberwatch: the demo needs aiosmtpd, which its extra installs: "
        "pip install 'emberwatch[demo]'"
    ]
