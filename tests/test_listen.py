"""The listen pipeline's mechanics without a microphone or real weights: a scripted recognizer that hears the
words of a script up to the end of the buffer, audio that carries its own position, and the virtual clock
of an on-demand replay (sounddevice's callback signature), so every commit and its delay is exact."""

from __future__ import annotations

import numpy as np
import pytest

from specvoice.audio import SAMPLE_RATE
from specvoice.errors import SpecvoiceError
from specvoice.listen import FileReplay, Hypothesis, SegmentEnd, Streamer, Word, run
from specvoice.listen.agreement import LocalAgreement
from specvoice.listen.hypothesis import timed_words
from specvoice.listen.session import LineBreaker, measure, segments
from specvoice.listen.stream import MAX_BUFFER, TRIM_AFTER
from specvoice.listen import source


def position_audio(seconds: float, speech: list[tuple[float, float]]) -> np.ndarray:
    """Sample i holds i + 1 (negated in silence): a recognizer and a VAD can read time and speech from it."""
    index = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32) + 1
    speaking = np.zeros(len(index), bool)
    for start, end in speech:
        speaking[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)] = True
    return np.where(speaking, index, -index)


def speech_frames(audio: np.ndarray) -> np.ndarray:
    return (audio.reshape(-1, 512) > 0).mean(axis=1)


class ScriptedRecognizer:
    """Hears every script word that ends inside the buffer, and mishears the one being spoken at its end.
    `guesses`: script index -> (what that word is heard as, the index of the word that must end in the buffer
    before it is heard right), as Whisper hears JFK's "ask not" as "asked not" until "what your" follows."""

    def __init__(self, script: list[tuple[str, float, float]], guesses: dict[int, tuple[str, int]] | None = None,
                 spelling: dict[int, str] | None = None):
        """`spelling`: script index -> the word as a decode without timestamps of the whole buffer writes it."""
        self.script = script
        self.guesses = guesses or {}
        self.spelling = spelling or {}
        self.spelled: list[tuple[float, float]] = []  # buffers spelled: start, end (seconds)
        self.calls: list[tuple[float, float, list[int]]] = []  # buffer start, end (seconds), prompt
        self.cuts: list[float] = []

    def recognize(self, audio: np.ndarray, prompt: list[int], silence: float) -> Hypothesis:
        start = (abs(float(audio[0])) - 1) / SAMPLE_RATE
        end = start + len(audio) / SAMPLE_RATE
        self.calls.append((start, end, prompt))
        words, ends = [], []
        for i, (text, word_start, word_end) in enumerate(self.script):
            if word_start < start - 1e-6:
                continue
            if i in self.guesses and word_start < end and self.script[self.guesses[i][1]][2] > end + 1e-6:
                words.append(Word(" " + self.guesses[i][0], word_start - start, min(word_end, end) - start, (2000 + i,)))
            elif word_end <= end + 1e-6:
                words.append(Word(" " + text, word_start - start, word_end - start, (i,)))
                if text.endswith("."):
                    ends.append(SegmentEnd(word_end - start, len(words), len(words)))
            elif word_start < end:
                words.append(Word(" " + text[:2] + "-", word_start - start, end - start, (1000 + i,)))
        return Hypothesis(words, ends, [w.tokens[0] for w in words], target_passes=len(words))

    def spell(self, audio: np.ndarray, prompt: list[int]) -> Hypothesis:
        start = (abs(float(audio[0])) - 1) / SAMPLE_RATE
        end = start + len(audio) / SAMPLE_RATE
        self.spelled.append((start, end))
        words = [Word(" " + self.spelling.get(i, text), 0.0, 0.0, (3000 + i,) if i in self.spelling else (i,))
                 for i, (text, word_start, word_end) in enumerate(self.script)
                 if word_start >= start - 1e-6 and word_end <= end + 1e-6]
        return Hypothesis(words, [], [w.tokens[0] for w in words])

    def cut(self, end: SegmentEnd) -> None:
        self.cuts.append(end.time)

    def reset(self) -> None:
        pass


def script_of(text: str, start: float = 0.0, word: float = 0.4) -> list[tuple[str, float, float]]:
    return [(w, round(start + i * word, 3), round(start + (i + 1) * word, 3)) for i, w in enumerate(text.split())]


def listen(script, audio, step=1.0, vad=False):
    return listen_with(ScriptedRecognizer(script), audio, step, vad)


def listen_with(recognizer, audio, step=1.0, vad=False):
    replay = FileReplay(audio, speed=0)
    streamer = Streamer(recognizer, replay.clock, speech_frames if vad else None)
    with replay.running() as queue:
        run(streamer, queue, step, Quiet(), warnings.append)
    return streamer, recognizer


class Quiet:
    def __init__(self):
        self.lines = []

    def show(self, finished, pending, tentative):
        self.lines += finished


warnings: list[str] = []


def test_a_word_is_committed_when_two_updates_agree_and_its_delay_is_exact():
    script = script_of("one two three four five six seven", start=0.2, word=0.5)  # ends at 3.7 s
    streamer, recognizer = listen(script, position_audio(4.5, [(0, 4.5)]))
    committed = streamer.state.committed
    assert [c.word.text.strip() for c in committed] == [w for w, _, _ in script]
    # update k sees [0, k] s; "one" (0.2-0.7) first heard at 1 s, agreed at 2 s: 1.3 s after it ended
    first = {c.word.text.strip(): (c.at, round(c.delay, 3)) for c in committed}
    assert first["one"] == (2.0, 1.3)
    assert first["two"] == (3.0, 1.8)  # 0.7-1.2: misheard at 1 s while being spoken, heard at 2 s, agreed at 3 s
    assert first["three"] == (3.0, 1.3)  # 1.2-1.7: heard whole at 2 s, agreed at 3 s
    assert first["seven"][0] == 4.5  # heard whole only at the end of the input: committed by finish
    assert [end for _, end, _ in recognizer.calls] == [1.0, 2.0, 3.0, 4.0, 4.5]
    m = measure(streamer, 4.5)
    assert m.words == 7 and m.updates == 5 and m.passes_per_update == pytest.approx(np.mean([2, 4, 6, 7, 7]))


def test_the_buffer_is_cut_at_committed_segment_ends_and_they_become_the_prompt():
    sentences = " ".join(f"word{i}{'.' if i % 6 == 5 else ''}" for i in range(90))  # 6-word sentences, 36 s
    script = script_of(sentences, start=0.1, word=0.4)
    streamer, recognizer = listen(script, position_audio(37, [(0, 37)]))
    assert [c.word.text.strip() for c in streamer.state.committed] == [w for w, _, _ in script]
    assert all(end - start <= MAX_BUFFER for start, end, _ in recognizer.calls)
    assert max(end - start for start, end, _ in recognizer.calls) <= TRIM_AFTER + 1.0 + 1e-6
    assert recognizer.cuts, "a 36 s stream was never trimmed"
    # after a cut, the words before it are the prompt, the latest last
    start, _, prompt = recognizer.calls[-1]
    before = [i for i, (_, _, end) in enumerate(script) if end <= start + 1e-6]
    assert prompt and prompt == before[-len(prompt):]
    assert [s.text.strip() for s in segments(streamer.state.committed)][0] == "word0 word1 word2 word3 word4 word5."
    # the words a cut drops were spelled with the whole buffer they left, which had grown past TRIM_AFTER
    assert recognizer.spelled and recognizer.spelled[0][1] - recognizer.spelled[0][0] > TRIM_AFTER


def test_words_leaving_the_buffer_take_the_offline_decodes_punctuation():
    # JFK as the timestamped decodes punctuate it ("Americans ask", "for you." at the pause), and the decode of
    # the whole clip without timestamps, as `transcribe` does it ("Americans, ask", "for you, ask")
    first = script_of("And so my fellow Americans ask not what your country can do for you.", start=0.3)
    second = script_of("ask what you can do for your country.", start=6.2)  # after a 1.1 s pause
    recognizer = ScriptedRecognizer(first + second, spelling={4: "Americans,", 13: "you,"})
    streamer, _ = listen_with(recognizer, position_audio(10.0, [(0.3, 5.1), (6.2, 9.4)]), vad=True)
    offline = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    assert LineBreaker().lines(streamer.state.committed, streamer.utterance, final=True) == [offline]
    assert [s.text.strip() for s in segments(streamer.state.committed)] == [offline]
    assert streamer.state.committed[13].word.tokens == (3013,)  # the spelled tokens: the prompt of what follows
    assert recognizer.spelled == [(0.0, 10.0)]  # once, when the words left the buffer (the end of the input)


def test_silence_is_skipped_and_a_pause_ends_the_utterance():
    first = script_of("hello there", start=3.0)  # 3.0-3.8
    second = script_of("how are you", start=6.0)  # 6.0-7.2
    audio = position_audio(9.0, [(3.0, 3.8), (6.0, 7.2)])
    streamer, recognizer = listen(first + second, audio, vad=True)
    assert [c.word.text.strip() for c in streamer.state.committed] == ["hello", "there", "how", "are", "you"]
    assert all(end > 3.0 for _, end, _ in recognizer.calls), "decoded before anyone spoke"
    assert min(start for start, _, _ in recognizer.calls) >= 2.0  # leading silence dropped but for the pre-roll
    hello = streamer.state.committed[0]
    assert hello.at == 5.0 and hello.utterance == 0  # the pause after 3.8 s ended it at the 5 s update
    assert streamer.state.committed[2].utterance > hello.utterance
    assert len(recognizer.calls) <= 6  # no decodes during the long pause
    lines = LineBreaker().lines(streamer.state.committed, streamer.utterance, final=True)
    assert lines == ["hello there", "how are you"]


def test_a_word_heard_cut_off_before_a_pause_waits_for_the_speech_after_it():
    # "ask" is being spoken when the 4 s update decodes and is heard as "asked", also by the decode at the pause
    # (5 s); only hearing "what" (5.5-5.9) corrects it. Neither the cut-off guess nor the pause may commit it.
    script = script_of("and so my fellow", start=0.2, word=0.8) + [("ask", 3.4, 4.05), ("not", 4.05, 4.3)] + \
        script_of("what your country.", start=5.5, word=0.4)
    recognizer = ScriptedRecognizer(script, guesses={4: ("asked", 6)})
    streamer, _ = listen_with(recognizer, position_audio(8.0, [(0.2, 4.3), (5.5, 6.7)]), vad=True)
    committed = streamer.state.committed
    assert [c.word.text.strip() for c in committed] == [w for w, _, _ in script]
    ask = next(c for c in committed if c.word.text == " ask")
    assert ask.at == 7.0 and ask.utterance == 0  # heard right at 6 s, agreed at 7 s: the pause ended no utterance
    fellow = next(c for c in committed if c.word.text == " fellow")
    assert fellow.at == 5.0  # words heard whole before the pause are committed at it, as before


def test_a_pause_commits_at_once_what_was_heard_whole_before_it():
    script = script_of("one two three", start=0.2, word=0.5)  # ends at 1.7 s, heard whole by the 2 s update
    streamer, recognizer = listen(script, position_audio(4.0, [(0.2, 1.7)]), vad=True)
    assert [(c.word.text.strip(), c.at, c.utterance) for c in streamer.state.committed] == \
        [("one", 2.0, 0), ("two", 3.0, 0), ("three", 3.0, 0)]  # "one" agreed at 2 s; the pause at 3 s ends it all
    assert len(recognizer.calls) == 3  # 1 s, 2 s, the pause: none after it


def test_speech_that_arrives_with_the_silence_that_ends_it_is_decoded_before_the_buffer_empties():
    # A slow update takes in 4 s at once: the words and 2.3 s of silence after them (past RESET_SILENCE)
    script = script_of("one two three", start=0.2, word=0.5)  # ends at 1.7 s
    streamer, recognizer = listen(script, position_audio(6.0, [(0.2, 1.7)]), step=4.0, vad=True)
    assert [(c.word.text.strip(), c.at) for c in streamer.state.committed] == [("one", 4.0), ("two", 4.0), ("three", 4.0)]
    assert [end for _, end, _ in recognizer.calls] == [4.0]


def test_the_last_decode_hears_the_samples_short_of_a_vad_frame():
    # 2.04 s is 63 VAD frames (2.016 s) and 384 samples; "ten" ends in those samples
    script = [("eight", 0.8, 1.2), ("nine", 1.2, 1.6), ("ten", 1.6, 2.03)]
    audio = position_audio(2.04, [(0, 2.04)])
    streamer, recognizer = listen(script, audio, vad=True)
    # decodes at the last whole frame before each step, and the last one with the end, not in one of its own
    assert [end for _, end, _ in recognizer.calls] == pytest.approx([0.992, 1.984, 2.04])
    assert [c.word.text.strip() for c in streamer.state.committed] == ["eight", "nine", "ten"]
    # the end of input may also come after the last audio, not with it
    recognizer = ScriptedRecognizer(script)
    streamer = Streamer(recognizer, lambda: 2.04, speech_frames)
    streamer.feed(audio)
    streamer.finish()
    assert [end for _, end, _ in recognizer.calls] == pytest.approx([2.016, 2.04])
    assert [c.word.text.strip() for c in streamer.state.committed] == ["eight", "nine", "ten"]


def test_an_interrupt_commits_the_tentative_words_without_another_decode():
    script = script_of("alpha beta gamma delta", start=0.0, word=0.5)
    replay = FileReplay(position_audio(10, [(0, 10)]), speed=0)
    recognizer = ScriptedRecognizer(script)
    streamer = Streamer(recognizer, replay.clock)
    with replay.running() as queue:
        take = queue.take

        def interrupted(samples):
            if queue.seconds >= 2:
                raise KeyboardInterrupt
            return take(samples)

        queue.take = interrupted
        run(streamer, queue, 1.0, Quiet(), warnings.append)
    assert len(recognizer.calls) == 2
    assert [c.word.text.strip() for c in streamer.state.committed] == ["alpha", "beta", "gamma", "delta"]


def test_the_callback_only_queues_and_an_overflow_is_a_warning():
    class Flags:
        input_overflow = True

    queue = source.AudioQueue()
    queue.callback(np.ones((1600, 1), np.float32), 1600, None, Flags)
    queue.callback(np.ones((1600, 1), np.float32), 1600, None, None)
    queue.end()
    said: list[str] = []
    streamer = Streamer(ScriptedRecognizer([]), lambda: queue.seconds)
    run(streamer, queue, 0.1, Quiet(), said.append)
    assert queue.overflows == 1 and len(said) == 1 and "overflow" in said[0]


class FakeTime:
    """time.monotonic and time.sleep for the replay: the clock moves only when the replay sleeps."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_replay_at_a_pace_takes_real_time(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(source, "time", clock)
    replay = FileReplay(position_audio(1.0, [(0, 1)]), speed=4)
    sent_at = []
    send = replay._send
    replay._send = lambda count: (sent_at.append(clock.now), send(count))
    began = clock.now
    with replay.running() as queue:
        audio, ended = queue.take(SAMPLE_RATE)
    # every 0.1 s block went out once a quarter of its audio's length had passed since the start, not before
    assert sent_at == pytest.approx([began + block * 0.1 / 4 for block in range(1, 11)])
    assert replay.clock() == pytest.approx(1.0)
    assert len(audio) == SAMPLE_RATE


def test_local_agreement_recognises_committed_words_decoded_again_with_other_punctuation():
    agreement = LocalAgreement()
    words = [Word(f" {w}", i, i + 1, (i,)) for i, w in enumerate("so my fellow americans ask".split())]
    agreement.insert(words[:3])
    committed, _ = agreement.insert(words[:4])
    assert [w.text for w in committed] == [" so", " my", " fellow"]
    changed = [Word(" So,", 0, 1, (9,))] + words[1:3] + [Word(" Americans,", 3, 4, (8,))] + words[4:]
    committed, unseen = agreement.insert(changed)
    assert unseen == 3 and [w.text for w in committed] == [" Americans,"]
    assert [w.text for w in agreement.tentative] == [" ask"]


def test_a_decode_in_a_pause_cannot_confirm_a_word_heard_cut_off():
    def agreed_after(paused):
        agreement = LocalAgreement()
        heard = [Word(" ask", 0.0, 0.5, (1,)), Word(" asked", 0.5, 1.0, (2,))]
        agreement.insert(heard, heard_to=1.0)  # "asked" runs to the buffer's end: heard cut off
        committed, _ = agreement.insert(heard + [Word(" not", 1.1, 1.4, (3,))], heard_to=2.0, paused=paused)
        return [w.text for w in committed], agreement

    assert agreed_after(paused=False)[0] == [" ask", " asked"]  # speech goes on: LocalAgreement-2 as it is
    committed, agreement = agreed_after(paused=True)
    assert committed == [" ask"] and [w.text for w in agreement.tentative] == [" asked", " not"]
    committed, _ = agreement.insert([Word(" asked", 0.5, 1.0, (2,)), Word(" not", 1.1, 1.4, (3,))], heard_to=3.0,
                                    paused=True)
    assert [w.text for w in committed] == [" asked", " not"]  # heard whole twice


class LetterTokenizer:
    """Token i < 50 is a letter (even: with a leading space); 50 is eot; 51 on are timestamps."""

    eot, timestamp_begin = 50, 51

    def decode(self, tokens):
        return "".join((" " if t % 2 == 0 else "") + chr(ord("a") + t % 26) for t in tokens if t < self.eot)


def test_words_are_timed_within_their_segment():
    tokenizer = LetterTokenizer()
    stamp = lambda seconds: tokenizer.timestamp_begin + round(seconds / 0.02)  # noqa: E731
    tokens = [stamp(0), 0, 1, 2, stamp(1.0), stamp(1.2), 4, 5, 7, 50]
    words, ends = timed_words(tokenizer, tokens, buffer_seconds=3.0)
    assert [w.text for w in words] == [" ab", " c", " efh"]
    assert [(w.start, w.end) for w in words] == [(0.0, 0.6), (0.6, 1.0), (1.2, 3.0)]  # unclosed: to the buffer end
    assert ends == [SegmentEnd(1.0, 2, 5)]


def test_missing_portaudio_is_one_error_with_the_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_portaudio)
    with pytest.raises(SpecvoiceError, match="libportaudio2"):
        source.sounddevice()


class FakeSoundDevice:
    def __init__(self, devices):
        self.devices = devices
        self.default = type("Default", (), {"device": [-1, -1]})

    def query_devices(self):
        return self.devices


def test_list_devices_without_an_input_device_says_so(monkeypatch):
    from typer.testing import CliRunner

    from specvoice.cli import app

    monkeypatch.setattr(source, "sounddevice", lambda: FakeSoundDevice([]))
    result = CliRunner().invoke(app, ["listen", "--list-devices"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == source.NO_INPUT_DEVICE


class RateLimitedSoundDevice(FakeSoundDevice):
    """A sound card whose one microphone takes only 48 kHz (PortAudio refuses other rates), and whose stream is
    driven by the test: `stream.callback` gets the blocks a real device would deliver."""

    class PortAudioError(Exception):
        pass

    def __init__(self):
        super().__init__([{"name": "USB mic", "max_input_channels": 1, "default_samplerate": 48000.0}])
        self.streams = []

    def query_devices(self, device=None):
        return self.devices if device is None else self.devices[device]

    def InputStream(self, samplerate, channels, dtype, blocksize, device, callback):
        if samplerate != 48000:
            raise self.PortAudioError("Invalid sample rate [PaErrorCode -9997]")
        stream = type("Stream", (), {"start": lambda s: s.calls.append("start"),
                                     "stop": lambda s: s.calls.append("stop"),
                                     "close": lambda s: s.calls.append("close")})()
        stream.samplerate, stream.blocksize, stream.callback, stream.calls = samplerate, blocksize, callback, []
        self.streams.append(stream)
        return stream


def test_a_microphone_that_refuses_16_khz_is_opened_at_its_own_rate_and_resampled(monkeypatch):
    sd = RateLimitedSoundDevice()
    monkeypatch.setattr(source, "sounddevice", lambda: sd)
    microphone = source.Microphone(None)
    tone = np.sin(2 * np.pi * 440 * np.arange(48000 * 2) / 48000).astype(np.float32) * 0.5  # 2 s of A4 at 48 kHz
    with microphone.running() as queue:
        stream = sd.streams[-1]
        assert (stream.samplerate, stream.blocksize) == (48000, 4800)
        for i in range(0, len(tone), stream.blocksize):
            stream.callback(tone[i: i + stream.blocksize, None], stream.blocksize, None, source._Flags)
        audio, _ = queue.take(SAMPLE_RATE)
    assert abs(len(audio) - 2 * SAMPLE_RATE) < SAMPLE_RATE // 10  # 16 kHz (less the resampler's delay)
    spectrum = np.abs(np.fft.rfft(audio[SAMPLE_RATE // 10:]))
    assert np.fft.rfftfreq(len(audio) - SAMPLE_RATE // 10, 1 / SAMPLE_RATE)[np.argmax(spectrum)] == pytest.approx(440, abs=2)
    assert microphone.name == "USB mic" and queue.level == pytest.approx(0.5, abs=0.01)
    assert stream.calls == ["start", "stop", "close"] and not microphone.stuck


def test_devices_are_found_by_index_or_name():
    sd = FakeSoundDevice([{"name": "HDA Intel: ALC (hw:0,0)", "max_input_channels": 2, "default_samplerate": 48000},
                          {"name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000},
                          {"name": "USB mic", "max_input_channels": 1, "default_samplerate": 16000}])
    assert source.resolve_device(sd, "usb") == 2 and source.resolve_device(sd, "0") == 0
    assert source.resolve_device(sd, None) == 0  # no default: the first input
    for bad in ("1", "webcam"):
        with pytest.raises(SpecvoiceError, match="unknown input device"):
            source.resolve_device(sd, bad)
    with pytest.raises(SpecvoiceError, match="no audio input device"):
        source.resolve_device(FakeSoundDevice([]), None)


def test_listen_errors_are_one_line(tmp_path):
    from test_cli import assert_one_line_error, specvoice

    assert_one_line_error(specvoice("listen", "--input", str(tmp_path / "nope.wav")), "nope.wav", "no such file")
    assert_one_line_error(specvoice("listen", "--input", str(tmp_path / "x.wav"), "--input-device", "2"),
                          "--input-device")
    assert_one_line_error(specvoice("listen", "-f", "srt"), "--output-dir")


def test_no_portaudio_or_no_input_device_is_one_line_error(tmp_path):
    import ctypes.util
    import os
    import subprocess
    import sys

    from test_cli import assert_one_line_error

    env = dict(os.environ, HOME=str(tmp_path))  # no ~/.asoundrc: only the machine's own devices
    if ctypes.util.find_library("portaudio"):
        import sounddevice

        if any(d["max_input_channels"] > 0 for d in sounddevice.query_devices()):
            pytest.skip("this machine has an input device")
        listed = subprocess.run([sys.executable, "-m", "specvoice", "listen", "--list-devices"], capture_output=True,
                                text=True, env=env, timeout=300)
        assert listed.returncode == 0 and listed.stdout.strip() == source.NO_INPUT_DEVICE, listed
        commands, words = [["listen"]], ("no audio input device",)
    else:
        commands, words = [["listen"], ["listen", "--list-devices"]], ("PortAudio library not found", "libportaudio2")
    for args in commands:
        result = subprocess.run([sys.executable, "-m", "specvoice", *args], capture_output=True, text=True, env=env,
                                timeout=300)
        assert_one_line_error(result, *words)


def test_segments_end_at_sentences_not_at_titles():
    from specvoice.listen.stream import Committed

    words = [Word(f" {w}", i, i + 1, (i,)) for i, w in enumerate("Mr. Quilter spoke. Then silence".split())]
    committed = [Committed(w, 10.0, 0) for w in words]
    assert [s.text.strip() for s in segments(committed)] == ["Mr. Quilter spoke.", "Then silence"]
    breaker = LineBreaker()
    assert breaker.lines(committed, utterance=0) == ["Mr. Quilter spoke."]  # the last sentence goes on
    assert breaker.lines(committed, utterance=0, final=True) == ["Then silence"]


class GuessingTranscriber:
    """Hears Japanese in under 2 s of audio and English in more, and records the language it was asked for."""

    def __init__(self):
        from types import SimpleNamespace

        from specvoice.options import DecodingOptions

        tokenizer = SimpleNamespace(multilingual=True, timestamp_begin=1000, eot=999)
        self.target, self.options, self.asked = SimpleNamespace(tokenizer=tokenizer), DecodingOptions("ar"), []

    def decode_window(self, audio, frames, timestamps, language, stats, timing, previous=(), free_drafts=None):
        self.asked.append(language)
        return [], language or ("ja" if len(audio) < 2 * SAMPLE_RATE else "en")


def test_the_language_is_detected_again_until_the_buffer_holds_enough_audio():
    from specvoice.listen.recognizer import LANGUAGE_SETTLES_AFTER, WhisperRecognizer

    transcriber = GuessingTranscriber()
    recognizer = WhisperRecognizer(transcriber)
    for seconds in (1, 3, LANGUAGE_SETTLES_AFTER, 7, 8):
        recognizer.recognize(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32), [])
    # a guess on 1 s of audio is not kept; once 5 s were heard, the language stays
    assert transcriber.asked == [None, None, None, "en", "en"]
    assert recognizer.language == "en"


def stamp(seconds: float) -> int:
    return LetterTokenizer.timestamp_begin + round(seconds / 0.02)


class EarlyEndingTranscriber:
    """Decodes the sentences (start, end, letter tokens) of a script in the window (position audio) as Whisper
    would, timed from the window's start, but stops after the first closed segment of a window for which
    `stops_early(window start, window end)` holds; records each decode's window and prompt."""

    def __init__(self, sentences, stops_early):
        from types import SimpleNamespace

        from specvoice.options import DecodingOptions

        tokenizer = LetterTokenizer()
        tokenizer.multilingual = False
        self.target, self.options = SimpleNamespace(tokenizer=tokenizer), DecodingOptions("ar", language="en")
        self.sentences, self.stops_early = sentences, stops_early
        self.calls: list[tuple[float, float, list[int]]] = []

    def decode_window(self, audio, frames, timestamps, language, stats, timing, previous=(), free_drafts=None):
        start = round((abs(float(audio[0])) - 1) / SAMPLE_RATE, 3)
        end = start + len(audio) / SAMPLE_RATE
        self.calls.append((start, round(end, 3), list(previous)))
        tokens = []
        for first, last, letters in self.sentences:
            if start - 1e-6 <= first < end:
                closed = last <= end + 1e-6
                tokens += [stamp(first - start), *letters] + ([stamp(last - start)] if closed else [])
                if not closed or self.stops_early(start, end):
                    break
        stats.target_passes += len(tokens) + 1
        return tokens + [LetterTokenizer.eot], language


SENTENCES = [(0.2, 1.4, [0, 2, 4]), (1.6, 3.0, [6, 8, 10]), (3.2, 4.0, [12, 14])]  # " a c e", " g i k", " m o"


def test_a_decode_that_ends_early_is_continued_from_its_last_segment_end():
    from specvoice.listen.recognizer import MAX_CONTINUATIONS, WhisperRecognizer

    transcriber = EarlyEndingTranscriber(SENTENCES, stops_early=lambda start, end: True)
    hypothesis = WhisperRecognizer(transcriber).recognize(position_audio(4.5, [(0, 4.5)]), [7])
    assert [w.text for w in hypothesis.words] == [" a", " c", " e", " g", " i", " k", " m", " o"]
    assert [(w.start, w.end) for w in hypothesis.words[3::3]] == [(1.6, 2.067), (3.2, 3.6)]  # buffer times
    assert [end.time for end in hypothesis.segment_ends] == pytest.approx([1.4, 3.0, 4.0])
    first = [stamp(0.2), 0, 2, 4, stamp(1.4)]
    second = [stamp(0.2), 6, 8, 10, stamp(1.6)]  # decoded from 1.4 s: its own clock
    # each continuation starts at the last segment end, prompted with everything decoded before it
    assert transcriber.calls == [(0.0, 4.5, [7]), (1.4, 4.5, [7] + first), (3.0, 4.5, [7] + first + second)]
    assert hypothesis.target_passes == 6 + 6 + 5
    # a decode that keeps ending early stops after MAX_CONTINUATIONS continuations
    many = [(1.0 * i + 0.2, 1.0 * i + 0.8, [2 * i]) for i in range(8)]
    transcriber = EarlyEndingTranscriber(many, stops_early=lambda start, end: True)
    hypothesis = WhisperRecognizer(transcriber).recognize(position_audio(8.0, [(0, 8)]), [])
    assert len(transcriber.calls) == 1 + MAX_CONTINUATIONS and len(hypothesis.words) == 1 + MAX_CONTINUATIONS


def test_no_continuation_when_little_speech_is_left_or_it_hears_nothing():
    from specvoice.listen.recognizer import WhisperRecognizer

    transcriber = EarlyEndingTranscriber(SENTENCES[:1], stops_early=lambda start, end: True)
    recognizer = WhisperRecognizer(transcriber)
    recognizer.recognize(position_audio(2.3, [(0, 2.3)]), [])  # 0.9 s after the end at 1.4 s
    recognizer.recognize(position_audio(4.0, [(0, 4.0)]), [], silence=1.8)  # 0.8 s of speech after it
    assert len(transcriber.calls) == 2
    hypothesis = recognizer.recognize(position_audio(4.0, [(0, 4.0)]), [], silence=1.4)
    assert [start for start, _, _ in transcriber.calls[2:]] == [0.0, 1.4]  # continued, heard nothing: stopped
    assert [w.text for w in hypothesis.words] == [" a", " c", " e"]
    assert hypothesis.tokens == [stamp(0.2), 0, 2, 4, stamp(1.4), LetterTokenizer.eot]


def test_the_words_after_an_early_end_are_committed_at_the_end_of_input():
    from specvoice.listen.recognizer import WhisperRecognizer

    # every decode of more than 3 s from the start of the audio stops after its first sentence, as two decodes
    # of leopard_diarization_test did
    transcriber = EarlyEndingTranscriber(SENTENCES, stops_early=lambda start, end: start == 0 and end > 3.0)
    streamer, _ = listen_with(WhisperRecognizer(transcriber), position_audio(4.5, [(0, 4.5)]))
    assert "".join(c.word.text for c in streamer.state.committed) == " a c e g i k m o"
    # the last decode is the one that spells the whole buffer (no timestamps) as its words leave it
    assert [start for start, _, _ in transcriber.calls] == [0, 0, 0, 0, 1.4, 0, 1.4, 0]
    # with the VAD, the silence after the last word (1.5 s at the utterance's last decode, with steps of 1.5 s)
    # is not speech left to decode: no continuation on it
    transcriber = EarlyEndingTranscriber(SENTENCES[:2], stops_early=lambda start, end: False)
    streamer, _ = listen_with(WhisperRecognizer(transcriber), position_audio(5.0, [(0, 3.0)]), step=1.5, vad=True)
    assert "".join(c.word.text for c in streamer.state.committed) == " a c e g i k"
    assert [end for _, end, _ in transcriber.calls] == pytest.approx([1.472, 2.976, 4.480, 5.0])
    assert all(start == 0 for start, _, _ in transcriber.calls)


def test_the_live_region_shows_the_newest_lines_that_fit_above_the_status_line():
    from rich.console import Console
    from rich.text import Text

    from specvoice.listen.view import region_lines

    console = Console(width=30, height=6, force_terminal=True)
    status = Text("● listening 0:07 ━━━━━━━━ a_long_file_name.wav · base · ar")
    words = " ".join(f"w{i}" for i in range(40))
    lines = [line.plain for line in region_lines(console, Text(words), status, 30, 6)]
    assert len(lines) == 5  # four rows of text (a row is kept for the cursor) and the status line
    assert lines[-2].endswith("w39") and words.endswith(" ".join(lines[:-1]))  # the newest words, whole
    assert all(len(line) <= 30 for line in lines) and len(lines[-1]) == 29 and lines[-1].endswith("…")
    short = [line.plain for line in region_lines(console, Text("hello there"), status, 30, 6)]
    assert short[0] == "hello there" and len(short) == 2
    assert len(region_lines(console, Text(""), status, 30, 6)) == 1  # nothing heard yet: the status line alone


def test_the_status_line_names_the_input_model_method_time_and_level():
    from specvoice.listen.view import Status, status_line

    queue = source.AudioQueue()
    block = np.full((SAMPLE_RATE, 1), 0.5, np.float32)  # 1 s at -6 dBFS
    queue.callback(block, SAMPLE_RATE, None, source._Flags)
    queue.callback(block, SAMPLE_RATE, None, source._Flags)
    status = Status("USB mic", "base", "ar", queue)
    assert status_line(status, "listening").plain == "● listening 0:02 ━━━━━━━─ USB mic · base · ar"
    assert status_line(status, "interrupted").plain == "■ interrupted 0:02 USB mic · base · ar"
    queue.latest_at -= 1.0  # no audio for a second: the meter falls
    assert "──────── USB mic" in status_line(status, "listening").plain
    queue.latest_at -= 4.0  # a microphone sends blocks in silence too: 5 s without one, it has stopped
    assert status_line(status, "listening").plain == "● listening 0:02 no audio from the input for 5 s USB mic · base · ar"
    assert status_line(status, "interrupted").plain == "■ interrupted 0:02 USB mic · base · ar"


def test_a_replay_on_demand_never_says_its_input_stopped():
    """A file replayed as fast as decoding takes it sends blocks only when asked: slow decoding is no stalled input."""
    from specvoice.listen.view import Status, status_line

    replay = source.FileReplay(np.zeros(SAMPLE_RATE, np.float32), speed=0)
    with replay.running() as queue:
        queue.latest_at -= 60.0
        assert "no audio" not in status_line(Status("a.wav", "base", "ar", queue), "listening").plain
