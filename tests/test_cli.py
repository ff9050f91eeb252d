"""The command line as a user meets it: bad input gives one line and a non-zero exit, outputs parse back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import SPEECH


def specvoice(*args: str, cwd: Path | None = None, env: dict | None = None, input: str | None = None
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specvoice", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900, env=None if env is None else {**os.environ, **env}, input=input)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


COMMANDS = ("transcribe", "listen", "synthesize", "bench", "distill")


def test_help_lists_only_working_commands():
    result = specvoice("--help")
    assert result.returncode == 0
    listed = result.stdout.split("Commands:\n")[1]
    assert set(re.findall(r"^  (\w+)\s{2,}", listed, re.MULTILINE)) == set(COMMANDS)


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("transcribe", "--help"), ("synthesize", "--help")])
def test_version_and_help_import_no_pytorch(args):
    """Issue 25: `specvoice --version` took 1.6-2.1 s, nearly all of it importing PyTorch."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "specvoice", *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "specvoice.cli" in imported  # the listing is read right
    assert not imported & {"torch", "transformers", "tokenizers"}


@pytest.mark.parametrize("args, code", [(["--version"], 0), (["transcribe", "/no/such.wav"], 1),
                                         (["transcribe", "--bogus"], 2)])
def test_the_command_skips_the_teardown_but_not_the_exit_handlers(args, code):
    """`specvoice` ends with os._exit after main(): no teardown, but exit handlers still run (after main's
    output), everything printed reaches a pipe, and the exit status is main's."""
    script = ("import atexit, sys; from specvoice import cli; atexit.register(print, 'exit handler ran'); "
              "Teardown = type('Teardown', (), {'__del__': lambda self: print('torn down')}); kept = Teardown(); "
              f"sys.argv = ['specvoice', *{args!r}]; cli.run(); print('never reached')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert result.stdout.endswith("exit handler ran\n") and "never reached" not in result.stdout
    assert "torn down" not in result.stdout  # the interpreter's teardown would have deleted `kept`
    if code == 0:
        assert result.stdout.startswith("specvoice ")
    else:
        assert result.stderr.startswith("error: ")


def command_flags(command: str, shown: bool = False) -> dict[str, str]:
    """Every flag of a command (--x, --no-x, -x) and the parameter it sets; shown: only those --help shows."""
    import typer

    from specvoice.cli import app

    params = typer.main.get_command(app).commands[command].params
    return {flag: param.name for param in params if not (shown and getattr(param, "hidden", False))
            for flag in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_shows_every_option_name_whole(command):
    """Issue 27: rich's tables cut 13 of transcribe's option names at 80 columns (--temperature-i…) and showed
    plain flags as taking <bool>; the shared --dtype help spoke of synthesize."""
    result = specvoice(command, "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text and "<bool>" not in text
    for flag in command_flags(command, shown=True):
        if flag.startswith("--"):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), flag
    if command == "transcribe":
        assert "Whisper's decoding rules:" in text and "synthesize" not in text


def test_bench_help_names_only_options_the_bench_has():
    """Issue 25: bench's --speed said "--input: replay pace", and bench has no --input; live transcription was a
    --stream flag beside --task (now --task stream)."""
    result = specvoice("bench", "--help", env={"COLUMNS": "1000"})  # wide: no flag is cut at a line's end
    assert result.returncode == 0, result.stderr
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", result.stdout))
    own = {*command_flags("bench"), "--help"}
    assert "--manifest" in mentioned and mentioned <= own, mentioned - own
    assert "--task <transcribe|stream|tts>" in result.stdout and "Other options:\n  --help" in result.stdout


def test_one_meaning_per_flag_across_the_commands():
    """--device is where the models run, -f the output format, wherever they exist; the microphone is
    --input-device and synthesize's text file --text-file (issue 27)."""
    flags = {command: command_flags(command) for command in COMMANDS}
    for command, own in flags.items():
        assert own.get("--device", "device") == "device", command
        assert own.get("-f", "output_format") == "output_format", command
        assert "--model-device" not in own and "--file" not in own, command
    assert all("--device" in flags[command] for command in ("transcribe", "listen", "synthesize", "bench"))
    assert flags["listen"]["--input-device"] == "input_device"
    assert flags["synthesize"]["--text-file"] == "text_file"


@pytest.mark.parametrize("args, words", [
    (("transcribe", "x.wav", "--max-draft", "999"), ("--max-draft", "64")),
    (("transcribe", "x.wav", "--method", "fast"), ("--method", "'fast' is not one of")),
    (("transcribe", "x.wav", "--threads", "0"), ("--threads",)),
    (("transcribe", "x.wav", "--language", "Klingon"), ("unknown language 'Klingon'",)),
    (("transcribe", "x.wav", "--word-timestamps", "--no-timestamps"), ("--word-timestamps", "--no-timestamps")),
    (("transcribe", "x.wav", "-f", "srt"), ("--output-dir",)),
    (("transcribe", "x.wav", "--methd", "ar"), ("--methd",)),
    (("transcribe",), ("audio",)),
    (("listen", "--step", "0"), ("--step",)),
    (("listen", "--input", "x.wav", "--input-device", "2"), ("--input-device", "--input")),
    (("synthesize", "hi", "--text-file", "x.txt", "-o", "x.wav"), ("--text-file",)),
    (("synthesize", "hi", "-m", "hibari", "--method", "ssd", "-o", "x.wav"), ("not autoregressive",)),
    (("transcribbe", "x.wav"), ("transcribbe",)),
    (("bench", "--manifest", "m.jsonl", "--stream"), ("--stream",)),
    (("bench", "--manifest", "m.jsonl", "--task", "tts", "--process"), ("--process", "--task transcribe")),
])
def test_usage_errors_are_one_line(args, words):
    """Out-of-range values, unknown choices, values the options refuse (a language, a combination), unknown
    options, a missing argument: one line, exit 2 (typer's rule, for every command), no pydantic wording."""
    result = specvoice(*args)
    assert_one_line_error(result, *words)
    assert result.returncode == 2 and "Value error" not in result.stderr


def test_missing_file(tmp_path):
    assert_one_line_error(specvoice("transcribe", str(tmp_path / "nope.wav")), "nope.wav", "no such file")


def test_unknown_model(tmp_path):
    assert_one_line_error(specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "--model", "whisper-huge-9"),
                          "unknown model", "whisper-huge-9")


def test_unknown_draft_names_every_kind_of_draft():
    assert_one_line_error(specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "--method", "spec", "--draft", "tiny"),
                          "unknown draft 'tiny'", "shallow", "specvoice distill", "tiny.en")


def test_folder_that_is_not_whisper(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert_one_line_error(specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "--model", str(tmp_path)),
                          "not a Whisper model folder")


@pytest.mark.real
@pytest.mark.parametrize("content, words", [(b"RIFF\x00\x00garbage" * 10, "not readable audio"), (None, "empty")])
def test_bad_audio_leaves_no_output(tmp_path, content, words):
    bad = tmp_path / "bad.wav"
    if content is None:
        soundfile.write(bad, np.zeros(0, dtype=np.float32), 16000)
    else:
        bad.write_bytes(content)
    out = tmp_path / "out"
    result = specvoice("transcribe", str(bad), "-o", str(out), "--method", "ar")
    assert_one_line_error(result, "bad.wav", words)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.real
def test_default_model_transcribes_jfk(tmp_path):
    result = specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "-o", str(tmp_path), "-f", "all")
    assert result.returncode == 0, result.stderr
    assert "ask not what your country can do for you" in result.stdout
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".srt", ".txt", ".vtt"]
    record = json.loads((tmp_path / "whisper_jfk.json").read_text())
    # --method auto: plain greedy on the CPU (no draft loaded), specasr with its default draft on CUDA
    on_cpu = not torch.cuda.is_available()
    assert (record["method"], record["draft"]) == (("ar", None) if on_cpu else ("specasr", "tiny.en"))


@pytest.mark.parametrize("device, draft, seconds, method", [
    ("cpu", None, 0.0, "ar"), ("cpu", None, 59.9, "ar"), ("cpu", None, 60.0, "specasr"),
    ("cpu", "tiny.en", 0.0, "specasr"), ("cuda", None, 0.0, "specasr"),
])
def test_auto_drafts_on_cuda_with_a_named_draft_or_on_the_cpu_for_a_minute_of_audio(device, draft, seconds, method):
    from specvoice.options import AUTO_DRAFT_SECONDS, DecodingOptions

    assert AUTO_DRAFT_SECONDS == 60.0
    assert DecodingOptions().on(device, draft, seconds).method == method


@pytest.mark.parametrize("model, draft, shallow", [("base", None, True), ("base", "tiny.en", False),
                                                   ("tiny.en", None, False)])
def test_only_a_model_with_a_shipped_shallow_draft_drafts_shallow_by_default(model, draft, shallow):
    from specvoice.options import ModelOptions

    assert ModelOptions(model=model, draft=draft, device="cpu").drafts_shallow() is shallow


@pytest.mark.real
def test_auto_drafts_a_minute_of_audio_on_the_cpu_with_the_shallow_draft(tmp_path):
    """Two copies of a 35.5 s file in one command are over a minute: auto runs specasr with the shallow draft
    there; one copy alone is ar (the draft's loading would cost more than it saves)."""
    if torch.cuda.is_available():
        pytest.skip("on CUDA auto drafts whatever the length")
    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.wav"):
        (tmp_path / "in" / name).symlink_to(SPEECH / "joinly_OSR_us_000_0034.wav")
    for given, files, method, draft in ((tmp_path / "in", 2, "specasr", "shallow"),
                                        (tmp_path / "in" / "a.wav", 1, "ar", None)):
        out = tmp_path / f"out-{method}"
        result = specvoice("transcribe", str(given), "-o", str(out), "-f", "json")
        assert result.returncode == 0, result.stderr
        records = [json.loads(path.read_text()) for path in sorted(out.rglob("*.json"))]
        assert len(records) == files and {(r["method"], r["draft"]) for r in records} == {(method, draft)}


@pytest.mark.real
def test_load_only_loads_the_models_and_exits_without_transcribing(tmp_path):
    """`--load-only` (hidden: bench --process times each command's start-up with it) loads and builds the models
    (the draft too), then exits 0 having transcribed nothing; bad input is still refused first."""
    result = specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "-o", str(tmp_path), "--load-only",
                       "--method", "specasr", "--draft", "shallow")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []
    assert "--load-only" not in specvoice("transcribe", "--help").stdout
    assert_one_line_error(specvoice("transcribe", str(tmp_path / "missing.wav"), "--load-only"), "missing.wav")
    assert_one_line_error(specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "--load-only", "--draft",
                                    "nonesuch.safetensors"), "nonesuch.safetensors")


@pytest.mark.real
def test_txt_is_the_same_whatever_other_formats_are_written(tmp_path):
    """One decode, timestamped as openai-whisper's, for every format (issue 27: -f all switched timestamps on
    and changed the words of the txt, "Americans, ask" against "Americans ask")."""
    alone = specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "-o", str(tmp_path / "txt"))
    every = specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "-o", str(tmp_path / "all"), "-f", "all")
    assert alone.returncode == every.returncode == 0, alone.stderr + every.stderr
    txt = (tmp_path / "txt/whisper_jfk.txt").read_text()
    assert txt == (tmp_path / "all/whisper_jfk.txt").read_text() and alone.stdout == every.stdout
    segments = json.loads((tmp_path / "all/whisper_jfk.json").read_text())["segments"]
    assert txt.splitlines() == [s["text"].strip() for s in segments]


@pytest.mark.real
def test_long_form_with_timestamps_parses_back(tmp_path, manifest):
    row = next(r for r in manifest if r["seconds"] > 200)
    result = specvoice("transcribe", str(SPEECH / row["audio"]), "-o", str(tmp_path), "-f", "all", "--stats")
    assert result.returncode == 0, result.stderr
    stem = Path(row["audio"]).stem
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    segments = data["segments"]
    assert len(segments) > 10
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)
    assert all(s["start"] <= s["end"] for s in segments)
    assert segments[-1]["end"] <= row["seconds"] + 1.0 and segments[-1]["end"] > row["seconds"] - 30
    assert all(s["tokens"] for s in segments)

    srt = (tmp_path / f"{stem}.srt").read_text().strip().split("\n\n")
    assert len(srt) == len(segments)
    for number, block in enumerate(srt, 1):
        index, times, *text = block.splitlines()
        assert int(index) == number and text
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", times)

    vtt = (tmp_path / f"{stem}.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt.strip().split("\n\n")[1:]
    assert len(cues) == len(segments)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", c.splitlines()[0]) for c in cues)

    words = set(re.findall(r"[a-z]+", data["text"].lower()))
    reference = set(re.findall(r"[a-z]+", row["text"].lower()))
    assert len(words & reference) > 0.8 * len(reference)


@pytest.mark.real
def test_word_timestamps_in_every_format(tmp_path):
    """json segments carry their words; srt and vtt keep one cue per segment, timed as the json segments."""
    result = specvoice("transcribe", str(SPEECH / "whisper_jfk.wav"), "--method", "ar", "--word-timestamps",
                       "-o", str(tmp_path), "-f", "all")
    assert result.returncode == 0, result.stderr
    segments = json.loads((tmp_path / "whisper_jfk.json").read_text())["segments"]
    assert segments and all(s["words"] for s in segments)
    for s in segments:
        assert "".join(w["word"] for w in s["words"]) == s["text"]
        assert (s["start"], s["end"]) == (s["words"][0]["start"], s["words"][-1]["end"])
        assert all(set(w) == {"word", "start", "end", "probability"} and 0 <= w["probability"] <= 1 for w in s["words"])

    def seconds(clock: str) -> float:
        hours, minutes, rest = clock.replace(",", ".").split(":")
        return 3600 * int(hours) + 60 * int(minutes) + float(rest)

    for suffix, cues in (("srt", lambda text: [b.splitlines()[1] for b in text.strip().split("\n\n")]),
                         ("vtt", lambda text: [b.splitlines()[0] for b in text.strip().split("\n\n")[1:]])):
        text = (tmp_path / f"whisper_jfk.{suffix}").read_text()
        times = [seconds(clock) for cue in cues(text) for clock in cue.split(" --> ")]
        assert times == pytest.approx([t for s in segments for t in (s["start"], s["end"])]), suffix


def test_stats_line_says_what_each_method_did():
    from types import SimpleNamespace

    from specvoice.cli import _stats_line
    from specvoice.engine.stats import DecodeStats

    result = SimpleNamespace(stats=DecodeStats(tokens=40, target_passes=40), windows=1, retries=0, silent_windows=0,
                             encoder_seconds=0.3, decoder_seconds=0.2)
    ar = _stats_line(result, "ar")
    assert "40 tokens in 40 target passes (one per token)" in ar and "accept" not in ar and "draft" not in ar
    result.stats = DecodeStats(tokens=40, target_passes=5, draft_passes=12, drafted=60, accepted=35)
    dllm = _stats_line(result, "dllm")
    assert "5 refinement rounds (8.00 tokens/round)" in dllm and "acceptance" not in dllm
    specasr = _stats_line(result, "specasr")
    assert "(8.00 tokens/pass)" in specasr and "35 of 60 drafted tokens kept" in specasr
    assert "windows: 1 decoded, 0 retried hotter, 0 silent" in specasr
