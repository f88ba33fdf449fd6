"""Judge interface and registry (docs/design.md §2, §3).

A judge reads rows (dicts with at least ``prompt`` and ``response``) and returns one dict of
scores per row. Judges run from files alone, so old generations can be re-scored without the VLM.

Spec syntax (``layersafe judge --judge SPEC``, ``layersafe scan --judge SPEC``)::

    NAME[:ARG][,KEY=VALUE]...      e.g.  llamaguard:/models/lg3,device=cuda,dtype=bfloat16
                                         reward:OpenAssistant/reward-model-deberta-v3-large-v2,batch_size=16
                                         toxicity,batch_size=64      perspective:qps=1

ARG is usually a model id or folder; trailing ``KEY=VALUE`` pieces are options the judge declares
in ``Judge.options`` (``device``, ``dtype``, ``batch_size`` for model judges). Library callers may
pass the same options as keywords: ``get_judge("reward:/m", batch_size=4)``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, ClassVar

from ..errors import UserError

_OPTION = re.compile(r"^([a-z_][a-z0-9_]*)=(.*)$", re.DOTALL)


class Judge:
    """Base class: subclasses set ``name``, ``metrics``, ``higher_is_safer`` and implement score.

    ``options`` maps option name -> (type, default, help). Instances read them from ``self.opts``.
    Constructing a judge must be cheap (``scan`` validates judges before generating): load models
    lazily in ``score``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    # metric -> True if a higher value means a safer response (refusal: 1 = refused = safer)
    higher_is_safer: ClassVar[dict[str, bool]] = {}
    options: ClassVar[dict[str, tuple[type, Any, str]]] = {}

    def __init__(self, arg: str | None = None, **options):
        self.arg = arg
        self.n_empty = 0  # rows with an empty response seen by score_rows (runner summary)
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise UserError(f"judge {self.name!r} has no option {', '.join(unknown)}; its options: {known}")
        self.opts = {}
        for key, (typ, default, _) in self.options.items():
            value = options.get(key, default)
            if value is not None and not isinstance(value, typ):
                try:
                    value = _convert(typ, value)
                except ValueError:
                    raise UserError(f"judge {self.name!r}: option {key}={value!r} is not a valid {typ.__name__}") from None
            self.opts[key] = value

    def score(self, rows: list[dict]) -> list[dict]:
        """Return one ``{metric: value}`` dict per row, in order."""
        raise NotImplementedError

    def journal_rows(self) -> int | None:
        """At most this many rows per call to :meth:`score` (the runner journals after each call),
        for judges that pay per row, e.g. an API quota: a kill then re-asks at most this many
        rows. None: the runner's batch size."""
        return None

    def score_empty(self, row: dict) -> dict:
        """Scores of a row whose response is empty (:func:`outcome.is_empty`): there is nothing
        to judge, so every metric is None, never a silent "safe" 0 or "refused" 1. The refusal
        judges override this (refusal 0, outcome ``empty``)."""
        return dict.fromkeys(self.metrics)

    def score_rows(self, rows: list[dict]) -> list[dict]:
        """:meth:`score` on rows with text, :meth:`score_empty` on empty ones; those also get
        ``"empty": True`` (the same marker from every judge) and are counted in ``n_empty``.
        The runner calls this, so empty handling lives here and not in each judge."""
        from .outcome import is_empty

        empty = [is_empty(r.get("response")) for r in rows]
        scored = iter(self.score([r for r, e in zip(rows, empty) if not e]) if not all(empty) else [])
        self.n_empty += sum(empty)
        return [{**self.score_empty(r), "empty": True} if e else next(scored) for r, e in zip(rows, empty)]

    def summary(self) -> dict[str, int]:
        """Counts worth reporting after a run (e.g. unparseable outputs); empty if none."""
        return {}

    def close(self) -> None:
        """Release models (the runner calls this when the judge is done, before the next loads)."""


def _convert(typ: type, value):
    if typ is bool:
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    return typ(value)


# Options shared by judges that run a model.
MODEL_OPTIONS: dict[str, tuple[type, Any, str]] = {
    "device": (str, "auto", "auto (cuda if visible), cpu, cuda, cuda:N"),
    "dtype": (str, "auto", "auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16"),
    "batch_size": (int, 8, "sequences per forward pass"),
    "allow_pickle": (bool, False, "1: also load pickle weights (pytorch_model.bin); default safetensors only"),
}


def load_hf(loader, name: str, what: str, allow_pickle: bool | None = None, **kwargs):
    """``loader.from_pretrained(name)`` with remote code off and one clear line on failure
    (no network, a typo, a gated repo: the user needs the name and the reason, not a traceback).
    For weights pass ``allow_pickle`` (the judge's option): safetensors only unless it is true."""
    import os

    from ..safeload import check_weights, lacks_config, load_hint, weights_kwargs

    if name.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(name)):
        raise UserError(f"cannot load {what} {name!r}: no such folder")
    if lacks_config(name, also=("tokenizer_config.json",)):  # a tokenizer-only folder is fine for a tokenizer
        raise UserError(f"cannot load {what} {name!r}: the folder has no config.json; pass a folder saved with "
                        "save_pretrained or a hub id")
    flag = "allow_pickle=1 in the judge spec"
    if allow_pickle is not None:
        check_weights(os.path.expanduser(name), allow_pickle, what, flag)
        kwargs.update(weights_kwargs(allow_pickle))
    from ..safeload import load_errors

    try:
        return loader.from_pretrained(name, trust_remote_code=False, **kwargs)
    except load_errors() as e:  # a corrupt or truncated checkpoint is the user's file, not a bug
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = load_hint(first, bool(allow_pickle), flag, path=name if allow_pickle is not None else None)  # weights only
        raise UserError(f"cannot load {what} {name!r}: {first}{hint}") from None


def model_device_dtype(opts: dict):
    """(torch.device, torch.dtype) from a judge's device/dtype options."""
    from ..models import pick_device, pick_dtype

    if opts["batch_size"] < 1:
        raise UserError("batch_size must be >= 1")
    device = pick_device(opts["device"])
    return device, pick_dtype(opts["dtype"], device)


# --------------------------------------------------------------------------------------------
# Score keys (docs/design.md §3.4): judge NAME writes its headline value under score_key(NAME)
# and every detail under score_key(NAME) + "_..."; so no two judges write the same key. The one
# key every judge may write is the row marker ``empty``.


def score_key(name: str) -> str:
    """The headline score key of judge ``name``: the name with ``-`` as ``_`` (``gcg-prefix`` ->
    ``gcg_prefix``, ``llamaguard-vision`` -> ``llamaguard_vision``)."""
    return name.replace("-", "_")


def key_owner(key: str, names) -> str | None:
    """Which of the judges ``names`` wrote score ``key``: the one whose :func:`score_key` is the key
    or, followed by ``_``, its longest prefix (``llamaguard_vision_prob`` belongs to
    ``llamaguard-vision``, not ``llamaguard``); None if none."""
    best = None
    for n in names:
        k = score_key(n)
        if (key == k or key.startswith(k + "_")) and (best is None or len(k) > len(score_key(best))):
            best = n
    return best


# Keys written by earlier versions -> today's keys. Run folders, judged files and score journals
# written before judges were keyed by name are read through :func:`upgrade_scores`, so they
# aggregate, report, check and resume as if judged today. The only place old names live.
LEGACY_KEYS: dict[str, str] = {
    "unsafe": "llamaguard", "unsafe_prob": "llamaguard_prob", "categories": "llamaguard_categories",
    "parse_error": "llamaguard_parse_error",
    "gcg_refusal": "gcg_prefix", "gcg_refusal_outcome": "gcg_prefix_outcome", "gcg_refusal_reason": "gcg_prefix_reason",
    "toxicity_error": "perspective_error",
}


def upgrade_scores(scores: dict, perspective: bool = False) -> dict:
    """``scores`` with the keys of earlier versions renamed (:data:`LEGACY_KEYS`); a key whose new
    name is already there is dropped (today's value wins). Both ``toxicity`` and ``perspective``
    used to write ``toxicity``: it is read as ``perspective`` when the row carries Perspective's
    ``toxicity_error`` or the caller knows Perspective judged the rows (``perspective=True``), else
    it stays ``toxicity`` (the paper's TS reads either). Returns ``scores`` itself when nothing changes."""
    old = [k for k in scores if k in LEGACY_KEYS] + (
        ["toxicity"] if "toxicity" in scores and "perspective" not in scores
        and (perspective or "toxicity_error" in scores) else [])
    if not old:
        return scores
    out = {}
    for k, v in scores.items():
        new = "perspective" if k == "toxicity" and k in old else LEGACY_KEYS.get(k, k)
        if new != k and new in scores:
            continue
        out[new] = v
    return out


def legacy_perspective(rows: list[dict], judged_by=()) -> bool:
    """Whether the old ``toxicity`` of ``rows`` (one file) came from Perspective: no row has today's
    ``perspective`` key, and a row carries Perspective's ``toxicity_error`` or the run's records
    (``judged_by``: judge names from run.json / paper.json, :func:`folder_judges`) name
    ``perspective`` and not ``toxicity``."""
    scored = [r["scores"] for r in rows if isinstance(r.get("scores"), dict)]
    if not any("toxicity" in s for s in scored) or any("perspective" in s for s in scored):
        return False
    return any("toxicity_error" in s for s in scored) or ("perspective" in judged_by and "toxicity" not in judged_by)


def folder_judges(folder) -> set[str]:
    """Judge names a run folder's records give: run.json's ``config.judges`` and, for a set of a
    ``layersafe paper`` run, the parent's paper.json ``judges``. Empty when there are none."""
    import json
    from pathlib import Path

    names: set[str] = set()
    folder = Path(folder)
    for path, pick in ((folder / "run.json", lambda m: (m.get("config") or {}).get("judges")),
                       (folder.parent / "paper.json", lambda m: list((m.get("judges") or {}).values()))):
        try:
            specs = pick(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None
        except (OSError, ValueError, AttributeError, TypeError):
            specs = None
        names.update(parse_spec(s)[0] for s in specs or () if isinstance(s, str))
    return names


def upgrade_rows(rows: list[dict], perspective: bool | None = None, judged_by=()) -> list[dict]:
    """:func:`upgrade_scores` on every row's ``scores``, in place; returns ``rows``. ``perspective``
    None: decided for the whole file by :func:`legacy_perspective` (with ``judged_by``)."""
    if perspective is None:
        perspective = legacy_perspective(rows, judged_by)
    for r in rows:
        if isinstance(r.get("scores"), dict):
            r["scores"] = upgrade_scores(r["scores"], perspective)
    return rows


_REGISTRY: dict[str, type[Judge]] = {}
BUILTIN_MODULES = ("refusal", "refusal_learned", "llamaguard", "llamaguard_vision", "generative", "reward", "toxicity")


def register(cls):
    _REGISTRY[cls.name] = cls
    return cls


def available() -> dict[str, Callable]:
    import importlib

    for mod in BUILTIN_MODULES:  # importing registers; these modules import torch lazily
        importlib.import_module(f"{__package__}.{mod}")
    return dict(_REGISTRY)


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """``NAME[:ARG][,KEY=VALUE]...`` -> (name, arg or None, options)."""
    head, _, rest = spec.strip().partition(",")
    name, _, arg = head.partition(":")
    pieces = [arg] + rest.split(",") if rest else [arg]
    # Trailing KEY=VALUE pieces are options; everything before them is ARG (a path may hold commas).
    opts: dict[str, str] = {}
    while len(pieces) > 1 or (pieces and _OPTION.match(pieces[0])):
        m = _OPTION.match(pieces[-1])
        if not m:
            break
        opts.setdefault(m.group(1), m.group(2))
        pieces.pop()
    arg = ",".join(pieces).strip()
    return name.strip(), (arg or None), dict(reversed(list(opts.items())))


def get_judge(spec: str, **options) -> Judge:
    """``NAME[:ARG][,KEY=VALUE]...`` -> a judge instance (keyword options override the spec's)."""
    name, arg, spec_opts = parse_spec(spec)
    judges = available()
    if name not in judges:
        raise UserError(f"unknown judge {name!r}; available: {', '.join(sorted(judges))}")
    return judges[name](arg, **{**spec_opts, **options})


def require_paths(judge: Judge) -> Judge:
    """``judge``, once its local paths (the argument, and a rubric's or strongreject's ``model=``)
    are there: called where a command is about to generate for hours and judge after (scan,
    utility, align's reward), so a missing path fails first, not last. "Looks local" as for models."""
    import os

    from ..safeload import looks_local

    for value in (judge.arg, judge.opts.get("model")):
        if isinstance(value, str) and looks_local(value) and not os.path.exists(os.path.expanduser(value)):
            raise UserError(f"judge {judge.name}: {value!r} does not exist; check the path, or give a hub id "
                            "OWNER/NAME")
    return judge
