"""The bad-input matrix: every case ends with exit code 2, one `layersafe: error:` line naming the
problem, no traceback, and nothing already written lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from layersafe.cli import main

SCAN = ["scan", "--judge", "none", "--no-report", "--no-progress", "--max-new-tokens", "2"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_llava_dir):
    """Folder of broken inputs: models that are not VLMs, files that are not datasets."""
    import transformers as tf

    from layersafe.models.tiny import build_tokenizer

    d = tmp_path_factory.mktemp("bad")
    llama = tf.LlamaConfig(vocab_size=700, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=2)
    tf.LlamaForCausalLM(llama).save_pretrained(d / "textonly")
    build_tokenizer().save_pretrained(d / "textonly")
    llama3 = tf.LlamaConfig(**{**llama.to_dict(), "num_labels": 3})
    tf.LlamaForSequenceClassification(llama3).save_pretrained(d / "threelabels")
    build_tokenizer().save_pretrained(d / "threelabels")
    vit = tf.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                       image_size=32, patch_size=16)
    tf.ViTModel(vit).save_pretrained(d / "vit")
    (d / "noconfig").mkdir()
    (d / "noconfig" / "model.safetensors").write_bytes(b"")
    (d / "noweights").mkdir()  # a config and a tokenizer, no weights file
    for f in tiny_llava_dir.iterdir():
        if f.suffix in (".json", ".jinja"):
            (d / "noweights" / f.name).write_bytes(f.read_bytes())
    files = {
        "empty.jsonl": b"", "blank.jsonl": b"\n  \n\n", "empty.csv": b"",
        "malformed.jsonl": b'{"id": "a", "prompt": "hi", "image": \n[1, 2]\n',
        "wrongcols.jsonl": b'{"question": "hi", "picture": "skimage:coffee"}\n',
        "wrongcols.csv": b"question,picture\nhi,skimage:coffee\n",
        "binary.jsonl": b"\xff\xfe\x00\x81\x00garbage\n", "binary.csv": b"\xff\xfeid,prompt,image\n\x81\n",
        "data.txt": b"id prompt image\n",
        "good.jsonl": b'{"id": "a", "prompt": "hi", "image": "skimage:coffee"}\n',
        "rows.jsonl": b'{"id": "a", "prompt": "hi", "response": "I cannot help with that."}\n',
        "noresponse.jsonl": b'{"id": "a", "prompt": "hi"}\n',
        "pairs.jsonl": b'{"prompt": "hi", "chosen": "Hello.", "rejected": "Go away."}\n' * 2,
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def run(capsys, argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.err


def assert_clear_error(code, err, needles):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("layersafe: error:")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err  # one error line, said last
    low = lines[0].lower()
    assert any(n.lower() in low for n in needles), lines[0]


def scan(data="good.jsonl", *extra):
    """argv builder: scan the tiny model over ``data`` from the bad-input folder."""
    return lambda b, m, o: SCAN + ["--model", m, "--data", b / data, "--out", o, *extra]


def judge(spec, data="rows.jsonl", *extra):
    """argv builder: judge ``data`` with ``spec`` (``{b}`` = the bad-input folder)."""
    return lambda b, m, o: ["judge", "--input", b / data, "--judge", spec.format(b=b), "--out", o / "s.jsonl",
                            "--no-progress", *extra]


# (case id, argv builder (bad folder, tiny model, out folder), any of these words in the message)
CASES = [
    ("missing model path", lambda b, m, o: ["layers", "--model", b / "no-such-model"], ["not found"]),
    ("missing model for scan", lambda b, m, o: SCAN + ["--model", "./no/such/model", "--data", b / "good.jsonl",
                                                       "--out", o], ["not found"]),
    ("no config.json", lambda b, m, o: ["layers", "--model", b / "noconfig"], ["config.json"]),
    ("no weights file", lambda b, m, o: ["scan", "--model", b / "noweights", "--data", b / "good.jsonl", "--out", o,
                                         "--no-progress"], ["holds no weights file"]),
    ("text-only model", lambda b, m, o: ["layers", "--model", b / "textonly"], ["text-only"]),
    ("text-only model for align", lambda b, m, o: ["align", "--model", b / "textonly", "--out", o, "--no-progress"],
     ["text-only"]),
    ("unsupported architecture", lambda b, m, o: ["layers", "--model", b / "vit"], ["unsupported architecture"]),
    ("layer out of range", scan("good.jsonl", "--layers", "99"), ["out of range"]),
    ("negative layer out of range", scan("good.jsonl", "--layers", "-40"), ["out of range"]),
    ("malformed layer spec", scan("good.jsonl", "--layers", "a-b"), ["bad layer spec"]),
    ("backwards layer range", scan("good.jsonl", "--layers", "5-2"), ["backwards"]),
    ("missing data file", scan("nope.jsonl"), ["not found"]),
    ("empty jsonl", scan("empty.jsonl"), ["no rows"]),
    ("blank jsonl", scan("blank.jsonl"), ["no rows"]),
    ("empty csv", scan("empty.csv"), ["empty"]),
    ("malformed jsonl", scan("malformed.jsonl"), ["none of its 2 rows is usable"]),
    ("wrong columns jsonl", scan("wrongcols.jsonl"), ["missing id, prompt, image"]),
    ("wrong columns csv", scan("wrongcols.csv"), ["missing column"]),
    ("binary jsonl", scan("binary.jsonl"), ["not UTF-8"]),
    ("binary csv", scan("binary.csv"), ["not UTF-8"]),
    ("unknown data format", scan("data.txt"), ["unsupported dataset format"]),
    ("negative batch size", scan("good.jsonl", "--batch-size", "-1"), ["--batch-size"]),
    ("max-new-tokens 0", scan("good.jsonl", "--max-new-tokens", "0"), ["--max-new-tokens"]),
    ("bad dtype", scan("good.jsonl", "--dtype", "float8"), ["--dtype"]),
    ("bad device", scan("good.jsonl", "--device", "tpu"), ["--device"]),
    ("align negative batch size", lambda b, m, o: ["align", "--model", m, "--batch-size", "-1", "--out", o],
     ["--batch-size"]),
    ("train-rm empty data", lambda b, m, o: ["train-rm", "--base", b / "textonly", "--data", b / "empty.jsonl",
                                             "--out", o, "--no-progress"], ["no rows"]),
    ("train-rm missing base", lambda b, m, o: ["train-rm", "--base", b / "nope", "--data", b / "pairs.jsonl",
                                               "--batch-size", "1", "--eval-size", "0", "--out", o, "--no-progress"],
     ["not found"]),
    ("train-rm wrong columns", lambda b, m, o: ["train-rm", "--base", b / "textonly", "--data", b / "rows.jsonl",
                                                "--out", o, "--no-progress"], ["preference data needs"]),
    ("eval-rm on a folder that is no model", lambda b, m, o: ["eval-rm", "--model", b / "noconfig", "--data",
                                                            b / "pairs.jsonl", "--device", "cpu", "--no-progress"],
     ["has no config.json"]),
    ("reward judge on a folder that is no model", judge("reward:{b}/noconfig,device=cpu"), ["has no config.json"]),
    ("scan with a judge path that is not there",  # found before the model loads, not after the scan
     lambda b, m, o: ["scan", "--model", m, "--data", b / "good.jsonl", "--out", o, "--judge", "reward:./no/such/rm",
                      "--no-progress", "--max-new-tokens", "2"], ["does not exist"]),
    ("eval-rm on a causal LM", lambda b, m, o: ["eval-rm", "--model", b / "textonly", "--data", b / "rows.jsonl",
                                                "--device", "cpu", "--no-progress"], ["not a sequence classifier"]),
    ("judge batch size 0", judge("refusal", "rows.jsonl", "--batch-size", "0"), ["--batch-size"]),
    ("judge input missing", judge("refusal", "nope.jsonl"), ["not found"]),
    ("judge input empty", judge("refusal", "empty.jsonl"), ["no rows"]),
    ("judge input malformed", judge("refusal", "malformed.jsonl"), ["not valid JSON"]),
    ("judge input binary csv", judge("refusal", "binary.csv"), ["not UTF-8"]),
    ("judge input wrong columns", judge("refusal", "noresponse.jsonl"), ["lack column"]),
    ("judge unknown", judge("nope"), ["unknown judge"]),
    ("judge model missing", judge("reward:{b}/nope"), ["no such folder"]),
    ("reward judge is a causal LM", judge("reward:{b}/textonly,device=cpu"), ["not a sequence classifier"]),
    ("reward judge with 3 labels", judge("reward:{b}/threelabels,device=cpu"), ["3 outputs"]),
    ("toxicity judge is a causal LM", judge("toxicity:{b}/textonly,device=cpu"), ["not a sequence classifier"]),
    ("judge option not a number", judge("toxicity,batch_size=many"), ["not a valid int"]),
    ("judge --out wrong type", lambda b, m, o: ["judge", "--input", b / "rows.jsonl", "--judge", "refusal",
                                                "--out", o / "s.txt"], [".jsonl or .csv"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case, bad, tiny_llava_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, build, needles = case
    out = tmp_path / "out"
    code, err = run(capsys, build(bad, tiny_llava_dir, out))
    assert_clear_error(code, err, needles)
    # a refused run leaves no output behind (nor an empty folder it created)
    assert not out.exists() or not any(out.iterdir())


def test_cuda_requested_without_gpu(bad, tiny_llava_dir, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on machines that have one
    code, err = run(capsys, SCAN + ["--model", tiny_llava_dir, "--data", bad / "good.jsonl", "--device", "cuda",
                                    "--out", tmp_path / "o"])
    assert_clear_error(code, err, ["no CUDA GPU"])
    code, err = run(capsys, ["judge", "--input", bad / "rows.jsonl", "--judge",
                             f"reward:{bad / 'threelabels'},device=cuda", "--out", tmp_path / "s.jsonl"])
    assert_clear_error(code, err, ["no CUDA GPU"])


def test_missing_perspective_key(bad, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    code, err = run(capsys, ["judge", "--input", bad / "rows.jsonl", "--judge", "perspective",
                             "--out", tmp_path / "s.jsonl"])
    assert_clear_error(code, err, ["PERSPECTIVE_API_KEY"])
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "   ")  # blank is missing too
    code, err = run(capsys, ["judge", "--input", bad / "rows.jsonl", "--judge", "perspective",
                             "--out", tmp_path / "s.jsonl"])
    assert_clear_error(code, err, ["PERSPECTIVE_API_KEY"])


def test_bad_reruns_never_touch_finished_work(bad, tiny_llava_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run(capsys, SCAN + ["--model", tiny_llava_dir, "--data", bad / "good.jsonl", "--layers", "default",
                                    "--out", out])
    assert code == 0, err
    scored = tmp_path / "scored.jsonl"
    assert main(["judge", "--input", str(bad / "rows.jsonl"), "--judge", "refusal", "--out", str(scored)]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in [*out.iterdir(), scored] if p.is_file()}
    reruns = [
        (SCAN + ["--model", tiny_llava_dir, "--data", bad / "good.jsonl", "--out", out], ["not empty"]),
        (SCAN + ["--model", tiny_llava_dir, "--data", bad / "good.jsonl", "--out", out, "--resume",
                 "--layers", "99"], ["out of range"]),
        (SCAN + ["--model", tiny_llava_dir, "--data", bad / "good.jsonl", "--out", out, "--resume",
                 "--dtype", "float8"], ["--dtype", "settings"]),
        (SCAN + ["--model", bad / "textonly", "--data", bad / "good.jsonl", "--out", out, "--resume"],
         ["text-only", "settings"]),
        (SCAN + ["--model", tiny_llava_dir, "--data", bad / "binary.jsonl", "--out", out, "--resume"],
         ["not UTF-8", "settings"]),
        (["judge", "--input", bad / "rows.jsonl", "--judge", "refusal", "--out", scored], ["--force"]),
        (["judge", "--input", bad / "rows.jsonl", "--judge", "nope", "--out", scored, "--force"], ["unknown judge"]),
        (["judge", "--input", bad / "malformed.jsonl", "--judge", "refusal", "--out", scored, "--force"],
         ["not valid JSON"]),
    ]
    for argv, needles in reruns:
        code, err = run(capsys, argv)
        assert_clear_error(code, err, needles)
    after = {p: p.read_bytes() for p in [*out.iterdir(), scored] if p.is_file()}
    assert after == before


def test_real_process_exit_code_and_stderr(bad, tmp_path):
    """The same contract seen from outside: a subprocess, its exit status and its whole stderr."""
    for argv, needle in [(["layers", "--model", str(bad / "textonly")], "text-only"),
                         (["judge", "--input", str(bad / "binary.csv"), "--judge", "refusal",
                           "--out", str(tmp_path / "s.jsonl")], "not UTF-8")]:
        proc = subprocess.run([sys.executable, "-m", "layersafe", *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("layersafe: error:")
        assert needle in proc.stderr


def test_an_image_path_that_is_a_folder_says_so(tmp_path):
    from layersafe.data.base import ImageError, load_image

    with pytest.raises(ImageError, match="image path is a folder, not a file"):
        load_image(str(tmp_path))
    with pytest.raises(ImageError, match="image file not found"):
        load_image(str(tmp_path / "nope.png"))


def test_judging_an_unfinished_scan_says_so(tmp_path):
    """A scan cut off mid-write (last line torn) or not finished (run.json running): the rows there
    are judged and a note says the scan is unfinished and how to finish it; a finished one, none."""
    import json

    from layersafe.evaluate import judge_run

    run = tmp_path / "r"
    run.mkdir()
    rows = [{"sample_id": f"s{i}", "layer": 1, "prompt": "p", "harmful": True, "response": "I cannot help with that.",
             "error": None} for i in range(3)]
    gen = "".join(json.dumps(r) + "\n" for r in rows)
    for text, status, want in [(gen, "complete", None), (gen.rstrip("\n"), "complete", None),  # only its newline lost
                               (gen + '{"sample_id": "s3", "lay', "complete", "cut off"),
                               (gen, "running", "'running'")]:
        (run / "generations.jsonl").write_text(text)
        (run / "run.json").write_text(json.dumps({"status": status}))
        said: list = []
        judge_run(run, ["refusal"], progress=False, log=said.append)
        notes = [m for m in said if "unfinished" in m]
        if want is None:
            assert notes == [], said
        else:
            assert len(notes) == 1 and want in notes[0] and "judging its 3 rows" in notes[0] and "--resume" in notes[0]
        assert len((run / "scores.jsonl").read_text().splitlines()) == 3


def test_judge_paths_that_are_not_there_are_found_before_the_generation(tmp_path):
    from layersafe.errors import UserError
    from layersafe.judges.base import get_judge, require_paths

    rubric = tmp_path / "r.txt"
    rubric.write_text("Grade {prompt} {response}")
    for spec, missing in [("reward:runs/x/rm", "runs/x/rm"), (f"rubric:{rubric},model=./no/grader", "./no/grader"),
                          ("reward:~/no/such/rm", "~/no/such/rm")]:
        judge = get_judge(spec)  # parsing a spec checks no path (paper plans name judges to come)
        with pytest.raises(UserError, match=f"'{missing}' does not exist"):
            require_paths(judge)
    assert require_paths(get_judge("reward:OWNER/NAME")).arg == "OWNER/NAME"  # a hub id is not checked here


def test_judge_none_with_another_judge_is_refused():
    from layersafe.api import scan_judges
    from layersafe.errors import UserError

    assert scan_judges(None) == ["refusal"] and scan_judges("none") == [] and scan_judges(["a", "b"]) == ["a", "b"]
    with pytest.raises(UserError, match="--judge none means no judge; it cannot be given with reward:x"):
        scan_judges(["none", "reward:x"])
    assert scan_judges(["none", "None"]) == []


def test_training_images_any_failure_is_one_line(tmp_path):
    """check_images turns any image failure into the one-line UserError, Pillow's decompression
    bomb (an Exception, not an OSError) included."""
    from types import SimpleNamespace

    from PIL import Image

    from layersafe.data.training import check_images
    from layersafe.errors import UserError

    Image.new("1", (20000, 10000)).save(tmp_path / "huge.png")  # 200 M pixels > Pillow's bomb limit
    rows = [SimpleNamespace(id="ok", image="skimage:coffee"), SimpleNamespace(id="big", image=str(tmp_path / "huge.png"))]
    with pytest.raises(UserError, match=r"--data d: 1 of 2 images cannot be loaded, e.g. row big \("):
        check_images(rows, "--data d")
    check_images(rows[:1], "--data d")  # a good one passes
