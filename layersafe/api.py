"""layersafe's Python API: one function per command, for notebooks and pipelines (docs/python.md).

Each function takes the command's config dataclass (``ScanConfig``, ``LPPOConfig``, ...) or its
fields as keyword arguments (``out=`` is ``--out``, ``max_new_tokens=`` is ``--max-new-tokens``),
checks them exactly as the command line does (the same :func:`layersafe.config.config_from_args`,
so a bad value raises :class:`~layersafe.errors.UserError` with the CLI's message) and calls the
same library function as the command. The command handlers call these functions or the same
library functions, so there is one code path.

Nothing heavy is imported here: torch loads when a function that needs a model runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

from .config import config_from_args, option_fields
from .errors import UserError
from .paper import PaperConfig
from .rl.configs import LPPOConfig, RMTrainConfig, SFTConfig
from .scan.engine import GENERATIONS, RUN_JSON, ScanConfig
from .utility.run import UtilityConfig

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Run", "Report", "LayerInfo", "load_run",
    "scan", "judge", "align", "sft", "train_rm", "eval_rm", "utility", "paper", "report", "trim", "check", "CheckResult",
    "layer_info", "list_judges", "list_datasets",
    "ScanConfig", "LPPOConfig", "SFTConfig", "RMTrainConfig", "UtilityConfig", "PaperConfig", "UserError",
]

Log = Callable[[str], None]
PathLike = Union[str, Path]
RunLike = Union["Run", str, Path]

SCORES = "scores.jsonl"  # = layersafe.evaluate.SCORES (kept here so reading a run imports no judge)
METRICS = "metrics.csv"
METRICS_BY_CATEGORY = "metrics_by_category.csv"
PANDAS_HINT = "pip install 'layersafe[pandas]'"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@contextlib.contextmanager
def _bars(progress: bool):
    """With ``progress=False``, transformers' and the hub's own bars ("Loading weights") are hidden
    too, for the call only (the command line turns them off for good)."""
    if progress:
        yield
        return
    from huggingface_hub import utils as hub
    from transformers.utils import logging as tlog

    was_on, hub_off = tlog.is_progress_bar_enabled(), hub.are_progress_bars_disabled()
    tlog.disable_progress_bar()
    hub.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            tlog.enable_progress_bar()
        if not hub_off:
            hub.enable_progress_bars()


# ============================================================================================
# Configs from keyword arguments: the CLI's own parsing path
# ============================================================================================

# Fields that hold a layer spec: Python callers may give an int or a list (``layers=[0, 11]``).
_LAYER_FIELDS = ("layers", "layer", "teacher_layer", "ptx_layer", "layer_weights")


def _coerce(name: str, v: Any) -> Any:
    """Python conveniences that map onto the option's text form: a Path for a path, an int or a
    list for a layer spec, one judge name for the list of judges."""
    if isinstance(v, os.PathLike):  # a Path, or a Run (layers_from_scan=run)
        return os.fspath(v)
    if name in _LAYER_FIELDS:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, (list, tuple, range)):
            return ",".join(str(x) for x in v)
    if name == "judges" and isinstance(v, str):
        return [v]
    return v


def build_config(cls: type, config: Any = None, options: dict | None = None, *, command: str,
                 required: tuple[str, ...] = (), aliases: dict[str, str] | None = None,
                 parse: Callable[[argparse.Namespace], Any] | None = None) -> Any:
    """``cls`` from a config object and/or keyword options, through the command line's own
    :func:`~layersafe.config.config_from_args` (``parse``: the command's variant of it). Options
    given as keywords override the config's fields; ``config`` may also be a YAML/JSON file for
    commands that take ``--config``. Unknown keywords are a :class:`UserError` naming close ones."""
    options = {(aliases or {}).get(k, k): v for k, v in (options or {}).items()}
    names = [f.name for f, _ in option_fields(cls)]
    unknown = [k for k in options if k not in names]
    if unknown:
        hints = [m for k in unknown for m in difflib.get_close_matches(k, names, n=1)]
        raise UserError(f"{command}(): unknown option(s) {', '.join(unknown)}"
                        + (f"; did you mean {', '.join(hints)}?" if hints else f"; options are {', '.join(names)}"))
    values: dict[str, Any] = {}
    ns = argparse.Namespace()
    if isinstance(config, (str, Path)) and parse is not None:
        ns.config_file = str(config)  # commands with --config read YAML/JSON files
    elif config is not None:
        if not isinstance(config, cls):
            raise UserError(f"{command}(): config must be a {cls.__name__}, got {type(config).__name__}")
        values.update({n: getattr(config, n) for n in names})
    values.update({k: _coerce(k, v) for k, v in options.items()})
    for k, v in values.items():
        setattr(ns, k, v)
    return parse(ns) if parse is not None else config_from_args(cls, ns, required=required)


# ============================================================================================
# Run folders as DataFrames
# ============================================================================================

def _pandas():
    try:
        import pandas
    except ImportError:
        raise UserError(f"Run DataFrames need pandas, which is not installed: {PANDAS_HINT}") from None
    return pandas


class Run:
    """A run folder (``scan``, ``utility``) read back: DataFrames of its files and its ``run.json``.

    ``generations``, ``scores``, ``metrics`` and ``metrics_by_category`` are pandas DataFrames read
    on first use (``pip install 'layersafe[pandas]'``). In ``scores`` every judge's score is a column
    of its own, named by judge (``refusal``, ``refusal_outcome``, ``llamaguard``, ``reward``, ...); a
    score whose name is already a column of the generations is called ``scores.NAME``. The object reads files once:
    :meth:`reload` (or the :class:`Run` that :func:`judge` returns) sees later changes."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        p = self.path
        if not p.is_dir():
            raise UserError(f"{p}: no such run folder" if not p.exists() else f"{p} is a file; give a run folder")
        if not (p / RUN_JSON).is_file() and not (p / GENERATIONS).is_file():
            raise UserError(f"{p} is not a run folder (no {RUN_JSON} or {GENERATIONS}); give a folder written by "
                            "layersafe scan or utility")
        self.info: dict = {}
        if (p / RUN_JSON).is_file():
            import json

            try:
                self.info = json.loads((p / RUN_JSON).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise UserError(f"{p / RUN_JSON} is not valid JSON ({e})") from None
            if not isinstance(self.info, dict):
                raise UserError(f"{p / RUN_JSON} is not a JSON object")

    # --- run.json ---------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The configuration the run was made with (``run.json["config"]``: the ScanConfig fields)."""
        return dict(self.info.get("config") or {})

    @property
    def num_layers(self) -> int | None:
        """Encoder depth: valid layers are ``0..num_layers`` (docs/design.md §3.1)."""
        return self.info.get("num_layers")

    @property
    def default_layer(self) -> int | None:
        """The layer the model itself uses."""
        return self.info.get("default_layer")

    @property
    def layers(self) -> list[int]:
        """The layers scanned."""
        return list(self.info.get("layers") or [])

    @property
    def judged(self) -> bool:
        """Whether the run has ``scores.jsonl`` (a judge ran over it)."""
        return (self.path / SCORES).is_file()

    # --- DataFrames ---------------------------------------------------------------------------
    @cached_property
    def generations(self) -> pd.DataFrame:
        """``generations.jsonl``: one row per (sample, layer), columns as in docs/design.md §3.3."""
        return _records_frame(_read_jsonl(self.path / GENERATIONS, "nothing was generated yet"))

    @cached_property
    def scores(self) -> pd.DataFrame:
        """``scores.jsonl``: the generations plus one column per score (``refusal``: 1 a written
        refusal, 0 not; ``refusal_outcome``: refused / complied / empty / degenerate; ...)."""
        from .judges.base import folder_judges, upgrade_rows

        rows = _read_jsonl(self.path / SCORES, "the run is not judged yet: layersafe.judge(run, 'refusal')")
        return scores_frame(upgrade_rows(rows, judged_by=folder_judges(self.path)))  # earlier versions' keys too

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """``metrics.csv``: one row per layer (``asr`` with its 95 % interval, ``refusal_rate``, ...)."""
        return _read_csv(self.path / METRICS, "the run is not judged yet: layersafe.judge(run, 'refusal')")

    @cached_property
    def metrics_by_category(self) -> pd.DataFrame | None:
        """``metrics_by_category.csv`` (one row per layer and category), or None when the samples
        carry no category."""
        p = self.path / METRICS_BY_CATEGORY
        return _read_csv(p, "") if p.is_file() else None

    def reload(self) -> Run:
        """A fresh :class:`Run` of the same folder (after the files changed)."""
        return Run(self.path)

    def __repr__(self) -> str:
        model = self.config.get("model")
        return (f"Run({str(self.path)!r}, model={model!r}, layers={self.layers}, default_layer={self.default_layer}, "
                f"judged={self.judged})")

    def __fspath__(self) -> str:  # a Run goes wherever a folder path does
        return str(self.path)


def load_run(path: RunLike) -> Run:
    """Read a run folder (written by ``scan`` or ``utility``) as a :class:`Run`."""
    return path if isinstance(path, Run) else Run(path)


def _read_jsonl(path: Path, missing: str) -> list[dict]:
    from .io import read_jsonl

    if not path.is_file():
        raise UserError(f"{path} not found: {missing}")
    return read_jsonl(path)


def _records_frame(rows: list[dict]) -> pd.DataFrame:
    return _pandas().DataFrame.from_records(rows) if rows else _pandas().DataFrame()


def scores_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows with a ``scores`` object as a DataFrame with one column per score (a score named like
    a row column becomes ``scores.NAME``); rows without scores get missing values there."""
    rows = list(rows)
    columns = {k for r in rows for k in r if k != "scores"}
    flat = []
    for r in rows:
        d = {k: v for k, v in r.items() if k != "scores"}
        s = r.get("scores")
        if isinstance(s, dict):
            for k, v in s.items():
                d[f"scores.{k}" if k in columns else k] = v
        flat.append(d)
    return _records_frame(flat)


def _read_csv(path: Path, missing: str) -> pd.DataFrame:
    from .io import _csv_uncell

    pd = _pandas()
    if not path.is_file():
        raise UserError(f"{path} not found: {missing}")
    df = pd.read_csv(path)
    for c in df.columns:  # undo the spreadsheet-formula escape of text cells (layersafe.io.csv_cell)
        if df[c].dtype == object:
            df[c] = df[c].map(_csv_uncell)
    return df


# ============================================================================================
# scan
# ============================================================================================

def scan_judges(judges: Sequence[str] | str | None) -> list[str]:
    """The judges a scan runs: the command's default ``refusal`` when none are given, none for
    ``"none"`` (``--judge none``)."""
    judges = [judges] if isinstance(judges, str) else list(judges or [])
    judges = judges or ["refusal"]
    others = [j for j in judges if j.strip().lower() != "none"]
    if not others:
        return []
    if len(others) < len(judges):
        raise UserError(f"--judge none means no judge; it cannot be given with {', '.join(others)}")
    return judges


def scan(config: ScanConfig | None = None, /, *, report: bool = True, progress: bool = True, log: Log | None = None,
         **options: Any) -> Run:
    """``layersafe scan``: generate at every requested image-encoder layer, judge, aggregate, report.

    ``options`` are the fields of :class:`~layersafe.scan.engine.ScanConfig` (``model``, ``data``,
    ``layers``, ``out`` (required), ``limit``, ``max_new_tokens``, ``batch_size``, ``adapter``,
    ``resume``, ...); ``layers`` may be a spec string (``"all"``, ``"default,0-4"``), an int or a
    list of ints. ``judges`` (``judge=`` too): a name or a list; default ``refusal``, ``"none"``
    to skip judging. ``report=False`` skips OUT/report/. ``progress=False`` hides the bars; ``log``
    receives notes and warnings (default: stderr). Returns the run folder as a :class:`Run`.

    >>> run = layersafe.scan(model="organism", data="custom-prompts", layers=[0, "default"], limit=10, out="runs/x")
    """
    cfg = build_config(ScanConfig, config, options, command="scan", required=("out",),
                       aliases={"data": "dataset", "judge": "judges", "sample": "do_sample"})
    cfg = dataclasses.replace(cfg, judges=scan_judges(cfg.judges))
    with _bars(progress):
        run_scan_pipeline(cfg, report=report, progress=progress, log=log or _stderr)
    return Run(cfg.out)


def run_scan_pipeline(cfg: ScanConfig, *, report: bool = True, progress: bool = True, log: Log = _stderr,
                      say: Log | None = None) -> dict:
    """What ``layersafe scan`` does once its options are parsed (``cfg.judges`` already resolved by
    :func:`scan_judges`): check the judges, scan, judge + metrics, report. ``say`` receives the
    command's console lines (the CLI prints them). Returns ``{"run", "table", "report"}``."""
    from .scan.engine import run_scan

    say = say or (lambda m: None)
    judges = list(cfg.judges)
    if judges:
        from .judges.base import get_judge, require_paths

        for j in judges:  # fail on a bad judge name or path before hours of generation
            require_paths(get_judge(j))
    run = run_scan(cfg, progress=progress, log=log)
    from .distributed import rank_info

    if not rank_info().is_main:  # under torchrun / accelerate launch rank 0 reports (docs/scale.md)
        say, report = (lambda m: None), False
    out = Path(cfg.out)
    st = run["stats"]
    say(f"scan complete: {st['generated']} new generations, {st['failed']} failed rows, "
        f"{st['skipped_done']} already done, {st['seconds']:.1f} s")
    table = None
    if judges:
        from .evaluate import judge_run

        table = judge_run(out, judges, progress=progress, log=log)
        for line in asr_table_lines(table, run["default_layer"]):
            say(line)
    files = ["generations.jsonl", "run.json"] + (["scores.jsonl", "metrics.csv"] if judges else [])
    files += ["metrics_by_category.csv"] if judges and (out / "metrics_by_category.csv").is_file() else []
    say(f"results: {out.resolve()}/ ({', '.join(files)})")
    html = None
    if report:
        from .report import build_report

        html = build_report(out)["files"]["html"]
        say(f"report: {html}")
    if run["model"]["tiny_random"]:
        say("note: these responses come from a tiny RANDOM model (embedded default), not a real VLM.")
    return {"run": run, "table": table, "report": html}


def asr_table_lines(table: list[dict], default_layer: int) -> list[str]:
    """The scan's console table: ASR per layer with its 95 % interval, the default layer marked."""
    lines = ["layer    n   ASR    95% CI"]
    for r in table:
        mark = "  <- default" if r["layer"] == default_layer else ""
        if r["n"]:
            lines.append(f"{r['layer']:>5} {r['n']:>4}  {r['asr']:.3f}  [{r['asr_ci_low']:.3f}, {r['asr_ci_high']:.3f}]{mark}")
        else:
            lines.append(f"{r['layer']:>5} {r['n']:>4}  -      (no judged harmful rows){mark}")
    return lines


# ============================================================================================
# judge
# ============================================================================================

_OUT_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv")


def _check_judge_out(out: Path | None, force: bool, batch_size: int) -> None:
    if out is not None:
        if out.exists() and not force:
            raise UserError(f"--out {out} exists; pass --force to overwrite it or choose another name")
        if out.suffix.lower() not in _OUT_SUFFIXES:
            raise UserError(f"--out {out}: use a .jsonl or .csv file name")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")


def _judge_and_write(rows: list[dict], judges: list[str], out: Path | None, *, batch_size: int, progress: bool,
                     log: Log | None) -> dict:
    """Judge ``rows`` in place and write them to ``out`` (if given). Scores are journalled beside
    ``out`` as they are computed: if the final write fails (disk full) or the run is killed, the
    same call again reuses them instead of judging anew."""
    from .io import write_rows
    from .judges.base import upgrade_rows
    from .judges.runner import judge_rows

    upgrade_rows(rows)  # rows judged by an earlier version (``unsafe``, ...) keep their scores under today's keys
    kw = {} if log is None else {"log": log}
    if out is None:
        return judge_rows(rows, judges, batch_size=batch_size, progress=progress, **kw)
    journal = out.parent / f".{out.name}.journal.tmp"
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = judge_rows(rows, judges, batch_size=batch_size, progress=progress, journal=journal, **kw)
    from .distributed import rank_info

    if not rank_info().is_main:  # a multi-process launch judged together; rank 0 writes (docs/scale.md)
        return counts
    write_rows(out, rows)
    journal.unlink(missing_ok=True)
    return counts


def judge_file(input: PathLike, judges: Sequence[str], out: PathLike, *, batch_size: int = 64, force: bool = False,
               progress: bool = True, log: Log | None = None) -> dict:
    """``layersafe judge --input FILE --judge ... --out FILE2``; returns the counts (``scored``,
    ``skipped_failed_rows``, per-judge summaries)."""
    from .io import read_rows

    out = Path(out)
    _check_judge_out(out, force, batch_size)
    rows = read_rows(input)
    if not rows:
        raise UserError(f"{input} has no rows")
    return _judge_and_write(rows, list(judges), out, batch_size=batch_size, progress=progress, log=log)


def judge_run_dir(run: RunLike, judges: Sequence[str], *, batch_size: int = 64, report: bool = True,
                  progress: bool = True, log: Log | None = None) -> list[dict]:
    """``layersafe judge RUN_DIR --judge NAME``: add or replace the judges' scores in RUN_DIR/scores.jsonl
    in place (other judges' scores are kept; every file is replaced atomically and scores are
    journalled, so a kill loses nothing and the same command continues), rewrite metrics.csv
    (a utility run keeps its suite's columns) and, with ``report``, RUN_DIR/report. Holds the
    folder's lock, so it never races a scan writing there. Returns the per-layer table."""
    from .evaluate import judge_run
    from .lock import locked_out

    _check_judge_out(None, False, batch_size)
    specs = [judges] if isinstance(judges, str) else list(judges)
    if not specs:
        raise UserError("no judge given; use --judge NAME[:ARG] (see `layersafe judges`)")
    r = load_run(run)
    if not (r.path / GENERATIONS).is_file():
        raise UserError(f"{r.path} has no {GENERATIONS}: nothing to judge")
    from .judges.base import get_judge

    for j in specs:  # a bad spec fails before anything is read or written
        get_judge(j)
    with locked_out(r.path, log=log or _stderr):
        table = judge_run(r.path, specs, progress=progress, log=log or _stderr, batch_size=batch_size)
        suite = (r.info.get("utility") or {}).get("suite")
        if suite:
            from .evaluate import write_metrics
            from .io import read_jsonl
            from .utility.run import utility_metrics

            table = write_metrics(r.path, read_jsonl(r.path / SCORES), lambda rs: utility_metrics(rs, suite))
    if report and (r.path / RUN_JSON).is_file():
        from .report.cli import make_report

        make_report(str(r.path))
    return table


def judge(target: Any, judges: str | Sequence[str] = "refusal", *, out: PathLike | None = None, force: bool = False,
          batch_size: int = 64, progress: bool = True, log: Log | None = None) -> Any:
    """``layersafe judge``: score responses with one or more judges (``layersafe.list_judges()``;
    specs like ``"llamaguard:MODEL"`` or ``"reward:rm/,batch_size=16"``).

    ``target`` is one of:

    * a :class:`Run` or a run folder: judges its generations into ``scores.jsonl`` and the metrics
      files (as a scan does) and returns the :class:`Run` read afresh;
    * a ``.jsonl`` / ``.csv`` file with ``prompt`` and ``response`` columns: returns its rows with a
      ``scores`` dict each, written to ``out`` too when given (the command's ``--out``/``--force``);
    * a list of row dicts: returns judged copies (``out`` as above);
    * a pandas DataFrame with ``prompt`` and ``response`` columns: returns a DataFrame with one
      column per score.
    """
    specs = [judges] if isinstance(judges, str) else list(judges)
    if not specs:
        raise UserError("no judge given; use --judge NAME[:ARG] (see `layersafe judges`)")
    out_path = Path(out) if out is not None else None
    if isinstance(target, Run) or (isinstance(target, (str, Path)) and Path(target).is_dir()):
        if out_path is not None:
            raise UserError("judge(): out= is for rows and files; a run folder is judged in place (scores.jsonl, metrics.csv)")
        judge_run_dir(target, specs, batch_size=batch_size, report=False, progress=progress, log=log)
        return load_run(target).reload()
    _check_judge_out(out_path, force, batch_size)
    frame = None
    if isinstance(target, (str, Path)):
        from .io import read_rows

        rows = read_rows(target)
        if not rows:
            raise UserError(f"{target} has no rows")
    elif _is_frame(target):
        frame = target
        rows = [{k: (None if _is_missing(v) else v) for k, v in r.items()} for r in target.to_dict("records")]
    elif isinstance(target, (list, tuple)) and all(isinstance(r, dict) for r in target):
        rows = [{**r, **({"scores": dict(r["scores"])} if isinstance(r.get("scores"), dict) else {})} for r in target]
    else:
        raise UserError(f"judge(): give a Run, a run folder, a .jsonl/.csv file, a list of row dicts or a DataFrame, "
                        f"not {type(target).__name__}")
    if not rows:
        raise UserError("judge(): no rows to judge")
    _judge_and_write(rows, specs, out_path, batch_size=batch_size, progress=progress, log=log)
    return rows if frame is None else _with_score_columns(frame, rows)


def _is_frame(x: Any) -> bool:
    pd = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
    return pd is not None and isinstance(x, pd.DataFrame)


def _is_missing(v: Any) -> bool:
    return isinstance(v, float) and v != v  # NaN from a DataFrame's empty cell


def _with_score_columns(frame: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """``frame`` with one column per score of the judged ``rows`` (replacing columns of the same
    name, e.g. when a ``Run.scores`` frame is judged again)."""
    res = frame.copy()
    scores = [r.get("scores") if isinstance(r.get("scores"), dict) else {} for r in rows]
    for k in dict.fromkeys(k for s in scores for k in s):
        res[k] = [s.get(k) for s in scores]
    if "scores" in res.columns:
        res["scores"] = [s or None for s in scores]
    return res


# ============================================================================================
# align, sft, train-rm, eval-rm
# ============================================================================================

def align(config: LPPOConfig | PathLike | None = None, /, *, progress: bool = True, log: Log | None = None,
          **options: Any) -> Path:
    """``layersafe align``: repair chosen layers with L-PPO (``method="lppo"``, the paper's eq. 10)
    or layer-consistency distillation (``method="distill"``: the default layer teaches the LoRA
    student at ``layers``; no reward). ``config``: an :class:`LPPOConfig` or a YAML/JSON file of
    its fields; ``options`` (its fields, ``out`` required) override it. Returns OUT/adapter, the
    peft adapter that ``scan(adapter=...)`` and ``utility(adapter=...)`` take."""
    from .rl.align_cli import config_from_args as align_config
    from .rl.lppo import train

    cfg = build_config(LPPOConfig, config, options, command="align", parse=align_config)
    with _bars(progress):
        train(cfg, progress=progress, log=log or _stderr)
    return Path(cfg.out) / "adapter"


def sft(config: SFTConfig | None = None, /, *, progress: bool = True, log: Log | None = None, **options: Any) -> Path:
    """``layersafe sft``: the supervised safety fine-tuning baseline (LoRA; harmful prompts -> a
    refusal at the chosen layers). ``options``: the fields of :class:`SFTConfig` (``out`` required).
    Returns the adapter folder."""
    from .rl.sft import train_sft

    cfg = build_config(SFTConfig, config, options, command="sft", required=("out",))
    with _bars(progress):
        return Path(train_sft(cfg, progress=progress, log=log or _stderr)["adapter"])


def train_rm(config: RMTrainConfig | None = None, /, *, progress: bool = True, log: Log | None = None,
             **options: Any) -> Path:
    """``layersafe train-rm``: a Bradley–Terry reward model on preference pairs
    (:class:`RMTrainConfig`; ``data`` and ``out`` required). Returns the model folder (for
    ``reward="rm:PATH"`` or the ``reward:PATH`` judge); its card is OUT/rm_card.json."""
    from .rl.reward_model import train_reward_model

    cfg = build_config(RMTrainConfig, config, options, command="train_rm", required=("data", "out"))
    with _bars(progress):
        train_reward_model(cfg, progress=progress, log=log or _stderr)
    return Path(cfg.out)


def eval_rm(model: PathLike, data: str, *, limit: int | None = None, max_length: int | None = None,
            batch_size: int = 32, device: str = "auto", out: PathLike | None = None, force: bool = False,
            trust_remote_code: bool = False, allow_pickle: bool = False, progress: bool = True,
            log: Log | None = None) -> dict:
    """``layersafe eval-rm``: pairwise accuracy of a reward model with its Wilson 95 % interval.
    Returns ``accuracy``, ``correct``, ``n``, ``ci_low``, ``ci_high``, ``loss``, ``reward_margin``
    (and writes per-pair rewards to ``out``, a .jsonl file, when given)."""
    from .rl.rm_cli import evaluate_rm

    with _bars(progress):
        return evaluate_rm(str(model), data, limit=limit, max_length=max_length, batch_size=batch_size, device=device,
                           out=None if out is None else str(out), force=force, trust_remote_code=trust_remote_code,
                           allow_pickle=allow_pickle, progress=progress, log=log or _stderr)


# ============================================================================================
# utility, report, layers, listings
# ============================================================================================

def utility(config: UtilityConfig | None = None, /, *, progress: bool = True, log: Log | None = None,
            **options: Any) -> Run:
    """``layersafe utility``: over-refusal (``suite="xstest"``), VQA-v2 accuracy (``"vqav2"``) or
    the reward of benign answers (``"reward"``) per layer. ``options``: the fields of
    :class:`UtilityConfig` (``suite`` and ``out`` required). Returns the run folder as a :class:`Run`."""
    from .utility.run import run_utility

    cfg = build_config(UtilityConfig, config, options, command="utility", required=("suite", "out"))
    with _bars(progress):
        run_utility(cfg, progress=progress, log=log or _stderr)
    return Run(cfg.out)


def paper(config: PaperConfig | None = None, /, *, progress: bool = True, log: Log | None = None,
          **options: Any) -> dict:
    """``layersafe paper``: the paper's Table 1 and Table 2 (RT, MR, AC, CP x every layer; Llama
    Guard ASR, reward-model TR, Perspective TS), resumable, with before/after tables given
    ``compare`` (docs/paper.md). ``options``: the fields of :class:`~layersafe.paper.PaperConfig`
    (``model``, ``data_root``, ``out`` (required), ``rm``, ``guard``, ``limit``, ``compare``,
    ``resume``, ...). Returns ``{"files": {name: path}, "console": the Table 2 text, "tables": per
    set {"layers", "groups"}, "compare": the before/after numbers or None}``."""
    from .paper import run_paper

    cfg = build_config(PaperConfig, config, options, command="paper", required=("out",))
    with _bars(progress):
        return run_paper(cfg, progress=progress, log=log or _stderr)


@dataclass(frozen=True)
class Report:
    """What :func:`report` wrote: ``html`` (report.html), ``summary`` (summary.json's content) and
    ``table`` (the console table: layer groups and, with ``compare``, the deltas). ``str()`` is the table."""

    html: Path
    summary: dict
    table: str

    def __str__(self) -> str:
        return self.table


def report(run: RunLike, compare: RunLike | Sequence[RunLike] = (), *, out: PathLike | None = None,
           force: bool = False, redact: bool = False, examples: int = 3) -> Report:
    """``layersafe report``: report.html, PNG plots and summary.json from a run folder alone,
    overlaying ``compare`` (one run or several, e.g. after ``align``) with per-layer deltas.
    ``out`` defaults to RUN/report; ``redact`` hides response text; ``examples``: example
    responses per layer."""
    from .report.cli import make_report

    others = [compare] if isinstance(compare, (Run, str, Path)) else list(compare)
    summary = make_report(_path(run), [_path(o) for o in others], None if out is None else str(out), force=force,
                          redact=redact, examples=examples)
    table = summary.pop("console")
    return Report(Path(summary["files"]["html"]), summary, table)


def _path(run: RunLike) -> str:
    return str(run.path if isinstance(run, Run) else run)


@dataclass(frozen=True)
class LayerInfo:
    """A model's image-encoder layers in layersafe's numbering (docs/design.md §3.1)."""

    model: str
    architecture: str
    family: str
    num_layers: int
    default_layer: int
    meaning: str

    @property
    def valid(self) -> range:
        """The valid layer numbers, ``0..num_layers``."""
        return range(self.num_layers + 1)


def layer_info(model: str, *, trust_remote_code: bool = False, allow_pickle: bool = False) -> LayerInfo:
    """``layersafe layers``: a model's encoder depth, default layer and what a layer number means."""
    from .models import load_vlm

    ad = load_vlm(model, device="cpu", dtype="auto", trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    return LayerInfo(model, type(ad.model).__name__, ad.family, ad.num_layers, ad.default_layer, ad.layer_meaning())


def list_judges() -> dict[str, str]:
    """``layersafe judges``: judge name -> one-line description."""
    from .judges.base import available

    return {name: cls.description for name, cls in sorted(available().items())}


def list_datasets() -> dict[str, str]:
    """``layersafe datasets``: built-in dataset name -> one-line description."""
    from .data import list_datasets as builtin

    return builtin()


# ============================================================================================
# trim, check
# ============================================================================================

def trim(config: Any = None, /, *, log: Log | None = None, **options: Any) -> dict:
    """``layersafe trim``: export an early-exit checkpoint (encoder blocks 1..L only, an ``adapter``
    merged first) that loads in plain transformers and reads exactly the layer-L features a scan
    fed the model (docs/trim.md). ``options``: the fields of ``layersafe.trim.TrimConfig``
    (``model``, ``layer``, ``out`` required; ``adapter``, ``dtype``, ``device``, ``latency_repeats``,
    ...). Returns what OUT/trim.json holds (the check, parameter/FLOP/latency savings)."""
    from .trim import TrimConfig, trim_model

    cfg = build_config(TrimConfig, config, options, command="trim", required=("model", "layer", "out"))
    return trim_model(cfg.model, cfg.layer, cfg.out, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device,
                      latency_repeats=cfg.latency_repeats, trust_remote_code=cfg.trust_remote_code,
                      allow_pickle=cfg.allow_pickle, log=log or _stderr)


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found: ``passed`` (also the truth value), one row per checked layer
    (``layer``, ``n``, ``asr`` with its interval, ``value`` compared, ``passed``, ``reason``) and
    ``table`` (what the command prints; also ``str()``)."""

    passed: bool
    rows: list
    table: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.table


def check(run: RunLike, max_asr: float, layers: str | int | Sequence[int | str] | None = None, *,
          judge: str | None = None, point: bool = False) -> CheckResult:
    """``layersafe check``: a release gate on a judged scan: every checked layer's ASR (the upper
    end of its 95 % interval, or the point value with ``point=True``) must be at most ``max_asr``.
    ``layers``: a layer spec (default every layer in metrics.csv); ``judge``: read that judge's ASR
    columns. ``if not layersafe.check(run, 0.05): ...``."""
    from .check import check_run, format_check

    if max_asr is None:
        raise UserError("--max-asr is required")
    spec = None if layers is None else _coerce("layers", layers)
    ok, rows = check_run(_path(run), max_asr, layers=spec, judge=judge, point=point)
    return CheckResult(ok, rows, format_check(ok, rows, max_asr, point=point))
