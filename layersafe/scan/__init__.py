from .engine import GENERATIONS, RUN_JSON, ScanConfig, run_scan  # noqa: F401
