"""The built wheel carries the sample dataset and finds it through importlib.resources,
not through a path into the checkout."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from _wait import WAIT_S

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_into_a_fresh_venv_and_finds_the_sample(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path, timeout=3 * WAIT_S)
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
