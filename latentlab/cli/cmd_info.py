"""``latentlab info``: what an image folder holds: images used, files skipped and why, classes, size."""

from __future__ import annotations

from latentlab.cli.common import check_folder
from latentlab.config import COLORS

NAME = "info"


def add_parser(sub) -> None:
    i = sub.add_parser(NAME, help="summarise an image folder: images, skipped files, classes, size")
    i.add_argument("folder")
    i.add_argument("--image-size", default=None)
    i.add_argument("--color", choices=COLORS, default="auto")
    i.add_argument("--no-cache", action="store_true", help="decode every image again")


def run(args) -> int:
    from latentlab.config import parse_image_size
    from latentlab.data import load_folder

    check_folder(args.folder)
    ds = load_folder(args.folder, image_size=parse_image_size(args.image_size), color=args.color,
                     cache=not args.no_cache)
    print(ds.summary())
    return 0
