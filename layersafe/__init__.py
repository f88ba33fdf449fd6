"""layersafe: layer-wise safety audits and repair for vision-language models.

Pipeline (docs/design.md §2): data -> models -> scan -> judges -> metrics -> report; rl for repair.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from .errors import UserError

__version__ = "0.1.0"

# The Python API (layersafe/api.py, docs/python.md): one function per command. Names load on first
# use, so `import layersafe` stays light (no torch; `layersafe --help` relies on it).
__all__ = [
    "scan", "judge", "align", "sft", "train_rm", "eval_rm", "utility", "paper", "report", "trim", "check",
    "layer_info", "list_judges", "list_datasets", "load_run", "Run", "Report", "LayerInfo", "CheckResult",
    "ScanConfig", "LPPOConfig", "SFTConfig", "RMTrainConfig", "UtilityConfig", "PaperConfig", "UserError",
    "__version__",
]

# Six commands share their name with a module (layersafe.scan holds the engine, layersafe.utility
# the suites, layersafe.report the report builder, layersafe.trim, layersafe.check and
# layersafe.paper their commands). Those modules are made callable: layersafe.scan(...) runs layersafe.api.scan(...), while
# layersafe.scan.engine and every `from layersafe.scan... import` work as before. (Without this,
# the first import of the module would replace a plain function of the same name on the package.)
_COMMAND_MODULES = ("scan", "utility", "report", "trim", "check", "paper")


def _api():
    # Loaded by name, on first use of an API name: modules of every stage import this package for
    # __version__ (versions.py, report/build.py), and that must not count as importing the top layer
    # (api sits beside cli; lint-imports checks the layering, docs/design.md §10).
    import importlib

    return importlib.import_module(f"{__name__}.api")


class _CommandModule(_types.ModuleType):
    """A subpackage that is also the API function of the same name (see above)."""

    def __call__(self, *args, **kwargs):
        return getattr(_api(), self.__name__.rpartition(".")[2])(*args, **kwargs)

    @property
    def __doc__(self):  # help(layersafe.scan): the function first, then the subpackage
        fn = getattr(_api(), self.__name__.rpartition(".")[2])
        own = self.__dict__.get("__doc__")
        return (f"layersafe.{fn.__name__}{_signature(fn)}\n\n{fn.__doc__}"
                + (f"\n\nThe subpackage {self.__name__}: {own}" if own else ""))

    @__doc__.setter
    def __doc__(self, value):
        self.__dict__["__doc__"] = value

    @property
    def __signature__(self):  # inspect.signature / help in notebooks show the function's parameters
        return _signature(getattr(_api(), self.__name__.rpartition(".")[2]))


def _signature(fn):
    import inspect

    return inspect.signature(fn)


class _Package(_types.ModuleType):
    def __setattr__(self, name, value):
        # the import system sets each imported subpackage as an attribute of its parent: make it callable
        if name in _COMMAND_MODULES and type(value) is _types.ModuleType and value.__name__ == f"{__name__}.{name}":
            value.__class__ = _CommandModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _COMMAND_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")  # sets the (callable) attribute
    if name in __all__:
        return getattr(_api(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
