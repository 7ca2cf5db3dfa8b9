"""One file to one array, safely: read, decode with Pillow's image decoders only, convert the mode,
resize; a bad file raises :class:`_Skip` with a one-line reason. Also the size and colour settings."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from latentlab.messages import one_line
from latentlab.data import quiet
from latentlab.data.dataset import DatasetError

MAX_IMAGE_SIZE = 64          # default cap, pixels per side (the automatic size is never larger)
MAX_IMAGE_SIDE = 128         # largest side that may be asked for (--image-size)
MIN_IMAGE_SIZE = 8           # smallest allowed side
MAX_PIXELS = 40_000_000      # per image; larger headers are refused before decoding
MAX_FILE_BYTES = 512 * 2**20  # per file
INTERMEDIATE_SIZE = 128      # image_size=None: larger images are pre-shrunk to fit this box while scanning
COLORS = ("auto", "gray", "rgb")
BACKGROUNDS = ("auto", "white", "black", "alpha")
FITS = ("pad", "crop", "stretch")
BLANK_RANGE = 0.02           # brightest − darkest below this after compositing: nearly blank (skipped)
PIL_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP")   # JPEG covers MPO


def _check_color(color: str) -> str:
    c = str(color).lower() if isinstance(color, str) else color
    if c not in COLORS:
        raise DatasetError(f"color must be one of auto, gray, rgb, not {color!r}")
    return c


def _check_background(background: str) -> str:
    b = background.lower() if isinstance(background, str) else background
    if b not in BACKGROUNDS:
        raise DatasetError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    return b


def _check_fit(fit: str) -> str:
    f = fit.lower() if isinstance(fit, str) else fit
    if f not in FITS:
        raise DatasetError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    return f


def _check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_size)):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise DatasetError(f"image size must be a number or (height, width), not {image_size!r}")
    if not all(MIN_IMAGE_SIZE <= s <= MAX_IMAGE_SIDE for s in size):
        raise DatasetError(f"image size {size[0]}x{size[1]} is out of range: each side must be "
                           f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIDE} pixels")
    return size


@dataclass
class _Decoded:
    array: np.ndarray       # (h, w) or (h, w, 3) [+ an alpha channel: (h, w, 2|4) with background "alpha"];
                            # uint8, or float32 in [0, 1] for 16-bit sources (None while still in an old cache's
                            # rows: latentlab.data.load gives it its array before it is resized or stored)
    gray: bool
    size: tuple[int, int]   # original (height, width)
    transparent: bool = False   # the source had pixels that are not fully opaque
    background: str = ""        # what its transparency was composited on: "white", "black", "alpha" (kept)
    pad: tuple = ()             # the pad colour for fit "pad", one value per channel of ``array`` (its scale)
    flat: bool = False          # one flat colour in the source (used, counted in the report)
    digest: bytes = b""         # the file's content hash (identical files are used once)
    # an unchanged file whose pixels are still in an old cache (latentlab.data.load): its row there, and its
    # line of the old cache's per-file table, written back as it is
    cached_row: int | None = None
    cached_meta: list | None = None

    def meta(self) -> tuple:
        return (self.gray, self.size, self.transparent, self.background, self.pad, self.flat, self.digest)

    @classmethod
    def from_meta(cls, array: np.ndarray, meta: tuple) -> "_Decoded":
        return cls(array, *meta)


class _Skip(Exception):
    pass


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)   # a FIFO never blocks


def _read_file(path: str, size: int) -> bytes:
    """The whole file (``size`` from the scan, a hint: a file that grew is read to its end, capped
    just past MAX_FILE_BYTES). os.read on a descriptor: half the time of open().read() per small file."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        chunks, total = [], 0
        while total <= MAX_FILE_BYTES:
            b = os.read(fd, max(size + 1 - total, 1 << 16))
            if not b:
                break
            chunks.append(b)
            total += len(b)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


_BOMB_RE = re.compile(r"\((\d+) pixels\)")


def _resample(src_hw, dst_hw):
    down = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
    return Image.Resampling.LANCZOS if down else Image.Resampling.BILINEAR


def _resize_array(arr: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if arr.shape[:2] == tuple(size_hw):
        return arr
    if arr.ndim == 3 and (arr.dtype != np.uint8 or arr.shape[2] == 1):   # (float) channels one at a time
        return np.stack([_resize_array(np.ascontiguousarray(arr[..., k]), size_hw) for k in range(arr.shape[2])],
                        axis=-1)
    im = Image.fromarray(arr)
    out = im.resize((size_hw[1], size_hw[0]), _resample(arr.shape[:2], size_hw), reducing_gap=3.0)
    res = np.asarray(out)
    if arr.dtype == np.float32:
        res = np.clip(res, 0.0, 1.0)
    return res


def _fit_array(arr: np.ndarray, size_hw: tuple[int, int], fit: str, pad=()) -> np.ndarray:
    """``arr`` brought to ``size_hw``: "stretch" resizes (the aspect changes), "pad" scales it to fit
    inside and fills the rest with ``pad`` (one value per channel; centred), "crop" scales it to cover
    and cuts the centre."""
    H, W = int(size_hw[0]), int(size_hw[1])
    h, w = arr.shape[:2]
    if (h, w) == (H, W) or fit == "stretch":
        return _resize_array(arr, (H, W))
    if fit == "pad":
        s = min(H / h, W / w)
        nh, nw = min(H, max(1, round(h * s))), min(W, max(1, round(w * s)))
        inner = _resize_array(arr, (nh, nw))
        fill = np.asarray(pad if len(pad) else [0.0] * (arr.shape[2] if arr.ndim == 3 else 1), np.float64)
        if arr.dtype == np.uint8:
            fill = np.clip(np.round(fill), 0, 255)
        out = np.empty((H, W) + arr.shape[2:], arr.dtype)
        out[...] = fill.astype(arr.dtype) if arr.ndim == 3 else fill[0].astype(arr.dtype)
        top, left = (H - nh) // 2, (W - nw) // 2
        out[top:top + nh, left:left + nw] = inner
        return out
    s = max(H / h, W / w)   # crop
    nh, nw = max(H, round(h * s)), max(W, round(w * s))
    big = _resize_array(arr, (nh, nw))
    top, left = (nh - H) // 2, (nw - W) // 2
    return np.ascontiguousarray(big[top:top + H, left:left + W])


def _composite(color: np.ndarray, alpha: np.ndarray, background: int) -> np.ndarray:
    """``color`` (h, w, c) uint8 over a flat ``background`` (0 black .. 255 white) through ``alpha``."""
    a = alpha.astype(np.uint16)[..., None]
    out = (color.astype(np.uint16) * a + np.uint16(background) * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _composite_on_black(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return _composite(color, alpha, 0)


def _content_luminance(color: np.ndarray, alpha: np.ndarray) -> float | None:
    """The mean luminance (0..255) of the visible pixels, weighted by their opacity; None when nothing
    is visible (every pixel fully transparent)."""
    a = alpha.astype(np.float64)
    total = a.sum()
    if total <= 0:
        return None
    lum = color[..., 0].astype(np.float64) if color.shape[-1] == 1 else (
        color[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]))
    return float((lum * a).sum() / total)


def _border_colour(arr: np.ndarray) -> tuple:
    """The median colour of an image's outermost pixels (what padding should look like: a photo on white
    pads white, MNIST-like digits on black pad black)."""
    edge = np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]]) if arr.shape[0] > 1 else arr[0]
    med = np.median(edge.reshape(len(edge), -1), axis=0)
    return tuple(float(v) for v in med)


def _decode(path: str, file_size: int, target: tuple[int, int] | None, color: str, background: str = "auto",
            fit: str = "pad") -> _Decoded:
    """Decode one file into a (possibly resized) array; raises _Skip(reason) for a bad file, with what
    the image library said about it folded in (see latentlab.data.quiet)."""
    with quiet.capture() as notes:
        try:
            return _decode_file(path, file_size, target, color, background, fit)
        except _Skip as e:
            if notes:
                raise _Skip(quiet.fold(str(e), notes)) from None
            raise


def _unidentified(data: bytes) -> str:
    """Why Pillow could not open ``data``: when its first bytes are one of our formats' signature, that
    format's own complaint (Image.open hides it), else "not an image"."""
    for fmt in PIL_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        try:
            if factory is None or accept is None or not accept(data[:16]):
                continue
        except Exception:  # noqa: BLE001  (an accept() that cannot take a file this short)
            continue
        try:
            factory(io.BytesIO(data), "").close()
        except Exception as e:  # noqa: BLE001  (SyntaxError, struct.error, ...: the plugin's words)
            code = _tiff_compression(data) if fmt == "TIFF" else None
            if code is not None:
                return f"not a readable TIFF file: compression {code} is not supported"
            if isinstance(e.__cause__ or e, (struct.error, EOFError, IndexError)):   # (Pillow wraps them)
                return f"not a readable {fmt} file: its header is cut short or damaged"
            return f"not a readable {fmt} file: {one_line(e, 160)}"
        break
    return "not an image (unknown format or corrupt header)"


_JPEG_PROCESSES = {0xC3: "lossless", 0xC5: "differential sequential", 0xC6: "differential progressive",
                   0xC7: "differential lossless", 0xCB: "lossless (arithmetic)", 0xCD: "differential sequential (arithmetic)",
                   0xCE: "differential progressive (arithmetic)", 0xCF: "differential lossless (arithmetic)"}


def _unsupported_jpeg(data: bytes) -> str | None:
    """A reason when the JPEG's frame header (SOFn, found by walking the segments before the scan) names
    a coding process the decoder lacks (lossless, hierarchical); None otherwise."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:        # start of scan: no unusual frame header before it
            return None
        if marker in _JPEG_PROCESSES:
            return (f"{_JPEG_PROCESSES[marker]} JPEG (SOF{marker - 0xC0}) is not supported: "
                    "save it as an ordinary JPEG or as PNG")
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def _tiff_compression(data: bytes) -> int | None:
    """A TIFF's compression code when Pillow has no decoder for it, else None."""
    from PIL import TiffImagePlugin

    with contextlib.suppress(Exception):   # (its warnings are ignored: quiet.install)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
        fp = io.BytesIO(data)
        fp.seek(ifd.next)
        ifd.load(fp)
        code = ifd.get(TiffImagePlugin.COMPRESSION, 1)
        return None if code in TiffImagePlugin.COMPRESSION_INFO else int(code)
    return None


def _upright(im):
    """The image as a camera meant it: EXIF orientation 2-8 applied (a phone photo comes out upright,
    as in every photo viewer); an unreadable EXIF block leaves the pixels as stored."""
    try:
        if im.format == "TIFF":   # the tag of its own directory
            orientation = im.tag_v2.get(ExifTags.Base.Orientation, 1)
        elif not any(k in im.info for k in ("exif", "xmp", "XML:com.adobe.xmp")):
            return im             # no EXIF or XMP block (most files): skip parsing one (~10 µs an image)
        else:
            orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001  (damaged EXIF: the pixels are still good)
        return im
    if orientation not in range(2, 9):
        return im
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001
        return im


def _decode_file(path: str, file_size: int, target: tuple[int, int] | None, color: str, background: str = "auto",  # noqa: C901
                 fit: str = "pad") -> _Decoded:
    if file_size == 0:
        raise _Skip("empty file (0 bytes)")
    if file_size > MAX_FILE_BYTES:
        raise _Skip(f"file too large ({file_size / 2**20:.0f} MB; limit {MAX_FILE_BYTES // 2**20} MB)")
    try:
        data = _read_file(path, file_size)
    except PermissionError:
        raise _Skip("permission denied (cannot read the file)") from None
    except OSError as e:
        raise _Skip(f"cannot read the file: {one_line(e, 160)}") from None
    if not data:
        raise _Skip("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:   # grew since the scan
        raise _Skip(f"file too large (over {MAX_FILE_BYTES // 2**20} MB)")
    try:
        im = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise _Skip(_unidentified(data)) from None
    except Image.DecompressionBombError as e:
        m = _BOMB_RE.search(str(e))
        claim = f"claims {int(m.group(1)):,} pixels" if m else "too many pixels"
        raise _Skip(f"too large: {claim} (limit {MAX_PIXELS:,}; possible decompression bomb)") from None
    except Exception as e:  # noqa: BLE001  (plugins raise SyntaxError, struct.error, ...)
        if "truncated" in str(e).lower():
            raise _Skip("truncated file") from None
        raise _Skip(f"not a readable image: {one_line(e, 160)}") from None
    with im:
        w, h = im.size
        if w < 1 or h < 1:
            raise _Skip(f"invalid image size {w}x{h}")
        if w * h > MAX_PIXELS:
            raise _Skip(f"too large: {w}x{h} pixels (limit {MAX_PIXELS:,}; possible decompression bomb)")
        if im.mode == "F":
            raise _Skip("32-bit floating-point image (mode F) is not supported: save it as 8- or 16-bit")
        want = target or (INTERMEDIATE_SIZE, INTERMEDIATE_SIZE)
        if im.format == "JPEG" and (w > 2 * want[1] or h > 2 * want[0]):
            with contextlib.suppress(Exception):
                im.draft(None, (2 * want[1], 2 * want[0]))   # decode at a reduced scale: much faster
        try:
            im.load()
        except Image.DecompressionBombError:
            raise _Skip(f"too large: {w}x{h} pixels (possible decompression bomb)") from None
        except OSError as e:
            msg = str(e)
            if "truncated" in msg or "unexpected end" in msg.lower():
                raise _Skip("truncated file") from None
            unsupported = _unsupported_jpeg(data) if im.format in ("JPEG", "MPO") else None
            if unsupported:
                raise _Skip(unsupported) from None
            if "broken data stream" in msg:   # the codec's "broken" status: damaged compressed data
                raise _Skip("corrupt image data: the decoder found broken data") from None
            raise _Skip(f"corrupt image data: {one_line(e, 160)}") from None
        except MemoryError:
            raise _Skip("too large to decode (out of memory)") from None
        except Exception as e:  # noqa: BLE001
            raise _Skip(f"corrupt image data: {one_line(e, 160)}") from None
        upright = _upright(im)
        h, w = upright.height, upright.width
        try:
            d = _to_array(upright, color, background)
        except _Skip:
            raise
        except Exception as e:  # noqa: BLE001
            raise _Skip(f"unsupported image mode {im.mode}: {one_line(e, 160)}") from None
    arr = d.array
    if target is not None:
        arr = _fit_array(arr, target, fit, d.pad)
    elif max(arr.shape[:2]) > INTERMEDIATE_SIZE:   # keep memory small until the common size is known
        s = INTERMEDIATE_SIZE / max(arr.shape[:2])
        arr = _resize_array(arr, (max(1, round(arr.shape[0] * s)), max(1, round(arr.shape[1] * s))))
    d.array = np.ascontiguousarray(arr)
    d.size = (h, w)
    d.digest = hashlib.blake2b(data, digest_size=16).digest()
    return d


def _to_array(im, color: str, background: str = "auto") -> _Decoded:  # noqa: C901
    """A loaded PIL image as a :class:`_Decoded` (size and digest filled in by the caller): uint8 (h,w) /
    (h,w,3), or float32 (h,w) for 16-bit; transparency composited on the background ``background``
    chooses ("auto": per image, white behind dark content, black behind light content), or kept as an
    alpha channel ("alpha"). Raises _Skip for an image that comes out nearly blank."""
    mode = im.mode
    alpha: np.ndarray | None = None
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode == "L":
        arr, gray = np.asarray(im), True
    elif mode.startswith("I"):  # I;16, I;16B, I;16L, I (32-bit int): 16-bit data scaled by 1/65535
        arr = np.asarray(im).astype(np.float32) / _sample_max(im)
        np.clip(arr, 0.0, 1.0, out=arr)
        arr, gray = arr.astype(np.float32, copy=False), True
    elif mode in ("LA", "La"):
        a = np.asarray(im.convert("LA"))
        arr, alpha, gray = a[..., 0], a[..., 1], True
    else:
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in mode else "RGB")   # CMYK, YCbCr, LAB, HSV, RGBX, RGBa...
        a = np.asarray(im)
        arr = a[..., :3]
        if a.shape[-1] == 4:
            alpha = a[..., 3]
        gray = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
        if gray:
            arr = arr[..., 0]
    if color == "gray" and not gray:
        arr, gray = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).convert("L")), True
    transparent = alpha is not None and bool((alpha < 255).any())
    if not transparent:
        arr = np.ascontiguousarray(arr)
        flat = bool(arr.max() - arr.min() < BLANK_RANGE * (1.0 if arr.dtype != np.uint8 else 255))
        pad = (0.0,) * (1 if arr.ndim == 2 else arr.shape[2]) if background == "black" else (
            (1.0 if arr.dtype != np.uint8 else 255.0,) * (1 if arr.ndim == 2 else arr.shape[2])
            if background == "white" else _border_colour(arr))
        return _Decoded(arr, gray, arr.shape[:2], False, "", pad, flat)
    assert alpha is not None   # (transparent)
    color3 = arr[..., None] if arr.ndim == 2 else arr
    if not (alpha > 0).any():
        raise _Skip("fully transparent: no pixel is visible (nothing to learn)")
    if background == "alpha":
        out = np.concatenate([color3, alpha[..., None]], axis=-1)
        visible = color3[alpha > 0]
        if int(alpha.max()) - int(alpha.min()) < BLANK_RANGE * 255 and int(visible.max()) - int(visible.min()) < BLANK_RANGE * 255:
            raise _Skip("nearly blank: one flat colour at one opacity")
        return _Decoded(np.ascontiguousarray(out), gray, arr.shape[:2], True, "alpha", (0.0,) * out.shape[-1])
    if background == "auto":
        lum = _content_luminance(color3, alpha)
        bg = "white" if lum is not None and lum < 128 else "black"   # (some pixel is visible: checked above)
    else:
        bg = background
    value = 255 if bg == "white" else 0
    out = _composite(color3, alpha, value)
    spread = int(out.max()) - int(out.min())
    if spread < BLANK_RANGE * 255:
        other = "black" if bg == "white" else "white"
        raise _Skip(f"nearly blank after its transparency was filled with {bg} (brightest − darkest "
                    f"{spread / 255:.3f}): its visible pixels are {bg} too; try --background {other} or alpha")
    out = out[..., 0] if arr.ndim == 2 else out
    return _Decoded(np.ascontiguousarray(out), gray, arr.shape[:2], True, bg,
                    (float(value),) * (1 if out.ndim == 2 else out.shape[2]))


def _sample_max(im) -> float:
    """The largest value of a high-bit-depth image's samples: 65535, or 4095 for a 12-bit TIFF (and
    2**n - 1 for any n < 16 its header gives), so that white is 1.0 whatever the depth."""
    bits = getattr(im, "tag_v2", {}).get(258) if im.format == "TIFF" else None
    bits = max(bits) if isinstance(bits, tuple) and bits else bits
    return float(2 ** bits - 1) if isinstance(bits, int) and 8 < bits < 16 else 65535.0


def _common_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (h, w) (ties: larger area first, then taller), capped at MAX_IMAGE_SIZE per
    side keeping the aspect ratio, each side at least MIN_IMAGE_SIZE."""
    return _choose_size(sizes)[0]


def _choose_size(sizes: list[tuple[int, int]]) -> tuple[tuple[int, int], str]:
    """(:func:`_common_size`, why: one clause for people)."""
    counts = Counter(sizes)
    h, w = max(counts, key=lambda s: (counts[s], s[0] * s[1], s[0]))
    share = counts[(h, w)] / max(1, len(sizes))
    scale = min(1.0, MAX_IMAGE_SIZE / max(h, w))
    out = (min(MAX_IMAGE_SIZE, max(MIN_IMAGE_SIZE, round(h * scale))),
           min(MAX_IMAGE_SIZE, max(MIN_IMAGE_SIZE, round(w * scale))))
    why = f"the most common size, {h}×{w} ({share:.0%} of the images)"
    if scale < 1.0:
        why += (f", scaled down to the automatic limit of {MAX_IMAGE_SIZE} pixels a side "
                f"(ask for up to {MAX_IMAGE_SIDE} with --image-size)")
    elif out != (h, w):
        why += f", raised to the {MIN_IMAGE_SIZE}-pixel minimum"
    return out, why


def _size_spread(sizes: list[tuple[int, int]]) -> str:
    """One line on the spread of the sources' sizes and aspect ratios."""
    if not sizes:
        return ""
    hs = np.array([s[0] for s in sizes])
    ws = np.array([s[1] for s in sizes])
    aspect = ws / hs
    distinct = len(set(sizes))
    if distinct == 1:
        return f"all {len(sizes):,} images are {hs[0]}×{ws[0]} (height×width)"
    return (f"{distinct:,} different sizes, {int(hs.min())}–{int(hs.max())} high and {int(ws.min())}–{int(ws.max())} "
            f"wide; aspect (width/height) {aspect.min():.2f}–{aspect.max():.2f}, median {np.median(aspect):.2f}, "
            f"{int((np.abs(np.log(aspect)) > np.log(1.05)).sum()):,} not square")


def _decode_chunk(root: str, items: list[tuple[str, int]], size, color: str, background: str = "auto",
                  fit: str = "pad") -> list:
    """Decode ``items`` [(relpath, file size)] in order: a :class:`_Decoded` or a skip reason (str)
    for each. Runs in a worker process (module level so it pickles) or on a thread."""
    out: list = []
    quiet.install()   # libtiff's and Pillow's messages: to the decoding thread, not the terminal
    for rel, fsize in items:
        try:
            out.append(_decode(os.path.join(root, rel), fsize, size, color, background, fit))
        except _Skip as e:
            out.append(str(e))
    return out
