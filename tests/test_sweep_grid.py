"""Sweeps over β × latent size × seed here, and a sweep folder given again: finished runs are skipped,
unfinished ones resumed (the history goes on where it was), anything else is refused in one line."""

import _engine
import pytest

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig
from latentlab.events import Finished, Started, SweepStep
from latentlab.sweeps.sweep import DONE, NEW, RESUME, Sweep, grid, parse_ints, run_name


def test_run_names_say_beta_alone_for_a_beta_sweep_and_all_three_for_a_grid():
    cfg = TrainConfig(dataset="x", latent_dim=2, seed=7)
    assert [s.name for s in grid(cfg, [0.1, 4])] == ["beta-0.1", "beta-4"]
    specs = grid(cfg, [1, 4], latent_dims=[2, 8], seeds=[0, 1])
    assert len(specs) == 8 and specs[0].name == "beta-1_z-2_seed-0" and specs[-1].name == "beta-4_z-8_seed-1"
    assert {(s.config.beta, s.config.latent_dim, s.config.seed) for s in specs} == \
        {(b, d, s) for b in (1.0, 4.0) for d in (2, 8) for s in (0, 1)}
    assert run_name(0.5) == "beta-0.5" and run_name(0.5, 8, 3) == "beta-0.5_z-8_seed-3"
    assert [s.name for s in grid(cfg, [1], seeds=[0, 1])] == ["beta-1_z-2_seed-0", "beta-1_z-2_seed-1"]
    assert parse_ints("2, 8", "latent size", (1, 64)) == [2, 8]
    for bad in ("2,x", "0", "2,2", ""):
        with pytest.raises(ConfigError):
            parse_ints(bad, "latent size", (1, 64))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from latentlab.data import load_folder

    root = _engine.write_digits_folder(tmp_path_factory.mktemp("grid-digits"), per_class=10, size=16)
    return load_folder(root, cache=False)


def test_a_sweep_folder_given_again_skips_finished_runs_and_resumes_the_others(digits, tmp_path):
    cfg = TrainConfig(dataset=digits.root, epochs=1, batch_size=32, hidden_units=16, val_fraction=0.2)
    out = tmp_path / "sweep"
    first = Sweep(cfg, [1.0], out, digits, latent_dims=[2, 3]).run()
    assert [d.name for _, d, _ in first] == ["beta-1_z-2_seed-0", "beta-1_z-3_seed-0"]
    assert runs.open_run(out / "beta-1_z-3_seed-0").config.latent_dim == 3
    before = runs.open_run(out / "beta-1_z-2_seed-0").history
    # one run asks for 2 epochs now: it resumes at epoch 2; the same sweep with 1 epoch skips it
    events = []
    sweep = Sweep(cfg.replace(epochs=2), [1.0], out, digits, events.append, latent_dims=[2, 3])
    assert [a for _, a in sweep.plan()] == [RESUME, RESUME]
    results = sweep.run()
    assert all(isinstance(r, Finished) and r.epochs_done == 2 for _, _, r in results)
    assert [e.initial_epoch for e in events if isinstance(e, Started)] == [1, 1]
    after = runs.open_run(out / "beta-1_z-2_seed-0").history
    assert after[0] == before[0] and [r["epoch"] for r in after] == [1, 2]
    events.clear()
    again = Sweep(cfg.replace(epochs=2), [1.0], out, digits, events.append, latent_dims=[2, 3])
    assert [a for _, a in again.plan()] == [DONE, DONE]
    again.run()
    assert not [e for e in events if isinstance(e, Started)]            # nothing trained
    assert [type(e).__name__ for e in events] == ["SweepStep", "Finished"] * 2
    assert all("already finished" in e.message for e in events if isinstance(e, Finished))
    assert isinstance(events[0], SweepStep)
    # a new β in the same folder is NEW next to the DONE ones
    assert [a for _, a in Sweep(cfg.replace(epochs=2), [1.0, 2.0], out, digits, latent_dims=[2]).plan()] == [DONE, NEW]


def test_a_sweep_folder_that_holds_something_else_is_refused_in_one_line(digits, tmp_path):
    cfg = TrainConfig(dataset=digits.root, epochs=1, batch_size=32, hidden_units=16)
    out = tmp_path / "sweep"
    (out / "beta-1").mkdir(parents=True)
    (out / "beta-1" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run folder"):
        Sweep(cfg, [1.0], out).plan()
    (out / "beta-1" / "notes.txt").unlink()
    Sweep(cfg, [1.0], out, digits).run()
    with pytest.raises(ConfigError, match="other settings .*learning_rate"):
        Sweep(cfg.replace(learning_rate=0.01), [1.0], out).plan()


def test_the_cli_shows_one_progress_line_per_run_redrawn_in_place_on_a_terminal():
    import io

    import numpy as np

    from latentlab.cli.cmd_sweep import SweepProgress
    from latentlab.events import BatchEnd, EpochEnd, RunEvent

    class Tty(io.StringIO):
        def isatty(self):
            return True

    def epoch(run, n):
        e = EpochEnd(epoch=n, logs={"loss": 10.0 - n, "val_neg_elbo": 9.0}, beta=1.0, kl_per_dim=np.zeros(2),
                     active_units=1, val_z_mean=np.zeros((1, 2)), val_z_log_var=np.zeros((1, 2)),
                     val_indices=np.zeros(1, int), decoder_weights=[], seconds=0.1, history=[])
        return RunEvent(run, 1.0, f"/s/{run}", e, "tcp://127.0.0.1:1")

    out = Tty()
    progress = SweepProgress(2, stream=out)
    progress.REDRAW_S = 0.0
    progress(RunEvent("beta-1", 1.0, "/s/beta-1", Started("CPU", 3, 0, 5, 40, 10, (8, 8, 1), "/s/beta-1"), "w1"))
    progress(epoch("beta-4", 1))
    progress(RunEvent("beta-1", 1.0, "/s/beta-1", BatchEnd(1, 2, 5, {"loss": 3.0}, 1.0, 100.0, 1.0), "w1"))
    progress(RunEvent("beta-4", 4.0, "/s/beta-4", Finished(3, False, "finished 3 epochs", "/s/beta-4"), "w2"))
    text = out.getvalue()
    blocks = text.split("\x1b[2F")            # each redraw goes back up over the 2 lines of the block
    assert len(blocks) == 3 and blocks[-1].count("\n") == 2
    last = blocks[-1].splitlines()
    assert last[0].startswith("\x1b[Kbeta-1") and "epoch 2 batch 2/5" in last[0]
    assert last[1].startswith("\x1b[Kbeta-4") and "finished 3 epochs" in last[1]
    plain = io.StringIO()                    # not a terminal: a line per start, epoch and end, never per batch
    progress = SweepProgress(2, stream=plain)
    progress(epoch("beta-4", 1))
    progress(RunEvent("beta-1", 1.0, "/s/beta-1", BatchEnd(1, 2, 5, {"loss": 3.0}, 1.0, 100.0, 1.0), "w1"))
    assert plain.getvalue().splitlines() == ["[beta-4] epoch 1 done: loss 9.00, val neg ELBO 9.00 on tcp://127.0.0.1:1"]
