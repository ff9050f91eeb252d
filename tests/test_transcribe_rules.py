"""Whisper's decoding rules and the batch policy on real weights and clips (slower: marked `real`).

Greedy windows stay token-identical to `ar` for every method (test_real.py checks every short clip with these
defaults on); here: other languages with the English-only default draft, silence, the fallback, VAD cuts,
and the command line's batch, stdin and Ctrl-C behaviour.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import soundfile
import torch

from conftest import SPEECH, interruptible
from specvoice.audio import load_audio
from specvoice.engine.decoder import Session
from specvoice.engine.sampling import Warp, sample_decode
from specvoice.engine.stats import DecodeStats
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper.features import FRAMES_PER_SECOND, LogMel
from test_sampling import chi_square

pytestmark = pytest.mark.real

JFK = SPEECH / "whisper_jfk.wav"


@pytest.fixture(scope="module")
def jfk():
    return load_audio(JFK)


def transcriber(real_models, method, notes=None, **options):
    draft = None if method == "ar" else real_models["tiny.en"]
    return Transcriber(real_models["base"], draft, DecodingOptions(method, **options),
                       notify=None if notes is None else notes.append)


@pytest.fixture(scope="module")
def short():
    return load_audio(SPEECH / "speechbrain_spk1_snt1.wav")  # 2.9 s


@pytest.mark.parametrize("options", [dict(language="German"), dict(task="translate")])
def test_english_only_draft_hands_other_languages_to_lookup_with_the_same_tokens(real_models, jfk, short, options):
    # German forced on English speech decodes to German-flavoured text, which tiny.en cannot draft: every
    # method on one clip each (real German speech: the test below). Greedy only: a sampled retry (likely for
    # German forced on English) draws differently per method.
    options = dict(options, temperature_increment_on_fallback=0)
    expected = transcriber(real_models, "ar", **options).transcribe(jfk)
    for method in ("spec", "specasr", "dllm"):
        notes: list[str] = []
        fast = transcriber(real_models, method, notes, **options)
        result = fast.transcribe(jfk if method == "specasr" else short)
        fast.transcribe(short)
        if method == "specasr":
            assert result.tokens == expected.tokens
            assert result.stats.accepted > 0  # the lookup drafts carried some tokens
        else:
            assert result.tokens == transcriber(real_models, "ar", **options).transcribe(short).tokens, method
        assert len(notes) == 1 and "English-only" in notes[0] and "tiny.en" in notes[0]


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    """Synthetic German speech (3.6 s at espeak-ng's 22.05 kHz, resampled by the loader)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (`make system-packages` installs it): no German speech to test")
    path = tmp_path_factory.mktemp("german") / "guten_morgen.wav"
    subprocess.run([espeak, "-v", "de", "-w", str(path), "Guten Morgen, wie geht es Ihnen heute? "
                    "Das Wetter ist schön."], check=True, capture_output=True)
    return path


@pytest.mark.parametrize("task, words", [("transcribe", "guten morgen"), ("translate", "good morning")])
def test_german_speech_is_detected_and_drafted_by_lookup_with_the_same_tokens(real_models, german, task, words):
    # Greedy only: base translates synthetic speech poorly enough for the fallback to sample, and a sampled
    # retry draws differently per method.
    options = dict(task=task, temperature_increment_on_fallback=0)
    audio = load_audio(german)
    expected = transcriber(real_models, "ar", **options).transcribe(audio)
    notes: list[str] = []
    result = transcriber(real_models, "specasr", notes, **options).transcribe(audio)
    assert result.language == expected.language == "de"
    assert result.tokens == expected.tokens and words in result.text.lower()
    assert len(notes) == 1 and "English-only" in notes[0] and "tiny.en" in notes[0]


def test_german_speech_through_the_command_line_notes_the_lookup_draft(german):
    code, out, err = run_cli("transcribe", str(german), "--method", "specasr", "--draft", "tiny.en")
    assert code == 0 and "guten morgen" in out.lower()
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "English-only" in notes[0] and "language 'de'" in notes[0]


def test_the_default_draft_on_the_cpu_drafts_german_itself(german, tmp_path):
    """The shallow draft that ships for base is base's own layers and vocabulary: any language base speaks, it
    drafts (trained on English, it agrees less there; the text is base's either way)."""
    if torch.cuda.is_available():
        pytest.skip("the default draft on CUDA is tiny.en")
    code, out, err = run_cli("transcribe", str(german), "--method", "specasr", "-o", str(tmp_path), "-f", "json")
    assert code == 0 and "guten morgen" in out.lower()
    assert not [line for line in err.splitlines() if line.startswith("note:")]
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert (record["method"], record["draft"], record["language"]) == ("specasr", "shallow", "de")


@pytest.mark.parametrize("method", ["ar", "specasr"])
@pytest.mark.parametrize("vad", [False, True])
def test_silence_and_noise_give_empty_transcripts(real_models, method, vad):
    noise = np.random.default_rng(0).standard_normal(5 * 16000).astype(np.float32) * 0.1
    for audio in (np.zeros(5 * 16000, np.float32), noise):
        result = transcriber(real_models, method, vad_filter=vad).transcribe(audio)
        assert result.text == "" and result.segments == []


def test_a_failing_window_is_retried_hotter_by_exact_speculative_sampling(real_models, short):
    # An impossible log-probability floor fails every try: all six temperatures are tried.
    options = dict(language="en", logprob_threshold=0.0, best_of=1)
    result = transcriber(real_models, "specasr", **options).transcribe(short)
    assert result.retries == 5 and result.windows == 1
    assert result.stats.target_passes < result.stats.tokens  # the sampled tries were drafted too
    again = transcriber(real_models, "specasr", **options).transcribe(short)
    assert again.tokens == result.tokens  # seeded per transcript: the same file gives the same text
    # Exact: the hottest try's first two tokens, drawn as the transcriber draws them (a fresh tiny.en drafter
    # per try, its greedy guesses kept or refused by the speculative rule), follow base's own distribution.
    fast = transcriber(real_models, "specasr", **options)
    stats = DecodeStats()
    counts, exact = first_two_tokens(fast, short, 1.0, SAMPLED_TRIES, stats)
    assert 0 < stats.accepted < stats.drafted  # guesses both kept and refused
    statistic, critical = chi_square(counts, exact)
    assert statistic < critical, (statistic, critical)
    # power: taking the likeliest pair every time (a draft guess never refused) is told apart
    likeliest = torch.zeros_like(counts)
    likeliest[int(exact[:-1].argmax())] = SAMPLED_TRIES
    assert chi_square(likeliest, exact)[0] > critical


SAMPLED_TRIES = 150  # " The" 0.77, " the" 0.21 at 1.0: a sampler that never refuses a guess is far off


def first_two_tokens(fast: Transcriber, audio: np.ndarray, temperature: float, tries: int, stats: DecodeStats):
    """Counts of the first two tokens over `tries` sampled tries of the window at `temperature`, and their
    exact probabilities from the target's logits under Whisper's rules (both over the same cells: each likely
    first token with every second token, then one cell for the rest)."""
    features = LogMel(audio)
    fast._encode(features, 0, features.frames, "en")
    task = replace(fast.target.decode_task("en", "transcribe", False), max_new_tokens=2)

    def target_probabilities(decoded: list[int]) -> torch.Tensor:
        logits = Session(fast.target_decoder).feed(task.prompt + decoded)[-1:].double()
        return Warp(temperature).probabilities(task.rules(logits, [decoded]))[0]

    first = target_probabilities([])
    likely = [a for a in first.argsort(descending=True)[:20].tolist() if first[a] >= 1e-3 and a != task.stop_token]
    exact = torch.cat([first[a] * target_probabilities([a]) for a in likely] +
                      [(1 - first[likely].sum()).view(1)])
    vocabulary = len(first)
    counts = torch.zeros_like(exact)
    generator = torch.Generator().manual_seed(0)
    for _ in range(tries):
        drafter = fast.drafting.drafter("en", False, features.frames / FRAMES_PER_SECOND, sampling=True)
        tokens = sample_decode(fast.target_decoder, task, drafter, temperature, generator, stats).tokens
        a = tokens[0]
        counts[likely.index(a) * vocabulary + tokens[1] if a in likely else -1] += 1
    return counts, exact


def test_initial_prompt_steers_decoding_the_same_for_every_method(real_models, jfk):
    prompt = "AND SO MY FELLOW AMERICANS ASK NOT"
    plain = transcriber(real_models, "ar", language="en").transcribe(jfk)
    expected = transcriber(real_models, "ar", language="en", initial_prompt=prompt).transcribe(jfk)
    assert expected.tokens != plain.tokens  # (base then leaves out what the prompt already said)
    for method in ("spec", "specasr", "dllm"):
        prompted = transcriber(real_models, method, language="en", initial_prompt=prompt).transcribe(jfk)
        assert prompted.tokens == expected.tokens, method
        assert prompted.stats.accepted > 0, method  # the draft, prompted alike, carried tokens


def test_vad_cuts_windows_in_pauses_without_timestamps(real_models, manifest):
    row = next(r for r in manifest if 30 < r["seconds"] < 60)
    audio = load_audio(SPEECH / row["audio"])
    plain = transcriber(real_models, "specasr", language="en", timestamps=False).transcribe(audio)
    # the last window ends where the audio does, in whole 10 ms feature frames (no segment outlasts the audio)
    assert [(s.start, s.end) for s in plain.segments] == [(0.0, 30.0), (30.0, len(audio) // 160 / 100)]
    result = transcriber(real_models, "specasr", language="en", vad_filter=True, timestamps=False).transcribe(audio)
    assert len(result.segments) >= 2
    for before, after in zip(result.segments, result.segments[1:]):
        assert before.end <= after.start and before.end - before.start <= 30.0
    words = set(result.text.lower().replace(",", "").replace(".", "").split())
    reference = set(row["text"].lower().replace(",", "").replace(".", "").split())
    assert len(words & reference) > 0.8 * len(reference)


def test_vad_keeps_silence_shorter_than_a_pause_and_skips_longer(real_models, jfk):
    def with_silence_before(seconds):
        return np.concatenate([np.zeros(int(seconds * 16000), np.float32), jfk])

    plain = transcriber(real_models, "specasr", language="en").transcribe(with_silence_before(0.6))
    short = transcriber(real_models, "specasr", language="en", vad_filter=True).transcribe(with_silence_before(0.6))
    assert short.segments[0].start == 0.0 and short.tokens == plain.tokens  # the same audio decoded
    long = transcriber(real_models, "specasr", language="en", vad_filter=True).transcribe(with_silence_before(4))
    assert long.segments[0].start > 3.0 and "ask not what your country" in long.text


def run_cli(*args, stdin: bytes | None = None):
    process = subprocess.Popen([sys.executable, "-m", "specvoice", *args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=interruptible)
    out, err = process.communicate(stdin, timeout=900)
    return process.returncode, out.decode(), err.decode()


def test_a_batch_transcribes_every_readable_input_and_fails_with_a_summary(tmp_path):
    for place, clip in (("a", "speechbrain_spk2_snt2"), ("b", "google_brooklyn_bridge")):
        (tmp_path / "in" / place).mkdir(parents=True)
        data, rate = soundfile.read(SPEECH / f"{clip}.wav")
        soundfile.write(tmp_path / "in" / place / "clip.flac", data, rate)
    (tmp_path / "cut.wav").write_bytes(JFK.read_bytes()[:100])
    code, out, err = run_cli("transcribe", "-", str(tmp_path / "cut.wav"), str(tmp_path / "missing.wav"),
                             str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-f", "json", stdin=JFK.read_bytes())
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "cut.wav" in lines[0] and "too short" in lines[0]
    assert lines[1] == f"error: {tmp_path / 'missing.wav'}: no such file"
    assert lines[-1] == "error: 2 of 5 inputs failed, 3 transcribed" and len(lines) == 3
    assert "ask not what your country" in out and "Brooklyn" in out
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a/clip.json", "b/clip.json", "stdin.json"]
    import json

    record = json.loads((tmp_path / "out" / "stdin.json").read_text())
    drafting = torch.cuda.is_available()  # --method auto: ar on the CPU (no draft), specasr with tiny.en on CUDA
    assert (record["method"], record["draft"]) == (("specasr", "tiny.en") if drafting else ("ar", None))
    assert record["model"] == "base"
    assert record["options"]["temperature"] == 0.0 and record["versions"]["specvoice"]
    assert "sha256" in record["versions"]["model"]


# The command line with a hook in the transcriber: once the first window is decoded (its segments held, no file
# written yet), the second window's decode says so on a pipe and waits for a signal, so Ctrl-C lands mid-file
# however fast or slow the machine is.
MID_FILE = """
import os, signal, sys
from specvoice.transcribe import transcriber
decode_window, windows = transcriber.Transcriber._decode_window, []
def decode_or_wait(self, *args):
    windows.append(args)
    if len(windows) == 2:
        os.write(int(os.environ["MID_FILE_FD"]), b"decoding window 2")
        signal.pause()
    return decode_window(self, *args)
transcriber.Transcriber._decode_window = decode_or_wait
sys.argv[0] = "specvoice"
from specvoice.cli import main
main()
"""


def test_ctrl_c_says_interrupted_exits_130_and_leaves_no_file(tmp_path, manifest):
    row = next(r for r in manifest if 30 < r["seconds"] < 60)  # two windows at least
    ready, said = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", MID_FILE, "transcribe", str(SPEECH / row["audio"]), "-o",
                                str(tmp_path / "out"), "-f", "all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "MID_FILE_FD": str(said)}, pass_fds=(said,),
                               preexec_fn=interruptible)
    os.close(said)
    heard = os.read(ready, 64)  # waits for the hook (or for the process to end without it: b"")
    os.close(ready)
    if heard == b"decoding window 2":
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=900)
    assert heard == b"decoding window 2", err
    err = err.decode()
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not any((tmp_path / "out").iterdir())
