"""The `specvoice` command line."""

from __future__ import annotations

import os
import sys
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

from .errors import SpecvoiceError
from .options import (DEVICES, DTYPES, KERNELS, METHOD_CHOICES, PANEL_BENCH, PANEL_LIVE, PANEL_MODELS,
                      PANEL_OUTPUT, PANEL_TEXT, TASKS, TTS_METHODS, BatchOptions, DecodingOptions, DistillOptions,
                      ListenOptions, ModelOptions, OptionError, SynthesisOptions, describe)
from .transcript import FORMATS

# rich_markup_mode=None: click's plain help layout, which keeps every option name whole at 80 columns (typer's
# rich tables cut names over about 26 characters there, e.g. --temperature-increment-on-fallback).
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Speech recognition and synthesis with speculative decoding: transcripts token-identical to "
                       "greedy Whisper, speech sampled exactly as the target model samples it.")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _click(module: str):
    """A module of the click that typer runs on: its own copy from typer 0.24 on, else click itself."""
    from importlib import import_module

    try:
        return import_module(f"typer._click.{module}")
    except ImportError:
        return import_module(f"click.{module}")


class _Command(typer.core.TyperCommand):
    """A command whose --help lists its options in groups (their rich_help_panel), and for which a value the
    options objects refuse is a usage error (exit 2), as typer's own checks make it."""

    def format_options(self, ctx, formatter) -> None:
        groups: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                title = "Arguments" if param.param_type_name == "argument" else \
                    getattr(param, "rich_help_panel", None) or "Other options"
                groups.setdefault(title, []).append(record)
        for title, records in groups.items():
            with formatter.section(title):
                formatter.write_dl(records)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            raise _click("exceptions").UsageError(str(exc), ctx) from None


def _choices(name: str, values) -> type[Enum]:
    return Enum(name, {value: value for value in values}, type=str)


Method = _choices("Method", METHOD_CHOICES)
Device = _choices("Device", DEVICES)
DType = _choices("DType", DTYPES)
Task = _choices("Task", TASKS)
TtsMethod = _choices("TtsMethod", TTS_METHODS)
BenchTask = _choices("BenchTask", ("transcribe", "stream", "tts"))
Kernels = _choices("Kernels", KERNELS)
OutputFormat = _choices("OutputFormat", (*FORMATS, "all"))


def _option(options: type, name: str, *flags: str, command: str | None = None):
    """A typer option whose help (as `command` words it), help group and limits come from the options dataclass
    that defines it."""
    meta = describe(options, name, command)
    return typer.Option(*flags, help=meta["help"], rich_help_panel=meta["panel"], min=meta.get("min"),
                        max=meta.get("max"))


def _output(*flags: str, help: str):
    return typer.Option(*flags, help=help, rich_help_panel=PANEL_OUTPUT)


def _build(options: type, values: dict):
    """An options object from the command's parameters of the same names (enums become their values)."""
    return options(**{f.name: getattr(values[f.name], "value", values[f.name])
                      for f in fields(options) if f.name in values})


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"specvoice {version('specvoice')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Speech recognition and synthesis with speculative decoding."""


def _timestamp(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes):02d}:{seconds:06.3f}"


@app.command(cls=_Command)
def transcribe(
    audio: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg, mp3; any rate and channels), "
                                                     "folders of them, or - for stdin.")],
    model: Annotated[str, _option(ModelOptions, "model", "--model", "-m")] = ModelOptions.model,
    method: Annotated[Method, _option(DecodingOptions, "method")] = Method(DecodingOptions.method),
    draft: Annotated[Optional[str], _option(ModelOptions, "draft", "--draft", "-d")] = ModelOptions.draft,
    language: Annotated[Optional[str], _option(DecodingOptions, "language", "--language", "-l")] = DecodingOptions.language,
    task: Annotated[Task, _option(DecodingOptions, "task")] = Task(DecodingOptions.task),
    timestamps: Annotated[Optional[bool], _option(DecodingOptions, "timestamps", "--timestamps/--no-timestamps", command="transcribe")] = DecodingOptions.timestamps,
    output_dir: Annotated[Optional[Path], _output("--output-dir", "-o", help="Write transcript files here (created if needed; a folder's files keep their place in it).")] = None,
    output_format: Annotated[Optional[OutputFormat], _output("--output-format", "-f", help="File format (default txt when --output-dir is given).")] = None,
    vad_filter: Annotated[bool, _option(DecodingOptions, "vad_filter", "--vad/--no-vad")] = DecodingOptions.vad_filter,
    word_timestamps: Annotated[bool, _option(DecodingOptions, "word_timestamps", "--word-timestamps/--no-word-timestamps")] = DecodingOptions.word_timestamps,
    prepend_punctuations: Annotated[str, _option(DecodingOptions, "prepend_punctuations")] = DecodingOptions.prepend_punctuations,
    append_punctuations: Annotated[str, _option(DecodingOptions, "append_punctuations")] = DecodingOptions.append_punctuations,
    temperature: Annotated[float, _option(DecodingOptions, "temperature")] = DecodingOptions.temperature,
    temperature_increment_on_fallback: Annotated[float, _option(DecodingOptions, "temperature_increment_on_fallback")] = DecodingOptions.temperature_increment_on_fallback,
    best_of: Annotated[int, _option(DecodingOptions, "best_of")] = DecodingOptions.best_of,
    compression_ratio_threshold: Annotated[Optional[float], _option(DecodingOptions, "compression_ratio_threshold")] = DecodingOptions.compression_ratio_threshold,
    logprob_threshold: Annotated[Optional[float], _option(DecodingOptions, "logprob_threshold")] = DecodingOptions.logprob_threshold,
    no_speech_threshold: Annotated[Optional[float], _option(DecodingOptions, "no_speech_threshold")] = DecodingOptions.no_speech_threshold,
    condition_on_previous_text: Annotated[bool, _option(DecodingOptions, "condition_on_previous_text", "--condition-on-previous-text/--no-condition-on-previous-text")] = DecodingOptions.condition_on_previous_text,
    initial_prompt: Annotated[Optional[str], _option(DecodingOptions, "initial_prompt")] = DecodingOptions.initial_prompt,
    device: Annotated[Device, _option(ModelOptions, "device")] = Device(ModelOptions.device),
    dtype: Annotated[DType, _option(ModelOptions, "dtype")] = DType(ModelOptions.dtype),
    draft_len: Annotated[int, _option(DecodingOptions, "draft_len")] = DecodingOptions.draft_len,
    max_draft: Annotated[int, _option(DecodingOptions, "max_draft")] = DecodingOptions.max_draft,
    confidence: Annotated[Optional[float], _option(DecodingOptions, "confidence")] = DecodingOptions.confidence,
    recycle: Annotated[bool, _option(DecodingOptions, "recycle", "--recycle/--no-recycle")] = DecodingOptions.recycle,
    tree_positions: Annotated[Optional[int], _option(DecodingOptions, "tree_positions")] = DecodingOptions.tree_positions,
    stats: Annotated[bool, _output("--stats", help="Print decoding statistics per file.")] = False,
    threads: Annotated[Optional[int], _option(ModelOptions, "threads")] = ModelOptions.threads,
    kernels: Annotated[Kernels, _option(ModelOptions, "kernels")] = Kernels(ModelOptions.kernels),
    workers: Annotated[Optional[int], _option(BatchOptions, "workers")] = BatchOptions.workers,
    ray_address: Annotated[Optional[str], _option(BatchOptions, "ray_address")] = BatchOptions.ray_address,
    resume: Annotated[bool, _option(BatchOptions, "resume", "--resume")] = BatchOptions.resume,
    load_only: Annotated[bool, typer.Option("--load-only", hidden=True, help="Check the inputs, load the models, "
                                            "build the decoders and exit: the command's start-up alone, as "
                                            "`specvoice bench --process` times it.")] = False,
):
    """Transcribe audio files; prints the text and writes txt/srt/vtt/json on request.

    Every input is checked first; the readable ones are all transcribed, and the exit status is 1 if any failed.
    """
    from .files import prepare_folder
    from .transcribe.inputs import gather

    values = dict(locals())
    formats = _formats(output_dir, output_format)
    if timestamps is None:  # as openai-whisper: one timestamped decode, so txt is the same whatever -f asks for
        values["timestamps"] = True
    options, models, batch = _build(DecodingOptions, values), _build(ModelOptions, values), _build(BatchOptions, values)
    batch.check(output_dir)
    if batch.workers:
        from .transcribe.cluster import require_ray

        require_ray()
    device = models.placement().device
    models.kernel_ops(device)  # a device, dtype or kernels that cannot run: said before any input
    models.draft_for(options.method)  # a --draft the method takes none of: said before any input
    if output_dir is not None:
        prepare_folder(output_dir)
    inputs, problems, finished = gather(audio, output_dir, formats, sys.stdin.buffer, batch.resume, bool(batch.workers))
    options = options.on(device, models.draft, sum(item.seconds for item in inputs) if models.drafts_shallow() else 0.0)
    draft_name = models.draft_for(options.method)
    if finished:
        stderr.print(f"skipped {len(finished)} inputs whose outputs are complete (--resume)", markup=False)
    for problem in problems:
        stderr.print(f"error: {problem}", markup=False)
    failures = len(problems)
    if inputs and batch.workers:
        failures += _transcribe_on_ray(inputs, batch, models, draft_name, options, output_dir, formats)
    elif inputs:
        transcriber = _transcriber(models, draft_name, options)
        if load_only:
            return
        record = _record(models, draft_name, options)
        for item in inputs:
            try:
                result = _transcribe_one(transcriber, item, output_dir, formats, record)
            except SpecvoiceError as exc:
                stderr.print(f"error: {exc}", markup=False)
                failures += 1
                continue
            _show(result, item.name, options.method, stats, len(inputs) + len(problems) > 1)
    if failures:
        total = len(inputs) + len(problems)
        if total > 1:
            stderr.print(f"error: {failures} of {total} inputs failed, {total - failures} transcribed", markup=False)
        raise typer.Exit(1)


def _record(models: ModelOptions, draft: Optional[str], options: DecodingOptions) -> dict:
    """What a json transcript says about how it was made: models (and their weights' versions), options."""
    from dataclasses import asdict
    from importlib.metadata import version

    from .models import weights_version

    return {"model": models.model, "draft": draft, "method": options.method, "options": asdict(options),
            "versions": {"specvoice": version("specvoice"), "model": weights_version(models.model),
                         **({"draft": weights_version(draft, models.model)} if draft else {})}}
def _formats(output_dir: Optional[Path], output_format: Optional[OutputFormat]) -> list[str]:
    if output_format is None:
        return ["txt"] if output_dir else []
    if output_dir is None:
        raise OptionError("--output-format needs --output-dir")
    return list(FORMATS) if output_format == OutputFormat.all else [output_format.value]


def _load_models(models: ModelOptions, draft: Optional[str]):
    """Target and optional draft, quietly loaded where `models` says; also where and how they run."""
    import torch

    from .engine import ops
    from .models import load_draft, load_whisper

    if models.threads:
        torch.set_num_threads(models.threads)
    placement = models.placement()
    ops.activate(models.kernel_ops(placement.device))
    target = load_whisper(models.model, placement.device, placement.dtype, placement.int8)
    # The draft's own precision is its decoder's business (int8 on the CPU: its errors cost only speed).
    return target, (load_draft(draft, target, placement.device, placement.dtype) if draft else None), placement


def _load_targets(precisions: list[ModelOptions], draft: Optional[str]):
    """The target at each precision (weights loaded once where the precisions share them) and the draft."""
    from dataclasses import replace

    target, draft_model, placement = _load_models(precisions[0], draft)
    targets = {placement.label: target}
    for models in precisions[1:]:
        other = models.placement()
        same_weights = (other.device, other.dtype) == (placement.device, placement.dtype)
        targets[other.label] = replace(target, int8=other.int8, _tasks={}) if same_weights else \
            _load_models(models, None)[0]
    return targets, draft_model


def _transcriber(models: ModelOptions, draft: Optional[str], options: DecodingOptions):
    from .transcribe import Transcriber

    target, draft_model, _ = _load_models(models, draft)
    return Transcriber(target, draft_model, options, notify=lambda note: stderr.print(note, markup=False))


def _transcribe_on_ray(inputs, batch: BatchOptions, models: ModelOptions, draft: Optional[str],
                       options: DecodingOptions, output_dir: Path, formats: list[str]) -> int:
    """Transcribe on Ray workers, each loading its models as one process does; returns the failures."""
    from functools import partial

    from .transcribe.cluster import run_on_ray

    return run_on_ray(inputs, batch, partial(_transcriber, models, draft, options), models.threads, output_dir,
                      formats, _record(models, draft, options), stderr)


def _transcribe_one(transcriber, item, output_dir: Optional[Path], formats: list[str], record: dict):
    from tqdm import tqdm

    from .transcribe.batch import transcribe_input

    with tqdm(total=round(item.seconds, 1), unit="s", desc=Path(item.name).name, disable=item.seconds <= 30 or None,
              file=sys.stderr, leave=False) as bar:
        return transcribe_input(transcriber, item, output_dir, formats, record,
                                progress=lambda done: bar.update(round(done, 1) - bar.n))


def _stats_line(result, method: str) -> str:
    """Counters that mean something for the method: ar has no drafts, dllm refines in rounds."""
    s = result.stats
    if method == "ar":
        work = f"{s.tokens} tokens in {s.target_passes} target passes (one per token)"
    elif method == "dllm":
        work = (f"{s.tokens} tokens in {s.target_passes} refinement rounds ({s.mean_accepted_length:.2f} tokens/round), "
                f"{s.draft_passes} draft passes")
    else:
        work = (f"{s.tokens} tokens in {s.target_passes} target passes ({s.mean_accepted_length:.2f} tokens/pass), "
                f"{s.draft_passes} draft passes, {s.accepted} of {s.drafted} drafted tokens kept")
    windows = f"windows: {result.windows} decoded, {result.retries} retried hotter, {result.silent_windows} silent"
    return (f"{work}; {windows}; encoder {result.encoder_seconds:.2f} s, decoder {result.decoder_seconds:.2f} s; "
            f"kernels {s.kernels}")


def _show(result, name: str, method: str, show_stats: bool, several: bool) -> None:
    out = Console(highlight=False, soft_wrap=True)
    if several:
        out.print(Text(name, style="bold"))
    if len(result.segments) > 1:
        for s in result.segments:
            out.print(f"[{_timestamp(s.start)} --> {_timestamp(s.end)}] {s.text.strip()}", markup=False)
    else:
        out.print(result.text, markup=False)
    if show_stats:
        stderr.print(Text(f"{name}: {_stats_line(result, method)}"))


def _text(text: Optional[str], file: Optional[Path]) -> str:
    if text is not None and file is not None:
        raise OptionError("give the text or --text-file, not both")
    if file is not None:
        if not file.is_file():
            raise SpecvoiceError(f"{file}: no such file")
        return file.read_text(encoding="utf-8", errors="replace")
    if text is not None and text != "-":
        return text
    if sys.stdin.isatty():
        raise SpecvoiceError("no text: give it as an argument, with --text-file, or on standard input")
    return sys.stdin.read()


def _check_destination(output: Path) -> None:
    """Fail before the slow part when the wav cannot be written there (transcribe's check of its folder)."""
    from .files import prepare_folder

    if output.is_dir():
        raise SpecvoiceError(f"{output}: is a folder; give a file name such as out.wav")
    prepare_folder(output.parent, output)


@app.command(cls=_Command)
def synthesize(
    text: Annotated[Optional[str], typer.Argument(help="Text to speak (- or omitted: standard input).")] = None,
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="Read the text from this file.", rich_help_panel=PANEL_TEXT)] = None,
    output: Annotated[Optional[Path], _output("--output", "-o", help="Wav file to write (- for standard output).")] = None,
    model: Annotated[Optional[str], _option(SynthesisOptions, "model", "--model", "-m")] = SynthesisOptions.model,
    draft: Annotated[Optional[str], _option(SynthesisOptions, "draft", "--draft", "-d")] = SynthesisOptions.draft,
    method: Annotated[Optional[TtsMethod], _option(SynthesisOptions, "method")] = SynthesisOptions.method,
    beta: Annotated[float, _option(SynthesisOptions, "beta")] = SynthesisOptions.beta,
    draft_len: Annotated[Optional[int], _option(SynthesisOptions, "draft_len")] = SynthesisOptions.draft_len,
    temperature: Annotated[float, _option(SynthesisOptions, "temperature")] = SynthesisOptions.temperature,
    top_k: Annotated[Optional[int], _option(SynthesisOptions, "top_k")] = SynthesisOptions.top_k,
    top_p: Annotated[Optional[float], _option(SynthesisOptions, "top_p")] = SynthesisOptions.top_p,
    seed: Annotated[int, _option(SynthesisOptions, "seed")] = SynthesisOptions.seed,
    voice: Annotated[Optional[str], _option(SynthesisOptions, "voice", "--voice", "-v")] = SynthesisOptions.voice,
    pause: Annotated[float, _option(SynthesisOptions, "pause")] = SynthesisOptions.pause,
    play: Annotated[bool, _output("--play", help="Play the audio (sounddevice).")] = False,
    stats: Annotated[bool, _output("--stats", help="Print sampling statistics.")] = False,
    device: Annotated[Device, _option(ModelOptions, "device")] = Device(ModelOptions.device),
    dtype: Annotated[DType, _option(ModelOptions, "dtype", command="synthesize")] = DType(ModelOptions.dtype),
    threads: Annotated[Optional[int], _option(ModelOptions, "threads")] = ModelOptions.threads,
):
    """Speak text: Bark sampled with ssd (exact at --beta 0) or ar, or the offline voice; writes a wav."""
    values = dict(locals())
    options = _build(SynthesisOptions, values)
    if output is None and not play:
        raise OptionError("say where the audio goes: -o out.wav, -o - (standard output) or --play")
    if output is not None and str(output) != "-":
        _check_destination(output)
    spoken = _text(text, text_file)
    if not spoken.strip():
        raise SpecvoiceError("no text to speak (empty input)")
    synthesizer, notes = _synthesizer(options, ModelOptions(device=device.value, dtype=dtype.value, threads=threads))
    for note in notes + synthesizer.reading_notes(spoken):
        stderr.print(f"note: {note}", markup=False)
    result = synthesizer.synthesize(spoken)
    _deliver(result, output, play)
    if stats:
        s = result.stats
        line = f"{len(result.sentences)} sentence(s), {result.seconds:.2f} s of audio at {result.sample_rate} Hz"
        if s.tokens:
            line += (f"; token stages {result.lm_seconds:.2f} s, {s.tokens} tokens, {s.target_passes} target passes, "
                     f"{s.mean_accepted_length:.2f} tokens/pass, acceptance {s.acceptance_rate:.0%}")
        stderr.print(line, markup=False)


def _synthesizer(options: SynthesisOptions, models: ModelOptions):
    import torch
    import transformers

    from .synthesize import Synthesizer, load_speaker

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    if models.threads:
        torch.set_num_threads(models.threads)
    placement = models.placement()
    if placement.int8 and models.dtype == "int8":
        raise SpecvoiceError("--dtype int8 is for transcribe; synthesize runs float32, float16 or bfloat16")
    speaker, notes = load_speaker(options, placement.device, placement.dtype)
    return Synthesizer(speaker, options, placement.device), notes


def _deliver(result, output: Optional[Path], play: bool) -> None:
    from .files import os_reason, write_atomic
    from .synthesize import wav_bytes

    if output is not None:
        data = wav_bytes(result.audio, result.sample_rate)
        if str(output) == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            try:
                write_atomic(output, data)
            except OSError as exc:
                raise SpecvoiceError(f"{output}: cannot write ({os_reason(exc)})") from None
    if play:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise SpecvoiceError(f"--play needs sounddevice and PortAudio: pip install 'specvoice[listen]' ({exc})") from None
        try:
            sounddevice.play(result.audio, result.sample_rate)
            sounddevice.wait()
        except sounddevice.PortAudioError as exc:
            raise SpecvoiceError(f"--play: {exc}") from None


@app.command(cls=_Command)
def listen(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Replay this audio file through the live pipeline instead of the microphone.", rich_help_panel=PANEL_LIVE)] = None,
    input_device: Annotated[Optional[str], _option(ListenOptions, "input_device")] = ListenOptions.input_device,
    list_devices: Annotated[bool, typer.Option("--list-devices", help="List the input devices and exit.", rich_help_panel=PANEL_LIVE)] = False,
    step: Annotated[float, _option(ListenOptions, "step")] = ListenOptions.step,
    speed: Annotated[float, _option(ListenOptions, "speed")] = ListenOptions.speed,
    previous_draft: Annotated[bool, _option(ListenOptions, "previous_draft", "--previous-draft/--no-previous-draft")] = ListenOptions.previous_draft,
    vad: Annotated[bool, _option(ListenOptions, "vad", "--vad/--no-vad")] = ListenOptions.vad,
    model: Annotated[str, _option(ModelOptions, "model", "--model", "-m")] = ModelOptions.model,
    method: Annotated[Method, _option(DecodingOptions, "method")] = Method(DecodingOptions.method),
    draft: Annotated[Optional[str], _option(ModelOptions, "draft", "--draft", "-d")] = ModelOptions.draft,
    language: Annotated[Optional[str], _option(DecodingOptions, "language", "--language", "-l")] = DecodingOptions.language,
    output_dir: Annotated[Optional[Path], _output("--output-dir", "-o", help="Write the committed transcript here on exit.")] = None,
    output_format: Annotated[Optional[OutputFormat], _output("--output-format", "-f", help="File format (default txt when --output-dir is given).")] = None,
    device: Annotated[Device, _option(ModelOptions, "device")] = Device(ModelOptions.device),
    dtype: Annotated[DType, _option(ModelOptions, "dtype")] = DType(ModelOptions.dtype),
    stats: Annotated[bool, _output("--stats", help="Print commit delays, real-time factor and work per update on exit.")] = False,
    threads: Annotated[Optional[int], _option(ModelOptions, "threads")] = ModelOptions.threads,
):
    """Live transcription from the microphone (or --input FILE): committed text plain, tentative text dim."""
    from .listen import describe_devices

    if list_devices:
        for line in describe_devices():
            typer.echo(line)
        return
    values = dict(locals(), timestamps=True)
    formats = _formats(output_dir, output_format)
    listening, options, models = _build(ListenOptions, values), _build(DecodingOptions, values), _build(ModelOptions, values)
    source = _live_source(input, listening)
    options = options.on(models.placement().device, models.draft)
    transcriber = _transcriber(models, models.draft_for(options.method), options)
    from .listen import LineView, LiveView, Status, Streamer, WhisperRecognizer, measure, run, transcript

    recognizer = WhisperRecognizer(transcriber, listening.previous_draft)
    speech = None
    if listening.vad:
        from .audio.vad import speech_probabilities as speech
    streamer = Streamer(recognizer, source.clock, speech)
    out = Console(highlight=False, soft_wrap=True)
    status = Status(input.name if input else source.name, model, options.method, source.queue)
    with (LiveView(out, status) if out.is_terminal else LineView(out)) as view, source.running() as audio_queue:
        interrupted = run(streamer, audio_queue, listening.step, view, view.warn)
        view.ended(interrupted)
    if source.stuck:
        stderr.print("warning: the input device stopped sending audio and would not close; left it open",
                     markup=False)
    seconds = audio_queue.seconds
    if stats:
        stderr.print(measure(streamer, seconds).line(), markup=False)
    if formats:
        from .transcript import write_outputs

        result = transcript(streamer, recognizer.language, recognizer.stats, seconds)
        extra = {"model": model, "method": options.method, "stream": measure(streamer, seconds).as_dict()}
        write_outputs(result, output_dir / (input.stem if input else "listen"), formats, extra)
    if interrupted:
        raise typer.Exit(130)  # as transcribe exits on Ctrl-C, once the transcript is written


def _live_source(path: Optional[Path], listening: ListenOptions):
    """The microphone (checked before any model loads), or a file to replay at --speed."""
    from .listen import FileReplay, Microphone

    if path is None:
        return Microphone(listening.input_device)
    if listening.input_device is not None:
        raise OptionError("--input-device and --input: listen to a device or replay a file, not both")
    from .audio import load_audio

    return FileReplay(load_audio(path), listening.speed)


@app.command(cls=_Command)
def bench(
    manifest: Annotated[Path, typer.Option("--manifest", help="Speech manifest: JSON lines with id, audio (path relative to the manifest), text; optional kind, noisy.", rich_help_panel=PANEL_BENCH)],
    task: Annotated[BenchTask, typer.Option(help="transcribe: the manifest's audio, every method and peer; stream: live transcription of each clip (listen's pipeline): commit delays, passes and decoder time per update for ar, the previous-hypothesis draft, specasr and both; tts: speak the manifest's texts with ar and ssd at each --betas and transcribe them back with --model/--draft.", rich_help_panel=PANEL_BENCH)] = BenchTask.transcribe,
    process: Annotated[bool, typer.Option("--process", help="transcribe: time each contestant as a whole command, as a user times it (specvoice transcribe; faster-whisper through a script): one command per clip and one over all clips, wall seconds, each command's peak memory, faster-whisper's start-up; then the same contestants in this process, beside them.", rich_help_panel=PANEL_BENCH)] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Measure only the first N usable clips.", rich_help_panel=PANEL_BENCH)] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs of each contestant before measuring.", rich_help_panel=PANEL_BENCH)] = 1,
    repeat: Annotated[int, typer.Option(min=1, help="Timed runs of each contestant per clip (transcribe: each paired with a run of ar; --process: contestants alternate run by run).", rich_help_panel=PANEL_BENCH)] = 1,
    model: Annotated[str, _option(ModelOptions, "model", "--model", "-m")] = ModelOptions.model,
    draft: Annotated[Optional[str], _option(ModelOptions, "draft", "--draft", "-d", command="bench")] = ModelOptions.draft,
    methods: Annotated[str, typer.Option(help="transcribe: comma-separated methods, or all; ar is always measured, as the reference.", rich_help_panel=PANEL_MODELS)] = "all",
    peers: Annotated[str, typer.Option(help="transcribe: comma-separated peers: transformers, faster-whisper-int8, faster-whisper-float32 (faster-whisper: both), all, or none.", rich_help_panel=PANEL_MODELS)] = "all",
    dtypes: Annotated[str, typer.Option(help="transcribe: comma-separated precisions to measure every method at (auto, int8, float32, float16, bfloat16); the first one's ar is the reference.", rich_help_panel=PANEL_MODELS)] = ModelOptions.dtype,
    tts_model: Annotated[Optional[str], _option(SynthesisOptions, "model", "--tts-model", command="bench")] = SynthesisOptions.model,
    tts_draft: Annotated[Optional[str], _option(SynthesisOptions, "draft", "--tts-draft", command="bench")] = SynthesisOptions.draft,
    betas: Annotated[str, typer.Option(help="tts: comma-separated ssd tolerances to measure (0 is exact).", rich_help_panel=PANEL_MODELS)] = "0,0.4",
    speed: Annotated[float, _option(ListenOptions, "speed", command="bench")] = ListenOptions.speed,
    step: Annotated[float, _option(ListenOptions, "step", command="bench")] = ListenOptions.step,
    device: Annotated[Device, _option(ModelOptions, "device")] = Device(ModelOptions.device),
    threads: Annotated[Optional[int], _option(ModelOptions, "threads", command="bench")] = ModelOptions.threads,
    output_dir: Annotated[Path, _output("--output-dir", "-o", help="Where the reports go: results.json, results.md and chart.png (stream: stream.json, stream.md; tts: tts-results.json, tts-results.md).")] = Path("bench-out"),
):
    """Measure the methods beside transformers and faster-whisper on a speech manifest: WER, speed-up vs ar, passes per token.

    With --task stream: commit delays and work per update of live transcription. With --task tts: LM-stage
    seconds per audio second of ar and ssd, speed-up, tokens per target pass, acceptance, and the WER of each
    synthesized sentence transcribed back."""
    if process and task != BenchTask.transcribe:
        raise OptionError(f"--process times transcription commands: it goes with --task transcribe, not {task.value}")
    draft = ModelOptions(model=model, draft=draft, device=device.value, threads=threads).draft_for("specasr")
    if task == BenchTask.tts:
        return _bench_tts(manifest, limit, output_dir, warmup, repeat, betas,
                          SynthesisOptions(model=tts_model, draft=tts_draft),
                          ModelOptions(model=model, draft=draft, device=device.value, dtype=dtypes.split(",")[0].strip(),
                                       threads=threads))

    from .bench.manifest import read_manifest
    from .bench.suite import method_names, peer_names

    precisions = [ModelOptions(model=model, draft=draft, device=device.value, dtype=name.strip(), threads=threads)
                  for name in dtypes.split(",") if name.strip()]
    method_list, peer_list = method_names(methods), peer_names(peers)
    clips, skipped = read_manifest(manifest, limit)
    for line in skipped:
        stderr.print(f"warning: {manifest}:{line.line}: {line.reason}", markup=False)
    if not clips:
        raise SpecvoiceError(f"{manifest}: no usable clips ({len(skipped)} lines skipped)")
    if task == BenchTask.stream:
        _bench_stream(clips, precisions[0], draft, ListenOptions(speed=speed, step=step), output_dir)
        return
    context = {"manifest": str(manifest), "limit": limit}
    if process:
        _bench_process(clips, skipped, precisions, method_list, peer_list, draft, model, context, warmup, repeat,
                       output_dir)
    else:
        _bench_in_process(clips, skipped, precisions, method_list, peer_list, draft, model, context, warmup, repeat,
                          output_dir)


def _bench_in_process(clips, skipped, precisions: list[ModelOptions], methods: list[str], peers: list[str],
                      draft: str, model: str, context: dict, warmup: int, repeat: int, output_dir: Path) -> dict:
    """The transcribe bench in this process: every contestant interleaved with ar; its results, also written."""
    import shlex

    from .bench.report import print_table, write_reports
    from .bench.suite import contestants, run_bench

    needs_draft = "transformers" in peers or any(DecodingOptions(m).needs_draft for m in methods)
    targets, draft_model = _load_targets(precisions, draft if needs_draft else None)
    chosen, notes = contestants(methods, peers, targets, draft_model, model)
    for note in notes:
        stderr.print(f"note: {note}", markup=False)
    first = next(iter(targets.values()))
    settings = {**context, "model": model, "draft": draft if needs_draft else None, "methods": methods,
                "peers": peers, "device": first.device.type}
    results = run_bench(clips, chosen, device=first.device, precisions=list(targets), warmup=warmup, repeat=repeat,
                        command=shlex.join(["specvoice", *sys.argv[1:]]), settings=settings, notes=notes,
                        skipped_lines=skipped)
    print_table(Console(highlight=False, width=None if sys.stdout.isatty() else 200), results)  # a file gets the whole table
    written, more_notes = write_reports(results, output_dir)
    for note in more_notes:
        stderr.print(f"note: {note}", markup=False)
    stderr.print(f"wrote {', '.join(str(path) for path in written)}", markup=False)
    return results


def _bench_process(clips, skipped, precisions: list[ModelOptions], methods: list[str], peers: list[str], draft: str,
                   model: str, context: dict, warmup: int, repeat: int, output_dir: Path) -> None:
    """`bench --process`: each contestant as a whole command, then the same contestants in this process (their
    report in OUTPUT_DIR/in-process), set side by side."""
    import shlex
    from dataclasses import replace

    import torch

    from .bench import process
    from .bench.suite import machine

    placement = precisions[0].placement()
    threads = precisions[0].threads or torch.get_num_threads()  # every command and the in-process run alike
    precisions = [replace(p, threads=threads) for p in precisions]
    labels = [p.placement().label for p in precisions]
    chosen, notes = process.commands(methods, labels, peers, model, draft, placement.device, threads)
    goals, more_notes = process.targets(clips)
    notes += more_notes + [f"manifest line {s.line} skipped: {s.reason}" for s in skipped]
    for note in notes:
        stderr.print(f"note: {note}", markup=False)
    steps = process.schedule(chosen, goals, warmup, repeat)
    startups, outcomes = process.measure(process.with_progress(steps))
    timed = {command.name for command in chosen}
    inside = _bench_in_process(clips, skipped, precisions, methods, [p for p in peers if p in timed], draft, model,
                               context, warmup, repeat, output_dir / "in-process")
    settings = {**context, "model": model, "draft": draft, "methods": methods, "peers": peers,
                "device": placement.device, "threads": threads, "warmup": warmup, "repeat": repeat}
    results = process.results(chosen, goals, startups, outcomes, process.in_process_seconds(inside),
                              command=shlex.join(["specvoice", *sys.argv[1:]]),
                              machine=machine(torch.device(placement.device), labels), settings=settings, notes=notes)
    typer.echo(process.markdown(results), nl=False)
    written = process.write_reports(results, output_dir)
    stderr.print(f"wrote {', '.join(str(path) for path in written)}", markup=False)


def _bench_tts(manifest: Path, limit: Optional[int], output_dir: Path, warmup: int, repeat: int, betas: str,
               options: SynthesisOptions, models: ModelOptions) -> None:
    import shlex

    from .audio import to_model_rate
    from .bench.manifest import read_manifest
    from .bench.tts import EXPLANATIONS, markdown_table, run_tts_bench, speakable, tts_contestants, write_tts_reports

    try:
        beta_list = [float(b) for b in betas.split(",") if b.strip()]
    except ValueError:
        raise SpecvoiceError(f"--betas {betas!r}: give numbers such as 0,0.4") from None
    clips, _ = read_manifest(manifest, limit)
    texts = [(clip.id, speakable(clip.reference)) for clip in clips if clip.reference.strip()]
    if not texts:
        raise SpecvoiceError(f"{manifest}: no texts to speak")
    synthesizer, notes = _synthesizer(options, ModelOptions(device=models.device, threads=models.threads))
    contestants, more_notes = tts_contestants(synthesizer, beta_list)
    transcriber = _transcriber(models, models.draft, DecodingOptions(language="en"))
    heard = lambda audio, rate: transcriber.transcribe(to_model_rate(audio, rate)).text
    results = run_tts_bench(texts, contestants, heard, repeat, warmup)
    notes += more_notes
    command = shlex.join(["specvoice", *sys.argv[1:]])
    Console(highlight=False, width=200).print(markdown_table(results["summary"]), markup=False)
    for line in EXPLANATIONS + notes:
        stderr.print(f"note: {line}", markup=False)
    written = write_tts_reports(results, output_dir, command, notes)
    stderr.print(f"wrote {', '.join(str(path) for path in written)}", markup=False)


def _bench_stream(clips, models: ModelOptions, draft: str, listening: ListenOptions, output_dir: Path) -> None:
    from .bench.stream import markdown, run_stream_bench, summarise, write_stream_reports

    target, draft_model, _ = _load_models(models, draft)
    results = run_stream_bench(clips, target, draft_model, listening,
                               warn=lambda text: stderr.print(f"warning: {text}", markup=False),
                               progress=lambda text: stderr.print(text, markup=False))
    rows = summarise(results)
    typer.echo(markdown(rows), nl=False)
    written = write_stream_reports(results, rows, output_dir)
    stderr.print(f"wrote {', '.join(str(path) for path in written)}", markup=False)


@app.command(cls=_Command)
def distill(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the trained draft goes (a .safetensors file); pass it to transcribe as --draft FILE.")],
    model: Annotated[str, _option(ModelOptions, "model", "--model", "-m")] = ModelOptions.model,
    shares: Annotated[str, typer.Option(help=describe(DistillOptions, "shares")["help"])] = ",".join(map(str, DistillOptions.shares)),
    frequent: Annotated[int, _option(DistillOptions, "frequent")] = DistillOptions.frequent,
    repeats: Annotated[int, _option(DistillOptions, "repeats")] = DistillOptions.repeats,
    epochs: Annotated[int, _option(DistillOptions, "epochs")] = DistillOptions.epochs,
    learning_rate: Annotated[float, _option(DistillOptions, "learning_rate")] = DistillOptions.learning_rate,
    seed: Annotated[int, _option(DistillOptions, "seed")] = DistillOptions.seed,
    threads: Annotated[Optional[int], _option(ModelOptions, "threads")] = ModelOptions.threads,
) -> None:
    """Train a shallow draft for a target: a few of its decoder layers that read its own encoder output, with a
    small output vocabulary, taught to say the target's own greedy tokens (no labels) on audio the offline voice
    speaks from a built-in public-domain text. Runs on the CPU; the draft for base ships (--draft shallow)."""
    if output.suffix != ".safetensors":
        raise OptionError(f"{output}: a draft file ends in .safetensors")
    if output.is_dir():
        raise OptionError(f"{output}: is a folder; give a file name such as draft.safetensors")
    try:
        layers = tuple(int(part) for part in shares.split(","))
    except ValueError:
        raise OptionError(f"--shares {shares!r}: give layer numbers such as 0,5") from None
    settings = DistillOptions(layers, frequent, repeats, epochs, learning_rate, seed)
    import torch

    from .distill import distill as train_draft, gather
    from .files import fill_atomic
    from .hibari import HibariVoice
    from .models import load_whisper

    if threads:
        torch.set_num_threads(threads)
    target = load_whisper(model, int8=True)  # the CPU's exact target: the draft learns what it says
    if max(layers) >= target.model.config.decoder_layers:
        raise SpecvoiceError(f"--shares {shares}: {model} has decoder layers 0 to {target.model.config.decoder_layers - 1}")
    voice = HibariVoice()

    def speak(text: str, speed: float, voice_seed: int):
        return voice.speak(text, voice_seed, speed), voice.sample_rate

    def progress(done: int) -> None:
        if done % 50 == 0:
            stderr.print(f"taught {done} pieces", markup=False)

    examples = gather(target, speak, settings, progress=progress)
    result = train_draft(target, examples, settings,
                         report=lambda epoch, loss: stderr.print(f"epoch {epoch}: loss {loss:.3f}", markup=False))
    fill_atomic(output, result.draft.save)  # safetensors alone left a 0600 file, and a partial one on a failure
    print(f"{output}: draft for {model} ({len(result.draft.vocabulary)} tokens, layers {shares}) trained on "
          f"{result.examples} pieces; agrees with the target on {result.held_out.rate:.1%} of "
          f"{result.held_out.positions} held-out tokens")


def _interrupted(signum, frame) -> None:
    # Said here, as Ctrl-C lands: typer turns the KeyboardInterrupt into a silent exit 130 (outputs are written
    # atomically, so none is left half-written).
    stderr.print("interrupted", markup=False)
    raise KeyboardInterrupt


def _usage_message(exc) -> str:
    """typer's message, without the "Value error, " that pydantic (which typer >= 0.25 checks values with) puts
    before the words of the check that failed."""
    errors = getattr(exc.__cause__, "errors", None)
    first = errors()[0] if callable(errors) and errors() else {}
    if first.get("type") == "value_error":
        exc.message = str(first["ctx"]["error"])
    return exc.format_message()


def run() -> None:
    """The `specvoice` command (and `python -m specvoice`): main(), then the exit a finished command can take."""
    try:
        main()
    except SystemExit as stop:
        _exit_now(stop.code)


def _exit_now(code: int | str | None) -> NoReturn:
    """End the process as the interpreter would, minus its teardown: threads joined and exit handlers run (a
    local Ray stopped, the bench's worker process ended), output flushed, then os._exit. The teardown frees
    PyTorch's modules one by one, ~0.25 s: an eighth of a short clip's whole command (BENCHMARKS.md)."""
    import atexit
    import threading

    if isinstance(code, str):  # sys.exit("message"), as the interpreter would say it
        print(code, file=sys.stderr)
        code = 1
    finish_threads = getattr(threading, "_shutdown", None)  # what the interpreter runs first at exit
    if finish_threads is None:
        sys.exit(code)
    finish_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream: nothing more to say
            pass
    os._exit(code or 0)


def main() -> None:
    import signal

    usage = _click("exceptions")

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
    try:
        code = app(standalone_mode=False)  # usage errors come back here, to be said in one line
    except usage.NoArgsIsHelpError as exc:
        exc.show()  # no arguments: the help, as typer would
        sys.exit(exc.exit_code)
    except usage.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "specvoice"
        stderr.print(f"error: {_usage_message(exc)} (see {command} --help)", markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        stderr.print("interrupted", markup=False)
        sys.exit(130)
    except SpecvoiceError as exc:
        stderr.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless asked for the traceback
        if os.environ.get("SPECVOICE_DEBUG"):
            raise
        stderr.print(f"error: unexpected {type(exc).__name__}: {exc} (set SPECVOICE_DEBUG=1 for a traceback)", markup=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(n) and --help come back as a code
