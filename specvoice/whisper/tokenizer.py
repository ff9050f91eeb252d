"""Whisper's tokenizer: text BPE from `tokenizer.json` plus the special tokens that steer decoding."""

from __future__ import annotations

import string
from functools import cached_property
from pathlib import Path

from tokenizers import Tokenizer

from ..errors import SpecvoiceError

# openai/whisper's language order: the token <|xx|> of language i has id sot + 1 + i.
LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg "
    "lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so "
    "af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue"
).split()

# Written without spaces between words: word timestamps split these wherever whole characters decode.
UNSPACED_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}


def language_code(language: str) -> str:
    """The code of a language given by code (de) or by name, any case (German, german; as openai-whisper)."""
    if language in LANGUAGES:
        return language
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE  # names and aliases

    code = TO_LANGUAGE_CODE.get(language.lower().strip(), language.lower().strip())
    if code not in LANGUAGES:
        raise SpecvoiceError(f"unknown language {language!r}; use a code or a name such as en, de, French")
    return code


class WhisperTokenizer:
    def __init__(self, backend: Tokenizer, vocab_size: int):
        self.backend = backend
        self.vocab_size = vocab_size
        self.eot = self._special("<|endoftext|>")
        self.sot = self._special("<|startoftranscript|>")
        self.no_timestamps = self._special("<|notimestamps|>")
        self.timestamp_begin = self.no_timestamps + 1
        self.multilingual = vocab_size >= 51865

    @classmethod
    def from_folder(cls, folder: Path, vocab_size: int) -> "WhisperTokenizer":
        path = folder / "tokenizer.json"
        if path.exists():
            return cls(Tokenizer.from_file(str(path)), vocab_size)
        try:
            from transformers import AutoTokenizer

            return cls(AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer, vocab_size)
        except Exception as exc:  # transformers raises many types for a folder it cannot read
            raise SpecvoiceError(f"{folder}: no usable Whisper tokenizer ({exc.__class__.__name__})") from None

    def _special(self, text: str) -> int:
        token = self.backend.token_to_id(text)
        if token is None:
            raise SpecvoiceError(f"tokenizer has no {text} token: not a Whisper tokenizer")
        return token

    @cached_property
    def transcribe(self) -> int:
        return self._special("<|transcribe|>")

    @cached_property
    def translate(self) -> int:
        return self._special("<|translate|>")

    @cached_property
    def sot_prev(self) -> int:
        return self._special("<|startofprev|>")

    @cached_property
    def no_speech(self) -> int | None:
        """The token whose probability right after start-of-transcript says the window holds no speech."""
        return next((self.backend.token_to_id(name) for name in ("<|nospeech|>", "<|nocaptions|>")
                     if self.backend.token_to_id(name) is not None), None)

    @cached_property
    def blank(self) -> int:
        return self.backend.encode(" ", add_special_tokens=False).ids[0]

    def language_token(self, language: str) -> int:
        return self.sot + 1 + LANGUAGES.index(language)

    def require(self, language: str | None, task: str) -> None:
        """Refuse what this vocabulary cannot express: another language or translation on an English-only model."""
        if not self.multilingual and (language not in (None, "en") or task == "translate"):
            raise SpecvoiceError("this model is English-only: --language other than en and --task translate need a "
                                 "multilingual model")

    def prompt(self, language: str | None, task: str, timestamps: bool) -> list[int]:
        """The start-of-transcript sequence the decoder is conditioned on."""
        self.require(language, task)
        tokens = [self.sot]
        if self.multilingual:
            tokens += [self.language_token(language or "en"), self.translate if task == "translate" else self.transcribe]
        if not timestamps:
            tokens.append(self.no_timestamps)
        return tokens

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, tokens: list[int]) -> str:
        """Text of the ordinary tokens; special and timestamp tokens are dropped."""
        return self.backend.decode([t for t in tokens if t < self.eot], skip_special_tokens=False)

    def split_to_words(self, tokens: list[int], language: str | None) -> tuple[list[str], list[list[int]]]:
        """Tokens grouped into words, as openai-whisper groups them for word timestamps: a word starts at a
        space, a punctuation mark or a special token; unspaced languages split at every whole character."""
        pieces, piece_tokens = self._split_on_characters(tokens)
        if language in UNSPACED_LANGUAGES:
            return pieces, piece_tokens
        words: list[str] = []
        word_tokens: list[list[int]] = []
        for piece, group in zip(pieces, piece_tokens):
            if not words or group[0] >= self.eot or piece.startswith(" ") or piece.strip() in string.punctuation:
                words.append(piece)
                word_tokens.append(group)
            else:
                words[-1] += piece
                word_tokens[-1] += group
        return words, word_tokens

    def _split_on_characters(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Tokens grouped so each group decodes to whole characters (a character's bytes can span tokens);
        a replacement character the whole text has too is taken as it is."""
        replacement = "\ufffd"
        whole = self.decode(tokens)
        pieces: list[str] = []
        groups: list[list[int]] = []
        current: list[int] = []
        offset = 0
        for token in tokens:
            current.append(token)
            text = self.decode(current)
            broken = text.find(replacement)
            if broken < 0 or (offset + broken < len(whole) and whole[offset + broken] == replacement):
                pieces.append(text)
                groups.append(current)
                current = []
                offset += len(text)
        return pieces, groups


def token_translator(source: WhisperTokenizer, destination: WhisperTokenizer):
    """Map token sequences between two Whisper vocabularies: text through text, timestamps by index."""
    shift = destination.timestamp_begin - source.timestamp_begin

    def translate(tokens: list[int]) -> list[int]:
        out: list[int] = []
        text: list[int] = []
        for token in tokens + [None]:
            if token is not None and token < source.eot:
                text.append(token)
                continue
            if text:
                out += destination.encode(source.backend.decode(text, skip_special_tokens=False))
                text = []
            if token is None:
                break
            if token == source.eot:
                out.append(destination.eot)
            elif token >= source.timestamp_begin:
                out.append(token + shift)
            # other special tokens never appear in a decoded sequence; nothing to map them to
        return out

    return translate
