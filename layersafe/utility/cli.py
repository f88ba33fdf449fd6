"""``layersafe utility`` (registered through cli.EXTRA_COMMANDS)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cli_text import EPILOG


def add_parser(sub) -> None:
    from .run import SUITES, UtilityConfig

    d = UtilityConfig()
    p = sub.add_parser(
        "utility", help="utility / over-refusal per image-encoder layer (VQA-v2 accuracy, XSTest, reward)",
        description="Generate at every requested layer (same run format as `scan`) and score utility: "
                    "xstest = over-refusal on safe prompts and refusal on unsafe ones (refusal judge); "
                    "vqav2 = official VQA-v2 accuracy; reward = mean reward of answers to benign questions. "
                    "Writes OUT/generations.jsonl, run.json, scores.jsonl, metrics.csv (and metrics_by_category.csv); `layersafe report OUT` plots it.",
        epilog=EPILOG)
    p.add_argument("--suite", required=True, choices=SUITES, help="xstest, vqav2 or reward")
    p.add_argument("--model", default=d.model, help="HF id or local folder of a supported VLM (default: tiny random LLaVA)")
    p.add_argument("--adapter", default=None, help="peft adapter folder (from `layersafe align` or `layersafe sft`)")
    p.add_argument("--data", default=None,
                   help="dataset spec: xstest:CSV, vqav2:QUESTIONS_JSON,ANNOTATIONS_JSON,IMAGE_DIR, a hub id "
                        "(vqav2:hf:lmms-lab/VQAv2, xstest:hf:REPO), or a .jsonl/.csv (see `layersafe datasets`)")
    p.add_argument("--layers", default=d.layers, help="layer spec: all, default, N, A-B or a comma list (default: default)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --resume)")
    p.add_argument("--judge", default=None, metavar="reward:MODEL", help="reward judge spec for --suite reward")
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens per answer (default: 10 for vqav2, else 64)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_utility)


def cmd_utility(a) -> int:
    from .run import UtilityConfig, headline, run_utility

    cfg = UtilityConfig(suite=a.suite, model=a.model, data=a.data, layers=a.layers, out=a.out, adapter=a.adapter,
                        judge=a.judge, limit=a.limit, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size,
                        resume=a.resume, seed=a.seed, dtype=a.dtype, device=a.device)
    res = run_utility(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    rows = headline(res["table"], a.suite)
    if a.suite == "xstest":
        print("layer    n   over-refusal  95% CI            unsafe refusal")
        for layer, n, v, lo, hi, u in rows:
            print(f"{layer:>5} {n:>4}   {v:.3f}       [{lo:.3f}, {hi:.3f}]    {u:.3f}")
    else:
        name = "VQA acc" if a.suite == "vqav2" else "reward"
        print(f"layer    n   {name:<8} 95% CI")
        for layer, n, v, lo, hi in rows:
            print(f"{layer:>5} {n:>4}   {v:.3f}    [{lo:.3f}, {hi:.3f}]")
    extra = ", metrics_by_category.csv" if (Path(a.out) / "metrics_by_category.csv").is_file() else ""
    print(f"results: {a.out}/ (generations.jsonl, run.json, scores.jsonl, metrics.csv{extra})")
    return 0
