"""Worker processes that build units' workbooks and paragraphs in parallel (openpyxl is pure Python: one core each).

Each worker is ``python -m flows.publish.worker``: it reads pickled jobs ``(index, UnitData, args)`` from stdin until
EOF, writes each unit's documents with ``documents.write_documents``, then writes one pickle to stdout: the list of
``(index, paths)`` or, on an error, ``("error", traceback text)``. It never touches the warehouse and imports no
DuckDB, pandera or pandas, only the workbook and paragraph writers (flows/publish/documents.py): it starts in a
fraction of a second (python -m bench.startup; tests/test_architecture.py keeps it so).

Plain subprocesses rather than ``multiprocessing``: its spawn start method re-runs the caller's main script in every
child (a user's script without the ``if __name__ == "__main__"`` guard would run again, side effects and all), and
fork is unsafe in a process that has DuckDB's and Prefect's threads.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """``n`` worker processes fed round-robin; ``results()`` waits for all of them.

    ``submit`` never blocks: a job is larger than a pipe's buffer, so writing it waits until the worker reads it,
    i.e. until it has finished the job before. A feeder thread per worker does the writing, and the caller goes on
    (copying the marts) meanwhile.
    """

    def __init__(self, n: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.procs: list[tuple[subprocess.Popen, Any]] = []
        self.queues: list[queue.SimpleQueue] = []
        self.feeders: list[threading.Thread] = []
        self.sent = 0
        try:
            for _ in range(n):
                err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker can never block
                proc = subprocess.Popen(
                    [sys.executable, "-m", "flows.publish.worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=env,
                )
                self.procs.append((proc, err))
                jobs: queue.SimpleQueue = queue.SimpleQueue()
                feeder = threading.Thread(target=_feed, args=(proc, jobs), daemon=True, name="publish-feeder")
                feeder.start()
                self.queues.append(jobs)
                self.feeders.append(feeder)
        except BaseException:
            self.close()
            raise

    def submit(self, data: Any, *args: Any) -> int:
        index = self.sent
        self.queues[index % len(self.queues)].put(pickle.dumps((index, data, args), protocol=pickle.HIGHEST_PROTOCOL))
        self.sent += 1
        return index

    def results(self) -> dict[int, list[Path]]:
        """Paths written per job index; raises RuntimeError when a worker failed."""
        out: dict[int, list[Path]] = {}
        try:
            for jobs in self.queues:
                jobs.put(None)  # no more jobs: the feeder closes the worker's stdin
            for proc, err in self.procs:
                raw = proc.stdout.read()
                proc.wait()
                reply = pickle.loads(raw) if raw else ("error", self._stderr(err))
                if proc.returncode != 0 or (isinstance(reply, tuple) and reply[0] == "error"):
                    detail = reply[1] if isinstance(reply, tuple) else self._stderr(err)
                    raise RuntimeError(f"a workbook worker failed (exit {proc.returncode}): {detail}")
                out.update(dict(reply))
        finally:
            self.close()
        return out

    def close(self) -> None:
        for jobs in self.queues:
            jobs.put(None)
        for proc, err in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()
            err.close()
        for feeder in self.feeders:
            feeder.join(timeout=5)
        self.procs, self.queues, self.feeders = [], [], []

    @staticmethod
    def _stderr(err) -> str:
        err.seek(0)
        return err.read().decode("utf-8", "replace")[-4000:].strip() or "no message"


def _feed(proc: subprocess.Popen, jobs: queue.SimpleQueue) -> None:
    """Write the queued jobs to the worker's stdin until None; then close it (EOF: the worker answers)."""
    try:
        while (job := jobs.get()) is not None:
            proc.stdin.write(job)
            proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the worker died (its error is read from stdout/stderr) or was killed by close()
    finally:
        try:
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass


def main() -> int:
    from flows.publish.documents import write_documents

    done: list[tuple[int, list[Path]]] = []
    try:
        while True:
            try:
                index, data, args = pickle.load(sys.stdin.buffer)
            except EOFError:
                break
            done.append((index, write_documents(data, *args)))
    except Exception:
        pickle.dump(("error", traceback.format_exc()), sys.stdout.buffer)
        return 1
    pickle.dump(done, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
