"""Image folders in, arrays out: scan, validate, decode, resize and cache a dataset.

A dataset is a folder of images:

* **Class folders** — when top-level subfolders of the root hold images, each such subfolder is one
  class (its name is the class name; names sorted; images found recursively below it get its label).
  Images lying directly in the root next to class folders are *skipped* with the reason
  "outside any class folder", so a stray file never gets a made-up label.
* **Flat folder** — no subfolder holds images: every image in the root is used, unlabeled
  (label -1, no class names).

Files and folders whose names start with "." and files without an image extension
(:data:`IMAGE_EXTENSIONS`, any letter case) are ignored silently. Symbolic links are followed; a
folder already visited (by device and inode) is not entered again, so link loops end. Only regular
files are opened (a FIFO named ``x.png`` would block forever).

Every candidate is fully decoded with Pillow (``Image.load()``, truncated files are errors); a bad
file becomes a :class:`SkippedFile` with a one-line reason and loading goes on. The content decides
the format, not the extension: a PNG named ``.jpg`` loads. Only PNG, JPEG (and MPO), BMP, GIF,
TIFF and WebP decoders are used (never EPS or other parsers that run external programs).
Images of more than :data:`MAX_PIXELS` pixels are refused before decoding (decompression bombs).
Modes: 1-bit, L, P, LA, I;16/I (scaled by 1/65535), RGB, RGBA, CMYK, YCbCr...; alpha is composited
onto **black** (the background of MNIST-like data, and what a VAE's Bernoulli likelihood favours);
animated images give their first frame; 32-bit float (mode F) images are skipped.

Folders of at least :data:`PROCESS_MIN_FILES` images are decoded in spawned worker processes (one per
CPU; Pillow's per-image Python holds the GIL, so threads do not scale on small images), smaller ones in
this process. Loaded arrays are cached on disk (see :func:`load_folder`); nothing here imports Qt, and
TensorFlow is imported only inside :func:`make_tf_dataset`.

The code lives in submodules, one step each (a one-way chain, no import circles): :mod:`.dataset` (:class:`Dataset` and errors), :mod:`.scan` (finding the files),
:mod:`.decode` (one file to an array, with Pillow), :mod:`.parallel` (decoding many on threads or in
worker processes), :mod:`.cache` (arrays kept on disk), :mod:`.load` (:func:`load_folder`),
:mod:`.pipeline` (splits and tf.data) and :mod:`.sample` (the bundled sample). The constants here are
re-exported for reading; each is read at call time from the submodule that defines it, so a test that
changes one sets it there (``latentlab.data.parallel.PROCESS_MIN_FILES``), not on this package.
"""

from latentlab.data.cache import CACHE_VERSION, default_cache_dir
from latentlab.data.dataset import Dataset, DatasetError, SkippedFile
from latentlab.data.decode import (COLORS, INTERMEDIATE_SIZE, MAX_FILE_BYTES, MAX_IMAGE_SIZE, MAX_PIXELS,
                                   MIN_IMAGE_SIZE, PIL_FORMATS)
from latentlab.data.load import ProgressFn, load_folder
from latentlab.data.parallel import PROCESS_MIN_FILES, SMALL_FILE_BYTES
from latentlab.data.pipeline import make_tf_dataset, split_indices
from latentlab.data.sample import sample_dataset_path
from latentlab.data.scan import IMAGE_EXTENSIONS, scan_folder

__all__ = [
    "CACHE_VERSION", "COLORS", "Dataset", "DatasetError", "IMAGE_EXTENSIONS", "INTERMEDIATE_SIZE",
    "MAX_FILE_BYTES", "MAX_IMAGE_SIZE", "MAX_PIXELS", "MIN_IMAGE_SIZE", "PIL_FORMATS", "PROCESS_MIN_FILES",
    "ProgressFn", "SMALL_FILE_BYTES", "SkippedFile", "default_cache_dir", "load_folder", "make_tf_dataset",
    "sample_dataset_path", "scan_folder", "split_indices",
]
