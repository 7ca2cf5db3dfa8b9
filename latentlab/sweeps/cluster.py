"""Sweeps on a Dask cluster (``dask.distributed``): one task per run, on the cluster at an address
(``--cluster tcp://HOST:PORT``) or on a local cluster of worker processes on 127.0.0.1 (``--workers N``).

The client (the CLI, or the app's sweep panel) loads and validates the folder once and scatters the
decoded images to the cluster once per sweep; every run's task (`latentlab.sweeps.cluster_task.train_run`) gets
them as a dependency, so each worker receives them once, whatever number of runs it trains. Workers need
not see the client's files: each run trains into a temporary folder on its worker, and every committed
epoch comes back to the client, which writes it into ``SWEEP/<run>`` atomically (`latentlab.runs.pack`).

Live metrics travel on a Dask ``Queue`` (one per sweep): workers put small messages (batch progress at
most twice a second, every finished epoch), the client takes them all at once every 0.1 s and
publishes them as `latentlab.events.RunEvent`. A Queue rather than Pub/Sub or the scheduler's event log:
a message put is held by the scheduler until the client takes it — it survives the death of the worker
that put it and is not lost when the client was not listening yet (Pub/Sub drops both), and it is taken
once, so nothing piles up on the scheduler (the event log keeps every message of a long sweep).

Faults: a killed worker's task is run again elsewhere by Dask; it resumes from the run's last commit
(its Dask ``Variable``), so no finished epoch is trained twice. A run that fails is reported with its
reason and the others go on. ``stop()`` (Stop in the app, Ctrl+C) sets the sweep's Dask ``Event``: runs
training stop after their running batch and keep their last finished epoch; runs not started are
cancelled. A scheduler that cannot be reached is one line (`ClusterError`) naming the address.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np

from latentlab.runs import pack as run_pack
from latentlab.config import ConfigError, TrainConfig
from latentlab.events import EpochEnd, Failed, Finished, RunEvent, Started, from_wire
from latentlab.sweeps.sweep import DONE, finished_event, grid, plan

log = logging.getLogger(__name__)

__all__ = ["ClusterError", "ClusterSweep", "connect", "require_distributed", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'latentlab[cluster]'"
CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.1


class ClusterError(RuntimeError):
    """The cluster cannot be used as asked. ``str(e)`` is one line: what, and what to do."""


def require_distributed(flag: str = "--cluster"):
    """The ``distributed`` module, or ClusterError with the one line that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"{flag} needs Dask's distributed, which is not installed here: {INSTALL_HINT}") from None
    return distributed


def connect(address: str | None = None, workers: int = 0, gpus_per_run: int = 0, *, local_threads: int = 1,
            timeout: float = CONNECT_TIMEOUT_S):
    """(client, local cluster or None). ``address``: the scheduler of a running cluster; else ``workers``
    worker processes on 127.0.0.1 (one thread each; dashboards off), offering ``GPU=gpus_per_run`` each."""
    distributed = require_distributed("--cluster" if address else "--workers")
    if address:
        address = address if "://" in address else f"tcp://{address}"
        try:
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            reason = " ".join(str(e).split())[:160] or type(e).__name__
            raise ClusterError(f"cannot reach the Dask scheduler at {address} ({reason}); check the address, or "
                               f"start one there with 'dask scheduler' and its workers with 'dask worker {address}'"
                               ) from None
        return client, None
    if workers < 1:
        raise ClusterError("--workers must be at least 1")
    cores = os.cpu_count() or 1
    # each worker's TensorFlow gets its share of the cores instead of all of them (they would fight)
    threads = str(max(1, cores // workers))
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    import dask

    # forkserver: worker processes forked from a clean server process (never from this one, which may hold the
    # app's threads); they stop in a fraction of a second where spawned ones took ~5 s here
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=local_threads, processes=True,
                                           host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None,
                                           resources={"GPU": gpus_per_run} if gpus_per_run else None,
                                           silence_logs=logging.ERROR, env=env,
                                           # its HTTP routes (health, metrics) on a free loopback port, not :8787
                                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    return distributed.Client(cluster, set_as_default=False), cluster


class ClusterSweep:
    """A sweep (the same grid and sweep folder as `latentlab.sweeps.sweep.Sweep`) trained as one Dask task per
    run. ``run()`` blocks and returns [(β, run folder, Finished | Failed)]; ``stop()`` from any thread.
    Events reach ``on_event`` on the thread that called ``run()``, as `RunEvent`s."""

    def __init__(self, config: TrainConfig, betas, out_dir, dataset=None, on_event=None, *, latent_dims=None,
                 seeds=None, address: str | None = None, workers: int = 0, gpus_per_run: int = 0):
        self.config = config.validate()
        self.specs = grid(self.config, list(betas), latent_dims, seeds)
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.on_event = on_event or (lambda e: None)
        self.address, self.workers, self.gpus_per_run = address, int(workers or 0), int(gpus_per_run or 0)
        if not address and self.workers < 1:
            raise ConfigError("give a cluster address (tcp://HOST:PORT) or a number of local workers")
        self.sweep_id = uuid.uuid4().hex[:10]
        self.results: list[tuple[float, Path, object]] = []
        self.attempts: dict[str, list[dict]] = {}     # run → its tasks' envelopes (worker, pid, attempt) with their Started fields
        self.bytes_back: dict[str, int] = {}          # run → bytes of its last commit shipped back
        self._stop_requested = False
        self._stop_sent = False
        self._written: dict[str, int] = {}
        self.client = None
        self._cluster = None

    def plan(self):
        return plan(self.specs, self.out_dir)

    check_out_dir = plan

    def stop(self) -> None:
        self._stop_requested = True

    def open(self):
        """Connect to the cluster (or start the local one) now; `run` does it when this was not called.
        ClusterError (one line) when it cannot be reached."""
        if self.client is None:
            self.client, self._cluster = connect(self.address, self.workers, self.gpus_per_run)
        return self.client

    # -- the sweep ---------------------------------------------------------------------------------
    def run(self) -> list:
        from latentlab import data as ld

        todo = self.plan()
        require_distributed("--cluster" if self.address else "--workers")
        if self.dataset is None:
            self.dataset = ld.load_folder(self.config.dataset, image_size=self.config.image_size,
                                          color=self.config.color, background=self.config.background,
                                          fit=self.config.fit)
        for spec, action in todo:
            if action == DONE:
                self._publish(spec, finished_event(self.out_dir / spec.name))
                self.results.append((spec.beta, self.out_dir / spec.name, self._last))
        pending = [(s, a) for s, a in todo if a != DONE]
        locks: list = []
        try:
            pending = self._lock(pending, locks)   # this machine writes SWEEP/<run>: one writer, as for a Trainer
            if pending and not self._stop_requested:
                client = self.open()
                self._check_resources(client)
                self._train(client, pending)
        finally:
            self.close()
            for lock in locks:
                lock.release()
        order = {str(self.out_dir / s.name): i for i, s in enumerate(self.specs)}
        self.results.sort(key=lambda r: order.get(str(r[1]), 0))
        return self.results

    def _lock(self, pending, locks: list) -> list:
        """Hold the run lock of each pending run's folder for the whole sweep (appended to ``locks``); a run
        another process trains is reported failed with the lock's one line, the others go on."""
        from latentlab.runs import folder as runs

        kept = []
        for spec, action in pending:
            lock = runs.RunLock(self.out_dir / spec.name, create=True)
            try:
                lock.acquire()
            except (runs.RunLocked, OSError) as e:
                event = Failed(f"{spec.name}: {e}", 0, None)
                self._publish(spec, event)
                self.results.append((spec.beta, self.out_dir / spec.name, event))
                continue
            locks.append(lock)
            kept.append((spec, action))
        return kept

    def _check_resources(self, client) -> None:
        if not self.gpus_per_run:
            return
        workers = client.scheduler_info().get("workers", {})
        if not any(w.get("resources", {}).get("GPU", 0) >= self.gpus_per_run for w in workers.values()):
            where = self.address or "the local cluster"
            raise ClusterError(f"no worker of {where} offers GPU={self.gpus_per_run}: start workers with "
                               f"'dask worker {self.address or 'ADDRESS'} --resources GPU={self.gpus_per_run}'")

    def _train(self, client, pending) -> None:
        from distributed import Event, Queue, Variable

        from latentlab.sweeps.cluster_task import names, pack_images, train_run

        n = names(self.sweep_id)
        self._queue, self._stop_event = Queue(n["queue"], client=client), Event(n["stop"], client=client)
        ds = self.dataset
        payload = {"root": str(ds.root), "images": pack_images(ds.images), "labels": np.asarray(ds.labels),
                   "class_names": list(ds.class_names), "paths": list(ds.paths)}
        # One future under a key of its own: a dict given to scatter is sent under its own keys ('images',
        # 'paths', ...), which two sweeps on one scheduler would share. Once per sweep; each worker fetches it once.
        [data] = client.scatter([payload], hash=False)
        self._vars, futures = {}, {}
        for spec, _ in pending:
            d = self.out_dir / spec.name
            files = run_pack.pack(d, with_latents=False) if d.is_dir() else {}
            self._written[spec.name] = run_pack.epochs_in(files)
            var = Variable(names(self.sweep_id, spec.name)["commit"], client=client)
            var.set({"epochs": self._written[spec.name], "files": files})
            self._vars[spec.name] = var
            task = {"name": spec.name, "config": spec.config.to_dict()}
            f = client.submit(train_run, task, data, self.sweep_id, key=f"latentlab-{self.sweep_id}-{spec.name}",
                              pure=False, resources={"GPU": self.gpus_per_run} if self.gpus_per_run else None)
            futures[f] = spec
        left = set(futures)
        while left:
            if self._stop_requested and not self._stop_sent:
                self._send_stop(client, futures, left)
            done = [f for f in left if f.done()]
            if not done:
                time.sleep(POLL_S)   # the loop's pace: messages are taken in batches every POLL_S
            self._drain()
            for f in done:
                left.discard(f)
                self._drain()
                self._finish(futures[f], f)

    def _send_stop(self, client, futures, left) -> None:
        self._stop_sent = True
        self._stop_event.set()
        not_started = [f for f in left if not self.attempts.get(futures[f].name)]
        if not_started:
            client.cancel(not_started)

    # -- messages from the workers -------------------------------------------------------------------
    def _drain(self) -> None:
        try:
            messages = self._queue.get(batch=True)
        except Exception:   # the scheduler is gone: the futures will say so
            return
        for msg in messages:
            spec = self._spec(msg.get("run"))
            if spec is not None:
                self._on_message(spec, msg)

    def _spec(self, name):
        for s in self.specs:
            if s.name == name:
                return s
        return None

    def _on_message(self, spec, msg) -> None:
        """One worker message: an envelope (run, attempt, worker, pid) around an event from events.to_wire."""
        run_dir = str(self.out_dir / spec.name)
        kind = msg["event"].get("event")
        ev = from_wire(msg["event"], run_dir=run_dir) if kind == "Started" else from_wire(msg["event"])
        if isinstance(ev, Started):
            envelope = {k: v for k, v in msg.items() if k != "event"}
            self.attempts.setdefault(spec.name, []).append({**envelope, **vars(ev)})
        elif isinstance(ev, EpochEnd) and ev.epoch > self._written.get(spec.name, 0):
            self._take_commit(spec)
        self._publish(spec, ev, msg["worker"])

    def _take_commit(self, spec) -> None:
        """The run's latest commit (its Variable), into SWEEP/<run> when it holds more epochs than written."""
        try:
            value = self._vars[spec.name].get(timeout=10) or {}
        except Exception:
            return
        files = value.get("files") or {}
        epochs = run_pack.epochs_in(files)
        if epochs > self._written.get(spec.name, 0):
            run_pack.unpack(files, self.out_dir / spec.name)
            self._written[spec.name] = epochs
            self.bytes_back[spec.name] = run_pack.size(files)

    def _finish(self, spec, future) -> None:
        run_dir = self.out_dir / spec.name
        try:
            res = future.result()
        except Exception as e:   # lost for good (KilledWorker), cancelled, or the task could not run there
            res = {"status": "cancelled" if self._stop_sent and _is_cancel(e) else "failed",
                   "message": _task_error(e), "files": {}, "epochs_done": self._written.get(spec.name, 0)}
        files = res.get("files") or {}
        status = res["status"]
        if files and run_pack.epochs_in(files) >= self._written.get(spec.name, 0):
            run_pack.unpack(files, run_dir)
            self._written[spec.name] = run_pack.epochs_in(files)
            self.bytes_back[spec.name] = run_pack.size(files)
        done = self._written.get(spec.name, 0)
        history = _history(run_dir) if done else []
        if history:
            _write_tensorboard(run_dir, history)
        event: Finished | Failed
        if status in ("finished", "stopped"):
            event = Finished(done, status == "stopped", res["message"], str(run_dir), history)
        elif status in ("skipped", "cancelled"):
            event = Finished(done, True, "not started: the sweep was stopped", str(run_dir) if done else None, history)
        else:
            event = Failed(f"{spec.name}: {res['message']}", done, str(run_dir) if done else None)
            if done:
                from latentlab.runs import folder as runs

                runs.write_state(run_dir, status="failed", message=event.message, epochs_done=done, model_epoch=done,
                                 device=res.get("worker", ""), updated=time.time())
        self._publish(spec, event, res.get("worker", ""))
        self.results.append((spec.beta, run_dir, event))

    def _publish(self, spec, event, worker: str = "") -> None:
        self._last = event
        self.on_event(RunEvent(spec.name, spec.beta, str(self.out_dir / spec.name), event, worker))

    def close(self) -> None:
        """Forget the sweep's Variables, close the client, stop the local cluster (if one was started)."""
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        for var in getattr(self, "_vars", {}).values():
            try:
                var.delete()
            except Exception:
                pass
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close(timeout=20)
                except Exception:
                    pass


def _write_tensorboard(run_dir: Path, history: list[dict]) -> None:
    """The run's TensorBoard scalars (epoch_loss, …, with Keras' tag names) from its whole history, written
    here under the run's lock: a worker's own event files stay on the worker. The KL histogram and the grid
    image are not rebuilt (they need the model of every epoch)."""
    import shutil

    from latentlab.training.tensorboard_logs import TENSORBOARD_DIR, write_history

    log_dir = run_dir / TENSORBOARD_DIR
    try:
        shutil.rmtree(log_dir, ignore_errors=True)   # a resumed run: the curves again, all its epochs
        write_history(log_dir, history)
    except Exception as e:   # the run itself is whole: TensorBoard only misses it
        log.warning("%s: its TensorBoard files could not be written (%s)", run_dir, e)


def _history(run_dir) -> list[dict]:
    from latentlab.runs import folder as runs

    try:
        return list(runs.open_run(run_dir).history)
    except runs.RunError:
        return []


def _is_cancel(e: BaseException) -> bool:
    import asyncio
    import concurrent.futures

    return isinstance(e, (asyncio.CancelledError, concurrent.futures.CancelledError)) or "cancel" in type(e).__name__.lower()


def _task_error(e: BaseException) -> str:
    """One line for a task that raised instead of returning (the run's own failures are returned)."""
    name = type(e).__name__
    text = " ".join(str(e).split())[:240]
    if name == "KilledWorker":
        return ("its task was lost with every worker that ran it (killed, or out of memory); the finished epochs "
                "are kept: start the sweep again with the same folder to resume it")
    if isinstance(e, (ModuleNotFoundError, ImportError)) or "No module named" in text:
        return f"a worker cannot import latentlab ({text}): install it on every worker ({INSTALL_HINT})"
    return f"the task failed on its worker: {name}: {text}"
