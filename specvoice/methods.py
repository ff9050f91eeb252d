"""The decoding methods users pick with --method, and how each becomes a drafter for the shared engine."""

from __future__ import annotations

from dataclasses import dataclass

from .engine.bridge import BridgedDrafter
from .engine.drafter import DraftPolicy, Drafter, ModelDrafter, NoDrafter
from .engine.prior import PriorRefiner
from .engine.speculative import DecodeTask, greedy_decode
from .engine.stats import DecodeStats
from .errors import SpecvoiceError
from .models.loader import WhisperModel
from .whisper.decoder import WhisperDecoder
from .whisper.rules import WhisperRules
from .whisper.tokenizer import token_translator

SAMPLE_LEN = 224  # new tokens per 30 s window, as openai/whisper
PRIOR_TOKENS_PER_SECOND = 8  # fast read speech is ~4 words (~6 tokens with punctuation) a second

METHODS = {
    "ar": "plain greedy decoding with the target alone (the reference output)",
    "spec": "vanilla speculative decoding: the draft proposes --draft-len tokens, the target verifies",
    "specasr": "SpecASR: adaptive draft length, draft recycling, two-pass sparse token tree",
    "dllm": "dLLM-ASR-style: the draft's whole transcript is refined in parallel rounds by the target",
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
    branch_successor: bool = True

    def policy(self) -> DraftPolicy:
        """The draft policy of spec, or of specasr (which dllm also falls back on)."""
        if self.method == "spec":
            return DraftPolicy.vanilla(self.draft_len)
        return DraftPolicy(max_tokens=self.max_draft, confidence=self.confidence, recycle=self.recycle,
                           tree_positions=self.tree_positions, tree_alternatives=self.tree_alternatives,
                           tree_below=self.tree_below, branch_successor=self.branch_successor,
                           adaptive_cap=True)

    @property
    def needs_draft(self) -> bool:
        return self.method != "ar"


def same_vocabulary(a: WhisperModel, b: WhisperModel) -> bool:
    return a.model.config.vocab_size == b.model.config.vocab_size and \
        a.tokenizer.backend.get_vocab() == b.tokenizer.backend.get_vocab()


def build_drafter(options: MethodOptions, target: WhisperModel, draft: WhisperModel | None,
                  draft_decoder: WhisperDecoder | None, language: str | None, task: str,
                  timestamps: bool, shared: bool, audio_seconds: float = 30.0) -> Drafter:
    """The drafter for one window; `shared` is same_vocabulary(target, draft), decided once per pair
    because comparing two 51k-entry vocabularies costs ~0.1 s."""
    if not options.needs_draft:
        return NoDrafter()
    tokenizer = draft.tokenizer
    if not shared and not tokenizer.multilingual and (language != "en" or task == "translate"):
        what = "translation" if task == "translate" else f"language {language!r}"
        raise SpecvoiceError(f"draft {draft.name!r} is English-only and cannot draft {what}; pass --language en "
                             "or a multilingual draft")
    rules = WhisperRules(tokenizer, draft.suppress_tokens, draft.begin_suppress_tokens, timestamps)
    prompt = tokenizer.prompt(language if tokenizer.multilingual else None, task, timestamps)
    to_target = (lambda tokens: tokens) if shared else token_translator(tokenizer, target.tokenizer)
    model_drafter = ModelDrafter(draft_decoder, rules, tokenizer.eot, options.policy())
    drafter = model_drafter if shared else BridgedDrafter(
        model_drafter, prompt, token_translator(target.tokenizer, tokenizer), to_target)
    if options.method != "dllm":
        return drafter

    def draft_transcript(stats) -> list[int]:
        """The prior: the draft's own greedy transcript, in the target's tokens."""
        prior_stats = DecodeStats()
        # A prior longer than any plausible speech rate is a hallucination loop: stop it early.
        longest = min(SAMPLE_LEN, int(PRIOR_TOKENS_PER_SECOND * audio_seconds) + 8)
        tokens = greedy_decode(draft_decoder, DecodeTask(prompt, rules, tokenizer.eot, longest), stats=prior_stats)
        stats.draft_passes += prior_stats.target_passes
        return to_target(tokens)

    return PriorRefiner(draft_transcript, target.tokenizer.eot, fallback=drafter)
