"""``latentlab info``: what an image folder holds: images used, files skipped and why, classes, size."""

from __future__ import annotations

from latentlab.cli.common import add_image_options, check_folder, load_progress

NAME = "info"


def add_parser(sub) -> None:
    i = sub.add_parser(NAME, help="summarise an image folder: images, skipped files, classes, size")
    i.add_argument("folder", help="a folder of images, a .npz/.npy of images, or IDX files (or their folder)")
    add_image_options(i, defaults=True)
    i.add_argument("--no-cache", action="store_true", help="decode every image again")


def run(args) -> int:
    from latentlab.config import parse_image_size
    from latentlab.data import load_folder

    check_folder(args.folder)
    shown = load_progress()
    ds = load_folder(args.folder, image_size=parse_image_size(args.image_size), color=args.color,
                     background=args.background, fit=args.fit, cache=not args.no_cache, progress=shown,
                     on_stage=shown.stage)
    print(ds.summary())
    return 0
