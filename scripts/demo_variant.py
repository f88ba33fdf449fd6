"""Run `layersafe demo` with some of its repair constants changed, for sweeps and seed studies.

    python3 scripts/demo_variant.py OUT METHOD SEED [NAME=VALUE ...]

METHOD is distill or lppo; NAME is a constant of layersafe/organism/demo.py (DISTILL_LEARNING_RATE,
ANCHOR_FRACTION, DISTILL_PTX_COEF, LEARNING_RATE, PTX_COEF, ...). Prints the demo's console table
and writes OUT.json (demo.json's content). docs/organism.md, Repair, lists the runs made with it;
set OMP_NUM_THREADS to pin the thread count (it changes which samples a seed draws).
"""

import json
import sys

from layersafe.organism import demo


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, method, seed = argv[0], argv[1], int(argv[2])
    for kv in argv[3:]:
        name, value = kv.split("=", 1)
        if not hasattr(demo, name):
            print(f"demo has no constant {name}", file=sys.stderr)
            return 2
        old = getattr(demo, name)
        setattr(demo, name, value.lower() in ("1", "true", "yes") if isinstance(old, bool) else type(old)(value))
    r = demo.run_demo(out, method=method, seed=seed, progress=False, log=lambda m: None)
    print(r["console"])
    with open(out + ".json", "w") as f:
        json.dump({k: v for k, v in r.items() if k != "console"}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
