"""The ICET scan engine (docs/design.md §2 scan/): samples × layers -> OUT/generations.jsonl.

For each group of samples: load and tokenise each image+prompt once, run the image encoder ONCE
for the group keeping every requested layer, then for each layer project P(e_l) and generate
in batches (left padding, greedy by default). Rows are appended (flushed + fsynced) as batches
finish, so an interrupted scan loses at most the batch in flight; ``resume`` skips every
(sample, layer) already on disk.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import CACHE_HELP, DTYPE_HELP, PICKLE_HELP, CacheMode, DType, check_fields, opt, resume_keys
from ..errors import UserError
from ..io import JsonlAppender, atomic_write_json, iter_chunks, read_jsonl, truncate_torn_tail
from ..versions import package_versions

GENERATIONS = "generations.jsonl"
RUN_JSON = "run.json"


@dataclass
class ScanConfig:
    """Every knob of a scan (recorded whole in run.json); the fields are `layersafe scan`'s options
    (layersafe.config). ``resume=True`` marks the settings a ``--resume`` must keep: changing them
    would mix incomparable rows."""

    model: str = opt("tiny-random-llava", "HF hub id or local folder of a supported VLM (e.g. llava-hf/llava-1.5-7b-hf); "
                     "default: a tiny random LLaVA built on the fly (random text, offline demo)", resume=True)
    dataset: str = opt("custom-prompts", "built-in dataset (see `layersafe datasets`) or a .jsonl/.csv file with id, prompt, "
                       "image (relative image paths resolve against the file's folder); default custom-prompts "
                       "(--dataset: old spelling, deprecated)", flag="--data", deprecated=("--dataset",), resume=True)
    layers: str = opt("all", "layer spec: all, default, N, A-B or a comma list (e.g. 'default,8-12'); default all")
    out: str = opt("runs/scan", "output folder (must be empty unless --resume)")
    max_new_tokens: int = opt(64, "tokens per response", min=1, resume=True)
    batch_size: int = opt(8, "sequences per generate call and images per encoder call", min=1)
    cache: CacheMode = opt("auto", CACHE_HELP)
    resume: bool = opt(False, "continue an interrupted scan in OUT, keeping finished rows")
    limit: int | None = opt(None, "scan only the first N samples", min=1, resume=True)
    seed: int = opt(0, "seed for dataset pairing and sampling", resume=True)
    do_sample: bool = opt(False, "sample instead of greedy decoding (greedy as in the paper's evaluation)",
                          flag="--sample", resume=True)
    temperature: float = opt(1.0, "sampling temperature (with --sample)", min_exclusive=0, resume=True)
    top_p: float = opt(1.0, "nucleus sampling p (with --sample)", min_exclusive=0, max=1, resume=True)
    dtype: DType = opt("auto", DTYPE_HELP, resume=True)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    device_map: str | None = opt(None, "e.g. 'auto' to spread a large model over several GPUs")
    trust_remote_code: bool = opt(False, "allow model code from the hub (off by default)")
    judges: list[str] = opt(default_factory=list, help="judge the generations afterwards and write scores.jsonl + "
                            "metrics.csv (repeatable; the command's default: refusal; 'none' to skip)",
                            flag="--judge", metavar="NAME[:ARG]")
    adapter: str | None = opt(None, "peft adapter folder (e.g. `layersafe align` OUT/adapter), merged into the model "
                              "before scanning", resume=True)
    allow_pickle: bool = opt(False, PICKLE_HELP)

    def validate(self) -> None:
        check_fields(self)


# Fields that must match when resuming (marked resume=True above).
_RESUME_KEYS = resume_keys(ScanConfig)


def prepare_out_dir(cfg: ScanConfig) -> Path:
    """Refuse to overwrite a non-empty OUT unless resuming; on resume check the config matches.
    (``locked_out`` creates the folder.)"""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    from ..lock import is_empty

    if not is_empty(out) and not cfg.resume:
        raise UserError(f"--out {out} is not empty; pass --resume to continue that scan or choose a new folder")
    if cfg.resume and (out / RUN_JSON).is_file():
        import json

        try:
            old = json.loads((out / RUN_JSON).read_text())["config"]
        except (ValueError, KeyError):
            raise UserError(f"{out / RUN_JSON} is unreadable; cannot resume safely (move the folder away)") from None
        diff = [k for k in _RESUME_KEYS if old.get(k) != getattr(cfg, k)]
        if diff:
            desc = ", ".join(f"{k}: {old.get(k)!r} -> {getattr(cfg, k)!r}" for k in diff)
            raise UserError(f"cannot resume {out}: settings differ from the original run ({desc})")
    return out


def done_pairs(path: Path) -> set[tuple[str, int]]:
    """(sample_id, layer) pairs already written; a torn last line is cut off first."""
    if not path.exists():
        return set()
    truncate_torn_tail(path)
    return {(str(r["sample_id"]), int(r["layer"])) for r in read_jsonl(path) if "sample_id" in r}


def run_scan(cfg: ScanConfig, *, adapter=None, progress: bool = True, log=print) -> dict:
    """Run a scan; returns the summary stored in run.json. ``adapter`` may be passed pre-loaded."""
    from ..lock import locked_out

    cfg.validate()  # types, choices (--cache, --dtype), finite numbers, ranges: one line naming the option
    out = prepare_out_dir(cfg)
    with locked_out(out, log=log):  # one writer per folder; a killed run's stale lock is taken over
        return _scan(cfg, out, adapter=adapter, progress=progress, log=log)


def _scan(cfg: ScanConfig, out: Path, *, adapter, progress: bool, log) -> dict:
    from ..data import load_dataset
    from ..data.base import ImageError, load_image
    from ..layers import parse_layers
    from ..models import context_length, load_vlm, model_identity

    dataset = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
    content = dataset_hash(dataset)
    if cfg.resume:
        _check_same_dataset(out, content)
    if adapter is None:
        adapter = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device, device_map=cfg.device_map,
                           trust_remote_code=cfg.trust_remote_code, adapter=cfg.adapter,
                           allow_pickle=cfg.allow_pickle)
    layers = parse_layers(cfg.layers, adapter.num_layers, adapter.default_layer)
    identity = model_identity(adapter, cfg.model)
    if identity["tiny_random"]:
        log("NOTE: the model is layersafe's tiny randomly initialised LLaVA (embedded default): "
            "its responses are random text, useful only to check the pipeline end to end.")
    gen_path = out / GENERATIONS
    done = done_pairs(gen_path)
    context = context_length(adapter.model.config)
    run = {
        "config": asdict(cfg),
        "versions": package_versions(),
        "argv": sys.argv,
        "model": identity,
        "num_layers": adapter.num_layers,
        "default_layer": adapter.default_layer,
        "layers": layers,
        "dataset": {"name": dataset.name, "source": dataset.source, "n_samples": len(dataset.samples),
                    "n_bad_rows": len(dataset.errors), "content_sha256": content,
                    "bad_rows": [{"row": e.row, "reason": e.reason} for e in dataset.errors[:100]]},
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(out / RUN_JSON, run)
    for e in dataset.errors[:5]:
        log(f"warning: {dataset.source} row {e.row} skipped: {e.reason}")
    if len(dataset.errors) > 5:
        log(f"warning: {len(dataset.errors)} bad rows skipped in all (listed in run.json)")

    import torch
    from tqdm.auto import tqdm

    if cfg.do_sample:
        torch.manual_seed(cfg.seed)
    # Similar prompt lengths batch together (less padding); the order is deterministic so a
    # resumed scan forms the same groups as an uninterrupted one.
    samples = sorted(dataset.samples, key=lambda s: (len(s.prompt), s.id))
    todo_total = sum(1 for s in samples for l in layers if (s.id, l) not in done)
    stats = {"generated": 0, "failed": 0, "skipped_done": len(samples) * len(layers) - todo_total,
             "new_tokens": 0}
    t0 = time.time()
    bar = tqdm(total=todo_total, desc="scan", unit="gen", disable=not progress, dynamic_ncols=True)
    with JsonlAppender(gen_path) as writer:
        for group in iter_chunks(samples, cfg.batch_size):
            need = [s for s in group if any((s.id, l) not in done for l in layers)]
            if not need:
                continue
            items: list[dict] = []
            ok: list = []
            for s in need:
                input_text = adapter.build_prompt(s.prompt)
                reason: str | None
                try:
                    img = load_image(s.image)
                    item = adapter.tokenize(input_text, img)
                except ImageError as e:
                    reason = str(e)
                except Exception as e:  # processor rejects the image (size, mode, ...)
                    reason = f"cannot process image {s.image}: {type(e).__name__}: {e}"
                else:
                    reason = _over_context(item, cfg.max_new_tokens, context)
                    if reason is None:
                        items.append(item)
                        ok.append((s, input_text, item))
                        continue
                for l in layers:  # one failed row per (sample, layer) keeps the row contract
                    if (s.id, l) in done:
                        continue
                    writer.write(_row(s, l, input_text, adapter, error=reason))
                    stats["failed"] += 1
                    bar.update(1)
            if not ok:
                continue
            enc = adapter.encode(items, layers)
            # Layer-major pairs, chunked across layer boundaries so every generate call is full.
            pairs = [(i, layer) for layer in layers for i, (s, _, _) in enumerate(ok) if (s.id, layer) not in done]
            for chunk in iter_chunks(pairs, cfg.batch_size):
                feats = []
                for layer in dict.fromkeys(l for _, l in chunk):  # distinct layers, in order
                    feats += adapter.features(enc, layer, [i for i, l in chunk if l == layer])
                gens = adapter.generate(
                    [ok[i][2] for i, _ in chunk], feats, max_new_tokens=cfg.max_new_tokens,
                    do_sample=cfg.do_sample, temperature=cfg.temperature, top_p=cfg.top_p, cache=cfg.cache)
                batch_rows = []
                for (i, layer), g in zip(chunk, gens):
                    s, input_text, item = ok[i]
                    batch_rows.append(_row(s, layer, input_text, adapter, gen=g,
                                           prompt_tokens=int(item["input_ids"].shape[-1])))
                    stats["new_tokens"] += len(g.tokens)
                writer.write_many(batch_rows)
                stats["generated"] += len(batch_rows)
                bar.update(len(chunk))
            del enc
    bar.close()
    elapsed = time.time() - t0
    run.update(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               stats={**stats, "seconds": round(elapsed, 3),
                      "generations_per_s": round(stats["generated"] / elapsed, 3) if elapsed > 0 else None})
    atomic_write_json(out / RUN_JSON, run)
    return run


def dataset_hash(dataset) -> str:
    """sha256 of what the scan reads from the dataset (ids, prompts, images, labels), so a file
    edited in place is noticed on --resume even though its path is the same."""
    import hashlib
    import json

    h = hashlib.sha256()
    for s in dataset.samples:
        h.update(json.dumps([s.id, s.prompt, s.image, s.category, s.harmful], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _check_same_dataset(out: Path, content: str) -> None:
    import json

    try:
        old = json.loads((out / RUN_JSON).read_text(encoding="utf-8"))["dataset"].get("content_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # no run.json (killed before writing it) or one from before hashes were recorded
    if old and old != content:
        raise UserError(f"cannot resume {out}: the dataset's content changed since the original run (sha256 "
                        f"{old[:12]} -> {content[:12]}); restore the original file or scan into a new folder")


def _over_context(item, max_new_tokens: int, context: int | None) -> str | None:
    """Why a sample cannot be generated within the model's context (None if it can). Past its
    trained positions a model writes garbage, which a judge would count as "not refused"."""
    n = int(item["input_ids"].shape[-1])
    if context is None or n + max_new_tokens <= context:
        return None
    return (f"prompt too long: {n} input tokens (image included) + --max-new-tokens {max_new_tokens} exceed "
            f"the model's context of {context} tokens")


def _row(s, layer, input_text, adapter, *, gen=None, prompt_tokens=None, error=None) -> dict:
    row = {
        "sample_id": s.id,
        "layer": layer,
        "is_default_layer": layer == adapter.default_layer,
        "prompt": s.prompt,
        "input_text": input_text,
        "image": s.image,
        "category": s.category,
        "harmful": s.harmful,
        "response": gen.text if gen else None,
        "prompt_tokens": prompt_tokens,
        "response_tokens": len(gen.tokens) if gen else 0,
        "finish_reason": gen.finish_reason if gen else None,
        "error": error,
    }
    return row
