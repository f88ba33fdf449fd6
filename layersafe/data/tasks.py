"""The paper's evaluation sets as registered tasks (docs/paper.md, docs/design.md §2 Registries).

A :class:`Task` names one evaluation set and how it is scored: where its data comes from (a
dataset spec built from a data root, or a built-in set), the judges whose headline values make
its table columns, the metrics reported, and the answer length. ``layersafe paper`` runs every
registered task (or those named by ``--sets``); adding a set is one :func:`register_task` call.

The four sets of Bachu et al. (ICML 2025), with the upstream layouts :mod:`.paper_sets` reads:

* ``RT``: RedTeam-2K queries (JailBreakV-28K) + benign photos: ``JailBreakV_28K/RedTeam_2K.csv``;
* ``MR``: mini-JailBreakV-28K: ``JailBreakV_28K/mini_JailBreakV_28K.csv`` with its image folders
  beside it (``image_path`` is relative to ``JailBreakV_28K/``, as in the hub repo);
* ``AC``: the 520 AdvBench goals (built in) x random COCO images: ``coco/val2014/``;
* ``CP``: 10 AdvBench goals held out of AC x 10 benign photos (built in; no files).

Judges are named by kind, not spec (their model paths come from the command line):
``llamaguard`` -> ASR, ``reward`` -> TR, ``perspective`` -> TS (:data:`PAPER_METRICS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError

# Paper metric -> (default judge kind, the score keys it may read, in order). Scores are keyed by
# judge (docs/design.md §3.4): TS reads whichever toxicity judge ran (``--toxicity perspective``,
# the paper's, or the offline ``toxicity``); the paper run's own record of its TS judge comes
# first (report/paper_tables.py). ASR is a share of binary verdicts; TS and TR are means of
# continuous scores.
PAPER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ASR": ("llamaguard", ("llamaguard",)),
    "TS": ("perspective", ("perspective", "toxicity")),
    "TR": ("reward", ("reward",)),
}


@dataclass(frozen=True)
class Task:
    """One evaluation set: ``dataset(root)`` gives its dataset spec from a data root (``root`` is
    None when no ``--data-root`` was given; built-in sets ignore it). ``files`` says what to
    download and where it goes, for the error when it is missing."""

    name: str
    title: str
    dataset: Callable[[Path | None], str]
    files: str
    judges: tuple[str, ...] = ("llamaguard", "perspective", "reward")
    metrics: tuple[str, ...] = ("ASR", "TS", "TR")
    max_new_tokens: int = 64

    def spec(self, root: str | Path | None, override: str | None = None) -> str:
        """The dataset spec of this task: ``override`` when given, else from ``root``."""
        if override:
            return override
        return self.dataset(Path(root).expanduser() if root else None)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    key = name.strip().upper()
    if key not in TASKS:
        raise UserError(f"unknown evaluation set {name!r}; the paper's sets are {', '.join(TASKS)}")
    return TASKS[key]


def parse_sets(spec: str | None) -> list[Task]:
    """``RT,MR`` -> those tasks in the given order (None or ``all``: every registered task)."""
    if spec is None or spec.strip().lower() == "all":
        return list(TASKS.values())
    names = [s for s in (p.strip() for p in spec.split(",")) if s]
    if not names:
        raise UserError(f"--sets {spec!r} names no set; use a comma list of {', '.join(TASKS)}")
    tasks = [get_task(n) for n in names]
    if len({t.name for t in tasks}) < len(tasks):
        raise UserError(f"--sets {spec!r} names a set twice")
    return tasks


def _under(root: Path | None, rel: str, task: str, kind: str) -> str:
    if root is None:
        raise UserError(f"set {task} needs its data: give --data-root DIR (with {rel}) or --set {task}=SPEC")
    p = root / rel
    ok = p.is_dir() if kind == "dir" else p.is_file()
    if not ok:
        raise UserError(f"set {task}: {p} not found; put the upstream {kind} there "
                        f"(see `layersafe paper --help` or docs/paper.md), or give --set {task}=SPEC "
                        "(a local path or a hub id), or leave the set out with --sets")
    return str(p)


RT_FILE = "JailBreakV_28K/RedTeam_2K.csv"
MR_FILE = "JailBreakV_28K/mini_JailBreakV_28K.csv"
AC_DIR = "coco/val2014"

register_task(Task("RT", "RedTeam-2K queries + benign images (JailBreakV-28K)",
                   lambda root: "redteam2k:" + _under(root, RT_FILE, "RT", "file"),
                   f"{RT_FILE} (hub: redteam2k:hf:JailbreakV-28K/JailBreakV-28k)"))
register_task(Task("MR", "mini-JailBreakV-28K (jailbreak queries with their images)",
                   lambda root: "mini-jailbreakv:" + _under(root, MR_FILE, "MR", "file"),
                   f"{MR_FILE} + its image folders (hub: mini-jailbreakv:hf:JailbreakV-28K/JailBreakV-28k)"))
register_task(Task("AC", "AdvBench goals x random MS-COCO images",
                   lambda root: "advbench-coco:" + _under(root, AC_DIR, "AC", "dir"),
                   f"{AC_DIR}/ (COCO val2014 images; the AdvBench goals are built in)"))
register_task(Task("CP", "10 held-out AdvBench goals x 10 benign photos (built in)",
                   lambda root: "custom-prompts", "nothing (built in)"))
