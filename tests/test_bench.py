"""`specvoice bench`: manifests with bad lines, the interleaved schedule, the metrics, the written reports, and
the whole bench on real clips with the real tiny.en (`real`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from specvoice.audio import SAMPLE_RATE
from specvoice.bench.contestants import NORMALISED_TEXT, TOKENS, Run
from specvoice.bench.manifest import Clip, read_manifest
from specvoice.bench.memory import PeakMemory
from specvoice.bench.report import write_reports
from specvoice.bench.runner import measure, schedule
from specvoice.bench.suite import method_names, peer_names, run_bench
from specvoice.bench.summary import ALL_CLIPS, summarise
from specvoice.errors import SpecvoiceError

from conftest import SPEECH

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TWO_CLIPS = ("lhotse_LJ002-0020", "google_brooklyn_bridge")  # short, and of two different kinds


def clip(name: str, seconds: float, kind: str = "read", text: str = "hello world") -> Clip:
    return Clip(name, np.zeros(int(seconds * SAMPLE_RATE), np.float32), text, kind, False)


class FakeContestant:
    """Takes `seconds_per_audio_second` per second of audio and logs its calls, so metrics can be predicted."""

    def __init__(self, name, log, seconds_per_audio_second, text="hello world", tokens=(1, 2), passes=2,
                 identical_by=TOKENS, longest=None, peer=False, identical_to=None):
        self.name, self.log, self.rate, self.peer = name, log, seconds_per_audio_second, peer
        self.identical_to = identical_to
        self.text, self.tokens, self.passes = text, list(tokens), passes
        self.identical_by, self.longest = identical_by, longest

    def skip_reason(self, seconds):
        return "too long" if self.longest and seconds > self.longest else None

    def run(self, audio):
        self.log.append(self.name)
        seconds = self.rate * len(audio) / SAMPLE_RATE
        return Run(self.text, self.tokens, seconds, seconds / 2, len(self.tokens) + 1, self.passes)


def fake_field(log):
    return [
        FakeContestant("ar", log, 1.0, passes=3),
        FakeContestant("fast", log, 0.5, passes=1),
        FakeContestant("wrong", log, 2.0, tokens=(1, 3), text="hello word"),
        FakeContestant("peer", log, 0.25, text="Hello, world!", tokens=(), identical_by=NORMALISED_TEXT, longest=5,
                       peer=True),
    ]


def write_wav(path: Path, seconds: float = 1.0) -> None:
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)
    soundfile.write(str(path), tone.astype(np.float32), SAMPLE_RATE)


def test_manifest_reports_each_bad_line_and_keeps_the_rest(tmp_path):
    write_wav(tmp_path / "a.wav")
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    lines = [
        {"id": "one", "audio": "a.wav", "text": "Hello there."},
        "{not json",
        [1, 2],
        {"id": "x", "audio": "a.wav"},
        {"id": "x", "audio": "missing.wav", "text": "hello"},
        {"id": "x", "audio": "a.wav", "text": "   "},
        {"id": "x", "audio": "a.wav", "text": "..."},
        {"id": "one", "audio": "a.wav", "text": "again"},
        "",
        {"id": "x", "audio": "garbage.wav", "text": "hello"},
        {"id": "two", "audio": str(tmp_path / "a.wav"), "text": "bye", "kind": "tone", "noisy": True},
        {"id": "three", "audio": "a.wav", "text": "after the limit"},
        "{also bad but after the limit",
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")

    clips, skipped = read_manifest(manifest, limit=2)

    assert [c.id for c in clips] == ["one", "two"]
    assert clips[0].seconds == pytest.approx(1.0) and clips[0].kind == "unknown"
    assert clips[1].group == "tone (noisy)"
    reasons = {s.line: s.reason for s in skipped}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert "invalid JSON" in reasons[2]
    assert "JSON object" in reasons[3]
    assert "missing field text" in reasons[4]
    assert "no such file" in reasons[5]
    assert reasons[6] == reasons[7] == "empty reference text"
    assert "duplicate id" in reasons[8]
    assert "not readable audio" in reasons[10]
    assert [c.id for c in read_manifest(manifest)[0]] == ["one", "two", "three"]


def test_missing_manifest_is_one_clear_error(tmp_path):
    with pytest.raises(SpecvoiceError, match="no such manifest"):
        read_manifest(tmp_path / "nope.jsonl")


def test_method_and_peer_choices():
    assert method_names("specasr,spec") == ["ar", "specasr", "spec"]  # ar always, first: it is the reference
    assert method_names("all")[0] == "ar"
    assert peer_names("none") == [] and peer_names("all") == ["transformers", "faster-whisper-int8",
                                                              "faster-whisper-float32"]
    assert peer_names("faster-whisper,transformers") == ["faster-whisper-int8", "faster-whisper-float32",
                                                         "transformers"]
    assert peer_names("faster-whisper-int8") == ["faster-whisper-int8"]
    with pytest.raises(SpecvoiceError, match="unknown method turbo"):
        method_names("ar,turbo")
    with pytest.raises(SpecvoiceError, match="unknown peer whisper.cpp"):
        peer_names("whisper.cpp")


def test_every_timed_run_follows_a_run_of_ar_on_the_same_clip():
    log = []
    field = fake_field(log)
    clips = [clip("long", 8.0), clip("short", 2.0)]
    steps = schedule(clips, field, warmup=1, repeat=2)
    # warm-up: everyone once, the peer on the first clip it accepts
    assert [(s.contestant.name, s.clip.id, s.timed) for s in steps[:4]] == [
        ("ar", "long", False), ("fast", "long", False), ("wrong", "long", False), ("peer", "short", False)]
    timed = [(s.contestant.name, s.clip.id) for s in steps[4:]]
    assert timed[:8] == [("ar", "long"), ("fast", "long")] * 2 + [("ar", "long"), ("wrong", "long")] * 2
    assert timed[8:16] == [("ar", "short"), ("fast", "short")] * 2 + [("ar", "short"), ("wrong", "short")] * 2
    # the peer comes after every method on every clip, and is skipped on the long clip (no ar run spent there)
    assert timed[16:] == [("ar", "short"), ("peer", "short")] * 2
    assert all(s.reference_for == timed[i + 1][0] for i, s in enumerate(steps[4:]) if s.contestant.name == "ar")


def test_metrics_from_interleaved_runs(tmp_path):
    log = []
    field = fake_field(log)
    clips = [clip("long", 8.0, kind="lecture"), clip("short", 2.0, kind="read", text="hello world again")]
    outcomes = measure(schedule(clips, field, warmup=0, repeat=1), field, clips, PeakMemory(torch.device("cpu")))
    results = summarise(clips, field, outcomes)
    summary = {row["name"]: row for row in results["summary"]}

    assert summary["ar"]["speedup"] == 1.0 and summary["ar"]["identical_rate"] == 1.0
    assert summary["fast"]["speedup"] == pytest.approx(2.0) and summary["fast"]["decoder_speedup"] == pytest.approx(2.0)
    assert summary["wrong"]["speedup"] == pytest.approx(0.5) and summary["wrong"]["identical_rate"] == 0.0
    assert summary["fast"]["rtf"] == pytest.approx(0.5)
    assert summary["fast"]["passes_per_token"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["fast"]["accepted_length"] == pytest.approx(3.0)
    assert summary["ar"]["passes_per_token"] == pytest.approx(1.0)
    # WER pools words over clips: 1 error ("again" missing) in 5 reference words
    assert summary["ar"]["wer"] == pytest.approx(0.2)
    assert summary["wrong"]["wer"] == pytest.approx(3 / 5)
    # the peer ran only on the short clip, and is compared by normalised text
    assert summary["peer"]["clips"] == 1 and summary["peer"]["skipped_clips"] == 1
    assert summary["peer"]["identical_rate"] == 1.0 and summary["peer"]["identical_by"] == NORMALISED_TEXT
    assert summary["peer"]["speedup"] == pytest.approx(4.0)
    assert results["clips"][0]["results"]["peer"] == {"skipped": "too long"}
    assert results["speedup_by_group"]["peer"] == {ALL_CLIPS: 4.0, "lecture": None, "read": 4.0}
    assert results["speedup_by_group"]["fast"]["lecture"] == pytest.approx(2.0)


def test_reports_are_written_and_parse(tmp_path):
    log = []
    field = fake_field(log)
    clips = [clip("long", 8.0, kind="lecture"), clip("short", 2.0)]
    results = run_bench(clips, field, device=torch.device("cpu"), precisions=["float32"], warmup=0, repeat=1,
                        command="specvoice bench --manifest m.jsonl", settings={"model": "fake", "draft": "fake"},
                        notes=["a peer was skipped"], progress=False)
    written, notes = write_reports(results, tmp_path / "out")
    assert not notes
    assert {p.name for p in written} == {"results.json", "results.md", "chart.png"}
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["command"] == "specvoice bench --manifest m.jsonl" and data["machine"]["torch"]
    assert [row["name"] for row in data["summary"]] == ["ar", "fast", "wrong", "peer"]
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "specvoice bench --manifest m.jsonl" in markdown and "a peer was skipped" in markdown
    assert "| fast | 2 |" in markdown and "![" in markdown
    assert "peer left out 1 clip (long): too long." in markdown
    assert (tmp_path / "out" / "chart.png").read_bytes().startswith(PNG_MAGIC)


def specvoice(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specvoice", *args], capture_output=True, text=True, timeout=900)


def test_cli_with_no_usable_clip_warns_per_line_then_fails(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"id": "a", "audio": "gone.wav", "text": "hi"}\nnot json\n')
    result = specvoice("bench", "--manifest", str(manifest), "-o", str(tmp_path / "out"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("warning:") and ":1:" in lines[0] and "no such file" in lines[0]
    assert lines[1].startswith("warning:") and ":2:" in lines[1] and "invalid JSON" in lines[1]
    assert lines[2].startswith("error:") and "no usable clips" in lines[2] and len(lines) == 3
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def two_clip_manifest(tmp_path_factory, manifest):
    """Two real clips and one bad line, in a manifest of their own."""
    folder = tmp_path_factory.mktemp("speech")
    rows = [row for row in manifest if row["id"] in TWO_CLIPS]
    assert len(rows) == 2
    for row in rows:
        shutil.copy(SPEECH / row["audio"], folder / row["audio"])
    lines = [json.dumps(rows[0]), '{"id": "broken"', json.dumps(rows[1])]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "manifest.jsonl"


@pytest.mark.real
def test_bench_on_two_real_clips_with_every_method_and_peer(two_clip_manifest, tmp_path):
    from specvoice.bench.suite import contestants
    from specvoice.models import load_whisper

    torch.set_num_threads(2)
    clips, skipped = read_manifest(two_clip_manifest)
    assert [s.line for s in skipped] == [2] and len(clips) == 2
    # tiny.en drafting for itself: small and fast, and the pair shares a vocabulary, so assisted generation runs
    target, draft = load_whisper("tiny.en"), load_whisper("tiny.en")
    int8 = load_whisper("tiny.en", int8=True)
    chosen, notes = contestants(method_names("spec,specasr"), peer_names("all"), {"float32": target, "int8": int8},
                                draft, "tiny.en")
    assert notes == []
    assert [c.name for c in chosen] == ["ar-float32", "spec-float32", "specasr-float32", "ar-int8", "spec-int8",
                                        "specasr-int8", "transformers", "transformers-assisted",
                                        "faster-whisper-int8", "faster-whisper-float32"]

    results = run_bench(clips, chosen, device=target.device, precisions=["float32", "int8"], warmup=0, repeat=1,
                        command="specvoice bench (test)", settings={"model": "tiny.en", "draft": "tiny.en"},
                        skipped_lines=skipped, progress=False)
    written, _ = write_reports(results, tmp_path)

    summary = {row["name"]: row for row in results["summary"]}
    # exact methods: the tokens of ar at their own precision (transformers: ar at float32, the reference)
    for name in ("spec-float32", "specasr-float32", "spec-int8", "specasr-int8", "transformers"):
        assert summary[name]["identical_rate"] == 1.0, name
    assert summary["specasr-int8"]["identical_to"] == "ar-int8"
    # a draft equal to the target is always accepted (ar takes 1 pass a token): spec's chains of 5 keep up to 6
    # tokens a pass (0.46 passes a token on these two short clips); specasr's end at the first token the draft is
    # less than 0.8 sure of on the CPU (its default there), so they keep fewer (0.54)
    for name, most in (("spec-float32", 0.5), ("transformers-assisted", 0.5), ("specasr-float32", 0.75)):
        assert summary[name]["passes_per_token"] < most, (name, summary[name]["passes_per_token"])
    for row in summary.values():
        assert row["clips"] == 2 and 0.0 <= row["wer"] <= 0.5, row
        assert row["seconds"] > 0 and row["rtf"] > 0 and row["speedup"] > 0 and row["peak_mib"] > 0
    assert summary["faster-whisper-int8"]["decoder_seconds"] is None
    # faster-whisper runs in a process of its own (its thread pool would otherwise slow PyTorch, and itself):
    # its peak memory is that process's, far below the bench's with all its PyTorch models loaded
    peer = next(c for c in chosen if c.name == "faster-whisper-int8")
    assert peer._worker.pid != os.getpid() and peer._worker.is_alive()
    assert summary["faster-whisper-int8"]["peak_mib"] < summary["ar-float32"]["peak_mib"]
    assert set(results["speedup_by_group"]["specasr-float32"]) == {ALL_CLIPS, "ljspeech", "other"}
    assert skipped[0].reason.startswith("invalid JSON")
    assert results["skipped_lines"] == [{"line": 2, "reason": skipped[0].reason}]
    assert f"- manifest line 2 skipped: {skipped[0].reason}" in (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["summary"] == results["summary"]
    assert (tmp_path / "chart.png").read_bytes().startswith(PNG_MAGIC)
    assert "transformers-assisted" in (tmp_path / "results.md").read_text()
    assert len(written) == 3


@pytest.mark.real
def test_bench_command_writes_table_json_markdown_and_chart(two_clip_manifest, tmp_path):
    out = tmp_path / "out"
    result = specvoice("bench", "--manifest", str(two_clip_manifest), "--model", "tiny.en", "--draft", "tiny.en",
                       "--methods", "specasr", "--peers", "none", "--warmup", "0", "--threads", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "specasr" in result.stdout and "speed-up" in result.stdout
    assert "manifest.jsonl:2: invalid JSON" in result.stderr
    data = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in data["summary"]] == ["ar-int8", "specasr-int8"]  # the CPU default precision
    assert data["summary"][1]["identical_rate"] == 1.0
    assert data["command"].startswith("specvoice bench --manifest")
    assert "| specasr-int8 | 2 |" in (out / "results.md").read_text()
    assert (out / "chart.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.real
def test_bench_drafts_with_the_draft_transcribe_would_use(two_clip_manifest, tmp_path):
    """No --draft: the methods draft as `transcribe --method specasr` does (on the CPU the shallow draft that ships
    for base), not with a draft of the bench's own."""
    out = tmp_path / "out"
    result = specvoice("bench", "--manifest", str(two_clip_manifest), "--methods", "specasr", "--peers", "none",
                       "--limit", "1", "--warmup", "0", "--threads", "2", "--device", "cpu", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["draft"] == "shallow"
    assert data["summary"][1]["identical_rate"] == 1.0


def test_the_stream_summary_measures_streaming_against_both_offline_transcripts():
    from specvoice.bench.stream import WAYS, StreamRun, markdown
    from specvoice.bench.stream import summarise as summarise_stream

    # clip a: the stream drops "the" as the timestamped offline decode does; the untimed one keeps it
    references = {"a": ("with the thousands of them", "with the thousands of them", "with thousands of them"),
                  "b": ("hello world", "hello world", "hello world")}
    texts = {"a": "with thousands of them", "b": "hello world"}
    runs = [StreamRun(way, clip, texts[clip], [0.5, 1.5], [4, 2], [0.1, 0.1], 1.0, 4.0)
            for way in WAYS for clip in references]
    rows = {row["way"]: row for row in summarise_stream({"runs": runs, "references": references})}
    row = rows["ar"]
    assert row["wer"] == pytest.approx(1 / 7)
    assert row["offline_wer"] == 0.0 and row["timestamped_wer"] == pytest.approx(1 / 7)
    assert row["wer_vs_timestamped"] == 0.0
    assert row["worst_clip_wer_gap"] == pytest.approx(1 / 5) and row["worst_clip_wer_gap_timestamped"] == 0.0
    assert row["delay_median"] == pytest.approx(1.0) and row["passes_per_update"] == pytest.approx(3.0)
    assert row["rtf"] == pytest.approx(0.25) and row["same_as_ar"] == 1.0
    table = markdown(list(rows.values())).splitlines()
    assert len(table) == 2 + len(WAYS) and all(line.count("|") == 16 for line in table)
