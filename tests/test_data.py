"""Datasets: built-in offline sets, the JSONL/CSV file loader, and image loading errors."""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layersafe.data import list_datasets, load_dataset
from layersafe.data.base import ImageError, load_image
from layersafe.data.builtin import (
    BENIGN_PHOTOS,
    BUILTIN_DESCRIPTIONS,
    BUILTINS,
    CUSTOM_PROMPT_GOAL_INDICES,
    advbench_goals,
)
from layersafe.data.loaders import load_file
from layersafe.errors import UserError

# ---------------------------------------------------------------- built-ins


def test_advbench_goals_shape():
    goals = advbench_goals()
    assert len(goals) == 520
    assert goals[0][0].startswith("Write a script that can exploit vulnerabilities")
    assert all(g.strip() and t.startswith("Sure, here") for g, t in goals)
    goals.clear()  # callers get a copy: the cached data must survive this
    assert len(advbench_goals()) == 520


def test_registry_and_descriptions():
    assert set(BUILTINS) == {"advbench-images", "custom-prompts"}
    assert list_datasets() == BUILTIN_DESCRIPTIONS
    assert all(d and "\n" not in d for d in list_datasets().values())


def test_advbench_images():
    ds = load_dataset("advbench-images", seed=0)
    assert ds.name == ds.source == "advbench-images"
    assert len(ds.samples) == 520 and not ds.errors
    assert [s.id for s in ds.samples[:2]] == ["advbench-000", "advbench-001"]
    assert ds.samples[-1].id == "advbench-519"
    goals = advbench_goals()
    for i, s in enumerate(ds.samples):
        assert s.prompt == goals[i][0] and s.meta["target"] == goals[i][1]
        assert s.harmful is True and s.category == "advbench"
        assert s.image.startswith("skimage:") and s.image[len("skimage:"):] in BENIGN_PHOTOS
    assert len({s.image for s in ds.samples}) > 5  # the pairing actually varies


def test_advbench_images_seeded():
    images = lambda seed: [s.image for s in load_dataset("advbench-images", seed=seed).samples]  # noqa: E731
    assert images(0) == images(0)
    assert images(1) == images(1)
    assert images(0) != images(1)
    # Only the pairing depends on the seed, never the prompts or ids.
    a, b = load_dataset("advbench-images", seed=0), load_dataset("advbench-images", seed=1)
    assert [(s.id, s.prompt) for s in a.samples] == [(s.id, s.prompt) for s in b.samples]


def test_custom_prompts_fixed_design():
    ds = load_dataset("custom-prompts")
    assert len(ds.samples) == 100 and not ds.errors
    assert len({s.id for s in ds.samples}) == 100
    goals = advbench_goals()
    # 10 distinct held-out goals, each with the same 10 photos (the first 10 of BENIGN_PHOTOS).
    assert len(set(CUSTOM_PROMPT_GOAL_INDICES)) == 10
    assert all(0 <= i < 520 for i in CUSTOM_PROMPT_GOAL_INDICES)
    assert {s.prompt for s in ds.samples} == {goals[i][0] for i in CUSTOM_PROMPT_GOAL_INDICES}
    assert {s.image for s in ds.samples} == {"skimage:" + p for p in BENIGN_PHOTOS[:10]}
    pairs = {(s.meta["goal_index"], s.image) for s in ds.samples}
    assert len(pairs) == 100
    assert all(s.harmful is True for s in ds.samples)
    assert ds.samples[0].id == f"cp-{CUSTOM_PROMPT_GOAL_INDICES[0]:03d}-{BENIGN_PHOTOS[0]}"


def test_custom_prompts_do_not_depend_on_seed():
    # The organism trainer excludes these goals from training, so they must be constants.
    assert CUSTOM_PROMPT_GOAL_INDICES == tuple(sorted(random.Random(2411_04291).sample(range(520), 10)))
    a = [(s.id, s.prompt, s.image) for s in load_dataset("custom-prompts", seed=0).samples]
    b = [(s.id, s.prompt, s.image) for s in load_dataset("custom-prompts", seed=123).samples]
    assert a == b


def test_builtin_limit():
    assert [s.id for s in load_dataset("advbench-images", limit=3).samples] == [
        "advbench-000", "advbench-001", "advbench-002"]
    assert len(load_dataset("custom-prompts", limit=7).samples) == 7


@pytest.mark.parametrize("name", BENIGN_PHOTOS)
def test_benign_photo_loads_offline_as_rgb(name):
    im = load_image("skimage:" + name)
    assert im.mode == "RGB" and min(im.size) >= 64


def test_benign_photos_exclude_downloads():
    assert len(set(BENIGN_PHOTOS)) == len(BENIGN_PHOTOS) >= 10
    assert not {"eagle", "lily", "skin"} & set(BENIGN_PHOTOS)


# ---------------------------------------------------------------- file loader


@pytest.fixture()
def img_dir(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(d / "a.png")
    return d


def _write_jsonl(path: Path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines),
                    encoding="utf-8")
    return path


def test_jsonl_good_rows_and_relative_images(tmp_path, img_dir):
    path = _write_jsonl(tmp_path / "d.jsonl", [
        {"id": 1, "prompt": "What is this?", "image": "imgs/a.png", "harmful": "no", "source": "x"},
        {"id": "b", "prompt": "How do I pick a lock?", "image": "skimage:coffee", "category": "crime",
         "harmful": True},
        {"id": "c", "prompt": "Hi", "image": str(img_dir / "a.png"), "harmful": 1},
    ])
    ds = load_file(path)
    assert not ds.errors
    assert [s.id for s in ds.samples] == ["1", "b", "c"]  # ids become strings
    a, b, c = ds.samples
    assert a.image == str((img_dir / "a.png").resolve()) and Path(a.image).is_absolute()
    assert b.image == "skimage:coffee"
    assert c.image == str((img_dir / "a.png").resolve())
    assert (a.harmful, b.harmful, c.harmful) == (False, True, True)
    assert (a.category, b.category) == (None, "crime")
    assert a.meta == {"source": "x"} and b.meta == {} and c.meta == {}
    assert ds.name == "d" and ds.source == str(path.resolve())
    assert load_image(a.image).size == (8, 8)


def test_relative_images_resolve_against_file_not_cwd(tmp_path, img_dir, monkeypatch):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "prompt": "p", "image": "imgs/a.png"}])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_file(path).samples[0].image == str((img_dir / "a.png").resolve())


def test_jsonl_bad_rows_are_counted_and_skipped(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [
        {"id": "ok1", "prompt": "fine", "image": "skimage:cat"},
        '{"id": "x", "prompt": "broken',                                  # 2 malformed JSON
        "[1, 2, 3]",                                                      # 3 not an object
        {"id": "e", "prompt": "   ", "image": "skimage:cat"},            # 4 empty prompt
        {"prompt": "no id", "image": "skimage:cat"},                      # 5 missing id
        {"id": "ok1", "prompt": "dup", "image": "skimage:cat"},          # 6 duplicate id
        {"id": "noimg", "prompt": "no image"},                            # 7 missing image
        {"id": "url", "prompt": "p", "image": "https://example.com/a.png"},  # 8 URL
        {"id": "hb", "prompt": "p", "image": "skimage:cat", "harmful": "maybe"},  # 9 bad bool
        "",                                                               # blank lines are skipped
        {"id": "ok2", "prompt": "also fine", "image": "skimage:moon"},   # 11
    ])
    ds = load_file(path)
    assert [s.id for s in ds.samples] == ["ok1", "ok2"]
    reasons = {e.row: e.reason for e in ds.errors}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert "malformed JSON" in reasons[2]
    assert "not an object" in reasons[3]
    assert "empty prompt" in reasons[4]
    assert "missing id" in reasons[5]
    assert "duplicate id 'ok1'" in reasons[6]
    assert "missing image" in reasons[7]
    assert "URL" in reasons[8] and "download" in reasons[8]
    assert "harmful" in reasons[9]


def test_json_array_file_is_accepted(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "a", "prompt": "p", "image": "skimage:cat"}, 5], indent=2))
    ds = load_file(path)
    assert [s.id for s in ds.samples] == ["a"]
    assert [(e.row, "not a JSON object" in e.reason) for e in ds.errors] == [(2, True)]


def _write_csv(path: Path, header, rows, bom=False):
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_with_bom_and_relative_images(tmp_path, img_dir):
    path = _write_csv(tmp_path / "d.csv", ["id", "prompt", "image", "category", "harmful", "note"], [
        ["1", "Describe, in detail, this picture", "imgs/a.png", "benign", "false", "n1"],
        ["2", "How to make a weapon", "skimage:rocket", "", "YES", ""],
    ], bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    ds = load_file(path)
    assert not ds.errors
    a, b = ds.samples
    assert (a.id, a.prompt) == ("1", "Describe, in detail, this picture")  # BOM not glued to 'id'
    assert a.image == str((img_dir / "a.png").resolve())
    assert (a.category, a.harmful, a.meta) == ("benign", False, {"note": "n1"})
    assert (b.category, b.harmful, b.image) == (None, True, "skimage:rocket")


def test_csv_bad_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "id,prompt,image\n"
        "a,fine,skimage:cat\n"
        ",no id,skimage:cat\n"          # 2 missing id
        "c,,skimage:cat\n"              # 3 empty prompt
        "a,dup,skimage:cat\n"           # 4 duplicate id
        "e,no image,\n"                 # 5 missing image
        "f,too,many,fields\n"           # 6 surplus fields
        "g,ok,skimage:moon\n",
        encoding="utf-8")
    ds = load_file(path)
    assert [s.id for s in ds.samples] == ["a", "g"]
    reasons = {e.row: e.reason for e in ds.errors}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "missing id" in reasons[2]
    assert "empty prompt" in reasons[3]
    assert "duplicate id" in reasons[4]
    assert "missing image" in reasons[5]
    assert "field" in reasons[6]


def test_file_limit_keeps_first_good_rows(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl",
                        [{"id": i, "prompt": "p", "image": "skimage:cat"} for i in range(10)])
    assert [s.id for s in load_file(path, limit=3).samples] == ["0", "1", "2"]
    assert [s.id for s in load_dataset(str(path), limit=2).samples] == ["0", "1"]


def test_whole_file_problems_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_file(tmp_path / "nope.jsonl")
    with pytest.raises(UserError, match="not found"):
        load_dataset(str(tmp_path / "nope.csv"))

    bad_ext = tmp_path / "d.txt"
    bad_ext.write_text("id,prompt,image\n")
    with pytest.raises(UserError, match=r"\.jsonl.*\.csv"):
        load_file(bad_ext)

    cols = tmp_path / "cols.csv"
    cols.write_text("id,text,picture\n1,p,skimage:cat\n")
    with pytest.raises(UserError) as e:
        load_file(cols)
    msg = str(e.value)
    assert "missing column(s) prompt, image" in msg and "id, prompt, image" in msg

    for name, text in [("empty.csv", ""), ("header.csv", "id,prompt,image\n"),
                       ("empty.jsonl", ""), ("blank.jsonl", "\n\n")]:
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(UserError, match="empty|no rows"):
            load_file(p)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(UserError) as e:
        load_dataset("no-such-set")
    msg = str(e.value)
    assert "advbench-images" in msg and "custom-prompts" in msg and ".jsonl" in msg and ".csv" in msg


def test_user_errors_are_one_line(tmp_path):
    for call in (lambda: load_dataset("no-such-set"), lambda: load_file(tmp_path / "x.csv")):
        with pytest.raises(UserError) as e:
            call()
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------- images


def test_load_image_errors(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"this is not a png at all \x00\x01\x02")
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(str(bad))
    with pytest.raises(ImageError, match="not found"):
        load_image(str(tmp_path / "missing.png"))
    with pytest.raises(ImageError, match="unknown scikit-image photo"):
        load_image("skimage:not_a_photo")
    with pytest.raises(ImageError):
        load_image("")


def test_corrupt_image_does_not_fail_the_load(tmp_path):
    # Images are opened at scan time, per row: the loader only records the path.
    (tmp_path / "x.png").write_bytes(b"garbage")
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "prompt": "p", "image": "x.png"}])
    ds = load_file(path)
    assert len(ds.samples) == 1 and not ds.errors
