"""Qt fixtures for the GUI tests: headless platform, settings in a temporary folder, and a
check that fails any test leaving a worker thread running."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"      # before any Qt import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import faulthandler
import signal
import threading
import time

import pytest
from _wait import WAIT_MS, WAIT_S

from _dask import dask_cluster  # noqa: E402,F401  (one Dask test cluster for the session, shared by its tests)

if hasattr(signal, "SIGUSR1"):   # `kill -USR1 <pid>` prints every thread's stack (to debug a hang)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


@pytest.fixture(scope="session", autouse=True)
def _qt_settings_in_tmp(tmp_path_factory):
    """QSettings (recent folders) go to a temporary folder, never to the user's."""
    try:
        from PySide6.QtCore import QSettings
    except ImportError:  # engine-only environments
        yield
        return
    folder = str(tmp_path_factory.mktemp("qsettings"))
    QSettings.setDefaultFormat(QSettings.IniFormat)
    for fmt in (QSettings.IniFormat, QSettings.NativeFormat):
        QSettings.setPath(fmt, QSettings.UserScope, folder)
    yield


@pytest.fixture(autouse=True)
def _first_start_layout():
    """Every test's window starts with the layout of a first start (a window's close saves its layout)."""
    try:
        from gui.settings import settings
    except ImportError:
        yield
        return
    settings().remove("layout")
    yield


@pytest.fixture
def no_thread_leaks(qapp):
    """Fails the test if it leaves a QThread started by the app, or a new non-daemon Python
    thread, running (waits for them to end, processing events, up to the tests' one ceiling)."""
    from PySide6.QtCore import QCoreApplication

    from gui.threads import running_threads

    before = {t.ident for t in threading.enumerate()}
    yield

    def leftovers():
        py = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon
              and not isinstance(t, threading._DummyThread)]
        return [t.objectName() for t in running_threads()] + [t.name for t in py]

    deadline = time.monotonic() + WAIT_S
    while leftovers() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    left = leftovers()
    if left:
        pytest.fail(f"threads left running after the test: {left}")


@pytest.fixture(scope="session")
def gui_digits(tmp_path_factory):
    """300 real images (scikit-learn digits, 16×16, 10 class folders) for the GUI tests."""
    import _engine

    return _engine.write_digits_folder(tmp_path_factory.mktemp("gui-digits"), per_class=30, size=16)


@pytest.fixture(scope="session")
def digits_dataset(gui_digits):
    """`gui_digits` loaded (a latentlab Dataset), for engine tests."""
    from latentlab.data import load_folder

    return load_folder(gui_digits, cache=False)


@pytest.fixture(scope="session")
def dataset(digits_dataset):
    """The engine tests' usual dataset, `digits_dataset` (300 digits at 16×16: 17 batches of 16 an epoch); a
    module that needs another defines its own ``dataset``."""
    return digits_dataset


@pytest.fixture
def dataset_cache(tmp_path, monkeypatch):
    """The dataset cache in the test's temporary folder (``pytestmark = usefixtures("dataset_cache")``)."""
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def gui_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def window(qtbot, no_thread_leaks, gui_env):
    """The main window, shown at 1280×800, closed (stopping any training) after the test."""
    from gui.main_window import MainWindow

    win = MainWindow(runs_root=gui_env / "runs", snapshot_seconds=0.3)
    win.confirm_stop = lambda: True     # never a modal dialog in tests (tests of it set their own)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win, timeout=WAIT_MS)
    yield win
    win.confirm_stop = lambda: True
    win.close()
    win.shutdown()
