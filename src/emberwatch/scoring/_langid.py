"""py3langid's classifier in a compact form: the same answers, a fraction of the memory.

py3langid ships one model, an xz-compressed ``.npz`` in its wheel: a Naive Bayes table of
100,053 byte n-gram features by 142 labels (float16) and the Aho-Corasick automaton that
finds the features, stored as a full transition table (38,346 distinct rows of 256 uint32
states). Loading it decompresses 68 MB (most of a second) and holds over 100 MiB.

:class:`Identifier` gives the label py3langid's ``LanguageIdentifier`` with
``norm_probs=True`` and ``set_languages(languages)`` gives (and, computing as it does, its
probability to the last bit), from three smaller parts:

* the table's columns for ``languages`` only, as float16 like the original (14 MB,
  memory-mapped: a text touches the rows of its own features);
* the automaton as its trie (104,583 states numbered breadth first, each state's children
  together) and failure links, from which every one of the full table's transitions
  follows (Aho-Corasick): 1.5 MB, checked against the table when derived; and
* the class priors and labels, and the largest weight and prior (for :class:`Identifier`'s
  float64 estimate, which needs no numpy).

The :func:`derive` step reads the wheel's own model file, streaming: the decompressed
``.npz`` goes to a temporary file and is read a slice at a time, so deriving stays under
40 MB. Its result is cached as ``.npy`` files under ``$XDG_CACHE_HOME/emberwatch`` (or
``~/.cache/emberwatch``; failing that, ``$TMPDIR/emberwatch-<uid>``, see
:func:`cache_roots`), keyed by the model file's SHA-256, the languages and :data:`FORMAT`;
later processes load them in milliseconds. Nothing is downloaded. Where no cache can be
written, the derived parts serve this process only.
If the model's automaton is not a trie with failure links (a future py3langid could
change that), :func:`load` returns None and the caller uses py3langid as it comes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import logging
import lzma
import math
import mmap
import operator
import os
import shutil
import stat
import struct
import sys
import tempfile
import unicodedata
import zipfile
from array import array
from collections import Counter
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.lib import format as npy_format
else:

    class _Numpy:
        """numpy (and its .npy format module), imported on first use: only deriving the
        model and py3langid's exact arithmetic need it (see Identifier)."""

        def __init__(self, module: str, name: str) -> None:
            self._module, self._name = module, name

        def __getattr__(self, attribute: str) -> Any:
            module = importlib.import_module(self._module)
            globals()[self._name] = module
            return getattr(module, attribute)

    np = _Numpy("numpy", "np")
    npy_format = _Numpy("numpy.lib.format", "npy_format")

log = logging.getLogger("emberwatch.scoring")

# Bump when the cached files change meaning or layout.
FORMAT = "langid-compact-3"
# Texts classified by float64 estimate before numpy takes over (see Identifier).
_ESTIMATES = 64
_PARTS = ("ptc", "pc", "classes", "first", "kids", "fail", "output", "bound")
_CHUNK_ROWS = 1024  # rows of a model array read at a time while deriving


def model_file() -> Path:
    """The model inside the installed py3langid wheel, found without importing py3langid
    (which imports numpy)."""
    spec = importlib.util.find_spec("py3langid")
    for folder in (spec and spec.submodule_search_locations) or ():
        path = Path(folder) / "data" / "model.npz.xz"
        if path.exists():
            return path
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    return Path(MODEL_DIR) / MODEL_FILE


def cache_roots() -> list[Path]:
    """Where the derived model is cached, first choice first: the user's cache folder
    (``$XDG_CACHE_HOME/emberwatch`` or ``~/.cache/emberwatch``), then a folder of this user's
    own in the temporary directory, for a service whose home is read-only or hidden (a
    container's read-only root with a tmpfs ``/tmp``, systemd's ``ProtectHome``)."""
    roots = []
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if os.path.isabs(base):  # not a "~" left unexpanded for want of a home
        roots.append(Path(base) / "emberwatch")
    if hasattr(os, "getuid"):
        roots.append(Path(tempfile.gettempdir()) / f"emberwatch-{os.getuid()}")
    return roots


def _own_folder(root: Path, *, create: bool) -> bool:
    """Whether ``root`` is a real folder of this user that no one else can write (made so,
    if ``create``): a shared temporary directory could hold another user's folder of that
    name, with their files. A folder under the user's home is taken as it is."""
    if not root.name.startswith("emberwatch-"):
        return True
    try:
        if create:
            root.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(root)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


class Identifier:
    """A text's language among the derived model's labels, as py3langid decides it.

    Two ways to the same decision. py3langid's own arithmetic needs numpy (float32 vectors,
    a BLAS product), whose import costs about 0.1 s and 15 MiB, more than classifying a
    few hundred texts: a process that meets only a few texts in other languages (English
    feeds, ``emberwatch score`` on them) adds the features' weights in float64 in Python
    instead (:meth:`_estimate`), and keeps that answer when no rounding of py3langid's
    float32 arithmetic could change it (:meth:`_settled`). Otherwise, and from the
    :data:`_ESTIMATES`-th text on or once numpy is imported anyway, it computes as
    py3langid does (:meth:`_exact`). The label is always py3langid's; the confidence of an
    estimate can differ from py3langid's in its last digits, never across ``thresholds``.
    """

    def __init__(self, parts: dict[str, Any], thresholds: Sequence[float] = ()) -> None:
        self.classes: list[str] = list(parts["classes"])
        self.thresholds = tuple(thresholds)
        self._table, self._offset, self._rows = parts["ptc"]
        self._row = struct.Struct(f"<{len(self.classes)}e").unpack_from
        self._row_size = 2 * len(self.classes)
        self._pc: array[float] = parts["pc"]
        self._largest_weight, self._largest_prior = parts["bound"]
        # The trie, states numbered breadth first with each state's children together in
        # byte order: the children of state s are states first[s] to first[s + 1] - 1, and
        # kids[c] is the byte that leads to state c. With the failure links and each
        # state's feature (-1 for none), about 1.5 MB; a dict of the edges would be 12.
        self._first: array[int] = parts["first"]
        self._kids: bytes = parts["kids"]
        self._fail: array[int] = parts["fail"]
        self._output: array[int] = parts["output"]
        self._root = [0] * 256
        for child in range(1, self._first[1]):
            self._root[self._kids[child]] = child
        first: dict[str, int] = {}
        self._alias_pairs = []
        for i, c in enumerate(self.classes):
            if c in first:
                self._alias_pairs.append((first[c], i))
            else:
                first[c] = i
        self._estimates = 0
        self._numpy: tuple[Any, Any] | None = None

    def _visits(self, data: bytes) -> Counter[int] | None:
        """Each feature's count, in order of first occurrence, as py3langid's DFA walk
        finds them: the state after each byte is the longest suffix read so far that is a
        trie node."""
        first, find, fail = self._first, self._kids.find, self._fail
        output, root = self._output, self._root
        state, found = 0, []
        append = found.append
        for byte in data:
            while state:
                child = find(byte, first[state], first[state + 1])
                if child >= 0:
                    state = child
                    break
                state = fail[state]
            else:
                state = root[byte]
            feature = output[state]
            if feature >= 0:
                append(feature)
        return Counter(found) if found else None

    def classify(self, text: str) -> tuple[str, float]:
        """``(label, normalized probability)``, py3langid's label for ``text``."""
        if text.isupper():
            text = text.lower()
        data = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
        visits = self._visits(data)
        if (
            visits
            and self._numpy is None
            and self._estimates < _ESTIMATES
            and "numpy" not in sys.modules
        ):
            self._estimates += 1
            found = self._estimate(visits, len(data))
            if found is not None:
                return found
        return self._exact(visits, len(data))

    def _exact(self, visits: Counter[int] | None, size: int) -> tuple[str, float]:
        """py3langid's ``classify`` step for step, so the float32 arithmetic and thus the
        answer are the same."""
        if self._numpy is None:
            width = len(self.classes)
            table = np.frombuffer(
                self._table, dtype="<f2", count=self._rows * width, offset=self._offset
            ).reshape(self._rows, width)
            self._numpy = (table, np.array(self._pc, dtype=np.float32))
        table, pc = self._numpy
        if visits:
            idx = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            scores = np.log1p(counts) @ table[idx] + pc
        else:
            scores = np.full(len(self.classes), 0.0, dtype=np.float32)
        scores *= 1.0 / math.sqrt(size or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        for i, j in self._alias_pairs:
            scores[i] += scores[j]
            scores[j] = 0.0
        best = int(scores.argmax())
        return self.classes[best], float(scores[best])

    def _estimate(self, visits: Counter[int], size: int) -> tuple[str, float] | None:
        """The label and probability from the same formula in float64, or None when
        py3langid's float32 rounding could give another label or put the probability on
        the other side of a threshold."""
        row, table, start, width = self._row, self._table, self._offset, self._row_size
        totals = [0.0] * len(self.classes)
        spread = 0.0
        for feature, count in visits.items():
            weight = math.log1p(count)
            spread += weight
            scaled = map(operator.mul, row(table, start + feature * width), repeat(weight))
            totals = [*map(operator.add, totals, scaled)]
        scale = 1.0 / math.sqrt(size or 1)
        scores = [(t + p) * scale for t, p in zip(totals, self._pc, strict=True)]
        top = max(scores)
        exps = [math.exp(v - top) for v in scores]
        norm = sum(exps)
        probabilities = [e / norm for e in exps]
        for i, j in self._alias_pairs:
            probabilities[i] += probabilities[j]
            probabilities[j] = 0.0
        best = probabilities.index(max(probabilities))
        if not self._settled(probabilities, best, spread, len(visits), scale):
            return None
        return self.classes[best], probabilities[best]

    def _settled(
        self, probabilities: list[float], best: int, spread: float, terms: int, scale: float
    ) -> bool:
        """Whether py3langid's float32 arithmetic must give the same label and the same
        side of each threshold. Its scores are dot products of ``terms`` float32 products
        plus a prior, scaled: each is off the exact value by at most gamma = (terms + 16) u
        (u = 2**-24; the 16 cover log1p to 4 ulp, the prior's sum, the scale and the
        subtraction of the top score) times the sum of the terms' sizes, at most
        ``largest weight * spread + largest prior``. A score error of d moves each
        probability by a factor within exp(+-4 d) (its own score and the normalizer's);
        exp, sum, division and fold in float32 add under 100 u, float64 far less."""
        unit = 2.0**-24
        gamma = (terms + 16) * unit / (1 - (terms + 16) * unit)
        error = gamma * (self._largest_weight * spread + self._largest_prior) * scale
        slack = math.expm1(4 * error) + 100 * unit
        high, low = probabilities[best] * (1 + slack), probabilities[best] * (1 - slack)
        runner_up = max(p for i, p in enumerate(probabilities) if i != best)
        if low <= runner_up * (1 + slack):
            return False
        return all(low >= t or high < t for t in self.thresholds)


def load(languages: Sequence[str], thresholds: Sequence[float] = ()) -> Identifier | None:
    """The compact identifier for ``languages``: from a cache, else derived into the first
    that can be written (or, when none can, into a temporary folder for this process).
    None when the model's automaton is not a trie with failure links, or the model file
    cannot be read so (then the caller loads py3langid's own). ``thresholds``: the
    probabilities the caller compares the answer with (see :class:`Identifier`)."""
    source = model_file()
    key = _key(source, languages)
    roots = cache_roots()
    for root in roots:
        parts = _read_cache(root / key) if _own_folder(root, create=False) else None
        if parts is not None:
            return Identifier(parts, thresholds)
    folder, staging = None, None
    for root in roots:
        if not _own_folder(root, create=True):
            continue
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        except OSError as exc:
            log.info("language model cache %s not writable (%s)", root, exc)
            continue
        folder = root / key
        break
    if staging is None:
        log.info("language model derived for this process only: no cache folder is writable")
        staging = Path(tempfile.mkdtemp(prefix="emberwatch-langid-"))
    try:
        try:
            derived = derive(source, languages, staging)
        except (OSError, ValueError, KeyError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
            # A full disk, or a model file laid out otherwise: py3langid reads its own.
            log.warning("language model not derived (%s); py3langid loads it itself", exc)
            return None
        if not derived:
            return None
        # Unpublished, the parts are read from the staging folder, which then goes: the
        # table stays mapped, the rest is in memory.
        published = folder is not None and _publish(staging, folder)
        parts = _read_cache(folder if published and folder else staging)
        return Identifier(parts, thresholds) if parts is not None else None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, folder: Path) -> bool:
    """Rename the derived folder into place, so that a reader never sees half a cache.
    True when ``folder`` then holds a complete cache: ours, or another process's that
    derived at the same time. A damaged folder in the way is replaced."""
    for _ in range(2):
        try:
            os.rename(staging, folder)
            return True
        except OSError:
            if _read_cache(folder) is not None:
                return True
            shutil.rmtree(folder, ignore_errors=True)
    return False


def _key(source: Path, languages: Sequence[str]) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps([FORMAT, list(languages)]).encode())
    return f"{FORMAT}-{digest.hexdigest()[:24]}"


def _read_cache(folder: Path) -> dict[str, Any] | None:
    """The cached parts, read without numpy: the table memory-mapped, the rest as arrays."""
    if sys.byteorder != "little":
        return None  # the files are little-endian; derive again would not help: py3langid
    try:
        parts = {name: _read_npy(folder / f"{name}.npy") for name in _PARTS}
    except Exception:
        # A cut or damaged file fails in many ways (struct.error, KeyError, TypeError...):
        # whatever the damage, the cache is derived again and replaces it, rather than
        # failing every text's language detection from then on.
        return None
    table, offset, rows = parts["ptc"]
    width = len(parts["classes"])
    if len(table) < offset + 2 * rows * width or len(parts["pc"]) != width:
        return None
    states = len(parts["output"])
    if not (len(parts["fail"]) == len(parts["kids"]) == states == len(parts["first"]) - 1):
        return None
    if len(parts["bound"]) != 2:
        return None
    return parts


# How each cached part's .npy dtype is read: into an array of this type code.
_TYPECODES = {"<f2": "e", "<f4": "f", "<f8": "d", "<i4": "i", "|u1": "B"}


def _read_npy(path: Path) -> Any:
    """A one-dimensional .npy file as an array (bytes for uint8, a list for strings), or
    a two-dimensional float16 one as (memory map, data offset, rows)."""
    with path.open("rb") as handle:
        magic = handle.read(8)
        if magic[:6] != b"\x93NUMPY" or magic[6] != 1:
            raise ValueError(f"{path}: not a version 1 .npy file")
        (length,) = struct.unpack("<H", handle.read(2))
        header = ast.literal_eval(handle.read(length).decode("latin1"))
        if header["fortran_order"]:
            raise ValueError(f"{path}: Fortran order")
        descr, shape, offset = header["descr"], header["shape"], 10 + length
        if len(shape) == 2 and descr == "<f2":
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            return mapped, offset, shape[0]
        data = handle.read()
    if descr.startswith("<U"):
        size = 4 * int(descr[2:])
        return [
            data[i : i + size].decode("utf-32-le").rstrip("\x00") for i in range(0, len(data), size)
        ]
    if descr == "|u1":
        return data
    values = array(_TYPECODES[descr])
    if _TYPECODES[descr] == "e":
        raise ValueError(f"{path}: a one-dimensional float16 part")
    values.frombytes(data)
    return values


def derive(source: Path, languages: Sequence[str], folder: Path) -> bool:
    """Write the compact parts into ``folder`` from py3langid's model file, read a slice
    at a time; False (and nothing usable written) when the automaton is not a trie with
    failure links."""
    wanted = set(languages)
    with tempfile.TemporaryFile(suffix=".npz") as tmp:
        with lzma.open(source) as packed:
            shutil.copyfileobj(packed, tmp, length=1 << 20)
        tmp.seek(0)
        with zipfile.ZipFile(tmp) as npz:
            classes = _small(npz, "classes").tolist()
            columns = [i for i, c in enumerate(classes) if c in wanted]
            row_of = _small(npz, "nextmove_row").astype(np.int64)
            output = _small(npz, "out_feat").astype(np.int32)
            with npz.open("nextmove.npy") as member:
                edges = _trie_edges(member, row_of)
                if edges is None:
                    return False
                keys, values = edges
                fail = _failure_links(keys, values, len(row_of))
                if not _same_automaton(member, row_of, keys, values, fail):
                    return False
            with npz.open("ptc.npy") as member, (folder / "ptc.npy").open("wb") as out:
                _select_columns(member, columns, out)
            with npz.open("ptc.npy") as member:
                largest = max(float(abs(block[:, columns]).max()) for _, block in _chunks(member))
            pc = _small(npz, "pc")[columns]
            parts = {
                "bound": np.array([largest, float(np.abs(pc).max())], dtype=np.float64),
                "pc": pc.astype("<f4"),
                "classes": np.array([classes[i] for i in columns]),
                **_breadth_first(keys, values, fail, output),
            }
    for name, value in parts.items():
        np.save(folder / f"{name}.npy", value, allow_pickle=False)
    return True


def _small(npz: zipfile.ZipFile, name: str) -> np.ndarray:
    with npz.open(f"{name}.npy") as member:
        return npy_format.read_array(member, allow_pickle=False)


def _header(member: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = npy_format.read_magic(member)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(member)
    return npy_format.read_array_header_2_0(member)


def _chunks(member: IO[bytes]) -> Any:
    """A 2-D (or flat, as rows of 256) ``.npy`` member, ``_CHUNK_ROWS`` rows at a time."""
    shape, fortran, dtype = _header(member)
    if fortran:
        raise ValueError("Fortran-ordered model array")
    width = shape[1] if len(shape) == 2 else 256
    rows = shape[0] if len(shape) == 2 else shape[0] // 256
    done = 0
    while done < rows:
        n = min(_CHUNK_ROWS, rows - done)
        data = member.read(n * width * dtype.itemsize)
        yield done, np.frombuffer(data, dtype=dtype).reshape(n, width)
        done += n


def _select_columns(member: IO[bytes], columns: list[int], out: IO[bytes]) -> None:
    """Copy a 2-D ``.npy`` member's ``columns`` to ``out`` as a ``.npy`` file, a slice at a
    time."""
    shape, _, dtype = _header(member)
    header = {
        "descr": npy_format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (shape[0], len(columns)),
    }
    npy_format.write_array_header_1_0(out, header)
    member.seek(0)
    for _, block in _chunks(member):
        out.write(np.ascontiguousarray(block[:, columns]).tobytes())


def _trie_edges(member: IO[bytes], row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The automaton's trie: ``(state << 8 | byte, child)`` for each edge, found breadth
    first, one pass over the transition rows per depth. A state's children are the targets
    of its row not yet reached; a row shared by two states of one depth can have none (a
    trie node has one parent), and each state but the root must be reached once."""
    states = len(row_of)
    depth = np.full(states, -1, dtype=np.int64)
    depth[0] = 0
    frontier = np.array([0])
    keys: list[np.ndarray] = []
    values: list[np.ndarray] = []
    while len(frontier):
        rows, owners = np.unique(row_of[frontier], return_counts=True)
        owner = np.full(int(row_of.max()) + 1, -1, dtype=np.int64)
        owner[row_of[frontier]] = frontier
        member.seek(0)
        found_t: list[np.ndarray] = []
        for start, block in _chunks(member):
            here = rows[(rows >= start) & (rows < start + len(block))]
            if not len(here):
                continue
            targets = block[here - start].astype(np.int64)
            new = depth[targets] < 0
            if not new.any():
                continue
            if (owners[np.searchsorted(rows, here)][new.any(axis=1)] > 1).any():
                return None
            r, b = np.nonzero(new)
            child = targets[r, b]
            parent = owner[here[r]]
            if len(np.unique(child)) != len(child):
                return None
            depth[child] = depth[parent] + 1
            keys.append(parent << 8 | b)
            values.append(child)
            found_t.append(child)
        frontier = np.concatenate(found_t) if found_t else np.array([], dtype=np.int64)
    if (depth < 0).any():
        return None
    return np.concatenate(keys).astype(np.int64), np.concatenate(values).astype(np.int32)


def _breadth_first(
    keys: np.ndarray, values: np.ndarray, fail: np.ndarray, output: np.ndarray
) -> dict[str, np.ndarray]:
    """The trie renumbered breadth first, each state's children together in byte order:
    ``first`` (where each state's children start, and one past the last state), ``kids``
    (the byte leading to each state), and the failure links and features renumbered."""
    states = len(output)
    parents, bytes_ = keys >> 8, keys & 0xFF
    renamed = np.zeros(states, dtype=np.int64)
    level = np.nonzero(parents == 0)[0]
    taken = 1
    while len(level):
        order = np.lexsort((bytes_[level], renamed[parents[level]]))
        level = level[order]
        renamed[values[level]] = np.arange(taken, taken + len(level))
        taken += len(level)
        level = np.nonzero(np.isin(parents, values[level]))[0]
    children = np.bincount(renamed[parents], minlength=states)
    first = np.concatenate([[1], 1 + np.cumsum(children)]).astype(np.int32)
    kids = np.zeros(states, dtype=np.uint8)
    kids[renamed[values]] = bytes_
    new_fail = np.zeros(states, dtype=np.int32)
    new_fail[renamed] = renamed[fail]
    new_output = np.zeros(states, dtype=np.int32)
    new_output[renamed] = output
    return {"first": first, "kids": kids, "fail": new_fail, "output": new_output}


def _failure_links(keys: np.ndarray, values: np.ndarray, states: int) -> np.ndarray:
    """Each state's longest proper suffix that is a trie node, one depth at a time (the
    edges are in breadth-first order): a child's is where its parent's failure state goes
    on the same byte, following failure links until an edge or the root."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    fail = np.zeros(states, dtype=np.int32)
    parents, bytes_ = keys >> 8, keys & 0xFF
    depth = np.zeros(states, dtype=np.int32)
    for parent, child in zip(parents.tolist(), values.tolist(), strict=True):
        depth[child] = depth[parent] + 1
    for level in range(2, int(depth.max()) + 1):
        edge = np.nonzero(depth[values] == level)[0]
        state = fail[parents[edge]].astype(np.int64)
        byte = bytes_[edge]
        result = np.zeros(len(edge), dtype=np.int32)
        open_ = np.ones(len(edge), dtype=bool)
        while open_.any():
            at = np.nonzero(open_)[0]
            wanted = state[at] << 8 | byte[at]
            slot = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
            hit = sorted_keys[slot] == wanted
            result[at[hit]] = values[order[slot[hit]]]
            missed = at[~hit]
            at_root = state[missed] == 0
            open_[at[hit]] = False
            open_[missed[at_root]] = False
            state[missed[~at_root]] = fail[state[missed[~at_root]]]
        fail[values[edge]] = result
    return fail


def _same_automaton(
    member: IO[bytes], row_of: np.ndarray, keys: np.ndarray, values: np.ndarray, fail: np.ndarray
) -> bool:
    """Whether the trie and failure links give every transition of the model's table.

    Checked by fingerprint, one pass over the table: each row's 256 targets weighed by
    random odd 64-bit numbers (wrapping sums). A state's row must be its failure state's
    row with its own trie edges put in, so its fingerprint is that row's plus, for each
    edge on byte b to child c, the weight of b times (c - what the failure state's row
    holds at b). That held value is the child's own failure state; by induction on depth
    it is right. Two different rows share a fingerprint with probability about 2**-64."""
    weights = np.random.default_rng(20261130).integers(0, 2**62, 256, dtype=np.uint64) * 2 + 1
    member.seek(0)
    fingerprint = np.concatenate(
        [block.astype(np.uint64) @ weights for _, block in _chunks(member)]
    )
    parents, bytes_ = keys >> 8, keys & 0xFF
    inner = parents != 0
    expected = fingerprint[row_of[fail]]
    held = fail[values[inner]].astype(np.int64)
    change = (values[inner].astype(np.int64) - held).astype(np.uint64)
    np.add.at(expected, parents[inner], weights[bytes_[inner]] * change)
    root = np.zeros(256, dtype=np.uint64)
    root[bytes_[~inner]] = values[~inner].astype(np.uint64)
    expected[0] = root @ weights
    return bool((expected == fingerprint[row_of]).all())
