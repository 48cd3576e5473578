"""Driving a workflow's step generators: inline, or many branches over a thread pool.

Lua is single-threaded, so everything that touches the host's interpreter (hooks,
conditions written as functions, events, recording) runs on the calling thread; only the
prepared *work* of tool and agent steps (a plain Python callable, a :class:`Call`) runs in
a thread pool, which is how parallel branches overlap: each branch is a generator that
yields the work it needs done, and :func:`drive_parallel` keeps up to ``max_concurrency``
of them in flight. This is separate from the engine (:mod:`.engine`), which says *what*
each step does; here is only *where* the work runs.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Generator

__all__ = ["Call", "drive_inline", "drive_parallel"]


@dataclass
class Call:
    """A piece of work a step generator needs run (in the pool when parallel)."""

    fn: Callable[[], Any]


def drive_inline(gen: Generator[Call, Any, Any]) -> Any:
    """Run a step generator on this thread, doing each call it asks for here too."""
    try:
        call = next(gen)
        while True:
            try:
                result = call.fn()
            except BaseException as e:  # the work's own failure goes back into the step
                call = gen.throw(e)
                continue
            call = gen.send(result)
    except StopIteration as stop:
        return stop.value


def drive_parallel(gens: list[tuple[str, Generator]], limit: int, outcomes: dict) -> None:
    """Advance every branch on this thread; their calls run in a pool, ``limit`` at a time."""
    waiting = list(gens)
    running: dict[Future, tuple[str, Generator]] = {}

    def advance(
        name: str, gen: Generator, send: Any = None, error: BaseException | None = None
    ) -> None:
        try:
            call = gen.throw(error) if error is not None else gen.send(send)
        except StopIteration as stop:
            outcomes[name] = stop.value
            return
        except Exception as e:  # the branch failed (fail_fast): its outcome is the error
            outcomes[name] = e
            return
        running[pool.submit(call.fn)] = (name, gen)

    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="workflow") as pool:
        while waiting or running:
            while waiting and len(running) < limit:
                name, gen = waiting.pop(0)
                advance(name, gen)
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                name, gen = running.pop(future)
                error = future.exception()
                advance(name, gen, None if error else future.result(), error)
