"""The latent map's decoded grid as the engine makes it (no Qt, no TensorFlow): tiles that cover the view
at about their image's size on screen, reused across a pan; and an opened run's KL per dimension."""

import numpy as np
import pytest

from latentlab.model.latent import MAX_TILES, TileCache, decode_grid, kl_per_dim, view_lattice
from latentlab.tradeoff import latents_kl


class CountingDecoder:
    """decode(z) → 4×6 images whose pixels hold z0 (top half) and z1 (bottom half); counts what it decodes."""

    latent_dim = 2

    def __init__(self):
        self.decoded = 0

    def decode(self, z):
        z = np.asarray(z, np.float32).reshape(-1, 2)
        self.decoded += len(z)
        out = np.zeros((len(z), 4, 6, 1), np.float32)
        out[:, :2] = z[:, 0, None, None, None]
        out[:, 2:] = z[:, 1, None, None, None]
        return out


@pytest.mark.parametrize("view,width,tile", [(((-3, 3), (-2, 2)), 640, 28), (((-0.2, 0.3), (5, 5.4)), 900, 16),
                                             (((-40, 40), (-25, 25)), 1300, 8), (((1, 2), (1, 1.5)), 300, 64)])
def test_a_lattice_covers_the_view_with_tiles_about_an_image_wide(view, width, tile):
    (x0, x1), (y0, y1) = view
    lat = view_lattice((x0, x1), (y0, y1), width, tile)
    s = lat.step
    assert lat.i0 * s - s / 2 <= x0 and lat.i1 * s + s / 2 >= x1           # the view is covered
    assert lat.j0 * s - s / 2 <= y0 and lat.j1 * s + s / 2 >= y1
    assert lat.cols <= MAX_TILES and lat.rows <= MAX_TILES
    on_screen = s * width / (x1 - x0)
    if width / tile < MAX_TILES - 2:     # room for tiles of the image's size: within 2^±¼ of it
        assert 2 ** -0.25 - 1e-9 <= on_screen / tile <= 2 ** 0.25 + 1e-9
    else:                                # else the finest level with at most MAX_TILES a side
        assert on_screen > tile and (x1 - x0) / (s / 2 ** 0.5) + 1 > MAX_TILES
    assert np.isclose(np.log2(s) * 2, round(np.log2(s) * 2))               # a level: a power of √2


def test_zooming_changes_the_tiles_and_panning_keeps_them():
    lat = view_lattice((-3, 3), (-2, 2), 640, 28)
    zoomed = view_lattice((-2.5, 2.5), (-1.67, 1.67), 640, 28)              # 1.2× in: same level, fewer tiles
    assert zoomed.step == lat.step and (zoomed.cols, zoomed.rows) != (lat.cols, lat.rows)
    far = view_lattice((-1, 1), (-0.67, 0.67), 640, 28)                      # 3× in: a finer level
    assert far.step < lat.step
    panned = view_lattice((-2.5, 3.5), (-2, 2), 640, 28)
    assert panned.step == lat.step and panned.i0 == lat.i0 + 2 and panned.cols == lat.cols
    wide = view_lattice((-3, 3), (-2, 2), 640, 28, aspect=2.0)               # images twice as high as wide
    assert wide.dy == 2 * wide.step and wide.rows < lat.rows


def test_the_tile_cache_decodes_only_tiles_that_came_into_view():
    dec, cache = CountingDecoder(), TileCache()
    lat = view_lattice((-3, 3), (-2, 2), 640, 28)
    first = cache.mosaic(dec, lat, context="weights-1")
    assert first.shape == (lat.rows * 4, lat.cols * 6, 1) and dec.decoded == lat.cols * lat.rows
    # the mosaic is the grid decode_grid makes over the tiles' centres
    assert np.array_equal(first, decode_grid(CountingDecoder(), lat.x_range, lat.y_range, (lat.cols, lat.rows)))
    assert first[0, 0, 0] == pytest.approx(lat.i0 * lat.step) and first[2, 0, 0] == pytest.approx(lat.j1 * lat.step)
    panned = view_lattice((-2.5, 3.5), (-2, 2), 640, 28)
    dec.decoded = 0
    second = cache.mosaic(dec, panned, context="weights-1")
    assert dec.decoded == 2 * panned.rows == cache.decoded                   # two new columns only
    assert np.array_equal(second, decode_grid(CountingDecoder(), panned.x_range, panned.y_range,
                                              (panned.cols, panned.rows)))
    dec.decoded = 0
    cache.mosaic(dec, panned, context="weights-2")                           # new weights: every tile again
    assert dec.decoded == panned.cols * panned.rows


def test_an_opened_runs_kl_per_dimension_comes_from_its_validation_latents():
    rng = np.random.default_rng(0)
    z_mean = rng.standard_normal((50, 3)) * [1.0, 0.5, 0.001]
    z_log_var = np.full((50, 3), -1.0)
    split = np.zeros(50, np.int8)
    split[40:] = 1
    kl = latents_kl({"z_mean": z_mean, "z_log_var": z_log_var, "split": split})
    expected = 0.5 * (z_mean[40:] ** 2 + np.exp(-1.0) - 1.0 + 1.0).mean(axis=0)
    assert kl.images == 10 and kl.split == "validation"
    assert np.allclose(kl.kl_per_dim, expected) and np.allclose(kl_per_dim(z_mean[40:], z_log_var[40:]), expected)
    assert kl.active_units == int(np.sum(np.var(z_mean[40:], axis=0) > 0.01))
    assert latents_kl({"z_mean": z_mean, "z_log_var": z_log_var}).images == 50           # no split: all images
    assert latents_kl({"z_mean": z_mean}) is None and latents_kl(None) is None
