"""Shared helpers for the reliability tests and ``scripts/reliability.py``.

Everything here works both under pytest (small sizes) and from the script (full sizes):
killing a training process at random moments and checking what it left behind, running
the CLI as a user would, making a folder read-only or full even for root, a corpus of
broken image files, and reading this process' memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _wait import WAIT_S

REPO = Path(__file__).resolve().parents[1]
TMP_NAME = re.compile(r"^\..+\.tmp")          # what runs.atomic_write leaves behind when killed
RUN_FILES = {"config.json", "model.keras", "history.csv", "latents.npz", "epochs.npz", "state.json",
             "decoder_weights.npz"}
NOBODY = 65534


# -- running the command line ------------------------------------------------------------------
def default_sigint() -> None:
    """A child's Ctrl+C as in a terminal (a ``preexec_fn``): a shell that started the suite in the background
    leaves SIGINT ignored, a child inherits that, and Python then keeps ignoring it (a Ctrl+C test would hang)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def child_env(**extra) -> dict:
    # PYTHONFAULTHANDLER: a child that hangs prints every thread's stack on SIGABRT (see `TrainProcess.stacks`)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONFAULTHANDLER": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli_argv(*args) -> list[str]:
    return [sys.executable, "-m", "latentlab", *map(str, args)]


def run_cli(*args, env=None, timeout: float = 600, preexec_fn=None, cwd=None):
    """The real entry point in a subprocess, as a user runs it: (code, stdout, stderr)."""
    p = subprocess.run(cli_argv(*args), capture_output=True, text=True, timeout=timeout,
                       env=env or child_env(), preexec_fn=preexec_fn, cwd=cwd or REPO)
    return p.returncode, p.stdout, p.stderr


TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                      r"|[IWE]\d{4} [\d:. ]+\d+ \S+:\d+\] .*)$")


def user_lines(err: str, strict: bool = False) -> list[str]:
    """Non-blank stderr lines; without ``strict``, TensorFlow's C++ start-up log lines (printed at
    import even with TF_CPP_MIN_LOG_LEVEL=3) are left out (a known bug, see docs/reliability.md)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines if strict else [line for line in lines if not TF_NOISE.match(line)]


def one_line_error(code: int, err: str, *needles: str, strict: bool = False) -> str:
    """Assert a failed command said so in exactly one ``latentlab: error:`` line; return it."""
    assert code != 0, f"expected a failure, got exit 0; stderr={err!r}"
    lines = user_lines(err, strict)
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("latentlab: error:"), lines[0]
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def last_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- what a run folder must look like ----------------------------------------------------------
@dataclass
class FolderCheck:
    epochs_done: int
    history: list
    stray_temp_files: list = field(default_factory=list)
    model_iterations: int | None = None


def check_event_files(folder: Path) -> None:
    """A run's tensorboard/ folder holds TensorBoard event files only, each readable (a kill may cut off
    the record being written last: the reader stops there, as TensorBoard's does)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for f in sorted(folder.rglob("*")):
        if f.is_file():
            assert f.name.startswith("events.out.tfevents."), f"unexpected file {f} in the run's tensorboard folder"
            list(EventFileLoader(str(f)).Load())


def parse_every_file(run_dir: Path) -> list[str]:
    """Every real (non-temporary) file in a run folder parses completely; returns the names of
    temporary leftovers (``.NAME.XXXX.tmp*``), which must never be what a reader opens."""
    from latentlab.runs import folder as runs
    from latentlab.config import TrainConfig

    leftovers = []
    for p in sorted(Path(run_dir).iterdir()):
        name = p.name
        if TMP_NAME.match(name):
            leftovers.append(name)
            continue
        if name == "tensorboard" and p.is_dir():
            check_event_files(p)
            continue
        # .model-epoch-N.keras: a model staged for epoch N, renamed to model.keras once state.json commits
        # epoch N (open_run finishes a commit a kill interrupted, and drops an uncommitted one)
        assert name in RUN_FILES or name == ".lock" or re.fullmatch(r"\.model-epoch-\d+\.keras", name), \
            f"unexpected file {name} in the run folder"
        data = p.read_bytes()
        if name == ".lock":   # the writer's lock: empty once released, else who holds it (one JSON line)
            assert not data or isinstance(json.loads(data), dict), data
            continue
        assert data, f"{name} is empty (a half-written file where a good one was)"
        if name == "config.json":
            TrainConfig.from_json(data.decode("utf-8"))
        elif name == "state.json":
            state = json.loads(data)
            assert isinstance(state, dict) and isinstance(state.get("epochs_done"), int), state
        elif name == "history.csv":
            rows = runs.read_history(p)
            assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)), rows
            assert data.endswith(b"\n")
        elif name.endswith(".npz"):
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                for key in npz.files:
                    npz[key]  # noqa: B018  (reads and CRC-checks every member)
        elif name.endswith(".keras"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                assert z.testzip() is None, f"{name} has a damaged member"
    return leftovers


def check_run_folder(run_dir: Path, *, decode: bool = True) -> FolderCheck:
    """A run folder after a crash: every file parses, it opens, its model loads and decodes."""
    from latentlab.runs import folder as runs
    from latentlab.model.latent import Decoder

    leftovers = parse_every_file(run_dir)
    run = runs.open_run(run_dir)
    assert run.history, "open_run gave a run without a finished epoch"
    assert [r["epoch"] for r in run.history] == list(range(1, run.epochs_done + 1))
    iterations = None
    if decode:
        model = run.load_model()
        img = Decoder.from_model(model).decode(np.zeros((3, model.latent_dim), np.float32))
        assert img.shape[0] == 3 and np.isfinite(img).all()
        iterations = int(model.optimizer.iterations.numpy())
    return FolderCheck(run.epochs_done, run.history, leftovers, iterations)


def same_rows(kept: list[dict], now: list[dict]) -> bool:
    return now[:len(kept)] == kept


# -- killing training at random moments --------------------------------------------------------
@dataclass
class Kill:
    delay: float            # seconds after the process started
    epochs_before: int      # finished epochs before this process started
    epochs_after: int       # finished epochs the folder holds after the kill
    epochs_seen: int        # epochs the process announced as finished before it died
    stray_temp_files: int   # temporary files this kill left behind (killed mid-write)
    model_ahead: bool       # model.keras holds more optimizer steps than the committed epochs
    in_training: bool       # the process had started training (else: killed during start-up)
    startup: float | None   # seconds from launch to the first "training on" line


class TrainProcess:
    """``latentlab train`` in a subprocess whose progress lines are read as they come."""

    def __init__(self, argv: list[str], env=None):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env or child_env(), cwd=REPO, preexec_fn=default_sigint)
        self.lines: list[str] = []
        self.out = ""
        self.started = threading.Event()
        self.started_at = None
        self.epoch_lines = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("training on"):
                self.started_at = time.monotonic() - self.start
                self.started.set()
            elif re.match(r"^\r?epoch \d+/\d+:", line):
                self.epoch_lines += 1

    def stacks(self) -> str:
        """A child that does not end: its threads' Python stacks (faulthandler, on SIGABRT), for the failure."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        self._reader.join(5)
        return "\n".join(self.lines[-150:])

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(5)

    def wait(self, timeout=None) -> int:
        code = self.proc.wait(timeout)
        self.out = self.proc.stdout.read()
        self._reader.join(5)
        return code


def committed_epochs(run_dir: Path) -> int:
    try:
        return int(json.loads((Path(run_dir) / "state.json").read_text()).get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


def kill_and_check(run_dir: Path, argv: list[str], *, rng: random.Random, span: float,
                   startup_share: float = 0.0, startup_estimate: float = 6.0, first: bool = False,
                   batch_size: int | None = None, timeout: float = 300) -> Kill:
    """Start ``argv``; SIGKILL it at a random moment; check the folder it left.

    With probability ``startup_share`` the moment is uniform over the first ``startup_estimate``
    seconds (start-up: imports, loading, building, or whatever has begun by then); otherwise it is
    uniform over ``span`` seconds after the process announced training ("training on ..."), which
    covers batches, validation and the checkpoint writes. ``first``: the folder has no epoch yet,
    so the clock starts at the first commit instead (a run killed before its first epoch has
    nothing to keep)."""
    before = committed_epochs(run_dir)
    kept = check_run_folder(run_dir, decode=False).history if before else []
    temp_before = {p.name for p in Path(run_dir).glob(".*.tmp*")} if Path(run_dir).is_dir() else set()
    p = TrainProcess(argv)
    deadline = time.monotonic() + timeout
    in_startup = not first and rng.random() < startup_share
    if in_startup:
        target = p.start + rng.uniform(0.0, startup_estimate)
    else:
        while not (committed_epochs(run_dir) >= 1 if first else p.started.is_set()):
            if p.proc.poll() is not None:
                break
            assert time.monotonic() < deadline, "training did not start in time:\n" + "\n".join(p.lines)
            time.sleep(0.005)
        target = time.monotonic() + rng.uniform(0.0, span)
    while time.monotonic() < target and p.proc.poll() is None:
        time.sleep(0.002)
    ended_on_its_own = p.proc.poll() is not None
    at = time.monotonic() - p.start
    p.kill()
    assert not ended_on_its_own or p.proc.returncode == 0, "\n".join(p.lines[-5:])
    seen = before + p.epoch_lines
    check = check_run_folder(run_dir)
    assert check.epochs_done >= max(before, 1 if first else 0)
    # at most one epoch lost: all the process announced as finished, but perhaps the one in flight
    assert check.epochs_done >= seen - 1, (check.epochs_done, seen)
    assert same_rows(kept, check.history), "the kept epochs' history rows changed"
    steps = steps_per_epoch(run_dir, batch_size) if batch_size else None
    model_ahead = bool(steps and check.model_iterations is not None
                       and check.model_iterations != check.epochs_done * steps)
    return Kill(at, before, check.epochs_done, seen, len(set(check.stray_temp_files) - temp_before), model_ahead,
                p.started.is_set(), p.started_at)


def crash_campaign(data_dir: Path, run_dir: Path, *, kills: int, seed: int, batch_size: int = 16,
                   span: float = 3.0, startup_share: float = 0.2, export=None, resume=None,
                   log=lambda *a: None, extra_args=()) -> dict:
    """Kill ``latentlab train`` ``kills`` times at random moments, checking the folder each time,
    then ``--resume`` it to a few epochs past the last kill and check the kept rows.

    ``export(run_dir, i) -> exit code`` is called after kill ``i``; ``resume(run_dir, total) -> exit
    code`` does the final resume (default: ``latentlab train --resume`` in a subprocess).
    Returns the figures."""
    rng = random.Random(seed)
    big = 100_000  # each killed process aims far; the final resume sets the real total
    common = ["--epochs", big, "--batch-size", batch_size, *extra_args]
    results: list[Kill] = []
    t0 = time.monotonic()
    startup = 6.0
    export_codes = []
    for i in range(kills):
        if i == 0:
            argv = cli_argv("train", data_dir, "--out", run_dir, *common)
        else:
            argv = cli_argv("train", "--resume", run_dir, *common)
        k = kill_and_check(run_dir, argv, rng=rng, span=span, startup_share=startup_share,
                           startup_estimate=startup, first=(i == 0), batch_size=batch_size)
        if k.startup:
            startup = k.startup
        results.append(k)
        if export is not None:
            export_codes.append(export(run_dir, i))
            assert export_codes[-1] == 0, f"export failed after kill {i + 1}"
        log(f"kill {i + 1:>3}/{kills}: at {k.delay:6.2f}s {'training' if k.in_training else 'start-up'}"
            f"  epochs {k.epochs_before:>3} -> announced {k.epochs_seen:>3}, kept {k.epochs_after:>3}"
            f"  new temp files {k.stray_temp_files}  model ahead {k.model_ahead}")
    kept = check_run_folder(run_dir, decode=False).history
    total = len(kept) + 3
    if resume is None:
        code, out, err = run_cli("train", "--resume", run_dir, "--epochs", total, "--quiet")
        assert code == 0, err
    else:
        assert resume(run_dir, total) == 0
    final = check_run_folder(run_dir)
    assert final.epochs_done == total, (final.epochs_done, total)
    assert same_rows(kept, final.history), "resume changed the history rows of the kept epochs"
    lost = [max(0, k.epochs_seen - k.epochs_after) for k in results]
    return {
        "kills": len(results),
        "kills_in_startup": sum(not k.in_training for k in results),
        "kills_in_training": sum(k.in_training for k in results),
        "kills_leaving_temp_files": sum(k.stray_temp_files > 0 for k in results),
        "epochs_lost_max": max(lost) if lost else 0,
        "epochs_lost_total": sum(lost),
        "kills_with_model_ahead_of_commit": sum(k.model_ahead for k in results),
        "exports_ok": sum(c == 0 for c in export_codes),
        "final_epochs": final.epochs_done,
        "stray_temp_files_at_end": len(final.stray_temp_files),
        "seconds": time.monotonic() - t0,
        "details": results,
    }


def steps_per_epoch(run_dir: Path, batch_size: int) -> int | None:
    """Optimizer steps per epoch, from the latents file's train/val split (None before epoch 1)."""
    try:
        with np.load(Path(run_dir) / "latents.npz", allow_pickle=False) as z:
            n_train = int((z["split"] == 0).sum())
    except (OSError, KeyError, ValueError):
        return None
    return -(-n_train // batch_size)


# -- read-only and full folders, even for root ------------------------------------------------
def _mount(*args) -> bool:
    try:
        r = subprocess.run(["mount", *args], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def umount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


@contextlib.contextmanager
def read_only_bind(path: Path):
    """Make ``path`` read-only for everyone (root included) with a read-only bind mount.
    Yields True, or False when mounting is not permitted here."""
    path = Path(path)
    if os.geteuid() != 0 or not _mount("--bind", str(path), str(path)):
        yield False
        return
    try:
        if not _mount("-o", "remount,bind,ro", str(path)):
            yield False
            return
        probe = path / ".probe"
        try:
            probe.write_bytes(b"x")
            probe.unlink()
            yield False  # the remount did not take
            return
        except OSError:
            pass
        yield True
    finally:
        umount(path)


@contextlib.contextmanager
def small_tmpfs(size_kib: int):
    """A fresh tmpfs of ``size_kib`` KiB; yields its path, or None when mounting is not permitted."""
    base = Path(tempfile.mkdtemp(prefix="latentlab-full-"))
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(base)):
        shutil.rmtree(base, ignore_errors=True)
        yield None
        return
    try:
        yield base
    finally:
        umount(base)
        shutil.rmtree(base, ignore_errors=True)


def fill_disk(folder: Path, leave_bytes: int) -> int:
    """Fill the file system of ``folder`` until about ``leave_bytes`` are free; returns free bytes."""
    filler = Path(folder) / "filler.bin"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        chunk = b"\0" * 65536
        remaining = max(0, free - leave_bytes)
        with contextlib.suppress(OSError):
            while remaining > 0:
                n = f.write(chunk[:min(len(chunk), remaining)])
                remaining -= n
            f.flush()
            os.fsync(f.fileno())
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def limit_file_size(max_bytes: int):
    """A preexec_fn: writes past ``max_bytes`` fail with EFBIG (SIGXFSZ ignored) in the child."""
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return preexec


def drop_privileges(uid: int = NOBODY):
    """A preexec_fn: run the child as ``nobody`` so file permissions apply to it."""
    def preexec():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return preexec


def can_drop_privileges() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        r = subprocess.run([sys.executable, "-c", "import os; print(os.getuid())"], capture_output=True,
                           text=True, timeout=WAIT_S, preexec_fn=drop_privileges())
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and r.stdout.strip() == str(NOBODY)


def world_readable_tree(root: Path) -> None:
    """chmod a tree (and its parents up to /) so the ``nobody`` user can read it."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    p = Path(root).resolve()
    for parent in [p, *p.parents]:
        mode = parent.stat().st_mode & 0o777
        if mode & 0o005 != 0o005:
            os.chmod(parent, mode | 0o005)


# -- a corpus of broken and odd image files -------------------------------------------------------
def png_bytes(arr: np.ndarray, **save) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **save)
    return buf.getvalue()


def image_bytes(img, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_with_dimensions(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR (with a fixed CRC) claims ``width``×``height``: a
    decompression bomb to any loader that believes the header."""
    data = bytearray(png_bytes(np.zeros((4, 4), np.uint8)))
    assert data[12:16] == b"IHDR"
    data[16:20] = struct.pack(">I", width)
    data[20:24] = struct.pack(">I", height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def real_bomb_png(side: int = 12000) -> bytes:
    """A real PNG of ``side``² black pixels (deflate squeezes it to a few hundred KB)."""
    raw_row = b"\0" + b"\0" * side  # filter byte + gray pixels
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(raw_row) for _ in range(side)) + comp.flush()

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@dataclass
class CorpusFile:
    name: str | bytes     # relative path (bytes for names that are not UTF-8)
    expect: str           # "load", "skip", or "either"
    why: str
    reason_has: str | None = None   # a skip's reason must say this (e.g. what libtiff said)


def write_corpus(root: Path) -> list[CorpusFile]:
    """Broken and unusual files next to a few good ones, in class folders ``good``/``odd``/``bad``, and
    ``formats``/``unsupported``/``damaged`` (tests/_oddities.py).
    Returns what each file is and whether it must load, must be skipped, or may do either."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = Path(root)
    for d in ("good", "odd", "bad"):
        (root / d).mkdir(parents=True, exist_ok=True)
    gray = (rng.random((16, 16)) * 255).astype(np.uint8)
    rgb = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    files: list[CorpusFile] = []

    def put(name, data, expect, why, reason_has=None):
        path = os.path.join(os.fsencode(root), name) if isinstance(name, bytes) else root / name
        with open(path, "wb") as f:
            f.write(data)
        files.append(CorpusFile(name, expect, why, reason_has))

    for i in range(4):
        put(f"good/g{i}.png", png_bytes(np.roll(gray, i, 0)), "load", "plain 8-bit gray PNG")
    put("good/rgb.jpg", image_bytes(Image.fromarray(rgb), "JPEG", quality=90), "load", "RGB JPEG")
    put("good/pic.bmp", image_bytes(Image.fromarray(gray), "BMP"), "load", "BMP")
    put("good/pic.tiff", image_bytes(Image.fromarray(gray), "TIFF"), "load", "TIFF")
    # unusual but valid: must load
    put("odd/gray16.png", image_bytes(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
        "load", "16-bit gray PNG")
    put("odd/palette.png", image_bytes(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE), "PNG"),
        "load", "palette PNG")
    put("odd/rgba.png", image_bytes(Image.fromarray(np.dstack([rgb, gray])), "PNG"), "load", "RGBA PNG")
    put("odd/la.png", image_bytes(Image.merge("LA", [Image.fromarray(gray), Image.fromarray(gray)]), "PNG"), "load",
        "gray+alpha PNG")
    put("odd/cmyk.jpg", image_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "load", "CMYK JPEG")
    put("odd/bilevel.png", image_bytes(Image.fromarray(gray > 128), "PNG"), "load", "1-bit PNG")
    frames = [Image.fromarray(np.roll(gray, i, 1)).convert("P") for i in range(3)]
    put("odd/animated.gif", image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50,
                                        loop=0), "load", "animated GIF (first frame)")
    put("odd/wide.png", png_bytes(np.tile(gray, (1, 64))), "either", "very wide 16x1024 PNG")
    put("odd/big.png", png_bytes(np.zeros((4000, 4000), np.uint8)), "either", "4000x4000 PNG (16 MP)")
    put("odd/float.tiff", image_bytes(Image.fromarray(gray.astype(np.float32) / 255.0), "TIFF"),
        "either", "32-bit float TIFF")
    put("odd/UPPER.PNG", png_bytes(gray), "load", "upper-case extension")
    put(b"odd/caf\xe9-latin1.png", png_bytes(gray), "either", "file name that is not UTF-8")
    # broken: must be skipped with a reason
    put("bad/empty.png", b"", "skip", "zero bytes")
    good_png = png_bytes(rgb)
    put("bad/truncated.png", good_png[: len(good_png) // 2], "skip", "truncated PNG")
    good_jpg = image_bytes(Image.fromarray(rgb), "JPEG")
    put("bad/truncated.jpg", good_jpg[: len(good_jpg) // 3], "either", "truncated JPEG (PIL may pad it)")
    put("bad/random.png", rng.bytes(3000), "skip", "random bytes named .png")
    put("bad/random.jpg", rng.bytes(3000), "skip", "random bytes named .jpg")
    put("bad/text.gif", b"GIF89a but really just text\n" * 10, "skip", "text with a GIF header")
    put("bad/header-only.png", good_png[:33], "skip", "PNG signature and IHDR only")
    put("bad/bomb-header.png", png_with_dimensions(60000, 60000), "skip", "IHDR claims 60000x60000")
    put("bad/bomb-real.png", real_bomb_png(12000), "skip", "real 12000x12000 PNG (144 MP)")
    put("bad/zero-size.png", png_with_dimensions(0, 0), "skip", "IHDR claims 0x0")
    put("bad/html.jpeg", b"<html><body>404 not found</body></html>", "skip", "HTML saved as .jpeg")
    # files the loader must ignore (not images): neither loaded nor an error
    (root / "good" / "notes.txt").write_text("not an image")
    (root / "good" / ".hidden.png").write_bytes(png_bytes(gray))
    # links: a self loop, a directory cycle, a dangling link, a good link
    os.symlink("loop.png", root / "bad" / "loop.png")
    os.symlink("..", root / "odd" / "cycle", target_is_directory=True)
    os.symlink("missing.png", root / "bad" / "dangling.png")
    os.symlink(root / "good" / "g0.png", root / "odd" / "link.png")
    files += [CorpusFile("bad/loop.png", "skip", "symlink to itself"),
              CorpusFile("bad/dangling.png", "skip", "symlink to nothing"),
              CorpusFile("odd/link.png", "either", "symlink to a good file")]
    # permissions (only bite when the loader does not run as root)
    put("bad/unreadable.png", png_bytes(gray), "skip", "no read permission (mode 000)")
    os.chmod(root / "bad" / "unreadable.png", 0)
    # the real-world oddities of other tools' test suites and fuzzers (tests/_oddities.py)
    import _oddities

    for folder, items in _oddities.oddities().items():
        (root / folder).mkdir(exist_ok=True)
        for o in items:
            put(f"{folder}/{o.name}", o.data, o.expect, o.why, o.reason_has)
    return files


def corpus_paths(root: Path, files: list[CorpusFile]) -> dict:
    """{path relative to the root, as the loader reports it (posix, surrogate-escaped): CorpusFile}."""
    return {(os.fsdecode(f.name) if isinstance(f.name, bytes) else f.name): f for f in files}


# -- fuzzing -----------------------------------------------------------------------------------
def seed_images() -> list[tuple[str, bytes]]:
    """Small valid files in each format the loader takes, for mutation."""
    from PIL import Image

    rng = np.random.default_rng(1)
    gray = (rng.random((12, 12)) * 255).astype(np.uint8)
    rgb = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    return [
        (".png", png_bytes(gray)),
        (".png", png_bytes(rgb)),
        (".jpg", image_bytes(Image.fromarray(rgb), "JPEG")),
        (".gif", image_bytes(Image.fromarray(gray).convert("P"), "GIF")),
        (".bmp", image_bytes(Image.fromarray(gray), "BMP")),
        (".tif", image_bytes(Image.fromarray(gray), "TIFF")),
    ]


def mutate(data: bytes, rng: random.Random, n: int) -> bytes:
    """Flip, overwrite, insert or delete up to ``n`` bytes, or truncate."""
    b = bytearray(data)
    for _ in range(n):
        op = rng.randrange(5)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 3 and b:
            del b[i:i + rng.randrange(1, 17)]
        elif op == 4 and b:
            del b[rng.randrange(len(b)):]
    return bytes(b)


def load_one(folder: Path, timeout: float):
    """``load_folder`` on a folder of one file, within ``timeout`` seconds (the test fails on a hang).
    Returns the Dataset, or the DatasetError (no usable image is a fine answer for a broken file)."""
    from latentlab.data import DatasetError, load_folder

    t0 = time.perf_counter()
    try:
        result = load_folder(folder, cache=False)
    except DatasetError as e:
        assert "\n" not in str(e), repr(str(e))
        result = e
    elapsed = time.perf_counter() - t0
    assert elapsed < timeout, f"loading one file took {elapsed:.1f}s"
    return result, elapsed


# -- memory --------------------------------------------------------------------------------------
def rss_mb(pid: int | str = "self") -> float:
    """Resident memory in MB from /proc (no psutil needed)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def slope_mb_per_hour(times_s: list[float], rss: list[float]) -> float:
    if len(times_s) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(times_s) / 3600.0, np.asarray(rss), 1)[0])


# -- untrusted model files -----------------------------------------------------------------------
CANARY_ENV = "LATENTLAB_RELIABILITY_CANARY"


def canary(*args, **kwargs):
    """Writes a marker file when called: a model file that manages to call this ran code."""
    path = os.environ.get(CANARY_ENV)
    if path:
        Path(path).write_text("code from a model file ran\n")
    return None


def lambda_vae(image_shape, latent_dim: int):
    """A latentlab VAE whose encoder hides a ``keras.layers.Lambda`` (arbitrary Python code)."""
    import keras

    from latentlab.model.vae import VAE, build_decoder

    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = keras.layers.Lambda(lambda t: t * 1.0 + 0.0, name="innocent_looking")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    vae = VAE(encoder, build_decoder(tuple(image_shape), latent_dim))
    vae(np.zeros((1, *image_shape), np.float32))
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


def lambda_functional(image_shape, latent_dim: int):
    """A plain functional model with a Lambda layer (not even a VAE)."""
    import keras

    inputs = keras.Input(shape=tuple(image_shape))
    x = keras.layers.Lambda(lambda t: t + 1.0)(inputs)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(latent_dim)(x)
    return keras.Model(inputs, out)


def rewrite_keras_config(src: Path, dst: Path, edit) -> None:
    """Copy a .keras zip, passing its config.json through ``edit(dict) -> dict``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            zout.writestr(item, data)


def snapshot(folder: Path) -> dict:
    """{name: bytes} of every file in a folder, to show nothing was (half-)applied. The run's lock file
    is left out: it says who writes the run (emptied on release), it is not the run."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != ".lock"}


def history_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
