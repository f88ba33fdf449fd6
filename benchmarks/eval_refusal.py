"""Agreement of the offline refusal judges with human labels.

Scores both judges (``refusal``, ``gcg-prefix``) against:
* XSTest v2 completions with human labels (``final_label``: 2_full_refusal and
  3_partial_refusal -> 1, 1_full_compliance -> 0), overall and split by safe / unsafe prompt
  (``type`` starting with ``contrast_`` = unsafe);
* the hand-written held-out set tests/data/refusal_heldout.jsonl (many models' styles);
* the style set tests/data/refusal_styles/dev.jsonl (45 model voices, six dev batches), per style
  and per batch; its test split (six whole styles held out, never used for tuning) only with
  ``--test``, and only in aggregate (``--errors`` never lists test rows);
* any labelled JSONL with ``--file`` (one object a line: ``prompt``, ``response``, ``label`` 0/1,
  optional ``style``): agreement per style and overall, with a Wilson interval and a bootstrap
  interval that resamples whole styles (the spread to expect on new model voices).

    python benchmarks/eval_refusal.py                 # tables (no test split)
    python benchmarks/eval_refusal.py --errors        # also list the rule judge's disagreements
    python benchmarks/eval_refusal.py --test          # also the style test split, in aggregate
    python benchmarks/eval_refusal.py --file X.jsonl  # only that file: per style + overall
    python benchmarks/eval_refusal.py --file X.jsonl --judge refusal-learned
                                                      # also the learned judge: rules vs hybrid vs learned side by side

Results go in docs/judges.md with the exact command and date.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # score with this checkout's judges, not another installed copy of layersafe

from layersafe.judges.refusal import classify_refusal, gcg_is_refusal  # noqa: E402
from layersafe.judges.refusal_learned import classify_refusal_learned  # noqa: E402
from layersafe.metrics.aggregate import wilson_interval  # noqa: E402

XSTEST = ROOT.parent / "shared/data/xstest/xstest_v2_completions_gpt4_labeled.csv"
HELDOUT = ROOT / "tests/data/refusal_heldout.jsonl"
STYLES = ROOT / "tests/data/refusal_styles"
XSTEST_LABELS = {"1_full_compliance": 0, "2_full_refusal": 1, "3_partial_refusal": 1}


def load_xstest(path: Path = XSTEST) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {"prompt": r["prompt"], "response": r["completion"], "label": XSTEST_LABELS[r["final_label"]],
             "split": "unsafe" if r["type"].startswith("contrast_") else "safe", "type": r["type"], "id": r["id"]}
            for r in csv.DictReader(f)
        ]


def load_heldout(path: Path = HELDOUT) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def agreement(pred: list[int], gold: list[int]) -> dict:
    """Accuracy (with its Wilson 95 % interval), precision / recall of the refusal class, Cohen's kappa."""
    n = len(gold)
    tp = sum(p == 1 and g == 1 for p, g in zip(pred, gold))
    tn = sum(p == 0 and g == 0 for p, g in zip(pred, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold))
    acc = (tp + tn) / n if n else float("nan")
    p_pred, p_gold = (tp + fp) / n if n else 0, (tp + fn) / n if n else 0
    chance = p_pred * p_gold + (1 - p_pred) * (1 - p_gold)
    # kappa is undefined when the gold labels hold one class only
    kappa = (acc - chance) / (1 - chance) if chance < 1 and 0 < p_gold < 1 else float("nan")
    return {
        "n": n, "acc": acc, "acc_ci": wilson_interval(tp + tn, n), "kappa": kappa,
        "precision": tp / (tp + fp) if tp + fp and tp + fn else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
    }


def bootstrap_ci(rows: list[dict], correct: list[bool], n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of accuracy, resampling whole styles (clusters) with replacement: rows of
    one model voice share their wording, so resampling rows alone would understate the spread."""
    by: dict[str, list[bool]] = {}
    for r, c in zip(rows, correct):
        by.setdefault(str(r.get("style", "?")), []).append(c)
    groups = list(by.values())
    if len(groups) < 2:  # one style: resample rows
        groups = [[c] for c in correct]
    rng = random.Random(seed)
    accs = []
    for _ in range(n_boot):
        pick = [groups[rng.randrange(len(groups))] for _ in groups]
        n = sum(len(g) for g in pick)
        accs.append(sum(sum(g) for g in pick) / n)
    accs.sort()
    return accs[int(0.025 * n_boot)], accs[int(0.975 * n_boot) - 1]


def _fail(msg: str) -> NoReturn:
    print(f"eval_refusal: {msg}", file=sys.stderr)
    sys.exit(2)


def load_labelled(path: Path) -> list[dict]:
    """Rows of a labelled JSONL (prompt, response, label 0/1, optional style); a bad file is one line, exit 2."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"cannot read {path}: {e.__class__.__name__}: {e}")
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            _fail(f"{path}:{i}: not JSON ({e.msg})")
        if not isinstance(r, dict):
            _fail(f"{path}:{i}: not a JSON object")
        # XSTest's own field names are accepted too: completion, final_label, model
        response = r.get("response", r.get("completion"))
        label = r.get("label", r.get("final_label"))
        label = XSTEST_LABELS.get(label, label) if isinstance(label, str) else label
        if not isinstance(response, str) or label not in (0, 1):
            _fail(f"{path}:{i}: needs 'response' (text) and 'label' 0 or 1")
        rows.append({"prompt": r.get("prompt"), "response": response, "label": int(label),
                     "style": str(r.get("style", r.get("model", "all")))})
    if not rows:
        _fail(f"{path}: no rows")
    return rows


def file_report(rows: list[dict], name: str, extra: dict | None = None) -> dict:
    """Agreement of `refusal` (and gcg-prefix for reference) per style and overall; prints the table.
    ``extra`` (name -> row -> 0/1, e.g. LEARNED) adds a column and an overall line per judge."""
    extra = extra or {}
    pred = [classify_refusal(r["response"], r["prompt"])[0] for r in rows]
    correct = [p == r["label"] for p, r in zip(pred, rows)]
    more = {j: [f(r) == r["label"] for r in rows] for j, f in extra.items()}
    styles = sorted({r["style"] for r in rows})
    print(f"\n{name}: {len(rows)} rows, {sum(r['label'] for r in rows)} refusals, {len(styles)} styles")
    print(f"{'style':<28} {'n':>4} {'refusal':>8} {'95% Wilson':>13} {'gcg':>6}" + "".join(f" {j:>11}" for j in extra))
    out = {}
    for st in styles + ["ALL"]:
        idx = [i for i, r in enumerate(rows) if st == "ALL" or r["style"] == st]
        k, n = sum(correct[i] for i in idx), len(idx)
        g = sum(gcg_is_refusal(rows[i]["response"]) == rows[i]["label"] for i in idx) / n
        lo, hi = wilson_interval(k, n)
        out[st] = k / n
        print(f"{st:<28} {n:>4} {k / n:>8.3f} {lo:>6.3f}-{hi:.3f} {g:>6.3f}"
              + "".join(f" {sum(c[i] for i in idx) / n:>11.3f}" for c in more.values()))
    for j, c in {"refusal": correct, **more}.items():
        lo, hi = bootstrap_ci(rows, c)
        wlo, whi = wilson_interval(sum(c), len(rows))
        worst = min(sum(c[i] for i, r in enumerate(rows) if r["style"] == s) / sum(r["style"] == s for r in rows) for s in styles)
        print(f"{j} overall {sum(c)}/{len(rows)} = {sum(c) / len(rows):.3f} (Wilson {wlo:.3f}-{whi:.3f}); "
              f"style-bootstrap 95% {lo:.3f}-{hi:.3f}; worst style {worst:.3f}")
    return out


JUDGES = {
    "refusal": lambda r: classify_refusal(r["response"], r["prompt"])[0],
    "gcg-prefix": lambda r: gcg_is_refusal(r["response"]),
}


# --judge refusal-learned: its two modes beside the rules (layersafe/judges/refusal_learned.py)
LEARNED = {
    "rl-hybrid": lambda r: int(classify_refusal_learned(r["response"], r["prompt"], "hybrid")[0] == "refused"),
    "rl-learned": lambda r: int(classify_refusal_learned(r["response"], r["prompt"], "learned")[0] == "refused"),
}


def evaluate(rows: list[dict], judges: dict | None = None) -> dict[str, dict]:
    gold = [r["label"] for r in rows]
    return {name: agreement([f(r) for r in rows], gold) for name, f in (judges or JUDGES).items()}


def _table(title: str, subsets: dict[str, list[dict]], judges: dict | None = None) -> None:
    print(f"\n{title}")
    print(f"{'subset':<18} {'judge':<11} {'n':>4} {'acc':>6} {'95% CI':>13} {'kappa':>6} {'prec':>6} {'recall':>6}")
    for sub, rows in subsets.items():
        for name, m in evaluate(rows, judges).items():
            cells = [_fmt(m[k]) for k in ("acc", "kappa", "precision", "recall")]
            ci = "-" if m["n"] == 0 else f"{m['acc_ci'][0]:.3f}-{m['acc_ci'][1]:.3f}"
            print(f"{sub:<18} {name:<11} {m['n']:>4} {cells[0]:>6} {ci:>13} " + " ".join(f"{c:>6}" for c in cells[1:]))


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"  # nan (undefined: one class only) -> "-"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--xstest", type=Path, default=XSTEST)
    ap.add_argument("--heldout", type=Path, default=HELDOUT)
    ap.add_argument("--styles", type=Path, default=STYLES)
    ap.add_argument("--errors", action="store_true",
                    help="list rows where the rule judge disagrees (never the style test split)")
    ap.add_argument("--test", action="store_true", help="also score the style test split (aggregate tables only)")
    ap.add_argument("--file", type=Path, help="score only this labelled JSONL (prompt, response, label 0/1, style; or XSTest's "
                    "completion, final_label, model): agreement per style and overall; with --errors also its disagreements")
    ap.add_argument("--judge", action="append", choices=["refusal-learned"], default=[],
                    help="also score with this judge (refusal-learned: its hybrid and learned modes, columns rl-hybrid, rl-learned)")
    args = ap.parse_args(argv)
    extra = LEARNED if "refusal-learned" in args.judge else {}
    judges = {**JUDGES, **extra}
    if args.file is not None:
        rows = load_labelled(args.file)
        file_report(rows, str(args.file), extra)
        if args.errors:
            print(f"\nDisagreements of `refusal` on {args.file}:")
            for r in rows:
                pred, why = classify_refusal(r["response"], r["prompt"])
                if pred != r["label"]:
                    print(f"  gold={r['label']} pred={pred} [{r['style']}] ({why}) {r['response'][:200]!r}")
        return

    if extra:
        print("note: refusal-learned was trained on XSTest, the held-out set and the dev split: its rl-* columns "
              "below are a fit, not agreement (docs/judges.md has its cross-validated figures)")
    sets = {}
    if args.xstest.exists():
        xs = load_xstest(args.xstest)
        sets["xstest"] = xs
        _table(f"XSTest v2 completions, human final_label ({args.xstest.name})", {
            "all": xs, "safe": [r for r in xs if r["split"] == "safe"],
            "unsafe": [r for r in xs if r["split"] == "unsafe"]}, judges)
    else:
        print(f"XSTest file not found: {args.xstest}")
    held = load_heldout(args.heldout)
    sets["heldout"] = held
    _table(f"Held-out hand-written set ({args.heldout.name}, {len({r['style'] for r in held})} styles)", {
        "all": held, "refused": [r for r in held if r["label"] == 1],
        "complied": [r for r in held if r["label"] == 0]}, judges)

    for split in ("dev", "test") if args.test else ("dev",):
        rows = load_heldout(args.styles / f"{split}.jsonl")
        by_batch = {}
        if split == "dev":
            sets["styles-dev"] = rows
            by_batch = {f"batch {b}": [r for r in rows if r.get("batch") == b] for b in sorted({r.get("batch", 0) for r in rows})}
        by_style = {s: [r for r in rows if r["style"] == s] for s in sorted({r["style"] for r in rows})}
        _table(f"Style set, {split} split ({len(rows)} rows, {len(by_style)} styles)", {
            "all": rows, "refused": [r for r in rows if r["label"] == 1],
            "complied": [r for r in rows if r["label"] == 0], **by_batch, **by_style}, judges)
        correct = [classify_refusal(r["response"], r["prompt"])[0] == r["label"] for r in rows]
        lo, hi = bootstrap_ci(rows, correct)
        print(f"{split}: refusal {sum(correct)}/{len(rows)}; style-bootstrap 95% interval {lo:.3f}-{hi:.3f}")

    if args.errors:
        for name, rows in sets.items():
            print(f"\nDisagreements of `refusal` on {name}:")
            for r in rows:
                pred, why = classify_refusal(r["response"], r["prompt"])
                if pred != r["label"]:
                    tag = r.get("type") or f"{r.get('style')}/{r.get('case')}"
                    print(f"  gold={r['label']} pred={pred} [{tag}] ({why}) {r['response'][:200]!r}")


if __name__ == "__main__":
    main()
