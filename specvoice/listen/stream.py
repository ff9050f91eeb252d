"""The streaming policy: re-decode the growing buffer, commit what two hypotheses agree on, cut the buffer
at a committed segment end, and let voice activity skip silence and end utterances.

After whisper_streaming's OnlineASRProcessor and VACOnlineASRProcessor; the recognizer behind it is any
object with `recognize(audio, prompt, silence) -> Hypothesis`, `spell(audio, prompt) -> Hypothesis`,
`cut(segment_end)` and `reset()`.

Committed words keep their place, and the text the hypothesis that agreed on them gave them, while the buffer
holds them; when they leave it (a cut, or the buffer emptied) they take the punctuation and capitals of the
buffer decoded as `transcribe` decodes a clip (`spell`), and are final: a decode with timestamps, and one that
has not heard what follows, punctuate otherwise ("Americans ask not", "for you." where offline Whisper writes
"Americans, ask not", "for you, ask").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..audio import SAMPLE_RATE
from .agreement import LocalAgreement
from .hypothesis import Hypothesis, SegmentEnd, Word, respelled

TRIM_AFTER = 15.0  # seconds: past this the buffer is cut at a committed segment end
MAX_BUFFER = 30.0  # Whisper's window: a buffer that would outgrow it is committed and emptied
PROMPT_CHARACTERS = 200  # committed text that left the buffer, given as the prompt (whisper_streaming's)
SPEECH_THRESHOLD = 0.5
END_SILENCE = 0.5  # seconds of silence after speech that end an utterance (once two decodes agree on its words)
RESET_SILENCE = 2.0  # seconds of silence after which the buffer is emptied (the audio before is no context)
PRE_ROLL = 0.5  # seconds of silence kept before speech, so its first word is whole


class Recognizer(Protocol):
    def recognize(self, audio: np.ndarray, prompt: list[int], silence: float) -> Hypothesis: ...

    def spell(self, audio: np.ndarray, prompt: list[int]) -> Hypothesis: ...

    def cut(self, end: SegmentEnd) -> None: ...

    def reset(self) -> None: ...


@dataclass
class Update:
    """One decode of the buffer."""

    buffer_seconds: float
    target_passes: int
    encoder_seconds: float
    decoder_seconds: float


@dataclass
class Committed:
    word: Word  # absolute times
    at: float  # the audio clock when it was committed
    utterance: int  # which utterance it belongs to: the speech between two emptyings of the buffer

    @property
    def delay(self) -> float:
        return self.at - self.word.end


@dataclass
class StreamState:
    committed: list[Committed] = field(default_factory=list)
    tentative: list[Word] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    spellings: list[Update] = field(default_factory=list)  # the decodes that give leaving words their text


class Streamer:
    def __init__(self, recognizer: Recognizer, clock: Callable[[], float],
                 speech: Callable[[np.ndarray], np.ndarray] | None = None, frame_samples: int = 512):
        """`clock`: the audio clock (seconds of audio since the stream began, as wall time or virtual);
        `speech`: per-frame speech probabilities of `frame_samples`-sample frames (None: no VAD)."""
        self.recognizer = recognizer
        self.clock = clock
        self.speech = speech
        self.frame_samples = frame_samples
        self.agreement = LocalAgreement()
        self.state = StreamState()
        self.buffer = np.zeros(0, np.float32)
        self.offset = 0.0  # absolute time of buffer[0]
        self.pending = np.zeros(0, np.float32)  # audio the VAD has not judged yet (less than a frame)
        self.heard_speech = False  # the buffer holds speech
        self.speaking = False  # speech since the last utterance ended
        self.silence = 0.0  # seconds of silence at the end of the buffer
        self.utterance = 0
        self.paused_decodes = 0  # decodes since the last speech
        self.undecoded = False  # audio arrived since the last decode
        self.speech_undecoded = False  # speech arrived since the last decode

    @property
    def final(self) -> int:
        """How many committed words have left the buffer: their text is final."""
        return self.agreement.left

    @property
    def buffer_seconds(self) -> float:
        return len(self.buffer) / SAMPLE_RATE

    def feed(self, chunk: np.ndarray, last: bool = False) -> list[Word]:
        """New audio; returns the words this commits. `last`: no audio follows, so the samples short of a whole
        VAD frame are judged (as a frame padded with silence) and decoded too: the last decode hears all of the
        input, as an offline transcription does (Whisper can change a word for 30 ms of audio more or less)."""
        if self.speech is None:
            self._append(chunk)
            return self._update()
        audio = np.concatenate([self.pending, chunk])
        whole = len(audio) if last else len(audio) - len(audio) % self.frame_samples
        self.pending = audio[whole:]
        self._append(audio[:whole])
        if whole:
            self._listen(np.pad(audio[:whole], (0, -whole % self.frame_samples)))
        if not self.heard_speech:  # silence before speech: keep only a little of it
            self._drop(max(0, len(self.buffer) - int(PRE_ROLL * SAMPLE_RATE)))
            return []
        if self.silence >= RESET_SILENCE:
            # A chunk can hold the end of speech and the whole silence after it (a slow update takes in seconds
            # of audio at once): its words are decoded before the buffer is emptied.
            words = self._update(paused=True) if self.speech_undecoded else []
            return words + self._flush()
        if self.silence >= END_SILENCE:
            return self._pause() if self.speaking else []  # silence: nothing new to decode
        return self._update()

    def finish(self, decode: bool = True) -> list[Word]:
        """End of input (decode what is new, then commit everything) or an interrupt (commit the tentative words
        as they are; only the decode that spells the buffer's words runs)."""
        # The end can come after the last audio rather than with it: its samples short of a VAD frame are fed then.
        words = self.feed(self.pending[:0], last=True) if decode and len(self.pending) else []
        if decode and self.undecoded and (self.speaking or self.speech is None):
            words += self._update()
        return words + self._flush()

    def _pause(self) -> list[Word]:
        """The speaker paused: decode once more. The words spoken are all committed (the audio stays as the
        context of what follows) when that decode leaves nothing tentative, or at the next decode in the pause.

        The last word before a pause was usually heard cut off by the decode before, so it waits for one more.
        Committing it at once would freeze a guess: JFK's "ask not", decoded before what follows the pause, is
        "asked not" (bench --task stream); once "what your country" is heard it is "ask".
        """
        words = self._update(paused=True)
        self.paused_decodes += 1
        if self.agreement.tentative and self.paused_decodes < 2:
            return words
        flushed = self.agreement.flush()
        self._record(flushed)
        self.speaking = False
        self.paused_decodes = 0
        return words + flushed

    def _append(self, audio: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, audio])
        self.undecoded = self.undecoded or len(audio) > 0

    def _listen(self, audio: np.ndarray) -> None:
        speaking = self.speech(audio) >= SPEECH_THRESHOLD
        frame = self.frame_samples / SAMPLE_RATE
        if speaking.any():
            self.heard_speech = self.speaking = self.speech_undecoded = True
            self.paused_decodes = 0
            self.silence = frame * int(np.argmax(speaking[::-1]))  # frames after the last speech frame
        else:
            self.silence += frame * len(speaking)

    def _update(self, paused: bool = False) -> list[Word]:
        if not len(self.buffer):
            return []
        hypothesis = self.recognizer.recognize(self.buffer, self._prompt(), min(self.silence, self.buffer_seconds))
        self.undecoded = self.speech_undecoded = False
        self.state.updates.append(Update(self.buffer_seconds, hypothesis.target_passes, hypothesis.encoder_seconds,
                                         hypothesis.decoder_seconds))
        words = [w.shifted(self.offset) for w in hypothesis.words]
        committed, unseen = self.agreement.insert(words, self.offset + self.buffer_seconds, paused)
        self._record(committed)
        return committed + self._trim(hypothesis, unseen + len(committed))

    def _prompt(self) -> list[int]:
        prompt: list[int] = []
        characters = 0
        for word in reversed(self.agreement.committed[: self.agreement.left]):
            characters += len(word.text)
            if characters > PROMPT_CHARACTERS:
                break
            prompt[:0] = word.tokens
        return prompt

    def _trim(self, hypothesis: Hypothesis, committed_words: int) -> list[Word]:
        """Past TRIM_AFTER, cut the buffer at the last segment end whose words are all committed (the
        hypothesis' first `committed_words`)."""
        if self.buffer_seconds > TRIM_AFTER:
            cuts = [end for end in hypothesis.segment_ends if end.time > 0 and end.words <= committed_words]
            if cuts:
                end = cuts[-1]
                self._respell()
                self.agreement.leave(end.words, committed_words)
                self.recognizer.cut(end)
                self._drop(int(round(end.time * SAMPLE_RATE)))
        if self.buffer_seconds > MAX_BUFFER - 2.0:  # the next decode could overflow the window: commit it all
            return self._flush()
        return []

    def _drop(self, samples: int) -> None:
        self.buffer = self.buffer[samples:]
        self.offset += samples / SAMPLE_RATE

    def _flush(self) -> list[Word]:
        words = self.agreement.flush()
        self._record(words)
        self._respell()
        self.agreement.leave_all()
        self.recognizer.reset()
        self._drop(len(self.buffer))
        self.heard_speech = self.speaking = False
        self.silence = 0.0
        self.undecoded = self.speech_undecoded = False
        self.utterance += 1
        return words

    def _respell(self) -> None:
        """The committed words in the buffer take the text of the buffer decoded as `transcribe` would."""
        left = self.agreement.left
        if left == len(self.agreement.committed):
            return
        heard = self.recognizer.spell(self.buffer, self._prompt())
        self.state.spellings.append(Update(self.buffer_seconds, heard.target_passes, heard.encoder_seconds,
                                           heard.decoder_seconds))
        words = respelled(self.agreement.committed[left:], heard.words)
        self.agreement.committed[left:] = words
        for committed, word in zip(self.state.committed[left:], words):
            committed.word = word

    def _record(self, words: list[Word]) -> None:
        now = self.clock()
        self.state.committed += [Committed(w, now, self.utterance) for w in words]
        self.state.tentative = self.agreement.tentative
