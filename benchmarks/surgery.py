"""What ELBO surgery and the hole figures cost (`latentlab.surgery`): the per-epoch figures a training adds
(`rate_split_logs`: the split with `EPOCH_DRAWS` draws and the hole fraction, at most `EPOCH_MAX_IMAGES`
validation codes), the lesson's final split (`DEFAULT_DRAWS` draws, at most `MAX_IMAGES` codes) and one
redraw of the map's density layer (`density_grid`, the map's resolution and subset), for validation sets and
latent sizes from the bundled sample's (300 codes, d = 2) to a large folder's (60,000 codes, d = 64).
Median of ``--rounds`` timings each, on random codes (the cost depends on N and d only).

    python -m benchmarks.surgery --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from benchmarks.common import log

__all__ = ["bench_surgery"]

SIZES = ((300, 2), (300, 64), (2000, 16), (10000, 64), (60000, 64))


def _median_s(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_surgery(rounds: int = 3) -> list[dict]:
    from gui.prior_layers import GRID_RES, MAX_POSTERIORS
    from latentlab import surgery

    rng = np.random.default_rng(0)
    out = []
    for n, d in SIZES:
        mu, lv = rng.normal(size=(n, d)), rng.normal(scale=0.3, size=(n, d)) - 1.0
        row = {"codes": n, "latent_dim": d,
               "epoch_s": _median_s(lambda mu=mu, lv=lv: surgery.rate_split_logs(mu, lv), rounds),
               "lesson_split_s": _median_s(lambda mu=mu, lv=lv: surgery.split_rate(mu, lv), rounds),
               "map_layer_s": _median_s(lambda mu=mu, lv=lv: surgery.density_grid(mu, lv, res=GRID_RES,
                                                                      max_images=MAX_POSTERIORS), rounds)}
        log(f"{n:>6} codes, d={d:>2}: per epoch {row['epoch_s']:.3f} s, lesson split {row['lesson_split_s']:.3f} s, "
            f"map layer {row['map_layer_s']:.3f} s")
        out.append(row)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    print(json.dumps(bench_surgery(args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
