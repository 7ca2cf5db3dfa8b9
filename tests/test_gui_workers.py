"""`gui.workers.Load`, the one shape of the app's loaders (a dataset folder, a run, a decoder file, a followed
run's epoch, the runs to compare): what it hands back, the one line it says when a load fails, Cancel, and
that it runs on a Python thread of its own whose results reach slots on the GUI thread."""

import threading

import pytest
from PySide6.QtCore import QObject, Slot
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


class Sink(QObject):
    """Slots on the GUI thread that note what arrives, and on which thread."""

    def __init__(self):
        super().__init__()
        self.loaded, self.failed, self.progress, self.threads = [], [], [], set()

    @Slot(object)
    def on_loaded(self, result) -> None:
        self.loaded.append(result)
        self.threads.add(threading.get_ident())

    @Slot(str, str)
    def on_failed(self, item: str, message: str) -> None:
        self.failed.append((item, message))
        self.threads.add(threading.get_ident())

    @Slot(int, int)
    def on_progress(self, done: int, total: int) -> None:
        self.progress.append((done, total))


def _run(load, items, **how) -> Sink:
    """``Load`` run here (its ``run`` is what the thread calls), its signals noted."""
    from gui.workers import Load

    sink, worker = Sink(), Load(load, items, **how)
    worker.loaded.connect(sink.on_loaded)
    worker.failed.connect(sink.on_failed)
    worker.run()
    return sink


def _read(path, job):
    if path.endswith("bad"):
        raise ValueError(f"{path}: not a run folder (no config.json)\nsecond line")
    if path.endswith("bug"):
        raise KeyError("history")
    return {"path": path}


def test_a_load_hands_back_each_item_or_one_line_saying_why_not(qapp):
    sink = _run(_read, ["/r/a", "/r/bad", "/r/bug", "/r/b"])
    assert sink.loaded == [{"path": "/r/a"}, {"path": "/r/b"}]          # every item, in order
    assert sink.failed == [("/r/bad", "/r/bad: not a run folder (no config.json)"), ("/r/bug", "'history'")]


def test_the_engines_own_errors_say_themselves_and_others_say_what_failed(qapp):
    sink = _run(_read, ["/r/bad", "/r/bug"], expected=(ValueError,), doing="cannot open the run")
    assert sink.failed == [("/r/bad", "/r/bad: not a run folder (no config.json)\nsecond line"),
                           ("/r/bug", "/r/bug: cannot open the run (KeyError: 'history')")]
    assert sink.loaded == []


def test_cancel_skips_what_is_left_and_a_result_that_comes_anyway_is_cancelled(qapp):
    def read_then_cancel(path, job):
        job.cancel()                       # as Cancel does from the GUI thread while a file is read
        return path

    sink = _run(read_then_cancel, ["/r/a", "/r/b"])
    assert sink.failed == [("/r/a", "loading cancelled")] and sink.loaded == []


def test_a_started_load_runs_on_its_own_python_thread_and_reports_on_the_gui_thread(qtbot):
    from gui.threads import Task
    from gui.workers import start_load

    seen = {}

    def read(path, job):
        seen["thread"] = threading.current_thread()
        job.progress.emit(1, 2)
        job.progress.emit(2, 2)
        return path.upper()

    task, sink = Task("latentlab-test-load"), Sink()
    with qtbot.waitSignal(task.finished, timeout=WAIT_MS):
        start_load(task, read, ["/r/a"], sink.on_loaded, sink.on_failed, sink.on_progress)
    qtbot.waitUntil(lambda: bool(sink.loaded), timeout=WAIT_MS)
    assert sink.loaded == ["/R/A"] and sink.failed == [] and sink.progress == [(1, 2), (2, 2)]
    assert seen["thread"].name == "latentlab-test-load" and type(seen["thread"]) is threading.Thread
    assert sink.threads == {threading.get_ident()} and not task.running
