"""YAML I/O from many threads at once: each thread has its own ruamel.yaml instance."""

from __future__ import annotations

import threading

from spellfs.store import dump_yaml, load_yaml


def test_eight_threads_dump_concurrently_without_errors() -> None:
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(300):
            doc = {
                "thread": n,
                "i": i,
                "items": [f"v{j}" for j in range(20)],
                "nested": {"a": {"b": i}},
            }
            try:
                if load_yaml(dump_yaml(doc), "t") != doc:
                    wrong.append(i)
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong == []
