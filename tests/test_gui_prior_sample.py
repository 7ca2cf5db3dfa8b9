"""The map's optional ellipses for a sample of points: the q(z|x) 1σ ellipse of ~100 shown images, a toggle
beside the prior && q(z) layer, redrawn with the codes (so a β change, which moves every z_log_var, visibly
grows or shrinks them), in the map's dims or its PCA plane."""

import numpy as np
import pytest

from _runs import open_run, tiny_run  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def _half_widths(rings):
    return np.array([(np.ptp(r[:, 0]) / 2, np.ptp(r[:, 1]) / 2) for r in rings])


def test_the_sample_ellipses_follow_the_codes_z_log_var(window, qtbot, tiny_run):
    from gui.map.prior_layers import SAMPLE_SIZE
    from latentlab.runs.folder import open_run as read_run

    win = window
    open_run(qtbot, win, tiny_run)
    m, layers = win.latent_map, win.latent_map.layers
    assert not m.show_ellipses.isChecked() and not layers.sample_item.isVisible() and layers.sample is None
    m.show_ellipses.click()                                  # as a person turns the layer on
    assert m.show_ellipses.isChecked() and layers.sample_item.isVisible()
    lat = read_run(tiny_run).latents
    val = np.flatnonzero(lat["split"] == 1)
    rows = layers.sample["rows"]
    assert len(rows) == min(SAMPLE_SIZE, len(val)) == len(layers.sample["ellipses"])
    assert len(np.unique(rows)) == len(rows)
    # each ellipse: centred on its image's code, half-widths its posterior's standard deviations
    lv, mu = lat["z_log_var"][val][rows].astype(np.float64), lat["z_mean"][val][rows].astype(np.float64)
    rings = layers.sample["ellipses"]
    np.testing.assert_allclose(_half_widths(rings), np.exp(0.5 * lv), rtol=1e-3)
    np.testing.assert_allclose([(r.max(axis=0) + r.min(axis=0)) / 2 for r in rings], mu, atol=1e-4)
    x, y = layers.sample_item.getData()                      # one curve, the ellipses broken apart
    assert np.isnan(x).sum() == len(rows) and np.isfinite(x).sum() == sum(len(r) for r in rings)

    # a new epoch's codes (as training or following gives them): wider posteriors, as a larger β makes them
    z, labels, idx = m.z.copy(), m.labels.copy(), m.indices.copy()
    wider = m.z_log_var + 1.0
    m.set_points(z, labels, list(m.class_names), idx, z_log_var=wider)
    assert np.array_equal(layers.sample["rows"], rows)                 # the same images, epoch after epoch
    grown = _half_widths(layers.sample["ellipses"]) / _half_widths(rings)
    np.testing.assert_allclose(grown, np.exp(0.5), rtol=1e-3)
    m.set_points(z, labels, list(m.class_names), idx, z_log_var=wider - 3.0)
    np.testing.assert_allclose(_half_widths(layers.sample["ellipses"]) / _half_widths(rings), np.exp(-1.0), rtol=1e-3)

    # a sub-layer of the prior && q(z) layer: off with it
    m.show_prior.click()
    assert not m.show_ellipses.isEnabled() and not layers.sample_item.isVisible()
    m.show_prior.click()
    assert m.show_ellipses.isEnabled() and layers.sample_item.isVisible()
    m.show_ellipses.click()
    assert not layers.sample_item.isVisible() and layers.sample is None
