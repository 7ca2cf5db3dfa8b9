"""Real-world image oddities for the bad-input corpus, made here rather than committed as binaries.

The kinds come from other image tools' own test suites and fuzzers: PngSuite (bit depths 1-16,
palettes with tRNS, Adam7 interlacing, broken CRCs and lengths), libtiff's and Pillow's TIFF tests
(12- and 16-bit, big-endian, tiles, predictors, unsupported compressions, too many samples, IFD
loops), libjpeg-turbo's (progressive, arithmetic coding, CMYK, restart markers, odd precision),
Pillow's BMP suite (OS/2 and v4/v5 headers, bit fields, RLE, top-down) and OSS-Fuzz reports
(absurd sizes, truncation, bit flips, wrong lengths). Pillow writes what it can; the rest is written
byte by byte below (``png_raw``, ``tiff_raw``, ``bmp_raw``). Two arithmetic-coded JPEGs, which no
Python library writes, are embedded (a few hundred bytes each, made with libjpeg-turbo 2.1.5's
``cjpeg -arithmetic`` from `pattern_rgb`).
"""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib

import numpy as np

# -- pixels the tests can check --------------------------------------------------------------------------


def pattern_gray(h: int = 16, w: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 16 + y * 3) % 256).astype(np.uint8)


def pattern_rgb(h: int = 16, w: int = 16) -> np.ndarray:
    g = pattern_gray(h, w)
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([g, 255 - g, (x * y) % 256]).astype(np.uint8)


def pattern_asymmetric(h: int = 12, w: int = 20) -> np.ndarray:
    """A picture no flip or rotation maps onto itself: for EXIF orientation."""
    img = np.zeros((h, w), np.uint8)
    img[: h // 3, : w // 4] = 255        # a bright block top-left
    img[-2:, :] = 120                    # a grey bar along the bottom
    img[:, -1] = 60                      # a dark line down the right edge
    return img


# -- PNG, byte by byte ----------------------------------------------------------------------------------
def png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _pack_row(samples: np.ndarray, bit_depth: int) -> bytes:
    s = samples.reshape(-1)
    if bit_depth == 16:
        return s.astype(">u2").tobytes()
    if bit_depth == 8:
        return s.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    padded = np.zeros(-(-len(s) // per_byte) * per_byte, np.uint8)
    padded[: len(s)] = s
    padded = padded.reshape(-1, per_byte)
    out = np.zeros(len(padded), np.uint8)
    for i in range(per_byte):
        out |= (padded[:, i] << (8 - bit_depth * (i + 1))).astype(np.uint8)
    return out.tobytes()


_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_raw(samples: np.ndarray, bit_depth: int, color_type: int, *, interlace: bool = False,
            before_idat: tuple = (), after_idat: tuple = ()) -> bytes:
    """A PNG of ``samples`` (h, w) or (h, w, channels) as written, filter 0 on every row."""
    h, w = samples.shape[:2]
    samples = samples.reshape(h, w, -1)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in _ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += b"".join(b"\0" + _pack_row(row, bit_depth) for row in sub)
    else:
        raw = b"".join(b"\0" + _pack_row(row, bit_depth) for row in samples)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(before_idat)
            + png_chunk(b"IDAT", zlib.compress(raw)) + b"".join(after_idat) + png_chunk(b"IEND", b""))


# -- TIFF, byte by byte ---------------------------------------------------------------------------------
SHORT, LONG, RATIONAL, DOUBLE = 3, 4, 5, 12
_TYPE_SIZE = {SHORT: 2, LONG: 4, RATIONAL: 8, DOUBLE: 8}
_TYPE_CODE = {SHORT: "H", LONG: "I", RATIONAL: "II", DOUBLE: "d"}


def tiff_raw(width: int, height: int, data, *, bps: int = 8, spp: int = 1, photometric: int = 1,
             compression: int = 1, order: str = "<", tile: tuple[int, int] | None = None,
             extra: dict | None = None, next_ifd: int = 0) -> bytes:
    """A one-IFD classic TIFF: ``data`` is the strip (bytes) or the list of tiles, as stored."""
    chunks = data if isinstance(data, list) else [data]
    tags = {256: (LONG, [width]), 257: (LONG, [height]), 258: (SHORT, [bps] * spp), 259: (SHORT, [compression]),
            262: (SHORT, [photometric]), 277: (SHORT, [spp]), 284: (SHORT, [1])}
    off_tag, count_tag = (324, 325) if tile else (273, 279)
    if tile:
        tags[322], tags[323] = (SHORT, [tile[0]]), (SHORT, [tile[1]])
    else:
        tags[278] = (LONG, [height])
    tags[off_tag] = (LONG, [0] * len(chunks))
    tags[count_tag] = (LONG, [len(c) for c in chunks])
    tags.update(extra or {})
    n = len(tags)
    ifd_end = 8 + 2 + 12 * n + 4

    def value_bytes(kind, values):
        return b"".join(struct.pack(order + _TYPE_CODE[kind], *(v if isinstance(v, tuple) else (v,)))
                        for v in values)

    overflow_size = sum(-(-len(value_bytes(k, v)) // 2) * 2 for k, v in tags.values() if len(value_bytes(k, v)) > 4)
    pos = ifd_end + overflow_size
    offsets = []
    for c in chunks:
        offsets.append(pos)
        pos += len(c)
    tags[off_tag] = (LONG, offsets)
    entries, overflow = b"", b""
    for tag in sorted(tags):
        kind, values = tags[tag]
        vb = value_bytes(kind, values)
        count = len(values)
        if len(vb) <= 4:
            field = vb.ljust(4, b"\0")
        else:
            field = struct.pack(order + "I", ifd_end + len(overflow))
            overflow += vb + (b"\0" if len(vb) % 2 else b"")
        entries += struct.pack(order + "HHI", tag, kind, count) + field
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8)
    return head + struct.pack(order + "H", n) + entries + struct.pack(order + "I", next_ifd) + overflow + b"".join(chunks)


def pack_12bit(values: np.ndarray) -> bytes:
    """12-bit samples packed big-endian, two per three bytes (each row padded to a byte)."""
    out = bytearray()
    for row in values.astype(np.uint16):
        bits = "".join(f"{v:012b}" for v in row)
        bits += "0" * (-len(bits) % 8)
        out += int(bits, 2).to_bytes(len(bits) // 8, "big")
    return bytes(out)


# -- BMP, byte by byte ----------------------------------------------------------------------------------
def bmp_raw(width: int, height: int, bpp: int, rows: list[bytes], *, header: int = 40, compression: int = 0,
            palette: list[tuple[int, int, int]] = (), masks: tuple | None = None, top_down: bool = False,
            colors_used: int = 0, pixel_data: bytes | None = None) -> bytes:
    """A BMP with a BITMAPCOREHEADER (12), INFOHEADER (40), V4 (108) or V5 (124) header. ``rows`` are the
    pixel rows top first, unpadded; ``pixel_data`` (RLE) replaces them."""
    if pixel_data is None:
        stride = -(-width * bpp // 32) * 4
        ordered = rows if top_down else rows[::-1]
        pixel_data = b"".join(r.ljust(stride, b"\0") for r in ordered)
    if header == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        pal = b"".join(bytes((b, g, r)) for r, g, b in palette)
    else:
        h = -height if top_down else height
        dib = struct.pack("<IiiHHIIiiII", header, width, h, 1, bpp, compression, len(pixel_data), 2835, 2835,
                          colors_used, 0)
        if header >= 108:
            m = masks or (0, 0, 0, 0)
            dib += struct.pack("<IIII", *m) + b"sRGB" + b"\0" * 36 + b"\0" * 12
            if header == 124:
                dib += struct.pack("<IIII", 4, 0, 0, 0)
        elif masks:
            dib += struct.pack("<III", *masks[:3])   # BI_BITFIELDS after a 40-byte header
        pal = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    offset = 14 + len(dib) + len(pal)
    return b"BM" + struct.pack("<IHHI", offset + len(pixel_data), 0, 0, offset) + dib + pal + pixel_data


def rle8(rows: list[bytes]) -> bytes:
    """BMP RLE8 of 8-bit rows (bottom row first, as BMP stores them)."""
    out = bytearray()
    for row in rows[::-1]:
        i = 0
        while i < len(row):
            j = i
            while j < len(row) and row[j] == row[i] and j - i < 255:
                j += 1
            out += bytes((j - i, row[i]))
            i = j
        out += b"\0\0"
    return bytes(out + b"\0\1")


# -- JPEG --------------------------------------------------------------------------------------------------
# libjpeg-turbo 2.1.5's cjpeg, from pattern_rgb() as a PPM: -arithmetic -quality 90, and -arithmetic -progressive
# -quality 90 (SOF9 and SOF10: arithmetic-coded sequential and progressive)
ARITHMETIC_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU"
    "FRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBT/yQARCAAQABADASIAAhEBAxEB/8wACgAQEAUBEBEF/9oADAMBAAIRAxEAPwDQp5jFzib71Ne/5LvxMYHqdar0szVW"
    "9TfrUgMyo4uRfsRDFDLVnQkSE00OudUixCvVKa7EZOIJxX9j8OBZ0Y3vAacudiX1g/Jepbs7eOf9kTydaRhhYWm/0yVxMealUwlA"
    "bL4lMD7ZjVLwX5Hok8PsuBkS/9k=")
ARITHMETIC_PROGRESSIVE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU"
    "FRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBT/ygARCAAQABADASIAAhEBAxEB/8wABgAQARD/2gAMAwEAAhADEAAAAc2tz0bu51Zq8P/MAAQQBf/aAAgBAQABBQI5"
    "Kd/Hs9ViwaQNhgH/zAAEEQX/2gAIAQMBAT8BFnbJ7jc/dUgQEQSsED/kwP/MAAQRBf/aAAgBAgEBPwEWXGLvG5NI/8wABBAF/9oA"
    "CAEBAAY/AvKfqDzbXUBvc4i0gP/MAAQQBf/aAAgBAQABPyGsAEcgypXHsLcEjshOvWD/2gAMAwEAAgADAAAAEP/MAAQRBf/aAAgB"
    "AwEBPxCV9ZS7MpHGqC0nQv/MAAQRBf/aAAgBAgEBPxDj42Uqe//MAAQQBf/aAAgBAQABPxCrWGPYEWIFxhbgjjyMfJUFemvajcj/"
    "2Q==")


# -- damage --------------------------------------------------------------------------------------------------
def bit_flips(data: bytes, seed: int, n: int = 4, skip: int = 8) -> bytes:
    """``n`` single-bit flips past the first ``skip`` bytes (the signature stays, so the format's own
    decoder meets the damage)."""
    rng = random.Random(seed)
    b = bytearray(data)
    for _ in range(n):
        i = rng.randrange(skip, len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def image_bytes(img, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


# -- the corpus --------------------------------------------------------------------------------------------
class Oddity:
    """One file: ``expect`` is "load", "skip" or "either"; a skip's reason must contain ``reason_has``."""

    def __init__(self, name: str, data: bytes, expect: str, why: str, reason_has: str | None = None):
        self.name, self.data, self.expect, self.why, self.reason_has = name, data, expect, why, reason_has


# EXIF orientation n is undone by Pillow's exif_transpose with _UNDO[n]; a file stored as
# upright.transpose(_STORE[n]) with orientation n therefore shows ``upright``
_STORE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_90",
          7: "TRANSVERSE", 8: "ROTATE_270"}


def exif_with_orientation(n: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = n
    return exif.tobytes()


def stored_for_orientation(upright: np.ndarray, n: int) -> np.ndarray:
    from PIL import Image

    if n == 1:
        return upright
    return np.asarray(Image.fromarray(upright).transpose(getattr(Image.Transpose, _STORE[n])))


def _formats(g, rgb, asy) -> list[Oddity]:
    from PIL import Image

    o = []
    L = lambda name, data, why: o.append(Oddity(name, data, "load", why))  # noqa: E731
    # PNG (PngSuite's kinds): bit depths, palettes and tRNS, 16-bit colour, Adam7, stray chunks
    L("png-gray-1bit.png", png_raw((g > 127).astype(np.uint8), 1, 0), "1-bit gray PNG")
    L("png-gray-2bit.png", png_raw(g >> 6, 2, 0), "2-bit gray PNG")
    L("png-gray-4bit.png", png_raw(g >> 4, 4, 0), "4-bit gray PNG")
    L("png-gray-16bit.png", png_raw(g.astype(np.uint16) * 257, 16, 0), "16-bit gray PNG (written by hand)")
    L("png-rgb-16bit.png", png_raw(rgb.astype(np.uint16) * 257, 16, 2), "48-bit RGB PNG")
    L("png-rgba-16bit.png", png_raw(np.dstack([rgb, g]).astype(np.uint16) * 257, 16, 6), "64-bit RGBA PNG")
    L("png-la-16bit.png", png_raw(np.dstack([g, 255 - g]).astype(np.uint16) * 257, 16, 4), "16-bit gray+alpha PNG")
    L("png-adam7-rgb.png", png_raw(rgb, 8, 2, interlace=True), "Adam7-interlaced RGB PNG")
    L("png-adam7-gray16.png", png_raw(g.astype(np.uint16) * 257, 16, 0, interlace=True), "interlaced 16-bit PNG")
    plte = png_chunk(b"PLTE", bytes(sum(([i * 16, 255 - i * 16, i * 8] for i in range(16)), [])))
    L("png-palette-4bit.png", png_raw(g >> 4, 4, 3, before_idat=(plte,)), "4-bit palette PNG")
    L("png-palette-trns.png", png_raw(g >> 4, 4, 3, before_idat=(plte, png_chunk(b"tRNS", bytes(range(0, 256, 16))))),
      "palette PNG with per-entry alpha (tRNS)")
    L("png-palette-short.png", png_raw(g, 8, 3, before_idat=(png_chunk(b"PLTE", b"\0\0\0\xff\xff\xff"),)),
      "palette PNG whose pixels index past its 2-entry palette")
    L("png-rgb-colorkey.png", png_raw(rgb, 8, 2, before_idat=(png_chunk(b"tRNS", struct.pack(">HHH", *rgb[0, 0])),)),
      "RGB PNG with a transparent colour key (tRNS)")
    L("png-gray-colorkey.png", png_raw(g, 8, 0, before_idat=(png_chunk(b"tRNS", struct.pack(">H", int(g[0, 0]))),)),
      "gray PNG with a transparent gray key")
    L("png-palette-pillow-trns.png", image_bytes(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=8),
                                                  "PNG", transparency=0), "palette PNG, index 0 transparent")
    L("png-no-iend.png", png_raw(g, 8, 0)[:-12], "PNG without its IEND chunk")
    L("png-after-iend.png", png_raw(g, 8, 0) + b"trailing garbage" * 8, "PNG with bytes after IEND")
    L("png-1x1.png", png_raw(np.array([[128]], np.uint8), 8, 0), "1x1 PNG")
    L("png-1x4800.png", png_raw(np.tile(g[:1], (1, 300)), 8, 0), "1x4800 PNG (one row)")
    # multi-frame: the first frame is the image
    frames = [Image.fromarray(np.roll(rgb, i, 1)) for i in range(3)]
    L("apng.png", image_bytes(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50), "APNG, 3 frames")
    L("apng-default-hidden.png", image_bytes(frames[0], "PNG", save_all=True, append_images=frames[1:],
                                             default_image=True), "APNG whose default image is not a frame")
    pframes = [Image.fromarray(np.roll(g, i, 0)).convert("P") for i in range(3)]
    L("gif-disposal.gif", image_bytes(pframes[0], "GIF", save_all=True, append_images=pframes[1:], disposal=2,
                                      loop=0), "animated GIF, disposal 2")
    L("gif-transparent.gif", image_bytes(Image.fromarray(g).convert("P"), "GIF", transparency=0), "GIF, index 0 clear")
    L("mpo.jpg", image_bytes(Image.fromarray(rgb), "MPO", save_all=True, append_images=[Image.fromarray(255 - rgb)]),
      "MPO (two JPEG pictures in one file, as from a 3D camera)")
    L("tiff-multipage.tif", image_bytes(Image.fromarray(g), "TIFF", save_all=True, append_images=[Image.fromarray(255 - g)]),
      "two-page TIFF")
    # TIFF (libtiff's and Pillow's kinds)
    L("tiff-12bit.tif", tiff_raw(16, 16, pack_12bit(g.astype(np.uint16) * 16), bps=12), "12-bit gray TIFF")
    L("tiff-16bit.tif", tiff_raw(16, 16, (g.astype(np.uint16) * 257).astype("<u2").tobytes(), bps=16), "16-bit TIFF")
    L("tiff-16bit-mm.tif", tiff_raw(16, 16, (g.astype(np.uint16) * 257).astype(">u2").tobytes(), bps=16, order=">"),
      "16-bit big-endian TIFF")
    L("tiff-rgb-16bit.tif", tiff_raw(16, 16, (rgb.astype(np.uint16) * 257).astype("<u2").tobytes(), bps=16, spp=3,
                                     photometric=2), "48-bit RGB TIFF")
    L("tiff-mm.tif", tiff_raw(16, 16, g.tobytes(), order=">"), "big-endian (Motorola) TIFF")
    L("tiff-tiled.tif", tiff_raw(32, 32, [g.tobytes()] * 4, tile=(16, 16)), "tiled TIFF (four 16x16 tiles)")
    L("tiff-cmyk.tif", tiff_raw(16, 16, np.dstack([g, 255 - g, g // 2, g // 4]).tobytes(), spp=4, photometric=5),
      "CMYK TIFF")
    L("tiff-miniswhite.tif", tiff_raw(16, 16, g.tobytes(), photometric=0), "TIFF, 0 is white")
    L("tiff-palette.tif", tiff_raw(16, 16, g.tobytes(), photometric=3, extra={320: (SHORT, list(range(0, 65536, 256)) * 3)}),
      "palette TIFF")
    L("tiff-5-samples.tif", tiff_raw(16, 16, np.dstack([rgb, g, g]).tobytes(), spp=5, photometric=2,
                                     extra={338: (SHORT, [0, 0])}), "RGB TIFF with two extra samples")
    L("tiff-lzw-predictor.tif", image_bytes(Image.fromarray(rgb), "TIFF", compression="tiff_lzw", tiffinfo={317: 2}),
      "LZW TIFF with horizontal predictor")
    L("tiff-jpeg.tif", image_bytes(Image.fromarray(rgb), "TIFF", compression="jpeg"), "JPEG-compressed TIFF")
    L("tiff-packbits.tif", image_bytes(Image.fromarray(g), "TIFF", compression="packbits"), "PackBits TIFF")
    L("tiff-group4.tif", image_bytes(Image.fromarray(g > 127), "TIFF", compression="group4"), "CCITT G4 fax TIFF")
    L("tiff-ifd-loop.tif", tiff_raw(16, 16, g.tobytes(), next_ifd=8), "TIFF whose next-IFD offset points at itself")
    L("tiff-ifd-beyond.tif", tiff_raw(16, 16, g.tobytes(), next_ifd=10**8), "TIFF whose next IFD is past the end")
    turned = stored_for_orientation(asy, 6)
    L("tiff-orientation-6.tif", tiff_raw(turned.shape[1], turned.shape[0], turned.tobytes(), extra={274: (SHORT, [6])}),
      "TIFF, Orientation tag 6")
    # BMP (Pillow's BMP suite kinds): header versions, bit fields, RLE, top-down, short palettes
    grow, gpal = [bytes(r) for r in g], [(i, i, i) for i in range(256)]
    bgr = [r[:, ::-1].tobytes() for r in rgb]
    L("bmp-os2.bmp", bmp_raw(16, 16, 8, grow, header=12, palette=gpal), "OS/2 BMP (12-byte core header)")
    L("bmp-v4.bmp", bmp_raw(16, 16, 24, bgr, header=108), "BMP with a V4 header")
    L("bmp-v5.bmp", bmp_raw(16, 16, 24, bgr, header=124), "BMP with a V5 header")
    bgra = np.dstack([rgb[..., ::-1], g])
    L("bmp-v5-alpha.bmp", bmp_raw(16, 16, 32, [r.tobytes() for r in bgra], header=124, compression=3,
                                  masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)), "32-bit BMP with alpha (bit fields)")
    r5, g6, b5 = (rgb[..., 0] >> 3).astype(np.uint16), (rgb[..., 1] >> 2).astype(np.uint16), (rgb[..., 2] >> 3).astype(np.uint16)
    px565 = (r5 << 11) | (g6 << 5) | b5
    L("bmp-rgb565.bmp", bmp_raw(16, 16, 16, [row.astype("<u2").tobytes() for row in px565], compression=3,
                                masks=(0xF800, 0x7E0, 0x1F)), "16-bit 5-6-5 BMP (bit fields)")
    L("bmp-top-down.bmp", bmp_raw(16, 16, 8, grow, palette=gpal, top_down=True), "top-down BMP (negative height)")
    L("bmp-rle8.bmp", bmp_raw(16, 16, 8, grow, palette=gpal, compression=1, pixel_data=rle8(grow)), "RLE8 BMP")
    L("bmp-4bit.bmp", bmp_raw(16, 16, 4, [_pack_row(r >> 4, 4) for r in g], palette=gpal[::17]), "4-bit BMP")
    L("bmp-short-palette.bmp", bmp_raw(16, 16, 8, grow, palette=gpal[:4], colors_used=4),
      "8-bit BMP with a 4-colour palette")
    # JPEG (libjpeg-turbo's kinds)
    L("jpeg-arithmetic.jpg", ARITHMETIC_JPEG, "arithmetic-coded JPEG (SOF9)")
    L("jpeg-arithmetic-progressive.jpg", ARITHMETIC_PROGRESSIVE_JPEG, "arithmetic progressive JPEG (SOF10)")
    L("jpeg-progressive.jpg", image_bytes(Image.fromarray(rgb), "JPEG", progressive=True), "progressive JPEG")
    L("jpeg-gray.jpg", image_bytes(Image.fromarray(g), "JPEG"), "grayscale JPEG")
    L("jpeg-444.jpg", image_bytes(Image.fromarray(rgb), "JPEG", subsampling=0), "JPEG without chroma subsampling")
    L("jpeg-restart.jpg", image_bytes(Image.fromarray(rgb), "JPEG", restart_marker_blocks=1), "JPEG, restart markers")
    L("jpeg-cmyk-adobe.jpg", image_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90), "Adobe CMYK JPEG")
    base = image_bytes(Image.fromarray(rgb), "JPEG", quality=90)
    L("jpeg-after-eoi.jpg", base + b"\0" * 100, "JPEG with bytes after EOI")
    L("jpeg-extraneous.jpg", base[:-2] + b"\x00\x01\x02" + base[-2:], "JPEG, extraneous bytes before EOI")
    # EXIF orientation 1-8 (phone photos), and odd EXIF blocks
    for n in range(1, 9):
        L(f"exif-orientation-{n}.png", image_bytes(Image.fromarray(stored_for_orientation(asy, n)), "PNG",
                                                    exif=exif_with_orientation(n)), f"PNG with EXIF orientation {n}")
    L("exif-orientation-6.jpg", image_bytes(Image.fromarray(stored_for_orientation(asy, 6)), "JPEG", quality=95,
                                            exif=exif_with_orientation(6)), "phone JPEG, EXIF orientation 6")
    L("exif-orientation-9.jpg", image_bytes(Image.fromarray(asy), "JPEG", exif=exif_with_orientation(9)),
      "JPEG with an invalid EXIF orientation (9)")
    e = image_bytes(Image.fromarray(asy), "JPEG", exif=exif_with_orientation(6))
    k = e.index(b"Exif\0\0")
    L("exif-damaged.jpg", e[:k + 6] + b"MM\0*\xff\xff\xff\xf0" + e[k + 14:], "JPEG whose EXIF block is damaged")
    return o


def _unsupported(g, rgb) -> list[Oddity]:
    from PIL import Image

    o = []
    S = lambda name, data, why, has: o.append(Oddity(name, data, "skip", why, has))  # noqa: E731
    S("tiff-float64.tif", tiff_raw(16, 16, (g / 255.0).astype("<f8").tobytes(), bps=64, extra={339: (SHORT, [3])}),
      "64-bit float TIFF", "TIFF")
    S("tiff-9-samples.tif", tiff_raw(16, 16, np.repeat(g[..., None], 9, 2).tobytes(), spp=9, photometric=2),
      "TIFF with 9 samples per pixel", "More samples per pixel than can be decoded")
    S("tiff-jpeg2000.tif", tiff_raw(16, 16, g.tobytes(), compression=34712), "JPEG 2000 in TIFF (Aperio)",
      "compression 34712")
    S("tiff-webp.tif", tiff_raw(16, 16, g.tobytes(), compression=50001), "WebP-compressed TIFF",
      "WEBP compression support is not configured")
    S("tiff-lzma-garbage.tif", tiff_raw(16, 16, g.tobytes(), compression=34925), "LZMA TIFF with raw data", "LZMADecode")
    base = image_bytes(Image.fromarray(rgb), "JPEG", quality=90)
    i = base.index(b"\xff\xc0")
    S("jpeg-12bit.jpg", base[:i + 4] + bytes([12]) + base[i + 5:], "JPEG whose frame says 12-bit samples", "12-bit")
    S("jpeg-lossless.jpg", base[:i + 1] + b"\xc3" + base[i + 2:], "lossless JPEG frame header (SOF3)", "lossless JPEG")
    return o


def _damaged(g, rgb) -> list[Oddity]:
    from PIL import Image

    o = []
    S = lambda name, data, why, has=None: o.append(Oddity(name, data, "skip", why, has))  # noqa: E731
    # absurd sizes in otherwise small files
    gif = image_bytes(Image.fromarray(g).convert("P"), "GIF")
    S("gif-65535x65535.gif", gif[:6] + struct.pack("<HH", 65535, 65535) + gif[10:], "GIF screen of 65535x65535",
      "too large")
    base = image_bytes(Image.fromarray(rgb), "JPEG", quality=90)
    i = base.index(b"\xff\xc0")
    S("jpeg-65500x65500.jpg", base[:i + 5] + struct.pack(">HH", 65500, 65500) + base[i + 9:], "JPEG claiming 65500x65500",
      "too large")
    S("jpeg-zero-height.jpg", base[:i + 5] + struct.pack(">HH", 0, 16) + base[i + 9:], "JPEG claiming height 0")
    S("tiff-2g-by-2g.tif", tiff_raw(2**31 - 1, 2**31 - 1, g.tobytes()), "TIFF claiming 2^31 x 2^31", "too large")
    grow, gpal = [bytes(r) for r in g], [(i, i, i) for i in range(256)]
    S("bmp-2g-by-2g.bmp", bmp_raw(2**31 - 1, 2**31 - 1, 8, [], palette=gpal, pixel_data=g.tobytes()),
      "BMP claiming 2^31 x 2^31", "too large")
    S("bmp-palette-2g.bmp", bmp_raw(16, 16, 8, grow, palette=gpal, colors_used=2**30), "BMP claiming 2^30 colours")
    # wrong lengths and offsets
    png = png_raw(g, 8, 0)
    d = bytearray(png)
    d[d.index(b"IDAT") + 6] ^= 0xFF
    S("png-broken-idat.png", bytes(d), "PNG with a damaged zlib stream (and CRC)")
    S("png-bad-ihdr-crc.png", png.replace(struct.pack(">IIBB", 16, 16, 8, 0), struct.pack(">IIBB", 16, 16, 7, 0)),
      "PNG whose IHDR no longer matches its CRC", "checksum")
    S("png-ztxt-bomb.png", png_raw(g, 8, 0, before_idat=(png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 20_000_000, 9)),)),
      "PNG with a 20 MB zTXt bomb", "too large")
    j = base.index(b"\xff\xdb")
    S("jpeg-bad-segment-length.jpg", base[:j + 2] + b"\xff\xff" + base[j + 4:], "JPEG segment claiming 65535 bytes")
    S("tiff-strip-past-eof.tif", tiff_raw(16, 16, g.tobytes())[:-100], "TIFF whose strip runs past the end")
    bmp = bytearray(bmp_raw(16, 16, 8, grow, palette=gpal))
    bmp[10:14] = struct.pack("<I", 10**7)
    S("bmp-offset-past-eof.bmp", bytes(bmp), "BMP whose pixel offset is past the end")
    S("bmp-rle8-cut.bmp", bmp_raw(16, 16, 8, grow, palette=gpal, compression=1, pixel_data=rle8(grow)[:20]),
      "RLE8 BMP cut short")
    o.append(Oddity("png-idat-length-wrong.png", (lambda b: b[:b.index(b"IDAT") - 4] + struct.pack(">I", 10**6)
                                                  + b[b.index(b"IDAT"):])(png), "either", "IDAT length past the end"))
    # truncation and bit flips of every format, as fuzzers make them
    seeds = {"png": png_raw(rgb, 8, 2), "png16": png_raw(g.astype(np.uint16) * 257, 16, 0),
             "jpg": base, "progressive.jpg": image_bytes(Image.fromarray(rgb), "JPEG", progressive=True),
             "gif": gif, "bmp": bmp_raw(16, 16, 8, grow, palette=gpal),
             "lzw.tif": image_bytes(Image.fromarray(rgb), "TIFF", compression="tiff_lzw"),
             "jpeg.tif": image_bytes(Image.fromarray(rgb), "TIFF", compression="jpeg"),
             "apng.png": image_bytes(Image.fromarray(rgb), "PNG", save_all=True, append_images=[Image.fromarray(255 - rgb)])}
    for kind, data in seeds.items():
        stem, ext = (kind.rsplit(".", 1) if "." in kind else (kind, kind.rstrip("0123456789")))
        for frac in (0.1, 0.5, 0.9):
            o.append(Oddity(f"cut{int(frac * 100)}-{stem}.{ext}", data[: max(1, int(len(data) * frac))], "either",
                            f"{kind} cut at {int(frac * 100)} %"))
        for seed in (1, 2, 3):
            o.append(Oddity(f"flips{seed}-{stem}.{ext}", bit_flips(data, seed), "either", f"{kind} with 4 bit flips"))
    return o


def oddities() -> dict[str, list[Oddity]]:
    """The extended corpus by class folder: ``formats`` (odd but valid: load), ``unsupported`` (skipped
    with the library's reason), ``damaged`` (skipped, or loaded where the damage spared the pixels)."""
    g, rgb, asy = pattern_gray(), pattern_rgb(), pattern_asymmetric()
    return {"formats": _formats(g, rgb, asy), "unsupported": _unsupported(g, rgb), "damaged": _damaged(g, rgb)}
