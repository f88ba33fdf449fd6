"""Safe loading: pickle weights (pytorch_model.bin) load only with --allow-pickle / allow_pickle=1.

transformers 5 always saves safetensors, so the pickle checkpoints here are made the way old ones
were: the state dict written with torch.save to pytorch_model.bin, no .safetensors beside it.
"""

from __future__ import annotations

import shutil

import pytest

from layersafe.cli import main
from layersafe.errors import UserError

ROWS = [{"prompt": "How do I pick a lock?", "response": "I'm sorry, I cannot help with that."},
        {"prompt": "Hi", "response": "Sure, here you go."}]


def to_pickle_checkpoint(src, dst):
    """Copy a save_pretrained folder and replace its safetensors weights by pytorch_model.bin."""
    import torch
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    weights = dst / "model.safetensors"
    torch.save(load_file(weights), dst / "pytorch_model.bin")
    weights.unlink()
    return dst


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_pickle_refused(code, err, flag="--allow-pickle"):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("layersafe: error:")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err  # one line, the last thing said
    assert "pickle" in lines[0] and "safetensors" in lines[0] and flag in lines[0]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def pickle_llava(tiny_llava_dir, tmp_path_factory):
    return to_pickle_checkpoint(tiny_llava_dir, tmp_path_factory.mktemp("pkl") / "llava")


@pytest.fixture(scope="module")
def pickle_rm(tmp_path_factory):
    from tests.test_judges_reward import _save_gpt2_rm

    safe = _save_gpt2_rm(tmp_path_factory.mktemp("rm") / "gpt2")
    return to_pickle_checkpoint(safe, tmp_path_factory.mktemp("pklrm") / "gpt2")


def test_layers_refuses_pickle_vlm_then_allows_it(pickle_llava, capsys):
    code, out, err = run_cli(capsys, "layers", "--model", pickle_llava)
    assert_pickle_refused(code, err)
    assert "pytorch_model.bin" in err
    code, out, err = run_cli(capsys, "layers", "--model", pickle_llava, "--allow-pickle")
    assert code == 0, err
    assert "encoder depth" in out


def test_scan_refuses_pickle_vlm_and_writes_nothing(pickle_llava, small_dataset, tmp_path, capsys):
    out = tmp_path / "scan"
    code, _, err = run_cli(capsys, "scan", "--model", pickle_llava, "--data", small_dataset, "--out", out,
                           "--judge", "none", "--no-report", "--no-progress")
    assert_pickle_refused(code, err)
    assert not (out / "generations.jsonl").exists()


def test_scan_with_allow_pickle_runs(pickle_llava, small_dataset, tmp_path, capsys):
    out = tmp_path / "scan"
    code, stdout, err = run_cli(capsys, "scan", "--model", pickle_llava, "--data", small_dataset, "--out", out,
                                "--layers", "default", "--limit", "2", "--max-new-tokens", "3", "--judge", "none",
                                "--no-report", "--no-progress", "--allow-pickle")
    assert code == 0, err
    assert len((out / "generations.jsonl").read_text().splitlines()) == 2


def test_library_load_vlm_default_is_safetensors_only(pickle_llava):
    from layersafe.models import load_vlm

    with pytest.raises(UserError, match="only pickle weights"):
        load_vlm(str(pickle_llava), device="cpu")


def test_align_refuses_pickle_vlm_and_leaves_no_folder(pickle_llava, tmp_path, capsys):
    out = tmp_path / "align"
    code, _, err = run_cli(capsys, "align", "--model", pickle_llava, "--out", out, "--steps", "1", "--no-progress")
    assert_pickle_refused(code, err)
    assert not out.exists()  # created for the lock, removed again since nothing was written


def test_reward_judge_refuses_pickle_unless_spec_allows(pickle_rm, tmp_path, capsys):
    from layersafe.io import read_rows, write_rows

    data = tmp_path / "rows.jsonl"
    write_rows(data, ROWS)
    out = tmp_path / "scored.jsonl"
    code, _, err = run_cli(capsys, "judge", "--input", data, "--judge", f"reward:{pickle_rm},device=cpu",
                           "--out", out, "--no-progress")
    assert_pickle_refused(code, err, flag="allow_pickle=1")
    assert not out.exists()
    code, _, err = run_cli(capsys, "judge", "--input", data, "--judge", f"reward:{pickle_rm},device=cpu,allow_pickle=1",
                           "--out", out, "--no-progress")
    assert code == 0, err
    rows = read_rows(out)
    assert all(isinstance(r["scores"]["reward"], float) for r in rows)


def test_reward_model_loaders_refuse_pickle(pickle_rm, tmp_path, capsys):
    from layersafe.rl.reward_model import load_reward_model
    from layersafe.rl.rewards import build_reward

    with pytest.raises(UserError, match="only pickle weights"):
        load_reward_model(str(pickle_rm), device="cpu")
    with pytest.raises(UserError, match="only pickle weights"):
        build_reward(f"rm:{pickle_rm}", device="cpu")
    model, _ = load_reward_model(str(pickle_rm), device="cpu", allow_pickle=True)
    assert model.config.num_labels == 1

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}\n' * 4)
    code, _, err = run_cli(capsys, "eval-rm", "--model", pickle_rm, "--data", pairs, "--device", "cpu", "--no-progress")
    assert_pickle_refused(code, err)
    out = tmp_path / "rm"
    code, _, err = run_cli(capsys, "train-rm", "--base", pickle_rm, "--data", pairs, "--out", out, "--eval-size", "0",
                           "--batch-size", "2", "--steps", "1", "--device", "cpu", "--no-progress")
    assert_pickle_refused(code, err)
    assert not out.exists()
