from .aggregate import per_category_metrics, per_layer_metrics, wilson_interval, write_metrics_csv  # noqa: F401
