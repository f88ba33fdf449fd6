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
from typing import Literal

from ..config import (CACHE_HELP, DTYPE_HELP, PICKLE_HELP, SYSTEM_PROMPT_HELP, TEMPLATE_HELP, CacheMode, DType,
                      Template, check_fields, opt, resume_keys)
from ..errors import UserError
from ..io import JsonlAppender, atomic_write_json, iter_chunks, read_jsonl, truncate_torn_tail
from ..timing import call_timing
from ..versions import package_versions

GENERATIONS = "generations.jsonl"
RUN_JSON = "run.json"
# Load and tokenise the next group's images in a background thread while this group generates:
# None = when the model is on a GPU (on CPU both would share the same cores); True/False forces it.
PREFETCH: bool | None = None


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
    batch_size: int | Literal["auto"] = opt(
        8, "sequences per generate call and images per encoder call, or auto: chosen once from the GPU memory free "
        "after loading, the largest of 256/128/64/32/16/8 whose static KV cache fits in 60% of it (8 on CPU or "
        "with the dynamic cache; run.json records it as batch_size_resolved). Default 8: auto can take most of "
        "a GPU, which a shared GPU may not have to spare", min=1, metavar="N|auto")
    cache: CacheMode = opt("auto", CACHE_HELP)
    fuse_kernels: bool = opt(False, "with the static cache: run each language-model layer's RMSNorms, rotary embedding "
                             "and SiLU-times-up as torch.compile'd kernels (Llama/Mistral/Qwen2/Qwen3 decoders; "
                             "others run unfused with a warning; compiles on the first batch)")
    prefix_reuse: bool = opt(True, "with the static cache (LLaVA-1.5): rows of one batch that share an image at a layer "
                             "compute their common prompt start (system prompt + image tokens) once, and each "
                             "row only its own text; the scan then groups rows by image. Same tokens, less "
                             "prefill (--no-prefix-reuse: every row whole, rows sorted by prompt length)")
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
    template: Template = opt("hf", TEMPLATE_HELP, resume=True)
    system_prompt: str | None = opt(None, SYSTEM_PROMPT_HELP, resume=True)

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
        # a setting added since the original run was recorded counts as its default (e.g. template)
        diff = [k for k in _RESUME_KEYS if old.get(k, ScanConfig.__dataclass_fields__[k].default) != getattr(cfg, k)]
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
    """Run a scan; returns the summary stored in run.json. ``adapter`` may be passed pre-loaded.

    Under ``torchrun`` / ``accelerate launch`` (WORLD_SIZE > 1) the processes scan one run together
    (docs/scale.md): rank 0 holds the folder lock, each rank generates its share of the
    one-process batches into its own part file, and rank 0 merges the parts into
    generations.jsonl, in the order one process writes, once every rank is done."""
    from .. import distributed as dist
    from ..lock import locked_out

    cfg.validate()  # types, choices (--cache, --dtype), finite numbers, ranges: one line naming the option
    info = dist.rank_info()
    if not info.distributed:
        out = prepare_out_dir(cfg)
        with locked_out(out, log=log):  # one writer per folder; a killed run's stale lock is taken over
            return _scan(cfg, out, info, adapter=adapter, progress=progress, log=log)
    device = _rank_device(cfg, info)  # same checks on every rank: no rank is left waiting
    info = dist.setup(use_cuda=device.startswith("cuda"))
    from contextlib import ExitStack

    from ..lock import holder_error, read_holder

    with ExitStack() as stack:
        def take_folder():  # rank 0: check OUT, create it and take its lock for the whole launch
            out = prepare_out_dir(cfg)
            stack.enter_context(locked_out(out, log=log))
            return read_holder(out)

        holder = dist.on_main(take_folder)
        out = Path(cfg.out)
        # The other ranks check that the lock they see is rank 0's: OUT on a filesystem they
        # all share, and no second launch writing there.
        dist.all_ok(None if info.is_main else holder_error(out, holder))
        return _scan(cfg, out, info, adapter=adapter, progress=progress, log=log, device=device)


def _rank_device(cfg: ScanConfig, info) -> str:
    """The device of this rank's model in a multi-process scan: GPU LOCAL_RANK, or the CPU."""
    if cfg.device_map:
        raise UserError("--device-map spreads one model over several GPUs within ONE process; under torchrun / "
                        "accelerate launch each process holds a whole model: drop --device-map, or run one process")
    from ..distributed import rank_device

    return rank_device(cfg.device, info)


def scan_order(samples, *, by_image: bool) -> list:
    """The order samples are scanned in: by prompt length (less padding), or with ``by_image`` and an
    image that repeats, by image first, so a batch's rows share images and their prefixes are
    computed once (prefix reuse, docs/design.md §4.4). Deterministic: every rank and a resumed scan
    form the same groups."""
    if by_image and len({str(s.image) for s in samples}) < len(samples):
        return sorted(samples, key=lambda s: (str(s.image), len(s.prompt), str(s.id)))
    return sorted(samples, key=lambda s: (len(s.prompt), s.id))


def prepare(adapter, need, max_new_tokens: int, context: int | None) -> tuple[list, list, list]:
    """Load and tokenise a group's samples: ``(items, ok, fails)``, ``ok`` = (sample, input text,
    item) of the usable ones, ``fails`` = (sample, input text, reason) of the others (an image that
    cannot be read or processed, a prompt past the context)."""
    from ..data.base import ImageError, load_image

    items: list[dict] = []
    ok: list = []
    fails: list = []
    for s in need:
        input_text = adapter.build_prompt(s.prompt)
        reason: str | None
        try:
            item = adapter.tokenize(input_text, load_image(s.image))
        except ImageError as e:
            reason = str(e)
        except Exception as e:  # processor rejects the image (size, mode, ...)
            reason = f"cannot process image {s.image}: {type(e).__name__}: {e}"
        else:
            reason = _over_context(item, max_new_tokens, context)
            if reason is None:
                items.append(item)
                ok.append((s, input_text, item))
                continue
        fails.append((s, input_text, reason))
    return items, ok, fails


class Prefetch:
    """The groups' :func:`prepare` results in order; with prefetching on, the next group is loaded
    and tokenised in a background thread (by an adapter copy with its own processor) while this one
    is on the GPU: images and preprocessing overlap generation (docs/design.md §4.4)."""

    def __init__(self, adapter, groups: list, max_new_tokens: int, context: int | None):
        import torch

        on = PREFETCH if PREFETCH is not None else torch.device(adapter.device).type == "cuda"
        self.groups, self.args = groups, (max_new_tokens, context)
        self.adapter = adapter.preprocessing_copy() if on and len(groups) > 1 else adapter
        self.pool = None
        if self.adapter is not adapter:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(1, thread_name_prefix="layersafe-scan-prefetch")

    def __iter__(self):
        if self.pool is None:
            for g in self.groups:
                yield prepare(self.adapter, g, *self.args)
            return
        # One group ahead: group k+1 is submitted before group k is handed out.
        futures = (self.pool.submit(prepare, self.adapter, g, *self.args) for g in self.groups)
        pending = next(futures, None)
        while pending is not None:
            ahead = next(futures, None)
            yield pending.result()  # a bug in preparing surfaces here; bad rows are in ``fails``
            pending = ahead

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def row_order(samples, layers: list[int], batch_size: int):
    """Sort key putting rows in the order one process writes them for a fresh scan: group by
    group (``batch_size`` samples in scan order), a group's failed rows (sample, then layer) before
    its generations (layer, then sample). Rows of pairs outside the scan come first, in place."""
    pos = {str(s.id): i for i, s in enumerate(samples)}
    lpos: dict = {l: i for i, l in enumerate(layers)}

    def key(r: dict) -> tuple[int, int, int, int]:
        p, li = pos.get(str(r.get("sample_id"))), lpos.get(r.get("layer"))
        if p is None or li is None:
            return (-1, 0, 0, 0)
        g, i = divmod(p, batch_size)
        return (g, 0, i, li) if r.get("error") is not None else (g, 1, li, i)

    return key


def _pair(r: dict) -> tuple[str, object]:
    return (str(r.get("sample_id")), r.get("layer"))


def _scan(cfg: ScanConfig, out: Path, info, *, adapter, progress: bool, log, device: str | None = None) -> dict:
    from .. import distributed as dist
    from ..data import load_dataset
    from ..layers import parse_layers
    from ..models import context_length, load_vlm, model_identity

    import torch

    dataset = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
    content = dataset_hash(dataset)
    if cfg.resume:
        dist.on_main(lambda: _check_same_dataset(out, content))
    if adapter is None:
        adapter = load_vlm(cfg.model, dtype=cfg.dtype, device=device or cfg.device, device_map=cfg.device_map,
                           trust_remote_code=cfg.trust_remote_code, adapter=cfg.adapter,
                           allow_pickle=cfg.allow_pickle)
    from ..models.templates import describe, set_template

    set_template(adapter, cfg.template, cfg.system_prompt)  # input_text shows it (models/templates.py)
    layers = parse_layers(cfg.layers, adapter.num_layers, adapter.default_layer)
    identity = model_identity(adapter, cfg.model)
    if identity["tiny_random"] and info.is_main:
        log("NOTE: the model is layersafe's tiny randomly initialised LLaVA (embedded default): "
            "its responses are random text, useful only to check the pipeline end to end.")
    gen_path = out / GENERATIONS
    # Similar prompt lengths batch together (less padding); the order is deterministic so a
    # resumed scan forms the same groups as an uninterrupted one, and every rank the same plan.
    cache = cfg.cache
    if cache == "auto" and len(set(getattr(adapter.model, "hf_device_map", {}).values())) > 1:
        # --device-map spread the model over several devices: a CUDA graph captures one device's
        # stream, so the static-cache decoder (docs/design.md §4.4) is not used (docs/scale.md).
        cache = "dynamic"
    # Prefix reuse needs the static-cache decoder (on CUDA with --cache auto, or --cache static).
    reuse = cfg.prefix_reuse and getattr(adapter, "prefix_reuse", False) and (
        cache == "static" or (cache == "auto" and torch.device(adapter.device).type == "cuda"))
    samples = scan_order(dataset.samples, by_image=reuse)
    batch = _batch_size(cfg, adapter, samples, layers, cache, info, log)
    order = row_order(samples, layers, batch)
    context = context_length(adapter.model.config)
    run = {
        "config": asdict(cfg),
        "versions": package_versions(),
        "argv": sys.argv,
        "model": identity,
        "num_layers": adapter.num_layers,
        "default_layer": adapter.default_layer,
        "layers": layers,
        "batch_size_resolved": batch,
        "prefix_reuse": reuse,
        "template": describe(cfg.template, cfg.system_prompt),
        "dataset": {"name": dataset.name, "source": dataset.source, "n_samples": len(dataset.samples),
                    "n_bad_rows": len(dataset.errors), "content_sha256": content,
                    "bad_rows": [{"row": e.row, "reason": e.reason} for e in dataset.errors[:100]]},
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if info.distributed:
        run["world_size"] = info.world

    def start() -> list[tuple[str, int]]:  # rank 0 (or the one process), holding the lock
        added = merge_parts(gen_path, order)  # rows of a killed multi-process run
        if added:
            log(f"note: merged {added} rows that a killed multi-process run left in part files")
        atomic_write_json(out / RUN_JSON, run)
        for e in dataset.errors[:5]:
            log(f"warning: {dataset.source} row {e.row} skipped: {e.reason}")
        if len(dataset.errors) > 5:
            log(f"warning: {len(dataset.errors)} bad rows skipped in all (listed in run.json)")
        return sorted(done_pairs(gen_path))

    done = set(dist.on_main(start))

    from tqdm.auto import tqdm

    if getattr(adapter, "fuse_kernels", False) != cfg.fuse_kernels:
        adapter.release_cache()  # a decoder it holds was built with the other setting
    adapter.fuse_kernels = cfg.fuse_kernels  # read when the adapter builds its static-cache decoder
    # Sampling from the untruncated softmax(logits/T) is seeded per row by (seed, sample, layer)
    # (docs/design.md §4.4): a row's draw depends on neither its batch nor its process, so N
    # processes, another --batch-size or a resume sample what one uninterrupted process samples.
    # Truncated sampling (top-p/top-k) draws from torch's generator, seeded per rank.
    per_row = cfg.do_sample and cfg.top_p >= 1.0 and not getattr(adapter.model.generation_config, "top_k", None)
    if cfg.do_sample and not per_row:
        torch.manual_seed(cfg.seed + info.rank)
    todo_total = sum(1 for s in samples for l in layers if (s.id, l) not in done)
    stats: dict = {"generated": 0, "failed": 0, "skipped_done": len(samples) * len(layers) - todo_total,
             "new_tokens": 0}
    t0 = time.time()
    desc = f"scan rank {info.rank}/{info.world}" if info.distributed else "scan"
    bar = tqdm(total=-(-todo_total // info.world), desc=desc, unit="gen", disable=not progress,
               dynamic_ncols=True, position=info.rank)
    # Work is split in the units one process runs (a group's failed rows; one generate call), in
    # one-process order, unit u to rank u % world: every generate call is the one a single process
    # makes, so greedy rows are the same, and the shares differ by at most one call.
    unit = 0
    calls: list[tuple[int, float]] = []  # (rows, seconds) of each generate call
    write_path = dist.part_path(gen_path, info.rank) if info.distributed else gen_path
    groups = [need for need in ([s for s in g if any((s.id, l) not in done for l in layers)]
                                for g in iter_chunks(samples, batch)) if need]
    prepared = Prefetch(adapter, groups, cfg.max_new_tokens, context)
    with JsonlAppender(write_path) as writer, prepared:
        for items, ok, fails in prepared:
            # one failed row per (sample, layer) keeps the row contract
            failed = [_row(s, l, input_text, adapter, error=reason)
                      for s, input_text, reason in fails for l in layers if (s.id, l) not in done]
            if failed:
                if unit % info.world == info.rank:
                    writer.write_many(failed)
                    stats["failed"] += len(failed)
                    bar.update(len(failed))
                unit += 1
            if not ok:
                continue
            # Layer-major pairs, chunked across layer boundaries so every generate call is full.
            pairs = [(i, layer) for layer in layers for i, (s, _, _) in enumerate(ok) if (s.id, layer) not in done]
            chunks = list(iter_chunks(pairs, batch))
            mine = [c for k, c in enumerate(chunks) if (unit + k) % info.world == info.rank]
            unit += len(chunks)
            if not mine:
                continue
            wanted = {l for c in mine for _, l in c}
            enc = adapter.encode(items, [l for l in layers if l in wanted])  # the whole group, as one process
            for chunk in mine:
                feats = []
                for layer in dict.fromkeys(l for _, l in chunk):  # distinct layers, in order
                    feats += adapter.features(enc, layer, [i for i, l in chunk if l == layer])
                seeds = [row_seed(cfg.seed, ok[i][0].id, layer) for i, layer in chunk] if per_row else None
                extra: dict = {"sample_seeds": seeds} if seeds else {}
                if reuse:  # rows with the same image at the same layer share their prompt start
                    extra["prefix_keys"] = [(str(ok[i][0].image), layer) for i, layer in chunk]
                t_call = time.perf_counter()
                gens = adapter.generate(
                    [ok[i][2] for i, _ in chunk], feats, max_new_tokens=cfg.max_new_tokens,
                    do_sample=cfg.do_sample, temperature=cfg.temperature, top_p=cfg.top_p, cache=cache, **extra)
                calls.append((len(chunk), time.perf_counter() - t_call))  # the tokens are on the host: synced
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
    stats.update(call_timing(calls))
    if info.distributed:
        dist.barrier()  # every rank's part is complete and closed
        shares = dist.gather(stats)
        stats = {k: sum(s[k] for s in shares) if k not in ("skipped_done", "median_row_seconds") else stats[k]
                 for k in stats}
        meds = [s["median_row_seconds"] for s in shares if s["median_row_seconds"] is not None]
        stats["median_row_seconds"] = round(sum(meds) / len(meds), 6) if meds else None  # mean of the ranks'

        stats["per_rank_generated"] = [s["generated"] for s in shares]

    def finish() -> dict:
        merge_parts(gen_path, order)
        elapsed = time.time() - t0
        run.update(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), kv_cache=cache,
                   stats={**stats, "seconds": round(elapsed, 3),
                          "generations_per_s": round(stats["generated"] / elapsed, 3) if elapsed > 0 else None})
        atomic_write_json(out / RUN_JSON, run)
        return run

    return dist.on_main(finish)  # the other ranks return once the merged file is written


def _batch_size(cfg: ScanConfig, adapter, samples, layers: list[int], cache: str, info, log) -> int:
    """``--batch-size``, with ``auto`` resolved once (layersafe/scan/batching.py). Every rank takes the
    smallest rank's choice, so all plan the same generate calls."""
    if cfg.batch_size != "auto":
        return int(cfg.batch_size)
    from .. import distributed as dist
    from .batching import resolve_batch_size

    pairs = -(-len(samples) * len(layers) // info.world)  # this rank's share: a bigger batch is only padding
    batch = resolve_batch_size(adapter, samples, pairs, cache=cache,
                               max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample, top_p=cfg.top_p)
    batch = min(dist.gather(batch))
    if info.is_main:
        log(f"--batch-size auto: {batch}")
    return batch


def merge_parts(gen_path: Path, order) -> int:
    """Fold a multi-process scan's part files into generations.jsonl in one-process order."""
    from ..distributed import merge_parts as merge

    return merge(gen_path, identity=_pair, order=order)


def row_seed(seed: int, sample_id, layer: int) -> int:
    """The sampling seed of one (sample, layer) row: 32 bits of sha256(seed, sample id, layer)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\0{sample_id}\0{layer}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


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
