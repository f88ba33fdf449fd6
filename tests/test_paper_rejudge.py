"""`layersafe judge RUN_DIR --judge NAME`: a judge's scores added or replaced in a finished run
folder in place (other judges kept, stale details dropped), metrics.csv with one ASR column per
judge, the report rebuilt and naming the judge behind each ASR; bad input keeps every file."""

from __future__ import annotations

import csv
import json

import pytest

from layersafe.cli import main


@pytest.fixture()
def scanned(tmp_path, tiny_llava_dir):
    out = tmp_path / "run"
    assert main(["scan", "--model", str(tiny_llava_dir), "--data", "custom-prompts", "--limit", "3", "--layers",
                 "0,default", "--max-new-tokens", "3", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    return out


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _metrics(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def safe_guard(tmp_path_factory):
    from test_judges_llamaguard import _chain, _save_llama, _tokenizer

    return _save_llama(tmp_path_factory.mktemp("rj") / "lg-safe", _tokenizer(), _chain(["safe"]))


def test_rejudge_in_place_keeps_other_judges_and_replaces_its_own(scanned, safe_guard, capsys):
    before = _rows(scanned / "scores.jsonl")
    assert all("refusal" in r["scores"] for r in before)
    # add gcg-prefix: the refusal judge's scores stay, gcg's sit under their own keys
    assert main(["judge", str(scanned), "--judge", "gcg-prefix", "--no-progress"]) == 0
    assert "judged" in capsys.readouterr().out
    after = _rows(scanned / "scores.jsonl")
    for a, b in zip(before, after):
        assert {k: b["scores"][k] for k in a["scores"]} == a["scores"]
        assert b["scores"]["gcg_prefix_outcome"] in ("refused", "complied", "empty")
    m = _metrics(scanned)
    assert m[0]["asr_source"] == "refusal" and "asr_gcg-prefix" in m[0]
    harmful = [r for r in after if r["layer"] == int(m[0]["layer"])]
    k = sum(r["scores"]["gcg_prefix_outcome"] == "complied" for r in harmful)
    assert float(m[0]["asr_gcg-prefix"]) == pytest.approx(k / len(harmful)) and m[0]["asr_gcg-prefix_n"] == "3"
    # the report was rebuilt and names the judges behind its ASRs
    html = (scanned / "report" / "report.html").read_text()
    assert "ASR by the refusal judge: share of harmful prompts answered" in html and "asr_judge" in html

    # a stale detail of an earlier Llama Guard run (an unparseable verdict), written by the version
    # before judges were keyed by name (unsafe, parse_error, categories), is replaced, not kept
    rows = _rows(scanned / "scores.jsonl")
    for r in rows:
        r["scores"].update(unsafe=None, parse_error=1, llamaguard_raw="garbage", categories=["S1"])
    (scanned / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["judge", str(scanned), "--judge", f"llamaguard:{safe_guard},device=cpu", "--no-progress",
                 "--no-report"]) == 0
    capsys.readouterr()
    for r in _rows(scanned / "scores.jsonl"):
        s = r["scores"]
        assert (s["llamaguard"], s["llamaguard_parse_error"], s["llamaguard_categories"]) == (0, 0, [])
        assert "llamaguard_raw" not in s and not {"unsafe", "parse_error", "categories"} & set(s)
        assert "refusal" in s and "gcg_prefix" in s
    m = _metrics(scanned)
    assert float(m[0]["asr_llamaguard"]) == 0.0 and m[0]["llamaguard_parse_errors"] == "0"


def test_rejudge_bad_input_keeps_files(scanned, tmp_path, capsys):
    scores = (scanned / "scores.jsonl").read_bytes()
    metrics = (scanned / "metrics.csv").read_bytes()
    # a judge that cannot load: one line, exit 2, nothing changed
    assert main(["judge", str(scanned), "--judge", f"llamaguard:{tmp_path / 'missing'}", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot load" in err
    assert (scanned / "scores.jsonl").read_bytes() == scores and (scanned / "metrics.csv").read_bytes() == metrics
    # both forms at once, neither form, an unknown judge, a folder that is no run
    assert main(["judge", str(scanned), "--input", "x.jsonl", "--judge", "refusal"]) == 2
    assert "either RUN_DIR" in capsys.readouterr().err
    assert main(["judge", "--judge", "refusal"]) == 2
    assert "give a run folder" in capsys.readouterr().err
    assert main(["judge", str(scanned), "--judge", "nosuch"]) == 2
    assert "unknown judge 'nosuch'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["judge", str(tmp_path / "empty"), "--judge", "refusal"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (scanned / "scores.jsonl").read_bytes() == scores
