"""align fails cleanly and stays resumable (hardening-2): a reward judge that cannot load marks the
run failed (not "running"), and the same command with --resume starts over; a non-finite loss
stops training before the weights change, keeping the last good checkpoint."""

import json

import torch

from layersafe.cli import main
from layersafe.rl import lppo

ARGS = ["--model", "tiny-random-llava", "--data", "advbench-images", "--limit", "4", "--layers", "2", "--batch-size", "2",
        "--mini-batch-size", "2", "--ppo-epochs", "1", "--max-new-tokens", "2", "--no-progress"]


def test_reward_judge_that_cannot_load_marks_the_run_failed_and_resume_starts_over(tmp_path, capsys):
    out = tmp_path / "run"
    # a folder that is there (a missing one is refused before anything runs) but holds no model
    (tmp_path / "no-such-guard").mkdir()
    (tmp_path / "no-such-guard" / "notes.txt").write_text("not a model")
    bad = ["align", *ARGS, "--steps", "2", "--reward", f"llamaguard:{tmp_path / 'no-such-guard'}", "--out", str(out)]
    assert main(bad) == 2  # the judge loads lazily: it fails at the first scoring, after run.json exists
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-guard" in err[0], err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "no-such-guard" in run["error"]
    # a plain rerun is refused (the folder holds a run), --resume with the same settings starts over
    assert main(bad) == 2 and "not empty" in capsys.readouterr().err
    rc = main(bad + ["--resume"])
    assert rc == 2 and "no-such-guard" in capsys.readouterr().err  # same judge, same failure: but it got that far
    # a reward path that is not there at all: refused when the options are read, nothing written
    gone = ["align", *ARGS, "--steps", "2", "--reward", f"llamaguard:{tmp_path / 'gone'}", "--out", str(tmp_path / "o")]
    assert main(gone) == 2 and "does not exist" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_failed_run_resumes_from_step_zero_once_the_cause_is_fixed(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = lppo.LPPOConfig(model="tiny-random-llava", data="advbench-images", limit=4, layers="2", batch_size=2,
                          mini_batch_size=2, ppo_epochs=1, max_new_tokens=2, steps=2, save_every=1, out=str(out))

    def unreachable(self, ro):
        raise OSError("reward service unreachable")

    monkeypatch.setattr(lppo.LPPOTrainer, "score", unreachable)
    try:
        lppo.train(cfg, progress=False, log=lambda m: None)
    except OSError:
        pass
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    monkeypatch.undo()
    cfg.resume = True
    run = lppo.train(cfg, progress=False, log=lambda m: None)
    assert run["status"] == "complete"
    assert [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(["align", *ARGS, "--steps", "1", "--save-every", "1", "--out", str(out)]) == 0
    good = torch.load(out / "checkpoints" / "step-0000001" / "trainable.pt", weights_only=True)
    capsys.readouterr()
    import dataclasses

    import layersafe.rl.ppo as ppo

    real_loss = ppo.policy_loss

    def nan_loss(*a, **k):
        r = real_loss(*a, **k)
        return dataclasses.replace(r, loss=r.loss * float("nan"))

    monkeypatch.setattr(ppo, "policy_loss", nan_loss)
    rc = main(["align", *ARGS, "--steps", "3", "--save-every", "1", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "loss became nan" in err and "Traceback" not in err
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-0000001"
    kept = torch.load(out / "checkpoints" / "step-0000001" / "trainable.pt", weights_only=True)
    assert all(torch.equal(good[k], kept[k]) for k in good)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
