"""Command line: thin wrappers that parse options into config dataclasses and call the library.

Every user error ends with one line on stderr and exit code 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import Parser, add_options, config_from_args, show_deprecations
from .errors import UserError

from .cli_text import ALLOW_PICKLE_HELP, EPILOG  # noqa: F401  (re-exported for old imports)


def _add_scan(sub):
    from .scan.engine import ScanConfig

    p = sub.add_parser(
        "scan", help="generate responses at every requested image-encoder layer (ICET scan)",
        description="Scan a VLM for the image-encoder early-exit (ICET) vulnerability: for every sample and "
                    "every requested layer l, feed the projected layer-l image features to the language model "
                    "and record its response in OUT/generations.jsonl.", epilog=EPILOG)
    add_options(p, ScanConfig, required=("out",))  # every field of ScanConfig is an option (layersafe.config)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--no-report", action="store_true", help="skip writing OUT/report/ (report.html, plots, summary.json)")
    p.set_defaults(func=cmd_scan)


def cmd_scan(a) -> int:
    from .api import run_scan_pipeline, scan_judges
    from .scan.engine import ScanConfig

    cfg = config_from_args(ScanConfig, a, judges=scan_judges(getattr(a, "judges", None)))
    run_scan_pipeline(cfg, report=not a.no_report, progress=not a.no_progress,
                      log=lambda m: print(m, file=sys.stderr), say=print)  # = layersafe.scan(), printing as it goes
    return 0


def _add_judge(sub):
    p = sub.add_parser("judge", help="score responses in a JSONL/CSV file, or a run folder in place, with judges",
                       description="Read rows with prompt and response (and an id) from a JSONL or CSV file, "
                                   "add a `scores` object from each judge, and write them to --out. Or judge a "
                                   "run folder in place (`layersafe judge RUN_DIR --judge NAME`): add or replace "
                                   "that judge's scores in RUN_DIR/scores.jsonl (other judges' scores are kept), "
                                   "then rewrite metrics.csv and the report. Runs from the files alone: no VLM is "
                                   "loaded.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a scan / utility / paper-set folder to judge in place")
    p.add_argument("--input", help="JSONL or CSV file with prompt and response columns")
    p.add_argument("--judge", dest="judges", action="append", required=True, metavar="NAME[:ARG]",
                   help="judge to run (repeatable); see `layersafe judges`")
    p.add_argument("--out", help="output file (.jsonl or .csv) for --input: the same rows plus `scores`")
    p.add_argument("--no-report", action="store_true", help="with RUN_DIR: do not rewrite RUN_DIR/report")
    p.add_argument("--batch-size", type=int, default=64, help="rows per judge call (default 64)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_judge)


def cmd_judge(a) -> int:
    from .api import judge_file

    if a.run_dir is not None:
        if a.input or a.out:
            raise UserError("give either RUN_DIR (judged in place) or --input FILE --out FILE2, not both")
        from .api import judge_run_dir

        table = judge_run_dir(a.run_dir, a.judges, batch_size=a.batch_size, report=not a.no_report,
                              progress=not a.no_progress)
        if os.environ.get("RANK", "0") == "0":
            print(f"judged {Path(a.run_dir) / 'scores.jsonl'} in place with {', '.join(a.judges)}; "
                  f"{len(table)} layers in {Path(a.run_dir) / 'metrics.csv'}")
        return 0
    if not a.input or not a.out:
        raise UserError("give a run folder (layersafe judge RUN_DIR --judge NAME) or --input FILE and --out FILE2")
    counts = judge_file(a.input, a.judges, a.out, batch_size=a.batch_size, force=a.force, progress=not a.no_progress)
    if os.environ.get("RANK", "0") != "0":  # under torchrun / accelerate launch only rank 0 reports
        return 0
    print(f"judged {counts['scored']} rows ({counts['skipped_failed_rows']} failed rows not scored) -> {Path(a.out)}")
    return 0


def _add_judges(sub):
    p = sub.add_parser("judges", help="list the available judges")
    p.set_defaults(func=cmd_judges)


def cmd_judges(a) -> int:
    from .api import list_judges

    for name, description in list_judges().items():
        print(f"{name:<14} {description}")
    return 0


def _add_layers(sub):
    p = sub.add_parser("layers", help="print a model's encoder depth, default layer and valid layer range")
    p.add_argument("--model", required=True, help="HF hub id or local folder (or tiny-random-llava)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.set_defaults(func=cmd_layers)


def cmd_layers(a) -> int:
    from .api import layer_info

    info = layer_info(a.model, trust_remote_code=a.trust_remote_code, allow_pickle=a.allow_pickle)
    print(f"model:          {a.model} ({info.architecture}, family {info.family})")
    print(f"encoder depth:  {info.num_layers} blocks")
    print(f"default layer:  {info.default_layer}")
    print(f"valid layers:   0..{info.num_layers} ({info.meaning})")
    return 0


def _add_datasets(sub):
    p = sub.add_parser("datasets", help="list the built-in datasets")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(a) -> int:
    from .api import list_datasets

    for name, desc in list_datasets().items():
        print(f"{name:<18} {desc}")
    print("or a .jsonl/.csv file with columns id, prompt, image (optional: category, harmful)")
    return 0


# Subcommands that live beside their pipeline stage: each module exposes ``add_parser(sub)``
# registering one subcommand (with ``set_defaults(func=...)``). One line per module.
EXTRA_COMMANDS: list[str] = [
    "layersafe.rl.rm_cli",
    "layersafe.report.cli",
    "layersafe.rl.align_cli",
    "layersafe.utility.cli",
    "layersafe.rl.sft_cli",
    "layersafe.organism.cli",
    "layersafe.trim",
    "layersafe.check",
    "layersafe.paper",
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = Parser(  # subcommand parsers inherit its one-line errors
        prog="layersafe",
        description="Layer-wise safety audits of vision-language models: scan every image-encoder layer "
                    "for the ICET vulnerability (Bachu et al., ICML 2025), judge the responses, report.")
    p.add_argument("--version", action="version", version=f"layersafe {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_scan, _add_judge, _add_judges, _add_layers, _add_datasets):
        add(sub)
    import importlib

    for mod in EXTRA_COMMANDS:
        importlib.import_module(mod).add_parser(sub)
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    show_deprecations()  # `--dataset` & co. warn in one line
    try:
        a = parser.parse_args(argv)
    except UserError as e:  # a bad option is one line too (layersafe.config.Parser), not usage + SystemExit
        print(f"layersafe: error: {e}", file=sys.stderr)
        return 2
    if not getattr(a, "func", None):
        parser.print_help()
        return 2
    try:
        _quiet_libraries()
        return a.func(a)
    except UserError as e:
        print(f"layersafe: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # read-only or full disk, a path under a file, /proc, ...: the user's system
        print(f"layersafe: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("layersafe: error: out of memory; use smaller --batch-size / --limit, or a machine with more memory",
              file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001  (last resort: a bug, but still one line, not a traceback)
        if os.environ.get("LAYERSAFE_TRACEBACK"):
            raise
        print(f"layersafe: internal error: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''} "
              "-- this is a bug in layersafe; please report it with the command line "
              "(LAYERSAFE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("layersafe: interrupted; finished rows are saved (rerun with --resume to continue)", file=sys.stderr)
        return 130


def os_error_line(e: OSError) -> str:
    """One line for an operating-system error: the path, the reason and its errno name, what to do."""
    import errno

    name = errno.errorcode.get(e.errno, "") if e.errno else ""
    path = e.filename if e.filename is not None else "a file"
    what = f"{path}" + (f" -> {e.filename2}" if e.filename2 else "")
    advice = {
        errno.ENOSPC: "free disk space and run the same command again (finished work is kept; scan, align "
                      "and train-rm continue with --resume)",
        errno.EDQUOT: "free space in your quota and run the same command again",
        errno.EROFS: "the filesystem is read-only; choose an output path on a writable disk",
        errno.EACCES: "you lack permission there; choose a path you can write, or fix the permissions",
        errno.EPERM: "the operation is not permitted there; choose another path",
        errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
        errno.EEXIST: "a file is in the way where a folder is needed; fix the path",
        errno.EISDIR: "that is a folder; give a file name",
        errno.ENOENT: "check the path",
        errno.ENAMETOOLONG: "use a shorter path",
    }.get(e.errno, "check the path and the disk")
    reason = e.strerror or type(e).__name__
    return f"cannot use {what}: {reason}" + (f" ({name})" if name else "") + f"; {advice}"


def _quiet_libraries():
    """transformers' load bars and backend notices drown our own progress output."""
    try:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
        from huggingface_hub.utils import logging as hlog

        hlog.set_verbosity_error()  # offline retries would print five warnings before our one line
    except Exception:
        pass


if __name__ == "__main__":
    sys.exit(main())
