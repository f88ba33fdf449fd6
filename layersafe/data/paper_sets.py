"""The paper's datasets, built from files you download yourself (no network, no hub by default).

Spec syntax (``--dataset`` / ``--data`` / ``load_dataset``)::

    xstest:PATH/xstest_prompts.csv                 XSTest (columns id, prompt, type, label, ...)
    advbench-coco:PATH/coco/val2014                AdvBench goals x random COCO images (paper's AC)
    redteam2k:PATH/RedTeam_2K.csv                  JailBreakV-28K RedTeam-2K (id, question, policy, from)
    mini-jailbreakv:PATH/mini_JailBreakV_28K.csv   mini-JailBreakV-28K (redteam_query, jailbreak_query,
                                                   format, policy, image_path relative to the CSV folder)
    vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR  official VQA-v2 files + the COCO image folder

Expected files (upstream layouts, unchanged):

* XSTest ``xstest_prompts.csv``: ``id, prompt, type, label, focus, note``; ``type`` starting with
  ``contrast_`` marks the 200 unsafe prompts (harmful=True), the other 250 are safe
  (harmful=False). category = type. Each prompt gets a benign scikit-image photo (seeded).
* AdvBench × COCO: the 520 built-in AdvBench goals, each with an image drawn (seeded) from the
  ``.jpg/.jpeg/.png`` files of the folder (e.g. COCO ``val2014/``). category = ``advbench``.
* ``RedTeam_2K.csv``: ``id, question, policy, from``; harmful=True; category = policy; each
  question gets a benign scikit-image photo (seeded), as the paper's RT pairs them.
* ``mini_JailBreakV_28K.csv``: ``redteam_query, jailbreak_query, format, policy, image_path``
  (``id`` used when present); the prompt is ``jailbreak_query`` (``redteam_query`` when empty);
  ``image_path`` is relative to the CSV's folder (``JailBreakV_28K/``); category = policy.
* VQA-v2: ``v2_OpenEnded_mscoco_val2014_questions.json`` (``{"questions": [{"question_id",
  "image_id", "question"}]}``), ``v2_mscoco_val2014_annotations.json`` (``{"annotations":
  [{"question_id", "answers": [{"answer", ...}] x10, "answer_type", "question_type",
  "multiple_choice_answer"}]}``) and the image folder (``COCO_val2014_000000000042.jpg``: any
  file whose name ends in the zero-padded or plain image id). harmful=False; category =
  answer_type; the human answers go in ``meta["answers"]``; the prompt is the question plus
  :data:`VQA_PROMPT_SUFFIX` (LLaVA-1.5's short-answer instruction).

A hub dataset id instead of a local path (``redteam2k:hf:JailbreakV-28K/JailBreakV-28k``) needs the
optional ``datasets`` package and is read with ``datasets.load_dataset``; only the text sets
(xstest, redteam2k) support it.
Per-row problems are recorded as RowError (the load goes on); whole-file problems are UserErrors.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from ..errors import UserError
from .base import SKIMAGE_PREFIX, Dataset, RowError, Sample

VQA_PROMPT_SUFFIX = "\nAnswer the question using a single word or phrase."
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HUB_PREFIX = "hf:"

PAPER_SET_DESCRIPTIONS = {
    "xstest:CSV": "XSTest prompts (250 safe: harmful=false, 200 contrast_ unsafe), category = type, benign photos",
    "advbench-coco:DIR": "520 AdvBench goals x random images from your COCO folder, seeded (paper's AC)",
    "redteam2k:CSV": "JailBreakV-28K RedTeam_2K.csv (id, question, policy, from) + benign photos (paper's RT)",
    "mini-jailbreakv:CSV": "mini_JailBreakV_28K.csv (jailbreak_query, image_path, policy, ...) (paper's MR)",
    "vqav2:Q,A,DIR": "VQA-v2 questions JSON, annotations JSON, COCO image folder; answers in meta",
}


def _benign_photo(rng: random.Random) -> str:
    from .builtin import BENIGN_PHOTOS

    return SKIMAGE_PREFIX + rng.choice(BENIGN_PHOTOS)


def _file(arg: str, what: str, spec: str) -> Path:
    if not arg:
        raise UserError(f"dataset {spec!r}: give the path of {what} after the colon")
    p = Path(arg).expanduser()
    if not p.is_file():
        raise UserError(f"dataset {spec!r}: {what} not found at {p}")
    return p


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    from .loaders import checked_csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(checked_csv(f, path, required, f"expected a header with {', '.join(required)}"))


def _hub_rows(dataset_id: str, name: str) -> list[dict]:
    try:
        import datasets  # optional
    except ImportError:
        raise UserError(f"{name}: hub dataset {dataset_id!r} needs the `datasets` package (pip install datasets); "
                        "or download the files and give a local path") from None
    try:
        ds = datasets.load_dataset(dataset_id)
    except Exception as e:  # offline, unknown id, ...
        raise UserError(f"{name}: cannot load hub dataset {dataset_id!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    split = next(iter(ds.values())) if hasattr(ds, "values") else ds
    return [dict(r) for r in split]


def _table(arg: str, spec: str, name: str, what: str, required: tuple[str, ...]) -> tuple[list[dict], str]:
    if arg.startswith(HUB_PREFIX):
        rows = _hub_rows(arg[len(HUB_PREFIX):], name)
        if rows and any(c not in rows[0] for c in required):
            raise UserError(f"{name}: hub dataset {arg} lacks column(s) {', '.join(c for c in required if c not in rows[0])}")
        return rows, arg
    path = _file(arg, what, spec)
    return _read_csv(path, required), str(path.resolve())


def _text(v) -> str:
    return "" if v is None else str(v).strip()


def xstest(arg: str, seed: int = 0, spec: str = "xstest") -> Dataset:
    rows, source = _table(arg, spec, "xstest", "xstest_prompts.csv", ("id", "prompt", "type"))
    rng = random.Random(seed)
    samples, errors = [], []
    for i, r in enumerate(rows, 1):
        prompt, typ = _text(r.get("prompt")), _text(r.get("type"))
        if not prompt or not typ:
            errors.append(RowError(i, "empty prompt or type"))
            continue
        samples.append(Sample(id=f"xstest-{_text(r.get('id')) or i}", prompt=prompt, image=_benign_photo(rng),
                              category=typ, harmful=typ.startswith("contrast_"),
                              meta={k: r.get(k) for k in ("label", "focus", "note") if k in r}))
    return Dataset(name="xstest", samples=samples, errors=errors, source=source)


def redteam2k(arg: str, seed: int = 0, spec: str = "redteam2k") -> Dataset:
    rows, source = _table(arg, spec, "redteam2k", "RedTeam_2K.csv", ("id", "question", "policy"))
    rng = random.Random(seed)
    samples, errors = [], []
    for i, r in enumerate(rows, 1):
        q = _text(r.get("question"))
        if not q:
            errors.append(RowError(i, "empty question"))
            continue
        samples.append(Sample(id=f"rt-{_text(r.get('id')) or i}", prompt=q, image=_benign_photo(rng),
                              category=_text(r.get("policy")) or None, harmful=True,
                              meta={"from": r.get("from")}))
    return Dataset(name="redteam2k", samples=samples, errors=errors, source=source)


def mini_jailbreakv(arg: str, seed: int = 0, spec: str = "mini-jailbreakv") -> Dataset:
    path = _file(arg, "mini_JailBreakV_28K.csv", spec)
    rows = _read_csv(path, ("redteam_query", "jailbreak_query", "format", "policy", "image_path"))
    base = path.resolve().parent
    samples, errors, seen = [], [], set()
    for i, r in enumerate(rows, 1):
        prompt = _text(r.get("jailbreak_query")) or _text(r.get("redteam_query"))
        img = _text(r.get("image_path"))
        if not prompt or not img:
            errors.append(RowError(i, "empty jailbreak_query/redteam_query or image_path"))
            continue
        sid = f"mjv-{_text(r.get('id')) or i}"
        if sid in seen:
            errors.append(RowError(i, f"duplicate id {sid!r}"))
            continue
        seen.add(sid)
        p = Path(img)
        samples.append(Sample(id=sid, prompt=prompt, image=str(p if p.is_absolute() else (base / p).resolve()),
                              category=_text(r.get("policy")) or None, harmful=True,
                              meta={"format": r.get("format"), "redteam_query": r.get("redteam_query")}))
    return Dataset(name="mini-jailbreakv", samples=samples, errors=errors, source=str(path.resolve()))


def _images(folder: str, spec: str) -> list[Path]:
    if not folder:
        raise UserError(f"dataset {spec!r}: give an image folder after the colon (e.g. advbench-coco:/data/coco/val2014)")
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise UserError(f"dataset {spec!r}: image folder not found: {d}")
    imgs = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not imgs:
        raise UserError(f"dataset {spec!r}: no .jpg/.jpeg/.png images in {d}")
    return imgs


def advbench_coco(arg: str, seed: int = 0, spec: str = "advbench-coco") -> Dataset:
    from .builtin import advbench_goals

    imgs = _images(arg, spec)
    rng = random.Random(seed)
    samples = [Sample(id=f"ac-{i:03d}", prompt=goal, image=str(rng.choice(imgs).resolve()), category="advbench",
                      harmful=True, meta={"goal_index": i})
               for i, (goal, _target) in enumerate(advbench_goals())]
    return Dataset(name="advbench-coco", samples=samples, source=str(Path(arg).expanduser().resolve()))


def _load_json(arg: str, what: str, spec: str, key: str) -> list:
    path = _file(arg, what, spec)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get(key), list):
        raise UserError(f"{path}: expected the official VQA-v2 layout, an object with a {key!r} list")
    return obj[key]


def vqav2(arg: str, seed: int = 0, spec: str = "vqav2") -> Dataset:
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if len(parts) != 3:
        raise UserError(f"dataset {spec!r}: use vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR (three comma-separated paths)")
    questions = _load_json(parts[0], "the questions JSON", spec, "questions")
    annotations = _load_json(parts[1], "the annotations JSON", spec, "annotations")
    img_dir = Path(parts[2]).expanduser()
    if not img_dir.is_dir():
        raise UserError(f"dataset {spec!r}: image folder not found: {img_dir}")
    by_image: dict[int, Path] = {}
    for p in sorted(img_dir.iterdir()):
        m = re.search(r"(\d+)$", p.stem)
        if m and p.suffix.lower() in IMAGE_SUFFIXES:
            by_image.setdefault(int(m.group(1)), p.resolve())
    ann = {}
    for a in annotations:
        if isinstance(a, dict) and "question_id" in a:
            ann[a["question_id"]] = a
    samples, errors = [], []
    for i, q in enumerate(questions, 1):
        try:
            qid, iid, text = q["question_id"], int(q["image_id"]), str(q["question"]).strip()
        except (KeyError, TypeError, ValueError):
            errors.append(RowError(i, "question lacks question_id, image_id or question"))
            continue
        a = ann.get(qid)
        if a is None or not a.get("answers"):
            errors.append(RowError(i, f"no annotation with answers for question_id {qid}"))
            continue
        if iid not in by_image:
            errors.append(RowError(i, f"no image for image_id {iid} in {img_dir}"))
            continue
        answers = [str(x["answer"]) if isinstance(x, dict) else str(x) for x in a["answers"]]
        samples.append(Sample(id=f"vqa-{qid}", prompt=text + VQA_PROMPT_SUFFIX, image=str(by_image[iid]),
                              category=a.get("answer_type"), harmful=False,
                              meta={"question": text, "answers": answers, "question_type": a.get("question_type"),
                                    "multiple_choice_answer": a.get("multiple_choice_answer")}))
    return Dataset(name="vqav2", samples=samples, errors=errors, source=str(Path(parts[0]).expanduser().resolve()))


PAPER_SETS = {"xstest": xstest, "advbench-coco": advbench_coco, "redteam2k": redteam2k,
              "mini-jailbreakv": mini_jailbreakv, "vqav2": vqav2}


def is_paper_spec(spec: str) -> bool:
    return str(spec).split(":", 1)[0] in PAPER_SETS


def load_paper_set(spec: str, seed: int = 0, limit: int | None = None) -> Dataset:
    name, _, arg = str(spec).partition(":")
    ds = PAPER_SETS[name](arg.strip(), seed=seed, spec=spec)
    if limit is not None:
        ds.samples = ds.samples[:max(limit, 0)]
    if not ds.samples and not (limit is not None and limit <= 0):
        raise UserError(f"dataset {spec!r}: no usable rows ({len(ds.errors)} bad rows)"
                        + (f"; first: row {ds.errors[0].row}: {ds.errors[0].reason}" if ds.errors else ""))
    return ds
