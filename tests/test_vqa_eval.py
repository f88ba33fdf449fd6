"""VQA-v2 official accuracy: hand-worked cases of the leave-one-annotator-out average and of the
official normalisation rules (punctuation, digit-comma, periods, articles, numbers, contractions)."""

from __future__ import annotations

import pytest

from layersafe.utility.vqa_eval import (normalize_answer, process_digit_article, process_punctuation,
                                        short_answer, vqa_accuracy)


@pytest.mark.parametrize("k,expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_subset_average(k, expected):
    # k of 10 annotators said "cat". Leaving out a matching annotator leaves k-1 matches, else k:
    # k=2: (2 * 1/3 + 8 * 2/3) / 10 = 0.6 ; k=3: (3 * 2/3 + 7 * 1) / 10 = 0.9 ; k=1: 9 * 1/3 / 10 = 0.3
    answers = ["cat"] * k + ["dog"] * (10 - k)
    assert vqa_accuracy("cat", answers) == pytest.approx(expected)


def test_punctuation_rules():
    assert process_punctuation("black/white") == "black white"  # no space next to '/': replaced by a space
    assert process_punctuation("yes, it is") == "yes it is"  # ', ' touches a space: deleted
    assert process_punctuation("1,000") == "1000"  # digit-comma-digit: every mark is deleted
    assert process_punctuation("1,000 (approx)") == "1000 approx"  # ... including the brackets
    assert process_punctuation("3.5") == "3.5"  # a period before a digit stays
    assert process_punctuation("dr. who.") == "dr who"  # other periods go
    assert process_punctuation("t-shirt") == "t shirt"


def test_words_rules():
    assert process_digit_article("The Two dogs") == "2 dogs"
    assert process_digit_article("none") == "0"
    assert process_digit_article("an apple a day") == "apple day"
    assert process_digit_article("dont  know") == "don't know"
    assert process_digit_article("isnt it") == "isn't it"
    assert process_digit_article("eleven") == "eleven"  # only zero..ten are mapped


def test_normalize_prediction():
    assert normalize_answer("  Two.\n") == "2"
    assert normalize_answer("Yes!") == "yes"
    assert normalize_answer("The man's hat") == "man's hat"


def test_prediction_normalised_against_agreeing_humans():
    assert vqa_accuracy("Two.", ["2"] * 10) == 1.0
    assert vqa_accuracy("A dog", ["dog"] * 10) == 1.0
    assert vqa_accuracy("dogs", ["dog"] * 10) == 0.0  # no stemming in the official metric


def test_human_answers_processed_only_when_they_disagree():
    # Disagreeing humans get processPunctuation: "t-shirt" -> "t shirt" matches the prediction (3 of 10).
    assert vqa_accuracy("T-shirt", ["t-shirt"] * 3 + ["shirt"] * 7) == pytest.approx(0.9)
    # All ten agree: the official script leaves them as written, so "t shirt" != "t-shirt".
    assert vqa_accuracy("T-shirt", ["t-shirt"] * 10) == 0.0


def test_short_answer_and_errors():
    assert short_answer("Answer: Yes\nBecause the sky is blue.") == "Yes"
    assert short_answer("") == ""
    assert vqa_accuracy(short_answer("2\nThere are two cats."), ["2"] * 4 + ["3"] * 6) == 1.0
    with pytest.raises(ValueError):
        vqa_accuracy("x", [])
