"""The decoding methods users pick with --method, and how each becomes a drafter for the shared engine."""

from __future__ import annotations

from dataclasses import dataclass

from .engine.bridge import BridgedDrafter
from .engine.drafter import DraftPolicy, Drafter, ModelDrafter, NoDrafter
from .errors import SpecvoiceError
from .models.loader import WhisperModel
from .whisper.decoder import WhisperDecoder
from .whisper.rules import WhisperRules
from .whisper.tokenizer import token_translator

METHODS = {
    "ar": "plain greedy decoding with the target alone (the reference output)",
    "spec": "vanilla speculative decoding: the draft proposes --draft-len tokens, the target verifies",
    "specasr": "SpecASR: adaptive draft length, draft recycling, two-pass sparse token tree",
}


@dataclass(frozen=True)
class MethodOptions:
    method: str = "ar"
    draft_len: int = 5  # spec: tokens per draft
    max_draft: int = 24  # specasr: longest draft
    confidence: float = 0.4  # specasr: the draft stops after a token below this probability
    recycle: bool = True
    tree_positions: int = 2  # specasr: low-confidence positions that get alternatives (0: no tree)
    tree_alternatives: int = 1
    tree_below: float = 0.6

    def policy(self) -> DraftPolicy:
        if self.method == "spec":
            return DraftPolicy.vanilla(self.draft_len)
        return DraftPolicy(max_tokens=self.max_draft, confidence=self.confidence, recycle=self.recycle,
                           tree_positions=self.tree_positions, tree_alternatives=self.tree_alternatives,
                           tree_below=self.tree_below)

    @property
    def needs_draft(self) -> bool:
        return self.method != "ar"


def same_vocabulary(a: WhisperModel, b: WhisperModel) -> bool:
    return a.model.config.vocab_size == b.model.config.vocab_size and \
        a.tokenizer.backend.get_vocab() == b.tokenizer.backend.get_vocab()


def build_drafter(options: MethodOptions, target: WhisperModel, draft: WhisperModel | None,
                  draft_decoder: WhisperDecoder | None, language: str | None, task: str,
                  timestamps: bool) -> Drafter:
    if not options.needs_draft:
        return NoDrafter()
    tokenizer = draft.tokenizer
    rules = WhisperRules(tokenizer, draft.suppress_tokens, draft.begin_suppress_tokens, timestamps)
    inner = ModelDrafter(draft_decoder, rules, tokenizer.eot, options.policy())
    if same_vocabulary(target, draft):
        return inner
    if not tokenizer.multilingual and (language != "en" or task == "translate"):
        what = "translation" if task == "translate" else f"language {language!r}"
        raise SpecvoiceError(f"draft {draft.name!r} is English-only and cannot draft {what}; pass --language en "
                             "or a multilingual draft")
    draft_language = language if tokenizer.multilingual else None
    return BridgedDrafter(inner, tokenizer.prompt(draft_language, task, timestamps),
                          token_translator(target.tokenizer, tokenizer), token_translator(tokenizer, target.tokenizer))
