"""Reliability against bad input: a corpus of broken and odd image files, fuzzed files, bad options.

Every file either loads correctly or is skipped with a one-line reason; nothing crashes or hangs.
``LATENTLAB_FUZZ_EXAMPLES`` sets the number of fuzz examples (CI default 200 per strategy, 600 in all;
``scripts/reliability.py`` runs thousands).
"""

from __future__ import annotations

import faulthandler
import os
import random
import shutil
import subprocess
import sys
import re
import tempfile
import time
from pathlib import Path

import _engine
import _oddities as O
import _reliability as R
import numpy as np
import pytest
from _wait import WAIT_MS, WAIT_S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.cli import main
from latentlab.events import Finished

FUZZ_EXAMPLES = int(os.environ.get("LATENTLAB_FUZZ_EXAMPLES", "200"))
# Per file. Generous: a shared 2-core CI box can stall a 1 ms load for seconds; a real hang is caught by
# faulthandler (3x this) and ends the run with a traceback instead of stalling CI.
LOAD_TIMEOUT = float(os.environ.get("LATENTLAB_LOAD_TIMEOUT", "30"))
EXTS = [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".PNG"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))


def rel(p) -> str:
    """A path as the loader reports it: relative to the dataset root, posix, no trailing slash."""
    return os.fsdecode(p).rstrip("/")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    files = R.write_corpus(root)
    # a named pipe with an image name: opening it for reading would block for ever
    os.mkfifo(root / "bad" / "pipe.png")
    files.append(R.CorpusFile("bad/pipe.png", "skip", "named pipe (FIFO) called .png"))
    (root / "bad" / "folder.png").mkdir()
    files.append(R.CorpusFile("bad/folder.png", "skip-or-ignore", "a folder called .png"))
    return root, files


def _load_corpus(root, **kw):
    from latentlab.data import load_folder

    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails loudly instead of stalling CI
    try:
        t0 = time.perf_counter()
        ds = load_folder(root, cache=False, **kw)
        return ds, time.perf_counter() - t0
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_every_corpus_file_loads_or_is_skipped_with_a_reason(corpus):
    root, files = corpus
    ds, _ = _load_corpus(root, image_size=[16, 16])   # a hang fails through faulthandler, not a clock
    # a copy of a file used (same bytes, or a link to it) is accounted for as a duplicate: "loaded" here
    loaded = {rel(p) for p in ds.paths} | {rel(a) for a, _ in ds.report.duplicates}
    skipped = {rel(s.path): s.reason for s in ds.skipped}
    for reason in skipped.values():
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason, repr(reason)
    problems = []
    for path, f in R.corpus_paths(root, files).items():
        expect = f.expect
        if expect == "skip" and "permission" in f.why and os.geteuid() == 0:
            expect = "either"  # root reads mode-000 files; the nobody test below covers it
        is_loaded, is_skipped = path in loaded, path in skipped
        if is_loaded and is_skipped:
            problems.append(f"{f.why}: both loaded and skipped")
        elif expect == "load" and not is_loaded:
            problems.append(f"{f.why}: not loaded ({skipped.get(path, 'not even listed as skipped')})")
        elif expect == "skip" and not is_skipped:
            problems.append(f"{f.why}: not listed as skipped" + (" (it was loaded!)" if is_loaded else ""))
        elif expect == "either" and not (is_loaded or is_skipped):
            problems.append(f"{f.why}: neither loaded nor listed as skipped")
        elif expect == "skip-or-ignore" and is_loaded:
            problems.append(f"{f.why}: loaded")
        elif is_skipped and f.reason_has and f.reason_has not in skipped[path]:
            problems.append(f"{f.why}: the reason {skipped[path]!r} does not say {f.reason_has!r}")
    assert not problems, "\n".join(problems)
    # what loaded is sane: the size asked for, finite, in [0, 1]; one label per image
    assert ds.images.shape[1:3] == (16, 16) and ds.images.dtype == np.float32
    assert np.isfinite(ds.images).all() and ds.images.min() >= 0 and ds.images.max() <= 1
    assert len(ds.paths) == len(ds.images) == len(ds.labels)
    # not-images are not images: the text file and the hidden file are never loaded
    assert "good/notes.txt" not in loaded and "good/.hidden.png" not in loaded
    # the directory cycle odd/cycle -> .. was not followed into a loop: no path is loaded twice
    real = [os.path.realpath(os.path.join(root, os.fsdecode(p))) for p in ds.paths if "link" not in p]
    assert len(real) == len(set(real)), "a file was loaded twice (a symlink cycle was followed)"


def test_odd_but_valid_images_load_with_the_right_values(corpus):
    """16-bit, palette, RGBA, CMYK and the first GIF frame come out with the right pixel values."""
    from PIL import Image

    root, _ = corpus
    ds, _ = _load_corpus(root, image_size=[16, 16], color="gray")
    by_name = {Path(os.fsdecode(p)).name: img for p, img in zip(ds.paths, ds.images)}
    index = {p: i for i, p in enumerate(ds.paths)}
    for copy, kept in ds.report.duplicates:
        by_name[Path(os.fsdecode(copy)).name] = ds.images[index[kept]]
    ref = np.asarray(Image.open(root / "good" / "g0.png"), np.float32) / 255.0
    g16 = by_name["gray16.png"][..., 0]
    np.testing.assert_allclose(g16, ref, atol=2 / 255, err_msg="16-bit PNG not scaled to [0, 1]")
    for name in ("palette.png", "rgba.png", "cmyk.jpg", "animated.gif", "la.png"):
        img = by_name[name]
        assert img.shape == (16, 16, 1) and 0.02 < img.mean() < 0.98, name
    gif0 = np.asarray(Image.open(root / "odd" / "animated.gif").convert("L"), np.float32) / 255.0
    np.testing.assert_allclose(by_name["animated.gif"][..., 0], gif0, atol=2 / 255)


def test_real_world_oddities_load_with_the_right_values(corpus):
    """12- and 16-bit TIFF scaled to [0, 1] by their own depth, arithmetic JPEG, APNG's first frame, palette
    transparency on black, and EXIF orientation applied (a phone photo comes out upright)."""
    from PIL import Image

    root, _ = corpus
    ds, _ = _load_corpus(root, image_size=[16, 16], color="gray", background="black")
    img = {Path(os.fsdecode(p)).name: im[..., 0] for p, im in zip(ds.paths, ds.images)}
    index = {p: i for i, p in enumerate(ds.paths)}
    for copy, kept in ds.report.duplicates:   # identical files are used once: a copy shows its twin's pixels
        img[Path(os.fsdecode(copy)).name] = ds.images[index[kept]][..., 0]
    gray = O.pattern_gray().astype(np.float32) / 255.0
    for name in ("tiff-12bit.tif", "tiff-16bit.tif", "tiff-16bit-mm.tif", "png-gray-16bit.png", "png-adam7-gray16.png",
                 "tiff-mm.tif", "bmp-os2.bmp", "bmp-top-down.bmp", "bmp-rle8.bmp"):
        np.testing.assert_allclose(img[name], gray, atol=1.5 / 255, err_msg=name)
    np.testing.assert_allclose(img["tiff-miniswhite.tif"], 1.0 - gray, atol=1.5 / 255)
    rgb_as_gray = np.asarray(Image.fromarray(O.pattern_rgb()).convert("L"), np.float32) / 255.0
    for name in ("jpeg-arithmetic.jpg", "jpeg-arithmetic-progressive.jpg", "png-rgb-16bit.png", "tiff-rgb-16bit.tif",
                 "png-adam7-rgb.png", "bmp-v4.bmp", "bmp-v5.bmp", "apng.png", "mpo.jpg"):
        tol = 0.08 if name.endswith(".jpg") else 1.5 / 255
        assert np.abs(img[name] - rgb_as_gray).mean() < tol, name
    # transparent pixels are composited on black: darker than the same pixels opaque
    assert img["png-palette-trns.png"].mean() < img["png-palette-4bit.png"].mean() - 0.05
    # EXIF orientation 1-8 all show the same upright picture, and the TIFF Orientation tag too
    upright = img["exif-orientation-1.png"]
    for n in range(2, 9):
        np.testing.assert_array_equal(img[f"exif-orientation-{n}.png"], upright, err_msg=f"orientation {n}")
    np.testing.assert_array_equal(img["tiff-orientation-6.tif"], upright)
    assert np.abs(img["exif-orientation-6.jpg"] - upright).mean() < 0.05
    stored = np.asarray(Image.fromarray(O.stored_for_orientation(O.pattern_asymmetric(), 6)).resize((16, 16)))
    assert np.abs(img["exif-orientation-6.png"] - stored / 255.0).mean() > 0.1, "orientation 6 was not applied"


def _library_lines(text: str) -> list[str]:
    """stderr lines an image library (or Python) printed on its own."""
    return [line for line in text.splitlines() if line.strip() and (
        "Traceback" in line or "Warning" in line or "TIFF" in line or "Decode" in line or "libtiff" in line
        or "More samples" in line or "configured" in line or line.startswith(("  File", "Exception")))]


def test_info_on_the_corpus_prints_only_latentlabs_lines(corpus, tmp_path):
    """`latentlab info` as a user runs it: stderr (file descriptor 2: libtiff writes there directly) is
    empty, and every stdout line is one of the summary's."""
    root, files = corpus
    code, out, err = R.run_cli("info", root, "--no-cache", env=R.child_env(LATENTLAB_CACHE_DIR=tmp_path))
    assert code == 0, err
    assert err == "", f"stderr is not empty:\n{err}"
    lines = out.splitlines()
    summary = re.compile(r"^((Dataset|Images used|Skipped|Classes|Image size|Size chosen|Sizes|Transparency|Nearly blank|"
                         r"Flat|Duplicates|Not read|Channels|Load time): |  \S)")
    assert lines[0].startswith("Dataset: ") and all(summary.match(line) for line in lines), out
    skipped = [line for line in lines if line.startswith("  ")]
    assert len(skipped) >= sum(f.expect == "skip" for f in files) - 2   # (mode 000 and the folder.png are read/ignored)
    for name in ("WEBP compression support is not configured", "More samples per pixel than can be decoded: 9",
                 "compression 34712 is not supported", "lossless JPEG"):
        assert any(name in line for line in skipped), f"no skip reason says {name!r}"


def test_training_on_the_corpus_prints_only_latentlabs_lines(corpus, tmp_path):
    root, _ = corpus
    code, out, err = R.run_cli("train", root, "--out", tmp_path / "run", "--epochs", 1, "--image-size", 16,
                               "--batch-size", 32, env=R.child_env(LATENTLAB_CACHE_DIR=tmp_path / "cache"))
    assert code == 0, err
    lines = R.user_lines(err, strict=True)
    patterns = (r"^\d+ images of 16x16x\d, \d+ skipped \(see 'latentlab info .*'\), loaded in [\d.]+s$",
                r"^training on \S+: \d+ images \(\d+ for validation\) of 16x16x\d, epochs 1\.\.1$",
                r"^epoch 1/1: loss .* active units \d+ +[\d.]+s *$")
    assert len(lines) == 3 and all(re.match(p, line) for p, line in zip(patterns, lines)), err
    assert out.splitlines()[-1].startswith("finished 1 epoch; run saved in"), out


def test_the_app_opens_and_trains_on_the_corpus_without_a_word_from_the_libraries(corpus, window, qtbot, capfd):
    """The window loads the corpus (its skipped files listed with their reasons) and trains an epoch;
    nothing reaches file descriptor 2 on the way (capfd captures at that level)."""
    root, _ = corpus
    capfd.readouterr()
    with qtbot.waitSignal(window.dataset_panel.datasetLoaded, timeout=WAIT_MS) as blocker:
        window.open_dataset(str(root))
    ds = blocker.args[0]
    assert len(ds.skipped) > 40 and len(ds.images) + len(ds.report.duplicates) > 100
    panel = window.dataset_panel
    assert panel.skipped_label.text().startswith(f"Skipped: {len(ds.skipped)}")
    shown = [panel.skipped.item(i).text() for i in range(panel.skipped.count())]
    assert any("WEBP compression support is not configured" in t for t in shown), shown[:5]
    assert all("\n" not in t and "Traceback" not in t for t in shown)
    window.training_panel.epochs_spin.setValue(1)
    qtbot.waitUntil(lambda: window.training_panel.train_button.isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(window.trainingFinished, timeout=WAIT_MS) as done:
        assert window.start_training()
    assert isinstance(done.args[0], Finished), done.args[0]
    qtbot.waitUntil(window.is_idle, timeout=WAIT_MS)
    out, err = capfd.readouterr()
    assert not _library_lines(err), err


def _unsupported_file(name: str) -> bytes:
    return next(o.data for o in O.oddities()["unsupported"] if o.name == name)


def test_each_decoding_thread_gets_only_its_own_library_messages(tmp_path):
    """libtiff's handler is process-wide; what it says goes to the thread that is decoding. Two threads
    decoding two differently broken TIFFs at once each get their own file's message in its reason."""
    from concurrent.futures import ThreadPoolExecutor

    from latentlab.data.decode import _decode_chunk

    for name in ("tiff-webp.tif", "tiff-lzma-garbage.tif"):
        (tmp_path / name).write_bytes(_unsupported_file(name))

    def many(name):
        return _decode_chunk(str(tmp_path), [(name, (tmp_path / name).stat().st_size)] * 200, (16, 16), "auto")

    with ThreadPoolExecutor(2) as pool:
        webp, lzma = pool.map(many, ["tiff-webp.tif", "tiff-lzma-garbage.tif"])
    assert all("WEBP compression" in r and "LZMA" not in r for r in webp), set(webp)
    assert all("LZMADecode" in r and "WEBP" not in r for r in lzma), set(lzma)


def test_library_messages_stay_quiet_in_decoding_processes(tmp_path):
    """Large folders decode in spawned worker processes: there too nothing reaches stderr, and the
    reason carries libtiff's words."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "webp.tif").write_bytes(_unsupported_file("tiff-webp.tif"))
    (tmp_path / "a" / "samples.tif").write_bytes(_unsupported_file("tiff-9-samples.tif"))
    for i in range(4):   # distinct: identical files are used once
        (tmp_path / "a" / f"ok{i}.png").write_bytes(R.png_bytes(np.roll(O.pattern_gray(), i, 1)))
    code = ("from latentlab.data import load_folder\n"
            f"ds = load_folder({str(tmp_path)!r}, cache=False, processes=True)\n"
            "print(len(ds.images)); [print(s.path, '|', s.reason) for s in ds.skipped]\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S, env=R.child_env())
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.splitlines()[0] == "4", p.stdout
    assert "WEBP compression support is not configured" in p.stdout and "More samples per pixel" in p.stdout, p.stdout


def test_a_file_name_that_is_not_utf8_survives_training_and_export(tmp_path, capsys):
    """A file name with a Latin-1 byte (as on an old USB stick): loads (or is skipped), and the run
    trained on the folder can still be exported, latents CSV included."""
    root = _engine.write_digits_folder(tmp_path / "d", per_class=3, size=12)
    src = root / "digit_0" / os.listdir(root / "digit_0")[0]
    os.rename(src, os.path.join(os.fsencode(root / "digit_0"), b"caf\xe9.png"))
    code = main(["train", str(root), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    code = main(["export", str(tmp_path / "run"), "--latents", str(tmp_path / "z.csv"), "--grid",
                 str(tmp_path / "g.png"), "--grid-size", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "z.csv").read_bytes().count(b"\n") == 31
    code = main(["info", str(root), "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0, err


def test_a_symlink_to_dev_zero_does_not_eat_the_machine(tmp_path):
    """`zeros.png -> /dev/zero` is an endless file: the loader must give up quickly, not read it
    all. Run in a child with a memory cap and a timeout so a bad loader cannot take the machine down."""
    root = tmp_path / "z"
    root.mkdir()
    (root / "ok.png").write_bytes(R.png_bytes(np.zeros((8, 8), np.uint8)))
    (root / "ok2.png").write_bytes(R.png_bytes(np.full((8, 8), 200, np.uint8)))
    os.symlink("/dev/zero", root / "zeros.png")
    os.symlink("/dev/urandom", root / "noise.jpg")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (3 << 30, 3 << 30))\n"
        "from latentlab.data import load_folder\n"
        f"ds = load_folder({str(root)!r}, cache=False)\n"
        "print(len(ds.images), sorted(str(s.path).rsplit('/', 1)[-1] for s in ds.skipped))\n")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S,
                           env=R.child_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading a folder with a link to /dev/zero hung for {WAIT_S:.0f} s")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split()[0] == "2" and "zeros.png" in p.stdout and "noise.jpg" in p.stdout, p.stdout


def test_unreadable_files_are_skipped_for_a_normal_user(tmp_path):
    """Mode-000 files: root reads them anyway, so the loader runs as `nobody` in a child."""
    if not R.can_drop_privileges():
        pytest.skip("needs root and a Python the `nobody` user can run (here the interpreter lives under "
                    "/root, which nobody can enter); as root, mode 000 is no barrier")
    base = Path(tempfile.mkdtemp(prefix="latentlab-perm-"))
    try:
        (base / "a").mkdir()
        (base / "a" / "ok.png").write_bytes(R.png_bytes(np.zeros((8, 8), np.uint8)))
        (base / "a" / "ok2.png").write_bytes(R.png_bytes(np.zeros((8, 8), np.uint8)))
        (base / "a" / "secret.png").write_bytes(R.png_bytes(np.zeros((8, 8), np.uint8)))
        (base / "b").mkdir()
        (base / "b" / "hidden.png").write_bytes(R.png_bytes(np.zeros((8, 8), np.uint8)))
        R.world_readable_tree(base)
        os.chmod(base / "a" / "secret.png", 0)
        os.chmod(base / "b", 0)
        code = ("from latentlab.data import load_folder\n"
                f"ds = load_folder({str(base)!r}, cache=False)\n"
                "print(len(ds.images)); [print(s.path, '|', s.reason) for s in ds.skipped]\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S,
                           env=R.child_env(HOME=base), preexec_fn=R.drop_privileges(), cwd=base)
        assert p.returncode == 0, p.stderr[-2000:]
        assert p.stdout.splitlines()[0] == "2" and "secret.png" in p.stdout, p.stdout
    finally:
        os.chmod(base / "b", 0o755)
        shutil.rmtree(base, ignore_errors=True)


# -- fuzzing ---------------------------------------------------------------------------------------
SEEDS = None


def _seeds():
    global SEEDS
    if SEEDS is None:
        SEEDS = R.seed_images()
    return SEEDS


def _check_one(data: bytes, ext: str):
    from latentlab.data import DatasetError

    folder = Path(tempfile.mkdtemp(prefix="latentlab-fuzz-"))
    try:
        (folder / f"f{ext}").write_bytes(data)
        faulthandler.dump_traceback_later(max(60.0, 3 * LOAD_TIMEOUT), exit=True)
        try:
            result, seconds = R.load_one(folder, LOAD_TIMEOUT)
        finally:
            faulthandler.cancel_dump_traceback_later()
        if isinstance(result, DatasetError):
            return "error"
        ds = result
        assert len(ds.images) + len(ds.skipped) >= 1
        if len(ds.images):
            assert np.isfinite(ds.images).all() and ds.images.min() >= 0 and ds.images.max() <= 1
            return "loaded"
        assert all(s.reason and "\n" not in s.reason for s in ds.skipped)
        return "skipped"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,  # time-bound by load_one instead
                suppress_health_check=list(HealthCheck), derandomize=False)


@FUZZ
@given(data=st.binary(max_size=2048), ext=st.sampled_from(EXTS))
def test_fuzz_random_bytes_never_crash_or_hang(data, ext):
    _check_one(data, ext)


@FUZZ
@given(which=st.integers(0, 5), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12))
def test_fuzz_mutated_images_never_crash_or_hang(which, seed, n):
    ext, good = _seeds()[which]
    _check_one(R.mutate(good, random.Random(seed), n), ext)


@FUZZ
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1))
def test_fuzz_png_headers_claiming_any_size_never_crash_or_hang(width, height):
    _check_one(R.png_with_dimensions(width, height), ".png")


# -- bad option values ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    return _engine.write_digits_folder(tmp_path_factory.mktemp("small"), per_class=2, size=12)


@pytest.mark.parametrize("option,value,needle", [
    ("--beta", "-1", "--beta"), ("--beta", "-0.001", "--beta"), ("--beta", "inf", "--beta"),
    ("--latent-dim", "0", "--latent-dim"), ("--latent-dim", "65", "--latent-dim"),
    ("--latent-dim", "2.5", "--latent-dim"),
    ("--epochs", "0", "--epochs"), ("--epochs", "-3", "--epochs"),
    ("--batch-size", "0", "--batch-size"),
    ("--lr", "-1", "--lr"), ("--lr", "nan", "--lr"),
    ("--image-size", "1000", "image size"), ("--image-size", "1", "image size"),
    ("--image-size", "0x0", "image size"), ("--image-size", "16x16x16", "image size"),
    ("--val-fraction", "0.9", "--val-fraction"), ("--warmup-epochs", "0", "--warmup-epochs"),
    ("--seed", "-1", "--seed"), ("--color", "purple", "invalid choice"),
])
def test_bad_option_values_are_one_clear_line(small_folder, tmp_path, capsys, option, value, needle):
    code = main(["train", str(small_folder), "--out", str(tmp_path / "r"), option, value, "--quiet"])
    _, err = capsys.readouterr()
    R.one_line_error(code, err, needle)
    assert code == 2 and not (tmp_path / "r").exists()
