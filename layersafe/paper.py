"""``layersafe paper``: the paper's Table 1 and Table 2 in one resumable command (docs/paper.md).

Stages, each recorded in RUN/paper.json as it finishes (with its wall time, ``seconds``), so
``--resume`` continues after a kill:

1. **scan** every evaluation set (the registered tasks of ``layersafe.data.tasks``: RT, MR, AC,
   CP) at every requested encoder layer into RUN/<SET>/, an ordinary scan folder (resumable row
   by row); the VLM is loaded once for all sets;
2. **judge** each set with each judge (Llama Guard -> ASR, the reward model -> TR, Perspective ->
   TS), one judge at a time into RUN/<SET>/scores.jsonl and metrics.csv; scores are journalled
   batch by batch, so a judge killed half way continues where it stopped;
3. **tables**: RUN/table1.csv, RUN/table2.csv, RUN/stats.csv and RUN/report.html (and, with
   ``--compare RUN2``, the before/after tables), rebuilt from the set folders' files every time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import DTYPE_HELP, PICKLE_HELP, DType, check_fields, opt
from .errors import UserError

PAPER_JSON = "paper.json"
DEFAULT_GUARD = "meta-llama/Llama-Guard-3-8B"
PERSPECTIVE_KEY_ENV = "PERSPECTIVE_API_KEY"  # = judges.toxicity.KEY_ENV

Template = Literal["auto", "hf", "llava_v1"]


@dataclass
class PaperConfig:
    """Every knob of ``layersafe paper`` (its options are these fields: layersafe.config).
    ``resume=True`` marks the settings a ``--resume`` must keep."""

    model: str = opt("tiny-random-llava", "HF hub id or local folder of the VLM (e.g. llava-hf/llava-1.5-7b-hf)",
                     resume=True)
    data_root: str | None = opt(None, "folder holding the upstream files: JailBreakV_28K/RedTeam_2K.csv (RT), "
                                "JailBreakV_28K/mini_JailBreakV_28K.csv + its images (MR), coco/val2014/ (AC); "
                                "CP is built in")
    out: str = opt("runs/paper", "output folder (must be empty unless --resume)")
    sets: str = opt("all", "evaluation sets, a comma list of RT, MR, AC, CP (default all)", resume=True)
    set_specs: list[str] = opt(default_factory=list, help="a set's data from elsewhere, e.g. "
                               "RT=redteam2k:hf:JailbreakV-28K/JailBreakV-28k (repeatable; any dataset spec)",
                               flag="--set", metavar="NAME=SPEC", resume=True)
    layers: str = opt("all", "layer spec: all, default, N, A-B or a comma list (the paper: all)", resume=True)
    guard: str = opt(DEFAULT_GUARD, "Llama Guard for ASR: HF id or folder, with judge options after commas "
                     "(e.g. /models/lg3,batch_size=32); none to skip ASR")
    rm: str | None = opt(None, "reward model for TR: PATH or rm:PATH (a `layersafe train-rm` folder or any "
                         "1-output sequence classifier); TR is skipped with a note when not given")
    toxicity: str = opt("perspective", "judge for TS: perspective (needs PERSPECTIVE_API_KEY; skipped with a note "
                        "without it; options e.g. perspective,qps=10), toxicity (offline lexicon), "
                        "toxicity:MODEL, or none")
    template: Template = opt("auto", "conversation template: llava_v1 (the original LLaVA repository's vicuna_v1 "
                             "conversation, with its system prompt), hf (the processor's chat template), auto = "
                             "llava_v1 for LLaVA-1.5, hf for other families (docs/paper.md says why)", resume=True)
    system_prompt: str | None = opt(None, "system prompt text (default: the template's own)", resume=True)
    adapter: str | None = opt(None, "peft adapter folder (from `layersafe align` / `sft`) merged before scanning",
                              resume=True)
    compare: str | None = opt(None, "another paper run folder (the 'before', e.g. the unrepaired model): adds "
                              "before/after tables (this run - RUN2) with McNemar tests and prompt-bootstrap "
                              "intervals")
    limit: int | None = opt(None, "a small version: only the first N samples of each set", min=1, resume=True)
    max_new_tokens: int | None = opt(None, "tokens per response (default: each set's, 64)", min=1, resume=True)
    batch_size: int | Literal["auto"] = opt(
        "auto", "sequences per generate call, or auto (scan --batch-size auto: on a GPU the largest of "
        "256/128/64/32/16/8 whose static KV cache fits in 60% of the memory free after loading, chosen per set; "
        "8 on CPU). Default auto: the sweep is a GPU job that has the GPU to itself while scanning (the judges "
        "load after), and larger batches decode faster per row (docs/design.md §4.4)", min=1, metavar="N|auto")
    judge_batch_size: int = opt(256, "rows per judge call (a kill loses at most one call's rows; on a GPU the guard "
                                "runs batches of 256 unless --guard sets batch_size=N, so keep this at least that)",
                                min=1)
    fuse_kernels: bool = opt(True, "on a GPU: the scan's static-cache decoder (scan --fuse-kernels) and a forward-mode "
                             "Llama Guard (fuse=on) run RMSNorm, rotary and SiLU-times-up as compiled kernels "
                             "(Llama/Mistral/Qwen language models; faster on the H200, docs/benchmarks.md); "
                             "--no-fuse-kernels for transformers' own kernels")
    n_boot: int = opt(2000, "bootstrap draws for the intervals", min=100)
    resume: bool = opt(False, "continue an interrupted run in OUT (any stage)")
    seed: int = opt(0, "seed for dataset pairing and the bootstrap", resume=True)
    dtype: DType = opt("auto", DTYPE_HELP, resume=True)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    trust_remote_code: bool = opt(False, "allow model code from the hub (off by default)")
    allow_pickle: bool = opt(False, PICKLE_HELP)

    def validate(self) -> None:
        check_fields(self)


RESUME_KEYS = tuple(f.name for f in dataclasses.fields(PaperConfig) if f.metadata.get("resume"))


# --------------------------------------------------------------------------------------------
# Planning: sets, judges
# --------------------------------------------------------------------------------------------

def _overrides(specs: list[str]) -> dict[str, str]:
    from .data.tasks import get_task

    out: dict[str, str] = {}
    for s in specs:
        name, eq, spec = s.partition("=")
        if not eq or not spec.strip():
            raise UserError(f"--set {s!r}: use --set NAME=SPEC, e.g. RT=redteam2k:PATH/RedTeam_2K.csv")
        out[get_task(name).name] = spec.strip()
    return out


def plan_sets(cfg: PaperConfig) -> list[tuple]:
    """(task, dataset spec) per set, every set's data checked before anything loads."""
    from .data.tasks import parse_sets

    tasks = parse_sets(cfg.sets)
    over = _overrides(cfg.set_specs)
    unused = sorted(set(over) - {t.name for t in tasks})
    if unused:
        raise UserError(f"--set {', '.join(unused)} given, but --sets leaves {'it' if len(unused) == 1 else 'them'} out")
    return [(t, t.spec(cfg.data_root, over.get(t.name))) for t in tasks]


def _model_judge(spec: str, cfg: PaperConfig, **defaults) -> str:
    """A model judge's spec with the command's --device and --allow-pickle, and ``defaults``, each
    unless the spec sets its own."""
    from .judges.base import parse_spec

    opts = parse_spec(spec)[2]
    if cfg.device != "auto" and "device" not in opts:
        spec += f",device={cfg.device}"
    if cfg.allow_pickle and "allow_pickle" not in opts:
        spec += ",allow_pickle=1"
    for k, v in defaults.items():
        if k not in opts:
            spec += f",{k}={v}"
    return spec


def _on_gpu(spec: str, cfg: PaperConfig) -> bool:
    import torch

    from .judges.base import parse_spec

    dev = str(parse_spec(spec)[2].get("device", cfg.device))
    return dev.startswith("cuda") or (dev == "auto" and torch.cuda.is_available())


def _guard_fuse(spec: str, cfg: PaperConfig) -> dict:
    """fuse=on for a forward-mode guard on a GPU (--fuse-kernels, the default): its fused kernels judge 1.17-1.28x faster on the
    H200 (docs/benchmarks.md), which repays the compile over a sweep; on the CPU, compiling needs a
    C compiler and buys little. A guard spec that sets fuse or mode itself keeps its own."""
    from .judges.base import parse_spec

    forward = parse_spec(spec)[2].get("mode", "forward") == "forward"
    return {"fuse": "on"} if cfg.fuse_kernels and forward and _on_gpu(spec, cfg) else {}


# Judge batches on a GPU when the spec sets none (the judges' own default, 8, is sized for a CPU):
# Llama Guard 3 8B at 256 rows reaches 68 % of the matmul rate on the H200, a GPT-2-sized reward
# model is far from memory-bound at 64 (docs/benchmarks.md); --judge-batch-size must be at least
# the guard's batch for it to be filled.
GPU_GUARD_BATCH = 256
GPU_RM_BATCH = 64


def _gpu_batch(spec: str, cfg: PaperConfig, n: int) -> dict:
    return {"batch_size": n} if _on_gpu(spec, cfg) else {}


def plan_judges(cfg: PaperConfig) -> tuple[list[tuple[str, str]], list[str]]:
    """([(metric, judge spec)], notes about metrics that are skipped). Llama Guard and the reward
    model run on ``--device`` (and load pickle weights with ``--allow-pickle``) unless their spec
    says otherwise."""
    judges, notes = [], []
    if cfg.guard.strip().lower() != "none":
        # The headline needs the verdict only: one forward pass per row, no decoding (2.1x on the
        # H200, docs/benchmarks.md); mode=generate in --guard brings the categories back.
        spec = "llamaguard:" + cfg.guard.strip()
        judges.append(("ASR", _model_judge(spec, cfg, mode="forward", **_guard_fuse(spec, cfg),
                                           **_gpu_batch(spec, cfg, GPU_GUARD_BATCH))))
    else:
        notes.append("ASR skipped (--guard none): the paper's ASR is Llama Guard's share of unsafe responses")
    rm = (cfg.rm or "").strip()
    if rm.lower() in ("", "none"):
        notes.append("TR skipped: give --rm PATH (a reward model, e.g. a `layersafe train-rm` folder) to measure it")
    else:
        spec = "reward:" + (rm[3:] if rm.startswith("rm:") else rm)
        judges.append(("TR", _model_judge(spec, cfg, **_gpu_batch(spec, cfg, GPU_RM_BATCH))))
    tox = cfg.toxicity.strip()
    if tox.lower() == "none":
        notes.append("TS skipped (--toxicity none)")
    elif tox.split(":", 1)[0].split(",", 1)[0] == "perspective" and not os.environ.get(PERSPECTIVE_KEY_ENV, "").strip():
        notes.append(f"TS skipped: Perspective needs an API key in {PERSPECTIVE_KEY_ENV} (or use --toxicity toxicity "
                     "for the offline scorer, which is not the paper's TS)")
    else:
        judges.append(("TS", tox))
    if judges:
        from .judges.base import get_judge

        for _, spec in judges:  # a bad spec fails before hours of generation
            get_judge(spec)
    return judges, notes


def resolve_template(template: str, family: str) -> str:
    """``auto`` -> llava_v1 for the LLaVA(-1.5) family, else hf (docs/paper.md)."""
    if template != "auto":
        return template
    return "llava_v1" if family == "llava" else "hf"


# --------------------------------------------------------------------------------------------
# The state file
# --------------------------------------------------------------------------------------------

class State:
    """RUN/paper.json: the config, the sets and their specs, and the stages done (written atomically)."""

    def __init__(self, out: Path, cfg: PaperConfig):
        self.path = out / PAPER_JSON
        self.data: dict = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise UserError(f"{self.path} is unreadable; cannot resume safely (move the folder away)") from None
        self.data.setdefault("stages", {})
        self.data["config"] = dataclasses.asdict(cfg)

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def mark(self, stage: str, **info) -> None:
        self.data["stages"][stage] = {"done": True, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        self.save()

    def save(self) -> None:
        from .io import atomic_write_json

        atomic_write_json(self.path, self.data)


def _check_out(out: Path, cfg: PaperConfig) -> None:
    from .lock import is_empty

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if is_empty(out):
        return
    if not cfg.resume:
        raise UserError(f"--out {out} is not empty; pass --resume to continue that run or choose a new folder")
    p = out / PAPER_JSON
    if not p.is_file():
        raise UserError(f"--resume: {out} holds no {PAPER_JSON}, so it is not a `layersafe paper` run; choose a new folder")
    try:
        old = json.loads(p.read_text(encoding="utf-8"))["config"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise UserError(f"{p} is unreadable; cannot resume safely (move the folder away)") from None
    now = dataclasses.asdict(cfg)
    diff = [k for k in RESUME_KEYS if old.get(k) != now.get(k)]
    if diff:
        desc = ", ".join(f"{k}: {old.get(k)!r} -> {now.get(k)!r}" for k in diff)
        raise UserError(f"cannot resume {out}: settings differ from the original run ({desc})")


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

def run_paper(cfg: PaperConfig, *, progress: bool = True, log=None, say=None) -> dict:
    """Every stage that is not done yet, then the tables. Returns the tables' summary."""
    from .lock import locked_out

    log = log or (lambda m: print(m, file=sys.stderr))
    say = say or (lambda m: None)
    cfg.validate()
    sets = plan_sets(cfg)  # a missing dataset file fails here, before any model loads
    judges, notes = plan_judges(cfg)
    if cfg.compare:
        _check_compare(cfg.compare)
        if Path(cfg.compare).resolve() == Path(cfg.out).resolve():
            raise UserError("--compare names the output folder itself; give the other run (the 'before')")
    from .data import load_dataset

    for _task, spec in sets:  # every set's rows readable before hours of generation
        load_dataset(spec, seed=cfg.seed, limit=cfg.limit)
    out = Path(cfg.out)
    _check_out(out, cfg)
    with locked_out(out, log=log):
        state = State(out, cfg)
        state.data.update(sets={t.name: {"spec": spec, "title": t.title, "folder": t.name} for t, spec in sets},
                          judges={m: spec for m, spec in judges}, notes=notes, status="running")
        state.data.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        state.save()
        for n in notes:
            log(f"note: {n}")
        _scan_stage(cfg, out, sets, state, progress, log, say)
        _judge_stage(out, sets, judges, state, progress, log, say, cfg.judge_batch_size)
        from .report.paper_tables import build_paper_tables

        t0 = time.perf_counter()
        summary = build_paper_tables(out, compare=cfg.compare, n_boot=cfg.n_boot, seed=cfg.seed)
        state.data.update(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          tables_seconds=round(time.perf_counter() - t0, 3))
        state.save()
    return summary


def _check_compare(path: str) -> None:
    p = Path(path)
    if not (p / PAPER_JSON).is_file():
        raise UserError(f"--compare {p}: not a `layersafe paper` run folder (no {PAPER_JSON})")


def _scan_stage(cfg, out, sets, state, progress, log, say) -> None:
    todo = [(t, spec) for t, spec in sets if not state.done(f"scan:{t.name}")]
    if not todo:
        return
    from .models import load_vlm
    from .scan.engine import ScanConfig, run_scan

    t0 = time.perf_counter()
    adapter = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device, trust_remote_code=cfg.trust_remote_code,
                       adapter=cfg.adapter, allow_pickle=cfg.allow_pickle)
    template = resolve_template(cfg.template, adapter.family)
    state.data["template"] = {"name": template, "system_prompt": cfg.system_prompt, "asked": cfg.template}
    # Loading is paid once for all sets, so it is kept apart from the sets' scan times.
    state.data["load_model_seconds"] = round(time.perf_counter() - t0, 3)
    state.save()
    for task, spec in todo:
        t0 = time.perf_counter()
        folder = out / task.name
        from .lock import is_empty

        scfg = ScanConfig(model=cfg.model, dataset=spec, layers=cfg.layers, out=str(folder),
                          max_new_tokens=cfg.max_new_tokens or task.max_new_tokens, batch_size=cfg.batch_size,
                          resume=not is_empty(folder), limit=cfg.limit, seed=cfg.seed, dtype=cfg.dtype,
                          device=cfg.device, trust_remote_code=cfg.trust_remote_code, adapter=cfg.adapter,
                          allow_pickle=cfg.allow_pickle, template=template, system_prompt=cfg.system_prompt,
                          fuse_kernels=cfg.fuse_kernels)
        log(f"paper: scanning {task.name} ({task.title})")
        run = run_scan(scfg, adapter=adapter, progress=progress, log=log)
        st = run["stats"]
        say(f"{task.name}: scan complete ({st['generated']} new generations, {st['failed']} failed rows, "
            f"{st['skipped_done']} already done)")
        state.mark(f"scan:{task.name}", generated=st["generated"], failed=st["failed"],
                   seconds=round(time.perf_counter() - t0, 3))
    del adapter
    _free_memory()


def _judge_stage(out, sets, judges, state, progress, log, say, batch_size: int) -> None:
    from .evaluate import judge_run

    for metric, spec in judges:  # one judge over every set, then the next (one model in memory)
        for task, _ in sets:
            stage = f"judge:{task.name}:{spec}"
            if state.done(stage):
                continue
            log(f"paper: judging {task.name} with {spec} ({metric})")
            t0 = time.perf_counter()
            timing: dict = {}
            judge_run(out / task.name, [spec], progress=progress, log=log, batch_size=batch_size, timing=timing)
            # loading the judge's model included: the runner loads it for every set; the calls' own
            # split (median per row, warm-up) lets benchmarks extrapolate (layersafe/timing.py)
            state.mark(stage, metric=metric, seconds=round(time.perf_counter() - t0, 3), **timing.get(spec, {}))
            say(f"{task.name}: {metric} judged ({spec})")
        _free_memory()


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


# --------------------------------------------------------------------------------------------
# argparse
# --------------------------------------------------------------------------------------------

def add_parser(sub) -> None:
    from .config import add_options

    p = sub.add_parser(
        "paper", help="the paper's Table 1 and Table 2 (RT, MR, AC, CP x every layer; ASR, TS, TR) in one command",
        description="Reproduce Bachu et al. (ICML 2025) Tables 1 and 2 for a VLM: scan the four evaluation sets "
                    "(RT, MR, AC, CP) at every encoder layer, judge with Llama Guard (ASR), a reward model (TR) and "
                    "Perspective (TS), and write table1.csv, table2.csv, stats.csv and report.html. Resumable as a "
                    "whole with --resume; --compare RUN2 adds before/after tables; --limit N runs a small version. "
                    "docs/paper.md has the data layout.")
    add_options(p, PaperConfig, required=("out",))
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_paper)


def cmd_paper(a) -> int:
    from .config import config_from_args

    cfg = config_from_args(PaperConfig, a, required=("out",))
    summary = run_paper(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr), say=print)
    print(summary["console"])
    for k, v in summary["files"].items():
        print(f"{k}: {v}")
    return 0
