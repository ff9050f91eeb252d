"""The listen pipeline: live audio (a microphone, or a file replayed at any pace) to committed text, by
re-decoding a growing buffer and committing what consecutive hypotheses agree on (LocalAgreement-2)."""

from .hypothesis import Hypothesis, SegmentEnd, Word
from .recognizer import WhisperRecognizer
from .session import StreamMeasures, measure, run, transcript
from .source import AudioQueue, FileReplay, Microphone, describe_devices
from .stream import Streamer
from .view import LineView, LiveView, Status

__all__ = ["AudioQueue", "FileReplay", "Hypothesis", "LineView", "LiveView", "Microphone", "SegmentEnd",
           "Status", "StreamMeasures", "Streamer", "WhisperRecognizer", "Word", "describe_devices", "measure", "run",
           "transcript"]
