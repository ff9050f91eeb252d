"""`specvoice bench --process`: the contestants' command lines decode as the in-process contestants do, each
command's memory is its own, runs alternate, and on real clips every command's figures and text come back."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import typer

from specvoice.audio import SAMPLE_RATE
from specvoice.bench import process
from specvoice.bench.contestants import plain_greedy
from specvoice.bench.faster_whisper_command import _arguments, decoding_options
from specvoice.bench.manifest import Clip
from specvoice.cli import _build, app
from specvoice.errors import SpecvoiceError
from specvoice.options import DecodingOptions, ModelOptions

from conftest import SPEECH

TWO_CLIPS = ("lhotse_LJ002-0020", "google_brooklyn_bridge")  # short, and of two different kinds


def clip(name: str, seconds: float, text: str = "hello world") -> Clip:
    return Clip(name, np.zeros(int(seconds * SAMPLE_RATE), np.float32), text, "read", False, Path(f"/a/{name}.wav"))


def parsed_transcribe(argv: list[str]) -> dict:
    """The values `specvoice transcribe` gets from these arguments (parsed, not run)."""
    command = typer.main.get_command(app).commands["transcribe"]
    return command.make_context("transcribe", argv).params


@pytest.mark.parametrize("method, seconds", [("ar", 5.0), ("specasr", 5.0), ("spec", 45.0)])
def test_the_transcribe_command_decodes_as_the_in_process_contestant(method, seconds, tmp_path):
    command = process.specvoice_command(method, "int8", "base", "tiny.en", "cpu", 3)
    target = process.Target("a", (clip("a", seconds),))
    argv = command.argv([Path("a.wav")], target.timestamps, tmp_path)
    assert argv[:4] == [sys.executable, "-m", "specvoice", "transcribe"]
    values = parsed_transcribe(argv[4:])
    decoding, models = _build(DecodingOptions, values), _build(ModelOptions, values)
    wanted = plain_greedy(method)
    for f in fields(DecodingOptions):
        got, want = getattr(decoding, f.name), getattr(wanted, f.name)
        if f.name == "timestamps":  # None decides per file: on over 30 s; the command is told
            assert got == (seconds > 30), f.name
        elif f.name == "no_speech_threshold":  # None: no window silent; 1: no probability is over it
            assert (want, got) == (None, 1.0)
        else:
            assert got == want, f.name
    assert models == ModelOptions(model="base", draft="tiny.en" if method != "ar" else None, device="cpu",
                                  dtype="int8", threads=3)
    # as click parsed them (typer makes the Path and the enum when it calls the command)
    assert Path(values["output_dir"]) == tmp_path and values["output_format"] == "txt"
    assert [Path(a) for a in values["audio"]] == [Path("a.wav")]


def test_the_faster_whisper_command_and_its_start_up(tmp_path):
    command = process.faster_whisper_command("int8", Path("/models/base"), "cpu", 2)
    argv = command.argv([Path("a.wav"), Path("b.wav")], True, tmp_path)
    assert argv[:3] == [sys.executable, "-m", "specvoice.bench.faster_whisper_command"]
    args = _arguments(argv[3:])
    assert (args.audio, args.model, args.compute_type, args.device, args.threads, args.timestamps, args.output_dir,
            args.load_only) == ([Path("a.wav"), Path("b.wav")], "/models/base", "int8", "cpu", 2, True, tmp_path, False)
    start = _arguments(command.argv([Path("a.wav")], False, tmp_path, load_only=True)[3:])
    assert start.load_only and start.model == "/models/base" and start.threads == 2
    # the options every faster-whisper contestant decodes with, in its process or in the bench's
    assert decoding_options(False) == dict(beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False,
                                           vad_filter=False, without_timestamps=True, no_speech_threshold=None)


def test_the_faster_whisper_command_refuses_to_run_without_files_or_a_folder():
    result = subprocess.run([sys.executable, "-m", "specvoice.bench.faster_whisper_command", "--model", "x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--output-dir" in result.stderr


def test_transformers_has_no_command_and_is_left_out_with_a_note():
    chosen, notes = process.commands(["ar", "specasr"], ["int8", "float32"], ["transformers"], "base", "tiny.en",
                                     "cpu", 2)
    assert [c.name for c in chosen] == ["ar-int8", "specasr-int8", "ar-float32", "specasr-float32"]
    assert [c.identical_to for c in chosen] == ["ar-int8", "ar-int8", "ar-float32", "ar-float32"]
    assert notes == ["transformers left out: it has no command of its own to time"]


def test_one_command_per_clip_and_one_for_all_of_them():
    short, long = clip("short", 5.0), clip("long", 40.0)
    goals, notes = process.targets([short, long])
    assert [(t.id, t.timestamps) for t in goals] == [("short", False), ("long", True), (process.FOLDER, True)]
    assert notes == []
    assert process.targets([short])[0] == [process.Target("short", (short,))]
    twin = Clip("twin", short.audio, "x", "read", False, Path("/b/short.wav"))
    goals, notes = process.targets([short, twin])
    assert len(goals) == 2 and "same name" in notes[0]


def test_contestants_alternate_run_by_run_after_warm_up_and_start_ups():
    a = process.Command("a", ("a",), (), None)
    b = process.Command("b", ("b",), (), None)
    goals, _ = process.targets([clip("x", 1.0), clip("y", 1.0)])
    steps = process.schedule([a, b], goals, warmup=1, repeat=2)
    seen = [(s.command.name, s.target.id, s.timed, s.load_only) for s in steps]
    assert seen == [("a", "x", False, False), ("b", "x", False, False)] + [
        (name, "x", True, True) for _ in range(2) for name in "ab"] + [
        (name, target, True, False) for target in ("x", "y", process.FOLDER) for _ in range(2) for name in "ab"]


def test_each_command_reports_its_own_peak_memory(tmp_path):
    """RUSAGE_CHILDREN's ru_maxrss is the largest child so far: a small command after a big one must not read the
    big one's peak."""
    big = process.run_timed([sys.executable, "-c", "x = b'x' * (300 * 2**20)"], tmp_path / "log")
    small = process.run_timed([sys.executable, "-c", "pass"], tmp_path / "log")
    assert big.peak_mib > 300 and small.peak_mib < 100 and small.seconds > 0


def test_a_failing_command_is_one_error_with_its_last_words(tmp_path):
    with pytest.raises(SpecvoiceError, match="exited with 3: no such model"):
        process.run_timed([sys.executable, "-c", "print('loading'); print('no such model'); raise SystemExit(3)"],
                          tmp_path / "log")


def test_the_summary_sets_process_time_less_start_up_beside_the_in_process_time():
    ours = process.Command("ar-int8", (), (), "ar-int8")
    peer = process.Command("faster-whisper-int8", (), (), None)
    x, y = clip("x", 1.0, "hello world"), clip("y", 1.0, "good day")
    goals, _ = process.targets([x, y])

    def measured(seconds: list[float], texts: dict) -> process.Measured:
        return process.Measured([process.Timing(s, 100.0 + s) for s in seconds], texts)

    outcomes = {
        "x": {"ar-int8": measured([3.0, 2.0, 4.0], {"x": "Hello world."}), "faster-whisper-int8": measured([1.0], {"x": "hello, world"})},
        "y": {"ar-int8": measured([3.0], {"y": "good day"}), "faster-whisper-int8": measured([2.0], {"y": "good night"})},
        process.FOLDER: {"ar-int8": measured([5.0], {"x": "hello world", "y": "good day"}),
                         "faster-whisper-int8": measured([2.5], {"x": "hello world", "y": "good day"})},
    }
    startups = {"faster-whisper-int8": [process.Timing(0.5, 50.0), process.Timing(0.7, 50.0), process.Timing(0.6, 50.0)]}
    in_process = {"ar-int8": {"x": 0.5, "y": 0.25}, "faster-whisper-int8": {"x": 0.25, "y": 0.5}}
    results = process.summarise([ours, peer], goals, startups, outcomes, in_process)
    each = {row["name"]: row for row in results["summary"][process.EACH_CLIP]}
    assert each["ar-int8"]["median_seconds"] == 6.0 and each["ar-int8"]["min_seconds"] == 5.0
    assert each["ar-int8"]["vs_faster_whisper"] == 0.5 and each["ar-int8"]["peak_mib"] == 104.0
    assert each["ar-int8"]["startup_seconds"] is None and each["ar-int8"]["in_process_seconds"] == 0.75
    assert each["faster-whisper-int8"]["startup_seconds"] == 0.6
    assert each["faster-whisper-int8"]["minus_startup_seconds"] == pytest.approx(3.0 - 2 * 0.6)
    assert each["faster-whisper-int8"]["identical_rate"] == 0.5 and each["faster-whisper-int8"]["wer"] == 0.25
    folder = {row["name"]: row for row in results["summary"][process.FOLDER]}
    assert folder["faster-whisper-int8"]["minus_startup_seconds"] == pytest.approx(2.5 - 0.6)
    assert folder["ar-int8"]["vs_faster_whisper"] == 0.5 and folder["faster-whisper-int8"]["identical_rate"] == 1.0
    assert folder["ar-int8"]["in_process_seconds"] == 0.75
    table = process.markdown({"summary": results["summary"]})
    assert "| faster-whisper-int8 | 2 | 3.00 | 3.00 | 1.00 | 102 | 0.60 | 1.80 | 0.75 | 25.00% | 50% |" in table


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory, manifest) -> Path:
    rows = [dict(row, audio=str(SPEECH / row["audio"])) for row in manifest if row["id"] in TWO_CLIPS]
    assert len(rows) == 2
    path = tmp_path_factory.mktemp("speech") / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.real
def test_bench_process_times_every_command_on_real_clips(two_clips, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "specvoice", "bench", "--process", "--manifest", str(two_clips),
                             "--model", "tiny.en", "--draft", "tiny.en", "--methods", "ar,specasr", "--peers",
                             "faster-whisper-int8,transformers", "--warmup", "0", "--threads", "2", "-o", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "note: transformers left out" in result.stderr and "### all clips" in result.stdout
    data = json.loads((out / "results.json").read_text())
    names = ["ar-int8", "specasr-int8", "faster-whisper-int8"]
    for group in (process.EACH_CLIP, process.FOLDER):
        rows = data["summary"][group]
        assert [row["name"] for row in rows] == names
        for row in rows:
            assert row["median_seconds"] > 0 and row["peak_mib"] > 0 and row["in_process_seconds"] > 0, row
            assert row["identical_rate"] == 1.0, row  # ar's text from every command, faster-whisper's included
        assert all(row["startup_seconds"] > 0 for row in rows) and rows[2]["vs_faster_whisper"] == 1.0
    for target in data["targets"]:
        texts = {name: row["texts"] for name, row in target["results"].items()}
        assert texts["ar-int8"] == texts["specasr-int8"] and all(texts["ar-int8"].values()), target["id"]
    assert (out / "in-process" / "results.json").is_file()
    assert "| faster-whisper-int8 |" in (out / "results.md").read_text()
