"""TensorFlow settings latentlab makes before TensorFlow is imported (tfquiet.configure_environment)."""

import os
import platform
import subprocess
import sys

import pytest
from _wait import WAIT_S

# TensorFlow imported directly after the module, as latent.py's own `import tensorflow` does: the setting
# must already be made by importing the package, not only by tfquiet.import_tensorflow
PROBE = ("import {first}\n"
         "import tensorflow\n"
         "from latentlab.tfquiet import onednn_enabled\n"
         "import os\n"
         "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), onednn_enabled())\n")

x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                         reason="latentlab turns oneDNN on only on x86-64 CPUs")


def probe(first: str, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_changes, TF_CPP_MIN_LOG_LEVEL="3")
    p = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], capture_output=True, text=True,
                       timeout=2 * WAIT_S, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split()


@x86
@pytest.mark.parametrize("first", ["latentlab.model.latent", "gui.main_window"])
def test_onednn_is_on_when_a_latentlab_module_is_imported_first(first):
    # the engine's modules and the app's window: the setting comes before TensorFlow reads it (once)
    assert probe(first) == ["1", "True"]


@x86
def test_the_users_own_setting_is_kept():
    assert probe("latentlab.training.trainer", TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]
