"""A batching engine: requests from many threads are answered together, one ``generate`` per batch.

Callers (server handlers, a benchmark) submit requests from any thread and get a future back. One worker
thread owns the model: it waits for a request, keeps collecting for a few milliseconds (or until the
batch is full), then renders, encodes and generates the whole batch at once. Greedy answers are the same
as answering each request alone (left padding, masked), so batching changes speed, not text.

The queue is bounded: a request that would exceed it is refused at once with :class:`EngineFull`, so an
overloaded server answers "try later" instead of piling up latency.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from azeros.inference.chat import Turn, conversation_of
from azeros.inference.generate import answer_batch
from azeros.llm import Answer, GenerationParams
from azeros.models import SpeechLLM, build_batch, encode_audio
from azeros.text import MODE_SYSTEM, SystemMessage

__all__ = ["Engine", "EngineFull", "EngineRequest"]

logger = logging.getLogger(__name__)


class EngineFull(RuntimeError):
    """The engine already holds as many requests as it may; try again later."""


@dataclass
class EngineRequest:
    """One conversation to answer.

    Attributes:
        turns: the conversation, ending with a user turn (audio already decoded to 16 kHz).
        system: the system message, sent verbatim; :data:`azeros.text.MODE_SYSTEM`: the chat mode's.
        params: generation parameters (requests with equal params share batches).
        on_text: called from the engine's thread with each new piece of the answer (streaming).
        abandoned: set it when nobody waits for the answer any more: generation of it stops at the
            next token (a request still queued is dropped by cancelling its future instead).
    """

    turns: list[Turn]
    system: SystemMessage = MODE_SYSTEM
    params: GenerationParams = field(default_factory=GenerationParams)
    on_text: Callable[[str], None] | None = None
    abandoned: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Job:
    request: EngineRequest
    future: Future


class Engine:
    """Answers requests in batches on one worker thread.

    Args:
        model: the model; only the engine's thread uses it once the engine runs.
        max_batch_size: most requests in one ``generate``.
        batch_window_ms: how long to keep collecting after the first request of a batch arrives.
        max_pending: most requests waiting or running; more are refused with :class:`EngineFull`.
    """

    def __init__(
        self, model: SpeechLLM, *, max_batch_size: int = 8, batch_window_ms: float = 5.0, max_pending: int = 64
    ) -> None:
        if max_batch_size < 1 or max_pending < 1:
            raise ValueError("max_batch_size and max_pending must be at least 1")
        self.model = model
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window_ms / 1000
        self.max_pending = max_pending
        self.batches_run = 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="azeros-engine", daemon=True)
        self._worker.start()

    @property
    def pending(self) -> int:
        """Requests waiting or running."""
        return self._pending

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._worker.is_alive()

    def submit(self, request: EngineRequest) -> Future[Answer]:
        """Queue a request; its future resolves to the :class:`Answer` (or the error that stopped it).

        Raises:
            EngineFull: ``max_pending`` requests are already waiting or running.
            RuntimeError: the engine was closed.
        """
        if not self.alive:
            raise RuntimeError("the engine is closed")
        if not request.turns or request.turns[-1].role != "user":
            raise ValueError("a request's conversation must end with a user turn")
        with self._lock:
            if self._pending >= self.max_pending:
                raise EngineFull(f"{self._pending} requests are already pending (limit {self.max_pending})")
            self._pending += 1
        future: Future[Answer] = Future()
        future.add_done_callback(self._release)
        self._jobs.put(_Job(request, future))
        return future

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        self._jobs.put(None)
        self._worker.join()

    def _release(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job and whatever else arrives within the window; and whether to stop afterwards."""
        jobs = [first]
        deadline = time.monotonic() + self.batch_window
        while len(jobs) < self.max_batch_size:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._jobs.get()
            if first is None:
                break
            jobs, stop = self._collect(first)
            groups: dict[GenerationParams, list[_Job]] = defaultdict(list)
            for job in jobs:
                if job.future.set_running_or_notify_cancel():
                    groups[job.request.params].append(job)
            for params, group in groups.items():
                self._answer(params, group)

    @torch.no_grad()  # the projectors' weights are trainable: no graph kept alive for a whole generation
    def _answer(self, params: GenerationParams, jobs: list[_Job]) -> None:
        """Generate one batch and hand each job its answer.

        A failure never stops the engine, and fails only the request that caused it: when a batch of
        several fails, each of its requests that has not streamed any text yet is answered alone (the
        ones that have streamed cannot take their text back and get the error).
        """
        streamed = [False] * len(jobs)
        try:
            conversations = [conversation_of(self.model, job.request.turns, job.request.system) for job in jobs]
            audio = encode_audio(self.model, [waves for _, waves in conversations])
            batch = build_batch(self.model, [messages for messages, _ in conversations], audio, padding_side="left")
            callbacks = [job.request.on_text for job in jobs]

            def on_text(row: int, piece: str) -> None:
                if callbacks[row] is None:
                    return
                streamed[row] = True
                try:
                    callbacks[row](piece)
                except Exception:  # one caller's broken stream (e.g. a closed loop) must not fail the batch
                    logger.exception("streaming callback of batch row %d failed; it gets no more pieces", row)
                    callbacks[row] = None

            abandoned = [job.request.abandoned for job in jobs]
            answers = answer_batch(
                self.model, batch, params, on_text=on_text, stop=lambda: [flag.is_set() for flag in abandoned]
            )
            self.batches_run += 1
        except Exception as error:  # the worker keeps serving
            if len(jobs) == 1:
                logger.exception("a request failed")
                jobs[0].future.set_exception(error)
                return
            logger.warning("a batch of %d requests failed (%r); answering them one by one", len(jobs), error)
            for job, started in zip(jobs, streamed, strict=True):
                if started:
                    job.future.set_exception(error)
                else:
                    self._answer(params, [job])
            return
        for job, answer in zip(jobs, answers, strict=True):
            job.future.set_result(answer)
