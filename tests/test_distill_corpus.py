"""What `specvoice distill` speaks: the built-in public-domain corpus, cut into pieces at sentence ends, and none of
it the validation clips' text (../shared/speech measures the draft; it must not have heard those sentences)."""

from __future__ import annotations

import random
import re

import numpy as np

from specvoice.distill.teacher import CORPUS, NOISE_SNRS, SPEEDS, VOICE_SHIFTS, passages, pieces, varied

RUN = 6  # words in a row that a passage may not share with any validation transcript


def _runs(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + RUN]) for i in range(len(words) - RUN + 1)}


def test_corpus_is_varied_plain_text():
    texts = passages()
    sources = sorted(CORPUS.glob("*.txt"))
    assert len(sources) >= 10 and len(texts) >= 300
    assert sum(map(len, texts)) > 100_000
    assert all(text.isascii() for text in texts)
    first = [line.strip() for line in sources[0].read_text().splitlines() if line.strip()]
    last = [line.strip() for line in sources[-1].read_text().splitlines() if line.strip()]
    assert texts[: len(first)] == first and texts[-len(last):] == last  # file by file, in name order


def test_no_validation_sentence_is_in_the_corpus(manifest):
    validation = set().union(*(_runs(row["text"]) for row in manifest))
    shared = [(text[:60], sorted(common)[:1]) for text in passages() if (common := _runs(text) & validation)]
    assert not shared


def test_pieces_end_at_sentence_ends_also_inside_quotes():
    passage = '"Is it far?" she asked. "No!" he cried. Then (quietly.) they went home. The end.'
    cut = pieces(passage, random.Random(0), longest=1)
    assert cut == ['"Is it far?"', "she asked.", '"No!"', "he cried.", "Then (quietly.)", "they went home.",
                   "The end."]
    for seed in range(5):
        assert " ".join(pieces(passage, random.Random(seed))) == passage


def test_turns_go_round_every_speaker_and_noise_level_reproducibly():
    rate = 24_000
    tone = np.sin(np.arange(rate) * 2 * np.pi * 220 / rate).astype(np.float32)  # one second
    combinations = len(SPEEDS) * len(VOICE_SHIFTS) * len(NOISE_SNRS)
    seconds, noise_levels = set(), set()
    for turn in range(combinations):
        audio = varied(tone, rate, turn, seed=7)
        assert np.array_equal(audio, varied(tone, rate, turn, seed=7))
        shift = VOICE_SHIFTS[turn // len(SPEEDS) % len(VOICE_SHIFTS)]
        assert abs(len(audio) - 16_000 / shift) < 2  # read as recorded at rate x shift: longer or shorter
        clean = varied(tone, rate, turn % (len(SPEEDS) * len(VOICE_SHIFTS)), seed=7)
        noise = audio - clean
        snr = NOISE_SNRS[turn // (len(SPEEDS) * len(VOICE_SHIFTS))]
        if snr is None:
            assert not noise.any()
        else:
            assert abs(10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2)) - snr) < 0.5
            assert not np.array_equal(audio, varied(tone, rate, turn, seed=8))
        seconds.add(round(len(audio) / 16_000, 2))
        noise_levels.add(snr)
    assert len(seconds) == len(VOICE_SHIFTS) and noise_levels == set(NOISE_SNRS)
