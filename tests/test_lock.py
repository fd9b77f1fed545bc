"""requirements.lock pins every dependency, so two installs a week apart run the same code.

pyproject.toml keeps its ranges; the lock pins one version of each package, runtime and
the dev and demo extras, direct and transitive, and `make` installs with it as constraints. A
dependency added to or changed in pyproject.toml without `make lock` fails here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.conftest import REPO

LOCK = REPO / "requirements.lock"
FIX = "run `make lock` and commit requirements.lock"


def _declared() -> list[Requirement]:
    """pyproject.toml's runtime dependencies and its dev and demo extras (what `make`
    installs)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return [
        Requirement(line) for line in [*project["dependencies"], *extras["dev"], *extras["demo"]]
    ]


def _pins() -> dict[NormalizedName, list[Requirement]]:
    """Each locked package's pins: several when versions differ by platform or Python."""
    pins: dict[NormalizedName, list[Requirement]] = {}
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            pin = Requirement(line)
            pins.setdefault(canonicalize_name(pin.name), []).append(pin)
    return pins


def _applies(pin: Requirement) -> bool:
    return pin.marker is None or pin.marker.evaluate()


def _locked_version(pin: Requirement) -> str:
    (spec,) = pin.specifier
    return spec.version


def test_every_line_pins_one_exact_version():
    for pins in _pins().values():
        for pin in pins:
            specs = list(pin.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{pin} is not a pin"


def test_every_dependency_in_pyproject_is_pinned_within_its_range():
    pins = _pins()
    problems = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is not pinned")
            continue
        for pin in pins[name]:
            version = _locked_version(pin)
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{pin} is outside pyproject's {requirement}")
    assert not problems, f"requirements.lock is stale ({FIX}): " + "; ".join(problems)


def _closure() -> Iterator[tuple[str, metadata.Distribution]]:
    """Every installed distribution the declared dependencies need, with their extras."""
    todo = [(r, "pyproject.toml") for r in _declared()]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        requirement, needed_by = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here; the pyproject check covers direct dependencies
        yield needed_by, dist
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in requirement.extras or {""}
            ):
                todo.append((child, dist.metadata["Name"]))


def test_every_installed_dependency_is_pinned_and_installed_at_its_pin():
    # Also transitive ones (psycopg[binary] brings psycopg-binary): the venv was installed
    # from the lock, so what the tests run is what the lock says.
    pins = _pins()
    problems = []
    for needed_by, dist in _closure():
        name = canonicalize_name(dist.metadata["Name"])
        applicable = [pin for pin in pins.get(name, []) if _applies(pin)]
        if not applicable:
            problems.append(f"{name} (needed by {needed_by}) is not pinned")
        elif dist.version not in {_locked_version(pin) for pin in applicable}:
            problems.append(f"{name} {dist.version} is installed, the lock pins {applicable}")
    assert not problems, f"{FIX}, then `make` to install it: " + "; ".join(sorted(problems))
