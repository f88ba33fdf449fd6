"""The paper's datasets, from files you download yourself or from a hub dataset id.

Spec syntax (``--dataset`` / ``--data`` / ``load_dataset``)::

    xstest:PATH/xstest_prompts.csv                 XSTest (columns id, prompt, type, label, ...)
    advbench-coco:PATH/coco/val2014                AdvBench goals x random COCO images (paper's AC)
    redteam2k:PATH/RedTeam_2K.csv                  JailBreakV-28K RedTeam-2K (id, question, policy, from)
    mini-jailbreakv:PATH/mini_JailBreakV_28K.csv   mini-JailBreakV-28K (redteam_query, jailbreak_query,
                                                   format, policy, image_path relative to the CSV folder)
    vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR  official VQA-v2 files + the COCO image folder

Expected files (upstream layouts, unchanged):

* XSTest ``xstest_prompts.csv``: ``id, prompt, type, label, focus, note`` (``id`` optional); ``type`` starting with
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

A Hugging Face hub dataset instead of local files: ``NAME:hf:REPO[:CONFIG[:SPLIT]]``, read with
``datasets.load_dataset`` (optional package; works offline from the hub cache, and REPO may also be
a local folder in the hub layout). Defaults follow the upstream repos:

* ``redteam2k:hf:JailbreakV-28K/JailBreakV-28k`` -> config ``RedTeam_2K``, split ``RedTeam_2K``
  (columns as ``RedTeam_2K.csv``);
* ``mini-jailbreakv:hf:JailbreakV-28K/JailBreakV-28k`` -> config ``JailBreakV_28K``, split
  ``mini_JailBreakV_28K`` (columns as the CSV); the images are repo files under
  ``JailBreakV_28K/<image_path>``, fetched with ``huggingface_hub.snapshot_download`` (only those);
* ``vqav2:hf:lmms-lab/VQAv2`` -> split ``validation``; columns ``question_id, question,
  image_id, image`` (an image feature), ``answers`` (a list of ``{answer, answer_confidence,
  answer_id}``), ``answer_type, question_type, multiple_choice_answer`` — the layout of
  lmms-lab/VQAv2 (and HuggingFaceM4/VQAv2). With ``--limit`` it streams, so only the first rows
  are downloaded. Image bytes are written once, unchanged, to ``$LAYERSAFE_CACHE/hub-images/``;
* ``xstest:hf:REPO`` -> the only split; columns ``prompt, type`` (``id``, ``label``, ``focus``,
  ``note`` when present), e.g. walledai/XSTest.

A repo with several splits and no default needs ``:SPLIT``. ``advbench-coco`` takes only a local
folder (the AdvBench goals are built in; a COCO folder is what the paper samples from).
Per-row problems are recorded as RowError (the load goes on); whole-file problems are UserErrors.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from ..errors import UserError
from .base import SKIMAGE_PREFIX, Dataset, RowError, Sample

VQA_PROMPT_SUFFIX = "\nAnswer the question using a single word or phrase."
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HUB_PREFIX = "hf:"
JAILBREAKV_REPO = "JailbreakV-28K/JailBreakV-28k"
JAILBREAKV_IMAGE_DIR = "JailBreakV_28K"  # the CSVs and image folders sit here in the hub repo
# Upstream hub repos -> (config, split) used when the spec names none.
REDTEAM_DEFAULTS = {JAILBREAKV_REPO.lower(): ("RedTeam_2K", "RedTeam_2K")}
MINI_JAILBREAKV_DEFAULTS = {JAILBREAKV_REPO.lower(): ("JailBreakV_28K", "mini_JailBreakV_28K")}
VQAV2_DEFAULTS = {"lmms-lab/vqav2": (None, "validation"), "huggingfacem4/vqav2": (None, "validation")}

PAPER_SET_DESCRIPTIONS = {
    "xstest:CSV": "XSTest prompts (250 safe: harmful=false, 200 contrast_ unsafe), category = type, benign photos",
    "advbench-coco:DIR": "520 AdvBench goals x random images from your COCO folder, seeded (paper's AC)",
    "redteam2k:CSV": "JailBreakV-28K RedTeam_2K.csv (id, question, policy, from) + benign photos (paper's RT)",
    "mini-jailbreakv:CSV": "mini_JailBreakV_28K.csv (jailbreak_query, image_path, policy, ...) (paper's MR)",
    "vqav2:Q,A,DIR": "VQA-v2 questions JSON, annotations JSON, COCO image folder; answers in meta",
    "NAME:hf:REPO[:CONFIG[:SPLIT]]": "xstest, redteam2k, mini-jailbreakv, vqav2 from a hub dataset "
                                     "(e.g. vqav2:hf:lmms-lab/VQAv2; needs `datasets`)",
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


def _datasets(name: str, ref: str):
    try:
        import datasets  # optional: only hub ids need it
    except ImportError:
        raise UserError(f"{name}: hub dataset {ref!r} needs the `datasets` package (pip install datasets); "
                        "or download the files and give a local path") from None
    return datasets


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def hub_split(ref: str, name: str, required: tuple[str, ...], defaults: dict | None = None, streaming: bool = False):
    """One split of a hub dataset, ``ref`` = ``REPO[:CONFIG[:SPLIT]]``; ``defaults`` maps a lower-case
    upstream repo id to its (config, split), used where ``ref`` leaves them out. Returns (repo,
    datasets.Dataset or IterableDataset); UserError when it cannot be loaded, the split is ambiguous
    or a ``required`` column is missing."""
    datasets = _datasets(name, ref)
    parts = ref.split(":")
    if not parts[0] or len(parts) > 3:
        raise UserError(f"{name}: use {name}:hf:ORG/NAME[:CONFIG[:SPLIT]], not {name}:hf:{ref}")
    repo = parts[0]
    config, split = (defaults or {}).get(repo.lower(), (None, None))
    config = (parts[1] if len(parts) > 1 and parts[1] else None) or config
    split = (parts[2] if len(parts) > 2 and parts[2] else None) or split
    try:
        if split is None:  # ask for the split names first: loading every split could be many GB
            names = datasets.get_dataset_split_names(repo, config)
            if len(names) != 1:
                raise UserError(f"{name}: hub dataset {repo!r} has splits {', '.join(names)}; pick one with "
                                f"{name}:hf:{repo}:{config or ''}:SPLIT")
            split = names[0]
        ds = datasets.load_dataset(repo, config, split=split, streaming=streaming)
    except UserError:
        raise
    except Exception as e:  # offline and not cached, unknown id/config/split, ...
        raise UserError(f"{name}: cannot load hub dataset {repo!r} (config {config}, split {split}): "
                        f"{_first_line(e)}") from None
    columns = ds.column_names or list(ds.features or {})
    missing = [c for c in required if c not in columns]
    if missing:
        raise UserError(f"{name}: hub dataset {repo!r} lacks column(s) {', '.join(missing)} "
                        f"(has {', '.join(columns)})")
    return repo, ds


def _table(arg: str, spec: str, name: str, what: str, required: tuple[str, ...],
           defaults: dict | None = None) -> tuple[list[dict], str]:
    """Rows of a local CSV or of a hub split (``hf:REPO[:CONFIG[:SPLIT]]``), and their source."""
    if arg.startswith(HUB_PREFIX):
        repo, ds = hub_split(arg[len(HUB_PREFIX):], name, required, defaults)
        return [dict(r) for r in ds], HUB_PREFIX + repo
    path = _file(arg, what, spec)
    return _read_csv(path, required), str(path.resolve())


def _cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("LAYERSAFE_CACHE", Path.home() / ".cache" / "layersafe"))
    d = root.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _text(v) -> str:
    if v is None or (isinstance(v, float) and v != v):  # hub CSVs read an empty cell as None or NaN
        return ""
    return str(v).strip()


def xstest(arg: str, seed: int = 0, spec: str = "xstest") -> Dataset:
    rows, source = _table(arg, spec, "xstest", "xstest_prompts.csv", ("prompt", "type"))  # id: optional
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
    rows, source = _table(arg, spec, "redteam2k", "RedTeam_2K.csv", ("id", "question", "policy"), REDTEAM_DEFAULTS)
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


MJV_COLUMNS = ("redteam_query", "jailbreak_query", "format", "policy", "image_path")


def mini_jailbreakv(arg: str, seed: int = 0, spec: str = "mini-jailbreakv") -> Dataset:
    if arg.startswith(HUB_PREFIX):
        repo, ds = hub_split(arg[len(HUB_PREFIX):], "mini-jailbreakv", MJV_COLUMNS, MINI_JAILBREAKV_DEFAULTS)
        rows = [dict(r) for r in ds]
        base = _hub_files(repo, [f"{JAILBREAKV_IMAGE_DIR}/{_text(r.get('image_path'))}" for r in rows
                                 if _text(r.get("image_path"))]) / JAILBREAKV_IMAGE_DIR
        source = HUB_PREFIX + repo
    else:
        path = _file(arg, "mini_JailBreakV_28K.csv", spec)
        rows, base, source = _read_csv(path, MJV_COLUMNS), path.resolve().parent, str(path.resolve())
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
    return Dataset(name="mini-jailbreakv", samples=samples, errors=errors, source=source)


def _hub_files(repo: str, files: list[str]) -> Path:
    """Folder holding ``files`` of a hub dataset repo: the repo itself when it is a local folder,
    else a snapshot with only those files (huggingface_hub; the hub cache makes reruns offline)."""
    if Path(repo).is_dir():
        return Path(repo).resolve()
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError("mini-jailbreakv: hub images need the `huggingface_hub` package (pip install datasets)") from None
    try:
        return Path(snapshot_download(repo_id=repo, repo_type="dataset", allow_patterns=sorted(set(files))))
    except Exception as e:
        raise UserError(f"mini-jailbreakv: cannot download the images of {repo!r}: {_first_line(e)}") from None


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


def _vqa_sample(qid, text: str, ann: dict, image: str) -> Sample:
    answers = [str(x["answer"]) if isinstance(x, dict) else str(x) for x in ann["answers"]]
    return Sample(id=f"vqa-{qid}", prompt=text + VQA_PROMPT_SUFFIX, image=image, category=ann.get("answer_type"),
                  harmful=False, meta={"question": text, "answers": answers, "question_type": ann.get("question_type"),
                                       "multiple_choice_answer": ann.get("multiple_choice_answer")})


def vqav2(arg: str, seed: int = 0, spec: str = "vqav2", limit: int | None = None) -> Dataset:
    if arg.startswith(HUB_PREFIX):
        return _vqav2_hub(arg[len(HUB_PREFIX):], limit)
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if len(parts) != 3:
        raise UserError(f"dataset {spec!r}: use vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR (three comma-separated "
                        "paths) or vqav2:hf:ORG/NAME")
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
        samples.append(_vqa_sample(qid, text, a, str(by_image[iid])))
    return Dataset(name="vqav2", samples=samples, errors=errors, source=str(Path(parts[0]).expanduser().resolve()))


VQA_HUB_COLUMNS = ("question_id", "question", "image_id", "image", "answers")


def _vqav2_hub(ref: str, limit: int | None) -> Dataset:
    """VQA-v2 rows of a hub dataset (lmms-lab/VQAv2 layout). Images are stored as their original
    bytes under the cache, named by image id, since samples refer to images by path."""
    datasets = _datasets("vqav2", ref)
    # with --limit, stream: the validation split is ~34 GB of parquet and we need its first rows only
    repo, ds = hub_split(ref, "vqav2", VQA_HUB_COLUMNS, VQAV2_DEFAULTS, streaming=limit is not None)
    ds = ds.cast_column("image", datasets.Image(decode=False))  # raw bytes: no decode/re-encode
    cache = _cache_dir("hub-images", re.sub(r"[^A-Za-z0-9._-]+", "--", repo))
    samples, errors = [], []
    for i, r in enumerate(ds, 1):
        if limit is not None and len(samples) >= limit:
            break
        text = _text(r.get("question"))
        if r.get("question_id") is None or r.get("image_id") is None or not text:
            errors.append(RowError(i, "row lacks question_id, image_id or question"))
            continue
        if not r.get("answers"):  # the test split has none
            errors.append(RowError(i, f"no answers for question_id {r['question_id']}"))
            continue
        image = _hub_image(r.get("image"), int(r["image_id"]), cache)
        if image is None:
            errors.append(RowError(i, f"no image for image_id {r['image_id']}"))
            continue
        samples.append(_vqa_sample(r["question_id"], text, r, image))
    return Dataset(name="vqav2", samples=samples, errors=errors, source=HUB_PREFIX + repo)


def _hub_image(img, image_id: int, cache: Path) -> str | None:
    """Path of a hub image feature value ({"bytes", "path"}): its bytes written once to the cache
    (many questions share an image), or its own path when it is a local file."""
    if not isinstance(img, dict):
        return None
    data, src = img.get("bytes"), img.get("path")
    if not data:
        return str(Path(src).resolve()) if src and Path(src).is_file() else None
    suffix = Path(src).suffix.lower() if src and Path(src).suffix.lower() in IMAGE_SUFFIXES else ""
    if not suffix:
        from io import BytesIO

        from PIL import Image

        try:
            with Image.open(BytesIO(data)) as im:
                suffix = "." + (im.format or "png").lower().replace("jpeg", "jpg")
        except Exception:  # undecodable bytes: kept, so the scan reports this row's image as corrupt
            suffix = ".img"
    path = cache / f"{image_id}{suffix}"
    if not path.is_file():
        from ..io import atomic_write_bytes

        atomic_write_bytes(path, data)
    return str(path)


PAPER_SETS = {"xstest": xstest, "advbench-coco": advbench_coco, "redteam2k": redteam2k,
              "mini-jailbreakv": mini_jailbreakv, "vqav2": vqav2}


def is_paper_spec(spec: str) -> bool:
    return str(spec).split(":", 1)[0] in PAPER_SETS


def load_paper_set(spec: str, seed: int = 0, limit: int | None = None) -> Dataset:
    name, _, arg = str(spec).partition(":")
    # vqav2 takes the limit itself: from the hub it then reads only the first rows
    extra = {"limit": limit} if name == "vqav2" else {}
    ds = PAPER_SETS[name](arg.strip(), seed=seed, spec=spec, **extra)
    if limit is not None:
        ds.samples = ds.samples[:max(limit, 0)]
    if not ds.samples and not (limit is not None and limit <= 0):
        raise UserError(f"dataset {spec!r}: no usable rows ({len(ds.errors)} bad rows)"
                        + (f"; first: row {ds.errors[0].row}: {ds.errors[0].reason}" if ds.errors else ""))
    return ds
