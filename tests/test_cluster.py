"""`transcribe --workers N` on Ray: the same files as one process, nothing lost when a worker dies, resumable,
stopped cleanly by Ctrl-C, one error line per bad file, and the same run against a separately started cluster.

Each run is a real command in a subprocess that starts (and stops) its own local Ray; the cluster test starts a
head and a second node with `ray start` and stops both after."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import SPEECH, interruptible
from test_cli import assert_one_line_error, specvoice

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'specvoice[cluster]'")
CLIPS = ("whisper_jfk.wav", "google_brooklyn_bridge.wav", "deepspeech_LDC93S1.wav")
MODEL = ("-m", "tiny.en", "--method", "ar", "-f", "all")
WORKING = "ray::TranscribeWorker.transcribe"  # a worker's process title while it decodes (Ray sets it)
TIMINGS = ("encoder_seconds", "decoder_seconds")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for name in CLIPS:
        if not (SPEECH / name).exists():
            pytest.skip(f"{SPEECH / name} not found (the shared speech clips)")
        shutil.copy(SPEECH / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def one_process(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    result = specvoice("transcribe", str(clips), "-o", str(out), *MODEL)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def with_bad_file(clips, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """Two workers on the clips and a file that is not audio."""
    broken = tmp_path_factory.mktemp("broken") / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    out = tmp_path_factory.mktemp("two")
    return specvoice("transcribe", str(clips), str(broken), "-o", str(out), *MODEL, "--workers", "2"), out


def without_timings(path: Path) -> dict:
    data = json.loads(path.read_text())
    for name in TIMINGS:
        del data["stats"][name]
    return data


def assert_same_outputs(expected: Path, got: Path) -> None:
    """Byte for byte, but for the json's timings."""
    names = sorted(p.name for p in expected.iterdir())
    assert names == sorted(p.name for p in got.iterdir())
    assert len(names) == 4 * len(CLIPS)
    for name in names:
        if name.endswith(".json"):
            assert without_timings(got / name) == without_timings(expected / name), name
        else:
            assert (got / name).read_bytes() == (expected / name).read_bytes(), name


def summary(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("transcribed "))


@pytest.mark.real
@needs_ray
def test_two_workers_write_what_one_process_writes(with_bad_file, one_process):
    result, out = with_bad_file
    assert_same_outputs(one_process, out)
    assert "transcribed 3 of 3 files" in summary(result.stderr)


@pytest.mark.real
@needs_ray
def test_bad_file_is_one_error_line_and_the_rest_is_transcribed(with_bad_file):
    result, _ = with_bad_file
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.stderr
    assert "broken.wav: not readable audio" in errors[0]
    assert errors[1] == "error: 1 of 4 inputs failed, 3 transcribed"
    counts = summary(result.stderr).split("files per worker: ")[1].split(", ")
    assert sum(int(entry.split()[-1]) for entry in counts) == 3


def processes() -> dict[int, str]:
    """Every process's pid and its title (first word of its command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                pass
    return found


def in_session(session: int) -> list[int]:
    mine = []
    for pid in processes():
        try:
            if os.getsid(pid) == session:
                mine.append(pid)
        except OSError:
            pass
    return mine


def start(*args: str) -> subprocess.Popen:
    """A command in a session of its own (its process group gets the Ctrl-C)."""
    return subprocess.Popen([sys.executable, "-m", "specvoice", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=interruptible)


def worker_decoding(run: subprocess.Popen) -> int:
    """The pid of a worker of this run that is decoding a file now."""
    while run.poll() is None:
        for pid in in_session(run.pid):
            if processes().get(pid, "").startswith(WORKING):
                return pid
        time.sleep(0.01)
    pytest.fail(f"the run ended before a worker was seen decoding: {run.communicate()[1]}")


@pytest.mark.real
@needs_ray
def test_worker_killed_mid_file_is_retried_elsewhere(clips, one_process, tmp_path):
    run = start("transcribe", str(clips), "-o", str(tmp_path), *MODEL, "--workers", "2")
    os.kill(worker_decoding(run), signal.SIGKILL)
    _, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr
    retried = [line for line in stderr.splitlines() if line.startswith("retried 1 on another worker")]
    assert len(retried) == 1 and retried[0].split(": ")[1] in {str(clips / name) for name in CLIPS}, stderr
    assert "transcribed 3 of 3 files" in summary(stderr)
    assert_same_outputs(one_process, tmp_path)


@pytest.mark.real
@needs_ray
def test_ctrl_c_stops_workers_and_the_local_ray(tmp_path):
    # A long file, so that a worker is still decoding when Ctrl-C lands (three short clips can all finish between
    # seeing a worker decode and the signal)
    long_file = SPEECH / "coquitts_LJ001-0001_to_0032_longform.wav"
    if not long_file.exists():
        pytest.skip(f"{long_file} not found (the shared speech clips)")
    (tmp_path / "in").mkdir()
    shutil.copy(long_file, tmp_path / "in" / long_file.name)
    run = start("transcribe", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *MODEL, "--workers", "2")
    worker_decoding(run)
    ray_processes = in_session(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "the same command with --resume finishes the run" in stderr
    deadline = time.monotonic() + 30  # the local Ray's last processes may take a moment to go
    while any(pid in processes() for pid in ray_processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [processes()[pid] for pid in ray_processes if pid in processes()]


@pytest.mark.real
@pytest.mark.parametrize("workers", [pytest.param((), id="one-process"),
                                     pytest.param(("--workers", "2"), marks=needs_ray, id="ray")])
def test_resume_decodes_only_what_is_missing(clips, one_process, tmp_path, workers):
    for path in one_process.iterdir():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "whisper_jfk.srt").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    result = specvoice("transcribe", str(clips), "-o", str(tmp_path), *MODEL, *workers, "--resume")
    assert result.returncode == 0, result.stderr
    assert "skipped 2 inputs whose outputs are complete (--resume)" in result.stderr
    if workers:
        assert "transcribed 1 of 1 files" in summary(result.stderr)
    assert_same_outputs(one_process, tmp_path)
    assert all(tmp_path.joinpath(name).stat().st_mtime_ns == kept[name] for name in kept
               if not name.startswith("whisper_jfk."))


def test_without_ray_workers_is_one_error_line(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['specvoice', 'transcribe', sys.argv[1], "
            "'-o', sys.argv[2], '--workers', '2']; from specvoice.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, str(SPEECH / CLIPS[0]), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, "--workers needs Ray", "pip install 'specvoice[cluster]'")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, words, code", [
    (("--workers", "2"), "--workers needs --output-dir", 2),
    (("--resume",), "--resume needs --output-dir", 2),
    (("--ray-address", "127.0.0.1:6379"), "--ray-address needs --workers", 2),
    (("--workers", "0", "-o", "out"), "--workers", 2),
])
def test_batch_options_misused_are_one_line(args, words, code):
    result = specvoice("transcribe", str(SPEECH / CLIPS[0]), *args)
    assert_one_line_error(result, words)
    assert result.returncode == code


@needs_ray
def test_ray_address_where_nothing_answers_is_one_line(tmp_path):
    result = specvoice("transcribe", str(SPEECH / CLIPS[0]), "-o", str(tmp_path), "--workers", "1",
                       "--ray-address", "127.0.0.1:1")
    assert_one_line_error(result, "--ray-address 127.0.0.1:1: no Ray cluster answers there")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_node(*args: str) -> subprocess.Popen:
    """`ray start --block` as one node of a cluster on this machine, on free ports."""
    ports = [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "metrics-export-port",
                                                     "runtime-env-agent-port", "node-manager-port",
                                                     "object-manager-port")]
    command = [str(Path(sys.executable).with_name("ray")), "start", "--block", "--num-cpus=1",
               "--object-store-memory=80000000", "--disable-usage-stats", *ports, *args]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(node: subprocess.Popen) -> None:
    """The node and every process it started (its session), and nothing else."""
    node.terminate()
    try:
        node.wait(timeout=60)
    except subprocess.TimeoutExpired:
        node.kill()
    for pid in in_session(node.pid):
        os.kill(pid, signal.SIGKILL)


def wait_for_port(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"the Ray head did not listen on {port}")


@pytest.mark.real
@needs_ray
def test_ray_address_joins_a_separately_started_cluster(clips, one_process, tmp_path, monkeypatch):
    # A cluster of its own token (Ray >= 2.5x authenticates with ~/.ray/auth_token, once a local Ray made one).
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    nodes = [ray_node("--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                      f"--temp-dir={temp}")]
    try:
        wait_for_port(port)
        nodes.append(ray_node(f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1"))
        result = specvoice("transcribe", str(clips), "-o", str(tmp_path / "out"), *MODEL, "--workers", "2",
                           "--threads", "1", "--ray-address", f"127.0.0.1:{port}")
    finally:
        for node in reversed(nodes):
            stop(node)
        shutil.rmtree(temp, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    per_worker = summary(result.stderr).split("files per worker: ")[1].split(", ")
    assert len(per_worker) == 2  # one worker per node: each node has the one CPU a worker reserves
    assert_same_outputs(one_process, tmp_path / "out")
