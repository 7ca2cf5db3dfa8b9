#!/usr/bin/env python3
"""Time ``latentlab.data.load_folder`` cold (empty cache) and warm (from cache) on image folders.

    .venv/bin/python scripts/make_sample_dataset.py --full /tmp/fmnist_png/train --split train
    .venv/bin/python scripts/bench_load.py /tmp/fmnist_png/train [more folders...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--repeat", type=int, default=3, help="warm loads per folder (best is reported)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--color", default="auto")
    args = p.parse_args(argv)

    cache_dir = tempfile.mkdtemp(prefix="latentlab-bench-cache-")
    os.environ["LATENTLAB_CACHE_DIR"] = cache_dir
    from latentlab.data import load_folder

    try:
        for folder in args.folders:
            t0 = time.perf_counter()
            ds = load_folder(folder, args.image_size, args.color, cache=True)
            cold = time.perf_counter() - t0
            warm, warm_cpu = [], []
            for _ in range(max(1, args.repeat)):
                t0, c0 = time.perf_counter(), time.process_time()
                w = load_folder(folder, args.image_size, args.color, cache=True)
                warm.append(time.perf_counter() - t0)
                warm_cpu.append(time.process_time() - c0)
                assert w.from_cache
                del w
            t0 = time.perf_counter()
            load_folder(folder, args.image_size, args.color, cache=False)
            nocache = time.perf_counter() - t0
            cache_mb = sum(os.path.getsize(os.path.join(cache_dir, f)) for f in os.listdir(cache_dir)) / 2**20
            print(f"{folder}: {ds.num_images} images {ds.image_shape}, {len(ds.skipped)} skipped | "
                  f"cold {cold:.2f} s ({ds.num_images / cold:,.0f} img/s), warm best {min(warm):.3f} s "
                  f"(all: {', '.join(f'{t:.3f}' for t in warm)}; CPU best {min(warm_cpu):.3f} s), no-cache {nocache:.2f} s, "
                  f"cache {cache_mb:.0f} MB on disk so far")
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
