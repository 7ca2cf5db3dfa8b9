"""``latentlab export``: pictures and numbers from a run folder: the decoded grid, the latents as CSV,
images decoded from prior samples."""

from __future__ import annotations

import math

from latentlab.cli.common import CliError, number_arg, quiet_tensorflow, save_png
from latentlab.config import SEED_RANGE

NAME = "export"


def add_parser(sub) -> None:
    e = sub.add_parser(NAME, help="write pictures and numbers from a run folder")
    e.add_argument("run")
    e.add_argument("--grid", metavar="PNG", help="decoded-image grid over the latent map")
    e.add_argument("--grid-size", type=number_arg(int, 2, 64, "--grid-size"), default=20)
    e.add_argument("--latents", metavar="CSV", help="z_mean and z_log_var of every image")
    e.add_argument("--samples", nargs=2, metavar=("N", "PNG"), help="N images decoded from prior samples")
    e.add_argument("--seed", type=number_arg(int, *SEED_RANGE, "--seed"), default=0)


def run(args) -> int:
    from latentlab import runs

    if not (args.grid or args.latents or args.samples):
        raise CliError("nothing to export: give --grid PNG, --latents CSV and/or --samples N PNG")
    run_folder = runs.open_run(args.run)
    quiet_tensorflow()
    written = []
    if args.latents:
        if run_folder.latents is None:
            raise CliError(f"{args.run} has no latents.npz yet (it is written when an epoch or the training "
                           "finishes); open the run in the app to encode its dataset")
        try:
            runs.write_latents_csv(args.latents, run_folder.latents)
        except OSError as e:
            raise CliError(f"cannot write {args.latents} ({e.strerror or e})") from None
        written.append(args.latents)
    if args.grid or args.samples:
        written += _pictures(args, run_folder)
    print("wrote " + ", ".join(written))
    return 0


def _pictures(args, run_folder) -> list:
    import numpy as np

    from latentlab import latent

    vae = run_folder.load_model()
    dec = latent.Decoder.from_model(vae)
    written = []
    if args.grid:
        z = run_folder.latents["z_mean"] if run_folder.latents is not None else np.zeros((0, vae.latent_dim))
        projection = latent.PCA(z) if vae.latent_dim > 2 and len(z) > 2 else None
        lo, hi = latent.grid_range(projection.transform(z) if projection is not None else z)
        if vae.latent_dim == 1:
            strip = latent.traversal(dec, np.zeros(1), 0, np.linspace(lo[0], hi[0], args.grid_size))
            mosaic = latent.tile(strip[None])
        else:
            mosaic = latent.decode_grid(dec, (lo[0], hi[0]), (lo[1], hi[1]), args.grid_size, projection=projection)
        save_png(args.grid, mosaic)
        written.append(args.grid)
    if args.samples:
        n = number_arg(int, 1, 10_000, "--samples N")(args.samples[0])
        rng = np.random.default_rng(args.seed)
        images = dec.decode(rng.standard_normal((n, vae.latent_dim)).astype(np.float32))
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        pad = np.ones((rows * cols - n, *images.shape[1:]), np.float32)
        save_png(args.samples[1], latent.tile(np.concatenate([images, pad]).reshape(rows, cols, *images.shape[1:])))
        written.append(args.samples[1])
    return written
