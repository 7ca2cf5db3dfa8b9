"""The benchmark's small mode runs end to end and its JSON keeps every figure (so it cannot rot).

No timing assertions: figures must be finite numbers, or null with a reason.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from _wait import WAIT_S

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bench
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_small_benchmark_writes_every_key(tmp_path):
    from benchmarks.bench import REQUIRED_KEYS

    out = tmp_path / "bench.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--small", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=6 * WAIT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["mode"] == "small"
    reasons = res.get("reasons", {})
    for key in REQUIRED_KEYS:
        assert key in res, key
        value = res[key]
        if value is None:
            assert reasons.get(key), f"{key} is null without a reason"
        else:
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    assert "| figure | value | target |" in proc.stdout
    # the shipped section: each side in its own process, latentlab with the settings it makes itself
    assert res["throughput_ratio"] == res["throughput_ratio_shipped"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert res["shipped_onednn"]["latentlab"] is True
