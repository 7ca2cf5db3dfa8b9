"""What a Dask worker runs for a sweep (`latentlab.sweeps.cluster`): one run, trained into a temporary folder
of the worker's own, every committed epoch shipped back while it trains.

The worker needs latentlab installed and nothing of the client's files: the images come as the sweep's
scattered data (decoded once by the client), the run's settings as a dict, and where an earlier attempt
left off as the run's Dask ``Variable`` (the packed folder of its last committed epoch). Per epoch the
task sets that Variable to the new commit (before the next epoch starts, so a worker killed later costs
at most the epoch it was in) and puts a small message on the sweep's Dask ``Queue``; the client reads the
message, takes the commit from the Variable and writes it into its sweep folder. A retried task (Dask
runs a lost worker's tasks again elsewhere) resumes from the Variable, so no finished epoch is trained
twice. A stop is the sweep's Dask ``Event``: the trainer stops after its running batch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid

import numpy as np

__all__ = ["train_run", "names", "pack_images", "unpack_images", "BATCH_MESSAGE_SECONDS"]

BATCH_MESSAGE_SECONDS = 0.5     # live batch progress per run, at most this often


def names(sweep_id: str, run: str | None = None) -> dict:
    """The Dask names a sweep shares between client and workers."""
    out = {"queue": f"latentlab-{sweep_id}-events", "stop": f"latentlab-{sweep_id}-stop"}
    if run is not None:
        out["commit"] = f"latentlab-{sweep_id}-commit-{run}"
    return out


def pack_images(images: np.ndarray) -> dict:
    """The decoded images as they travel: uint8 when they are exactly k/255 (as decoded image files are;
    a quarter of the float32 bytes), else float32. `unpack_images` gives back the same float32 values."""
    images = np.asarray(images, dtype=np.float32)
    u8 = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    if np.array_equal(u8.astype(np.float32) * np.float32(1.0 / 255.0), images):
        return {"uint8": u8}
    return {"float32": images}


def unpack_images(packed: dict) -> np.ndarray:
    if "uint8" in packed:
        return packed["uint8"].astype(np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(packed["float32"], dtype=np.float32)


def _dataset(data: dict):
    from latentlab.data import Dataset

    return Dataset(data["root"], unpack_images(data["images"]), np.asarray(data["labels"], np.int32),
                   list(data["class_names"]), list(data["paths"]))


def _result(result, files: dict, worker: str) -> dict:
    """The task's result: how the run ended (a Trainer's Finished or Failed) and its run folder packed."""
    status = "failed" if type(result).__name__ == "Failed" else "stopped" if result.stopped else "finished"
    return {"status": status, "message": result.message, "epochs_done": result.epochs_done, "files": files,
            "worker": worker}


def train_run(spec: dict, data: dict, sweep_id: str) -> dict:
    """Train one run of a sweep on this worker (see the module's docstring). ``spec``: {"name", "config"}
    (a TrainConfig as a dict). Returns {"status": finished | stopped | failed | skipped, "message",
    "epochs_done", "files": the packed run folder, "worker"}."""
    from distributed import Event, Queue, Variable, get_worker

    from latentlab.runs import pack as run_pack
    from latentlab.config import TrainConfig
    from latentlab.runtime import import_tensorflow, model_pool

    name = spec["name"]
    n = names(sweep_id, name)
    worker = get_worker().address
    attempt = uuid.uuid4().hex[:8]
    queue, commit, stop = Queue(n["queue"]), Variable(n["commit"]), Event(n["stop"])
    if stop.is_set():
        return {"status": "skipped", "message": "the sweep was stopped before this run started", "epochs_done": 0,
                "files": {}, "worker": worker}

    def put(event, **replace):
        """One event to the client, as events.to_wire makes it, in an envelope that names the run and task."""
        from latentlab.events import to_wire

        queue.put({"run": name, "attempt": attempt, "worker": worker, "pid": os.getpid(),
                   "event": to_wire(event, **replace)})

    start = commit.get(timeout=60) or {}
    tmp = tempfile.mkdtemp(prefix=f"latentlab-{name}-")
    run_dir = os.path.join(tmp, name)
    try:
        resume = run_pack.epochs_in(start.get("files") or {}) > 0
        if resume:
            run_pack.unpack(start["files"], run_dir)
        import_tensorflow()
        from latentlab.events import BatchEnd, EpochEnd, Started
        from latentlab.training.trainer import Trainer

        last = [0.0]

        def on_event(ev):
            if isinstance(ev, Started):
                put(ev)
            elif isinstance(ev, BatchEnd):
                now = time.monotonic()
                if now - last[0] >= BATCH_MESSAGE_SECONDS or ev.step == ev.steps:
                    last[0] = now
                    put(ev)
            elif isinstance(ev, EpochEnd):
                files = run_pack.pack(run_dir, with_latents=False)   # committed in run_dir by now
                commit.set({"epochs": ev.epoch, "attempt": attempt, "files": files})
                put(ev, decoder_weights=[])   # the client reads the weights from the committed files

        # latents.npz of every image only at the end (it is the final model's): not re-encoded and shipped per epoch
        trainer = Trainer(TrainConfig.from_dict(spec["config"]), _dataset(data), run_dir, on_event,
                          resume=resume, model_pool=model_pool(), latents_every_epoch_max=0,
                          tensorboard=False)   # its folder is thrown away: the client writes the run's curves
        done = threading.Event()

        def watch_stop():
            while not done.is_set():
                try:
                    if stop.wait(timeout=1.0):
                        trainer.stop()
                        return
                except Exception:   # the scheduler went away: the task ends with the run
                    return

        # not joined: it ends at its next wake-up (within a second), and the result need not wait for it
        threading.Thread(target=watch_stop, name=f"latentlab-stop-{name}", daemon=True).start()
        try:
            result = trainer.run()
        finally:
            done.set()
        return _result(result, run_pack.pack(run_dir), worker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
