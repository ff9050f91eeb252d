"""listen on real weights: every decode of an update (of the buffer, and any continuation after an early end)
is exactly `ar` on the same audio and prompt, the committed transcript matches the offline one, and a real
PortAudio input stream (ALSA's file plugin standing in for a microphone) gets the words through."""

from __future__ import annotations

import ctypes.util
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import SPEECH, interruptible
from specvoice.audio import SAMPLE_RATE, load_audio
from specvoice.engine.stats import DecodeStats
from specvoice.listen import FileReplay, Streamer, WhisperRecognizer, run
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber

pytestmark = pytest.mark.real


def record_decodes(transcriber: Transcriber) -> list[tuple[np.ndarray, int, bool, list[int], list[int]]]:
    """Keeps every window decode's audio, frames, timestamps, prompt and tokens (an update's decode of the buffer
    and any continuation of it, and the decode without timestamps that spells words leaving the buffer)."""
    decodes = []
    decode_window = transcriber.decode_window

    def recorded(window, frames, timestamps, language, stats, timing, previous=(), free_drafts=None):
        tokens, language = decode_window(window, frames, timestamps, language, stats, timing, previous, free_drafts)
        decodes.append((window.copy(), frames, timestamps, list(previous), tokens))
        return tokens, language

    transcriber.decode_window = recorded
    return decodes


def stream(transcriber, audio, previous_draft=True, step=1.0, vad=False):
    from specvoice.audio.vad import speech_probabilities

    replay = FileReplay(audio, speed=0)
    recognizer = WhisperRecognizer(transcriber, previous_draft)
    streamer = Streamer(recognizer, replay.clock, speech_probabilities if vad else None)
    with replay.running() as queue:
        run(streamer, queue, step, Quiet(), print)
    return streamer, recognizer


class Quiet:
    def show(self, committed, tentative, lines):
        pass


def test_every_update_is_token_identical_to_ar_and_the_free_draft_saves_passes(real_models):
    audio = load_audio(SPEECH / "whisper_jfk.wav")[: 7 * SAMPLE_RATE]
    both = Transcriber(real_models["base"], real_models["tiny.en"], DecodingOptions("specasr", language="en"))
    decodes = record_decodes(both)
    streamer, recognizer = stream(both, audio, step=1.5)
    ar = Transcriber(real_models["base"], None, DecodingOptions("ar", language="en"))
    plain = 0
    for window, frames, timestamps, prompt, tokens in decodes:
        stats = DecodeStats()
        expected, _ = ar.decode_window(window, frames, timestamps, "en", stats, {"encoder": 0, "decoder": 0},
                                       previous=prompt)
        assert tokens == expected
        plain += stats.target_passes
    assert len(decodes) >= 4
    assert recognizer.stats.target_passes < plain / 2
    text = "".join(c.word.text for c in streamer.state.committed).lower()
    assert "my fellow americans" in text


# JFK pauses after a word heard cut off; a LibriSpeech reading and a TIMIT sentence of other speakers
COMMITTED_CLIPS = ("whisper_jfk", "leopard_1272-128104-0000", "deepspeech_LDC93S1")


def test_the_committed_transcript_is_as_good_as_the_offline_one(real_models, int8_base, manifest):
    pytest.importorskip("faster_whisper", reason="the Silero VAD model ships with faster-whisper (extra 'vad')")
    from specvoice.bench.normalize import word_errors

    # listen's CPU defaults: base at int8, drafted by tiny.en and by the previous hypothesis, with VAD
    transcriber = Transcriber(int8_base, real_models["tiny.en"], DecodingOptions())
    # offline as `transcribe` does it (a short clip without timestamps) and with them (what each update decodes)
    offline = [Transcriber(int8_base, real_models["tiny.en"], DecodingOptions(timestamps=timestamps))
               for timestamps in (False, True)]
    clips = {c["id"]: c for c in manifest}
    assert set(COMMITTED_CLIPS) <= set(clips), "a clip of the test is missing from the manifest"
    for clip in (clips[name] for name in COMMITTED_CLIPS):
        audio = load_audio(SPEECH / clip["audio"])
        streamer, _ = stream(transcriber, audio, vad=True)
        live = "".join(c.word.text for c in streamer.state.committed)
        for text in (o.transcribe(audio).text for o in offline):
            assert word_errors(clip["text"], live).rate <= word_errors(clip["text"], text).rate + 0.02, (text, live)


def test_the_committed_text_is_transcribes_punctuation_included(real_models, int8_base):
    pytest.importorskip("faster_whisper", reason="the Silero VAD model ships with faster-whisper (extra 'vad')")
    from specvoice.listen.session import transcript

    # listen's CPU defaults against transcribe's on the same audio: JFK pauses after "Americans" and "for you"
    # (the timestamped decodes commit "Americans ask not", "for you." there)
    audio = load_audio(SPEECH / "whisper_jfk.wav")
    streamer, recognizer = stream(Transcriber(int8_base, real_models["tiny.en"], DecodingOptions()), audio, vad=True)
    offline = Transcriber(int8_base, real_models["tiny.en"], DecodingOptions()).transcribe(audio).text
    assert transcript(streamer, "en", recognizer.stats, len(audio) / SAMPLE_RATE).text == offline


def _asoundrc(home, infile):
    (home / ".asoundrc").write_text(
        f'pcm.wavraw {{ type file; slave.pcm "null"; file "/dev/null"; infile "{infile}"; format "raw" }}\n'
        'pcm.wavin { type plug; slave { pcm "wavraw"; format S16_LE; rate 16000; channels 1 } }\n'
        'pcm.!default { type plug; slave.pcm "wavin" }\n')


@pytest.mark.skipif(not ctypes.util.find_library("portaudio"),
                    reason="the PortAudio system library (apt-get install libportaudio2) is not installed")
@pytest.mark.parametrize("stalls", [False, True], ids=["microphone", "microphone-that-stalls"])
def test_a_real_portaudio_stream_from_the_alsa_file_plugin(tmp_path, stalls):
    """A microphone keeps sending blocks; one that stalls (unplugged, or a hung driver) stops after the clip and
    3 s of silence, and PortAudio's read then never returns: Ctrl-C still ends the command, with the transcript."""
    audio = load_audio(SPEECH / "whisper_jfk.wav")
    samples = np.concatenate([audio, np.zeros(3 * SAMPLE_RATE, np.float32)])
    raw = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    fifo = tmp_path / "mic.raw"
    os.mkfifo(fifo)
    _asoundrc(tmp_path, fifo)
    writer = os.open(fifo, os.O_RDWR)  # open before the stream starts, so PortAudio's open does not block
    env = dict(os.environ, HOME=str(tmp_path))
    listed = subprocess.run([sys.executable, "-m", "specvoice", "listen", "--list-devices"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "default" in listed.stdout, listed.stderr
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "specvoice", "listen", "--model", "tiny.en", "--method", "ar", "--threads", "1",
                                "-o", str(out), "-f", "json"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    block = SAMPLE_RATE // 10 * 2

    stop = threading.Event()

    def put(data: bytes, wait: bool) -> None:
        """Write a block; while the pipe is full (the command is still loading its models, or has exited) a
        block of the clip waits for room until the test ends, one of silence is skipped."""
        while not stop.is_set():
            try:
                os.write(writer, data)  # under PIPE_BUF: whole or not at all
                return
            except BlockingIOError:
                if not wait:
                    return
                time.sleep(0.01)

    def feed():  # 0.1 s every 0.1 s, as a microphone would: the clip, then silence until the test ends (or, for a
        # stalled one, nothing more after 3 s of it). A slow start must not cost the command words of the clip:
        # the pipe holds 2 s, and the model loads for longer on a busy machine.
        os.set_blocking(writer, False)
        for i in itertools.count(0, block):
            if stop.is_set() or (stalls and i >= len(raw)):
                return
            put(raw[i: i + block] if i < len(raw) else bytes(block), wait=i < len(raw))
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    while not any("country" in line for line in lines) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    if stalls:
        feeder.join(timeout=60)
        time.sleep(1)  # the queue drained: the stream now waits in a read that never returns
    process.send_signal(signal.SIGINT)  # Ctrl-C: commit what is left, write the files, exit 130
    try:
        assert process.wait(timeout=120) == 130, process.stderr.read()
    finally:
        stop.set()
    reader.join(timeout=10)
    feeder.join(timeout=10)
    os.close(writer)
    text = " ".join(lines).lower()
    assert "what your country can do for you" in text.replace(",", "").replace(".", ""), text
    assert (out / "listen.json").exists()
    stalled_warning = "the input device stopped sending audio and would not close" in process.stderr.read()
    assert stalled_warning == stalls
