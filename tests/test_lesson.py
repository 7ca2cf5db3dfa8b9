"""The lesson (latentlab.sweeps.lesson, `latentlab lesson`): a β sweep with a shared warm start and common random
numbers, each run a normal run folder, figures that are those runs' own, a verdict in words; plus the
pooled resume it relies on."""

import json
import math
import shutil

import numpy as np
import pytest
from _wait import WAIT_S

TINY = {"warm_epochs": 2, "epochs": 1, "draws": 4, "seeds": (0,)}


pytestmark = pytest.mark.usefixtures("dataset_cache")   # the CLI tests load the folder with the cache


@pytest.fixture(scope="module")
def digits(gui_digits):
    """conftest's 300 digits at 16×16 (10 class folders)."""
    return gui_digits


@pytest.fixture(scope="module")
def lesson(dataset, digits, tmp_path_factory):
    """One tiny lesson: β 0.1, 1, 10 on 300 digits (16×16), two epochs of shared start, one at each β."""
    from latentlab.config import TrainConfig
    from latentlab.sweeps.lesson import Design, Lesson

    events = []
    out = tmp_path_factory.mktemp("lesson-out") / "lesson"
    job = Lesson(TrainConfig(dataset=str(digits)), out, dataset, events.append,
                 Design(betas=(10, 0.1, 1), **TINY))
    summary = job.run()
    return {"summary": summary, "out": out, "events": events, "job": job}


def test_each_beta_continues_one_shared_start_in_a_normal_run_folder(lesson):
    from latentlab.runs import folder as runs
    from latentlab.events import SweepStep

    out, s = lesson["out"], lesson["summary"]
    steps = [e for e in lesson["events"] if isinstance(e, SweepStep)]
    assert [e.beta for e in steps] == [0.1, 0.1, 1.0, 10.0]                      # the start, then β by β
    assert steps[0].run_dir == str(out / "warm-start" / "seed-0")
    warm = runs.open_run(out / "warm-start" / "seed-0")
    assert warm.config.beta == 0.1 and warm.epochs_done == 2
    assert [r["beta"] for r in s["runs"]] == [0.1, 1.0, 10.0]
    for r in s["runs"]:
        run = runs.open_run(r["run_dirs"][0])
        assert run.path == out / f"beta-{r['beta']:g}" and run.status == "finished"
        assert run.config.beta == r["beta"] and run.config.seed == 0 and run.config.kl_schedule == "constant"
        assert run.epochs_done == 3 and run.latents is not None
        # the shared start: the same first two epochs (all of them, to the bit), then β alone differs
        assert run.history[:2] == warm.history
        assert [row["beta"] for row in run.history] == pytest.approx([0.1, 0.1, r["beta"]])
    assert sorted(p.name for p in out.iterdir()) == ["beta-0.1", "beta-1", "beta-10", "lesson.json", "warm-start"]
    assert runs.find_runs(out) == [str(out / n) for n in ("beta-0.1", "beta-1", "beta-10")]   # compare as a sweep


def test_the_figures_are_the_runs_own_validation_figures(lesson, dataset):
    """Re-evaluating each saved model gives the summary's rate and distortion; the last epoch's one-sample
    validation figures are close to them; the summary on disk is the one returned."""
    from latentlab.runs import folder as runs
    from latentlab.data import split_indices
    from latentlab.sweeps.lesson import evaluate

    s = lesson["summary"]
    _, val = split_indices(len(dataset.images), 0.1, 0)
    for r in s["runs"]:
        model = runs.open_run(r["run_dirs"][0]).load_model()
        again = evaluate(model, dataset.images[val], draws=4, seed=0)
        assert again["rate"] == pytest.approx(r["rate"], rel=1e-4)
        assert again["distortion"] == pytest.approx(r["distortion"], rel=1e-4)
        assert r["neg_elbo"] == pytest.approx(r["rate"] + r["distortion"])
        last = r["per_seed"][0]["last_epoch"]
        assert last["rate"] == pytest.approx(r["rate"], rel=0.05, abs=0.05)      # KL is exact in both
        assert abs(last["distortion"] - r["distortion"]) < 0.05 * r["distortion"]
        assert isinstance(r["active_units"], int) and "spread" not in r           # one seed: no spread
    assert s["rate_falls"] and s["runs"][0]["rate"] > 3 * s["runs"][-1]["rate"]
    on_disk = json.loads((lesson["out"] / "lesson.json").read_text())
    assert on_disk["runs"] == json.loads(json.dumps(s["runs"])) and on_disk["seconds"] > 0
    assert s["images"] == 300 and not s["stopped"] and s["failed"] is None
    assert s["verdict"][0].startswith("Raising β from 0.1 to 10 cut the rate from")
    assert s["verdict"][3].startswith("β 10: rate") and "vs β 0.1" in s["verdict"][3]
    z = runs.open_run(s["runs"][0]["run_dirs"][0]).latents           # how far the codes spread, from the run
    assert s["runs"][0]["code_spread"] == pytest.approx(np.std(z["z_mean"][z["split"] == 1], axis=0).mean(), rel=1e-3)
    assert s["verdict"][4].startswith("The codes of the validation images spread over ±")


def test_a_folder_it_would_overwrite_is_refused_before_anything_trains(lesson, dataset, digits):
    from latentlab.config import ConfigError, TrainConfig
    from latentlab.sweeps.lesson import Design, Lesson

    with pytest.raises(ConfigError, match="already exists"):
        Lesson(TrainConfig(dataset=str(digits)), lesson["out"], dataset, design=Design(**TINY)).run()
    with pytest.raises(ConfigError, match="two different β"):
        Design(betas=(1.0,)).validate()


def _fake(beta, seed, rate, dist, units=2):
    return {"beta": beta, "seed": seed, "rate": rate, "distortion": dist, "active_units": units,
            "run_dir": f"/r/{seed}/{beta}", "last_epoch": {"rate": rate, "distortion": dist}}


def test_verdict_marks_steps_below_the_seed_spread_and_names_collapse():
    from latentlab.sweeps.lesson import Design, summarise

    results = [_fake(0.1, 0, 12.0, 260.0), _fake(0.1, 1, 11.0, 266.0),
               _fake(1.0, 0, 6.0, 260.4), _fake(1.0, 1, 5.5, 265.8),        # +0.4 and −0.2: not a difference
               _fake(10.0, 0, 0.01, 280.0, 0), _fake(10.0, 1, 0.01, 284.0, 0)]
    s = summarise(results, Design(betas=(0.1, 1.0, 10.0), seeds=(0, 1)), 12.5)
    assert [r["beta"] for r in s["runs"]] == [0.1, 1.0, 10.0]
    r01, r1, r10 = s["runs"]
    assert r01["rate"] == 11.5 and r01["spread"] == {"rate": 0.5, "distortion": 3.0}
    assert r1["distortion"] == pytest.approx(263.1) and r10["collapsed"] and not r1["collapsed"]
    low, high = s["steps"]
    assert low["rate_clear"] and not low["distortion_clear"] and low["distortion_change"] == pytest.approx(0.1)
    assert high["distortion_clear"] and high["distortion_change"] == pytest.approx(18.9)
    assert s["rate_falls"] and s["distortion_rises"] and s["seconds"] == 12.5
    text = "\n".join(s["verdict"])
    assert r10["vs_first"]["distortion"] == pytest.approx(19.0) and r10["vs_first"]["distortion_spread"] == 1.0
    assert "β 10: rate 0.01 nats, distortion +19.0 ± 1.0 nats vs β 0.1 (over 2 seeds)" in text
    assert "β 0.1: rate 11.5 nats, distortion 263.0 nats (± 3.00 over 2 seeds, which differ" in text
    assert "posterior collapse" in s["verdict"][3] and "other half of the lesson" in s["verdict"][3]
    assert s["verdict"][-1].startswith("Below the seed spread (not a measured difference): β 0.1 → 1 (distortion "
                                       "+0.10 ± 0.30)")
    json.dumps(s)                                                            # plain JSON all through


def test_stop_keeps_what_finished_and_skips_the_rest(dataset, digits, tmp_path):
    from latentlab.config import TrainConfig
    from latentlab.events import EpochEnd
    from latentlab.sweeps.lesson import Design, Lesson

    job = None

    def on_event(ev):
        if isinstance(ev, EpochEnd) and len(ev.history) == 3:    # β 0.1's last epoch: stop during β 1
            job.stop()

    job = Lesson(TrainConfig(dataset=str(digits)), tmp_path / "l", dataset, on_event,
                 Design(betas=(0.1, 1, 10), **TINY))
    s = job.run()
    assert s["stopped"] and [r["beta"] for r in s["runs"]] == [0.1]
    assert not (tmp_path / "l" / "beta-10").exists()


def test_a_resume_with_a_pool_gives_the_same_numbers_as_loading_the_model(lesson, dataset, tmp_path):
    """Trainer(resume=True, model_pool=…) reuses a pooled model given the file's weights and optimizer state."""
    from latentlab.runs import folder as runs
    from latentlab.model.pool import ModelPool
    from latentlab.training.trainer import Trainer

    warm = lesson["out"] / "warm-start" / "seed-0"
    pool, histories = ModelPool(), []
    for name, p in (("loaded", None), ("pooled", pool), ("pooled-again", pool)):
        d = runs.copy_run(warm, tmp_path / name)
        cfg = runs.open_run(d).config.replace(beta=3.0, epochs=3)
        assert type(Trainer(cfg, dataset, d, resume=True, model_pool=p).run()).__name__ == "Finished"
        histories.append([{k: v for k, v in row.items() if k != "seconds"} for row in runs.open_run(d).history])
    assert histories[0] == histories[1] == histories[2]                     # every figure, to the bit
    assert pool.built == 1 and pool.reused == 1           # one model built for both pooled resumes


def test_a_runs_numbers_do_not_depend_on_what_the_process_trained_before(dataset, tmp_path):
    """The common random numbers hold in a long-lived process: seed 0 after seed 5 (the pool's model reused,
    TensorFlow's global seed left at 5) trains exactly as seed 0 did first."""
    from latentlab.runs import folder as runs
    from latentlab.config import TrainConfig
    from latentlab.model.pool import ModelPool
    from latentlab.training.trainer import Trainer

    pool, rows = ModelPool(), []
    for i, seed in enumerate((0, 5, 0)):
        cfg = TrainConfig(dataset="digits", seed=seed, epochs=1, batch_size=32)
        Trainer(cfg, dataset, tmp_path / str(i), model_pool=pool, latents_every_epoch_max=0).run()
        rows.append({k: v for k, v in runs.open_run(tmp_path / str(i)).history[0].items() if k != "seconds"})
    assert rows[0] == rows[2] != rows[1] and pool.reused == 2


def test_cli_lesson_writes_the_json_the_issue_asks_for(digits, tmp_path, capsys):
    from latentlab.cli import main

    out, js = tmp_path / "runs", tmp_path / "out.json"
    code = main(["lesson", str(digits), "--json", str(js), "--out", str(out), "--betas", "0.1,10",
                 "--warm-epochs", "1", "--epochs", "1", "--seeds", "2", "--seed", "3", "--draws", "2"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    data = json.loads(js.read_text())
    assert data["seconds"] > 0 and [r["beta"] for r in data["runs"]] == [0.1, 10.0]
    for r in data["runs"]:
        assert {"beta", "rate", "distortion", "neg_elbo", "active_units", "spread", "run_dirs"} <= set(r)
        assert len(r["run_dirs"]) == 2 and all(math.isfinite(r[k]) for k in ("rate", "distortion"))
    assert data["runs"][0]["run_dirs"] == [str(out / "beta-0.1"), str(out / "seeds" / "seed-4" / "beta-0.1")]
    assert data["seeds"] == [3, 4] and (out / "warm-start" / "seed-3").is_dir()
    assert "[warm start at β=0.1 1/6] epoch 1/1" in cap.err and "[β=10 6/6] epoch 2/2" in cap.err
    assert "Raising β from 0.1 to 10" in cap.out and "over 2 seeds" in cap.out
    assert "I(x;z) KL(q|p)" in cap.out and "are codes the prior never draws" in cap.out
    for r in data["runs"]:                                       # the split, per β, in the JSON the issue asks for
        assert r["mutual_info"] + r["marginal_kl"] == pytest.approx(r["rate"], rel=0.02)
        assert (out / f"beta-{r['beta']:g}" / "prior_samples.png").is_file()
        assert r["prior_samples"] == str(out / f"beta-{r['beta']:g}" / "prior_samples.png")
    # the same --out again: one line, nothing trained
    assert main(["lesson", str(digits), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert main(["lesson", str(digits), "--betas", "1"]) == 2
    assert "two different β" in capsys.readouterr().err
    shutil.rmtree(out)


def test_ctrl_c_stops_the_lesson_cleanly_and_keeps_what_finished(digits, tmp_path, capsys):
    """Ctrl+C (SIGINT) during `latentlab lesson`: the running β stops after its batch, the finished ones are
    summarised, the exit status is 0 and every run folder opens."""
    import signal
    import threading
    import time

    from latentlab.runs import folder as runs
    from latentlab.cli import main

    out = tmp_path / "l"

    def interrupt_after_the_first_beta():
        deadline = time.monotonic() + WAIT_S      # the one ceiling: a loaded machine takes its time
        while time.monotonic() < deadline:
            try:
                run = runs.open_run(out / "beta-0.1")          # a copy of the finished start at first
                if run.status == "finished" and run.epochs_done == 7:
                    break
            except Exception:   # read while the lesson writes it (a file replaced between list and open): look again
                pass
            time.sleep(0.05)
        signal.raise_signal(signal.SIGINT)      # what Ctrl+C sends; the CLI's main thread takes it

    # Ctrl+C as in a terminal, even when the suite was started with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_after_the_first_beta, daemon=True).start()
        code = main(["lesson", str(digits), "--out", str(out), "--betas", "0.1,1,10", "--warm-epochs", "1",
                     "--epochs", "6", "--seeds", "1", "--draws", "2"])
    finally:
        signal.signal(signal.SIGINT, previous)
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "stopping after this batch" in cap.err and "stopped early" in cap.out
    summary = json.loads((out / "lesson.json").read_text())
    assert summary["stopped"] and [r["beta"] for r in summary["runs"]] == [0.1]
    if (out / "beta-1").exists():                                           # unless Ctrl+C came between runs
        stopped = runs.open_run(out / "beta-1")
        assert stopped.status == "stopped" and 1 <= stopped.epochs_done < 7
    assert not (out / "beta-10").exists()


def test_the_rate_splits_into_what_the_code_says_and_codes_the_prior_never_draws(lesson):
    """ELBO surgery per β: I(x; z) + KL(q(z) ‖ p(z)) = rate, I(x; z) ≤ log N, the mismatch falls with β; the
    same z ~ N(0, I) decoded by every β as a PNG in its run folder; the split per epoch in history.csv."""
    from PIL import Image

    from latentlab import surgery
    from latentlab.runs import folder as runs

    s = lesson["summary"]
    for r in s["runs"]:
        assert r["mutual_info"] + r["marginal_kl"] == pytest.approx(r["rate"], rel=0.02)
        assert 0 <= r["mutual_info"] <= r["mutual_info_bound"] + 1e-9 and r["marginal_kl"] > -3 * r["rate_split_se"]
        assert r["mutual_info_bound"] == pytest.approx(math.log(30))            # 300 images, a tenth validate
        png = Image.open(r["prior_samples"])
        assert png.size == (8 * 20, 8 * 20) and len(r["prior_in_hole"]) == 64   # 16×16 in 2-pixel frames
        run = runs.open_run(r["run_dirs"][0])
        assert {"val_mutual_info", "val_marginal_kl", "val_hole_fraction"} <= set(run.history[-1])
        # the figures are the run's codes' own: the saved validation codes give the same split
        z = run.latents
        again = surgery.split_rate(z["z_mean"][z["split"] == 1], z["z_log_var"][z["split"] == 1], seed=0)
        assert again.marginal_kl == pytest.approx(r["marginal_kl"], abs=1e-3)
    first, last = s["runs"][0], s["runs"][-1]
    assert first["marginal_kl"] > last["marginal_kl"]
    for r in s["runs"]:                   # prior samples against the validation images, in the β 0.1 encoder's codes
        q = r["sample_quality"]
        assert 0 <= q["coverage"] <= 1 and 0 <= q["precision"] <= 1 and q["real"] == 30 and q["generated"] == 1000
        assert q["features"] == "z_mean of the β 0.1 encoder"
    assert "coverage (the share of images with a sample near them)" in "\n".join(s["verdict"])
    assert [p["png"] for p in s["prior_samples"]] == [r["prior_samples"] for r in s["runs"]]
    text = "\n".join(s["verdict"])
    assert f"β 0.1: of {first['rate']:.1f} nats" in text or f"β 0.1: of {first['rate']:.2f} nats" in text
    assert "are codes the prior never draws" in text
