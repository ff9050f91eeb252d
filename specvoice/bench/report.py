"""The bench's results as a terminal table, results.json, results.md and chart.png."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ..files import write_atomic
from .contestants import TOKENS


def _number(spec: str):
    return lambda value: "–" if value is None else format(value, spec)


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


COLUMNS = (  # header, summary key, formatting
    ("method", "name", str),
    ("clips", "clips", str),
    ("WER", "wer", _number(".2%")),
    ("seconds", "seconds", _number(".2f")),
    ("decoder s", "decoder_seconds", _number(".2f")),
    ("RTF", "rtf", _number(".3f")),
    ("speed-up", "speedup", _times),
    ("decoder speed-up", "decoder_speedup", _times),
    ("passes/token", "passes_per_token", _number(".3f")),
    ("accepted len", "accepted_length", _number(".2f")),
    ("identical", "identical_rate", _number(".0%")),
    ("peak MiB", "peak_mib", _number(".0f")),
)


def table_rows(summary: list[dict]) -> list[list[str]]:
    return [[fmt(row[key]) for _, key, fmt in COLUMNS] for row in summary]


def explanations(results: dict) -> list[str]:
    """What each number means, printed under the table and in results.md."""
    reference = results["summary"][0]["name"]
    by_text = sorted({row["name"] for row in results["summary"] if row["identical_by"] != TOKENS})
    skips = {}  # contestant -> reason -> clips: a row over fewer clips must say so
    for clip in results["clips"]:
        for name, row in clip["results"].items():
            if "skipped" in row:
                skips.setdefault(name, {}).setdefault(row["skipped"], []).append(clip["id"])
    return [f"{name} left out {len(ids)} clip{'s' if len(ids) > 1 else ''} ({', '.join(ids)}): {reason}."
            for name, reasons in skips.items() for reason, ids in reasons.items()] + [
        "WER: corpus word error rate (errors summed over clips / reference words) after Whisper's English normaliser.",
        "seconds: end to end from 16 kHz samples (features, encoders, decoding), summed over clips; decoder s: decoding alone.",
        "RTF: seconds / audio seconds.",
        f"speed-up: {reference}'s time / the method's time, both summed over runs interleaved "
        f"({reference}, m, {reference}, m, ...) on the same clips.",
        "passes/token: forward passes of the target decoder per emitted token; accepted len: tokens per target pass.",
        f"identical: share of clips whose output tokens equal those of ar at the same precision"
        + (f" ({', '.join(by_text)}: normalised text equal to {reference}'s)" if by_text else "") + ".",
        f"peak MiB: {results['memory']}.",
    ]


def print_table(console, results: dict) -> None:
    from rich.table import Table

    table = Table(title=f"specvoice bench: {results['settings']['model']} on {len(results['clips'])} clips "
                        f"({results['audio_seconds']:.1f} s of audio)")
    for header, key, _ in COLUMNS:
        table.add_column(header, justify="left" if key == "name" else "right", overflow="fold")
    for row in table_rows(results["summary"]):
        table.add_row(*row)
    console.print(table)
    for line in explanations(results):
        console.print(f"  {line}", style="dim", markup=False)


def markdown_lines(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table as lines: the header row, its rule, a line per row of cells."""
    return ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)] + ["| " + " | ".join(r) + " |" for r in rows]


def render_markdown(results: dict, chart: str | None) -> str:
    machine = results["machine"]
    lines = [
        "# specvoice bench", "",
        "```bash", results["command"], "```", "",
        f"{results['date']} · {machine['device']} ({machine['processor']}, {machine['threads']} threads) · "
        f"torch {machine['torch']} · transformers {machine['transformers']} · faster-whisper {machine['faster_whisper']}", "",
        f"{len(results['clips'])} clips, {results['audio_seconds']:.1f} s of audio; target `{results['settings']['model']}`, "
        f"draft `{results['settings']['draft']}`; warm-up {results['settings']['warmup']}, repeat {results['settings']['repeat']}.", "",
    ]
    lines += markdown_lines([header for header, _, _ in COLUMNS], table_rows(results["summary"])) + [""]
    lines += [f"- {line}" for line in explanations(results)] + [""]
    groups = next(iter(results["speedup_by_group"].values()), {})
    if groups:
        lines += ["## End-to-end speed-up by kind of clip", ""]
        rows = [[name] + [_times(value) for value in speedups.values()]
                for name, speedups in results["speedup_by_group"].items()]
        lines += markdown_lines(["method", *groups], rows) + [""]
    if chart:
        lines += [f"![speed-up per method and kind of clip]({chart})", ""]
    if results["notes"] or results["skipped_lines"]:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in results["notes"]]
        lines += [f"- manifest line {s['line']} skipped: {s['reason']}" for s in results["skipped_lines"]]
        lines.append("")
    return "\n".join(lines)


def render_chart(results: dict) -> bytes | None:
    """A PNG of end-to-end speed-up per method, one bar per kind of clip; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed, and none is touched if one exists
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    by_group = results["speedup_by_group"]
    names = list(by_group)
    groups = list(next(iter(by_group.values()), {}))
    figure, axes = plt.subplots(figsize=(min(14.0, max(6.0, 2 + 0.6 * len(names) * len(groups))), 4.5))
    width = 0.8 / max(1, len(groups))
    for i, group in enumerate(groups):
        values = [by_group[name][group] or 0.0 for name in names]
        bars = axes.bar([x + (i - (len(groups) - 1) / 2) * width for x in range(len(names))], values, width, label=group)
        axes.bar_label(bars, labels=[f"{v:.2f}" if v else "–" for v in values], fontsize=7, padding=2)
    reference = results["summary"][0]["name"]
    axes.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel(f"end-to-end speed-up vs {reference} (x)")
    axes.set_title(f"{results['settings']['model']} on {len(results['clips'])} clips, {results['machine']['device']}")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never hides a bar
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    return buffer.getvalue()


def write_reports(results: dict, output_dir: Path) -> tuple[list[Path], list[str]]:
    """Writes results.json, chart.png and results.md; returns the paths and notes on what was left out."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    chart = render_chart(results) if results["speedup_by_group"] else None
    if chart is not None:
        write_atomic(output_dir / "chart.png", chart)
        written.append(output_dir / "chart.png")
    elif results["speedup_by_group"]:
        notes.append("chart.png skipped: matplotlib is not installed (pip install 'specvoice[bench]')")
    else:
        notes.append("chart.png skipped: only the reference method was measured, there is no speed-up to chart")
    results = {**results, "notes": results["notes"] + notes}
    write_atomic(output_dir / "results.json", json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    write_atomic(output_dir / "results.md", render_markdown(results, "chart.png" if chart else None))
    return [output_dir / "results.json", output_dir / "results.md", *written], notes
