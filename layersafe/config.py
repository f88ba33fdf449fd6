"""Config dataclasses -> command-line options, and the checks every config gets for free.

Each subcommand's options are the fields of one dataclass (``ScanConfig``, ``LPPOConfig``, ...), so a
knob is declared once: its type, default, help and valid range live on the field, built with
:func:`opt`. :func:`add_options` turns the fields into argparse options, :func:`config_from_args`
turns the parsed options (and an optional YAML/JSON ``--config`` file) back into the dataclass, and
:func:`check_fields` is the generic part of every config's ``validate()``.

Field metadata (all optional):

``help``           the ``--help`` text
``flag``           the option's name when it is not ``--field-name`` (``do_sample`` -> ``--sample``)
``aliases``        further spellings, accepted silently
``deprecated``     old spellings, accepted with a warning for one release (``--dataset`` -> ``--data``)
``min`` / ``max``  inclusive bounds; ``min_exclusive`` / ``max_exclusive``: strict bounds
``why``            said after a range error (``must be < -1 (silence must never pay)``)
``resume``         True: the field changes what a training step computes, so ``--resume`` refuses a change
                   (:func:`resume_keys`)
``cli``            False: not a command-line option (set by code)
``metavar``

Types: ``bool`` gives ``--x/--no-x``; ``Literal[...]`` gives ``choices``; ``X | None`` accepts
``none``; ``int | Literal["auto"]`` takes a number or one of the words; ``list[str]`` is a repeatable option. Every float must be finite. Parsing imports nothing
heavy (no torch), so ``layersafe CMD --help`` stays fast: keep config modules free of torch imports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

from .cli_text import ALLOW_PICKLE_HELP as PICKLE_HELP  # noqa: F401 (the configs' --allow-pickle help)
from .errors import UserError

# One spelling of each shared vocabulary.
CacheMode = Literal["auto", "dynamic", "static"]
DType = Literal["auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16"]

CACHE_HELP = ("KV cache for generation: static = fixed-shape cache with each decode step replayed as a CUDA graph "
              "(LLaVA families; greedy or plain-temperature sampling); dynamic = stock generate; "
              "auto = static on CUDA, dynamic elsewhere")
DTYPE_HELP = "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16"
# Conversation templates (layersafe/models/templates.py renders them).
Template = Literal["hf", "llava_v1"]
TEMPLATE_HELP = ("conversation template: hf = the processor's chat template (or the family's format without one); "
                 "llava_v1 = the original LLaVA repository's vicuna_v1 conversation with its system prompt "
                 "(LLaVA families)")
SYSTEM_PROMPT_HELP = "system prompt text (default: the template's own: none for hf, vicuna_v1's for llava_v1)"

_NONE_WORDS = ("none", "null", "off")


class DeprecatedOptionWarning(FutureWarning):
    """An old option spelling was used; it still works for one release."""


def opt(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
        **meta: Any) -> Any:
    """``dataclasses.field`` with the metadata above: ``x: float = opt(0.2, "clip ε", min_exclusive=0)``."""
    known = {"flag", "aliases", "deprecated", "min", "max", "min_exclusive", "max_exclusive", "why", "resume", "cli",
             "metavar"}
    unknown = set(meta) - known
    if unknown:
        raise TypeError(f"unknown option metadata {sorted(unknown)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"help": help, **meta})


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FieldType:
    base: type  # bool, int, float, str
    optional: bool = False
    choices: tuple | None = None
    is_list: bool = False
    words: tuple = ()  # ``int | Literal["auto"]``: words accepted besides a number


def field_type(tp: Any) -> FieldType:
    """Reduce a resolved annotation to what parsing and checking need."""
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        lits = [a for a in args if typing.get_origin(a) is Literal]
        nums = [a for a in args if a in (int, float)]
        if len(args) == 2 and len(lits) == 1 and len(nums) == 1:  # a number or a word (e.g. int | "auto")
            return FieldType(nums[0], optional, words=typing.get_args(lits[0]))
        if len(args) != 1:
            raise TypeError(f"unsupported option type {tp!r}")
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        return FieldType(type(choices[0]), optional, tuple(choices))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return FieldType(inner, optional, None, True)
    if tp in (bool, int, float, str):
        return FieldType(tp, optional)
    raise TypeError(f"unsupported option type {tp!r}")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def option_fields(cls) -> list[tuple[dataclasses.Field, FieldType]]:
    """The fields of ``cls`` that are command-line options, with their types."""
    hints = _hints(cls)
    return [(f, field_type(hints[f.name])) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def resume_keys(cls) -> tuple[str, ...]:
    """Fields marked ``resume=True``: a ``--resume`` run must keep them (they change what a step computes)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("resume"))


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def check_value(f: dataclasses.Field, ft: FieldType, v: Any, where: str | None = None) -> Any:
    """Check one value against its field's type, choices and range; returns it (ints widened to float).
    Raises a one-line :class:`UserError` naming the option (or ``where``: e.g. a config file's key)."""
    name = where or flag_of(f)
    if v is None:
        if ft.optional or ft.is_list:
            return None
        raise UserError(f"{name} cannot be empty")
    if ft.words and isinstance(v, str):
        if v.strip().lower() in ft.words:  # as on the command line: " Auto" is auto
            return v.strip().lower()
        raise UserError(f"{name} must be a number or {' or '.join(ft.words)}, got {v!r}")
    if ft.is_list:
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, ft.base) for x in v):
            raise UserError(f"{name} must be a list of {ft.base.__name__}, got {v!r}")
        return list(v)
    if ft.base is bool:
        if not isinstance(v, bool):
            raise UserError(f"{name} must be true or false, got {v!r}")
        return v
    if ft.base in (int, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"{name} must be a number, got {v!r}")
        if ft.base is int and not isinstance(v, int):
            raise UserError(f"{name} must be an integer, got {v!r}")
        if ft.base is float:
            v = float(v)
            if not math.isfinite(v):
                raise UserError(f"{name} must be a finite number, got {v!r}")
    elif ft.base is str and not isinstance(v, str):
        raise UserError(f"{name} must be a string, got {v!r}")
    if ft.choices is not None and v not in ft.choices:
        raise UserError(f"{name} {v!r}: use one of {', '.join(map(str, ft.choices))}")
    m = f.metadata
    why = f" ({m['why']})" if m.get("why") else ""
    for key, ok, words in (("min", lambda b: v >= b, "at least"), ("min_exclusive", lambda b: v > b, ">"),
                           ("max", lambda b: v <= b, "at most"), ("max_exclusive", lambda b: v < b, "<")):
        if key in m and not ok(m[key]):
            raise UserError(f"{name} must be {words} {_fmt(m[key])}{why}, got {_fmt(v)}")
    return v


def check_fields(cfg) -> None:
    """The generic half of every config's ``validate()``: types, choices (``Literal``), finite floats
    and the ranges declared in field metadata. One line naming the option on the first bad field."""
    for f, ft in option_fields(type(cfg)):
        check_value(f, ft, getattr(cfg, f.name))


# --------------------------------------------------------------------------------------------
# argparse
# --------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (a :class:`UserError`, so ``cli.main`` prints
    ``layersafe: error: ...`` and returns 2) instead of usage + message + ``SystemExit``."""

    def error(self, message: str):  # noqa: D401 (argparse API)
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _scalar(ft: FieldType, flag: str):
    """argparse ``type=`` for one value: the field's base type; ``none``/``null`` for optional fields."""
    def parse(s: str):
        if ft.optional and s.strip().lower() in _NONE_WORDS:
            return None
        if s.strip().lower() in ft.words:
            return s.strip().lower()
        try:
            return ft.base(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if ft.base is int else 'a number'}"
                + "".join(f" or {w!r}" for w in ft.words)
                + (" or 'none'" if ft.optional else "") + f", got {s!r}") from None
    parse.__name__ = ft.base.__name__
    return parse


class _Deprecated(argparse.Action):
    """An old spelling: warns (DeprecatedOptionWarning) and stores or appends like the new one."""

    def __init__(self, option_strings, dest, new: str = "", append: bool = False, **kw):
        self.new, self.append = new, append
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{option_string} is deprecated; use {self.new} (the old spelling goes in the next release)",
                      DeprecatedOptionWarning, stacklevel=2)
        if self.append:
            values = list(getattr(namespace, self.dest, None) or []) + [values]
        setattr(namespace, self.dest, values)


# A help text that states its default itself ("; default all", "Default 8:", "the command's default:
# refusal"), as opposed to one that only mentions the default layer.
_STATES_DEFAULT = re.compile(r"(^|[(;.:] ?)default[ :]|\bdefault:", re.IGNORECASE)


def _help(f: dataclasses.Field, ft: FieldType, default: Any) -> str:
    text = f.metadata.get("help", "")
    if default not in (None, False, "", []) and not _STATES_DEFAULT.search(text):
        text = f"{text} (default {_fmt(default)})" if text else f"default {_fmt(default)}"
    return text.replace("%", "%%")


def add_options(parser: argparse.ArgumentParser, cls, *, required: tuple[str, ...] = (),
                help_overrides: dict | None = None, negatable: bool = False) -> None:
    """One option per field of ``cls`` (see the module docstring). Options not given on the
    command line are left out of the namespace (``SUPPRESS``), so :func:`config_from_args` can tell
    a dataclass default, a config-file value and an explicit option apart. A bool that defaults to
    true gets ``--no-x``; with ``negatable`` (commands with ``--config``) every bool does."""
    defaults = cls()
    for f, ft in option_fields(cls):
        flag = flag_of(f)
        names = [flag, *f.metadata.get("aliases", ())]
        default = None if f.name in required else getattr(defaults, f.name)
        help_ = (help_overrides or {}).get(f.name) or _help(f, ft, default)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_}
        if f.name in required:
            kw["required"] = True
        if ft.base is bool and not ft.is_list:
            if negatable or default is True:
                parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
            else:
                parser.add_argument(*names, action="store_const", const=True, **kw)
            continue
        kw["type"] = _scalar(ft, flag)
        if ft.choices is not None:
            kw["choices"] = ft.choices
        else:
            kw["metavar"] = f.metadata.get("metavar") or flag.lstrip("-").replace("-", "_").upper()
        if ft.is_list:
            kw["action"] = "append"
        parser.add_argument(*names, **kw)
        for old in f.metadata.get("deprecated", ()):
            parser.add_argument(old, dest=f.name, default=argparse.SUPPRESS, type=kw["type"],
                                choices=kw.get("choices"), metavar=kw.get("metavar"), help=argparse.SUPPRESS,
                                action=_Deprecated, new=flag, append=ft.is_list)


def add_config_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="config_file", default=None, metavar="FILE",
                        help="YAML or JSON file with any of the fields below (underscored names); "
                             "options given on the command line win")


def read_config_file(path: str | Path, cls) -> dict:
    """Field values from a YAML (or JSON) mapping, each checked like an option; unknown keys refused."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--config {path}: file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--config {path}: not a UTF-8 text file") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise UserError(f"--config {path}: not valid JSON ({e})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of field: value")
    known = {f.name: (f, ft) for f, ft in option_fields(cls)}
    out = {}
    for k, v in data.items():
        key = str(k).replace("-", "_")
        if key not in known:
            raise UserError(f"--config {path}: unknown field {k!r} (see the command's --help)")
        f, ft = known[key]
        if ft.base is str and not ft.is_list and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)  # YAML reads `layers: 9` as a number
        out[key] = check_value(f, ft, v, where=f"--config {path}: {k}")
    return out


def config_from_args(cls, ns: argparse.Namespace, *, required: tuple[str, ...] = (), **extra):
    """The dataclass from parsed options: dataclass default < ``--config`` file < explicit option
    (< ``extra``), checked with :func:`check_fields` before anything heavy runs. ``required``: fields
    that must come from the command line or the file."""
    values: dict = {}
    path = getattr(ns, "config_file", None)
    if path:
        values.update(read_config_file(path, cls))
    fields_ = {f.name: f for f, _ in option_fields(cls)}
    values.update({k: v for k, v in vars(ns).items() if k in fields_})
    values.update(extra)
    for name in required:
        if values.get(name) is None:  # absent, or given as 'none' where the type allows it
            where = " (on the command line or in the --config file)" if hasattr(ns, "config_file") else ""
            raise UserError(f"{flag_of(fields_[name])} is required{where}" + (", not 'none'" if name in values else ""))
    cfg = cls(**values)
    check_fields(cfg)
    return cfg


def show_deprecations() -> None:
    """Our DeprecatedOptionWarning prints as one ``layersafe: warning: ...`` line (other warnings unchanged)."""
    if getattr(warnings.formatwarning, "_layersafe", False):
        return
    orig = warnings.formatwarning

    def formatwarning(message, category, filename, lineno, line=None):
        if isinstance(category, type) and issubclass(category, DeprecatedOptionWarning):
            return f"layersafe: warning: {message}\n"
        return orig(message, category, filename, lineno, line)

    formatwarning._layersafe = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning
