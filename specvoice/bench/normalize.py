"""Word error rate as Whisper results are usually reported: both sides through Whisper's English
normaliser first, so case, punctuation, spelled-out numbers and British spellings are not counted as errors."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    return _normalizer()(text)


@dataclass(frozen=True)
class WordErrors:
    """Edit operations against a reference; adding them pools clips into a corpus WER."""

    errors: int = 0  # substitutions + deletions + insertions
    words: int = 0  # reference words

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else 0.0

    def __add__(self, other: "WordErrors") -> "WordErrors":
        return WordErrors(self.errors + other.errors, self.words + other.words)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    import jiwer

    reference_words, hypothesis_words = normalize(reference).split(), normalize(hypothesis).split()
    if not reference_words:
        return WordErrors(len(hypothesis_words), 0)
    counts = jiwer.process_words(" ".join(reference_words), " ".join(hypothesis_words))
    return WordErrors(counts.substitutions + counts.deletions + counts.insertions, len(reference_words))
