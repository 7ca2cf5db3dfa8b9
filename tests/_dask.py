"""A real Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` processes started with the
commands a user runs, bound to 127.0.0.1 only (dashboards off), stopped at the end of the session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _wait import WAIT_S

BIN = Path(sys.executable).parent
READY_S = WAIT_S      # a busy 2-core machine can take long to start a process that imports distributed


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class DaskCluster:
    """The scheduler's ``address``; ``ensure_workers(n)`` starts workers until n are registered;
    ``kill(address)`` kills a worker process at once (SIGKILL); ``listening()`` the addresses its
    processes listen on."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1",
                    "TF_NUM_INTEROP_THREADS": "1", "LATENTLAB_CACHE_DIR": str(root / "cache"),
                    "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}   # name -> process
        self.count = 0
        sched_file = root / "scheduler.json"
        self.scheduler = self._start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(sched_file)], "scheduler")
        info = _wait(lambda: sched_file.is_file() and sched_file.stat().st_size and _read(sched_file), READY_S,
                     "the Dask scheduler")
        self.address = info["address"]
        assert self.address.startswith("tcp://127.0.0.1:"), self.address

    def _start(self, argv, name):
        log = open(self.root / f"{name}.log", "wb")
        p = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def info(self) -> dict:
        from distributed import Client

        with Client(self.address, timeout=WAIT_S, set_as_default=False) as c:
            return c.scheduler_info().get("workers", {})

    def ensure_workers(self, n: int = 2) -> dict:
        alive = {k: p for k, p in self.workers.items() if p.poll() is None}
        self.workers = alive
        while len(self.workers) < n:
            self.count += 1
            name = f"w{self.count}"
            self.workers[name] = self._start([str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1",
                                              "--nthreads", "1", "--no-nanny", "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--name", name,
                                              "--death-timeout", "60"], name)
        want = set(self.workers)
        return _wait(lambda: (lambda w: w if {v["name"] for v in w.values()} >= want else None)(self.info()),
                     READY_S, f"{n} Dask workers")

    def kill(self, address: str) -> str:
        name = self.info()[address]["name"]
        p = self.workers.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=WAIT_S)
        return name

    def listening(self) -> set[str]:
        import psutil

        out = set()
        for p in self.procs:
            if p.poll() is not None:
                continue
            try:
                for c in psutil.Process(p.pid).net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN:
                        out.add(f"{c.laddr.ip}:{c.laddr.port}")
            except psutil.Error:
                pass
        return out

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        for p in self.procs:          # nothing of theirs needs saving: a short grace, then SIGKILL
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=20)


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A scheduler and (after ``ensure_workers``) worker processes, all on 127.0.0.1, for the session."""
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.close()
