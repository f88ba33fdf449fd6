"""layersafe: layer-wise safety audits and repair for vision-language models.

Pipeline (docs/design.md §2): data -> models -> scan -> judges -> metrics -> report; rl for repair.
"""

__version__ = "0.1.0"
