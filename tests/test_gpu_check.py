"""scripts/gpu-check: it parses, says what it would do (--dry-run), refuses in one line on a machine
without an NVIDIA GPU, and (benchmark mode, CI's -m bench step) runs its steps tiny on the CPU."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _wait import WAIT_S

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check"


def _run(*args, env=None, timeout=WAIT_S):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_the_script_parses_and_its_dry_run_lists_the_steps_and_targets():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    p = _run("--dry-run")
    assert p.returncode == 0, p.stderr
    for needle in ("device", "throughput", "mixed_precision", "app", "sweep", "--gpus-per-run 1", "batch 1024",
                   "defaults_fast_images_per_second >= 30000", "gui_stall_p99_ms <= 50", "click_p99_ms <= 50"):
        assert needle in p.stdout, needle
    assert "installing" not in p.stderr          # a dry run installs nothing


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_it_refuses_in_one_line():
    p = _run()
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 3 and len(lines) == 1 and "no NVIDIA GPU" in lines[0] and "--dry-run" in lines[0], p.stderr
    assert not p.stdout


@pytest.mark.bench
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_the_cpu_tiny_mode_runs_every_step(tmp_path):
    out = tmp_path / "gpu-check.json"
    p = _run("--cpu-tiny", "--json", str(out), env={"LATENTLAB_CACHE_DIR": str(tmp_path / "cache"),
                                                    "XDG_CONFIG_HOME": str(tmp_path / "config")}, timeout=4 * WAIT_S)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["mode"] == "tiny" and not res["reasons"], res["reasons"]
    for key in ("reference_images_per_second", "defaults_images_per_second", "defaults_fast_images_per_second",
                "mixed_on_images_per_second", "gui_stall_p99_ms", "click_p99_ms", "grid_app_ms_median"):
        assert isinstance(res[key], (int, float)) and res[key] > 0, key
    assert res["sweep_runs_finished"] == 2
    assert "| target (H200-class GPU) | value | met |" in p.stdout and "min in all" in p.stdout
