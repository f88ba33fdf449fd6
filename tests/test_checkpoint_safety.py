"""Resuming never runs code from a checkpoint folder (issue: hardening-2, code execution on
--resume): RNG state is safetensors + JSON, tensors load with weights_only=True, and a planted
pickle is refused with one line instead of being unpickled."""

import pickle
import random

import numpy as np
import pytest
import torch

from layersafe.errors import UserError
from layersafe.rl import checkpoint as ckpt


def test_rng_state_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = ckpt.rng_state_file(tmp_path, 0)
    ckpt.save_rng_state(path)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.load_rng_state(path)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle


class _Boom:
    def __reduce__(self):  # unpickling this would create a file: proof of code execution
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Boom.target),))


def _plant(path, target):
    _Boom.target = str(target)
    path.write_bytes(pickle.dumps({"python": _Boom()}))


def test_planted_pickle_rng_is_refused_not_run(tmp_path):
    proof = tmp_path / "pwned"
    _plant(tmp_path / "rng-0.pt", proof)  # an old-style (pickle) RNG file
    with pytest.raises(UserError, match="pickle"):
        ckpt.load_rng_state(ckpt.rng_state_file(tmp_path, 0))
    assert not proof.exists()
    # a pickle renamed to the new name is not a safetensors file: refused, not run
    _plant(ckpt.rng_state_file(tmp_path, 0), proof)
    with pytest.raises(UserError, match="not valid"):
        ckpt.load_rng_state(ckpt.rng_state_file(tmp_path, 0))
    assert not proof.exists()


def test_planted_pickle_weights_are_refused_not_run(tmp_path):
    proof = tmp_path / "pwned"
    _plant(tmp_path / "trainable.pt", proof)
    with pytest.raises(UserError, match="not a plain tensor file"):
        ckpt.load_tensors(tmp_path / "trainable.pt")
    assert not proof.exists()


def test_write_checkpoint_publishes_atomically_and_keeps_n(tmp_path):
    for step in (1, 2, 3):
        final = ckpt.write_checkpoint(tmp_path, step, 2, lambda d: (d / "trainer_state.json").write_text("{}"))
        assert final.name == f"step-{step:07d}"
    root = tmp_path / ckpt.CKPT_DIR
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["step-0000002", "step-0000003"]
    assert (root / ckpt.LATEST).read_text().strip() == "step-0000003"
    assert (root / "step-0000003" / "rng-0.safetensors").is_file()
    assert not list(root.glob(".*.tmp"))


def test_align_resume_with_planted_rng_pickle_fails_cleanly(tmp_path):
    """End to end through `align --resume`: a checkpoint whose RNG file was swapped for a pickle."""
    from layersafe.cli import main

    out = tmp_path / "run"
    args = ["align", "--model", "tiny-random-llava", "--data", "advbench-images", "--limit", "4", "--layers", "2",
            "--steps", "2", "--batch-size", "2", "--mini-batch-size", "2", "--ppo-epochs", "1",
            "--max-new-tokens", "2", "--save-every", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    step = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
    proof = tmp_path / "pwned"
    (step / "rng-0.safetensors").unlink()
    _plant(step / "rng-0.pt", proof)
    rc = main(args + ["--resume"])  # the checkpoint is loaded (and refused) before any step runs
    assert rc == 2
    assert not proof.exists()
