"""What the KL term buys, on the latent map: the prior's 1σ/2σ contours, the aggregate posterior q(z) and the
holes under the points, following the codes; a clicked image's q(z|x) ellipses and its KL per dimension beside
its reconstruction."""

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from _runs import open_run, tiny_run  # noqa: F401  (a fixture)
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_a_clicked_image_shows_its_ellipse_and_its_kl_per_dimension(window, qtbot, tiny_run):
    from latentlab import surgery
    from latentlab.runs.folder import open_run as read_run

    win = window
    open_run(qtbot, win, tiny_run)
    m = win.latent_map
    lat = read_run(tiny_run).latents
    val = np.flatnonzero(lat["split"] == 1)
    # the point nearest the middle of the view, clicked where a person would, through the map's click path
    (x0, x1), (y0, y1) = m.vb.viewRange()
    row = int(np.argmin(np.hypot(m.z[:, 0] - (x0 + x1) / 2, m.z[:, 1] - (y0 + y1) / 2)))
    index = int(m.indices[row])
    assert index == val[row]
    pos = m.view_to_widget(float(m.z[row, 0]), float(m.z[row, 1]))
    QTest.mouseMove(m.plot.viewport(), QPoint(pos.x(), pos.y()))        # hovered first: a dashed 1σ ellipse
    qtbot.waitUntil(lambda: m.layers.hovered == row, timeout=WAIT_MS)
    hx, hy = m.layers.hover_item.getData()
    assert np.ptp(hx) / 2 == pytest.approx(math.exp(0.5 * float(read_run(tiny_run).latents["z_log_var"][index][0])),
                                           rel=1e-3)
    QTest.mouseClick(m.plot.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(pos.x(), pos.y()))
    qtbot.waitUntil(lambda: win.map_view.last_click is not None and win.map_view.last_click[0] == "point",
                    timeout=WAIT_MS)
    assert win.map_view.last_click[1] == index
    mu, lv = lat["z_mean"][index].astype(np.float64), lat["z_log_var"][index].astype(np.float64)
    one, two = (item.getData() for item in m.layers.ellipse_items)
    # its 1σ ellipse: centred on its code, half-widths its posterior's standard deviations; 2σ twice as wide
    assert (np.ptp(one[0]) / 2, np.ptp(one[1]) / 2) == pytest.approx(tuple(np.exp(0.5 * lv)), rel=1e-3)
    assert ((one[0].max() + one[0].min()) / 2, (one[1].max() + one[1].min()) / 2) == pytest.approx(tuple(mu), abs=1e-4)
    assert np.ptp(two[0]) == pytest.approx(2 * np.ptp(one[0]), rel=1e-6)
    # its KL per dimension beside its reconstruction, in closed form
    panel = win.image_panel
    want = 0.5 * (mu ** 2 + np.exp(lv) - 1 - lv)
    assert panel.kl_per_dim == pytest.approx(want, rel=1e-4)
    assert f"z0 {want[0]:.2f}" in panel.caption.text() and f"total {want.sum():.2f}" in panel.caption.text()
    assert panel.original_view.isVisible()
    # a click off the points: the ellipse goes, the decoded image has no KL
    far = m.view_to_widget(x1 - 0.01 * (x1 - x0), y1 - 0.01 * (y1 - y0))
    if m._point_at(x1 - 0.01 * (x1 - x0), y1 - 0.01 * (y1 - y0)) is None:
        qtbot.wait(600)   # not a double click
        QTest.mouseClick(m.plot.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(far.x(), far.y()))
        qtbot.waitUntil(lambda: win.map_view.last_click[0] == "z", timeout=WAIT_MS)
        assert np.size(m.layers.ellipse_items[0].getData()[0]) == 0 and panel.kl_per_dim is None
    assert surgery.kl_per_dim(mu, lv)[0] == pytest.approx(want)


def test_the_prior_contours_and_the_holes_follow_the_codes(window, qtbot, tiny_run):
    from latentlab import surgery
    from latentlab.runs.folder import open_run as read_run

    win = window
    open_run(qtbot, win, tiny_run)
    m = win.latent_map
    layers = m.layers
    assert m.show_prior.isChecked() and layers.density_item.isVisible() and layers.holes_item.isVisible()
    for item, r in zip(layers.prior_items, (1.0, 2.0)):          # dashed circles of radius 1σ and 2σ at 0
        x, y = item.getData()
        assert np.hypot(x, y) == pytest.approx(np.full(len(x), r), rel=1e-6)
    # the layers are the run's own validation codes' densities
    lat = read_run(tiny_run).latents
    val = lat["split"] == 1
    grid = layers.grid
    want = surgery.density_grid(lat["z_mean"][val], lat["z_log_var"][val], extent=grid.extent, res=grid.log_q.shape[0])
    assert grid.log_q == pytest.approx(want.log_q, rel=1e-4, abs=1e-4)
    assert np.array_equal(grid.holes, want.holes)
    shaded = layers.holes_item.image[..., 3] > 0
    assert np.array_equal(shaded, grid.holes)
    # move the codes to the right half of the plane: the holes open on the left and close on the right
    rng = np.random.default_rng(0)
    moved = np.stack([rng.uniform(0.5, 3, len(m.z)), rng.normal(size=len(m.z))], axis=1).astype(np.float32)
    m.set_points(moved, m.labels, m.class_names, m.indices, z_log_var=np.full_like(moved, math.log(0.3 ** 2)))
    g = layers.grid
    xs = np.linspace(g.extent[0], g.extent[1], g.holes.shape[1] + 1)[:-1]
    inside = g.log_p > math.log(surgery.HOLE_PRIOR_FLOOR / (2 * math.pi))
    left, right = (xs < -0.5)[None, :] & inside, (xs > 1.5)[None, :] & inside
    assert g.holes[left].mean() > 0.9 and g.holes[right].mean() < 0.5
    assert np.array_equal(layers.holes_item.image[..., 3] > 0, g.holes)
    # unchecked, the layers hide
    m.show_prior.setChecked(False)
    assert not layers.density_item.isVisible() and not layers.prior_items[0].isVisible()
    m.set_points(moved * -1, m.labels, m.class_names, m.indices, z_log_var=np.full_like(moved, math.log(0.3 ** 2)))
    assert layers.grid is g                                   # off: not redrawn...
    m.show_prior.setChecked(True)                             # ... until it is on again, for the codes shown now
    assert layers.grid is not g and layers.grid.holes[right].mean() > 0.9 and layers.density_item.isVisible()


def test_active_units_and_holes_per_epoch_beside_the_kl_per_dimension(window, qtbot, tiny_run):
    from latentlab.runs.folder import open_run as read_run

    open_run(qtbot, window, tiny_run)
    kl = window.tradeoff.kl_plot
    history = read_run(tiny_run).history
    x, units = kl.units_curve.getData()
    assert list(x) == [r["epoch"] for r in history] and list(units) == [r["active_units"] for r in history]
    x, holes = kl.holes_curve.getData()
    assert list(holes) == pytest.approx([100 * r["val_hole_fraction"] for r in history])
    rd = window.tradeoff.rd_plot
    rd.redraw()
    tip = rd.runs[str(tiny_run)]["point_item"].points()[0].data()
    last = history[-1]
    assert f"I(x; z) {last['val_mutual_info']:.2f}" in tip and f"KL(q(z) ‖ p(z)) {last['val_marginal_kl']:.2f}" in tip


def test_prior_samples_in_a_hole_are_framed_red(window, qtbot, tiny_run):
    from latentlab import surgery
    from latentlab.sweeps.lesson import HOLE_FRAME
    from latentlab.runs.folder import open_run as read_run

    open_run(qtbot, window, tiny_run)
    prior = window.prior
    prior.refresh(force=True)
    lat = read_run(tiny_run).latents
    val = lat["split"] == 1
    want = surgery.in_hole(prior.z, lat["z_mean"][val], lat["z_log_var"][val])
    assert prior.in_hole is not None and np.array_equal(prior.in_hole, want)
    side = prior.side_spin.value()
    h = prior.images.shape[1] + 4                                 # each tile in a 2-pixel frame
    corners = prior.mosaic[::h, ::h][:side, :side].reshape(-1, 3)  # each tile's top-left frame pixel
    red = np.all(np.isclose(corners, HOLE_FRAME), axis=1)
    assert np.array_equal(red, want)
    assert f"<b>{int(want.sum())}</b> in holes" in prior.caption.text()
