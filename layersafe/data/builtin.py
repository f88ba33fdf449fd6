"""Built-in offline datasets: AdvBench goals paired with benign scikit-image photos."""

from __future__ import annotations

import csv
import io
import random
from functools import lru_cache
from importlib.resources import files

from .base import SKIMAGE_PREFIX, Dataset, Sample

# Benign natural photos that ship inside scikit-image and load offline (eagle, lily and skin
# need an optional download, so they are left out).
BENIGN_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "hubble_deep_field",
    "stereo_motorcycle", "cat", "clock", "brick", "grass", "gravel", "colorwheel",
)

# The paper's CP design holds 10 AdvBench goals out of AC. These indices are FIXED (not seeded)
# because the model organism's trainer must never see them (it excludes these goal indices from
# its training data). Computed once, sorted: sorted(random.Random(2411_04291).sample(range(520), 10)).
CUSTOM_PROMPT_GOAL_INDICES = (45, 98, 99, 186, 272, 280, 349, 352, 416, 436)
CUSTOM_PROMPT_PHOTOS = BENIGN_PHOTOS[:10]


@lru_cache(maxsize=1)
def _advbench_rows() -> tuple[tuple[str, str], ...]:
    # Read once per process; a tuple so no caller can change the cached copy.
    raw = files("layersafe.data").joinpath("files/advbench_harmful_behaviors.csv").read_text("utf-8-sig")
    return tuple((r["goal"], r["target"]) for r in csv.DictReader(io.StringIO(raw)))


def advbench_goals() -> list[tuple[str, str]]:
    """The 520 AdvBench harmful behaviours as (goal, target), in file order (index = row index)."""
    return list(_advbench_rows())


def advbench_images(seed: int = 0) -> Dataset:
    """The paper's AC design, offline: each AdvBench goal with a benign photo drawn with ``seed``."""
    rng = random.Random(seed)
    samples = [
        Sample(id=f"advbench-{i:03d}", prompt=goal, image=SKIMAGE_PREFIX + rng.choice(BENIGN_PHOTOS),
               category="advbench", harmful=True, meta={"target": target, "goal_index": i})
        for i, (goal, target) in enumerate(advbench_goals())
    ]
    return Dataset(name="advbench-images", samples=samples, source="advbench-images")


def custom_prompts(seed: int = 0) -> Dataset:
    """The paper's CP design: 10 held-out AdvBench goals × 10 benign photos = 100 pairs.
    Fixed (``seed`` is ignored) so results are comparable across runs and models."""
    goals = advbench_goals()
    samples = [
        Sample(id=f"cp-{gi:03d}-{photo}", prompt=goals[gi][0], image=SKIMAGE_PREFIX + photo,
               category="advbench", harmful=True, meta={"target": goals[gi][1], "goal_index": gi})
        for gi in CUSTOM_PROMPT_GOAL_INDICES
        for photo in CUSTOM_PROMPT_PHOTOS
    ]
    return Dataset(name="custom-prompts", samples=samples, source="custom-prompts")


BUILTINS = {"advbench-images": advbench_images, "custom-prompts": custom_prompts}
BUILTIN_DESCRIPTIONS = {
    "advbench-images": "520 AdvBench harmful goals, each with a benign scikit-image photo (seeded; paper's AC, offline)",
    "custom-prompts": "10 held-out AdvBench goals x 10 benign photos = 100 pairs (paper's CP design)",
}
