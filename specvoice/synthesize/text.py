"""Text into the pieces a TTS model speaks at once: sentences, and long sentences cut at clauses or words
(Bark speaks about 13 seconds per prompt; its users split long text and join the audio with short pauses)."""

from __future__ import annotations

import re

# Full-width marks (Chinese, Japanese) end a sentence with no space after them.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def _fit(words: list[str], max_words: int) -> list[str]:
    return [" ".join(words[i: i + max_words]) for i in range(0, len(words), max_words)]


def split_sentences(text: str, max_words: int = 35) -> list[str]:
    """Non-empty pieces of at most `max_words` words, in order."""
    pieces = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if len(sentence.split()) <= max_words:
            pieces.append(sentence.strip())
            continue
        clause_words: list[str] = []
        for clause in _CLAUSE_END.split(sentence):
            words = clause.split()
            if clause_words and len(clause_words) + len(words) > max_words:
                pieces += _fit(clause_words, max_words)
                clause_words = []
            clause_words += words
        pieces += _fit(clause_words, max_words)
    return [piece for piece in pieces if piece]
