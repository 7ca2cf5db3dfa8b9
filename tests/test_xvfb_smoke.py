"""A real window, as a user's desktop runs it: the app under Xvfb with Qt's xcb platform, the latent map
clicked with xdotool, and the decoded image checked in screenshots of the screen (``import -window
root``). Skipped, with the reason, where Xvfb, xdotool, ImageMagick or Qt's xcb libraries are missing
(`.ci/run` installs them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _runs import tiny_run  # noqa: F401  (a fixture)
from _wait import WAIT_S

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick"}
W, H = 1280, 800
# where the first start's layout puts things on a 1280×800 screen: two points of the map's plot, and the
# inside of the decoded image's view (fractions of the screen)
MAP_POINTS = [(0.45, 0.32), (0.64, 0.46)]
IMAGE_BOX = (0.80, 0.15, 0.97, 0.55)


def _missing() -> str | None:
    from gui.app import platform_problem

    tools = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if tools:
        return f"needs {' '.join(tools)}: apt-get install -y xvfb xdotool imagemagick (.ci/run installs them)"
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ.update(DISPLAY=":99", QT_QPA_PLATFORM="xcb")
    try:
        return platform_problem()      # Qt's xcb libraries
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _screen(display: str, path: Path) -> np.ndarray:
    from PIL import Image

    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=30)
    return np.asarray(Image.open(path).convert("L"), np.float32)


def _image_region(shot: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = IMAGE_BOX
    h, w = shot.shape
    return shot[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]


def _xdotool(display: str, *args) -> str:
    out = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), capture_output=True,
                         text=True, timeout=30)
    return out.stdout


def _output(app) -> str:
    """The app's output so far (stdout and stderr, in a file: a pipe nobody reads could fill and stop it)."""
    return Path(app.output_path).read_text(errors="replace")[-3000:]


def _alive(app, xvfb) -> None:
    assert xvfb.poll() is None, f"Xvfb exited ({xvfb.returncode}) under the app: was it stopped from outside?"
    assert app.poll() is None, f"the app exited ({app.returncode}): {_output(app)}"


def _start(tmp_path, *args):
    """Xvfb on a display of its own, and the app in it (a fresh start: settings and runs in tmp_path)."""
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", f"{W}x{H}x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = ":" + xvfb.stdout.readline().strip()       # Xvfb picks a free one
    assert display != ":", "Xvfb did not start"
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONFAULTHANDLER="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), LATENTLAB_LOG_DIR=str(tmp_path / "log"),
               LATENTLAB_RUNS_DIR=str(tmp_path / "runs"), LATENTLAB_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("WAYLAND_DISPLAY", None)
    exe = Path(sys.executable).with_name("latentlab")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "gui.app"]
    output = tmp_path / "app-output.txt"
    with open(output, "w") as out:
        app = subprocess.Popen(cmd + list(args), env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    app.output_path = output
    return xvfb, app, display


@contextlib.contextmanager
def _on_screen(tmp_path, *args):
    """`_start`, and the app killed (if it still runs) and Xvfb stopped afterwards, whatever happened."""
    xvfb, app, display = _start(tmp_path, *args)
    try:
        yield xvfb, app, display
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        xvfb.terminate()
        xvfb.wait(timeout=30)


def _wait_window(display, app, xvfb, name, what, deadline):
    while not _xdotool(display, "search", "--name", name).strip():
        _alive(app, xvfb)
        if time.monotonic() > deadline:     # what the screen showed and what the app said, to see why
            shot = Path(app.output_path).with_name("timed-out.png")
            subprocess.run(["import", "-display", display, "-window", "root", str(shot)], timeout=30)
            windows = _xdotool(display, "search", "--name", ".").split()
            names = [_xdotool(display, "getwindowname", w).strip() for w in windows]
            raise AssertionError(f"{what} within the time allowed (screen: {shot}; windows: "
                                 f"{[n for n in names if n]}); the app said: {_output(app)}")
        time.sleep(0.3)


def _type_into_dialog(display, app, xvfb, dialog, text, title, deadline):
    """Type ``text`` into the open ``dialog`` and press Return, as a person does: once the dialog has the
    keyboard, at a few keys a second. On a loaded machine Qt's file dialog can take keys before its line edit
    has the focus (the list then selects names, and the line edit fills with them, quoted): its warning box is
    answered and the path typed again, up to three times, as a person would."""
    for attempt in range(3):
        wids = _xdotool(display, "search", "--name", dialog).split()
        while _xdotool(display, "getwindowfocus").strip() not in wids:     # the dialog has the keyboard
            _alive(app, xvfb)
            assert time.monotonic() < deadline, "the dialog never got the keyboard"
            time.sleep(0.3)
            wids = _xdotool(display, "search", "--name", dialog).split()
        time.sleep(1.0)                                                    # a person looks, then types
        if attempt:
            _xdotool(display, "key", "ctrl+a")                             # what is there, replaced
        _xdotool(display, "type", "--delay", "60", text)
        time.sleep(0.5)
        _xdotool(display, "key", "Return")
        settle = time.monotonic() + 30
        while time.monotonic() < min(settle, deadline):
            _alive(app, xvfb)
            if _xdotool(display, "search", "--name", title).strip():
                return
            if len(_xdotool(display, "search", "--onlyvisible", "--name", dialog).split()) > 1:   # its warning
                time.sleep(0.5)
                _xdotool(display, "key", "Return")                         # OK, then type it again
                break
            if not _xdotool(display, "search", "--onlyvisible", "--name", dialog).strip():
                return                                                     # accepted: the run is opening
            time.sleep(0.3)


# the toolbar's "Open run" button on a 1280×800 first-start window (pixels from the top left)
OPEN_RUN_BUTTON = (215, 38)


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_open_run_from_the_toolbar_on_a_fresh_start_shows_the_grid_and_the_window_answers(tiny_run, tmp_path):
    """The path a person takes, which froze the app 3 times of 3 (issue 23): a fresh start, the toolbar's
    *Open run*, a run folder typed into the dialog. The grid thread then traced its decoder and the
    process stopped for good (or crashed). Now the run opens, its grid is drawn and Ctrl+Q quits."""
    with _on_screen(tmp_path) as (xvfb, app, display):
        deadline = time.monotonic() + WAIT_S
        _wait_window(display, app, xvfb, "^latentlab", "the window did not appear", deadline)
        time.sleep(1.0)                                           # a person looks before clicking
        _xdotool(display, "mousemove", *map(str, OPEN_RUN_BUTTON), "click", "1")
        for _ in range(20):                                       # the toolbar button, else its shortcut
            if _xdotool(display, "search", "--name", "Open a run folder").strip():
                break
            time.sleep(0.25)
        else:
            _xdotool(display, "mousemove", str(W // 2), str(H - 10), "click", "1")
            _xdotool(display, "key", "--clearmodifiers", "ctrl+shift+o")
        _wait_window(display, app, xvfb, "Open a run folder", "the Open run dialog did not open", deadline)
        title = f"latentlab — {Path(tiny_run).name}"
        _type_into_dialog(display, app, xvfb, "Open a run folder", str(tiny_run), title, deadline)
        _wait_window(display, app, xvfb, title, "the run did not open", deadline)
        # the decoded grid appears under the points: the map's white plot turns to the decoder's grey tiles
        while True:
            shot = _screen(display, Path(os.environ.get("LATENTLAB_TEST_SHOTS", tmp_path)) / "opened.png")
            h, w = shot.shape
            plot = shot[int(0.15 * h):int(0.5 * h), int(0.32 * w):int(0.76 * w)]
            if plot.mean() < 200:
                break
            _alive(app, xvfb)
            assert time.monotonic() < deadline, "the decoded grid never appeared"
            time.sleep(0.5)
        _xdotool(display, "mousemove", str(W // 2), str(H - 10), "click", "1")
        _xdotool(display, "key", "--clearmodifiers", "ctrl+q")      # the window answers: File → Quit
        try:
            code = app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the window stopped answering after the run opened (Ctrl+Q did nothing)") from None
        assert code == 0, f"the app exited with {code}: {_output(app)}"


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_a_click_on_the_map_changes_the_decoded_image_on_a_real_screen(tiny_run, tmp_path):
    with _on_screen(tmp_path, "--run", str(tiny_run)) as (xvfb, app, display):
        title = f"latentlab — {Path(tiny_run).name}"
        deadline = time.monotonic() + WAIT_S
        _wait_window(display, app, xvfb, title, "the run did not open", deadline)
        # click two places of the map until their decoded images differ (the decoder loads meanwhile)
        shots = []
        while True:
            for _k, (fx, fy) in enumerate(MAP_POINTS):
                _xdotool(display, "mousemove", str(int(fx * W)), str(int(fy * H)), "click", "1")
                time.sleep(1.0)                                  # past a double click; the image repaints
                shots.append(_image_region(_screen(display, tmp_path / f"shot-{len(shots)}.png")))
            a, b = shots[-2], shots[-1]
            if np.abs(a - b).mean() > 2.0 and a.std() > 5 and b.std() > 5:
                break
            _alive(app, xvfb)
            assert time.monotonic() < deadline, "clicks on the map never changed the decoded image"
        _xdotool(display, "search", "--name", title, "key", "--clearmodifiers", "ctrl+q")   # File → Quit
        assert app.wait(timeout=WAIT_S) == 0, _output(app)
