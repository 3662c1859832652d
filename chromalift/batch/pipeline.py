"""Many photos through read -> colorize -> write, decoding and encoding overlapped with the network.

One thread decodes the next photo while the network works on this one, and one thread encodes and
writes the previous result: on two cores the network's serial parts and the codecs (which release the
GIL) fill each other's gaps. At most `ahead` photos wait decoded and `ahead` results wait to be written,
so memory stays at a few photos whatever the folder's length. Outcomes come back in the input order,
from the calling thread, exactly as a loop over the photos would give them.
"""
from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

Job = TypeVar("Job")


def _failed(error: BaseException) -> Future:
    f: Future = Future()
    f.set_exception(error)
    return f


@contextmanager
def _whole():
    """A Ctrl-C or SIGTERM inside the block waits for its end (a write handed over and noted, an outcome
    reported and taken off), then interrupts: no photo is written without being reported."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            raise KeyboardInterrupt


def overlapped(jobs: Iterable[Job], read: Callable, work: Callable, write: Callable,
               done: Callable[[Job, object, BaseException | None], None], *, ahead: int = 1) -> None:
    """For each job in order: data = read(job) (in a reader thread), result = work(job, data) (here),
    write(job, data, result) (in a writer thread), then done(job, written, error) here, in the jobs' order.

    An Exception from any stage is that job's error (the others go on); a KeyboardInterrupt cancels the
    reads not yet started, lets the writes in flight finish (each is atomic), reports them, and propagates.
    An interrupt waits while a write is handed over or an outcome reported, so every photo written is reported."""
    jobs = list(jobs)
    reads: deque[tuple[Job, Future]] = deque()
    writes: deque[tuple[Job, Future]] = deque()
    readers = ThreadPoolExecutor(1, thread_name_prefix="colorize-read")
    writers = ThreadPoolExecutor(1, thread_name_prefix="colorize-write")
    position = 0

    def report(block: bool) -> None:
        while writes and (block or writes[0][1].done() or len(writes) > ahead):
            job, future = writes[0]
            error = future.exception()
            with _whole():
                done(job, None if error else future.result(), error)
                writes.popleft()

    try:
        while position < len(jobs) or reads:
            while position < len(jobs) and len(reads) <= ahead:
                reads.append((jobs[position], readers.submit(read, jobs[position])))
                position += 1
            job, pending = reads.popleft()
            try:
                data = pending.result()
                result = work(job, data)
                with _whole():
                    writes.append((job, writers.submit(write, job, data, result)))
            except Exception as e:  # noqa: BLE001 -- passed on to done(), which decides (the CLI re-raises bugs)
                writes.append((job, _failed(e)))
            report(block=False)
        report(block=True)
    except KeyboardInterrupt:
        for _, future in reads:
            future.cancel()
        report(block=True)
        raise
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)
