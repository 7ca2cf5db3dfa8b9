"""β sweeps on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

A worker killed mid-run: the run resumes from its last finished epoch on the other worker, the sweep
finishes, no epoch is trained twice, and the run folders on the client equal a sequential sweep's
(history within 1e-3 relative, 1e-3 absolute). Stop keeps every run's last finished epoch; the same sweep
folder again resumes; a run that fails is reported with its reason while the others finish; an
unreachable scheduler and a missing ``distributed`` are one line each."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import _engine
import pytest
from _wait import WAIT_S
from tensorboard.backend.event_processing import event_accumulator

from latentlab.runs import folder as runs
from latentlab.config import TrainConfig
from latentlab.events import EpochEnd, Failed, Finished, RunEvent, Started

RTOL = ATOL = 1e-3     # sequential vs a Dask worker: the same ops, other threads (TensorFlow's sums)
METRICS = ("loss", "reconstruction_loss", "kl_loss", "neg_elbo", "val_loss", "val_reconstruction_loss",
           "val_kl_loss", "val_neg_elbo")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from latentlab.data import load_folder

    root = _engine.write_digits_folder(tmp_path_factory.mktemp("cluster-digits"), per_class=20, size=16)
    return load_folder(root, cache=False)


def _config(ds, **kw):
    return TrainConfig(dataset=ds.root, **{"epochs": 3, "batch_size": 16, "hidden_units": 16, "val_fraction": 0.2,
                                           "seed": 3, **kw})


def _epoch_events(events):
    return [(e.run, e.event.epoch) for e in events if isinstance(e, RunEvent) and isinstance(e.event, EpochEnd)]


def test_a_killed_worker_s_run_resumes_elsewhere_and_the_sweep_matches_a_sequential_one(
        dask_cluster, digits, tmp_path):
    from latentlab.sweeps.cluster import ClusterSweep
    from latentlab.sweeps.sweep import Sweep

    dask_cluster.ensure_workers(2)
    cfg = _config(digits)
    events, killed, listening = [], {}, set()

    def on_event(ev):
        events.append(ev)
        if isinstance(ev, RunEvent) and isinstance(ev.event, Started):
            listening.update(dask_cluster.listening())
        if (isinstance(ev, RunEvent) and isinstance(ev.event, EpochEnd) and not killed
                and ev.event.epoch < cfg.epochs):
            killed.update(run=ev.run, worker=ev.worker, epochs=ev.event.epoch, name=dask_cluster.kill(ev.worker))

    sweep = ClusterSweep(cfg, [0.5, 2.0, 8.0], tmp_path / "cluster", digits, on_event, address=dask_cluster.address)
    results = sweep.run()
    assert listening and all(a.startswith("127.0.0.1:") for a in listening), listening   # loopback only
    assert killed, "no epoch ended before the sweep did: nothing was killed"
    assert [type(r).__name__ for _, _, r in results] == ["Finished"] * 3, results
    assert not any(r.stopped for _, _, r in results)
    # the killed run started again on the other worker from its last finished epoch (or later)
    tries = sweep.attempts[killed["run"]]
    assert len(tries) >= 2 and tries[-1]["worker"] != killed["worker"], tries
    assert tries[-1]["initial_epoch"] >= killed["epochs"] >= 1
    epochs = _epoch_events(events)
    assert len(epochs) == len(set(epochs)), "an epoch was trained twice"
    # every run complete on the client, equal to a sequential sweep's
    seq = Sweep(cfg, [0.5, 2.0, 8.0], tmp_path / "sequential", digits).run()
    for (_beta, d, _), (_, d_seq, _) in zip(results, seq, strict=True):
        run, want = runs.open_run(d), runs.open_run(d_seq)
        assert run.status == "finished" and run.epochs_done == cfg.epochs and run.latents is not None
        assert [r["epoch"] for r in run.history] == list(range(1, cfg.epochs + 1))
        assert run.config == want.config
        for got, ref in zip(run.history, want.history, strict=True):
            for key in METRICS:
                assert got[key] == pytest.approx(ref[key], rel=RTOL, abs=ATOL), (d.name, got["epoch"], key)
        assert not [p for p in os.listdir(d) if p.startswith(".") and p != runs.LOCK_FILE]   # no temporary or staged file
        # its TensorBoard curves, written by the client from the whole history (one value per epoch, resumed or not)
        acc = event_accumulator.EventAccumulator(str(d / "tensorboard" / "validation"))
        acc.Reload()
        assert sorted(e.step for e in acc.Tensors("epoch_neg_elbo")) == list(range(cfg.epochs)), d.name
    assert all(v for v in sweep.bytes_back.values())


def test_stop_keeps_the_last_epoch_the_same_folder_resumes_and_a_failed_run_is_reported(
        dask_cluster, digits, tmp_path):
    from latentlab.sweeps.cluster import ClusterSweep
    from latentlab.training.trainer import Trainer

    dask_cluster.ensure_workers(2)
    cfg = _config(digits, epochs=3)
    out = tmp_path / "sweep"
    # β = 8's folder holds a run on 8x8 images whose settings say 16x16: resuming it must fail, with its reason
    small = Trainer(cfg.replace(beta=8.0, image_size=[8, 8], epochs=1), None, out / "beta-8").run()
    assert isinstance(small, Finished)
    runs.write_config(out / "beta-8", cfg.replace(beta=8.0))
    first = []
    sweep = None

    def stop_at_first_epoch(ev):
        first.append(ev)
        if isinstance(ev, RunEvent) and isinstance(ev.event, EpochEnd):
            sweep.stop()

    sweep = ClusterSweep(cfg, [0.5, 2.0, 8.0], out, digits, stop_at_first_epoch, address=dask_cluster.address)
    results = {d.name: r for _, d, r in sweep.run()}
    assert set(results) == {"beta-0.5", "beta-2", "beta-8"}
    trained = set(sweep.attempts)      # runs that started before the stop (the others were cancelled)
    stopped = [n for n in trained if isinstance(results[n], Finished) and results[n].stopped and results[n].epochs_done]
    assert stopped, results
    for name in set(results) - trained - {"beta-8"}:
        assert results[name].stopped and "not started" in results[name].message
    for name in stopped:   # each stopped run kept its last finished epoch, on the client
        run = runs.open_run(out / name)
        assert run.epochs_done == results[name].epochs_done < cfg.epochs and run.status == "stopped"
    # again, the same folder: stopped runs resume where they stopped; the broken one fails, the others finish
    second = []
    again = ClusterSweep(cfg, [0.5, 2.0, 8.0], out, digits, second.append, address=dask_cluster.address)
    results2 = {d.name: r for _, d, r in again.run()}
    for name in ("beta-0.5", "beta-2"):
        assert isinstance(results2[name], Finished) and not results2[name].stopped
        assert runs.open_run(out / name).epochs_done == cfg.epochs
    for name in stopped:
        assert again.attempts[name][0]["initial_epoch"] == results[name].epochs_done
    bad = results2["beta-8"]
    assert isinstance(bad, Failed) and "beta-8" in bad.message and "images" in bad.message, bad
    assert "\n" not in bad.message
    epochs = _epoch_events(first) + _epoch_events(second)
    assert len(epochs) == len(set(epochs)), "an epoch was trained twice"


def test_a_run_another_process_trains_is_refused_with_the_lock_s_line_and_the_others_finish(
        dask_cluster, digits, tmp_path):
    from latentlab.sweeps.cluster import ClusterSweep

    dask_cluster.ensure_workers(1)
    cfg = _config(digits, epochs=1)
    out = tmp_path / "sweep"
    events = []
    with runs.RunLock(out / "beta-2", create=True):     # e.g. a terminal's 'latentlab train --resume SWEEP/beta-2'
        results = {d.name: r for _, d, r in ClusterSweep(cfg, [0.5, 2.0], out, digits, events.append,
                                                         address=dask_cluster.address).run()}
        assert runs.is_locked(out / "beta-2")            # still the other writer's
    assert isinstance(results["beta-0.5"], Finished) and runs.open_run(out / "beta-0.5").epochs_done == 1
    refused = results["beta-2"]
    assert isinstance(refused, Failed) and "is being trained by" in refused.message and "\n" not in refused.message
    assert not (out / "beta-2").exists() or not (out / "beta-2" / runs.STATE_FILE).exists()   # nothing written
    assert not runs.is_locked(out / "beta-0.5")        # the sweep let go of its own runs


def test_two_sweeps_on_one_scheduler_at_once_each_train_on_their_own_images(dask_cluster, digits, tmp_path):
    """Two people of a lab sweep on the same scheduler at the same moment, on different image folders: each
    sweep's data travels under a key of its own (a shared key let one sweep train on the other's images, and
    corrupted the scheduler's state when one sweep let go of its data while the other used it)."""
    import threading

    from latentlab.sweeps.cluster import ClusterSweep
    from latentlab.data import load_folder

    from distributed import Client

    dask_cluster.ensure_workers(2)
    other = load_folder(_engine.write_digits_folder(tmp_path / "other", per_class=7, size=16), cache=False)
    jobs = {"mine": (digits, []), "theirs": (other, [])}
    both_started, held = threading.Barrier(2), []

    def on_event(ev):
        if isinstance(ev, RunEvent) and isinstance(ev.event, Started):
            both_started.wait(timeout=WAIT_S)      # both sweeps' runs are on the workers now
            with Client(dask_cluster.address, timeout=WAIT_S, set_as_default=False) as c:
                held.append({k for k in c.who_has() if not str(k).startswith("latentlab-")})   # data, not runs

    def sweep(name):
        ds, out = jobs[name]
        out.extend(ClusterSweep(_config(ds, epochs=1), [1.0], tmp_path / name, ds, on_event,
                                address=dask_cluster.address).run())

    threads = [threading.Thread(target=sweep, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * WAIT_S)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish"
    assert held and all(len(keys) == 2 for keys in held), held      # one key of its own per sweep
    for name, (ds, results) in jobs.items():
        [(_, d, r)] = results
        assert isinstance(r, Finished) and not r.stopped, (name, r)
        run = runs.open_run(d)
        assert len(run.latents["paths"]) == len(ds.images), name          # its own folder's images, all of them
        assert sorted(map(str, run.latents["paths"])) == sorted(map(str, ds.paths)), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, env=None, code=None):
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "latentlab", *map(str, args)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT_S,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    return p.returncode, p.stdout, p.stderr


def test_a_scheduler_that_is_not_there_is_one_line_naming_it(digits, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    code, _, err = _cli("sweep", digits.root, "--betas", "1", "--out", tmp_path / "s", "--cluster", address)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert address in lines[0] and "dask scheduler" in lines[0] and "dask worker" in lines[0]
    assert not (tmp_path / "s").exists()


def test_without_distributed_the_cluster_flags_say_how_to_install_it(digits, tmp_path):
    script = ("import sys; sys.modules['distributed'] = None\n"
              "from latentlab.cli import main\n"
              f"sys.exit(main(['sweep', {str(digits.root)!r}, '--betas', '1', '--out', {str(tmp_path / 's')!r}, "
              "'--workers', '2']))")
    code, _, err = _cli(code=script)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "--workers" in err and "pip install 'latentlab[cluster]'" in err
