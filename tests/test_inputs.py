"""Bad inputs and the batch policy, as a user meets them on the command line: each problem is one `error:`
line, every input is checked before any model loads, and nothing half-written is ever left behind."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import SPEECH
from specvoice.errors import SpecvoiceError
from specvoice.options import DecodingOptions, OptionError
from specvoice.transcribe.inputs import gather
from specvoice.transcribe.transcriber import compression_ratio
from test_cli import assert_one_line_error, specvoice

JFK = SPEECH / "whisper_jfk.wav"


def wav(path: Path, samples: int, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.sin(np.arange(samples) / 10).astype(np.float32) * 0.1, rate)
    return path


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(JFK.read_bytes()[:100]), "too short"),  # a wav cut to 100 bytes
    (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "not readable audio"),
    (lambda p: wav(p, 1), "too short"),  # one sample
    (lambda p: wav(p, 1500), "too short"),  # 0.094 s
    (lambda p: p.write_bytes(b""), "not readable audio"),
])
def test_unusable_audio_is_one_error_line_before_any_model_loads(tmp_path, make, words):
    bad = tmp_path / "bad.wav"
    make(bad)
    result = specvoice("transcribe", str(bad), "-o", str(tmp_path / "out"), "--model", "no-such-model")
    assert_one_line_error(result, "bad.wav", words)  # the model was never looked for
    assert not any((tmp_path / "out").iterdir())


def test_every_input_is_checked_and_reported_with_one_summary(tmp_path):
    short = wav(tmp_path / "short.wav", 10)
    result = specvoice("transcribe", str(tmp_path / "missing.wav"), str(short), str(tmp_path / "also-missing.wav"),
                       "--model", "no-such-model")
    lines = error_lines(result)
    assert result.returncode == 1
    assert [line.split(":")[0] for line in lines] == ["error"] * 4, lines
    assert "missing.wav: no such file" in lines[0] and "short.wav" in lines[1] and "also-missing" in lines[2]
    assert lines[3] == "error: 3 of 3 inputs failed, 0 transcribed"


@pytest.mark.parametrize("names", [("d1/clip.wav", "d2/clip.wav"), ("jfk.wav", "jfk.flac")])
def test_colliding_output_names_stop_before_decoding_naming_both(tmp_path, names):
    paths = [wav(tmp_path / name, 4000) for name in names]
    result = specvoice("transcribe", *map(str, paths), "-o", str(tmp_path / "out"), "--model", "no-such-model")
    assert_one_line_error(result, *names, "would both write")


def test_a_folder_input_keeps_relative_paths_so_equal_names_do_not_collide(tmp_path):
    wav(tmp_path / "in/a/clip.wav", 4000)
    wav(tmp_path / "in/b/clip.flac", 4000)
    (tmp_path / "in/notes.txt").write_text("not audio")
    inputs, problems, _ = gather([tmp_path / "in"], tmp_path / "out", ["txt"], io.BytesIO())
    assert problems == []
    assert sorted(str(i.stem) for i in inputs) == ["a/clip", "b/clip"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecvoiceError, match="no audio files"):
        gather([tmp_path / "empty"], None, [], io.BytesIO())


def test_a_name_the_file_system_refuses_is_one_problem_and_the_rest_are_kept(tmp_path):
    """A 260-byte name cannot even be looked up (ENAMETOOLONG): issue 27 saw it stop the whole batch."""
    good = wav(tmp_path / "good.wav", 4000)
    inputs, problems, _ = gather([tmp_path / ("x" * 256 + ".wav"), good], None, [], io.BytesIO())
    assert [i.name for i in inputs] == [str(good)]
    assert len(problems) == 1 and problems[0].endswith(".wav: cannot open (file name too long)"), problems


@pytest.mark.real
def test_a_name_too_long_among_good_inputs_is_its_own_error_and_the_rest_are_transcribed(tmp_path):
    result = specvoice("transcribe", str(tmp_path / ("x" * 256 + ".wav")), str(JFK), "--model", "tiny.en",
                       "--method", "ar")
    lines = error_lines(result)
    assert result.returncode == 1 and "ask not what your country can do for you" in result.stdout.lower()
    assert len(lines) == 2 and lines[0].endswith("file name too long)"), lines
    assert lines[1] == "error: 1 of 2 inputs failed, 1 transcribed"


def test_empty_or_unreadable_stdin_says_so_without_python_objects():
    result = specvoice("transcribe", "-", "--model", "no-such-model", input="")
    assert_one_line_error(result)
    assert error_lines(result) == ["error: -: stdin is empty"]
    result = specvoice("transcribe", "-", "--model", "no-such-model", input="not audio" * 10)
    assert error_lines(result) == ["error: -: not readable audio (Format not recognised.)"]


def test_stdin_is_read_once_and_named_stdin():
    inputs, problems, _ = gather([Path("-")], Path("."), ["txt"], io.BytesIO(JFK.read_bytes()))
    assert problems == [] and [(i.name, str(i.stem)) for i in inputs] == [("-", "stdin")]
    assert inputs[0].seconds == pytest.approx(11.0, abs=0.01) and len(inputs[0].read()) == 176000


@pytest.mark.parametrize("make, words", [(lambda p: p.write_text("a file"), "cannot create the output folder"),
                                         (lambda p: None, "output folder is not writable")])
def test_output_folder_is_checked_before_decoding(tmp_path, make, words):
    blocker = tmp_path / "blocker"
    make(blocker)
    target = blocker / "out" if blocker.exists() else blocker
    if not blocker.exists():  # a folder we may not write to
        blocker.mkdir()
        blocker.chmod(0o500)
        if shutil.os.access(blocker, shutil.os.W_OK):
            pytest.skip("running as a user who may write anywhere")
    result = specvoice("transcribe", str(JFK), "-o", str(target), "--model", "no-such-model")
    assert_one_line_error(result, str(blocker), words)


def test_an_output_name_too_long_for_the_file_system_is_refused_up_front(tmp_path):
    name = "x" * 251 + ".wav"  # a legal (255-byte) input name whose .json output would not be
    wav(tmp_path / name, 4000)
    result = specvoice("transcribe", str(tmp_path / name), "-o", str(tmp_path / "out"), "-f", "json",
                       "--model", "no-such-model")
    assert_one_line_error(result, "longer than the file system allows")


def test_an_output_name_that_fits_is_written_through_a_temporary_name_cut_to_fit(tmp_path):
    from specvoice.files import write_atomic

    output = tmp_path / ("x" * 234 + ".json")  # the output of a 238-byte input name such as x...x.flac
    write_atomic(output, "{}")
    assert [p.name for p in tmp_path.iterdir()] == [output.name] and output.read_text() == "{}"


def test_markup_in_file_names_is_printed_literally(tmp_path):
    result = specvoice("transcribe", str(tmp_path / "[red]clip[/red].wav"))
    assert_one_line_error(result, "[red]clip[/red].wav: no such file")


def test_version():
    from importlib.metadata import version

    result = specvoice("--version")
    assert result.returncode == 0 and result.stdout == f"specvoice {version('specvoice')}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", version("specvoice"))


def test_language_names_and_codes():
    assert DecodingOptions(language="English").language == "en"
    assert DecodingOptions(language="german").language == "de" and DecodingOptions(language="de").language == "de"
    with pytest.raises(OptionError, match="unknown language 'Klingon'"):  # a usage error: exit 2
        DecodingOptions(language="Klingon")


def test_temperature_schedule_and_compression_ratio_as_openai_whisper():
    assert DecodingOptions().temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert DecodingOptions(temperature_increment_on_fallback=0).temperatures == (0.0,)
    assert DecodingOptions(temperature=0.5, temperature_increment_on_fallback=0.25).temperatures == (0.5, 0.75, 1.0)
    assert compression_ratio("") == 0.0
    assert compression_ratio("the same words " * 20) > 2.4 > compression_ratio("And so my fellow Americans, ask not.")


def test_method_auto_is_greedy_on_the_cpu_and_drafts_on_cuda_or_with_a_named_draft():
    auto = DecodingOptions()
    assert auto.method == "auto"
    assert auto.on("cpu").method == "ar" and auto.on("cuda").method == "specasr"
    assert auto.on("cpu", "tiny.en").method == "specasr"  # --draft given: auto never makes it an error
    assert DecodingOptions("spec").on("cpu").method == "spec"  # a method asked for is kept
    with pytest.raises(ValueError, match="auto"):
        auto.needs_draft


def test_specasr_drafts_short_chains_without_a_tree_on_the_cpu_unless_told_otherwise():
    specasr = DecodingOptions("specasr")
    with pytest.raises(ValueError, match="device"):
        specasr.draft_policy()
    cpu, cuda = specasr.on("cpu").draft_policy(), specasr.on("cuda").draft_policy()
    assert (cpu.confidence, cpu.tree_positions) == (0.8, 0)
    assert (cuda.confidence, cuda.tree_positions) == (0.4, 2)
    told = DecodingOptions("specasr", confidence=0.3, tree_positions=3).on("cpu").draft_policy()
    assert (told.confidence, told.tree_positions) == (0.3, 3)
    assert DecodingOptions("specasr", tree_positions=0).on("cuda").draft_policy().tree_positions == 0
    assert DecodingOptions("spec").draft_policy().max_tokens == 5  # spec's fixed chain needs no device
