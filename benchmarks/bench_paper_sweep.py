"""The whole `layersafe paper` sweep's cost (issue 18 §6): scan + Llama Guard + reward model on one GPU,
measured on a subset with the real command and extrapolated to RT + MR + AC + CP x every layer.

Random-weight models of the real shapes are built and saved into a work folder (``--preset h200``:
LLaVA-1.5-7B bf16 = CLIP ViT-L/14-336 + 32-layer 4096-wide Llama; a Llama-Guard-3-8B-shaped
Llama; a GPT-2-small reward model), with synthetic data files in the layout ``--data-root``
expects (docs/paper.md). Then the real ``python -m layersafe paper`` runs in its own process on
``--limit`` prompts per set at ``--layers``, each set with its own answer length (the Task
registry's ``max_new_tokens``), and the per-stage wall times are read from its RUN/paper.json
(``load_model_seconds``; ``seconds`` of each ``scan:SET`` and ``judge:SET:SPEC`` stage;
``tables_seconds``). A judge's model is loaded again for every set (the runner frees it after
each), so each judge's fixed cost (load + first call) is measured apart, in one more process
(``--measure-fixed``), and taken out of the per-row rate. Prints one JSON object.

    # the H200 run (~5-6 minutes with building and saving the 7B and 8B models)
    export PYTHONPATH=$PWD && python3 benchmarks/bench_paper_sweep.py --budget 400 --json $OUT/paper_sweep.json
    # CPU plumbing check (tiny models, seconds; tests/test_bench_paper_sweep.py runs it)
    python3 benchmarks/bench_paper_sweep.py --preset tiny --device cpu

Extrapolation (also listed in the JSON's ``assumptions``): per set and stage, time = fixed +
rows / (rows per second measured on that set's subset), with the full set's rows = its prompts x
every layer. Random weights never stop early, so every answer is the set's full length: an upper
bound on generation and judging, since real refusals are shorter.

Records go in docs/benchmarks.md with the exact command, date and machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Prompts per set in the full sweep: RedTeam-2K and mini-JailBreakV-28K as published (docs/paper.md);
# AC and CP are counted from the built-in sets at run time.
UPSTREAM_ROWS = {"RT": 2000, "MR": 280}
GOAL_MINUTES = 30.0
LG3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
              num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0)
GPT2_SMALL = dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024)
PRESETS = {
    "h200": {"llava": "7b", "guard": LG3_8B, "rm": GPT2_SMALL, "dtype": "bfloat16", "limit": 64,
             "layers": "0,8,16,24", "batch_size": 64, "guard_batch_size": 32, "rm_batch_size": 64},
    "tiny": {"llava": "tiny", "guard": dict(vocab_size=40000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2,
                                            max_position_embeddings=4096, rope_theta=500000.0),
             "rm": dict(n_embd=32, n_layer=2, n_head=4, n_positions=1024), "dtype": "float32", "limit": 2,
             "layers": "0,3,6", "batch_size": 8, "guard_batch_size": 8, "rm_batch_size": 8},
}
# The fixed parts of a Llama Guard 3 conversation, as single tokens in Llama 3's vocabulary too.
LG3_SPECIAL = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


# --------------------------------------------------------------------------------------------
# Synthetic text: English words, so that a word-level tokenizer counts tokens as Llama's does
# --------------------------------------------------------------------------------------------

def _words() -> list[str]:
    import re

    from layersafe.data.builtin import advbench_goals

    text = " ".join(g + " " + t for g, t in advbench_goals())
    return sorted({w.lower() for w in re.findall(r"[A-Za-z]+", text) if len(w) > 1})


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n)).capitalize()


def synthetic_prompts(n: int, seed: int) -> dict[str, list[str]]:
    """RT: short red-team questions (8-25 words, as RedTeam-2K's); MR: mini-JailBreakV's mix, about
    70 % jailbreak templates around the question (250-450 words) and 30 % short image-based queries
    (15-30 words)."""
    rng = random.Random(seed)
    words = _words()
    rt = [_sentence(rng, words, rng.randint(8, 25)) + "?" for _ in range(n)]
    mr = []
    for _ in range(n):
        if rng.random() < 0.7:
            body = ". ".join(_sentence(rng, words, rng.randint(10, 20)) for _ in range(rng.randint(18, 28)))
            mr.append(body + ". Now answer: " + _sentence(rng, words, rng.randint(8, 20)) + "?")
        else:
            mr.append(_sentence(rng, words, rng.randint(15, 30)) + ".")
    return {"RT": rt, "MR": mr}


def corpus(prompts: dict[str, list[str]]) -> list[str]:
    """What the word-level tokenizer learns from: AdvBench, the Llama Guard 3 prompt, the
    vicuna_v1 system prompt, the synthetic prompts."""
    from layersafe.data.builtin import advbench_goals
    from layersafe.judges.llamaguard import builtin_prompt
    from layersafe.models.templates import VICUNA_V1_SYSTEM

    lg = builtin_prompt("lg3", "question", "answer")
    for t in LG3_SPECIAL:
        lg = lg.replace(t, " ")
    lines = [g for g, _ in advbench_goals()] + [t for _, t in advbench_goals()]
    lines += [lg] * 20 + [VICUNA_V1_SYSTEM] * 20 + ["safe", "unsafe", "safe\n", "unsafe\nS1"] * 20
    lines += [p for ps in prompts.values() for p in ps]
    lines += ["Human: Assistant: USER: ASSISTANT:"] * 20
    return lines


def word_tokenizer(lines: list[str]):
    """layersafe.models.tiny.build_tokenizer's tokenizer (same special tokens and ids), split as
    Llama's are: words, punctuation, digits and newlines apart; BPE merges up to whole words."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated"), pre_tokenizers.Metaspace(),
        pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=30000, special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    fast.padding_side = "left"
    return fast


# --------------------------------------------------------------------------------------------
# Models (built in their own process: this one never holds the GPU while the command runs)
# --------------------------------------------------------------------------------------------

def build_models(preset: str, device: str, out: Path, prompts: dict[str, list[str]]) -> dict:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification, LlamaConfig, LlamaForCausalLM

    import layersafe.models.tiny as tiny
    from layersafe.judges.llamaguard import builtin_prompt

    P = PRESETS[preset]
    dtype = getattr(torch, P["dtype"])
    facts: dict = {"dtype": P["dtype"]}
    # A word-level tokenizer trained on the texts the sweep sees (make_random_llava pads it to the
    # real vocabulary with one-token dummies), so prompt, template and answer token counts are
    # close to the real tokenizers'. Random answers are mostly dummies: one token each in every model.
    make_tok = tiny.build_tokenizer
    lines = corpus(prompts)
    tiny.build_tokenizer = lambda *a, **k: word_tokenizer(lines)
    try:
        t = time.perf_counter()
        sizes = dict(tiny.LLAVA15_7B) if P["llava"] == "7b" else {"vocab_size": 4000}  # padded with dummies, as the 7B's is
        model, processor = tiny.make_random_llava(seed=0, dtype=dtype, device=device, **sizes)
    finally:
        tiny.build_tokenizer = make_tok
    facts["llava_vision_layers"] = model.config.vision_config.num_hidden_layers
    facts.update(_save("llava", model, processor, out, t, device))
    del model
    _free(device)

    # Llama Guard: no chat template, so the judge renders Llama Guard 3's own prompt (format lg3).
    tok = AutoTokenizer.from_pretrained(out / "llava")
    tok.chat_template = None
    tok.add_tokens(LG3_SPECIAL, special_tokens=True)
    text = builtin_prompt("lg3", "question", "answer", tok.bos_token)
    last = tok(text, add_special_tokens=False)["input_ids"][-1]
    unsafe = tok.encode("unsafe", add_special_tokens=False)[0]
    t = time.perf_counter()
    cfg = LlamaConfig(**P["guard"], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=False, initializer_range=0.02)
    assert cfg.vocab_size >= len(tok)
    guard = _on(device, dtype, lambda: LlamaForCausalLM(cfg)).eval()
    with torch.no_grad():
        # Random weights would answer neither "safe" nor "unsafe", and mode=forward would then decode
        # every row. The blocks' output projections are zeroed (same matmuls, same cost), so the last
        # position's state is the embedding of the prompt's last token, which lm_head maps to "unsafe".
        for layer in guard.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        guard.model.norm.weight.fill_(1.0)
        e = guard.model.embed_tokens.weight[last].float()
        guard.lm_head.weight[unsafe] = (50.0 * e / e.norm()).to(dtype)
    guard.generation_config.eos_token_id = tok.eos_token_id
    guard.generation_config.pad_token_id = tok.pad_token_id
    facts.update(_save("guard", guard, tok, out, t, device))
    del guard
    _free(device)

    # Reward model: GPT-2 sequence classifier, 1 output, HH-style text (no chat template).
    tok = AutoTokenizer.from_pretrained(out / "llava")
    tok.chat_template = None
    tok.model_max_length = P["rm"]["n_positions"]
    cfg = GPT2Config(**P["rm"], vocab_size=len(tok), num_labels=1, pad_token_id=tok.pad_token_id,
                     eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    t = time.perf_counter()
    rm = _on(device, dtype, lambda: GPT2ForSequenceClassification(cfg)).eval()
    facts.update(_save("rm", rm, tok, out, t, device))
    facts.update(tokenizer_words=len(tok), torch=torch.__version__, transformers=__import__("transformers").__version__,
                 machine=(f"{torch.cuda.device_count()}x {torch.cuda.get_device_name()}" if torch.cuda.is_available()
                          else f"{platform.machine()} CPU, {os.cpu_count()} cores"))
    return facts


def _save(name: str, model, tok, out: Path, started: float, device: str) -> dict:
    """Save ``model`` and its tokenizer / processor to OUT/NAME; its size and times."""
    _sync(device)
    t = time.perf_counter()
    model.save_pretrained(out / name)
    tok.save_pretrained(out / name)
    return {f"{name}_params": sum(p.numel() for p in model.parameters()), f"{name}_build_s": round(t - started, 1),
            f"{name}_save_s": round(time.perf_counter() - t, 1)}


def _on(device: str, dtype, make):
    import torch

    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return make()  # random init on the device itself (no 16 GB host copy)
    finally:
        torch.set_default_dtype(prev)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# Data in the upstream layouts (docs/paper.md)
# --------------------------------------------------------------------------------------------

def write_data(root: Path, prompts: dict[str, list[str]], seed: int, coco_images: int = 16) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    jb = root / "JailBreakV_28K"
    jb.mkdir(parents=True, exist_ok=True)
    with (jb / "RedTeam_2K.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "policy", "from"])
        w.writerows([i, q, "Illegal Activity", "synthetic"] for i, q in enumerate(prompts["RT"]))
    with (jb / "mini_JailBreakV_28K.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "redteam_query", "jailbreak_query", "format", "policy", "image_path"])
        for i, q in enumerate(prompts["MR"]):
            img = f"llm_transfer_attack/images/{i}.png"
            (jb / img).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(jb / img)
            w.writerow([i, q[-80:], q, "Template", "Malware", img])
    coco = root / "coco" / "val2014"
    coco.mkdir(parents=True, exist_ok=True)
    for i in range(coco_images):  # COCO's usual 640 x 480
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(coco / f"COCO_val2014_{i:012d}.jpg")
    return root


# --------------------------------------------------------------------------------------------
# Judges' fixed cost (their own process, after the command: load + first call, minus a second call)
# --------------------------------------------------------------------------------------------

def measure_fixed(specs: list[str], rows_file: Path, guard_spec: str, n: int = 1) -> dict:
    """Each judge's costs apart from its per-row rate, on calls of ``n`` rows (the runner's judge
    batch, so compiles happen at its shapes): ``process_once_s``, what the first judge of a process
    pays beyond a later one (lazy imports, CUDA context, kernel compiles: paid once, in the first
    set); ``fixed_s``, what a fresh judge's first call pays beyond its second (load: once per set)."""
    from layersafe.io import read_jsonl
    from layersafe.judges.base import get_judge

    rows = [r for r in read_jsonl(rows_file) if r.get("response")][:n]
    out: dict = {}
    for spec in specs:
        t = time.perf_counter()
        get_judge(spec).score_rows(rows)
        very_first = time.perf_counter() - t
        _free("cuda" if _cuda() else "cpu")
        j = get_judge(spec)
        t = time.perf_counter()
        j.score_rows(rows)
        first = time.perf_counter() - t
        t = time.perf_counter()
        j.score_rows(rows)
        again = time.perf_counter() - t
        out[spec] = {"rows_per_call": len(rows), "process_first_call_s": round(very_first, 3),
                     "first_call_s": round(first, 3), "second_call_s": round(again, 3),
                     "fixed_s": round(max(first - again, 0.0), 3),
                     "process_once_s": round(max(very_first - first, 0.0), 3)}
        if spec == guard_spec:  # the tokens Llama Guard reads per row, for comparison with the real model
            tok = j.tokenizer
            n = [len(tok(j.render(str(r["prompt"]), str(r["response"])), add_special_tokens=False)["input_ids"])
                 for r in rows]
            out["guard_tokens_per_row"] = round(sum(n) / len(n), 1)
            out["guard_format"] = j.format
        j.close()
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def _env(device: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PERSPECTIVE_API_KEY", "RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    if device == "cuda":
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")
    return env


def _call(cmd: list[str], env: dict, limit: float) -> tuple[subprocess.CompletedProcess | None, str | None]:
    if limit < 10:
        return None, "skipped: --budget spent"
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {int(limit)} s"
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        return proc, f"exit {proc.returncode}: " + " | ".join(lines[-6:])
    return proc, None


def full_rows(data: Path, n_layers: int) -> dict[str, int]:
    """Prompts per set in the full sweep x every layer."""
    from layersafe.data import load_dataset
    from layersafe.data.tasks import get_task

    prompts = dict(UPSTREAM_ROWS)
    for name in ("AC", "CP"):
        prompts[name] = len(load_dataset(get_task(name).spec(data)).samples)
    return {s: prompts[s] * n_layers for s in ("RT", "MR", "AC", "CP")}


def extrapolate(state: dict, run: Path, fixed: dict, full: dict[str, int], specs: dict[str, str],
                n_layers: int) -> dict:
    """Per stage: measured seconds, rows, rows/s (fixed cost taken out), extrapolated minutes."""
    stages = state["stages"]
    sets = list(full)
    out: dict = {}
    load = float(state.get("load_model_seconds") or 0.0)
    per_set = {}
    for s in sets:
        st = stages[f"scan:{s}"]
        meta = json.loads((run / s / "run.json").read_text())
        info = meta["stats"]
        rows = st["generated"]
        # the scan's own split of its generate calls: a median per-row time and the calls' excess over
        # it (decoder build, graph capture, compiles: paid once per set, not per row); the rest of the
        # stage (images loaded and tokenised, the encoder run once per image for all layers, reading
        # the set) is per sample, so it scales with the prompts, not with prompts x layers
        warm = float(info.get("warmup_seconds") or 0.0)
        med = float(info["median_row_seconds"])
        outside = max(st["seconds"] - float(info["generate_seconds"]), 0.0)
        samples = int(meta["dataset"]["n_samples"])
        full_samples = full[s] // n_layers
        per_set[s] = {"seconds": st["seconds"], "rows": rows, "rows_per_s": round(rows / st["seconds"], 2),
                      "steady_rows_per_s": round(1 / med, 2), "warmup_s": round(warm, 1),
                      "outside_generate_s": round(outside, 2), "samples": samples,
                      "batch_size": meta.get("batch_size_resolved"),
                      "new_tokens_per_row": round(info["new_tokens"] / max(info["generated"], 1), 1),
                      "full_rows": full[s], "full_samples": full_samples,
                      "extrapolated_s": round(warm + full[s] * med + outside * full_samples / samples, 1)}
    out["scan"] = _stage(per_set, load, "model load, once for all sets; each set's warm-up once")
    for name, spec in specs.items():
        per_set = {}
        for s in sets:
            st = stages[f"judge:{s}:{spec}"]
            rows = sum(1 for line in (run / s / "scores.jsonl").read_text().splitlines() if line.strip())
            # the runner's own split of its judge calls (paper.json): a median per-row time, and the
            # calls' excess over it (the model's load in the first call, compiles: once per set, as
            # the runner loads the judge for every set); the stage's time outside the calls (reading
            # rows, writing scores and metrics) is counted once per set too
            warm = float(st.get("warmup_seconds") or 0.0)
            other = max(st["seconds"] - float(st["judge_seconds"]), 0.0)
            med = float(st["median_row_seconds"])
            per_set[s] = {"seconds": st["seconds"], "rows": rows, "rows_per_s": round(rows / st["seconds"], 2),
                          "steady_rows_per_s": round(1 / med, 2), "warmup_s": round(warm, 1),
                          "outside_calls_s": round(other, 1), "full_rows": full[s],
                          "extrapolated_s": round(other + warm + full[s] * med, 1)}
        out[name] = _stage(per_set, 0.0, "per set: the judge's load + warm-up (in its first calls) and the "
                                         "stage's time outside its calls")
    measured_rows = sum(v["rows"] for v in out["scan"]["per_set"].values())
    t = float(state.get("tables_seconds") or 0.0)
    out["tables"] = {"measured_s": t, "rows": measured_rows, "full_rows": sum(full.values()),
                     "extrapolated_min": round(t * sum(full.values()) / measured_rows / 60, 2)}
    return out


def _stage(per_set: dict, once: float, fixed_note: str) -> dict:
    secs = sum(v["seconds"] for v in per_set.values())
    rows = sum(v["rows"] for v in per_set.values())
    ext = once + sum(v["extrapolated_s"] for v in per_set.values())
    return {"measured_s": round(secs + once, 1), "rows": rows, "rows_per_s": round(rows / secs, 2),
            "fixed": fixed_note, "full_rows": sum(v["full_rows"] for v in per_set.values()),
            "extrapolated_min": round(ext / 60, 2), "per_set": per_set}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="h200")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--limit", type=int, help="prompts per set in the measured subset (default: the preset's)")
    ap.add_argument("--layers", help="layers of the measured subset (default: the preset's)")
    ap.add_argument("--batch-size", type=_batch_arg,
                    help="scan sequences per generate call, or auto (`layersafe paper`'s default: chosen per set "
                         "from free GPU memory); default: the preset's")
    ap.add_argument("--guard-batch-size", type=int, help="Llama Guard rows per forward (default: the preset's)")
    ap.add_argument("--rm-batch-size", type=int, help="reward model rows per forward (default: the preset's)")
    ap.add_argument("--judge-batch-size", type=int, default=64, help="rows per judge call (paper's default 64)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole benchmark: each step gets at most what is left")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--json", help="write the result here too")
    ap.add_argument("--build-to", help=argparse.SUPPRESS)  # internal: build + save the models, print facts
    ap.add_argument("--measure-fixed", nargs=2, metavar=("ROWS", "SPECS_JSON"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    for k in ("limit", "layers", "batch_size", "guard_batch_size", "rm_batch_size"):
        if getattr(a, k) is None:
            setattr(a, k, P[k])
    if a.limit < 1 or (a.batch_size != "auto" and a.batch_size < 1):
        ap.error("--limit and --batch-size must be >= 1")
    prompts = synthetic_prompts(a.limit, a.seed)
    if a.build_to:
        print(json.dumps(build_models(a.preset, a.device, Path(a.build_to), prompts)))
        return 0
    if a.measure_fixed:
        specs = json.loads(a.measure_fixed[1])
        print(json.dumps(measure_fixed(specs, Path(a.measure_fixed[0]), specs[0], a.judge_batch_size)))
        return 0

    start = time.monotonic()

    def left() -> float:
        return 3600.0 if a.budget is None else a.budget - (time.monotonic() - start)

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_paper_"))
    work.mkdir(parents=True, exist_ok=True)
    env = _env(a.device)
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": a.preset, "device": a.device}
    try:
        t = time.perf_counter()
        proc, err = _call([sys.executable, __file__, "--preset", a.preset, "--device", a.device, "--limit", str(a.limit),
                           "--seed", str(a.seed), "--build-to", str(work / "models")], env, left())
        if err:
            return _finish(res, a, {"error": "model build failed: " + err})
        assert proc is not None
        res["models"] = json.loads(proc.stdout.strip().splitlines()[-1])
        res["models"]["build_and_save_wall_s"] = round(time.perf_counter() - t, 1)
        data = write_data(work / "data", prompts, a.seed)
        dev = "cpu" if a.device == "cpu" else "cuda"
        guard = f"{work / 'models' / 'guard'},batch_size={a.guard_batch_size}"
        rm = f"rm:{work / 'models' / 'rm'},batch_size={a.rm_batch_size}"
        run = work / "run"
        cmd = [sys.executable, "-m", "layersafe", "paper", "--model", str(work / "models" / "llava"),
               "--data-root", str(data), "--out", str(run), "--layers", a.layers, "--limit", str(a.limit),
               "--batch-size", str(a.batch_size), "--guard", guard, "--rm", rm, "--toxicity", "none",
               "--judge-batch-size", str(a.judge_batch_size), "--dtype", P["dtype"], "--device", dev,
               "--no-progress"]
        res["command"] = " ".join(["python"] + cmd[1:]).replace(str(work), "WORK")
        t = time.perf_counter()
        proc, err = _call(cmd, env, left())
        res["paper_wall_s"] = round(time.perf_counter() - t, 1)
        if err:
            return _finish(res, a, {"error": "layersafe paper: " + err})
        state = json.loads((run / "paper.json").read_text())
        # the raw figures first, so a later step that fails or runs out of budget still leaves them
        res["paper_seconds"] = {"load_model": state.get("load_model_seconds"), "tables": state.get("tables_seconds"),
                                **{k.replace(str(work), "WORK"): v.get("seconds") for k, v in state["stages"].items()}}
        specs = {"llamaguard": state["judges"]["ASR"], "reward": state["judges"]["TR"]}
        res["judge_specs"] = {k: v.replace(str(work), "WORK") for k, v in specs.items()}
        proc, err = _call([sys.executable, __file__, "--preset", a.preset, "--limit", str(a.limit),
                           "--judge-batch-size", str(a.judge_batch_size), "--measure-fixed",
                           str(run / "RT" / "generations.jsonl"), json.dumps(list(specs.values()))], env, left())
        if err:
            return _finish(res, a, {"error": "judge fixed-cost measurement: " + err})
        assert proc is not None
        fixed = json.loads(proc.stdout.strip().splitlines()[-1])
        n_layers = res["models"]["llava_vision_layers"] + 1  # "all" = 0 (patch embeddings) .. last block
        full = full_rows(data, n_layers)
        stages = extrapolate(state, run, fixed, full, specs, n_layers)
        # mode=forward decodes a row only when its first token is no verdict; the guard is built so none is
        stages["llamaguard"]["rows_decoded"] = sum(
            "llamaguard_categories" in (json.loads(x).get("scores") or {})
            for s in full for x in (run / s / "scores.jsonl").read_text().splitlines() if x.strip())
        total = sum(stages[k]["extrapolated_min"] for k in ("scan", "llamaguard", "reward"))
        res.update(
            subset={"limit": a.limit, "layers": a.layers, "batch_size": a.batch_size,
                    "guard_batch_size": a.guard_batch_size, "rm_batch_size": a.rm_batch_size,
                    "judge_batch_size": a.judge_batch_size,
                    "max_new_tokens": {s: _task_tokens(s) for s in full}},
            full_sweep={"layers": n_layers, "rows": full, "total_rows": sum(full.values())},
            judge_fixed=fixed, stages=stages,
            total_extrapolated_min=round(total, 2),
            total_with_tables_min=round(total + stages["tables"]["extrapolated_min"], 2),
            goal_min=GOAL_MINUTES, within_goal=total <= GOAL_MINUTES,
            assumptions=[
                f"full sweep = RT {UPSTREAM_ROWS['RT']} + MR {UPSTREAM_ROWS['MR']} (upstream sizes) + AC "
                f"{full['AC'] // n_layers} + CP {full['CP'] // n_layers} (built in) prompts x {n_layers} layers "
                f"(--layers all: 0..{n_layers - 1})",
                "judges, per set: time = time outside the judge calls + warm-up + full rows x the median "
                "seconds per row of the subset's calls (paper.json); warm-up = the calls' time beyond that "
                "median (the model's load, compiles), paid once per set since the runner reloads a judge for "
                "every set; judge_fixed (measured apart, a cross-check) is not used; the scan's model load is "
                "paid once for all sets",
                "scan: per set, time = warm-up + full rows x the median seconds per row of the subset's "
                "generate calls + the stage's time outside generate x full prompts / subset prompts (images, "
                "tokenising and the encoder are per prompt: one encoder pass serves every layer); warm-up = "
                "the calls' time beyond that median (decoder build, CUDA-graph capture, kernel compiles), paid "
                "once per set as in the full run; a pair costs the same at every layer (the language model "
                "dominates)",
                "prefix reuse (scan's default) shares an image's prompt start within a batch: a subset of "
                "--limit prompts shares less than the full set (RT: 15 photos over 2 000 prompts), so the "
                "scan estimate errs high",
                "a set's rate needs several calls for its median: use a --judge-batch-size well below the "
                "subset's rows (e.g. 128 for 512 rows)",
                "random weights never stop early: every answer is its set's full max_new_tokens (the Task "
                "registry's), an upper bound for the scan and for the judges' input lengths",
                "synthetic prompts: RT 8-25 words, MR 70 % 250-450-word jailbreak templates + 30 % 15-30 words, "
                "tokenized by a word-level tokenizer close to Llama's counts (guard_tokens_per_row is measured; "
                "the real Llama Guard 3 prompt is ~370 tokens + prompt + answer)",
                "TS (Perspective) is not timed: it is rate-limited by the API quota (qps), not the GPU",
                "tables scale linearly with rows (an upper bound: the bootstrap resamples prompts)"])
        return _finish(res, a, {})
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


def _batch_arg(s: str):
    return "auto" if s.strip().lower() == "auto" else int(s)


def _task_tokens(name: str) -> int:
    from layersafe.data.tasks import get_task

    return get_task(name).max_new_tokens


def _finish(res: dict, a, extra: dict) -> int:
    res.update(extra)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 1 if "error" in res else 0


if __name__ == "__main__":
    raise SystemExit(main())
