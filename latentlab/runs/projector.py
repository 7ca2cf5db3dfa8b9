"""An Embedding Projector folder for TensorBoard: ``tensorboard --logdir DIR`` shows the latent space
with a thumbnail of each image.

The folder holds::

    tensors.tsv              z_mean of every image, one row per image (the projector's TSV tensor format)
    metadata.tsv             a header, then one row per image: label, file, split
    sprite.png               the thumbnails in one picture, row by row (at most 8192 pixels a side)
    projector_config.pbtxt   TensorBoard's ProjectorConfig naming the three

Every file is written atomically (`latentlab.runs.folder.atomic_write`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from latentlab.runs.folder import atomic_write_bytes, atomic_write_text

__all__ = ["write_projector", "sprite_layout", "SPRITE_MAX_SIDE", "TENSORS_FILE", "METADATA_FILE", "SPRITE_FILE",
           "CONFIG_FILE"]

SPRITE_MAX_SIDE = 8192     # the projector's limit for the sprite image
TENSORS_FILE, METADATA_FILE, SPRITE_FILE = "tensors.tsv", "metadata.tsv", "sprite.png"
CONFIG_FILE = "projector_config.pbtxt"
TENSOR_NAME = "z_mean"


def _cell(text) -> str:
    """A TSV cell: no tabs or line breaks (the projector splits on them), printable."""
    from latentlab.messages import printable

    return " ".join(printable(text).replace("\t", " ").split())


def sprite_layout(n: int, image_shape) -> tuple[int, int, int]:
    """(columns, thumbnail height, thumbnail width) for ``n`` images: a square grid whose side fits in
    `SPRITE_MAX_SIDE`, thumbnails shrunk (keeping their aspect) only when the images do not fit."""
    h, w = int(image_shape[0]), int(image_shape[1])
    cols = max(1, math.ceil(math.sqrt(n)))
    scale = min(1.0, SPRITE_MAX_SIDE / (cols * max(h, w)))
    return cols, max(1, int(h * scale)), max(1, int(w * scale))


def _sprite_png(images: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    n, h, w, c = images.shape
    cols, th, tw = sprite_layout(n, (h, w))
    rows = math.ceil(n / cols)
    mode = "L" if c == 1 else "RGB"
    sheet = Image.new(mode, (cols * tw, rows * th), color=255 if c == 1 else (255, 255, 255))
    for r in range(rows):                       # one strip of thumbnails at a time: memory stays small
        strip = images[r * cols:(r + 1) * cols]
        pix = np.clip(strip * 255.0 + 0.5, 0, 255).astype(np.uint8)
        pix = pix.transpose(1, 0, 2, 3).reshape(h, len(strip) * w, c)
        im = Image.fromarray(pix[..., 0] if c == 1 else pix, mode)
        if (th, tw) != (h, w):
            im = im.resize((len(strip) * tw, th), Image.Resampling.BILINEAR)
        sheet.paste(im, (0, r * th))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue(), (tw, th)


def write_projector(out_dir, z_mean, labels, files, split=None, images=None) -> dict:
    """Write the projector folder ``out_dir`` (made if needed) for the points ``z_mean`` (N, d), their
    ``labels`` (N texts), ``files`` (N texts) and ``split`` (N texts, or None); ``images`` (N, H, W, C) in
    [0, 1], or None for no thumbnails. Returns what was written: points, dims, thumbnail size or None."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig

    z = np.asarray(z_mean, np.float64)
    n = len(z)
    if n == 0:
        raise ValueError("there are no points to project")
    if z.shape[1] == 1:          # the projector needs at least two columns
        z = np.hstack([z, np.zeros((n, 1))])
    for name, col in (("labels", labels), ("files", files), ("split", split), ("images", images)):
        if col is not None and len(col) != n:
            raise ValueError(f"{len(col)} {name} for {n} points")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / TENSORS_FILE, "".join("\t".join(repr(float(v)) for v in row) + "\n" for row in z))
    head = ["label", "file"] + (["split"] if split is not None else [])
    rows = ["\t".join(head)]
    for i in range(n):
        cells = [labels[i], files[i]] + ([split[i]] if split is not None else [])
        rows.append("\t".join(_cell(c) for c in cells))
    atomic_write_text(out / METADATA_FILE, "\n".join(rows) + "\n")
    config = ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name = TENSOR_NAME
    emb.tensor_path = TENSORS_FILE
    emb.metadata_path = METADATA_FILE
    thumb = None
    if images is not None:
        png, thumb = _sprite_png(np.asarray(images, np.float32))
        atomic_write_bytes(out / SPRITE_FILE, png)
        emb.sprite.image_path = SPRITE_FILE
        emb.sprite.single_image_dim.extend(thumb)   # width, height
    elif (out / SPRITE_FILE).exists():
        (out / SPRITE_FILE).unlink()                # an older export's thumbnails belong to other points
    atomic_write_text(out / CONFIG_FILE, text_format.MessageToString(config))
    return {"points": n, "dims": int(np.asarray(z_mean).shape[1]), "thumbnail": thumb}
