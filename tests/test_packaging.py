"""The built wheel carries the sample dataset and finds it through importlib.resources,
not through a path into the checkout."""

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from _wait import WAIT_S

ROOT = Path(__file__).resolve().parents[1]
# What setuptools prints when it warns (SetuptoolsDeprecationWarning, BuildBackendWarning, …); pip's own
# "WARNING:" lines about this machine's configuration are not the package's.
SETUPTOOLS_WARNING = re.compile(r"\w*Warning\b")


def test_wheel_installs_into_a_fresh_venv_and_finds_the_sample(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, cwd=tmp_path,
                           timeout=3 * WAIT_S)
    assert built.returncode == 0, built.stderr
    assert not SETUPTOOLS_WARNING.search(built.stdout + built.stderr), built.stdout + built.stderr
    (wheel,) = wheels.glob("latentlab-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=3 * WAIT_S)
    # The fresh venv has only the wheel; its dependencies (numpy, PIL) come from this interpreter's
    # site-packages via PYTHONPATH, where the editable install of the checkout is NOT active.
    check = (
        "import latentlab, latentlab.data as d, pathlib, sys\n"
        "p = d.sample_dataset_path()\n"
        "ds = d.load_folder(p, cache=False)\n"
        "print(latentlab.__file__); print(p); print(ds.num_images, len(ds.class_names))\n"
    )
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"], "LATENTLAB_CACHE_DIR": str(tmp_path / "c")}
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=3 * WAIT_S)
    assert out.returncode == 0, out.stderr
    module_file, sample, counts = out.stdout.strip().splitlines()[-3:]
    assert module_file.startswith(str(env_dir)), module_file  # the installed copy, not the checkout
    assert sample.startswith(str(env_dir)), sample
    assert counts == "3000 10"


def test_an_editable_install_prints_no_setuptools_warning(tmp_path):
    """`pip install -e .` (the README's set-up) builds its editable wheel with no setuptools warning: no
    licence-table deprecation, no data folder missing from the packages, no note about an import hook.
    The backend's hook is called as pip calls it, with every setuptools warning made an error."""
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c",
                          "import sys; from setuptools import build_meta; print(build_meta.build_editable(sys.argv[1]))",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=3 * WAIT_S)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert not SETUPTOOLS_WARNING.search(out.stderr), out.stderr
    assert out.stdout.strip().splitlines()[-1].endswith(".whl")
