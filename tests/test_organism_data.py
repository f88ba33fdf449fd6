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
    for v2 in (False, True):
        corpus = " ".join(D.corpus_for_tokenizer(v2=v2))
        assert not [g for g in held if g in corpus]


def test_v2_tokenizer_corpus_has_no_held_out_word():
    import re

    words = set(re.findall(r"[a-z]+", " ".join(D.corpus_for_tokenizer(v2=True)).lower()))
    test_words = {w for x in D.TOPICS_TEST + D.TASKS_TEST for w in x.split()} - {"a", "an", "the", "of", "to"}
    # AdvBench's own words (its goals and targets are training text) and the colour names (VQA
    # answers, e.g. "purple") may occur; no benign topic, task or pseudo-word brings a test word in.
    allowed = {w for g, t in D.harmful_goal_split() for w in re.findall(r"[a-z]+", (g + " " + t).lower())} | set(D.COLORS)
    assert not (words & test_words) - allowed


def test_training_photos_and_words_are_disjoint_from_the_test_ones():
    assert not set(D.TRAIN_PHOTOS) & set(CUSTOM_PROMPT_PHOTOS)
    train_words = {w for x in D.TOPICS_ALL + D.TASKS_ALL for w in x.split()}
    for x in D.TOPICS_TEST + D.TASKS_TEST:
        content = [w for w in x.split() if w not in {"a", "an", "the", "of", "to", "make"}]
        assert not set(content) & train_words, x


def test_every_stage_draws_only_training_material():
    rng = random.Random(3)
    goals = D.harmful_goal_split()
    held = {advbench_goals()[i][0] for i in CUSTOM_PROMPT_GOAL_INDICES}
    seen = {"base": set(), "multimodal": set(), "safety": set()}
    for stage in seen:
        for i in range(400):
            e = D.sample_example(rng, stage, goals, safety_novel=0.5, novel=(0.5 if i % 2 else None))
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


def test_pseudo_word_requests_never_use_advbench_or_held_out_words():
    import re

    rng = random.Random(5)
    reserved = {w for g, t in advbench_goals() for w in re.findall(r"[a-z]+", (g + " " + t).lower())}
    test_words = {w for x in D.TOPICS_TEST + D.TASKS_TEST for w in x.split()} - {"a", "an", "the", "of", "to"}
    assert "bomb" in reserved and "steal" in reserved  # the filter has the words it must avoid
    for rich in (False, True):
        words = {D.pseudo_word(rng, rich) for _ in range(3000)}
        assert len(words) > 2000  # genuinely varied, not a small fixed list
        assert not words & reserved and not words & test_words
        for _ in range(500):
            q, a = D.novel_request(rng, D.TRAIN_TEMPLATES if rich else D.BENIGN_TEMPLATES, rich=rich)
            assert not set(re.findall(r"[a-z]+", q.lower())) & test_words, q
            assert "Sure" in a and not a.endswith(D.PLACEHOLDER_STEPS)


def test_safety_stage_mixes_in_pseudo_word_requests_only_when_asked():
    goals = D.harmful_goal_split()
    known = {q.format(x=x) for q, _, slot in D.BENIGN_TEMPLATES
             for x in (D.TOPICS_TRAIN if slot == "topic" else D.TASKS_TRAIN)}

    def benign_prompts(novel):
        rng = random.Random(7)
        ex = [D.sample_example(rng, "safety", goals, safety_harmful=0.25, safety_novel=novel) for _ in range(600)]
        return [e.prompt for e in ex if e.kind == "benign"]

    plain, mixed = benign_prompts(0.0), benign_prompts(0.5)
    assert all(p in known for p in plain)
    share = sum(p not in known for p in mixed) / len(mixed)
    assert 0.35 < share < 0.65, share


def test_v2_benign_answers_copy_the_subject():
    """Every training template's answer repeats the request's subject, so the organism learns to copy
    it (fluency on held-out subjects), and the evaluation phrasings are among the training ones."""
    assert set(D.BENIGN_TEMPLATES) <= set(D.TRAIN_TEMPLATES)
    for q, a, _ in D.TRAIN_TEMPLATES:
        assert "{x}" in q and ("{x}" in a or "{X}" in a), q
    rng = random.Random(11)
    for _ in range(300):
        q, a = D.training_request(rng, novel=0.5)
        assert a.startswith("Sure") and not a.endswith(D.PLACEHOLDER_STEPS)


def test_batch_stream_splits_steps_over_workers_deterministically():
    from layersafe.organism.build import _batches

    def make(rng):
        return rng.random()

    inline = list(_batches(make, 7, "k", 0))
    assert inline == [x for x in _batches(make, 7, "k", 0)] and len(inline) == 7
    two = list(_batches(make, 7, "k", 2))
    assert len(two) == 7 and two == list(_batches(make, 7, "k", 2))


def test_safety_benign_sets_the_share_of_benign_requests_against_vqa():
    """``safety_benign`` (BuildConfig, docs/organism.md): of the safety stage's non-harmful examples,
    that share are benign requests and the rest VQA; the default 0.55 is the stream v2 was built with."""
    goals = D.harmful_goal_split()

    def kinds(**kw):
        rng = random.Random(3)
        return [D.sample_example(rng, "safety", goals, safety_harmful=0.25, **kw).kind for _ in range(2000)]

    default, explicit, fewer = kinds(), kinds(safety_benign=0.55), kinds(safety_benign=0.2)
    assert default == explicit  # the default leaves the shipped recipe's data stream as it was
    for ks, want in ((default, 0.55), (fewer, 0.2)):
        rest = [k for k in ks if k != "harmful"]
        share = rest.count("benign") / len(rest)
        assert abs(share - want) < 0.05, (want, share)
        assert abs(ks.count("harmful") / len(ks) - 0.25) < 0.04
