"""What the command-line tests of runs share: a small digits folder, a cache folder per test, and
`latentlab.cli.main` run in this process (fast; the subprocess runs are `_reliability.run_cli`)."""

from __future__ import annotations

import _engine
import pytest

from latentlab.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """200 scikit-learn digits, 12×12, in 10 class folders."""
    return _engine.write_digits_folder(tmp_path_factory.mktemp("digits"), per_class=20, size=12)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))


def in_process(argv, capsys):
    """``latentlab.cli.main`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
