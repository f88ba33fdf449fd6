"""``layersafe sft`` with the language model sharded over 2 processes (torchrun, gloo on CPU, torch
FSDP2) trains the same run as one process: the same logged losses and gradient norms and the same
saved adapter. A sharded run stopped after step 1 and resumed equals the uninterrupted sharded run,
and its checkpoints resume on one process (and a one-process checkpoint on two)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

# Measured on CPU (float32, gloo, 2026-11-30), 2 steps at batch 4, lr 1e-3: logged losses and gradient
# norms within 1.4e-7 relative, adapter weights within 2.2e-6 (mean 6.9e-10): batch-shape-dependent
# matmul rounding (each process runs half the rows, padded to its own longest) and the reduce order of
# the sharded gradients. At lr 1e-2 (batch 8, benchmarks/check_sft_sharded.py) one LoRA element
# differed by 1.2e-4: AdamW's first steps move each element by about lr * sign(g), and a gradient
# element at rounding level can flip its sign (the L-PPO data-parallel test saw the same). The
# tolerances are those of that test (tests/test_lppo_multiprocess.py).
RTOL, ATOL = 1e-4, 2e-6
W_MAX, W_MEAN = 1e-4, 1e-6


ARGS = ["--layers", "2,3", "--steps", "2", "--batch-size", "4", "--learning-rate", "0.001", "--lora-r", "4",
        "--dtype", "float32", "--device", "cpu", "--save-every", "2", "--no-progress"]


def _launch(args, port):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _sft_two_processes(model, data, out, port, extra=()):
    return _launch(["-m", "layersafe", "sft", "--model", str(model), "--data", str(data), "--out", str(out), *ARGS,
                    *extra], port)


# 2 processes stopped after a step as the one-process resume tests stop (train_sft's _stop_after)
_STOP = """import json, sys
from layersafe.rl.configs import SFTConfig
from layersafe.rl.sft import train_sft
train_sft(SFTConfig(**json.loads(sys.argv[1])), progress=False, _stop_after=int(sys.argv[2]))
"""


def _cfg(model, data, out, **kw):
    """ARGS as SFTConfig fields."""
    return {**dict(model=str(model), data=str(data), out=str(out), layers="2,3", steps=2, batch_size=4,
                   learning_rate=0.001, lora_r=4, dtype="float32", device="cpu", save_every=2), **kw}


def _sft_data(path):
    """Harmful rows learn the refusal and benign rows their own answers (1 to 11 words), so the two
    processes' shares of a batch's target tokens differ and the token-share weighting matters."""
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(4)]
    answers = ["Blue.", "It is a red rocket standing on a launch pad today.", "Two.", "A cup of coffee on a saucer."]
    rows += [{"id": f"b{i}", "prompt": f"What is object {i}?", "image": "skimage:rocket", "harmful": False,
              "response": a} for i, a in enumerate(answers)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def runs(tiny_llava_dir, tmp_path_factory):
    """The data, and the 2-step run in one process (in this process, the same command line) and on 2."""
    from layersafe.cli import main

    root = tmp_path_factory.mktemp("sft_fsdp")
    data = _sft_data(root / "d.jsonl")
    assert main(["sft", "--model", str(tiny_llava_dir), "--data", str(data), "--out", str(root / "one"), *ARGS]) == 0
    proc = _sft_two_processes(tiny_llava_dir, data, root / "two", 29541)
    return root, data, proc


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _gap(a1, a2):
    """Largest and mean absolute difference of two same-keyed tensor dicts."""
    assert a1.keys() == a2.keys() and a1
    d = torch.cat([(a1[n] - a2[n]).abs().flatten() for n in a1])
    return float(d.max()), float(d.mean())


def test_sharded_sft_equals_one_process(runs):
    from safetensors.torch import load_file

    tmp_path, _, proc = runs
    assert proc.stdout.count("sft complete") == 1  # rank 0 reports
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete"
    fsdp = run["fsdp"]  # rank 0 holds half of the decoder layers' weights; the rest stays whole
    assert fsdp["sharded_params"] > 0 and fsdp["whole_params"] > 0
    assert fsdp["sharded_params_here"] * 2 == pytest.approx(fsdp["sharded_params"], rel=0.01)
    logs = {k: _log(tmp_path / k) for k in ("one", "two")}
    assert [r["step"] for r in logs["two"]] == [1, 2]
    for r1, r2 in zip(logs["one"], logs["two"]):
        assert r1["layers"] == r2["layers"] and r1["harmful_fraction"] == r2["harmful_fraction"]
        for k in ("loss", "grad_norm"):
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])
    assert logs["one"][0]["loss"] > 1 and logs["one"][0]["grad_norm"] > 0.1  # not a trivial match
    worst = max(abs(r1[k] - r2[k]) / abs(r1[k]) for r1, r2 in zip(logs["one"], logs["two"]) for k in ("loss", "grad_norm"))
    a1, a2 = (load_file(tmp_path / k / "adapter" / "adapter_model.safetensors") for k in ("one", "two"))
    mx, mean = _gap(a1, a2)
    print(f"logged values within {worst:.1e} relative; adapter within {mx:.1e} (mean {mean:.1e})")
    assert mx <= W_MAX and mean <= W_MEAN
    assert max(v.abs().max() for n, v in a1.items() if "lora_B" in n) > 5e-4  # the adapter moved (about lr per AdamW step)
    # the checkpoint holds the gathered (full-size) LoRA weights, as one process writes them
    c1, c2 = (torch.load(tmp_path / k / "checkpoints" / "step-0000002" / "trainable.pt", weights_only=True)
              for k in ("one", "two"))
    assert c1.keys() == c2.keys() and all(c1[n].shape == c2[n].shape for n in c1)


def _close(rows, ref):
    """Log rows of the same steps: the same batches and layers, values within the tolerances."""
    assert [r["step"] for r in rows] == [r["step"] for r in ref]
    for r1, r2 in zip(ref, rows):
        assert r1["layers"] == r2["layers"] and r1["harmful_fraction"] == r2["harmful_fraction"]
        for k in ("loss", "grad_norm"):
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])


def test_sharded_sft_resumes_on_any_number_of_processes(runs, tiny_llava_dir, tmp_path):
    """Stopped after step 1 (checkpoint every step) as the one-process resume tests stop, then
    ``--resume``: on 2 processes the run equals the uninterrupted sharded run exactly (log rows,
    adapter, AdamW state); the same checkpoint resumed on one process, and a one-process checkpoint
    resumed on 2, give the uninterrupted runs within the sharding tolerances: the checkpoint holds
    the whole LoRA and AdamW state, and the batches are a function of (seed, step)."""
    from safetensors.torch import load_file

    from layersafe.rl.configs import SFTConfig
    from layersafe.rl.sft import train_sft

    root, data, _ = runs
    script = tmp_path / "stop.py"
    script.write_text(_STOP)
    res = tmp_path / "res"
    _launch([str(script), json.dumps(_cfg(tiny_llava_dir, data, res, save_every=1)), "1"], 29543)
    assert json.loads((res / "run.json").read_text())["status"] == "running"
    assert (res / "checkpoints" / "latest").read_text().strip() == "step-0000001"
    shutil.copytree(res, tmp_path / "res_one")  # the same sharded checkpoint, resumed on one process below
    proc = _sft_two_processes(tiny_llava_dir, data, res, 29545, ["--resume"])
    assert proc.stderr.count("resumed from") == 1 and "continued on" not in proc.stderr  # rank 0 reports
    two = root / "two"
    assert _log(res) == _log(two)  # exactly
    ad = "adapter/adapter_model.safetensors"
    a_two, a_res = load_file(two / ad), load_file(res / ad)
    assert a_two.keys() == a_res.keys() and all(torch.equal(a_two[n], a_res[n]) for n in a_two)
    o_two, o_res = (torch.load(k / "checkpoints" / "step-0000002" / "optimizer.pt", weights_only=True) for k in (two, res))
    assert o_two["state"].keys() == o_res["state"].keys() and all(isinstance(n, str) for n in o_two["state"])
    assert all(torch.equal(o_two["state"][n][m], o_res["state"][n][m]) for n in o_two["state"] for m in ("exp_avg", "exp_avg_sq"))

    # the sharded checkpoint on one process: the one-process run's step 2, within the tolerances
    notes: list[str] = []
    run = train_sft(SFTConfig(**_cfg(tiny_llava_dir, data, tmp_path / "res_one", resume=True)), progress=False,
                    log=notes.append)
    assert run["status"] == "complete" and run["world_size"] == 1
    assert any("step 1" in n and "written by 2 process(es), continued on 1" in n for n in notes), notes
    _close(_log(tmp_path / "res_one"), _log(root / "one"))
    one = load_file(root / "one" / ad)
    gaps = [_gap(one, load_file(tmp_path / "res_one" / ad))]
    # one position-keyed checkpoint (one process) resumed on 2 processes
    one_stop = tmp_path / "one_stop"
    assert train_sft(SFTConfig(**_cfg(tiny_llava_dir, data, one_stop, save_every=1)), progress=False,
                     log=lambda m: None, _stop_after=1) == {"stopped_at": 1}
    proc = _sft_two_processes(tiny_llava_dir, data, one_stop, 29547, ["--resume"])
    assert "written by 1 process(es), continued on 2" in proc.stderr
    _close(_log(one_stop), _log(root / "one"))
    gaps.append(_gap(one, load_file(one_stop / ad)))
    print(f"cross-count resumes: adapters within {max(g[0] for g in gaps):.1e} of one process")
    assert all(mx <= W_MAX and mean <= W_MEAN for mx, mean in gaps)


def test_sharded_launch_refusals(monkeypatch):
    """One line, before any process group is joined: align under accelerate's FSDP."""
    from layersafe.errors import UserError
    from layersafe.rl.onpolicy import _make_accelerator

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(UserError, match="accelerate's FSDP is not supported"):
        _make_accelerator()


def test_training_state_loads_either_optimizer_layout(tmp_path):
    """One process writes AdamW's state by position, a sharded run by parameter name: either loads
    into a one-process run, giving the same state; a name this model lacks is one clear line."""
    from layersafe.errors import UserError
    from layersafe.rl import checkpoint as ckpt

    def model_and_optimizer():
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
        m[0].bias.requires_grad_(False)  # frozen: not in the optimizer, so positions and names differ
        return m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.1)

    m, opt = model_and_optimizer()
    m(torch.ones(1, 3)).sum().backward()
    opt.step()
    weights, state = ckpt.training_state(m, opt, sharded=False)
    names = ["0.weight", "1.weight", "1.bias"]
    assert list(weights) == names and sorted(state["state"]) == [0, 1, 2]
    by_name = {"state": {names[i]: v for i, v in state["state"].items()},
               "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]]}
    for optim in (state, by_name):
        ckpt.save_tensors(weights, tmp_path / "trainable.pt")
        ckpt.save_tensors(optim, tmp_path / "optimizer.pt")
        m2, opt2 = model_and_optimizer()
        ckpt.load_training_state(tmp_path, m2, opt2, sharded=False)
        assert all(torch.equal(p, q) for p, q in zip(m.parameters(), m2.parameters()))
        got = opt2.state_dict()["state"]
        assert all(torch.equal(got[i][k], state["state"][i][k]) for i in range(3) for k in ("exp_avg", "exp_avg_sq"))
        assert float(got[0]["exp_avg_sq"].abs().sum()) > 0  # a real step's state, not zeros
    by_name["param_groups"][0]["params"][2] = "2.bias"
    ckpt.save_tensors(by_name, tmp_path / "optimizer.pt")
    with pytest.raises(UserError, match="optimizer.pt does not match this model/config"):
        ckpt.load_training_state(tmp_path, *model_and_optimizer(), sharded=False)
