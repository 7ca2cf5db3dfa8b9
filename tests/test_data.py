"""latentlab.data: folder scanning, validation of odd and broken files, sizes, colour, cache, splits."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from _wait import WAIT_S
from PIL import Image

from latentlab import data as ld
from latentlab.data.cache import wait_for_cache_writes
from latentlab.data import decode as ld_decode
from latentlab.data import parallel as ld_parallel
from latentlab.data import scan as ld_scan
from latentlab.data import (IMAGE_EXTENSIONS, MAX_IMAGE_SIZE, Dataset, DatasetError, SkippedFile, load_folder,
                            make_tf_dataset, sample_dataset_path, scan_folder, split_indices)

RNG = np.random.default_rng(0)
GRAY = (RNG.random((16, 16)) * 255).astype(np.uint8)
RGB = (RNG.random((16, 16, 3)) * 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test caches into its own folder, never ~/.cache."""
    d = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(d))
    yield d
    wait_for_cache_writes()   # a cache file is written on a thread that may outlive load_folder


def save(path: Path, img, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    img.save(path, format=fmt, **kw)
    return path


def encoded(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(img) if isinstance(img, np.ndarray) else img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR (CRC fixed up) claims width×height."""
    data = bytearray(encoded(np.zeros((4, 4), np.uint8), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def digits_folder(root: Path, classes=(0, 1, 2), per_class: int = 5) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    for label in classes:
        for i in np.flatnonzero(d.target == label)[:per_class]:
            save(root / f"digit_{label}" / f"{i}.png", (d.images[i] * (255 / 16)).astype(np.uint8))
    return root


def reasons(ds: Dataset) -> dict[str, str]:
    return {s.path: s.reason for s in ds.skipped}


# -- structure ------------------------------------------------------------------------------------
def test_class_folders_give_labels_and_names(tmp_path):
    root = digits_folder(tmp_path / "digits")
    ds = load_folder(root)
    assert ds.class_names == ["digit_0", "digit_1", "digit_2"]
    assert ds.labeled and ds.num_images == 15
    assert ds.class_counts == {"digit_0": 5, "digit_1": 5, "digit_2": 5}
    assert ds.images.dtype == np.float32 and ds.images.shape == (15, 8, 8, 1)
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0 and ds.images.max() > 0.9
    assert ds.labels.dtype == np.int32
    for path, label in zip(ds.paths, ds.labels):
        assert path.split("/")[0] == ds.class_names[label]
    assert ds.root == str(root.resolve()) and ds.color == "gray" and ds.image_shape == (8, 8, 1)
    paths, names = scan_folder(root)
    assert paths == ds.paths and names == ds.class_names


def test_flat_folder_is_unlabeled(tmp_path):
    for i in range(4):
        save(tmp_path / f"{i}.png", np.roll(GRAY, i, 0))
    ds = load_folder(tmp_path)
    assert ds.class_names == [] and not ds.labeled
    assert list(ds.labels) == [-1] * 4 and ds.class_counts == {}
    assert ds.paths == ["0.png", "1.png", "2.png", "3.png"]


def test_nested_class_subfolders_and_root_images_outside_classes(tmp_path):
    save(tmp_path / "cats" / "a.png", GRAY)
    save(tmp_path / "cats" / "deep" / "er" / "b.png", np.roll(GRAY, 1, 1))   # distinct: identical files count once
    save(tmp_path / "dogs" / "c.png", np.roll(GRAY, 2, 1))
    (tmp_path / "empty").mkdir()
    save(tmp_path / "stray.png", GRAY)
    ds = load_folder(tmp_path)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.paths == ["cats/a.png", "cats/deep/er/b.png", "dogs/c.png"]
    assert list(ds.labels) == [0, 0, 1]
    assert "outside any class folder" in reasons(ds)["stray.png"]


def test_extension_case_and_hidden_and_other_files(tmp_path):
    save(tmp_path / "a.PNG", GRAY, "PNG")
    save(tmp_path / "b.JpEg", RGB, "JPEG")
    save(tmp_path / "c.Tif", GRAY, "TIFF")
    save(tmp_path / "d.bmp", GRAY, "BMP")
    save(tmp_path / ".hidden.png", GRAY)
    save(tmp_path / ".git" / "x.png", GRAY)          # hidden folder: not a class, not scanned
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("no extension")
    ds = load_folder(tmp_path)
    assert ds.paths == ["a.PNG", "b.JpEg", "c.Tif", "d.bmp"]
    assert ds.skipped == [] and ds.class_names == []
    assert {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"} == set(IMAGE_EXTENSIONS)


def test_wrong_extension_loads_by_content(tmp_path):
    (tmp_path / "really-a-png.jpg").write_bytes(encoded(GRAY, "PNG"))
    save(tmp_path / "ok.png", np.roll(GRAY, 1, 1))
    ds = load_folder(tmp_path)
    assert ds.num_images == 2 and ds.skipped == []


# -- broken files ---------------------------------------------------------------------------------
def test_every_kind_of_bad_file_is_skipped_with_a_reason(tmp_path):
    root = tmp_path / "d"
    for i in range(3):
        save(root / f"good{i}.png", np.roll(GRAY, i, 1))
    good_png = encoded(RGB, "PNG")
    bad = {
        "empty.png": b"",
        "truncated.png": good_png[: len(good_png) // 2],
        "random.png": RNG.bytes(3000),
        "random.jpg": RNG.bytes(3000),
        "text.gif": b"GIF89a but really just text\n" * 10,
        "header-only.png": good_png[:33],
        "bomb.png": png_claiming(60000, 60000),
        "bigbomb.png": png_claiming(7000, 7000),       # 49 MP: under Pillow's limit, over ours
        "zero.png": png_claiming(0, 0),
        "html.jpeg": b"<html><body>404 not found</body></html>",
        "truncated-tiff.tif": encoded(GRAY, "TIFF")[:100],
    }
    for name, blob in bad.items():
        (root / name).write_bytes(blob)
    os.symlink("missing.png", root / "dangling.png")
    os.symlink("selfloop.png", root / "selfloop.png")
    os.mkfifo(root / "fifo.png")
    ds = load_folder(root)
    assert ds.paths == ["good0.png", "good1.png", "good2.png"]
    r = reasons(ds)
    assert set(r) >= set(bad) | {"dangling.png", "selfloop.png", "fifo.png"}, r
    for reason in r.values():
        assert reason and "\n" not in reason
    assert "empty" in r["empty.png"]
    assert "truncated" in r["truncated.png"]
    assert "not an image" in r["random.png"] and "not an image" in r["html.jpeg"]
    assert "too large" in r["bomb.png"] and "bomb" in r["bomb.png"]
    assert "too large" in r["bigbomb.png"] and "7000x7000" in r["bigbomb.png"]
    assert "0x0" in r["zero.png"] or "not" in r["zero.png"]
    assert r["dangling.png"] == "broken symbolic link"
    assert r["fifo.png"] == "not a regular file"


def test_truncated_jpeg_is_skipped(tmp_path):
    big = (RNG.random((64, 64, 3)) * 255).astype(np.uint8)
    blob = encoded(big, "JPEG", quality=95)
    (tmp_path / "cut.jpg").write_bytes(blob[: len(blob) // 2])
    save(tmp_path / "ok.jpg", big, "JPEG")
    ds = load_folder(tmp_path)
    assert ds.paths == ["ok.jpg"]
    assert "truncated" in reasons(ds)["cut.jpg"]


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    save(tmp_path / "ok.png", GRAY)
    save(tmp_path / "secret.png", GRAY)
    real_read = ld_decode._read_file

    def read(path, size):
        if path.endswith("secret.png"):
            raise PermissionError(13, "Permission denied", path)
        return real_read(path, size)

    monkeypatch.setattr(ld_decode, "_read_file", read)
    ds = load_folder(tmp_path, cache=False)
    assert ds.paths == ["ok.png"]
    assert "permission denied" in reasons(ds)["secret.png"]


def test_files_are_read_whole_whatever_size_the_scan_saw(tmp_path, monkeypatch):
    blob = RNG.bytes(200_000)
    (tmp_path / "f").write_bytes(blob)
    for hint in (0, 10, 65_536, 199_999, 200_000, 10**6):   # grew, shrank or unchanged since the scan
        assert ld_decode._read_file(str(tmp_path / "f"), hint) == blob
    monkeypatch.setattr(ld_decode, "MAX_FILE_BYTES", 100_000)
    assert 100_000 < len(ld_decode._read_file(str(tmp_path / "f"), 10)) < 200_000   # stops just past the limit
    grown = save(tmp_path / "grown.png", (RNG.random((200, 200, 3)) * 255).astype(np.uint8))
    assert grown.stat().st_size > 100_000
    with pytest.raises(ld_decode._Skip, match="file too large"):   # 10 bytes when scanned, over the limit now
        ld_decode._decode(str(grown), 10, None, "auto")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads mode-000 files")
def test_mode_000_file_is_skipped(tmp_path):
    save(tmp_path / "ok.png", GRAY)
    p = save(tmp_path / "secret.png", GRAY)
    p.chmod(0)
    try:
        ds = load_folder(tmp_path, cache=False)
    finally:
        p.chmod(0o644)
    assert "permission denied" in reasons(ds)["secret.png"]


def test_symlink_loops_end_and_linked_folders_load(tmp_path):
    save(tmp_path / "data" / "a" / "x.png", GRAY)
    os.symlink("..", tmp_path / "data" / "a" / "up", target_is_directory=True)      # cycle
    os.symlink(tmp_path / "data" / "a", tmp_path / "data" / "a" / "self", target_is_directory=True)
    save(tmp_path / "elsewhere" / "y.png", np.roll(GRAY, 1, 1))
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "b", target_is_directory=True)
    ds = load_folder(tmp_path / "data")
    assert ds.class_names == ["a", "b"] and ds.paths == ["a/x.png", "b/y.png"]


def test_folder_of_only_bad_files_is_one_clear_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "all 2 images" in msg and str(tmp_path) in msg and "a.png" in msg and "empty" in msg


@pytest.mark.parametrize("setup, needle", [
    (lambda p: p / "nope", "not found"),
    (lambda p: save(p / "file.png", GRAY), "is a file, not a folder"),
    (lambda p: p, "no images found"),
])
def test_bad_roots_are_one_clear_error(tmp_path, setup, needle):
    (tmp_path / "notes.txt").write_text("hello")
    root = setup(tmp_path)
    with pytest.raises(DatasetError) as e:
        load_folder(root)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)
    if needle != "no images found":
        with pytest.raises(DatasetError):
            scan_folder(root)


def test_bad_arguments(tmp_path):
    save(tmp_path / "a.png", GRAY)
    for size in (4, 129, (8, 200), (8,), "32", 3.5, True):
        with pytest.raises(DatasetError, match="image size"):
            load_folder(tmp_path, image_size=size)
    with pytest.raises(DatasetError, match="color"):
        load_folder(tmp_path, color="sepia")


# -- sizes ----------------------------------------------------------------------------------------
def test_mixed_sizes_use_the_most_common_one(tmp_path):
    for i in range(3):
        save(tmp_path / f"a{i}.png", np.full((20, 12), 200 + i, np.uint8))
    save(tmp_path / "b.png", np.full((10, 10), 100, np.uint8))
    save(tmp_path / "c.png", np.full((40, 40), 50, np.uint8))
    ds = load_folder(tmp_path)
    assert ds.image_shape == (20, 12, 1) and ds.num_images == 5
    np.testing.assert_allclose(ds.images[ds.paths.index("b.png")], 100 / 255, atol=1e-6)


def test_big_images_are_capped_keeping_aspect(tmp_path):
    for i in range(2):
        save(tmp_path / f"{i}.png", (RNG.random((100, 200)) * 255).astype(np.uint8))
    save(tmp_path / "tiny.png", np.zeros((4, 4), np.uint8))
    ds = load_folder(tmp_path)
    assert ds.image_shape == (32, 64, 1)
    assert max(ds.image_shape[:2]) == MAX_IMAGE_SIZE
    save(tmp_path / "more" / "x.png", GRAY)  # a class folder now: the root images are skipped
    for i in range(2):
        (tmp_path / f"{i}.png").unlink()
    (tmp_path / "tiny.png").rename(tmp_path / "more" / "tiny.png")
    (tmp_path / "more" / "x.png").unlink()
    assert load_folder(tmp_path).image_shape == (8, 8, 1)   # 4x4 is raised to the 8-pixel minimum


def test_forced_size(tmp_path):
    save(tmp_path / "a.png", GRAY)
    save(tmp_path / "b.png", np.zeros((30, 50), np.uint8))
    assert load_folder(tmp_path, image_size=24).image_shape == (24, 24, 1)
    assert load_folder(tmp_path, image_size=(8, 40)).image_shape == (8, 40, 1)
    assert load_folder(tmp_path, image_size=[12, 16]).image_shape == (12, 16, 1)


# -- colour and modes -----------------------------------------------------------------------------
def test_auto_color_and_forcing(tmp_path):
    gray_dir, mixed_dir = tmp_path / "g", tmp_path / "m"
    save(gray_dir / "a.png", GRAY)
    save(gray_dir / "b.png", np.dstack([GRAY] * 3))        # RGB file with equal channels counts as gray
    save(mixed_dir / "a.png", GRAY)
    save(mixed_dir / "b.png", RGB)
    assert load_folder(gray_dir).color == "gray"
    mixed = load_folder(mixed_dir)
    assert mixed.color == "rgb" and mixed.image_shape == (16, 16, 3)
    a = mixed.images[mixed.paths.index("a.png")]
    np.testing.assert_array_equal(a[..., 0], a[..., 1])      # gray image repeated into 3 channels
    np.testing.assert_allclose(a[..., 0], GRAY / 255, atol=1e-6)
    forced_gray = load_folder(mixed_dir, color="gray")
    assert forced_gray.image_shape == (16, 16, 1)
    expect = np.asarray(Image.fromarray(RGB).convert("L")) / 255
    np.testing.assert_allclose(forced_gray.images[forced_gray.paths.index("b.png"), ..., 0], expect, atol=1e-6)
    assert load_folder(gray_dir, color="rgb").image_shape == (16, 16, 3)
    assert load_folder(gray_dir, color="RGB").color == "rgb"


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]] * 8, dtype=np.uint16)
    values = np.tile(values, (1, 2))
    save(tmp_path / "deep.png", values)
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    ds = load_folder(tmp_path)
    row = ds.images[0, 0, :4, 0]
    np.testing.assert_allclose(row, [0, 257 / 65535, 32768 / 65535, 1.0], atol=1e-6)
    assert ds.color == "gray"
    again = load_folder(tmp_path)                       # float images survive the cache exactly
    assert again.from_cache
    np.testing.assert_array_equal(again.images, ds.images)


def test_other_modes_load(tmp_path):
    rgba = np.dstack([RGB, np.where(np.arange(16) < 8, 0, 255).astype(np.uint8)[None, :].repeat(16, 0)])
    save(tmp_path / "rgba.png", rgba)
    save(tmp_path / "palette.png", Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE))
    save(tmp_path / "la.png", Image.fromarray(np.dstack([GRAY, np.full_like(GRAY, 255)]), mode="LA"))
    save(tmp_path / "cmyk.jpg", Image.fromarray(RGB).convert("CMYK"), "JPEG")
    save(tmp_path / "bilevel.png", Image.fromarray(GRAY > 128))
    frames = [Image.fromarray(np.full((16, 16), v, np.uint8)).convert("P") for v in (30, 200, 90)]
    save(tmp_path / "anim.gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    save(tmp_path / "float.tiff", Image.fromarray(GRAY.astype(np.float32) / 255, mode="F"), "TIFF")
    ds = load_folder(tmp_path, background="black")
    assert ds.color == "rgb"
    assert set(ds.paths) == {"rgba.png", "palette.png", "la.png", "cmyk.jpg", "bilevel.png", "anim.gif"}
    assert "mode F" in reasons(ds)["float.tiff"]
    img = lambda name: ds.images[ds.paths.index(name)]  # noqa: E731
    assert np.all(img("rgba.png")[:, :8] == 0)                 # transparent -> black
    np.testing.assert_allclose(img("rgba.png")[:, 8:], RGB[:, 8:] / 255, atol=1e-6)
    np.testing.assert_allclose(img("la.png")[..., 0], GRAY / 255, atol=1e-6)
    assert set(np.unique(img("bilevel.png"))) <= {0.0, 1.0}
    np.testing.assert_allclose(img("anim.gif"), 30 / 255, atol=2 / 255)   # first frame
    assert np.abs(img("cmyk.jpg") - RGB / 255).mean() < 0.1


def test_gray_palette_and_la_are_gray(tmp_path):
    save(tmp_path / "p.png", Image.fromarray(GRAY).convert("P"))
    save(tmp_path / "la.png", Image.fromarray(np.dstack([GRAY, GRAY]), mode="LA"))
    save(tmp_path / "one.png", Image.fromarray(GRAY > 100))
    ds = load_folder(tmp_path)
    assert ds.color == "gray" and ds.num_images == 3


# -- cache ----------------------------------------------------------------------------------------
def test_cache_hit_invalidation_and_corruption(tmp_path, cache_dir):
    root = digits_folder(tmp_path / "digits", per_class=4)
    first = load_folder(root)
    assert not first.from_cache
    wait_for_cache_writes()
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1
    second = load_folder(root)
    assert second.from_cache
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.images.dtype == np.float32
    assert (second.paths, second.class_names, second.skipped) == (first.paths, first.class_names, first.skipped)
    # other settings: another cache entry
    assert not load_folder(root, image_size=16).from_cache
    assert load_folder(root, image_size=16).from_cache
    # touching a file invalidates
    victim = root / first.paths[0]
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not load_folder(root).from_cache
    assert load_folder(root).from_cache
    # a new file invalidates
    save(root / "digit_0" / "new.png", np.zeros((8, 8), np.uint8))
    third = load_folder(root)
    assert not third.from_cache and third.num_images == first.num_images + 1
    # a damaged cache file is rebuilt
    wait_for_cache_writes()
    for f in cache_dir.glob("*.npz"):
        f.write_bytes(f.read_bytes()[:100])
    rebuilt = load_folder(root)
    assert not rebuilt.from_cache and rebuilt.num_images == third.num_images
    assert load_folder(root).from_cache
    # old entries for the same folder and settings are cleaned up; no temporary files are left
    wait_for_cache_writes()
    names = [p.name for p in cache_dir.iterdir()]
    assert len(names) == 2 and not any(n.startswith(".tmp") for n in names), names
    # cache=False neither reads nor writes
    assert not load_folder(root, cache=False).from_cache


def test_cache_keeps_skipped_files(tmp_path):
    save(tmp_path / "a.png", GRAY)
    (tmp_path / "b.png").write_bytes(b"junk")
    first = load_folder(tmp_path)
    second = load_folder(tmp_path)
    assert second.from_cache and second.skipped == first.skipped == [SkippedFile("b.png", first.skipped[0].reason)]


def test_cache_failures_never_break_loading(tmp_path):
    save(tmp_path / "d" / "a.png", GRAY)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    ds = load_folder(tmp_path / "d", cache_dir=str(blocker / "cache"))
    assert ds.num_images == 1 and not ds.from_cache
    explicit = tmp_path / "explicit"
    load_folder(tmp_path / "d", cache_dir=str(explicit))
    assert load_folder(tmp_path / "d", cache_dir=str(explicit)).from_cache


def test_cache_stores_8_bit_sources_as_uint8(tmp_path, cache_dir):
    save(tmp_path / "a.png", GRAY)
    load_folder(tmp_path)
    wait_for_cache_writes()
    (f,) = cache_dir.glob("*.npz")
    with np.load(f) as z:
        assert z["images"].dtype == np.uint8


# -- progress and cancel --------------------------------------------------------------------------
def test_progress_is_reported_and_cancel_stops(tmp_path):
    for i in range(120):
        save(tmp_path / f"{i:03d}.png", np.roll(GRAY, i, 0))
    calls = []
    load_folder(tmp_path, cache=False, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (120, 120) and all(t == 120 for _, t in calls)
    assert 2 <= len(calls) <= 52 and [d for d, _ in calls] == sorted(d for d, _ in calls)
    with pytest.raises(DatasetError, match="cancelled"):
        load_folder(tmp_path, cache=False, should_cancel=lambda: True)
    polls = []
    with pytest.raises(DatasetError, match="cancelled"):
        load_folder(tmp_path, cache=False, should_cancel=lambda: polls.append(1) or len(polls) > 3)


# -- summary --------------------------------------------------------------------------------------
def test_summary_lists_everything(tmp_path):
    root = digits_folder(tmp_path / "digits", per_class=2)
    (root / "digit_1" / "broken.png").write_bytes(b"")
    ds = load_folder(root)
    text = ds.summary()
    assert "Images used: 6" in text and "Skipped: 1" in text
    assert "digit_1/broken.png: empty file" in text
    assert "digit_0" in text and "8x8" in text and "grayscale" in text and "Load time" in text
    assert "(from cache)" in load_folder(root).summary()


def test_odd_file_names_are_printable(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(name, "wb") as f:
        f.write(encoded(GRAY, "PNG"))
    with open(os.fsencode(tmp_path) + b"/bad\nline.png", "wb") as f:
        f.write(b"")
    ds = load_folder(tmp_path)
    assert ds.num_images == 1
    text = ds.summary()
    text.encode("utf-8")   # no lone surrogates
    assert "bad\\nline.png" in text
    assert load_folder(tmp_path).from_cache


def test_dataset_from_arrays():
    x = RNG.random((5, 8, 8, 1)).astype(np.float32)
    ds = Dataset.from_arrays(x, np.array([0, 2, 2, 1, 0], dtype=np.int64))
    assert ds.images is x   # float32 is used as is, not copied
    assert ds.labels.dtype == np.int32 and ds.labels.tolist() == [0, 2, 2, 1, 0]
    assert ds.class_names == ["0", "1", "2"] and ds.class_counts == {"0": 2, "1": 1, "2": 2}
    assert ds.paths == ["0", "1", "2", "3", "4"] and ds.root == "(arrays)"
    assert (ds.skipped, ds.load_seconds, ds.from_cache) == ([], 0.0, False)
    assert ds.num_images == 5 and ds.image_shape == (8, 8, 1) and ds.labeled and "Images used: 5" in ds.summary()

    flat = Dataset.from_arrays(RGB[None].repeat(3, axis=0), root="rgb")   # uint8 (N, H, W, 3), unlabeled
    assert flat.images.dtype == np.float32 and flat.image_shape == (16, 16, 3) and flat.color == "rgb"
    np.testing.assert_array_equal(flat.images[1], RGB.astype(np.float32) * np.float32(1.0 / 255.0))
    assert flat.labels.tolist() == [-1, -1, -1] and flat.class_names == [] and not flat.labeled
    assert flat.root == "rgb" and flat.class_counts == {}

    gray = Dataset.from_arrays(GRAY[None], [1], class_names=["a", "b"], paths=["g.png"])   # (N, H, W): a channel
    assert gray.image_shape == (16, 16, 1) and gray.class_names == ["a", "b"] and gray.paths == ["g.png"]
    assert gray.class_counts == {"a": 0, "b": 1}

    for bad, needle in [((RNG.random((2, 8, 8, 5)),), "C = 1, 3"), ((x * 2,), r"\[0, 1\]"),
                        ((x, [0, 1]), "one per image"), ((x, [0] * 5, ["a"], ["p"]), "one per image"),
                        ((x, [-2] * 5), "-1"), ((x, [3] * 5, ["a"]), "no class name")]:
        with pytest.raises(DatasetError, match=needle):
            Dataset.from_arrays(*bad)


# -- split and tf.data ----------------------------------------------------------------------------
def test_split_is_deterministic_and_disjoint():
    train, val = split_indices(100, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert not set(train) & set(val) and set(train) | set(val) == set(range(100))
    t2, v2 = split_indices(100, 0.2, seed=3)
    np.testing.assert_array_equal(train, t2)
    np.testing.assert_array_equal(val, v2)
    assert not np.array_equal(split_indices(100, 0.2, seed=4)[1], val)
    assert [len(x) for x in split_indices(2, 0.01)] == [1, 1]
    assert [len(x) for x in split_indices(5, 0.99)] == [1, 4]
    assert [len(x) for x in split_indices(1, 0.5)] == [1, 0]
    assert [len(x) for x in split_indices(10, 0.0)] == [10, 0]
    with pytest.raises(ValueError):
        split_indices(10, 1.0)


def test_make_tf_dataset_batches():
    images = np.random.default_rng(0).random((10, 8, 8, 1)).astype(np.float32)
    ds = make_tf_dataset(images, 4, shuffle=True, seed=1)
    batches = [b.numpy() for b in ds]
    assert [b.shape for b in batches] == [(4, 8, 8, 1), (4, 8, 8, 1), (2, 8, 8, 1)]
    assert batches[0].dtype == np.float32
    epoch1 = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(epoch1.ravel()), np.sort(images.ravel()))
    epoch2 = np.concatenate([b.numpy() for b in ds])
    assert not np.array_equal(epoch1, epoch2)          # reshuffled every iteration
    plain = np.concatenate([b.numpy() for b in make_tf_dataset(images, 3, shuffle=False)])
    np.testing.assert_array_equal(plain, images)


def test_a_repeated_dataset_keeps_epochs_apart_and_reshuffles_each_pass():
    images = np.random.default_rng(0).random((10, 8, 8, 1)).astype(np.float32)
    it = iter(make_tf_dataset(images, 4, shuffle=True, seed=1, repeat=True))
    passes = []
    for _ in range(3):   # 3 batches per pass: 4, 4 and the pass's own partial batch of 2
        batches = [next(it).numpy() for _ in range(3)]
        assert [b.shape[0] for b in batches] == [4, 4, 2]
        passes.append(np.concatenate(batches))
        np.testing.assert_array_equal(np.sort(passes[-1].ravel()), np.sort(images.ravel()))   # each image once
    assert not np.array_equal(passes[0], passes[1]) and not np.array_equal(passes[1], passes[2])
    again = iter(make_tf_dataset(images, 4, shuffle=True, seed=1, repeat=True))
    np.testing.assert_array_equal(np.concatenate([next(again).numpy() for _ in range(3)]), passes[0])   # seeded


# -- the bundled sample ---------------------------------------------------------------------------
def test_sample_dataset(tmp_path):
    path = sample_dataset_path()
    assert path.is_dir()
    paths, classes = scan_folder(path)
    assert classes == sorted(["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"])
    assert len(paths) == 3000
    assert (path / "LICENSE.txt").is_file() and "MIT" in (path / "LICENSE.txt").read_text()
    ds = load_folder(path)
    assert ds.num_images == 3000 and ds.image_shape == (28, 28, 1) and ds.skipped == []
    assert set(ds.class_counts.values()) == {300}


def test_float_conversion_in_slices_matches_one_pass_bit_for_bit():
    from latentlab.data.parallel import _to_float

    rng = np.random.default_rng(0)
    for shape in [(9001, 28, 28, 1), (7, 16, 16, 3)]:   # the sliced path (odd length) and the small one
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        out = _to_float(a)
        assert out.dtype == np.float32 and out.shape == a.shape
        assert np.array_equal(out, a.astype(np.float32) * np.float32(1.0 / 255.0))


# -- decoding in worker processes -----------------------------------------------------------------
def mixed_folder(root: Path, per_kind: int = 6) -> Path:
    """Class folders of images of several modes and formats, plus bad files of several kinds."""
    for i in range(per_kind):
        save(root / "a" / f"gray{i}.png", np.roll(GRAY, i, 0))
        save(root / "a" / f"rgb{i}.jpg", np.roll(RGB, i, 1), quality=90)
        save(root / "b" / f"pal{i}.gif", Image.fromarray(np.roll(RGB, i, 0)).convert("P"))
        save(root / "b" / f"wide{i}.png", np.zeros((16, 24, 3), np.uint8) + i)
        save(root / "c" / f"la{i}.png", Image.fromarray(np.roll(GRAY, i, 1)).convert("LA"))
    good_png = encoded(RGB, "PNG")
    (root / "a" / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (root / "b" / "random.jpg").write_bytes(RNG.bytes(2000))
    (root / "c" / "empty.png").write_bytes(b"")
    (root / "c" / "bomb.png").write_bytes(png_claiming(60000, 60000))
    return root


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.images.dtype == b.images.dtype == np.float32
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.paths, a.class_names, a.skipped) == (b.paths, b.class_names, b.skipped)


def test_worker_processes_give_the_same_dataset_as_one_thread(tmp_path, monkeypatch):
    import multiprocessing

    root = mixed_folder(tmp_path / "d")
    monkeypatch.setattr(ld_parallel, "_chunks", lambda files, n, **kw: _real_chunks(files, 5))   # many chunks
    unpack = ld_parallel._unpack
    arrived = []
    monkeypatch.setattr(ld_parallel, "_unpack", lambda packed: arrived.append(packed) or unpack(packed))
    calls = []
    in_processes = load_folder(root, cache=False, processes=True, progress=lambda d, t: calls.append((d, t)))
    assert len(arrived) == 7   # every chunk came back from a worker process
    in_thread = load_folder(root, cache=False, processes=False)
    assert_same_dataset(in_processes, in_thread)
    assert in_processes.num_images == 30 and len(in_processes.skipped) == 4
    assert {s.path for s in in_processes.skipped} == {"a/truncated.png", "b/random.jpg", "c/empty.png", "c/bomb.png"}
    assert calls[0] == (0, 34) and calls[-1] == (34, 34) and len(calls) >= 4
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert multiprocessing.active_children() == []


_real_chunks = ld_parallel._chunks


def test_chunks_split_by_count_and_by_bytes():
    files = [("f", size) for size in (10, 10, 10, 10, 10)]
    assert ld_parallel._chunks(files, 2) == [(0, 2), (2, 4), (4, 5)]
    assert ld_parallel._chunks(files, 10, max_bytes=25) == [(0, 2), (2, 4), (4, 5)]
    assert ld_parallel._chunks([("big", 100), ("f", 1)], 10, max_bytes=25) == [(0, 1), (1, 2)]   # never empty
    assert ld_parallel._chunks([], 3) == []


def test_cancel_stops_worker_processes_and_leaves_none(tmp_path, monkeypatch):
    import multiprocessing

    root = mixed_folder(tmp_path / "d", per_kind=10)
    monkeypatch.setattr(ld_parallel, "_chunks", lambda files, n, **kw: _real_chunks(files, 3))
    progress = []
    with pytest.raises(DatasetError, match="cancelled"):   # cancel as soon as the first chunk is in
        load_folder(root, cache=False, processes=True, progress=lambda d, t: progress.append(d),
                    should_cancel=lambda: bool(progress) and progress[-1] > 0)
    assert progress[-1] == 3   # stopped at the next poll, not after the last of 18 chunks
    assert multiprocessing.active_children() == []


def test_a_worker_process_that_dies_loses_nothing(tmp_path, monkeypatch, caplog):
    import _crash_worker

    root = mixed_folder(tmp_path / "d")
    expected = load_folder(root, cache=False, processes=False)
    monkeypatch.setattr(ld_parallel, "_decode_chunk_packed", _crash_worker.die)
    with caplog.at_level("INFO", logger="latentlab.data"):
        ds = load_folder(root, cache=False, processes=True)
    assert_same_dataset(ds, expected)
    assert "decoding processes failed" in caplog.text


def test_worker_processes_that_cannot_start_fall_back_to_this_process(tmp_path, monkeypatch, caplog):
    import concurrent.futures

    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    root = mixed_folder(tmp_path / "d", per_kind=2)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    with caplog.at_level("INFO", logger="latentlab.data"):
        ds = load_folder(root, cache=False, processes=True)
    assert ds.num_images == 10 and "cannot start image decoding processes" in caplog.text


def test_large_folders_use_worker_processes_by_default(tmp_path, monkeypatch):
    seen = []
    real = ld_parallel._run_chunks_in_processes
    monkeypatch.setattr(ld_parallel, "_run_chunks_in_processes", lambda *a: seen.append(len(a[1])) or real(*a))
    root = mixed_folder(tmp_path / "d", per_kind=2)
    load_folder(root, cache=False)
    assert seen == []   # 14 files: one thread, no processes to start
    monkeypatch.setattr(ld_parallel, "PROCESS_MIN_FILES", 14)
    monkeypatch.setattr(ld_parallel, "_usable_cpus", lambda: 2)
    load_folder(root, cache=False)
    assert len(seen) == 1
    monkeypatch.setattr(ld_parallel, "_usable_cpus", lambda: 1)
    load_folder(root, cache=False)
    assert len(seen) == 1   # one CPU: processes would only add their start-up


def test_worker_processes_start_while_scanning_a_cold_folder_and_never_outlive_the_load(tmp_path, monkeypatch,
                                                                                       cache_dir):
    import multiprocessing

    root = mixed_folder(tmp_path / "d", per_kind=2)   # class folders of 5, 5 and 4 files
    monkeypatch.setattr(ld_parallel, "PROCESS_MIN_FILES", 4)
    monkeypatch.setattr(ld_parallel, "_usable_cpus", lambda: 2)
    walked, started = [], []
    real_walk, real_start = ld_scan._walk_images, ld_parallel._start_process_pool
    monkeypatch.setattr(ld_scan, "_walk_images", lambda *a: walked.append(a[1]) or real_walk(*a))
    monkeypatch.setattr(ld_parallel, "_start_process_pool", lambda n: started.append(len(walked)) or real_start(n))
    first = load_folder(root)                     # no cache yet: a cold load is sure
    assert started == [1]                         # started after the first class folder, not after the scan
    assert load_folder(root).from_cache and started == [1]   # a cache file exists: nothing started
    victim = root / first.paths[0]
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    walked.clear()
    again = load_folder(root)                     # the cache file is stale: only the changed file is decoded,
    assert not again.from_cache and started == [1]   # in this process (see test_data_folders: incremental cache)
    assert_same_dataset(again, first)
    polls = []
    walked.clear()
    with pytest.raises(DatasetError, match="cancelled"):
        load_folder(root, cache=False, should_cancel=lambda: polls.append(1) or len(polls) >= 2)
    assert started == [1, 1]                      # started, then the scan was cancelled
    assert multiprocessing.active_children() == []


def test_a_cache_written_by_one_process_is_used_by_the_next(tmp_path, cache_dir):
    import subprocess
    import sys

    root = mixed_folder(tmp_path / "d", per_kind=3)
    code = ("import sys; from latentlab.data import load_folder; "
            "ds = load_folder(sys.argv[1]); print(ds.from_cache, ds.num_images)")
    env = {**os.environ, "LATENTLAB_CACHE_DIR": str(cache_dir)}
    first = subprocess.run([sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True,
                           timeout=WAIT_S, cwd=Path(ld.__file__).parents[2])
    assert first.returncode == 0 and first.stdout.split() == ["False", "15"], first.stderr
    ds = load_folder(root)   # another process: the key must come out the same
    assert ds.from_cache and ds.num_images == 15


def test_a_script_without_the_main_guard_still_loads_once_and_its_workers_stop(tmp_path):
    import subprocess
    import sys

    root = mixed_folder(tmp_path / "d", per_kind=2)
    script = tmp_path / "unguarded.py"   # calls load_folder at import time: spawned workers re-run it
    script.write_text("import sys\nfrom latentlab.data import load_folder\n"
                      "ds = load_folder(sys.argv[1], cache=False, processes=True)\n"
                      "print('loaded', ds.num_images, flush=True)\n")
    r = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=WAIT_S,
                       cwd=Path(ld.__file__).parents[2],
                       env={**os.environ, "PYTHONPATH": str(Path(ld.__file__).parents[2])})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["loaded", "10"]   # only the parent got past load_folder, with every image
    assert "bootstrapping phase" in r.stderr     # the workers stopped with Python's own advice
