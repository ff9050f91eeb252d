"""`listen` as a person sees it: run in a real terminal (a tmux pane of a given size), the screen and its
scrollback read back with capture-pane. Every wait is for something to appear on the screen (a generous
deadline only turns a hang into a failure). The file is replayed at --speed 0: each step of audio waits for
the decode before it, so every update is shown however loaded the machine is (at real-time pace a slow
decoder takes the whole clip at once, and nothing is shown mid-run)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SPEECH

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make test installs it)")]

ROOT = Path(__file__).resolve().parents[1]
JFK = SPEECH / "whisper_jfk.wav"
DEADLINE = 900  # seconds: a model load and a real-time replay on a loaded machine take a fraction of it
SGR = re.compile(r"\x1b\[([0-9;]*)m")


class Pane:
    """A tmux server of its own running `specvoice listen ARGS` in a pane, then `EXIT=<status>`."""

    def __init__(self, folder: Path, width: int, height: int, *args: str):
        self.socket = str(folder / "tmux.sock")
        path = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "kernels"), os.environ.get("PYTHONPATH")]))
        command = shlex.join([sys.executable, "-m", "specvoice", "listen", *args])
        # bash: after a Ctrl-C that the program handles (it exits 130, not killed by the signal), it goes on
        script = f"{command}; echo EXIT=$?; sleep {DEADLINE}"
        self.tmux("new-session", "-d", "-s", "listen", "-x", str(width), "-y", str(height), "-e", f"PYTHONPATH={path}",
                  "bash", "-c", script)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], check=True, capture_output=True,
                              text=True).stdout

    def screen(self, styles: bool = False, history: bool = True) -> list[str]:
        """The pane's lines (with its scrollback), soft-wrapped rows joined (-J), trailing blanks dropped."""
        text = self.tmux("capture-pane", "-p", "-J", *(["-S", "-"] if history else []), *(["-e"] if styles else []),
                         "-t", "listen")
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait_for(self, what: str, found, styles: bool = False) -> list[str]:
        end = time.monotonic() + DEADLINE
        seen: list[list[str]] = []  # the screens it went through, for the failure's message
        while time.monotonic() < end:
            lines = self.screen(styles)
            if found(lines):
                return lines
            if not seen or seen[-1] != lines:
                seen.append(lines)
            if any(line.startswith("EXIT=") for line in lines):
                break  # it ended without showing it
            time.sleep(0.2)
        pytest.fail(f"{what} never showed; the screens:\n" + "\n--\n".join("\n".join(lines) for lines in seen[-20:]))

    def exit_status(self) -> int:
        lines = self.wait_for("EXIT=", lambda lines: any(line.startswith("EXIT=") for line in lines))
        return int(next(line for line in lines if line.startswith("EXIT="))[len("EXIT="):])

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane(tmp_path):
    panes = []

    def start(width: int, height: int, *args: str) -> Pane:
        panes.append(Pane(tmp_path, width, height, "--input", str(JFK), "-o", str(tmp_path / "out"), *args))
        return panes[-1]

    yield start
    for opened in panes:
        opened.close()


def is_status(line: str) -> bool:
    return "whisper_jfk.wav · " in line


def listening(lines: list[str]) -> bool:
    return any(is_status(line) and "listening" in line for line in lines)


def dim(line: str) -> bool:
    return any("2" in codes.split(";") for codes in SGR.findall(line))


def shown_words(lines: list[str]) -> list[str]:
    """The text above the status line (whose only copy it must be), as words."""
    statuses = [i for i, line in enumerate(lines) if is_status(line)]
    assert len(statuses) == 1, lines  # no status line left behind by a redraw
    return " ".join(lines[: statuses[0]]).split()


def written_words(tmp_path: Path) -> list[str]:
    return (tmp_path / "out" / "whisper_jfk.txt").read_text().split()


def assert_finished_screen(lines: list[str], tmp_path: Path, width: int, state: str) -> None:
    assert all(len(line) <= width for line in lines), lines  # wrapped at the width, none cut or soft-wrapped
    assert shown_words(lines) == written_words(tmp_path), lines  # the whole transcript, nothing twice
    status = next(line for line in lines if is_status(line))
    assert status.startswith(f"■ {state} ") and status.endswith("whisper_jfk.wav · base · ar"), status


@pytest.mark.parametrize("width", [80, 200])
def test_the_transcript_wraps_at_the_terminal_width_above_the_status_line(pane, tmp_path, width):
    screen = pane(width, 12, "--model", "base", "--method", "ar", "--speed", "0")
    # while it runs: words above a status line that says it is listening, with the input's level, and the
    # tentative words dim (the status line's own dim part aside)
    running = screen.wait_for("dim tentative words above the status line", lambda lines: any(
        dim(line) and not is_status(SGR.sub("", line)) for line in lines) and listening(
        [SGR.sub("", line) for line in lines]), styles=True)
    plain = [SGR.sub("", line) for line in running]
    status = next(line for line in plain if is_status(line))
    assert re.match(r"● listening \d+:\d\d [━─]{8} whisper_jfk\.wav · base · ar$", status), status
    assert plain.index(status) == len(plain) - 1  # under the text
    assert screen.exit_status() == 0
    lines = screen.screen()[:-1]  # EXIT=0 aside
    assert_finished_screen(lines, tmp_path, width, "done")
    assert len(lines) == (3 if width == 80 else 2)  # JFK's sentence is two rows at 80 columns, one at 200


def test_a_resize_while_listening_redraws_at_the_new_width(pane, tmp_path):
    screen = pane(80, 12, "--model", "base", "--method", "ar", "--speed", "0")
    screen.wait_for("the first words", lambda lines: listening(lines) and "fellow" in " ".join(lines))
    screen.tmux("resize-window", "-t", "listen", "-x", "40", "-y", "12")
    # redrawn while still listening: the status line cut to the new width, and no row of the old frames (the
    # terminal reflowed them: joined back, they would be longer than 40)
    screen.wait_for("the status line at 40 columns", lambda lines: any(
        line.startswith("● listening") and len(line) <= 39 for line in lines) and all(len(line) <= 40 for line in lines))
    assert screen.exit_status() == 0
    # The screen, not its scrollback: a narrower tmux window reflows every row and pushes as many rows as that
    # adds from the top of the screen into the scrollback, where no program can erase them; a region drawn in
    # the screen's top rows leaves a row of its last frame there.
    lines = screen.screen(history=False)[:-1]
    assert_finished_screen(lines, tmp_path, 40, "done")  # nothing of the 80-column frames is left


def test_ctrl_c_commits_the_words_keeps_them_on_screen_and_exits_130(pane, tmp_path):
    screen = pane(80, 12, "--model", "base", "--method", "ar", "--speed", "0")
    screen.wait_for("the first words", lambda lines: listening(lines) and "fellow" in " ".join(lines))
    screen.tmux("send-keys", "-t", "listen", "C-c")
    assert screen.exit_status() == 130
    lines = screen.screen()[:-1]
    assert_finished_screen(lines, tmp_path, 80, "interrupted")
    assert "fellow" in written_words(tmp_path) and "country." not in written_words(tmp_path)  # stopped mid-run
    # the terminal is left as it was found: the cursor shown, no colour or style still on
    assert screen.tmux("display-message", "-p", "-t", "listen", "#{cursor_flag}").strip() == "1"
    exit_line = next(line for line in screen.screen(styles=True) if "EXIT=" in line)
    assert all(code in ("", "0", "39", "49") for codes in SGR.findall(exit_line) for code in codes.split(";")), \
        repr(exit_line)
