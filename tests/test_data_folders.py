"""Real folders as they are: transparency kept visible, aspect kept, every file accounted for,
duplicates used once, arrays (npz / npy / IDX) as datasets."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from latentlab.data import DatasetError, load_folder
from latentlab.data.cache import wait_for_cache_writes

RNG = np.random.default_rng(1)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(d))
    yield d
    wait_for_cache_writes()


def line_art(size=(48, 48), ink=(0, 0, 0), seed=0) -> Image.Image:
    """Lines of ``ink`` on a fully transparent background (RGBA), like clip art."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGBA", (size[1], size[0]), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(2, min(size) - 2, 4))
        d.line((x0, y0, x1, y1), fill=(*ink, 255), width=2)
    d.ellipse((6, 6, size[1] - 6, size[0] - 6), outline=(*ink, 255), width=2)
    return im


def save(path: Path, im) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(im) if isinstance(im, np.ndarray) else im).save(path)
    return path


# -- transparency ---------------------------------------------------------------------------------
def test_black_line_art_on_transparency_stays_visible_by_default(tmp_path):
    for i in range(4):
        save(tmp_path / f"art{i}.png", line_art(seed=i))
    ds = load_folder(tmp_path)
    assert ds.num_images == 4 and ds.image_shape == (48, 48, 1)
    for img in ds.images:
        assert img.max() - img.min() > 0.9        # not all black: white paper, black ink
        assert np.median(img) == 1.0              # the background is white
    assert ds.report.transparent == 4 and ds.report.on_white == 4
    assert "4 images had some: 4 filled with white" in ds.summary()
    assert ds.report.blank_skipped == 0
    with pytest.raises(DatasetError, match="nearly blank"):   # what black did: every image black, now refused
        load_folder(tmp_path, background="black", cache=False)


def test_black_background_makes_black_line_art_blank_and_says_so(tmp_path):
    for i in range(3):
        save(tmp_path / f"art{i}.png", line_art(seed=i))
    save(tmp_path / "photo.png", (RNG.random((48, 48, 3)) * 255).astype(np.uint8))
    ds = load_folder(tmp_path, background="black")
    assert ds.paths == ["photo.png"]
    reasons = {s.path: s.reason for s in ds.skipped}
    assert set(reasons) == {"art0.png", "art1.png", "art2.png"}
    assert all("nearly blank" in r and "--background white" in r for r in reasons.values())
    assert ds.report.blank_skipped == 3 and "Nearly blank: 3 skipped" in ds.summary()


def test_auto_puts_light_content_on_black_and_dark_on_white(tmp_path):
    save(tmp_path / "white_logo.png", line_art(ink=(255, 255, 255), seed=1))
    save(tmp_path / "dark_icon.png", line_art(ink=(20, 20, 120), seed=2))
    fully = Image.new("RGBA", (48, 48), (255, 0, 0, 0))
    save(tmp_path / "invisible.png", fully)
    ds = load_folder(tmp_path)
    img = {p: ds.images[i] for i, p in enumerate(ds.paths)}
    assert np.median(img["white_logo.png"]) == 0.0 and img["white_logo.png"].max() == 1.0
    assert np.median(img["dark_icon.png"]) == 1.0 and img["dark_icon.png"].min() < 0.6
    assert ds.report.on_black == 1 and ds.report.on_white == 1
    assert "fully transparent" in {s.path: s.reason for s in ds.skipped}["invisible.png"]


def test_alpha_keeps_transparency_as_a_channel(tmp_path):
    save(tmp_path / "art.png", line_art(seed=3))
    save(tmp_path / "opaque.png", (RNG.random((48, 48)) * 255).astype(np.uint8))
    ds = load_folder(tmp_path, background="alpha")
    assert ds.image_shape == (48, 48, 2) and ds.has_alpha
    art, opaque = ds.images[ds.paths.index("art.png")], ds.images[ds.paths.index("opaque.png")]
    assert 0.0 == art[..., 1].min() and art[..., 1].max() == 1.0
    assert np.all(opaque[..., 1] == 1.0)
    assert ds.report.kept_alpha == 1 and "Channels: 2 (grayscale + alpha)" in ds.summary()


# -- aspect ---------------------------------------------------------------------------------------
def test_a_4_to_1_image_keeps_its_aspect_by_default(tmp_path):
    for i in range(3):
        save(tmp_path / f"sq{i}.png", (RNG.random((32, 32)) * 255).astype(np.uint8))
    wide = np.zeros((16, 64), np.uint8)
    wide[:, :] = 255
    wide[4:12, 8:56] = 0                       # a black bar on white, 4:1
    save(tmp_path / "wide.png", wide)
    ds = load_folder(tmp_path)
    assert ds.image_shape == (32, 32, 1)
    img = ds.images[ds.paths.index("wide.png")][..., 0]
    rows = np.flatnonzero((img < 0.5).any(axis=1))
    cols = np.flatnonzero((img < 0.5).any(axis=0))
    # 64 wide → 32: scale 1/2; the bar is 24 wide and 4 high; the pad is the border's white
    assert 22 <= cols.size <= 26 and 3 <= rows.size <= 5
    assert img[0].min() == 1.0 and img[-1].min() == 1.0
    assert "aspect kept, padded" in ds.summary() and "most common size, 32×32 (75% of the images)" in ds.summary()
    assert "aspect (width/height) 1.00–4.00" in ds.summary()
    stretched = load_folder(tmp_path, fit="stretch", cache=False).images[3][..., 0]
    assert (stretched < 0.5).any(axis=1).sum() >= 14            # the bar fills half the height
    cropped = load_folder(tmp_path, fit="crop", cache=False).images[3][..., 0]
    assert (cropped < 0.5).any(axis=0).sum() == 32 and (cropped < 0.5).any(axis=1).sum() == 16


def test_sides_up_to_128(tmp_path):
    save(tmp_path / "a.png", (RNG.random((40, 40, 3)) * 255).astype(np.uint8))
    ds = load_folder(tmp_path, image_size=128)
    assert ds.image_shape == (128, 128, 3) and "as asked" in ds.summary()
    with pytest.raises(DatasetError, match="8 to 128"):
        load_folder(tmp_path, image_size=129)


# -- every file accounted for ---------------------------------------------------------------------
def test_other_files_are_counted_by_kind(tmp_path):
    save(tmp_path / "a.png", (RNG.random((16, 16)) * 255).astype(np.uint8))
    for i in range(3):
        (tmp_path / f"v{i}.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.xpm").write_text("/* XPM */")
    (tmp_path / ".hidden").write_text("x")
    ds = load_folder(tmp_path)
    text = ds.summary()
    assert "3 .svg: vector images are not read — convert them, e.g. with rsvg-convert" in text
    assert "1 .xpm: X pixmaps are not read" in text and "1 hidden files" in text
    assert ds.report.others == {".svg": 3, ".xpm": 1}


def test_a_folder_of_svgs_only_says_so(tmp_path):
    for i in range(5):
        (tmp_path / f"v{i}.svg").write_text("<svg/>")
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path)
    msg = str(e.value)
    assert "5 .svg: vector images are not read" in msg and "rsvg-convert" in msg and "\n" not in msg


def test_the_same_file_twice_and_identical_files_count_once(tmp_path):
    a = save(tmp_path / "a.png", (RNG.random((16, 16)) * 255).astype(np.uint8))
    save(tmp_path / "b.png", (RNG.random((16, 16)) * 255).astype(np.uint8))
    os.symlink("a.png", tmp_path / "link.png")
    os.link(a, tmp_path / "hard.png")
    (tmp_path / "copy.png").write_bytes(a.read_bytes())
    ds = load_folder(tmp_path)
    assert ds.num_images == 2 and sorted(ds.paths) == ["a.png", "b.png"]
    dups = dict(map(tuple, ds.report.duplicates))
    assert dups == {"copy.png": "a.png", "hard.png": "a.png", "link.png": "a.png"}
    assert "Duplicates: 3 not used" in ds.summary()
    again = load_folder(tmp_path)
    assert again.from_cache and again.report.duplicates == ds.report.duplicates


# -- arrays ---------------------------------------------------------------------------------------
def _idx(path: Path, arr: np.ndarray) -> None:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.astype(np.uint8).tobytes())


def test_npz_npy_and_idx_are_datasets(tmp_path):
    x = (RNG.random((30, 12, 12)) * 255).astype(np.uint8)
    y = RNG.integers(0, 3, 30)
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez(tmp_path / "keras.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    np.save(tmp_path / "only.npy", x.astype(np.float32) / 255)
    ds = load_folder(tmp_path / "plain.npz")
    assert ds.num_images == 30 and ds.image_shape == (12, 12, 1) and ds.labels.tolist() == y.tolist()
    k = load_folder(tmp_path / "keras.npz")
    assert k.num_images == 30 and "not used: x_test, y_test" in k.summary()
    n = load_folder(tmp_path / "only.npy")
    assert not n.labeled and np.allclose(n.images[..., 0], x / 255, atol=1e-6)
    idx = tmp_path / "mnistish"
    idx.mkdir()
    _idx(idx / "train-images-idx3-ubyte.gz", x)
    _idx(idx / "train-labels-idx1-ubyte.gz", y)
    _idx(idx / "t10k-images-idx3-ubyte.gz", x[:4])
    d = load_folder(idx)
    assert d.num_images == 30 and d.labels.tolist() == y.tolist() and d.report.source == "idx"
    assert "t10k-images-idx3-ubyte.gz" in d.summary()
    assert load_folder(tmp_path / "plain.npz", image_size=24).image_shape == (24, 24, 1)


def test_bad_arrays_are_one_line_errors(tmp_path):
    np.savez(tmp_path / "odd.npz", a=np.zeros(3), b=np.zeros(3))
    np.save(tmp_path / "flat.npy", np.zeros(10))
    np.savez(tmp_path / "lab.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, int))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\x01\x02")
    for name, needle in [("odd.npz", "x_train"), ("flat.npy", "images must be"), ("lab.npz", "labels must be 4"),
                         ("bad.npz", "cannot read"), ("x-images-idx3-ubyte", "not an IDX file")]:
        with pytest.raises(DatasetError) as e:
            load_folder(tmp_path / name)
        assert needle in str(e.value) and "\n" not in str(e.value), (name, str(e.value))


# -- incremental cache ----------------------------------------------------------------------------
@pytest.mark.parametrize("background", ["auto", "alpha"])
def test_one_changed_added_or_removed_file_decodes_that_file_only(tmp_path, monkeypatch, background):
    from latentlab.data import decode

    root = tmp_path / "d"
    for i in range(30):
        save(root / f"c{i % 3}" / f"g{i}.png", (RNG.random((20, 20)) * 255).astype(np.uint8))
    for i in range(4):
        save(root / "c0" / f"art{i}.png", line_art((20, 20), seed=10 + i))
    save(root / "c1" / "rgb.png", (RNG.random((20, 20, 3)) * 255).astype(np.uint8))
    (root / "c2" / "broken.png").write_bytes(b"not a png")
    first = load_folder(root, background=background)
    calls = []
    real = decode._decode
    monkeypatch.setattr(decode, "_decode", lambda path, *a: calls.append(os.path.basename(path)) or real(path, *a))
    save(root / "c0" / "g0.png", (RNG.random((20, 20)) * 255).astype(np.uint8))     # changed
    save(root / "c2" / "new.png", (RNG.random((20, 20)) * 255).astype(np.uint8))    # added
    (root / "c1" / "g1.png").unlink()                                                # removed
    again = load_folder(root, background=background)
    assert sorted(calls) == ["g0.png", "new.png"] and not again.from_cache
    fresh = load_folder(root, background=background, cache=False)
    assert again.paths == fresh.paths and again.labels.tolist() == fresh.labels.tolist()
    np.testing.assert_array_equal(again.images, fresh.images)
    assert [s.path for s in again.skipped] == ["c2/broken.png"] and again.report == fresh.report
    assert first.num_images == 35 and again.num_images == 35


@pytest.mark.parametrize("background", ["auto", "alpha"])
def test_a_file_edited_in_place_is_decoded_alone_and_its_row_updated(tmp_path, monkeypatch, background):
    """The same files in the same places: the old cache's float32 rows are the answer once the edited
    file's row is written into them; then an edit that changes the layout (gray -> RGB) goes the long way."""
    from latentlab.data import decode, parallel

    root = tmp_path / "d"
    for i in range(40):
        save(root / f"c{i % 2}" / f"g{i:02d}.png", (RNG.random((12, 12)) * 255).astype(np.uint8))
    save(root / "c1" / "art.png", line_art((12, 12), seed=3))
    first = load_folder(root, background=background)
    calls = []
    real = decode._decode
    monkeypatch.setattr(decode, "_decode", lambda path, *a: calls.append(os.path.basename(path)) or real(path, *a))
    converted = []
    to_float = parallel._to_float
    monkeypatch.setattr(parallel, "_to_float", lambda a, *k: converted.append(len(a)) or to_float(a, *k))
    edited = (RNG.random((12, 12)) * 255).astype(np.uint8)
    save(root / "c1" / "g05.png", edited)
    again = load_folder(root, background=background)
    assert calls == ["g05.png"] and not again.from_cache
    assert converted == [41, 1]   # the old cache as it is read, then the edited row alone
    fresh = load_folder(root, background=background, cache=False)
    assert again.paths == fresh.paths == first.paths and again.report == fresh.report
    np.testing.assert_array_equal(again.images, fresh.images)
    row = again.paths.index("c1/g05.png")
    np.testing.assert_array_equal(again.images[row, ..., 0], edited.astype(np.float32) * np.float32(1 / 255))
    assert load_folder(root, background=background).from_cache      # the rewritten cache is whole
    save(root / "c0" / "g00.png", (RNG.random((12, 12, 3)) * 255).astype(np.uint8))   # now in colour
    colour = load_folder(root, background=background)
    fresh = load_folder(root, background=background, cache=False)
    assert colour.images.shape[-1] == fresh.images.shape[-1] >= 3
    np.testing.assert_array_equal(colour.images, fresh.images)
