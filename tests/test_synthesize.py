"""`specvoice synthesize` as a user meets it, on tiny random Bark folders and the offline voice: a valid wav
of the expected length and rate, ar and ssd identical when greedy, stdout output, and one-line errors with
no output file for bad input. The round trip through Whisper uses real weights (marked real)."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from specvoice.cli import main
from test_cli import assert_one_line_error
from tts_models import save_tiny_bark, save_tiny_llasa, tiny_bark

TEXT = "hello world. the cat sat on the mat"
HOP = 320  # EnCodec samples per frame at 24 kHz (8 * 5 * 4 * 2)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bark")
    return save_tiny_bark(root / "target", 0), save_tiny_bark(root / "draft", 1)


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capfdbinary, *args: str) -> tuple[int, bytes, str]:
    """specvoice in this process (no interpreter start per call): exit code, stdout bytes, stderr text."""
    argv = sys.argv
    sys.argv = ["specvoice", *args]
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    finally:
        sys.argv = argv
    out, err = capfdbinary.readouterr()
    return code, out, err.decode()


def one_error(code: int, err: str, *words: str) -> None:
    assert_one_line_error(subprocess.CompletedProcess([], code, "", err), *words)


def expected_samples(folder, sentences: list[str]) -> int:
    """Greedy lengths from transformers' own Bark: semantic tokens -> coarse frames (Bark's rates) -> samples."""
    from transformers import AutoTokenizer, BarkModel

    model, tokenizer = BarkModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    semantic = model.generation_config.semantic_config
    total = 0
    for sentence in sentences:
        ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        padded = torch.tensor([ids + [0] * (256 - len(ids))])
        mask = torch.tensor([[1] * len(ids) + [0] * (256 - len(ids))])
        from transformers.models.bark.generation_configuration_bark import BarkSemanticGenerationConfig

        out = model.semantic.generate(padded, attention_mask=mask, do_sample=False,
                                      semantic_generation_config=BarkSemanticGenerationConfig(**semantic))
        length = int((out[0] != semantic["semantic_pad_token"]).sum())
        frames = round(math.floor(length * 75 / 49.9 * 2 / 2) * 2) // 2
        total += frames * HOP
    return total


def test_writes_a_wav_of_the_expected_length_and_greedy_ssd_equals_ar(folders, tmp_path, capfdbinary):
    target, draft = folders
    outputs = {}
    for method in ("ar", "ssd"):
        path = tmp_path / f"{method}.wav"
        code, _, err = run(capfdbinary, "synthesize", TEXT, "-m", str(target), "-d" if method == "ssd" else "--seed",
                           str(draft) if method == "ssd" else "0", "--method", method, "--temperature", "0",
                           "-o", str(path), "--stats")
        assert code == 0, err
        outputs[method] = path.read_bytes()
    assert outputs["ar"] == outputs["ssd"]
    audio, rate = soundfile.read(io.BytesIO(outputs["ar"]), dtype="float32")
    assert rate == 24000 and audio.ndim == 1
    pause = int(0.25 * rate)
    assert len(audio) == expected_samples(target, ["hello world.", "the cat sat on the mat"]) + pause
    assert np.abs(audio).max() > 0


def test_llasa_writes_a_wav_of_the_expected_length_and_greedy_ssd_equals_ar(tmp_path, capfdbinary):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target, draft = save_tiny_llasa(tmp_path / "llasa", 0), save_tiny_llasa(tmp_path / "llasa-draft", 1)
    outputs = {}
    for method, extra in (("ar", []), ("ssd", ["-d", str(draft)])):
        code, _, err = run(capfdbinary, "synthesize", "hello world", "-m", str(target), "--method", method,
                           "--temperature", "0", "-o", str(tmp_path / f"{method}.wav"), *extra)
        assert code == 0, err
        outputs[method] = (tmp_path / f"{method}.wav").read_bytes()
    assert outputs["ar"] == outputs["ssd"]
    audio, rate = soundfile.read(io.BytesIO(outputs["ar"]))
    # transformers' own greedy generate with the model card's settings: 320 samples per speech token
    tokenizer, model = AutoTokenizer.from_pretrained(target), AutoModelForCausalLM.from_pretrained(target)
    from specvoice.llasa import LlasaPair
    from tts_models import tiny_xcodec2

    prompt = LlasaPair(model, tokenizer, tiny_xcodec2(0)).prompt("hello world")
    end, first = tokenizer.convert_tokens_to_ids("<|SPEECH_GENERATION_END|>"), tokenizer.convert_tokens_to_ids("<|s_0|>")
    generated = model.generate(torch.tensor([prompt]), max_length=2048, eos_token_id=end, do_sample=False)[0, len(prompt):]
    codes = int(((generated >= first) & (generated < first + 16)).sum())
    assert codes > 0 and rate == 16000 and len(audio) == 320 * codes


def test_standard_output_voice_and_stdin(folders, tmp_path, capfdbinary, monkeypatch):
    target, draft = folders
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello world."))
    code, out, err = run(capfdbinary, "synthesize", "-m", str(target), "-d", str(draft), "--voice", "v2/en_speaker_0",
                         "-o", "-")
    assert code == 0, err
    audio, rate = soundfile.read(io.BytesIO(out))
    assert rate == 24000 and len(audio) % HOP == 0 and len(audio) > 0


@pytest.mark.parametrize("case", ["empty", "voice", "unwritable", "folder", "vocabulary", "draft with ar"])
def test_bad_input_is_one_line_and_no_file(case, folders, tmp_path, capfdbinary):
    target, draft = folders
    output = tmp_path / "out.wav"
    args = ["synthesize", TEXT, "-m", str(target), "-d", str(draft), "-o", str(output)]
    words = {"empty": ("no text",), "voice": ("unknown voice", "v2/nobody"), "unwritable": ("not a folder",),
             "folder": ("not a model folder",), "vocabulary": ("vocabularies differ",), "draft with ar": ("--draft",)}
    if case == "empty":
        args[1] = "  \n"
    elif case == "voice":
        args += ["--voice", "v2/nobody"]
    elif case == "unwritable":
        (tmp_path / "a-file").write_text("")
        output = tmp_path / "a-file" / "out.wav"
        args[-1] = str(output)
    elif case == "folder":
        args[3] = str(tmp_path)
    elif case == "vocabulary":
        other = tiny_bark(2)
        other.config.coarse_acoustics_config.output_vocab_size = 30  # keep the saved config consistent
        other.coarse_acoustics.lm_head = torch.nn.Linear(32, 30, bias=False)
        other.coarse_acoustics.config.output_vocab_size = 30
        other.save_pretrained(tmp_path / "other")
        args[5] = str(tmp_path / "other")
    else:
        args += ["--method", "ar"]
    code, _, err = run(capfdbinary, *args)
    one_error(code, err, *words[case])
    assert not output.exists() and not list(tmp_path.rglob("*.partial"))
    if case == "unwritable":  # the file in the way is left as it was
        assert (tmp_path / "a-file").is_file() and (tmp_path / "a-file").read_text() == ""


def specvoice_offline(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": os.environ.get("HF_HOME", "/nonexistent-hf-home")}
    return subprocess.run([sys.executable, "-m", "specvoice", *args], capture_output=True, text=True, timeout=300,
                          env=environment)


def test_offline_voice_rejects_speculation_options(tmp_path, capfdbinary):
    pytest.importorskip("hibari")
    code, _, err = run(capfdbinary, "synthesize", "hi", "-m", "hibari", "--method", "ssd", "-o", str(tmp_path / "x.wav"))
    one_error(code, err, "hibari", "not autoregressive")
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("case", ["/proc", "read-only", "folder under a file"])
def test_the_destination_is_checked_before_any_model_loads(case, tmp_path, capfdbinary, monkeypatch):
    """Issue 27: -o /proc/x.wav was found unwritable only after 7 s of synthesis, and a read-only file system
    was called "permission denied". The model named here does not exist: the destination is refused first."""
    import errno
    import tempfile

    output, words = Path("/proc/x.wav"), ("/proc/x.wav", "cannot write there")
    if case == "read-only":
        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what the OS says on a read-only mount
        output, words = tmp_path / "x.wav", ("x.wav", "(read-only file system)")
    elif case == "folder under a file":
        (tmp_path / "a-file").write_text("")
        output, words = tmp_path / "a-file" / "sub" / "x.wav", ("a-file", "cannot create the output folder")
    code, _, err = run(capfdbinary, "synthesize", "Hello.", "-m", str(tmp_path / "no-model"), "-o", str(output))
    one_error(code, err, *words)
    assert not output.exists()


def test_a_missing_folder_is_created_and_the_text_can_come_from_a_file(tmp_path, capfdbinary):
    pytest.importorskip("hibari")
    text = tmp_path / "story.txt"
    text.write_text("The cat sat on the mat.")
    output = tmp_path / "new" / "folder" / "x.wav"
    code, _, err = run(capfdbinary, "synthesize", "--text-file", str(text), "-m", "hibari", "-o", str(output))
    assert code == 0 and err == ""
    audio, rate = soundfile.read(output)
    assert rate == 24000 and len(audio) > rate // 2


def test_text_the_offline_voice_cannot_read_is_an_error_naming_its_language(tmp_path, capfdbinary):
    """Japanese gave an empty 44-byte wav and exit 0 (issue 27)."""
    pytest.importorskip("hibari")
    output = tmp_path / "x.wav"
    code, _, err = run(capfdbinary, "synthesize", "こんにちは。元気ですか？", "-m", "hibari", "-o", str(output))
    one_error(code, err, "English (en-US)", "こんにちは")
    assert not output.exists()
    code, _, err = run(capfdbinary, "synthesize", "🙂 🙂", "-m", "hibari", "-o", str(output))
    one_error(code, err, "no sound")
    assert not output.exists()


def test_german_text_is_spoken_with_a_note_that_it_sounds_english(tmp_path, capfdbinary):
    pytest.importorskip("hibari")
    output = tmp_path / "x.wav"
    code, _, err = run(capfdbinary, "synthesize", "Guten Tag, wie geht es Ihnen heute?", "-m", "hibari",
                       "-o", str(output))
    lines = err.splitlines()
    assert code == 0 and len(lines) == 1 and lines[0].startswith("note:") and "English sounds" in lines[0], err
    assert soundfile.info(output).frames > 0
    code, _, err = run(capfdbinary, "synthesize", "The cat sat on the mat.", "-m", "hibari", "-o", str(output))
    assert code == 0 and err == ""


def test_without_bark_weights_an_explicit_bark_fails_and_the_default_falls_back(tmp_path):
    pytest.importorskip("hibari")
    explicit = specvoice_offline("synthesize", "Hello there.", "-m", "suno/bark", "-o", str(tmp_path / "bark.wav"))
    assert_one_line_error(explicit, "suno/bark", "suno/bark-small", "local folder", "--model hibari")
    assert not (tmp_path / "bark.wav").exists()
    plain = specvoice_offline("synthesize", "Hello there.", "-o", str(tmp_path / "plain.wav"))
    assert plain.returncode == 0, plain.stderr
    lines = [line for line in plain.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("note:") and "hibari" in lines[0]
    audio, rate = soundfile.read(tmp_path / "plain.wav")
    assert rate == 24000 and len(audio) > rate // 2


ROUND_TRIP = ["The quick brown fox jumps over the lazy dog.",
              "Speculative decoding makes speech models faster.",
              "Please call me back tomorrow morning.",
              "It was a bright cold day in April."]


@pytest.mark.real
def test_offline_voice_round_trip_through_whisper(real_models):
    pytest.importorskip("hibari")
    from specvoice.audio import to_model_rate
    from specvoice.bench.normalize import word_errors
    from specvoice.options import DecodingOptions, SynthesisOptions
    from specvoice.synthesize import Synthesizer, load_speaker
    from specvoice.transcribe import Transcriber

    speaker, _ = load_speaker(SynthesisOptions(model="hibari"), "cpu", torch.float32)
    synthesizer = Synthesizer(speaker, SynthesisOptions(model="hibari"))
    transcriber = Transcriber(real_models["base"], real_models["tiny.en"], DecodingOptions(language="en"))
    errors = None
    for sentence in ROUND_TRIP:
        spoken = synthesizer.synthesize(sentence)
        heard = transcriber.transcribe(to_model_rate(spoken.audio, spoken.sample_rate)).text
        counted = word_errors(sentence, heard)
        errors = counted if errors is None else errors + counted
    assert errors.rate < 0.10


def test_tts_bench_accounts_for_every_run(folders):
    """The bench's arithmetic on tiny models (mechanics: random weights make noise, so WER means nothing here)."""
    from specvoice.bench.tts import run_tts_bench, tts_contestants
    from specvoice.options import SynthesisOptions
    from specvoice.synthesize import Synthesizer, load_speaker

    target, draft = folders
    options = SynthesisOptions(model=str(target), draft=str(draft))
    speaker, _ = load_speaker(options, "cpu", torch.float32)
    contestants, notes = tts_contestants(Synthesizer(speaker, options), [0.0, 0.4])
    assert [c.name for c in contestants] == ["ar", "ssd beta=0", "ssd beta=0.4"] and notes == []
    texts = [("a", "hello world."), ("b", "the cat sat.")]
    results = run_tts_bench(texts, contestants, lambda audio, rate: "hello world.", repeat=1, warmup=0)
    runs = results["runs"]
    assert len(runs) == 6 and [r["name"] for r in runs[:3]] == ["ar", "ssd beta=0", "ssd beta=0.4"]
    ar, exact, lossy = results["summary"]
    assert ar["speedup"] == 1.0 and ar["tokens_per_target_pass"] == 1.0 and ar["acceptance"] is None
    assert exact["tokens_per_target_pass"] > 1.0 and lossy["acceptance"] > exact["acceptance"]
    for row in results["summary"]:
        mine = [r for r in runs if r["name"] == row["name"]]
        assert row["audio_seconds"] == pytest.approx(sum(r["audio_seconds"] for r in mine), abs=0.01)
        ratio = sum(r["lm_seconds"] for r in mine) / sum(r["audio_seconds"] for r in mine)
        assert row["lm_seconds_per_audio_second"] == pytest.approx(ratio, rel=0.01)
    assert [r["wer"] for r in runs if r["id"] == "a"] == [0.0] * 3  # heard exactly what was said


def test_long_text_is_split_into_sentences_and_clauses_that_fit():
    from specvoice.synthesize.text import split_sentences

    long_clause = " ".join(["word"] * 50)
    pieces = split_sentences(f"First one. Second one?\n\nThird, with a clause; and {long_clause}!")
    assert pieces[:2] == ["First one.", "Second one?"]
    assert all(len(piece.split()) <= 35 for piece in pieces)
    assert " ".join(pieces).split() == f"First one. Second one? Third, with a clause; and {long_clause}!".split()
    assert split_sentences("  \n ") == []
    assert split_sentences("こんにちは。元気ですか？はい！ Yes.") == ["こんにちは。", "元気ですか？", "はい！", "Yes."]
