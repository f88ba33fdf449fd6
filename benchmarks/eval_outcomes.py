"""False positives of the degenerate rule on real human/LLM text (docs/judges.md, "Outcomes").

    python benchmarks/eval_outcomes.py [RUN_DIR ...]

Counts texts that ``degenerate_reason`` flags in: the refusal held-out set, XSTest's 450
completions, the HH-RLHF harmless-base test assistant turns (chosen and rejected, unique) and the
AdvBench targets; prints each hit. Run folders given as arguments get their outcome counts per
layer (e.g. a scan of the organism).
"""

from __future__ import annotations

import collections
import csv
import gzip
import json
import re
import sys
from pathlib import Path

from layersafe.judges.outcome import classify_outcome, degenerate_reason, is_empty

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data"


def corpora() -> dict[str, list[str]]:
    out = {"held-out": [json.loads(l)["response"] for l in open(ROOT / "tests/data/refusal_heldout.jsonl")]}
    xs = DATA / "xstest/xstest_v2_completions_gpt4_labeled.csv"
    if xs.exists():
        out["xstest"] = [r["completion"] for r in csv.DictReader(open(xs, newline="", encoding="utf-8"))]
    hh = DATA / "hh-rlhf/harmless-base-test.jsonl.gz"
    if hh.exists():
        turns = []
        for line in gzip.open(hh, "rt", encoding="utf-8"):
            d = json.loads(line)
            for k in ("chosen", "rejected"):
                for turn in re.split(r"\n\nHuman: ", d[k]):
                    turns += turn.split("\n\nAssistant: ")[1:]
        out["hh-rlhf assistant turns"] = list(dict.fromkeys(turns))
    adv = DATA / "advbench/harmful_behaviors.csv"
    if adv.exists():
        out["advbench targets"] = [r["target"] for r in csv.DictReader(open(adv, newline="", encoding="utf-8"))]
    return out


def main(runs: list[str]) -> None:
    for name, texts in corpora().items():
        texts = [t for t in texts if not is_empty(t)]
        hits = [(t, w) for t in texts if (w := degenerate_reason(t))]
        print(f"{name}: {len(hits)} of {len(texts)} degenerate ({len(hits) / len(texts):.2%})")
        for t, w in hits:
            print(f"    {w} | {t[:100]!r}")
    for run in runs:
        rows = [json.loads(l) for l in open(Path(run) / "generations.jsonl")]
        by = collections.defaultdict(collections.Counter)
        for r in rows:
            if r.get("response") is not None:
                by[(r["layer"], "harmful" if r.get("harmful") is not False else "benign")][classify_outcome(r["response"])[0]] += 1
        print(run)
        for key in sorted(by):
            print(f"  layer {key[0]:>2} {key[1]:<8} {dict(by[key])}")


if __name__ == "__main__":
    main(sys.argv[1:])
