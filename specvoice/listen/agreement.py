"""LocalAgreement-2 (whisper_streaming): a word is committed once two consecutive hypotheses of the growing
buffer agree on it and on every word before it; what only the latest hypothesis says stays tentative.

One rule more than whisper_streaming's, for a decode made in a pause: a word that ran to the end of the
previous buffer was heard cut off, and the pause's decode alone cannot confirm it. Whisper guesses such a word
from its first sounds ("asked" for the first half of JFK's "ask not"); a decode that hears speech after it
revises the guess, but one that hears only the pause after it tends to repeat it."""

from __future__ import annotations

from difflib import SequenceMatcher

from .hypothesis import Word

MAX_SKEW = 3  # words: how far a re-decoded committed word may move in the hypothesis and still be recognised
CUT_OFF = 0.1  # seconds: a word ending this close to its buffer's end was heard cut off


class LocalAgreement:
    def __init__(self):
        self.committed: list[Word] = []  # absolute times
        self.left = 0  # committed words that have left the buffer: the prompt of later decodes
        self.tentative: list[Word] = []  # the latest hypothesis past the committed words
        self.heard_to = float("inf")  # the end of the buffer the tentative words were decoded from (absolute)

    def insert(self, words: list[Word], heard_to: float = float("inf"), paused: bool = False
               ) -> tuple[list[Word], int]:
        """Take a hypothesis of the whole buffer (absolute times) that ends at `heard_to` (`paused`: in a pause
        after speech); returns the newly committed words and the index in `words` where the not yet committed
        ones begin."""
        unseen = self._unseen_from(words)
        new = words[unseen:]
        confirmable = [w for w in self.tentative if not paused or w.end < self.heard_to - CUT_OFF]
        agreed = 0
        while agreed < min(len(new), len(confirmable)) and new[agreed].key == confirmable[agreed].key:
            agreed += 1
        self.committed += new[:agreed]
        self.tentative, self.heard_to = new[agreed:], heard_to
        return new[:agreed], unseen

    def flush(self) -> list[Word]:
        """Commit the tentative words (end of an utterance, of the input, or a buffer that must be emptied)."""
        words, self.tentative = self.tentative, []
        self.committed += words
        return words

    def leave(self, hypothesis_words: int, committed_words: int) -> None:
        """The buffer was cut after the first `hypothesis_words` words of the latest hypothesis, whose first
        `committed_words` words are the last committed ones."""
        cut = len(self.committed) - committed_words + hypothesis_words
        self.left = max(self.left, min(len(self.committed), cut))

    def leave_all(self) -> None:
        self.left = len(self.committed)

    def _unseen_from(self, words: list[Word]) -> int:
        """Where the hypothesis passes the committed words still in the buffer (they are decoded again, as
        context, and may come back slightly changed)."""
        in_buffer = [w.key for w in self.committed[self.left:]]
        if not in_buffer:
            return 0
        keys = [w.key for w in words]
        if keys[: len(in_buffer)] == in_buffer:
            return len(in_buffer)
        blocks = [b for b in SequenceMatcher(None, in_buffer, keys, autojunk=False).get_matching_blocks()
                  if b.size and abs(b.a - b.b) <= MAX_SKEW]
        if blocks:
            last = blocks[-1]
            return min(len(words), last.b + last.size + len(in_buffer) - last.a - last.size)
        # Nothing recognisable: trust the times, past the end of the last committed word.
        end = self.committed[-1].end
        return next((i for i, w in enumerate(words) if w.end > end), len(words))
