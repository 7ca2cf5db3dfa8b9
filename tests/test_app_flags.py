"""The app's flags checked before Qt starts (gui.autostart.check_flags): plain argparse namespaces, no window."""

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
