"""A transcribe run spread over Ray workers (`transcribe --workers N`).

Each worker is a Ray actor that loads the models once and runs transcribe_input (batch.py) on one input at a
time, so it writes exactly the files a one-process run writes, each atomically. The driver hands out inputs,
keeps one progress bar and the tallies. A worker whose process dies (killed, out of memory, its node lost) is
replaced, and the input it held is given to the next free worker: a file is never left half-written and never
counted twice. Without an address a local Ray is started for the run (sized for this machine) and stopped
after it; with --ray-address or $RAY_ADDRESS the run joins that cluster, whose nodes must have specvoice and
the models installed and see the inputs and the output folder at the same paths (a shared file system).
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import SpecvoiceError
from ..options import BatchOptions
from .batch import transcribe_input
from .inputs import Input

INSTALL = "pip install 'specvoice[cluster]'"
# Ray's shared-memory object store holds only the inputs read from stdin and the small results: a local one
# needs no more than Ray's floor (it would otherwise take 30% of the machine's memory).
LOCAL_OBJECT_STORE = 80 * 2**20
# An input whose worker died under it is tried on another worker this many times more, then given up on: a
# file that kills every worker that reads it must not take the whole run down with it.
RETRIES = 2
CONNECT_TIMEOUT = 10  # seconds for a cluster's head to answer
WAIT = 0.5  # seconds between looks at the workers (the progress bar's clock ticks meanwhile)


def require_ray():
    """The ray module, or the one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecvoiceError(f"--workers needs Ray: {INSTALL}") from None
    return ray


def threads_per_worker(batch: BatchOptions, threads: int | None) -> int:
    """--threads if given; on a local Ray the machine's cores shared out; on a cluster one (set --threads to the
    cores each worker should have: Ray reserves that many per worker)."""
    if threads:
        return threads
    local = batch.ray_address is None and not os.environ.get("RAY_ADDRESS")
    return max(1, (os.cpu_count() or 1) // batch.workers) if local else 1


class TranscribeWorker:
    """One Ray actor: the models, loaded once; then input after input. Its process title reads
    ray::TranscribeWorker.transcribe while it decodes (Ray's doing), which is how the test finds one mid-file."""

    def __init__(self, load: Callable[[], object], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.transcriber, self.problem = None, None
        try:
            self.transcriber = load()
        except SpecvoiceError as exc:
            self.problem = str(exc)

    def ready(self) -> tuple[str, str | None]:
        return self.name, self.problem

    def transcribe(self, item: Input, output_dir: Path, formats: list[str], record: dict) -> tuple[str, str | None]:
        """This worker's name, and the problem with the input (None when its files are written)."""
        if self.problem:
            return self.name, self.problem
        try:
            transcribe_input(self.transcriber, item, output_dir, formats, record)
        except SpecvoiceError as exc:
            return self.name, str(exc)
        except Exception as exc:  # a bug, said as one line like the one-process run says it
            return self.name, f"{item.name}: unexpected {type(exc).__name__}: {exc}"
        return self.name, None


@dataclass
class Tally:
    """What the run did: for the progress bar, the summary and the exit status."""

    files: int
    seconds: float
    done: int = 0
    done_seconds: float = 0.0
    per_worker: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    ready_after: float = 0.0  # seconds until every worker had its models

    def summary(self) -> list[str]:
        wall = time.monotonic() - self.began
        hours = self.done_seconds / 3600
        rtf = wall / self.done_seconds if self.done_seconds else float("nan")
        workers = ", ".join(f"{name} {count}" for name, count in sorted(self.per_worker.items()))
        lines = [f"transcribed {self.done} of {self.files} files, {hours:.3f} audio hours in {wall:.1f} s wall "
                 f"(real-time factor {rtf:.3f}, {3600 * hours / max(wall, 1e-9):.1f} audio hours per hour; workers "
                 f"ready after {self.ready_after:.1f} s); files per worker: {workers or 'none'}"]
        if self.retried:
            lines.append(f"retried {len(self.retried)} on another worker after their worker died mid-file: "
                         + ", ".join(self.retried))
        lines += [f"failed: {line}" for line in self.failures]
        return lines


class _Pool:
    """The workers: started, replaced when one dies, stopped at the end."""

    def __init__(self, ray, load: Callable[[], object], batch: BatchOptions, threads: int):
        self.ray = ray
        self.actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_task_retries=0)(TranscribeWorker)
        self.load, self.threads = load, threads
        self.actors = [self.start() for _ in range(batch.workers)]

    def start(self):
        return self.actor_class.remote(self.load, self.threads)

    def wait_ready(self) -> None:
        """Every worker has its models; the first that could not load them ends the run with its reason."""
        for name, problem in self.ray.get([actor.ready.remote() for actor in self.actors]):
            if problem:
                raise SpecvoiceError(problem)

    def replace(self, actor):
        self.ray.kill(actor)
        fresh = self.start()
        self.actors[self.actors.index(actor)] = fresh
        return fresh

    def stop(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), TextColumn("{task.fields[files]} files"),
                    TextColumn("{task.fields[hours]} audio h"), TextColumn("{task.fields[speed]}"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


def _connect(ray, batch: BatchOptions, threads: int) -> None:
    address = batch.ray_address or os.environ.get("RAY_ADDRESS")
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SpecvoiceError(f"--ray-address {address}: cannot join the Ray cluster ({exc})") from None
        return
    # "local" always starts a fresh Ray, even where one runs on this machine already (ray start).
    ray.init(address="local", num_cpus=batch.workers * threads, object_store_memory=LOCAL_OBJECT_STORE, **quiet)


def _check_reachable(address: str) -> None:
    """A host:port that does not answer is said at once (Ray itself would retry it for minutes, loudly)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray reads itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise SpecvoiceError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def run_on_ray(inputs: list[Input], batch: BatchOptions, load: Callable[[], object], threads: int | None,
               output_dir: Path, formats: list[str], record: dict, console: Console) -> int:
    """Transcribe `inputs` on Ray workers, each built with `load()` (a Transcriber); says each failure as one
    error line and the summary at the end. Returns how many inputs failed."""
    ray = require_ray()
    threads = threads_per_worker(batch, threads)
    # Workers may run in other folders (or on other machines): they get absolute paths.
    sent = [Input(i.name, i.source if isinstance(i.source, bytes) else i.source.resolve(), i.stem, i.seconds)
            for i in inputs]
    tally = Tally(len(inputs), sum(i.seconds for i in inputs))
    _connect(ray, batch, threads)
    pool = None
    try:
        with _progress(console) as progress:
            bar = progress.add_task("loading models", total=tally.seconds or 1, files=f"0/{tally.files}", hours="0",
                                    speed="")
            pool = _Pool(ray, load, batch, threads)
            pool.wait_ready()
            tally.ready_after = time.monotonic() - tally.began
            progress.update(bar, description="transcribing")
            say = lambda line: progress.console.print(line, markup=False)
            _dispatch(ray, pool, sent, output_dir.resolve(), formats, record, tally,
                      lambda: _show(progress, bar, tally), say)
    except KeyboardInterrupt:
        console.print(f"stopped after {tally.done} of {tally.files} files; the same command with --resume "
                      "finishes the run", markup=False)
        raise
    finally:
        if pool is not None:
            pool.stop()
        ray.shutdown()  # stops the local Ray this run started; only disconnects from a cluster
    for line in tally.summary():
        console.print(line, markup=False)
    return len(tally.failures)


def _show(progress: Progress, bar, tally: Tally) -> None:
    wall = time.monotonic() - tally.began
    progress.update(bar, completed=tally.done_seconds, files=f"{tally.done}/{tally.files}",
                    hours=f"{tally.done_seconds / 3600:.3f}/{tally.seconds / 3600:.3f}",
                    speed=f"{tally.done_seconds / max(wall, 1e-9):.1f}x real time")


def _dispatch(ray, pool: _Pool, inputs: list[Input], output_dir: Path, formats: list[str], record: dict,
              tally: Tally, show: Callable[[], None], say: Callable[[str], None]) -> None:
    """Keep every worker on one input until none is left; an input whose worker died goes back in the queue.
    Longest first: the run then ends with short files on every worker, not one long file on one of them."""
    queue, deaths = deque(sorted(inputs, key=lambda item: -item.seconds)), Counter()
    idle, busy = list(pool.actors), {}
    while queue or busy:
        while idle and queue:
            actor, item = idle.pop(), queue.popleft()
            busy[actor.transcribe.remote(item, output_dir, formats, record)] = (actor, item)
        finished, _ = ray.wait(list(busy), num_returns=1, timeout=WAIT)
        for ref in finished:
            actor, item = busy.pop(ref)
            try:
                worker, problem = ray.get(ref)
            except ray.exceptions.RayActorError as lost:
                idle.insert(0, pool.replace(actor))  # (a loaded worker, where one is free, takes the input)
                deaths[item.name] += 1
                problem = _lost(item, deaths[item.name], str(lost).splitlines()[0], queue, tally, say)
                if problem is None:
                    continue
            else:
                idle.append(actor)
            if problem:
                tally.failures.append(problem)
                say(f"error: {problem}")
            else:
                tally.done += 1
                tally.done_seconds += item.seconds
                tally.per_worker[worker] += 1
        show()


def _lost(item: Input, deaths: int, reason: str, queue: deque, tally: Tally, say: Callable[[str], None]) -> str | None:
    """An input whose worker died: back to the front of the queue, or (after RETRIES) the failure to report."""
    if deaths > RETRIES:
        return f"{item.name}: its worker died {deaths} times decoding it ({reason})"
    queue.appendleft(item)
    tally.retried.append(item.name)
    say(f"warning: a worker died decoding {item.name} ({reason}); retrying it on another worker")
    return None
