"""The `specvoice` command line."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import SpecvoiceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fast speech recognition with speculative decoding, token-identical to greedy Whisper.")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class Method(str, Enum):
    ar = "ar"
    spec = "spec"
    specasr = "specasr"
    dllm = "dllm"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Task(str, Enum):
    transcribe = "transcribe"
    translate = "translate"


class OutputFormat(str, Enum):
    txt = "txt"
    srt = "srt"
    vtt = "vtt"
    json = "json"
    all = "all"


@app.callback()
def _root() -> None:
    """Fast speech recognition with speculative decoding, token-identical to greedy Whisper."""


def resolve_device(device: Device, dtype: DType):
    import torch

    if device == Device.auto:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        name = device.value
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecvoiceError("--device cuda: no CUDA GPU is available to this PyTorch build")
    if dtype == DType.auto:
        return name, torch.float16 if name == "cuda" else torch.float32
    if name == "cpu" and dtype == DType.float16:
        raise SpecvoiceError("--dtype float16 is not supported on the CPU; use float32 or bfloat16")
    return name, getattr(torch, dtype.value)


def _timestamp(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes):02d}:{seconds:06.3f}"


@app.command()
def transcribe(
    audio: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg, mp3; any rate and channels).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Target model: built-in name (base, tiny.en), local folder (transformers or CTranslate2), or hub id.")] = "base",
    method: Annotated[Method, typer.Option(help="ar: greedy; spec: speculative; specasr: adaptive + recycling + token tree; dllm: parallel refinement of the draft's transcript. All give identical text.")] = Method.specasr,
    draft: Annotated[Optional[str], typer.Option("--draft", "-d", help="Draft model for spec/specasr (default tiny.en). Other vocabularies are bridged through text.")] = None,
    language: Annotated[Optional[str], typer.Option("--language", "-l", help="Spoken language code (multilingual models); detected when omitted.")] = None,
    task: Annotated[Task, typer.Option(help="transcribe, or translate to English (multilingual models).")] = Task.transcribe,
    timestamps: Annotated[Optional[bool], typer.Option("--timestamps/--no-timestamps", help="Decode segment timestamps (default: on for audio over 30 s and for srt/vtt output).")] = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Write transcript files here.")] = None,
    output_format: Annotated[Optional[OutputFormat], typer.Option("--output-format", "-f", help="File format (default txt when --output-dir is given).")] = None,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    dtype: Annotated[DType, typer.Option(help="Weights precision (auto: float32 on CPU, float16 on CUDA).")] = DType.auto,
    draft_len: Annotated[int, typer.Option(min=1, max=64, help="spec: tokens per draft.")] = 5,
    max_draft: Annotated[int, typer.Option(min=1, max=64, help="specasr: longest draft.")] = 24,
    confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="specasr: a draft ends after a token the draft is less sure of than this.")] = 0.4,
    recycle: Annotated[bool, typer.Option("--recycle/--no-recycle", help="specasr: reuse rejected draft tails.")] = True,
    tree_positions: Annotated[int, typer.Option(min=0, max=16, help="specasr: least-confident positions that get alternative branches (0: no tree).")] = 2,
    stats: Annotated[bool, typer.Option("--stats", help="Print decoding statistics per file.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch.")] = None,
):
    """Transcribe audio files; prints the text and writes txt/srt/vtt/json on request."""
    from .methods import MethodOptions

    formats = _formats(output_dir, output_format)
    if timestamps is None and output_format in (OutputFormat.srt, OutputFormat.vtt, OutputFormat.all):
        timestamps = True
    options = MethodOptions(method=method.value, draft_len=draft_len, max_draft=max_draft, confidence=confidence,
                            recycle=recycle, tree_positions=tree_positions)
    if not options.needs_draft and draft is not None:
        raise SpecvoiceError("--draft needs --method spec, specasr or dllm")
    for path in audio:
        if not path.is_file():
            raise SpecvoiceError(f"{path}: no such file")
    transcriber = _transcriber(model, draft or ("tiny.en" if options.needs_draft else None), options, device,
                               dtype, threads, language, task.value, timestamps)
    failures = 0
    for path in audio:
        try:
            result = _transcribe_one(transcriber, path)
        except SpecvoiceError as exc:
            stderr.print(f"error: {exc}")
            failures += 1
            continue
        _show(result, path, stats, len(audio) > 1)
        if formats:
            from .writers import write_outputs

            write_outputs(result, output_dir / path.stem, formats, {"model": model, "method": method.value})
    if failures:
        raise typer.Exit(1)


def _formats(output_dir: Optional[Path], output_format: Optional[OutputFormat]) -> list[str]:
    from .writers import FORMATS

    if output_format is None:
        return ["txt"] if output_dir else []
    if output_dir is None:
        raise SpecvoiceError("--output-format needs --output-dir")
    return list(FORMATS) if output_format == OutputFormat.all else [output_format.value]


def _load_models(model: str, draft: Optional[str], device: Device, dtype: DType, threads: Optional[int]):
    """Target and optional draft, quietly loaded on the chosen device."""
    import torch
    import transformers

    from .models.loader import load_whisper

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    if threads:
        torch.set_num_threads(threads)
    device_name, torch_dtype = resolve_device(device, dtype)
    target = load_whisper(model, device_name, torch_dtype)
    return target, (load_whisper(draft, device_name, torch_dtype) if draft else None), device_name, torch_dtype


def _transcriber(model, draft, options, device, dtype, threads, language, task, timestamps):
    from .transcribe import Transcriber

    target, draft_model, _, _ = _load_models(model, draft, device, dtype, threads)
    return Transcriber(target, draft_model, options, language, task, timestamps)


def _transcribe_one(transcriber, path: Path):
    from tqdm import tqdm

    from .audio import SAMPLE_RATE, load_audio

    samples = load_audio(path)
    seconds = len(samples) / SAMPLE_RATE
    with tqdm(total=round(seconds, 1), unit="s", desc=path.name, disable=seconds <= 30 or None,
              file=sys.stderr, leave=False) as bar:
        return transcriber.transcribe(samples, progress=lambda done: bar.update(round(done, 1) - bar.n))


def _show(result, path: Path, show_stats: bool, several: bool) -> None:
    out = Console(highlight=False, soft_wrap=True)
    if several:
        out.print(f"[bold]{path}[/bold]")
    if len(result.segments) > 1:
        for s in result.segments:
            out.print(f"[{_timestamp(s.start)} --> {_timestamp(s.end)}] {s.text.strip()}", markup=False)
    else:
        out.print(result.text, markup=False)
    if show_stats:
        s = result.stats
        stderr.print(f"{path.name}: {s.tokens} tokens, {s.target_passes} target passes, {s.draft_passes} draft passes, "
                     f"{s.mean_accepted_length:.2f} tokens/pass, acceptance {s.acceptance_rate:.0%}, "
                     f"encoder {result.encoder_seconds:.2f} s, decoder {result.decoder_seconds:.2f} s")


@app.command()
def bench(
    manifest: Annotated[Path, typer.Option("--manifest", help="Speech manifest: JSON lines with id, audio (path relative to the manifest), text; optional kind, noisy.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Target model (as for transcribe).")] = "base",
    draft: Annotated[str, typer.Option("--draft", "-d", help="Draft model for the methods that need one and for transformers' assisted generation.")] = "tiny.en",
    methods: Annotated[str, typer.Option(help="Comma-separated methods, or all; ar is always measured, as the reference.")] = "all",
    peers: Annotated[str, typer.Option(help="Comma-separated peers (transformers, faster-whisper), all, or none.")] = "all",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Measure only the first N usable clips.")] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where results.json, results.md and chart.png go.")] = Path("bench-out"),
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs of each method before measuring.")] = 1,
    repeat: Annotated[int, typer.Option(min=1, help="Timed runs of each method per clip, each paired with a run of ar.")] = 1,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    dtype: Annotated[DType, typer.Option(help="Weights precision (auto: float32 on CPU, float16 on CUDA).")] = DType.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch and faster-whisper.")] = None,
):
    """Measure the methods beside transformers and faster-whisper on a speech manifest: WER, speed-up vs ar, passes per token."""
    import shlex

    from .bench.manifest import read_manifest
    from .bench.report import print_table, write_reports
    from .bench.suite import contestants, method_names, peer_names, run_bench
    from .methods import MethodOptions

    method_list, peer_list = method_names(methods), peer_names(peers)
    clips, skipped = read_manifest(manifest, limit)
    for line in skipped:
        stderr.print(f"warning: {manifest}:{line.line}: {line.reason}", markup=False)
    if not clips:
        raise SpecvoiceError(f"{manifest}: no usable clips ({len(skipped)} lines skipped)")
    needs_draft = "transformers" in peer_list or any(MethodOptions(m).needs_draft for m in method_list)
    target, draft_model, device_name, torch_dtype = _load_models(model, draft if needs_draft else None, device,
                                                                 dtype, threads)
    chosen, notes = contestants(method_list, peer_list, target, draft_model, model)
    for note in notes:
        stderr.print(f"note: {note}", markup=False)
    settings = {"manifest": str(manifest), "model": model, "draft": draft if needs_draft else None,
                "methods": method_list, "peers": peer_list, "limit": limit, "device": device_name}
    results = run_bench(clips, chosen, device=target.device, dtype=torch_dtype, warmup=warmup, repeat=repeat,
                        command=shlex.join(["specvoice", *sys.argv[1:]]), settings=settings, notes=notes,
                        skipped_lines=skipped)
    print_table(Console(highlight=False, width=None if sys.stdout.isatty() else 200), results)  # a file gets the whole table
    written, more_notes = write_reports(results, output_dir)
    for note in more_notes:
        stderr.print(f"note: {note}", markup=False)
    stderr.print(f"wrote {', '.join(str(path) for path in written)}", markup=False)


def main() -> None:
    try:
        app()
    except SpecvoiceError as exc:
        stderr.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless asked for the traceback
        if os.environ.get("SPECVOICE_DEBUG"):
            raise
        stderr.print(f"error: unexpected {type(exc).__name__}: {exc} (set SPECVOICE_DEBUG=1 for a traceback)", markup=False)
        sys.exit(1)
