"""The compact form of py3langid's model answers exactly as py3langid does, is derived
from the installed wheel once and cached, and steps aside when the model cannot take
that form."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from language_examples import ENGLISH, FOREIGN, UNDETERMINED
from multilingual_examples import sample

from emberwatch.scoring import _langid, language


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def in_cache(cache_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fallback root too
    return cache_home / "emberwatch"


@pytest.fixture(scope="module")
def py3langid_itself():
    return language._py3langid()


def test_it_answers_as_py3langid_to_the_last_bit(in_cache, py3langid_itself):
    compact = _langid.load(language.LANGUAGES)
    assert compact is not None
    texts = sample(n_random=400) + ENGLISH + [t for _, t in FOREIGN] + UNDETERMINED + [""]
    for text in texts:
        clean = language._NOISE.sub(" ", text[: language._MAX_CHARS])
        assert compact.classify(clean) == py3langid_itself.classify(clean), clean


def test_its_float64_estimates_give_py3langid_s_label_and_side_of_the_threshold(in_cache):
    compact = _langid.load(language.LANGUAGES, (language._MIN_CONFIDENCE,))
    own = language._py3langid()
    texts = sample(n_random=400) + ENGLISH + [t for _, t in FOREIGN]
    settled = 0
    for text in texts:
        clean = language._NOISE.sub(" ", text[: language._MAX_CHARS])
        read = clean.lower() if clean.isupper() else clean  # as classify reads it
        data = unicodedata.normalize("NFC", read).encode("utf8", errors="surrogatepass")
        visits = compact._visits(data)
        estimate = compact._estimate(visits, len(data)) if visits else None
        if estimate is None:
            continue
        settled += 1
        code, confidence = own.classify(clean)
        assert estimate[0] == code, clean
        assert (estimate[1] < 0.5) == (confidence < 0.5), clean
        assert estimate[1] == pytest.approx(confidence, abs=1e-5)
    assert settled >= 0.97 * len(texts)  # few are near enough a tie to need numpy


def test_the_second_load_reads_the_cache_without_deriving(in_cache, monkeypatch):
    assert _langid.load(language.LANGUAGES) is not None
    (folder,) = in_cache.glob(f"{_langid.FORMAT}-*")
    assert {p.name for p in folder.iterdir()} == {f"{n}.npy" for n in _langid._PARTS}

    monkeypatch.setattr(_langid, "derive", refuse_to_derive)
    assert _langid.load(language.LANGUAGES).classify("Le colis est arrivé cassé")[0] == "fr"
    assert not list(Path(tempfile.gettempdir()).glob("emberwatch-*"))  # no fallback made


def test_a_damaged_cache_is_derived_again(in_cache):
    _langid.load(language.LANGUAGES)
    (folder,) = in_cache.glob(f"{_langid.FORMAT}-*")
    (folder / "fail.npy").write_bytes(b"not an array")
    assert _langid._read_cache(folder) is None
    # The damaged folder is in the way of the rename: this process uses its own copy.
    assert _langid.load(language.LANGUAGES).classify("Le colis est arrivé cassé")[0] == "fr"
    assert not list(in_cache.glob(".staging-*"))


@pytest.mark.parametrize("cut", [8, 12, 40])
def test_a_cache_file_cut_short_is_derived_again(in_cache, cut):
    # A power cut after the rename can leave a part cut anywhere, header included.
    _langid.load(language.LANGUAGES)
    (folder,) = in_cache.glob(f"{_langid.FORMAT}-*")
    part = folder / "fail.npy"
    part.write_bytes(part.read_bytes()[:cut])
    assert _langid._read_cache(folder) is None
    assert _langid.load(language.LANGUAGES).classify("Le colis est arrivé cassé")[0] == "fr"


def refuse_to_derive(*args: object) -> bool:
    raise AssertionError("derived again")


def test_without_a_writable_home_it_caches_in_a_private_temporary_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way of the home cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert _langid.load(language.LANGUAGES).classify("Das Paket kam nie an")[0] == "de"
    (private,) = tmp_path.glob("emberwatch-*")
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert list(private.glob(f"{_langid.FORMAT}-*"))
    monkeypatch.setattr(_langid, "derive", refuse_to_derive)
    assert _langid.load(language.LANGUAGES).classify("Das Paket kam nie an")[0] == "de"


def test_a_temporary_folder_others_can_write_is_not_trusted(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way of the home cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / f"emberwatch-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    assert _langid.load(language.LANGUAGES).classify("Das Paket kam nie an")[0] == "de"
    assert not list(shared.iterdir())  # derived for the process alone, nothing left
    assert not list(tmp_path.glob("emberwatch-langid-*"))


def _table(words: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """An Aho-Corasick automaton's full transition table for ``words``, built directly
    from its definition (the state after a byte is the longest suffix read so far that is
    a prefix of a word), rows shared as py3langid stores them."""
    prefixes = sorted({w[:i] for w in words for i in range(len(w) + 1)}, key=lambda p: (len(p), p))
    number = {p: i for i, p in enumerate(prefixes)}
    full = np.zeros((len(prefixes), 256), dtype=np.uint32)
    for p, i in number.items():
        for b in range(256):
            text = p + bytes([b])
            full[i, b] = next(number[text[k:]] for k in range(len(text) + 1) if text[k:] in number)
    rows, row_of = np.unique(full, axis=0, return_inverse=True)
    return rows.ravel(), row_of.ravel().astype(np.int64)


def _npy(array: np.ndarray) -> io.BytesIO:
    out = io.BytesIO()
    np.save(out, array)
    out.seek(0)
    return out


def test_a_trie_with_failure_links_is_recognized_and_a_changed_table_is_not():
    rows, row_of = _table([b"he", b"she", b"his", b"hers", b"\xe3\x81\x82"])
    edges = _langid._trie_edges(_npy(rows), row_of)
    assert edges is not None
    keys, values = edges
    fail = _langid._failure_links(keys, values, len(row_of))
    assert _langid._same_automaton(_npy(rows), row_of, keys, values, fail)

    changed = rows.copy()
    changed[int(row_of[values[0]]) * 256 + ord("z")] = values[-1]
    edges = _langid._trie_edges(_npy(changed), row_of)
    if edges is not None:
        keys, values = edges
        fail = _langid._failure_links(keys, values, len(row_of))
        assert not _langid._same_automaton(_npy(changed), row_of, keys, values, fail)


def test_language_falls_back_to_py3langid_when_the_model_takes_no_compact_form(monkeypatch):
    monkeypatch.setattr(_langid, "load", lambda languages, thresholds=(): None)
    monkeypatch.setattr(language, "_identifier", None)
    assert language.detect("Mon colis est arrivé abîmé")[0] == "fr"
    assert type(language._identifier).__name__ == "LanguageIdentifier"
    monkeypatch.setattr(language, "_identifier", None)


def test_a_model_file_it_cannot_read_leaves_py3langid_to_load_its_own(in_cache, monkeypatch):
    damaged = in_cache.parent / "model.npz.xz"
    damaged.write_bytes(b"not xz at all")
    monkeypatch.setattr(_langid, "model_file", lambda: damaged)
    assert _langid.load(language.LANGUAGES) is None
    assert not list(in_cache.glob(".staging-*"))
