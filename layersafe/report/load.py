"""Read a run folder (run.json + scores.jsonl or generations.jsonl, metrics.csv) into memory."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..io import read_jsonl
from ..judges.base import folder_judges, upgrade_rows
from ..judges.runner import clean_scores

SCORES = "scores.jsonl"
GENERATIONS = "generations.jsonl"
METRICS = "metrics.csv"
RUN_JSON = "run.json"
MAX_LAYERS = 1000  # deeper than any image encoder; a run.json claiming more is damaged


@dataclass
class Run:
    path: Path
    meta: dict  # run.json
    rows: list[dict]
    source: str  # which rows file was read
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def num_layers(self) -> int:
        return int(self.meta["num_layers"])

    @property
    def default_layer(self) -> int | None:
        d = self.meta.get("default_layer")
        return None if d is None else int(d)

    @property
    def judged(self) -> bool:
        return any(isinstance(r.get("scores"), dict) and r["scores"] for r in self.rows)

    def identity(self) -> dict:
        """Who made these numbers: enough to tell runs apart and to trace them back."""
        m, cfg, ds = self.meta.get("model") or {}, self.meta.get("config") or {}, self.meta.get("dataset") or {}
        return {"label": self.label, "path": str(self.path.resolve()), "source": self.source,
                "model": m.get("name") or cfg.get("model"), "model_path": m.get("path"),
                "architecture": m.get("architecture"), "tiny_random": bool(m.get("tiny_random")),
                "dataset": ds.get("name") or cfg.get("dataset"), "n_samples": len({_sid(r) for r in self.rows}),
                "n_rows": len(self.rows), "n_failed_rows": sum(1 for r in self.rows if r.get("error")),
                "layers": sorted({int(r["layer"]) for r in self.rows}), "num_layers": self.num_layers,
                "default_layer": self.default_layer, "asr_judge": _asr_judge(self.rows),
                "scores": sorted({k for r in self.rows if isinstance(r.get("scores"), dict) for k in r["scores"]}),
                "status": self.meta.get("status"), "started": self.meta.get("started"),
                "finished": self.meta.get("finished"),
                "layersafe_version": (self.meta.get("versions") or {}).get("layersafe")}


def _asr_judge(rows: list[dict]) -> str | None:
    from .tables import asr_judge

    return asr_judge(rows)


def _sid(row: dict) -> str:
    return str(row.get("sample_id", row.get("id")))


def load_run(path: str | Path) -> Run:
    """A run folder -> Run; every problem a user can fix is one UserError line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"run folder not found: {path}")
    if not path.is_dir():
        raise UserError(f"{path} is a file; give the run folder written by `layersafe scan --out`")
    if not (path / RUN_JSON).is_file():
        raise UserError(f"{path} has no {RUN_JSON}; is it a folder written by `layersafe scan --out`?")
    try:
        meta = json.loads((path / RUN_JSON).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path / RUN_JSON} is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("num_layers"), int) or meta["num_layers"] < 1:
        raise UserError(f"{path / RUN_JSON} lacks a positive integer num_layers (the encoder depth)")
    if meta["num_layers"] > MAX_LAYERS:  # a damaged or hand-edited run.json; the report walks every layer
        raise UserError(f"{path / RUN_JSON}: num_layers {meta['num_layers']} is not an encoder depth "
                        f"(at most {MAX_LAYERS}); restore run.json from the scan")
    default = meta.get("default_layer")
    if default is not None and not (_is_int(default) and 0 <= int(default) <= meta["num_layers"]):
        raise UserError(f"{path / RUN_JSON}: default_layer {default!r} is not a layer in 0..{meta['num_layers']}; "
                        "restore run.json from the scan")
    notes = []
    if (path / SCORES).is_file():
        source = SCORES
    elif (path / GENERATIONS).is_file():
        source = GENERATIONS
        notes.append(f"no {SCORES}: responses are not judged, so there are no safety metrics; run "
                     f"`layersafe judge --input {path / GENERATIONS} --judge refusal --out {path / SCORES}` "
                     "and report again")
    else:
        raise UserError(f"{path} has neither {SCORES} nor {GENERATIONS}; nothing to report")
    rows = read_jsonl(path / source)
    bad = [i for i, r in enumerate(rows, 1) if "layer" not in r or not _is_int(r["layer"])]
    if bad:
        raise UserError(f"{path / source}: row {bad[0]} has no integer 'layer'")
    outside = next((i for i, r in enumerate(rows, 1) if not 0 <= int(r["layer"]) <= meta["num_layers"]), None)
    if outside is not None:
        raise UserError(f"{path / source}: row {outside} has layer {rows[outside - 1]['layer']}, outside this "
                        f"run's 0..{meta['num_layers']} (run.json num_layers); the files are from different runs")
    upgrade_rows(rows, judged_by=folder_judges(path))  # a run judged by an earlier version: today's keys
    unusable = [d for r in rows if isinstance(r.get("scores"), dict) for d in clean_scores(r["scores"])]
    if not rows:
        raise UserError(f"{path / source} has no rows; nothing to report")
    if unusable:
        notes.append(f"{len(unusable)} unusable score values in {source} (first: {unusable[0]}: NaN, infinite "
                     "or not a 0/1 verdict) are counted as failed scoring; re-judge to replace them")
    if meta.get("status") not in (None, "complete"):
        notes.append(f"run status is {meta.get('status')!r}: the scan may be unfinished (resume it with --resume)")
    if (meta.get("model") or {}).get("tiny_random"):
        notes.append("the model is layersafe's tiny RANDOM LLaVA: its responses are random text (pipeline demo only)")
    return Run(path=path, meta=meta, rows=rows, source=source, notes=notes, label=path.resolve().name)


def _is_int(v) -> bool:
    if isinstance(v, bool):
        return False
    try:
        return int(v) == float(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        return False


def stale_metrics_note(run: Run, asr_by_layer: dict[int, float]) -> str | None:
    """metrics.csv is derived from scores.jsonl; say so when its ASR disagrees (judged again since?)."""
    p = run.path / METRICS
    if run.source != SCORES or not p.is_file():
        return None
    with p.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            try:
                layer, asr = int(r["layer"]), float(r.get("asr") or "nan")
            except (KeyError, ValueError):
                return f"{p} is unreadable; numbers here come from {SCORES}"
            mine = asr_by_layer.get(layer, math.nan)
            if not (math.isnan(asr) and math.isnan(mine)) and not math.isclose(asr, mine, abs_tol=1e-5):
                return (f"{METRICS} disagrees with {SCORES} at layer {layer} (ASR {asr:g} vs {mine:g}); "
                        f"this report uses {SCORES}")
    return None
