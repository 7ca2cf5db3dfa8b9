"""``latentlab eval``: −log p(x) by importance sampling (the IWAE bound, `latentlab.model.likelihood`) beside
−ELBO, on a run's validation images (or every image of another folder), in nats per image."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from latentlab.cli.common import CliError, check_folder, number_arg, quiet_tensorflow
from latentlab.config import SEED_RANGE

NAME = "eval"


def add_parser(sub) -> None:
    from latentlab.model.likelihood import DEFAULT_SAMPLES

    e = sub.add_parser(NAME, help="estimate log p(x) by importance sampling on a run's validation images, "
                                  "beside the ELBO")
    e.add_argument("run")
    e.add_argument("--samples", type=number_arg(int, 1, 100_000, "--samples"), default=DEFAULT_SAMPLES,
                   help=f"K, draws from q(z|x) per image (default {DEFAULT_SAMPLES}); more is tighter and slower")
    e.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    e.add_argument("--dataset", metavar="DIR", help="evaluate every image of this folder instead (e.g. a test "
                                                     "set), at the run's image size and colour")
    e.add_argument("--max-images", type=number_arg(int, 1, 10_000_000, "--max-images"), default=None,
                   help="evaluate a random subset of at most this many images")
    e.add_argument("--seed", type=number_arg(int, *SEED_RANGE, "--seed"), default=0)


def _validation_images(run_folder):
    """The run's validation images: the split latents.npz recorded when the folder still holds the same
    files, else the split training draws (same seed and fraction) over the folder as it is now."""
    from latentlab import data as ld
    from latentlab.runs import folder as runs

    cfg = run_folder.config
    if not cfg.dataset or not Path(cfg.dataset).is_dir():
        raise CliError(f"the run's dataset folder {cfg.dataset or '(none recorded)'} is gone: give --dataset DIR "
                       "to evaluate on other images")
    ds = ld.load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color, background=cfg.background,
                        fit=cfg.fit)
    lat = run_folder.latents
    if lat is not None and "split" in lat and runs.latents_match(ds.paths, lat):
        val = [i for i, s in enumerate(lat["split"]) if s == 1]
    else:
        if lat is not None:
            print(f"latentlab: note: {cfg.dataset} has changed since the run was trained; its validation images "
                  "are drawn again with the run's seed", file=sys.stderr)
        val = list(ld.split_indices(ds.num_images, cfg.val_fraction, cfg.seed)[1])
    if not val:
        raise CliError(f"{run_folder.path} kept no validation images (validation fraction 0): give --dataset DIR "
                       "to evaluate on other images")
    return ds.images[val], f"{len(val):,} validation images of {cfg.dataset}"


def run(args) -> int:
    import numpy as np

    from latentlab import data as ld
    from latentlab.runs import folder as runs
    from latentlab.model.likelihood import estimate

    run_folder = runs.open_run(args.run)
    if args.dataset:
        check_folder(args.dataset)
    else:
        images, what = _validation_images(run_folder)
    quiet_tensorflow()
    model = run_folder.load_model()
    h, w, c = model.image_shape
    if args.dataset:
        ds = ld.load_folder(args.dataset, image_size=(h, w), color="gray" if c == 1 else "rgb")
        images, what = ds.images, f"{ds.num_images:,} images of {args.dataset}"
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise CliError(f"the images are {'x'.join(map(str, images.shape[1:]))} but the run's model takes "
                       f"{h}x{w}x{c}; the dataset folder no longer matches the run")
    if args.max_images and len(images) > args.max_images:
        pick = np.sort(np.random.default_rng(args.seed).permutation(len(images))[:args.max_images])
        images, what = images[pick], f"{args.max_images:,} of the {what}"
    progress = _Progress() if sys.stderr.isatty() else None
    est = estimate(model, images, args.samples, seed=args.seed, progress=progress)
    if progress is not None:
        progress.done()
    print(f"{what}, K = {est.samples} samples from q(z|x) each (nats per image, ± standard error):")
    print(f"  -ELBO          {est.neg_elbo:10.2f} ± {est.neg_elbo_se:.2f}")
    print(f"  -log p(x)      {est.neg_log_likelihood:10.2f} ± {est.neg_log_likelihood_se:.2f}   "
          f"(importance-sampled, the IWAE bound: at most -ELBO, tighter as K grows)")
    print(f"  ELBO gap       {est.gap:10.2f} ± {est.gap_se:.2f}   (how far the ELBO sits below log p(x))")
    if args.json:
        from latentlab.runs.folder import atomic_write_text

        out = {**est.to_json(), "run": str(run_folder.path), "images_from": what, "seed": args.seed}
        try:
            atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
        except OSError as e:
            raise CliError(f"cannot write {args.json} ({e.strerror or e})") from None
    return 0


class _Progress:
    """A one-line counter on a terminal while the estimate runs."""

    def __call__(self, done: int, total: int) -> None:
        sys.stderr.write(f"\restimating: {done:,}/{total:,} images")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r" + " " * 40 + "\r")
        sys.stderr.flush()
