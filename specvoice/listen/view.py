"""What the terminal shows while listening.

On a terminal (LiveView), as whisper.cpp's `stream` does: finished lines (sentences whose words have left the
buffer, so their text is final) are printed once and scroll up into the terminal's scrollback; below them a
live region is redrawn in place: the other committed words plain, the tentative ones dim, word-wrapped at the
terminal's width (its last lines when they outgrow the screen), and a status line under the text (the input,
model and method, the elapsed audio time, the input's level). When stdout is not a terminal (LineView), the
finished lines are printed as plain lines.

The live region is drawn with the cursor left at its top-left corner, and each draw erases from there down: a
resize makes the terminal reflow the old region into more or fewer rows, which the next draw (at most
REFRESH later) erases whatever their number, at the new width. Drawing happens on one thread, so a Ctrl-C
(raised in the main thread) never lands in the middle of an escape sequence.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from .hypothesis import Word
from .source import NO_INPUT_AFTER, AudioQueue

REFRESH = 0.1  # seconds between redraws of the live region (the elapsed time and the level meter move)
METER_CELLS = 8
METER_FLOOR = -60.0  # dBFS shown as an empty meter; 0 dBFS fills it
ERASE_LINE, ERASE_BELOW = "\x1b[2K", "\x1b[J"
NO_WRAP, WRAP = "\x1b[?7l", "\x1b[?7h"  # the terminal's autowrap (DECAWM) off and on


@dataclass
class Status:
    """What the status line says besides the state: where audio comes from, what decodes it, and live measures."""

    source: str  # the device's name or the file's
    model: str
    method: str
    audio: AudioQueue  # its seconds received, and the level of the latest block


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _meter(peak: float) -> Text:
    decibels = 20 * math.log10(peak) if peak > 0 else METER_FLOOR
    cells = round(METER_CELLS * min(1.0, max(0.0, 1 - decibels / METER_FLOOR)))
    return Text("━" * cells, style="green") + Text("─" * (METER_CELLS - cells), style="dim")


def status_line(status: Status, state: str) -> Text:
    """`● listening 0:07 ━━━━──── whisper_jfk.wav · base · ar`; `■ done` or `■ interrupted` once it ended."""
    line = Text("● ", style="bold red") if state == "listening" else Text("■ ")
    line += Text(f"{state} {_elapsed(status.audio.seconds)} ")
    quiet = status.audio.quiet_for
    if state == "listening" and quiet > NO_INPUT_AFTER:
        line += Text(f"no audio from the input for {int(quiet)} s ", style="bold yellow")
    elif state == "listening":
        line += _meter(status.audio.level) + Text(" ")
    line += Text(f"{status.source} · {status.model} · {status.method}", style="dim")
    return line


def rows(console: Console, text: Text, width: int) -> list[Text]:
    """`text` word-wrapped at `width`, without the space each row was broken at."""
    lines = list(text.wrap(console, width))
    for line in lines:
        line.rstrip()
    return lines


def region_lines(console: Console, text: Text, status: Text, width: int, height: int) -> list[Text]:
    """The live region at this size: the text word-wrapped, its last lines where it does not fit above the status
    line (a row is left for the cursor), and the status line cut to fit (one column short of the width, so that
    erasing after it cannot take its last character)."""
    lines = rows(console, text, width) if text.plain else []
    lines = lines[max(0, len(lines) - max(1, height - 2)):]
    status = status.copy()
    status.truncate(max(1, width - 1), overflow="ellipsis")
    return lines + [status]


class LiveView:
    def __init__(self, console: Console, status: Status):
        self.console = console
        self.status = status
        self.state = "listening"
        self.lock = threading.Lock()
        self.above: list[tuple[str, Text]] = []  # ("out" or "err", line): to print above the region, once
        self.text = Text()  # the region's words
        self.drawn: tuple = ()  # the region as last drawn, and the terminal's size then
        self.stopping = threading.Event()
        self.drawer = threading.Thread(target=self._keep_drawing, daemon=True)
        self.sigint = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C is said by the status line; a message written at the cursor would land inside the region.
            self.sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.console.show_cursor(False)
        self.drawer.start()
        return self

    def __exit__(self, exc_type, *exc):
        self.stopping.set()
        self.drawer.join()
        if exc_type is not None and self.state == "listening":
            self.state = "interrupted"
        self._draw(last=True)
        self.console.show_cursor(True)
        if self.sigint is not None:
            signal.signal(signal.SIGINT, self.sigint)

    def show(self, finished: list[str], pending: list[Word], tentative: list[Word]) -> None:
        text = Text("".join(w.text for w in pending).lstrip())
        guessed = "".join(w.text for w in tentative)
        text.append(guessed if text.plain else guessed.lstrip(), style="dim")
        with self.lock:
            self.above += [("out", Text(line)) for line in finished]
            self.text = text

    def warn(self, text: str) -> None:
        with self.lock:
            self.above.append(("err", Text(f"warning: {text}")))

    def ended(self, interrupted: bool) -> None:
        self.state = "interrupted" if interrupted else "done"

    def _keep_drawing(self) -> None:
        while not self.stopping.wait(REFRESH):
            self._draw()

    def _draw(self, last: bool = False) -> None:
        """From the region's top-left corner: the lines to print above (each row erased before it is written),
        then the region; the cursor goes back to its top (or, the last time, below it). Each part goes out in
        one write, so that the terminal does not take a resize between its rows (a resize reflows the rows on
        the screen around the cursor, which has to be at the region's top then)."""
        with self.lock:
            above, self.above = self.above, []
            width, height = self._size()
            region = region_lines(self.console, self.text, status_line(self.status, self.state), width, height)
        # Autowrap is off while the region is written: a row wider than the terminal (resized since its size was
        # read) is cut by it, not wrapped onto a row the cursor's way back up would not count.
        frame = NO_WRAP + "\r\n".join(ERASE_LINE + self._ansi(row) for row in region) + ERASE_BELOW + WRAP
        if (frame, width, height) == self.drawn and not (above or last):
            return  # nothing moved
        self.drawn = (frame, width, height)
        back = "\r\n" if last else "\r" + (f"\x1b[{len(region) - 1}A" if len(region) > 1 else "")
        out = ""
        for stream, line in above:
            printed = [self._ansi(row) for row in rows(self.console, line, width)]
            if stream == "err":  # on stderr, where erasing codes have no place: the region erased first
                self._write(self.console.file, out + ERASE_BELOW)
                self._write(sys.stderr, "".join(row + "\r\n" for row in printed))
                out = ""
            else:
                out += "".join(ERASE_LINE + row + "\r\n" for row in printed)
        self._write(self.console.file, out + frame + back)

    def _size(self) -> tuple[int, int]:
        """The terminal's own size. Rich prefers COLUMNS and LINES from the environment, which can be stale (a
        shell exports them as the window was when it started), and a region drawn at another width than the
        terminal's would not be erased right."""
        try:
            size = os.get_terminal_size(self.console.file.fileno())
        except (AttributeError, ValueError, OSError):
            size = self.console.size
        return size[0], size[1]

    def _ansi(self, line: Text) -> str:
        with self.console.capture() as captured:
            self.console.print(line, end="", soft_wrap=True)
        return captured.get()

    def _write(self, file, data: str) -> None:
        """All of `data` in one system call where the terminal takes it so (a text file flushes at each line)."""
        file.flush()
        data = data.encode()
        while data:
            data = data[os.write(file.fileno(), data):]


class LineView:
    def __init__(self, console: Console):
        self.console = console

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def show(self, finished: list[str], pending: list[Word], tentative: list[Word]) -> None:
        for line in finished:
            self.console.print(line, markup=False, highlight=False)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def ended(self, interrupted: bool) -> None:
        pass
