"""`layersafe align` with one step's learning phase timed part by part (``bench_lppo_scale.py
--profile-step``).

Runs the real CLI. In the step named by ``LAYERSAFE_PROFILE_STEP`` every minibatch of the learning
phase is cut into forward (``response_forward``; PPO-ptx's extra forward falls in "loss"), loss
(the PPO terms), backward (with DDP's gradient all-reduce, the grad-norm clip and the one host
sync that reads the loss and the norm) and optimizer step, each timed on the GPU's timeline with
CUDA events (no host sync added: the events and token counts are read once, after the phase) and
on the host's clock. Each process writes ``rank{R}.json`` into ``LAYERSAFE_PROFILE_DIR``: per part
the sum over minibatches (GPU ms, host ms), the span of the phase, and the padded token count of
each forward. What it can show: how each part's GPU time scales with the rows per process. What it
cannot: a GPU interval also holds idle time (waiting for the host to launch, or inside DDP's
all-reduce for the other GPU), so compute, communication and imbalance are not separated; and the
host intervals are launch time except the part holding the sync. It answers where learning's time
goes when it does not halve on two GPUs (docs/lppo.md "Multi-GPU"); a benchmark aid, not part of
the package. (torch.profiler was tried first: post-processing ≈ 250 000 kernel events of one 7B
step took minutes per process.)

    LAYERSAFE_PROFILE_STEP=3 LAYERSAFE_PROFILE_DIR=prof python benchmarks/profiled_align.py align ...
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

PARTS = ("forward", "loss", "backward", "optimizer")


class Marks:
    """Named points on the GPU timeline (CUDA events) and the host clock, read after the phase."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.points: list[tuple[str, object, float]] = []

    def mark(self, name: str) -> None:
        ev = None
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
        self.points.append((name, ev, time.perf_counter()))

    def summary(self) -> dict:
        """Sum per part (the interval that starts at the part's mark) over minibatches."""
        if self.cuda:
            torch.cuda.synchronize()
        gpu = {p: 0.0 for p in PARTS}
        host = {p: 0.0 for p in PARTS}
        for (name, ev, t), (_, ev2, t2) in zip(self.points, self.points[1:]):
            if name in gpu:
                host[name] += 1e3 * (t2 - t)
                if self.cuda:
                    gpu[name] += ev.elapsed_time(ev2)
        first, last = self.points[0], self.points[-1]
        span_gpu = first[1].elapsed_time(last[1]) if self.cuda else None
        return {"minibatches": sum(1 for n, _, _ in self.points if n == "forward"),
                "gpu_ms": {k: round(v, 2) for k, v in gpu.items()} if self.cuda else None,
                "host_ms": {k: round(v, 2) for k, v in host.items()},
                "span_gpu_ms": None if span_gpu is None else round(span_gpu, 2),
                "span_host_ms": round(1e3 * (last[2] - first[2]), 2)}


def main() -> int:
    step_to_profile = int(os.environ.get("LAYERSAFE_PROFILE_STEP", "0"))
    folder = Path(os.environ.get("LAYERSAFE_PROFILE_DIR", "profile"))
    from layersafe.rl import lppo, onpolicy

    state: dict = {"marks": None, "tokens": []}
    forward0, backward0, learn0 = lppo.response_forward, onpolicy.OnPolicyTrainer.backward_and_step, lppo.LPPOTrainer.learn

    def response_forward(policy, raw_model, family, ro, idx, *a, **k):
        m = state["marks"]
        if m is None:
            return forward0(policy, raw_model, family, ro, idx, *a, **k)
        m.mark("forward")
        state["tokens"].append((ro, list(idx)))  # counted after the phase: reading them now would sync the host
        out = forward0(policy, raw_model, family, ro, idx, *a, **k)
        m.mark("loss")
        return out

    def backward_and_step(self, loss):
        m = state["marks"]
        if m is None:
            return backward0(self, loss)
        m.mark("backward")
        opt = getattr(self.optimizer, "optimizer", self.optimizer)  # accelerate wraps it
        hooks = [opt.register_step_pre_hook(lambda *_: m.mark("optimizer")),
                 opt.register_step_post_hook(lambda *_: m.mark("end"))]
        try:
            return backward0(self, loss)
        finally:
            for h in hooks:
                h.remove()

    def learn(self, ro, sc, step):
        if step != step_to_profile:
            return learn0(self, ro, sc, step)
        state["marks"], state["tokens"] = Marks(torch.cuda.is_available()), []
        try:
            out = learn0(self, ro, sc, step)
            res = state["marks"].summary()
        finally:
            state["marks"] = None
        tokens = [len(idx) * (int(r.prompt_mask[idx].sum(1).max()) + r.response_ids.shape[1]) for r, idx in state["tokens"]]
        res.update(rank=self.rank_world[0], step=step, padded_tokens=tokens)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{self.rank_world[0]}.json").write_text(json.dumps(res, indent=1) + "\n")
        return out

    lppo.response_forward = response_forward
    onpolicy.OnPolicyTrainer.backward_and_step = backward_and_step
    lppo.LPPOTrainer.learn = learn
    from layersafe.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
