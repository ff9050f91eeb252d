"""Audio in, live: a microphone through sounddevice, or a file replayed through the very same queue.

PortAudio calls `AudioQueue.callback` on its own thread with each block; the callback only copies the block
into a queue (anything slower there drops audio). The streaming loop drains the queue on its thread.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
from typing import Callable, Iterator

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import SpecvoiceError

BLOCK = SAMPLE_RATE // 10  # 0.1 s per callback
LEVEL_HOLDS = 0.5  # seconds
# A live input sends a block every 0.1 s, silence included: this long without one, it has stopped (unplugged, a
# hung driver), and the status line says so.
NO_INPUT_AFTER = 3.0  # seconds
STOP_WAIT = 2.0  # seconds a stopping input stream may take before it is left behind (a stalled device)
NO_INPUT_DEVICE = "no audio input device found (no sound card or microphone is visible to PortAudio)"
INSTALL_HINT = "install the system library libportaudio2 (Debian/Ubuntu: sudo apt-get install libportaudio2)"


class AudioQueue:
    def __init__(self, producer: Callable[[int], None] | None = None):
        """`producer(samples)`: called from `take` to deliver audio on demand (a replay as fast as decoding
        allows); None: audio arrives by itself, from PortAudio's thread or a replay thread."""
        self.blocks: queue.Queue = queue.Queue()
        self.producer = producer
        self.received = 0  # samples queued so far
        self.overflows = 0
        self.latest = np.zeros(0, np.float32)  # the last block, for the level meter
        self.latest_at = time.monotonic()  # when it came, or when the input opened (see `opened`)

    def callback(self, indata: np.ndarray, frames: int, timing, status) -> None:
        """sounddevice's input callback signature: (indata[frames, channels], frames, time, CallbackFlags)."""
        if status and status.input_overflow:
            self.overflows += 1
        self.latest = indata[:frames, 0].astype(np.float32, copy=True)
        self.latest_at = time.monotonic()
        self.blocks.put(self.latest)
        self.received += frames

    def end(self) -> None:
        self.blocks.put(None)

    def opened(self) -> None:
        """The input starts sending now (the queue may have been made long before, while models loaded)."""
        self.latest_at = time.monotonic()

    @property
    def quiet_for(self) -> float:
        """Seconds since the last block (or the input's opening); 0 for a replay that sends only when asked."""
        return 0.0 if self.producer else time.monotonic() - self.latest_at

    @property
    def level(self) -> float:
        """The last block's peak (0 to 1); 0 when no block came for LEVEL_HOLDS seconds (the input ended)."""
        latest = self.latest
        if not len(latest) or time.monotonic() - self.latest_at > LEVEL_HOLDS:
            return 0.0
        return float(np.abs(latest).max())

    @property
    def seconds(self) -> float:
        """The virtual audio clock: seconds of audio received."""
        return self.received / SAMPLE_RATE

    def take(self, samples: int) -> tuple[np.ndarray, bool]:
        """At least `samples` of audio (waiting for them) and whatever else has arrived; True at the end."""
        pieces, have, ended = [], 0, False
        while not ended and (have < samples or not self.blocks.empty()):
            if self.producer and self.blocks.empty():
                self.producer(samples - have)
            block = self.blocks.get()
            if block is None:
                ended = True
            else:
                pieces.append(block)
                have += len(block)
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), ended


class _Flags:
    input_overflow = False


class FileReplay:
    """A file's samples through an AudioQueue in callback-sized blocks, at `speed` times real time (0: on
    demand, as fast as the loop takes them)."""

    def __init__(self, samples: np.ndarray, speed: float):
        self.samples = samples
        self.speed = speed
        self.sent = 0
        self.queue = AudioQueue(self._produce if speed == 0 else None)
        self.started = 0.0
        self.stuck = False  # a replay always stops (see Microphone._stop)

    def _send(self, count: int) -> None:
        block = self.samples[self.sent: self.sent + count]
        if len(block):
            self.queue.callback(block[:, None], len(block), None, _Flags)
        self.sent += len(block)
        if self.sent >= len(self.samples):
            self.queue.end()

    def _produce(self, samples: int) -> None:
        for _ in range(max(1, -(-samples // BLOCK))):
            if self.sent >= len(self.samples):
                break
            self._send(BLOCK)

    def _play(self) -> None:
        while self.sent < len(self.samples):
            due = self.started + (self.sent + BLOCK) / SAMPLE_RATE / self.speed
            time.sleep(max(0.0, due - time.monotonic()))
            self._send(BLOCK)

    def clock(self) -> float:
        """Seconds of audio since the replay began: wall time at the replay's pace, or the virtual clock."""
        if self.speed == 0:
            return self.queue.seconds
        return (time.monotonic() - self.started) * self.speed

    @contextlib.contextmanager
    def running(self) -> Iterator[AudioQueue]:
        self.started = time.monotonic()
        self.queue.opened()
        if self.speed == 0:
            yield self.queue
            return
        player = threading.Thread(target=self._play, daemon=True)
        player.start()
        yield self.queue


def sounddevice():
    """The sounddevice module; its import fails with OSError until the PortAudio library is installed."""
    try:
        import sounddevice
    except ImportError:
        raise SpecvoiceError("listening needs sounddevice: pip install 'specvoice[listen]'") from None
    except OSError:
        raise SpecvoiceError(f"PortAudio library not found: {INSTALL_HINT}") from None
    return sounddevice


def input_devices(sd) -> list[dict]:
    return [dict(device, index=i) for i, device in enumerate(sd.query_devices()) if device["max_input_channels"] > 0]


def resolve_device(sd, device: str | None) -> int:
    """The input device's index: the system default, an index, or a unique part of a name."""
    devices = input_devices(sd)
    if not devices:
        raise SpecvoiceError(NO_INPUT_DEVICE)
    if device is None:
        index = sd.default.device[0]
        return index if index is not None and index >= 0 else devices[0]["index"]
    if device.strip().isdigit():
        if int(device) in {d["index"] for d in devices}:
            return int(device)
        raise SpecvoiceError(f"unknown input device {device}: see --list-devices")
    matches = [d for d in devices if device.lower() in d["name"].lower()]
    if len(matches) != 1:
        what = "unknown" if not matches else "ambiguous"
        raise SpecvoiceError(f"{what} input device {device!r}: see --list-devices")
    return matches[0]["index"]


def describe_devices() -> list[str]:
    """--list-devices: a line per input device (the default starred), or a line that says there is none."""
    sd = sounddevice()
    devices = input_devices(sd)
    if not devices:
        return [NO_INPUT_DEVICE]
    default = sd.default.device[0]
    return [f"{'*' if d['index'] == default else ' '} {d['index']}: {d['name']} ({d['max_input_channels']} in, "
            f"{d['default_samplerate']:.0f} Hz)" for d in devices]


class Resampled:
    """A callback for blocks at `rate` that hands them on at 16 kHz. soxr's streaming resampler keeps its state
    from block to block (no seams); a 0.1 s block takes it well under a millisecond, little enough for
    PortAudio's thread."""

    def __init__(self, rate: int, callback):
        import soxr

        self.resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        self.callback = callback

    def __call__(self, indata: np.ndarray, frames: int, timing, status) -> None:
        block = self.resampler.resample_chunk(np.ascontiguousarray(indata[:frames, 0], dtype=np.float32))
        self.callback(block[:, None], len(block), timing, status)


class Microphone:
    """The input device's blocks queued by the callback at 16 kHz mono. A device that refuses 16 kHz (many
    take only 44.1 or 48 kHz) is opened at its default rate and resampled."""

    def __init__(self, device: str | None):
        self.sd = sounddevice()
        self.device = resolve_device(self.sd, device)
        self.name = self.sd.query_devices(self.device)["name"]
        self.queue = AudioQueue()
        self.started = 0.0
        self.stuck = False  # the device never let its stream stop (see _stop)

    def clock(self) -> float:
        return time.monotonic() - self.started

    def _stream(self, rate: int, callback):
        return self.sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=rate // 10,
                                   device=self.device, callback=callback)

    def _open(self):
        """An input stream at 16 kHz, or at the device's own rate behind a resampler."""
        refused = (self.sd.PortAudioError, ValueError)
        try:
            return self._stream(SAMPLE_RATE, self.queue.callback)
        except refused as exc:
            reason = exc
        rate = int(self.sd.query_devices(self.device)["default_samplerate"])
        if rate != SAMPLE_RATE:
            try:
                return self._stream(rate, Resampled(rate, self.queue.callback))
            except refused as exc:
                reason = exc
        raise SpecvoiceError(f"cannot open input device {self.device} ({self.name}): {reason}")

    @contextlib.contextmanager
    def running(self) -> Iterator[AudioQueue]:
        stream = self._open()
        stream.start()
        self.started = time.monotonic()
        self.queue.opened()
        try:
            yield self.queue
        finally:
            self._stop(stream)

    def _stop(self, stream) -> None:
        """Stop and close the stream, unless the device hangs: PortAudio's stop (and its abort) waits for a read
        that a stalled or unplugged input never completes, and Ctrl-C would then never end the command. Such a
        stream is left to a thread of its own, and sounddevice's clean-up at exit, which would wait on it again,
        is dropped."""
        closer = threading.Thread(target=lambda: (stream.stop(), stream.close()), daemon=True)
        closer.start()
        closer.join(STOP_WAIT)
        self.stuck = closer.is_alive()
        if self.stuck:
            atexit.unregister(self.sd._exit_handler)  # sounddevice's own atexit hook: PortAudio's terminate
