"""``latentlab export``: pictures and numbers from a run folder — the decoded grid, the latents as CSV,
images decoded from prior samples, an Embedding Projector folder for TensorBoard — or the grid and prior
samples of a Keras decoder trained elsewhere (``--decoder``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from latentlab.cli.common import CliError, check_folder, number_arg, quiet_tensorflow, save_png
from latentlab.config import SEED_RANGE
from latentlab.model.latent import MIN_TILE_PX, export_scale   # noqa: F401  (the app uses the same rule)

NAME = "export"


def add_parser(sub) -> None:
    e = sub.add_parser(NAME, help="write pictures and numbers from a run folder (or from a Keras decoder file)")
    e.add_argument("run", nargs="?", help="run folder (or give --decoder)")
    e.add_argument("--grid", metavar="PNG", help="decoded-image grid over the latent map")
    e.add_argument("--grid-size", type=number_arg(int, 2, 64, "--grid-size"), default=20)
    e.add_argument("--latents", metavar="CSV", help="z_mean and z_log_var of every image")
    e.add_argument("--samples", nargs=2, metavar=("N", "PNG"), help="N images decoded from prior samples")
    e.add_argument("--projector", metavar="DIR", help="an Embedding Projector folder: z_mean of every image, "
                   "labels, files and thumbnails (then `latentlab tensorboard DIR`)")
    e.add_argument("--seed", type=number_arg(int, *SEED_RANGE, "--seed"), default=0)
    e.add_argument("--scale", type=number_arg(int, 1, 32, "--scale"), default=None,
                   help=f"enlarge each pixel N times in --grid and --samples pictures (nearest neighbour; default: "
                        f"enough for tiles of at least {MIN_TILE_PX} pixels a side)")
    e.add_argument("--decoder", metavar="FILE.keras", help="instead of a run: a Keras decoder trained elsewhere "
                   "(a vector of size d to an image; pixels in [0, 1] or logits)")
    e.add_argument("--encoder", metavar="FILE.keras", help="with --decoder: its encoder (z_mean, and z_log_var); "
                   "the grid then spans the encoded --dataset")
    e.add_argument("--dataset", metavar="DIR", help="with --decoder and --encoder: the images to encode")


def run(args) -> int:
    if args.decoder:
        return _run_foreign(args)
    from latentlab.runs import folder as runs

    if not args.run:
        raise CliError("give a run folder, or --decoder FILE.keras")
    if args.encoder or args.dataset:
        raise CliError("--encoder and --dataset go with --decoder FILE.keras")
    if not (args.grid or args.latents or args.samples or args.projector):
        raise CliError("nothing to export: give --grid PNG, --latents CSV, --samples N PNG and/or --projector DIR")
    run_folder = runs.open_run(args.run)
    if (args.latents or args.projector) and run_folder.latents is None:
        raise CliError(f"{args.run} has no latents.npz yet (it is written when an epoch or the training "
                       "finishes); open the run in the app to encode its dataset")
    quiet_tensorflow()
    written = []
    if args.latents and run_folder.latents is not None:   # (checked above)
        try:
            runs.write_latents_csv(args.latents, run_folder.latents)
        except OSError as e:
            raise CliError(f"cannot write {args.latents} ({e.strerror or e})") from None
        written.append(args.latents)
    if args.grid or args.samples:
        import numpy as np

        from latentlab.model import latent

        vae = run_folder.load_model()
        z = run_folder.latents["z_mean"] if run_folder.latents is not None else np.zeros((0, vae.latent_dim))
        written += _pictures(args, latent.Decoder.from_model(vae), z)
    if args.projector:
        written.append(_projector(args.projector, run_folder))
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _run_foreign(args) -> int:
    import numpy as np

    from latentlab.model.foreign import ForeignDecoder, ForeignEncoder, dataset_for

    if args.run:
        raise CliError("give a run folder or --decoder FILE.keras, not both")
    if args.latents or args.projector:
        raise CliError("--latents and --projector need a run folder; with --decoder give --grid PNG and/or "
                       "--samples N PNG")
    if not (args.grid or args.samples):
        raise CliError("nothing to export: give --grid PNG and/or --samples N PNG")
    if bool(args.encoder) != bool(args.dataset):
        raise CliError("--encoder and --dataset go together: the grid spans the dataset's images as the encoder "
                       "places them (without both, it spans the prior's ±3)")
    if args.dataset:
        check_folder(args.dataset)
    quiet_tensorflow()
    dec = ForeignDecoder(args.decoder)
    z = np.zeros((0, dec.latent_dim), np.float32)
    if args.encoder:
        enc = ForeignEncoder(args.encoder, dec.image_shape, dec.latent_dim)
        z, _ = enc.encode(dataset_for(dec, args.dataset).images)
    print(f"latentlab: {dec.description}", file=sys.stderr, flush=True)    # what it is, once all of it fits
    print("wrote " + ", ".join(map(str, _pictures(args, dec, z))))
    return 0


def _pictures(args, dec, z) -> list:
    """The grid over ``z`` (the data's z_mean) and the prior samples, decoded by ``dec`` (any decoder)."""
    import numpy as np

    from latentlab.model import latent

    written = []
    h, w = dec.image_shape[:2]
    scale = getattr(args, "scale", None) or export_scale(h, w)
    if args.grid:
        save_png(args.grid, latent.overview_grid(dec, z, args.grid_size), scale)
        written.append(args.grid)
    if args.samples:
        n = number_arg(int, 1, 10_000, "--samples N")(args.samples[0])
        rng = np.random.default_rng(args.seed)
        images = dec.decode(rng.standard_normal((n, dec.latent_dim)).astype(np.float32))
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        pad = np.ones((rows * cols - n, *images.shape[1:]), np.float32)
        save_png(args.samples[1], latent.tile(np.concatenate([images, pad]).reshape(rows, cols, *images.shape[1:])),
                 scale)
        written.append(args.samples[1])
    return written


def _projector(out_dir, run_folder) -> str:
    """The run's latents as an Embedding Projector folder, with thumbnails when its dataset is still there."""
    import numpy as np

    from latentlab import data as ld
    from latentlab.runs.projector import write_projector

    lat, cfg = run_folder.latents, run_folder.config
    z = np.asarray(lat["z_mean"])
    names = [str(s) for s in lat.get("class_names", [])]
    labels = [names[i] if 0 <= i < len(names) else ("" if i < 0 else str(i))
              for i in np.asarray(lat.get("labels", np.full(len(z), -1))).astype(int)]
    files = [str(p) for p in lat.get("paths", range(len(z)))]
    split = lat.get("split")
    split = None if split is None else ["val" if s else "train" for s in split]
    images, note = None, None
    if not cfg.dataset or not Path(cfg.dataset).is_dir():
        note = (f"thumbnails left out: the run's dataset folder {cfg.dataset or '(none recorded)'} is gone, so the "
                "projector shows the points without their images")
    else:
        ds = ld.load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color, background=cfg.background,
                                fit=cfg.fit)
        where = {str(p): i for i, p in enumerate(ds.paths)}
        missing = sum(f not in where for f in files)
        if missing:
            note = (f"thumbnails left out: {missing:,} of the run's {len(files):,} images are no longer in "
                    f"{cfg.dataset}, so the projector shows the points without their images")
        else:
            images = ds.images[[where[f] for f in files]]
    try:
        out = write_projector(out_dir, z, labels, files, split, images)
    except OSError as e:
        raise CliError(f"cannot write {out_dir} ({e.strerror or e})") from None
    if note:
        print(f"latentlab: note: {note}", file=sys.stderr, flush=True)
    thumbs = "{}x{} thumbnails".format(*out["thumbnail"]) if out["thumbnail"] else "no thumbnails"
    return f"{out_dir} ({out['points']:,} points, {thumbs}; `latentlab tensorboard {out_dir}` shows it)"
