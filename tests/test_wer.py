"""The bench's WER: forms a listener would call the same words are not errors, real errors are counted."""

from __future__ import annotations

import pytest

from specvoice.bench.normalize import WordErrors, normalize, word_errors


@pytest.mark.parametrize("reference, hypothesis", [
    ("MISTER QUILTER IS THE APOSTLE", "Mr. Quilter is the apostle."),  # case, punctuation, titles
    ("Mrs. Jones met Dr. Smith on St. Paul", "missus jones met doctor smith on saint paul"),
    ("IN EIGHTEEN THIRTEEN", "In 1813."),  # spelled-out numbers, as LibriSpeech and LJ Speech write them
    ("twenty five", "25"),
    ("twenty-five", "25"),
    ("one hundred and one", "101"),
    ("twenty five dollars", "$25"),
    ("ten percent", "10%"),
    ("the first", "the 1st"),
    ("the colour of the harbour was grey", "The color of the harbor was gray"),  # British / American
    ("organise the centre", "organize the center"),
    ("a well-known man", "a well known man"),  # hyphens
    ("I don't know", "I do not know"),  # contractions
    ("we're here", "we are here"),
    ("uh I think so", "I think so"),  # hesitations
    ("Hello, world!", "  hello   WORLD "),  # whitespace
])
def test_equivalent_forms_are_not_errors(reference, hypothesis):
    errors = word_errors(reference, hypothesis)
    assert errors.errors == 0, (normalize(reference), normalize(hypothesis))
    assert errors.words == len(normalize(reference).split())


@pytest.mark.parametrize("reference, hypothesis, expected", [
    ("the cat sat on the mat", "the cat sit on the mat", WordErrors(1, 6)),  # substitution
    ("the cat sat on the mat", "the cat on the mat", WordErrors(1, 6)),  # deletion
    ("the cat sat on the mat", "the cat sat on on the mat", WordErrors(1, 6)),  # insertion
    ("the cat sat", "", WordErrors(3, 3)),  # nothing recognised: every word deleted
    ("twenty five", "35", WordErrors(1, 1)),  # numbers are compared, not erased
    ("OK", "okay", WordErrors(1, 1)),  # Whisper's normaliser leaves these apart; WER follows it
])
def test_errors_are_counted(reference, hypothesis, expected):
    assert word_errors(reference, hypothesis) == expected


def test_corpus_wer_pools_words_rather_than_averaging_clips():
    eight_words = "she sells sea shells by the sea shore"
    short, long = word_errors("hello there", "hello"), word_errors(eight_words, eight_words)
    pooled = short + long
    assert pooled == WordErrors(1, 10)
    assert pooled.rate == pytest.approx(0.1)  # the mean of clip rates would say 0.25
    assert WordErrors().rate == 0.0
