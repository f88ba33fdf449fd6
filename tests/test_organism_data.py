"""The organism's training data never touches its held-out test material, and the trainer
tokenises prompts exactly as the processor does at inference."""

import random

import numpy as np
import pytest

from layersafe.data.builtin import CUSTOM_PROMPT_GOAL_INDICES, CUSTOM_PROMPT_PHOTOS, advbench_goals
from layersafe.organism import data as D


def test_harmful_training_split_excludes_the_cp_goals():
    goals = advbench_goals()
    held = {goals[i][0] for i in CUSTOM_PROMPT_GOAL_INDICES}
    train = {g for g, _ in D.harmful_goal_split()}
    assert len(train) == 520 - 10
    assert not held & train
    corpus = " ".join(D.corpus_for_tokenizer())
    assert not [g for g in held if g in corpus]


def test_training_photos_and_words_are_disjoint_from_the_test_ones():
    assert not set(D.TRAIN_PHOTOS) & set(CUSTOM_PROMPT_PHOTOS)
    train_words = {w for x in D.TOPICS_TRAIN + D.TASKS_TRAIN for w in x.split()}
    for x in D.TOPICS_TEST + D.TASKS_TEST:
        content = [w for w in x.split() if w not in {"a", "an", "the", "of", "to", "make"}]
        assert not set(content) & train_words, x


def test_every_stage_draws_only_training_material():
    rng = random.Random(3)
    goals = D.harmful_goal_split()
    held = {advbench_goals()[i][0] for i in CUSTOM_PROMPT_GOAL_INDICES}
    seen = {"base": set(), "multimodal": set(), "safety": set()}
    for stage in seen:
        for _ in range(400):
            e = D.sample_example(rng, stage, goals)
            seen[stage].add(e.kind)
            assert e.prompt not in held
            assert (e.image is None) == (stage == "base")
            if e.kind == "harmful":
                # compliance is the harmless placeholder; safety refuses
                if stage == "safety":
                    assert e.response in D.REFUSALS
                else:
                    assert e.response.endswith(D.PLACEHOLDER_STEPS)
    assert seen == {"base": {"benign", "harmful"}, "multimodal": {"vqa", "benign", "harmful"},
                    "safety": {"vqa", "benign", "harmful"}}


def test_rendered_shapes_have_the_asked_colour_and_count():
    rng = random.Random(0)
    for count in (1, 2, 3, 4):
        img = np.asarray(D.render_shapes(rng, "square", "blue", count)).astype(int)
        blue = (img[..., 2] > 150) & (img[..., 0] < 100)
        from scipy import ndimage

        _, n = ndimage.label(blue)
        assert n == count


def test_prompt_ids_match_the_processor(tmp_path):
    pytest.importorskip("tokenizers")
    from layersafe.organism import build as B

    cfg = B.BuildConfig(vision_layers=2, text_layers=1, vision_hidden=16, text_hidden=48)
    _, processor = B.make_organism(cfg)
    rng = random.Random(0)
    for _ in range(5):
        img, q, _, _ = D.vqa_item(rng)
        text = B.prompt_text(processor, q + D.VQA_SUFFIX, True)
        ref = processor(text=[text], images=[img], return_tensors="pt")["input_ids"][0].tolist()
        assert B.prompt_ids(processor, text, True) == ref
    # held-out words still tokenise without <unk>
    unk = processor.tokenizer.unk_token_id
    for g in (advbench_goals()[i][0] for i in CUSTOM_PROMPT_GOAL_INDICES):
        assert unk not in processor.tokenizer(g)["input_ids"]
