"""What the terminal shows while listening: a live view (committed text plain, tentative text dim, redrawn in
place), or, when stdout is not a terminal, the committed text as plain lines."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .hypothesis import Word

SHOWN_CHARACTERS = 2000  # the live view keeps the end of a long session on screen


class LiveView:
    def __init__(self, console: Console):
        self.console = console
        self.live = Live(Text(""), console=console, auto_refresh=False, transient=False)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)
        self.console.print()  # Live's last frame ends without a newline

    def show(self, committed: list[Word], tentative: list[Word], finished_lines: list[str]) -> None:
        text = Text("".join(w.text for w in committed).strip()[-SHOWN_CHARACTERS:])
        text.append("".join(w.text for w in tentative), style="dim")
        self.live.update(text, refresh=True)


class LineView:
    def __init__(self, console: Console):
        self.console = console

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def show(self, committed: list[Word], tentative: list[Word], finished_lines: list[str]) -> None:
        for line in finished_lines:
            self.console.print(line, markup=False, highlight=False)
