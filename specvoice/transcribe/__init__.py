"""The transcribe pipeline: audio files to timed transcripts, one decoding method per run."""

from ..transcript import Segment, Transcript
from .transcriber import Transcriber

__all__ = ["Segment", "Transcriber", "Transcript"]
