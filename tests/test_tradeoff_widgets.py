"""The trade-off widgets on plain data, driven like a person would: the loss written out, the
KL per dimension with its collapse warning, the rate–distortion plane, replay, traversal,
interpolation and nearest images (a fake decoder: no TensorFlow here)."""

import csv
import io

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from _tradeoff import FakeDecoder, click_plot
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def png_ok(path, min_w=50):
    img = QImage(str(path))
    return not img.isNull() and img.width() >= min_w


def history(beta, recon0, kl0, n=4):
    return [{"epoch": i + 1, "beta": beta, "loss": recon0 - 10 * i + beta * (kl0 + i),
             "reconstruction_loss": recon0 - 10 * i, "kl_loss": kl0 + i,
             "val_reconstruction_loss": recon0 - 9 * i, "val_kl_loss": kl0 + i, "active_units": 2}
            for i in range(n)]


def test_loss_terms_panel_writes_out_the_loss_with_the_current_beta(qtbot, tmp_path):
    from gui.tradeoff.loss_terms import BETA_TIP, LossTermsPanel

    w = LossTermsPanel()
    qtbot.addWidget(w)
    w.show()
    w.set_beta(4.0)
    text = w.formula.text()
    assert "log p(x|z)" in text and "KL(q(z|x) ‖ p(z))" in text and ">4<" in text
    assert "blurrier" in text                                  # β > 1 explained
    w.set_beta(0.25)
    assert ">0.25<" in w.formula.text() and "sharper" in w.formula.text()
    w.show_batch({"loss": 103.0, "reconstruction_loss": 100.0, "kl_loss": 12.0}, 0.25)
    assert w.value_labels[("log_likelihood", "train")].text() == "-100.00"
    assert w.value_labels[("weighted_kl", "train")].text() == "3.00"
    assert w.value_labels[("objective", "train")].text() == "-103.00"
    assert w.value_labels[("neg_elbo", "train")].text() == "112.00"
    assert w.value_labels[("kl", "val")].text() == "—"
    w.show_epoch({"reconstruction_loss": 99.0, "kl_loss": 11.0, "val_reconstruction_loss": 95.0,
                  "val_kl_loss": 10.0}, 0.25, epoch=1)
    assert w.value_labels[("kl", "val")].text() == "10.00"
    assert "β·KL is" in w.note.text()
    for lab in w.value_labels.values():                     # every value says what it means
        assert len(lab.toolTip()) > 40
    assert "raising" in BETA_TIP and "lowering" in BETA_TIP and w.formula.toolTip() == BETA_TIP
    assert w.export_csv(tmp_path / "terms.csv")
    r = rows((tmp_path / "terms.csv").read_text())
    assert r[0]["val_neg_elbo"] == "105.0" and r[0]["beta"] == "0.25"
    assert w.export_png(tmp_path / "terms.png") and png_ok(tmp_path / "terms.png")


def test_kl_per_dimension_bars_active_units_and_collapse_warning(qtbot, tmp_path):
    from gui.tradeoff.kl_per_dim import KLPerDimPlot

    w = KLPerDimPlot()
    qtbot.addWidget(w)
    w.resize(600, 400)
    w.show()
    w.set_kl(np.array([3.0, 0.001, 1.2, 0.0]), active_units=2, epoch=1)
    assert list(w.bars.opts["height"]) == [3.0, 0.001, 1.2, 0.0]
    assert "<b>2</b> / 4" in w.units_label.text()
    assert not w.warning_shown and "z1, z3" in w.status.text()
    with qtbot.waitSignal(w.collapseChanged, timeout=WAIT_MS) as blocker:
        w.set_kl(np.array([0.001, 0.0, 0.002, 0.0]), active_units=0, epoch=2)
    assert blocker.args == [True]
    assert w.warning_shown and w.warning.isVisible() and "Posterior collapse" in w.warning.text()
    with qtbot.waitSignal(w.collapseChanged, timeout=WAIT_MS) as blocker:
        w.set_kl(np.array([0.5, 0.4, 0.0, 0.0]), active_units=2, epoch=3)
    assert blocker.args == [False] and not w.warning_shown
    assert w.export_csv(tmp_path / "kl.csv")
    r = rows((tmp_path / "kl.csv").read_text())
    assert [x["epoch"] for x in r] == ["1", "2", "3"] and r[1]["active_units"] == "0" and "kl_z3" in r[0]
    assert w.export_png(tmp_path / "kl.png") and png_ok(tmp_path / "kl.png", 500)


def test_rate_distortion_plane_points_live_path_equal_elbo_lines_and_clicks(qtbot, tmp_path):
    from gui.tradeoff.rate_distortion import RateDistortionPlot, beta_color

    w = RateDistortionPlot()
    qtbot.addWidget(w)
    w.resize(700, 500)
    w.show()
    qtbot.waitExposed(w, timeout=WAIT_MS)
    w.add_run("/runs/beta-0.5", 0.5, history(0.5, 300, 12))
    w.add_run("/runs/beta-4", 4.0, history(4.0, 330, 2))
    w.redraw()
    assert beta_color(0.5) != beta_color(4.0)
    assert w.labels() == ["β = 0.5", "β = 4"]
    assert w.markers("/runs/beta-4") == 1 and w.markers("/runs/beta-0.5") == 1      # one marker per run
    pt = w.runs["/runs/beta-4"]["point_item"].points()[0].pos()
    assert (pt.x(), pt.y()) == (5.0, 303.0)                           # the last epoch's val KL and recon
    label = w.runs["/runs/beta-4"]["label_item"]
    assert (label.pos().x(), label.pos().y()) == (5.0, 303.0) and label.textItem.toPlainText() == "β = 4"
    w.add_run("/runs/../runs/beta-4", 4.0, history(4.0, 330, 2))     # the same folder spelled otherwise
    assert len(w.runs) == 2
    assert len(w.iso_curves) >= 2 and 1 <= len(w.iso_labels) <= len(w.iso_curves)
    for level, curve in zip(w.iso_levels, w.iso_curves):              # every line is rate + distortion = level
        xs, ys = curve.getData()
        assert np.allclose(xs + ys, level)

    w.start_live(1.0)
    for row in history(1.0, 320, 6, n=3):
        w.add_live_epoch(row)
        w.redraw()
    xs, ys = w.live["curve"].getData()
    assert list(xs) == [6.0, 7.0, 8.0] and list(ys) == [320.0, 311.0, 302.0]
    assert "epoch 3" in w.readout.text()
    assert "training (β = 1)" in w.labels()

    with qtbot.waitSignal(w.runClicked, timeout=WAIT_MS) as blocker:
        click_plot(qtbot, w.plot, 5.0, 303.0)
    assert blocker.args == ["/runs/beta-4"]

    w.show_iso.setChecked(False)
    w.redraw()
    assert w.iso_curves == []
    assert w.export_csv(tmp_path / "rd.csv")
    r = rows((tmp_path / "rd.csv").read_text())
    assert len(r) == 4 + 4 + 3 and {x["beta"] for x in r} == {"0.5", "4.0", "1.0"}
    assert float(r[0]["neg_elbo"]) == float(r[0]["rate_kl"]) + float(r[0]["distortion_recon"])
    assert w.export_png(tmp_path / "rd.png") and png_ok(tmp_path / "rd.png", 1000)
    w.stop_live()
    w.redraw()
    assert w.live is None and len(w.labels()) == 2


def test_replay_slider_shows_the_map_of_each_epoch(qtbot, tmp_path):
    from gui.tradeoff.epoch_replay import EpochReplay

    w = EpochReplay()
    qtbot.addWidget(w)
    w.show()
    frames = np.stack([np.full((5, 2), e, np.float32) + np.arange(5)[:, None] * 0.1 for e in range(4)])
    w.set_frames(frames, labels=np.array([0, 1, 2, 0, 1]), class_names=["a", "b", "c"])
    assert w.slider.maximum() == 4 and w.epoch == 4
    w.slider.setValue(2)                                    # a person drags the slider
    assert w.epoch == 2
    x, y = w.scatter.getData()
    assert np.allclose(x, frames[1][:, 0]) and np.allclose(y, frames[1][:, 1])
    assert "epoch 2 of 4" in w.info.text()
    w.add_frame(np.zeros((5, 2)))                           # live: not on the last epoch, so the view stays
    assert w.slider.maximum() == 5 and w.epoch == 2
    w.slider.setValue(5)
    w.add_frame(np.ones((5, 2)))                            # on the last epoch: follow the new one
    assert w.epoch == 6
    qtbot.mouseClick(w.play_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.epoch == 6 and not w._timer.isActive(), timeout=WAIT_MS)
    assert w.export_csv(tmp_path / "ep.csv")
    r = rows((tmp_path / "ep.csv").read_text())
    assert len(r) == 5 and r[0]["epoch"] == "6" and r[1]["class"] == "b"
    assert w.export_png(tmp_path / "ep.png") and png_ok(tmp_path / "ep.png")
    w.set_frames(np.random.default_rng(0).normal(size=(2, 30, 5)))   # d > 2: principal components
    assert w.projection is not None and w.epoch == 2


def test_traversal_rows_follow_dimensions_and_steps(qtbot, tmp_path):
    from gui.tradeoff.latent_tools import TraversalView, parse_dims

    assert parse_dims("all", 3) == [0, 1, 2] and parse_dims("z2, 0-1, 9", 4) == [2, 0, 1]
    w = TraversalView()
    qtbot.addWidget(w)
    w.show()
    dec = FakeDecoder(latent_dim=3)
    w.set_decoder(dec)
    w.set_data(np.random.default_rng(0).normal(0, 1, (200, 3)))
    w.set_point(np.array([0.5, -0.5, 0.0]))
    assert len(w.rows) == 3 and all(len(r) == 9 for r in w.rows)
    assert dec.calls == 1                                  # one batched decode for the whole picture
    top = [float(im[0, 0, 0]) for im in w.rows[0]]         # z0 sweeps: the top half brightens
    assert all(b > a for a, b in zip(top, top[1:]))
    bottom = {round(float(im[-1, 0, 0]), 6) for im in w.rows[0]}
    assert len(bottom) == 1                                 # z1 stays at the point
    w.steps_spin.setValue(5)
    assert all(len(r) == 5 for r in w.rows)
    w.dims_edit.setText("1")
    w.dims_edit.editingFinished.emit()
    assert len(w.rows) == 1 and w.dims == [1]
    qtbot.mouseClick(w.prior_range, Qt.LeftButton)
    assert w.values[1][0] == -3.0 and w.values[1][-1] == 3.0
    assert "decoded in" in w.info.text()
    assert w.export_png(tmp_path / "trav.png") and png_ok(tmp_path / "trav.png")


def test_interpolation_between_two_clicked_points(qtbot, tmp_path):
    from gui.tradeoff.latent_tools import InterpolationView

    w = InterpolationView()
    qtbot.addWidget(w)
    w.show()
    w.set_decoder(FakeDecoder())
    assert not w.export_png(tmp_path / "none.png")          # nothing yet
    w.set_point(np.array([-4.0, 0.0]), "first click")
    qtbot.mouseClick(w.set_a_button, Qt.LeftButton)
    w.set_point(np.array([4.0, 2.0]))
    qtbot.mouseClick(w.set_b_button, Qt.LeftButton)
    assert w.strip is not None and len(w.strip) == 10
    assert "first click" in w.ends_label.text()
    assert w.strip[0, 0, 0, 0] < 0.05 and w.strip[-1, 0, 0, 0] > 0.95   # A then B, both included
    w.steps_spin.setValue(4)
    assert len(w.strip) == 4
    assert w.export_png(tmp_path / "interp.png") and png_ok(tmp_path / "interp.png")
    assert QImage(str(tmp_path / "interp.png")).width() > 4 * 64


def test_nearest_training_images(qtbot, tmp_path):
    from gui.tradeoff.latent_tools import NearestView

    w = NearestView()
    qtbot.addWidget(w)
    w.show()
    z = np.array([[0, 0], [1, 1], [3, 3], [0.1, 0.0], [-2, 0]], np.float32)
    images = np.stack([np.full((8, 8, 1), i / 5, np.float32) for i in range(5)])
    w.set_data(z, images, labels=np.array([0, 1, 1, 0, 1]), class_names=["shoe", "bag"],
               paths=[f"img{i}.png" for i in range(5)])
    w.k_spin.setValue(3)
    w.set_point(np.array([0.0, 0.05]))
    assert w.found.tolist() == [0, 3, 1]
    assert w.view.image is not None
    assert w.export_csv(tmp_path / "near.csv")
    r = rows((tmp_path / "near.csv").read_text())
    assert [x["path"] for x in r] == ["img0.png", "img3.png", "img1.png"] and r[2]["class"] == "bag"
    assert w.export_png(tmp_path / "near.png") and png_ok(tmp_path / "near.png")
    w.set_data(z)                                           # no images: still the indices, and a reason
    assert w.found.tolist() == [0, 3, 1] and "not loaded" in w.view.label.text()


def test_every_control_of_the_tradeoff_views_says_what_it_does(qtbot):
    from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit,
                                   QScrollBar, QTabBar)
    from superqt import QLabeledSlider

    from gui.tradeoff.tradeoff_panel import TradeoffPanel

    p = TradeoffPanel()
    qtbot.addWidget(p)
    missing = []
    for w in p.findChildren(QWidget):
        if not isinstance(w, (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QAbstractSlider)):
            continue
        if isinstance(w, QScrollBar) or w.objectName().startswith("qt_") or isinstance(w.parent(), (QTabBar, QLabeledSlider, QAbstractSpinBox, QComboBox)) \
                or isinstance(w.parent().parent() if w.parent() else None, QLabeledSlider):
            continue                                     # scroll bars, tab arrows, a slider's own parts
        if len(w.toolTip()) < 20:
            missing.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
    assert not missing, missing
    for i in range(p.count()):
        assert len(p.tabToolTip(i)) > 20


def test_traversal_of_a_large_latent_shows_the_most_used_dimensions(qtbot):
    from gui.tradeoff.latent_tools import TraversalView

    w = TraversalView()
    qtbot.addWidget(w)
    w.show()
    w.set_decoder(FakeDecoder(latent_dim=32))
    z = np.random.default_rng(1).normal(0, 0.01, (100, 32))
    z[:, [3, 30]] *= 100                                   # two dimensions in use
    w.set_data(z)
    w.set_point(np.zeros(32))
    assert len(w.rows) == w.MAX_ROWS and {3, 30} <= set(w.dims) and "varies most" in w.info.text()
