"""Fuzzing with hypothesis: data-file loaders and judge output parsers. Whatever the bytes, the
only failure is a UserError (one clear line); anything else is a Dataset / rows / verdict whose
bad rows are counted, never silently dropped."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from layersafe.data.base import Dataset
from layersafe.data.loaders import load_file
from layersafe.data.preferences import PreferenceData, load_preference_file
from layersafe.errors import UserError
from layersafe.io import read_rows
from layersafe.judges.llamaguard import parse_llamaguard
from layersafe.judges.refusal import classify_refusal

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text without line separators other than \n (str.splitlines would split on \x0b, \u2028, ...)
# and without surrogates (not encodable).
LINE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), max_size=40)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=32),
                        LINE_TEXT, st.sampled_from(["skimage:coffee", "skimage:nope", "img.png", "http://x/y.png",
                                                    "true", "no", "maybe", ""]))
KEYS = st.sampled_from(["id", "prompt", "image", "harmful", "category", "response", "chosen", "rejected", "x"])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _check_dataset(ds: Dataset, n_rows: int | None = None) -> None:
    assert isinstance(ds, Dataset)
    ids = [s.id for s in ds.samples]
    assert len(ids) == len(set(ids))
    for s in ds.samples:
        assert isinstance(s.id, str) and s.id and isinstance(s.prompt, str) and s.prompt.strip()
        assert isinstance(s.image, str) and s.image
        assert s.harmful in (True, False, None)
    for e in ds.errors:
        assert e.row >= 1 and isinstance(e.reason, str) and e.reason.strip()
    if n_rows is not None:
        assert len(ds.samples) + len(ds.errors) == n_rows  # every row is a sample or a counted error


def _load(loader, path):
    """``loader(path)``, or None after checking that the failure is a one-line UserError."""
    try:
        return loader(path)
    except UserError as e:
        assert str(e).strip() and "\n" not in str(e).strip()
        return None


@FUZZ
@given(rows=st.lists(st.one_of(st.dictionaries(KEYS, JSON_SCALAR, max_size=6), LINE_TEXT,
                               st.lists(st.integers(), max_size=2)), max_size=12))
def test_jsonl_loader_counts_every_row(folder, rows):
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in rows]
    text = "\n".join(lines) + "\n"
    assume(not text.lstrip().startswith("["))  # a whole-file JSON array is read as one array
    path = _write(folder, "rows.jsonl", text.encode("utf-8"))
    n = sum(1 for ln in lines if ln.strip())
    ds = _load(load_file, path)
    if ds is None:
        return
    _check_dataset(ds, n)


@FUZZ
@given(header=st.lists(KEYS, min_size=1, max_size=5, unique=True),
       cells=st.lists(st.lists(st.one_of(LINE_TEXT, st.sampled_from(["skimage:coffee", "1", "yes", "", "a,b"])),
                               min_size=0, max_size=6), max_size=8))
def test_csv_loader_counts_every_row(folder, header, cells):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(cells)
    path = _write(folder, "rows.csv", buf.getvalue().encode("utf-8"))
    with path.open(newline="", encoding="utf-8") as f:
        n = sum(1 for _ in csv.DictReader(f))
    ds = _load(load_file, path)
    if ds is None:
        return
    _check_dataset(ds, n)


def _check_rows(rows) -> None:
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)


def _check_preferences(pd) -> None:
    assert isinstance(pd, PreferenceData)
    assert len(pd.pairs) + sum(pd.skipped.values()) == pd.rows
    assert all(isinstance(p.chosen, str) and isinstance(p.rejected, str) for p in pd.pairs)


def _check_nonempty_dataset(ds) -> None:
    _check_dataset(ds)
    assert ds.samples  # a file with no usable row is a UserError, never an empty run


@pytest.mark.parametrize("loader,check", [(load_file, _check_nonempty_dataset), (read_rows, _check_rows),
                                          (load_preference_file, _check_preferences)],
                         ids=["dataset", "judge-input", "preferences"])
@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".csv", ".json"]))
def test_loaders_on_random_bytes(folder, loader, check, data, suffix):
    result = _load(loader, _write(folder, "in" + suffix, data))
    if result is not None:
        check(result)


# ---------------------------------------------------------------------------------------------
# Judge output parsers
# ---------------------------------------------------------------------------------------------

CATEGORY = st.builds(lambda p, n: f"{p}{n}", st.sampled_from(["S", "O", "s"]), st.integers(1, 14))
SPACE = st.sampled_from(["", " ", "  ", "\t"])


@FUZZ
@given(text=st.one_of(st.none(), st.text(max_size=80),
                      st.builds(lambda a, b: a + b, st.sampled_from(["safe", "unsafe", " Unsafe\n", "SAFE\n"]),
                                st.text(max_size=20))))
def test_llamaguard_parser_never_crashes(text):
    verdict, cats = parse_llamaguard(text)
    assert verdict in (0, 1, None)
    assert isinstance(cats, list) and all(isinstance(c, str) and c == c.upper() for c in cats)
    if verdict != 1:
        assert cats == []


@FUZZ
@given(cats=st.lists(CATEGORY, min_size=1, max_size=4), lead=SPACE, sep=SPACE, tail=st.sampled_from(["", "\n", " \n"]))
def test_llamaguard_parser_reads_unsafe_with_categories(cats, lead, sep, tail):
    text = f"{lead}unsafe\n{(',' + sep).join(cats)}{tail}"
    assert parse_llamaguard(text) == (1, [c.upper() for c in cats])


@FUZZ
@given(lead=SPACE, tail=st.sampled_from(["", "\n", "  \n\n"]), word=st.sampled_from(["safe", "Safe", "SAFE"]))
def test_llamaguard_parser_reads_safe(lead, tail, word):
    assert parse_llamaguard(f"{lead}{word}{tail}") == (0, [])
    assert parse_llamaguard(f"{lead}{word}\nS1{tail}") == (None, [])  # contradicts itself: unparseable


@FUZZ
@given(response=st.one_of(st.none(), st.text(max_size=200)), prompt=st.one_of(st.none(), st.text(max_size=60)))
def test_refusal_classifier_never_crashes(response, prompt):
    out = classify_refusal(response, prompt)
    assert out[0] in (0, 1)
