"""Constructors for frozen, slotted dataclasses made once or more a mention.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; the
function :func:`maker` writes sets each slot through its descriptor instead, in about half
the time, for the objects the scorer and ``emberwatch score`` make for every line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any


def maker(cls: type, *, skip_post_init: bool = False) -> Callable[..., Any]:
    """A function that makes an instance of the frozen, slotted dataclass ``cls`` from all
    its fields, in order, as ``cls(*values)`` does. A class with a ``__post_init__`` is
    refused unless ``skip_post_init``: then the caller vouches that the values are ones
    ``__post_init__`` would leave as they are."""
    names = [f.name for f in fields(cls)]
    if not all(type(cls.__dict__.get(n)).__name__ == "member_descriptor" for n in names):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__") and not skip_post_init:
        raise TypeError(f"{cls.__name__} has a __post_init__")
    space: dict[str, Any] = {"new": object.__new__, "cls": cls}
    body = []
    for i, name in enumerate(names):
        space[f"set{i}"] = cls.__dict__[name].__set__
        body.append(f"    set{i}(out, {name})\n")
    source = f"def make({', '.join(names)}):\n    out = new(cls)\n{''.join(body)}    return out\n"
    exec(source, space)  # generated from the field names, as dataclasses does
    make = space["make"]
    make.__name__ = make.__qualname__ = f"make_{cls.__name__}"
    return make  # type: ignore[no-any-return]
