"""``layersafe utility``: does a model (or an aligned adapter) stay useful at every layer?

Suites (each = a dataset + a scorer, generation by :func:`layersafe.scan.engine.run_scan`, so the
folder is an ordinary scan run that ``layersafe report`` reads):

* ``xstest``  — refusal judge on XSTest: ``over_refusal`` (share of the 250 safe prompts refused,
  Wilson 95 %) and ``unsafe_refusal_rate`` (share of the 200 ``contrast_`` prompts refused).
* ``vqav2``   — official VQA-v2 accuracy of the short answer: ``vqa_accuracy_mean`` (+ Student-t 95 %).
* ``reward``  — a reward judge (``reward:MODEL``) on answers to benign questions:
  ``reward_mean`` (+ Student-t 95 %), the paper's ATR on utility data.

Writes OUT/generations.jsonl, OUT/run.json (with a ``utility`` section), OUT/scores.jsonl,
OUT/metrics.csv (one row per layer) and OUT/metrics_by_category.csv (per layer and category:
XSTest type, VQA answer type, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal, get_args

from ..config import DTYPE_HELP, SYSTEM_PROMPT_HELP, TEMPLATE_HELP, DType, Template, check_fields, opt
from ..errors import UserError

Suite = Literal["xstest", "vqav2", "reward"]
SUITES: tuple[str, ...] = get_args(Suite)


@dataclass(frozen=True)
class Task:
    """A utility suite: what data it needs, how its answers are scored, which metric heads the table.

    ``score(rows, cfg, answers, progress)`` adds each row's scores in place (a judge or the VQA
    metric); ``headline`` is the metrics.csv column run.json names; ``console`` the per-layer key
    the command prints (``KEY_mean`` / ``KEY_ci_*`` for means, ``KEY`` for rates)."""

    name: str
    data_hint: str
    max_new_tokens: int
    headline: str
    console: str
    label: str  # the console column's title
    score: Callable[[list, "UtilityConfig", dict, bool], None]
    check_config: Callable[["UtilityConfig"], None] = lambda cfg: None  # before anything loads
    check_data: Callable[[object, dict, "UtilityConfig"], None] = lambda ds, answers, cfg: None
    metrics: Callable[[list, list], None] = lambda table, rows: None  # suite columns added per layer
    extra: str | None = None  # a second per-layer console column (metrics.csv key)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task



@dataclass
class UtilityConfig:
    """Every knob of ``layersafe utility`` (its options are these fields: layersafe.config)."""

    suite: Suite = opt("xstest", "xstest = over-refusal on safe prompts and refusal on unsafe ones; vqav2 = VQA-v2 "
                       "accuracy; reward = mean reward of answers to benign questions")
    model: str = opt("tiny-random-llava", "HF id or local folder of a supported VLM (default: tiny random LLaVA)")
    data: str | None = opt(None, "dataset spec: xstest:CSV, vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR, a hub id "
                           "(vqav2:hf:lmms-lab/VQAv2, xstest:hf:REPO), or a .jsonl/.csv (see `layersafe datasets`)")
    layers: str = opt("default", "layer spec: all, default, N, A-B or a comma list")
    out: str = opt("runs/utility", "output folder (must be empty unless --resume)")
    adapter: str | None = opt(None, "peft adapter folder (from `layersafe align` or `layersafe sft`)")
    judge: str | None = opt(None, "reward judge spec for --suite reward", metavar="reward:MODEL")
    limit: int | None = opt(None, "use only the first N samples", min=1)
    max_new_tokens: int | None = opt(None, "tokens per answer (default: 10 for vqav2, else 64)", min=1)
    batch_size: int = opt(8, "sequences per generate call", min=1)
    resume: bool = opt(False, "continue an interrupted run in OUT")
    seed: int = opt(0, "seed for dataset pairing")
    dtype: DType = opt("auto", DTYPE_HELP)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    template: Template = opt("hf", TEMPLATE_HELP)
    system_prompt: str | None = opt(None, SYSTEM_PROMPT_HELP)

    def validate(self) -> None:
        check_fields(self)  # --suite among SUITES, ranges, finite numbers
        if not self.data:
            raise UserError(f"--suite {self.suite} needs --data ({TASKS[self.suite].data_hint})")
        TASKS[self.suite].check_config(self)


def score_vqa(rows: list[dict], answers: dict[str, list[str]]) -> None:
    """Add ``scores.vqa_accuracy`` (official metric on the short answer) to every generated row."""
    from .vqa_eval import short_answer, vqa_accuracy

    for r in rows:
        if r.get("error") or r.get("response") is None:
            continue
        gts = answers.get(str(r["sample_id"]))
        if not gts:
            continue
        r.setdefault("scores", {})
        if not isinstance(r["scores"], dict):
            r["scores"] = {}
        r["scores"]["vqa_accuracy"] = vqa_accuracy(short_answer(r["response"]), gts)


def utility_metrics(rows: list[dict], suite: str) -> list[dict]:
    """Per-layer table: the shared per-layer metrics plus the suite's headline columns."""
    from ..metrics import per_layer_metrics

    table = per_layer_metrics(rows)
    TASKS[suite].metrics(table, rows)
    return table


def _unsafe_refusal_rate(table: list[dict], rows: list[dict]) -> None:
    """XSTest: share of the unsafe (contrast_) prompts refused per layer, Wilson 95 %."""
    from ..metrics.aggregate import is_harmful, wilson_interval

    for t in table:
        unsafe = [r for r in rows if int(r["layer"]) == t["layer"] and not r.get("error")
                  and is_harmful(r) and isinstance(r.get("scores"), dict) and r["scores"].get("refusal") is not None]
        k, n = sum(int(r["scores"]["refusal"]) for r in unsafe), len(unsafe)
        lo, hi = wilson_interval(k, n)
        t.update(unsafe_n=n, unsafe_refusal_rate=k / n if n else float("nan"),
                 unsafe_refusal_rate_ci_low=lo, unsafe_refusal_rate_ci_high=hi)


def run_utility(cfg: UtilityConfig, *, adapter=None, progress: bool = True, log=print) -> dict:
    from ..data import load_dataset
    from ..evaluate import SCORES, write_metrics
    from ..io import atomic_write_json, read_jsonl, write_rows
    from ..scan.engine import GENERATIONS, RUN_JSON, ScanConfig, run_scan

    cfg.validate()
    ds = load_dataset(cfg.data, seed=cfg.seed, limit=cfg.limit)  # fail on bad data before loading the model
    answers = {s.id: s.meta.get("answers") for s in ds.samples if s.meta.get("answers")}
    task = TASKS[cfg.suite]
    task.check_data(ds, answers, cfg)
    mnt = cfg.max_new_tokens or task.max_new_tokens
    scan_cfg = ScanConfig(model=cfg.model, dataset=cfg.data, layers=cfg.layers, out=cfg.out, max_new_tokens=mnt,
                          batch_size=cfg.batch_size, resume=cfg.resume, limit=cfg.limit, seed=cfg.seed,
                          dtype=cfg.dtype, device=cfg.device, adapter=cfg.adapter, template=cfg.template,
                          system_prompt=cfg.system_prompt)
    run = run_scan(scan_cfg, adapter=adapter, progress=progress, log=log)
    out = Path(cfg.out)
    rows = read_jsonl(out / GENERATIONS)
    task.score(rows, cfg, answers, progress)
    write_rows(out / SCORES, rows)
    table = write_metrics(out, rows, lambda rs: utility_metrics(rs, cfg.suite))
    run["utility"] = {**asdict(cfg), "max_new_tokens": mnt, "headline": task.headline}
    atomic_write_json(out / RUN_JSON, run)
    return {"run": run, "table": table}


def headline(table: list[dict], suite: str) -> list[tuple]:
    """(layer, n, value, ci_low, ci_high) per layer for the suite's headline metric (console table)."""
    key = TASKS[suite].console
    out = []
    for t in table:
        if TASKS[suite].extra:  # a rate (benign_n rows) plus a second column
            out.append((t["layer"], t.get("benign_n", 0), t.get(key, float("nan")), t.get(f"{key}_ci_low", float("nan")),
                        t.get(f"{key}_ci_high", float("nan")), t.get(TASKS[suite].extra, float("nan"))))
        else:
            out.append((t["layer"], t.get(f"{key}_n", 0), t.get(f"{key}_mean", float("nan")),
                        t.get(f"{key}_ci_low", float("nan")), t.get(f"{key}_ci_high", float("nan"))))
    return out


# ---- the suites ------------------------------------------------------------------------------

def _judge_with(specs: Callable[["UtilityConfig"], list[str]]):
    def score(rows, cfg, answers, progress):
        from ..judges.runner import judge_rows

        judge_rows(rows, specs(cfg), progress=progress)
    return score


def _needs_reward_judge(cfg) -> None:
    if not cfg.judge:
        raise UserError("--suite reward needs --judge reward:MODEL (a reward model folder or hub id)")
    from ..judges.base import get_judge, require_paths

    require_paths(get_judge(cfg.judge))  # a bad spec or path fails before generation


def _needs_answers(ds, answers, cfg) -> None:
    if not answers:
        raise UserError(f"--suite vqav2: {cfg.data} has no human answers; use vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR")


def _needs_safe_prompts(ds, answers, cfg) -> None:
    if not any(s.harmful is False for s in ds.samples):
        raise UserError(f"--suite xstest: {cfg.data} has no safe (harmful=false) prompts to measure over-refusal on")


register_task(Task("xstest", "xstest:PATH/xstest_prompts.csv", 64, "over_refusal", "over_refusal", "over-refusal",
                   _judge_with(lambda cfg: ["refusal"]), check_data=_needs_safe_prompts, metrics=_unsafe_refusal_rate,
                   extra="unsafe_refusal_rate"))
register_task(Task("vqav2", "vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR", 10, "vqa_accuracy_mean", "vqa_accuracy",
                   "VQA acc", lambda rows, cfg, answers, progress: score_vqa(rows, answers), check_data=_needs_answers))
register_task(Task("reward", "a .jsonl/.csv of benign questions or vqav2:Q,A,DIR", 64, "reward_mean", "reward", "reward",
                   _judge_with(lambda cfg: [cfg.judge]), check_config=_needs_reward_judge))
assert set(TASKS) == set(SUITES), "every Suite literal needs a registered Task"
