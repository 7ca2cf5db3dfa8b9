"""The app's flags checked before Qt starts (gui.autostart.check_flags): plain argparse namespaces, no window."""

import sys

import pytest

from gui.app import build_parser
from gui.autostart import FlagError, check_flags, form_settings


def _args(*argv):
    return build_parser().parse_args([str(a) for a in argv])


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", ".", "--run", "."], "not both"),
    (["--decoder", "d.keras", "--autostart"], "without --run or --autostart"),
    (["--encoder", "e.keras"], "goes with --decoder"),
    (["--dataset", "{tmp}/nope", "--quit-when-done"], "does not exist"),
    (["--dataset", "{tmp}/file.txt", "--quit-when-done"], "is a file, not a folder"),
    (["--run", "{tmp}", "--quit-when-done"], "config.json"),
    (["--decoder", "{tmp}/missing.keras"], "does not exist: give a Keras model file"),
    (["--decoder", "{tmp}"], "is a folder: give a Keras model file"),
])
def test_refused_flags_say_why_in_one_line(tmp_path, argv, needle):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FlagError) as e:
        check_flags(_args(*[a.format(tmp=tmp_path) for a in argv]))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_missing_dataset_is_shown_in_the_window_when_the_app_stays(tmp_path):
    assert check_flags(_args("--dataset", tmp_path / "nope")) == f"dataset folder {tmp_path / 'nope'} does not exist"
    assert check_flags(_args("--dataset", tmp_path, "--autostart")) is None


def test_form_settings_take_only_the_flags_given():
    assert form_settings(_args("--beta", "0.5", "--lr", "0.01")) == {"beta": 0.5, "learning_rate": 0.01}
    assert form_settings(_args()) == {}


ARENAS = r'''
import ctypes, sys, tempfile, threading
from gui.app import limit_malloc_arenas
print("set", limit_malloc_arenas() if sys.argv[1] == "limit" else False)
blocks = []
together = threading.Barrier(8)
def work():          # eight threads alive at once, each allocating: glibc's default gives each an arena
    together.wait()
    blocks.extend(bytearray(20_000) for _ in range(200))   # malloc'd (not pymalloc), below mmap's threshold
    together.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print("heaps", open(f.name).read().count("<heap nr="))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_app_caps_malloc_arenas_unless_the_user_set_them(monkeypatch):
    """The app calls limit_malloc_arenas before its threads start (run_app): eight threads that malloc then
    share at most two arenas (glibc's default gives them one each); MALLOC_ARENA_MAX, when set, is left alone."""
    import os
    import subprocess

    def heaps(mode, **env):
        out = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **env}, check=True).stdout.split()
        return out[1] == "True", int(out[3])

    assert heaps("limit") == (True, 2)
    was_set, n = heaps("default")
    assert not was_set and n > 2
    assert heaps("limit", MALLOC_ARENA_MAX="4")[0] is False        # the user's setting wins
    import gui.app

    calls = []
    monkeypatch.setattr(gui.app, "limit_malloc_arenas", lambda: calls.append(1))
    assert gui.app.run_app(["--dataset", ".", "--run", "."]) == 2     # refused flags: no Qt, but capped first
    assert calls == [1]
