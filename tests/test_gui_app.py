"""The app end to end: ``gui.app.main`` trains with --autostart, saves a screenshot and quits."""

import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_main_trains_screenshots_and_quits(qapp, gui_env, gui_digits, capsys):
    from gui.app import main

    shot = gui_env / "shot.png"
    code = main(["--dataset", str(gui_digits), "--epochs", "2", "--batch-size", "32", "--beta", "2",
                 "--latent-dim", "2", "--autostart", "--screenshot", str(shot), "--quit-when-done"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "finished 2 epochs" in out.out
    img = QImage(str(shot))
    assert not img.isNull() and img.width() >= 1000 and img.height() >= 600
    colors = {img.pixel(x, y) for x in range(0, img.width(), 37) for y in range(0, img.height(), 29)}
    assert len(colors) > 50, "the screenshot looks blank"
    runs = list((gui_env / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "model.keras").is_file()
    from latentlab.runs.folder import open_run
    run = open_run(runs[0])
    assert run.config.beta == 2.0 and len(run.history) == 2 and run.status == "finished"


def test_main_opens_a_run_and_quits(qapp, gui_env, gui_digits, capsys):
    """--run without --autostart: the run is shown, the screenshot taken, exit 0."""
    from latentlab.config import TrainConfig
    from latentlab.training.trainer import Trainer

    run_dir = gui_env / "cli-run"
    Trainer(TrainConfig(dataset=str(gui_digits), epochs=1, batch_size=64), run_dir=run_dir).run()
    from gui.app import main

    shot = gui_env / "run.png"
    assert main(["--run", str(run_dir), "--screenshot", str(shot), "--quit-when-done"]) == 0
    assert QImage(str(shot)).width() >= 1000
