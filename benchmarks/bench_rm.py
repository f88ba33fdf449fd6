"""Reward-model training-step throughput: a GPT-2-small-size RM (124M, random init) on one device.

Times layersafe's own step (``reward_model.pair_step``: chosen + rejected in one right-padded batch,
Bradley–Terry loss, backward) plus AdamW, grad clipping and zero_grad, exactly as ``train-rm`` runs it.
Inputs are random token ids ending in EOS, all ``--seq-len`` long (the padded worst case).

    python benchmarks/bench_rm.py --device cuda                         # GPT-2 small, bf16 autocast
    python benchmarks/bench_rm.py --device cuda --batch-size 32 --seq-len 512
    python benchmarks/bench_rm.py --device cpu --size tiny --steps 5    # smoke check

Prints one JSON line (pairs/s, tokens/s, ms/step, peak memory). Records go in docs/benchmarks.md
with the exact command, date and machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from types import SimpleNamespace

import torch

SIZES = {
    # GPT-2 small (the paper's RM backbone): 124M parameters
    "small": dict(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024),
    "tiny": dict(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, n_positions=256),
}


def build(size: str, device: str):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    kw = dict(SIZES[size])
    eos = kw["vocab_size"] - 1
    kw["vocab_size"] += 1  # train-rm adds a pad token distinct from EOS to GPT-2's vocabulary
    cfg = GPT2Config(**kw, num_labels=1, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=eos, eos_token_id=eos, pad_token_id=eos + 1)
    torch.manual_seed(0)
    with torch.device(device):
        model = GPT2ForSequenceClassification(cfg)  # fp32 master weights; bf16 via autocast as in train-rm
    return model, cfg


def main(argv=None) -> None:
    from layersafe.rl.reward_model import pair_step

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--size", choices=sorted(SIZES), default="small", help="model size (default small = 124M)")
    ap.add_argument("--batch-size", type=int, default=16, help="pairs per step (default 16)")
    ap.add_argument("--seq-len", type=int, default=512, help="tokens per text, EOS included (default 512)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto", help="bf16 autocast (auto: on CUDA)")
    a = ap.parse_args(argv)

    cuda = a.device.startswith("cuda")
    bf16 = a.bf16 == "yes" or (a.bf16 == "auto" and cuda)
    model, cfg = build(a.size, a.device)
    model.train()
    seq_len = min(a.seq_len, cfg.n_positions)
    tok = SimpleNamespace(pad_token_id=cfg.pad_token_id)  # collate needs only the pad id
    g = torch.Generator().manual_seed(0)

    def texts():
        ids = torch.randint(0, cfg.eos_token_id, (a.batch_size, seq_len), generator=g)
        ids[:, -1] = cfg.eos_token_id
        return ids.tolist()

    batches = [(texts(), texts()) for _ in range(4)]  # pre-built: time the step, not the RNG
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    autocast = (lambda: torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16)) if bf16 \
        else contextlib.nullcontext

    def step(i):
        c, r = batches[i % len(batches)]
        st = pair_step(model, tok, c, r, [0.0] * len(c), 0.0, a.device, autocast)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return st

    for i in range(a.warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tokens = 0
    for i in range(a.steps):
        tokens += step(i)["tokens"]  # .item() inside syncs each step, as in training
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rec = {
        "bench": "rm_train_step", "size": a.size, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "device": torch.cuda.get_device_name(a.device) if cuda else platform.processor() or "cpu",
        "bf16_autocast": bf16, "batch_pairs": a.batch_size, "seq_len": seq_len, "steps": a.steps,
        "ms_per_step": round(1000 * dt / a.steps, 2), "pairs_per_s": round(a.batch_size * a.steps / dt, 1),
        "tokens_per_s": round(tokens / dt, 0),
        "peak_mem_GiB": round(torch.cuda.max_memory_allocated(a.device) / 2**30, 2) if cuda else None,
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
