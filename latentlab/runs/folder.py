"""Run folders: what a training leaves behind, written atomically, and how to open one.

A run folder holds::

    config.json     the TrainConfig (strictly validated when read back)
    model.keras     the VAE with its optimizer state, loaded with Keras' safe_mode=True
    history.csv     one row per finished epoch
    latents.npz     z_mean / z_log_var of every image, with labels, paths and class names
    epochs.npz      z_mean of the validation images after each epoch (for replay)
    decoder_weights.npz  the decoder's weights after the last epoch, for a window following the run
                    (`latentlab.runs.follow`: read in milliseconds, where model.keras takes Keras a second)
    state.json      epochs done, status (running / finished / stopped / failed), message, device

Every file is written to a temporary name in the same folder, fsynced, then renamed over
the old one, so a killed process never leaves a half-written file where a good one was.
``state.json`` is written last: it is the commit record of a checkpoint. One process writes a run
at a time: it holds `RunLock` (``.lock``, see `latentlab.runs.lock`); readers never need it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlab.config import ConfigError, TrainConfig
from latentlab.runs.lock import LOCK_FILE, RunLock, RunLocked, check_unlocked, is_locked  # noqa: F401  (runs.RunLock…)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
STAGED_MODEL_PATTERN = ".model-epoch-{epoch}.keras"  # written before an epoch commits; renamed to MODEL_FILE after
HISTORY_FILE = "history.csv"
LATENTS_FILE = "latents.npz"
EPOCH_LATENTS_FILE = "epochs.npz"
DECODER_WEIGHTS_FILE = "decoder_weights.npz"   # the decoder's weights of the last committed epoch (w0, w1, …, epoch)
STATE_FILE = "state.json"
DECODER_FILE = "decoder.keras"   # a run written by latentlab.keras.RunCallback: the user's own decoder…
ENCODER_FILE = "encoder.keras"   # …and encoder, in the place of model.keras

HISTORY_COLUMNS = [
    "epoch", "loss", "reconstruction_loss", "kl_loss", "neg_elbo",
    "val_loss", "val_reconstruction_loss", "val_kl_loss", "val_neg_elbo",
    "beta", "active_units", "seconds",
]
INT_COLUMNS = ("epoch", "active_units", "likelihood_samples", "likelihood_images")


class RunError(ValueError):
    """A run folder cannot be opened or written. ``str(e)`` is one clear line."""


# -- atomic writes -------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write, suffix: str = "") -> None:
    """Write ``path`` atomically: ``write(tmp_path)`` fills a temporary file in the same
    folder, which is fsynced and renamed over ``path``. On error the old file is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; run files are as readable as any other file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


STALE_TEMP_SECONDS = 600.0   # no write of a run file takes this long: an older temp file is a leftover
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")   # atomic_write's mkstemp names


def remove_stale_temp_files(run_dir, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the temporary files `atomic_write` leaves when its process is killed mid-write
    (``.<name>.<random>.tmp*``; never read, only in the way) that are older than ``older_than``
    seconds, so that a live writer's file is never touched. Returns the names removed."""
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return removed
    for e in entries:
        if not _TEMP_NAME.match(e.name):
            continue
        try:
            if e.is_file(follow_symlinks=False) and now - e.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(e.path)
                removed.append(e.name)
        except OSError:
            pass   # read-only folder, already gone: leave it
    return removed


def atomic_write_bytes(path, data: bytes) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def atomic_write_text(path, text: str) -> None:
    # surrogateescape: file names that are not UTF-8 are written back as their original bytes
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def atomic_save_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_model(model, path) -> None:
    """``model.save`` to a temporary ``.keras`` file, then rename (Keras insists on the suffix)."""
    _fill_keras_skipset_cache()
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


_SKIPSET_TYPES = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss")


def _fill_keras_skipset_cache() -> None:
    """Work around a Keras 3 cache miss that costs ~40 KB of memory per model save.

    ``keras.src.saving.saving_lib.get_attr_skipset`` stores its result under
    ``saving_attr_skipset_<type>`` but looks it up under ``saving_attr_skiplist_<type>``, so every
    save builds fresh reference objects for every layer, metric and optimizer it walks (an
    ``Optimizer(1.0)`` makes TensorFlow variables each time), and that memory is never given back:
    an hour of one-second epochs grew the app by ~300 MB. Storing the same sets under the name it
    reads makes the lookup hit. Private API: any failure leaves Keras as it is."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    for obj_type in _SKIPSET_TYPES:
        key = f"saving_attr_skiplist_{obj_type}"
        try:
            if global_state.get_global_attribute(key, None) is None:
                global_state.set_global_attribute(key, saving_lib.get_attr_skipset(obj_type))
        except Exception:  # a Keras that fixed or renamed this: nothing to do
            continue


def history_to_csv(history: list[dict]) -> str:
    out = io.StringIO()
    extra = sorted({k for row in history for k in row} - set(HISTORY_COLUMNS))
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS + extra, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _fmt(row.get(k, "")) for k in HISTORY_COLUMNS + extra})
    return out.getvalue()


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return v


def read_history(path) -> list[dict]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                if k is None or v is None or v == "":
                    continue
                try:
                    parsed[k] = int(v) if k in INT_COLUMNS else float(v)
                except ValueError:
                    raise RunError(f"{path}: column {k!r} holds {v!r}, not a number; the file is damaged") from None
            rows.append(parsed)
    return rows


# -- the run folder ------------------------------------------------------------------------
@dataclass
class Run:
    """An opened run folder. The model is loaded on first use of `load_model`."""

    path: Path
    config: TrainConfig
    history: list[dict]
    state: dict
    latents: dict | None = None          # z_mean, z_log_var, labels, paths, class_names, split
    epoch_latents: dict | None = None    # z_mean per epoch of the validation images
    model_path: Path | None = None       # the committed epoch's model (model.keras unless a writer is mid-commit)
    _model: object = field(default=None, repr=False)

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def status(self) -> str:
        return self.state.get("status", "unknown")

    @property
    def keras_decoder(self) -> Path | None:
        """The decoder file of a run written by `latentlab.keras.RunCallback` (None for latentlab's own runs)."""
        path = self.model_path or self.path / MODEL_FILE
        return path if path.name == DECODER_FILE else None

    def load_model(self):
        if self.keras_decoder is not None:
            raise RunError(f"{self.path} was written by a Keras model of its own (latentlab.keras.RunCallback): "
                           "it can be opened and compared here; train it further in the script that made it")
        if self._model is None:
            path = self.model_path or self.path / MODEL_FILE
            if not path.is_file() and path.name != MODEL_FILE:
                path = self.path / MODEL_FILE   # the live writer finished its commit meanwhile: renamed
            self._model = load_model(path)
        return self._model


def write_config(run_dir, config: TrainConfig) -> None:
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_json() + "\n")


def write_state(run_dir, **state) -> None:
    atomic_write_text(Path(run_dir) / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def staged_model_path(run_dir, epoch: int) -> Path:
    return Path(run_dir) / STAGED_MODEL_PATTERN.format(epoch=epoch)


def promote_staged_model(run_dir) -> None:
    """Finish an epoch's commit: the model staged for the epoch that state.json commits takes the name
    model.keras (roll forward); staged models of uncommitted epochs are dropped (roll back)."""
    run_dir = Path(run_dir)
    staged = sorted(run_dir.glob(STAGED_MODEL_PATTERN.format(epoch="*")))
    if not staged:
        return
    try:
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        committed = staged_model_path(run_dir, int(state.get("model_epoch", -1)))
    except (OSError, ValueError, TypeError):
        committed = None
    for f in staged:
        try:
            if f == committed:
                os.replace(f, run_dir / MODEL_FILE)
                _fsync_dir(run_dir)
            else:
                f.unlink()
        except OSError:
            pass  # a read-only folder: the files stay as they are


def load_model(path):
    """Load a run's model with Keras' safe_mode (no code from someone else's file runs)."""
    from latentlab.model.keras_files import KerasFileError, load_keras_file

    path = Path(path)
    try:
        model = load_keras_file(path, "only open runs from people you trust, and retrain it here", compile=True,
                                missing=f"{path} is missing: this run has no finished epoch yet",
                                damaged=f"{path} is damaged or not a Keras model file; retrain the run or "
                                        "restore the file")
    except KerasFileError as e:
        raise RunError(str(e)) from None
    from latentlab.model.vae import VAE
    if not isinstance(model, VAE):
        raise RunError(f"{path} is a {type(model).__name__}, not a latentlab VAE")
    return model


def open_run(path, *, repair: bool = True) -> Run:
    """Open a run folder written by the app or by ``latentlab train``. ``repair=False``: never write into
    it (a run another process writes, followed by `latentlab.runs.follow`): a dead writer's half-finished
    commit is read as it is instead of being finished."""
    path = Path(path).expanduser()
    if not path.exists():
        raise RunError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise RunError(f"{path} is a file, not a run folder: give the folder that holds config.json")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise RunError(f"{path} is not a run folder: it has no {CONFIG_FILE}")
    try:
        config = TrainConfig.from_json(cfg_path.read_text(encoding="utf-8"))
    except ConfigError as e:
        raise RunError(f"{cfg_path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunError(f"{cfg_path} cannot be read ({e})") from None
    state = {}
    if (path / STATE_FILE).is_file():
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError
        except ValueError:
            raise RunError(f"{path / STATE_FILE} is damaged; delete it to open the run from its other files") from None
    history = read_history(path / HISTORY_FILE) if (path / HISTORY_FILE).is_file() else []
    done = state.get("epochs_done")
    if isinstance(done, int) and done < len(history):
        history = history[:done]  # the commit record is the truth
    model_path = path / MODEL_FILE
    if repair and not is_locked(path):
        promote_staged_model(path)   # finish (or undo) the commit of a writer that died
    else:
        # a live writer (or a folder to leave untouched): leave its staged model alone; between its commit
        # and the rename, the committed epoch's model is the staged one
        epoch = state.get("model_epoch")
        staged = staged_model_path(path, epoch) if isinstance(epoch, int) else None
        if staged is not None and staged.is_file():
            model_path = staged
    if not model_path.is_file() and (path / DECODER_FILE).is_file():
        model_path = path / DECODER_FILE   # written by latentlab.keras.RunCallback
    if not model_path.is_file():
        raise RunError(f"{path} has no finished epoch yet ({MODEL_FILE} is missing)")
    return Run(path=path, config=config, history=history, state=state,
               latents=_load_npz(path / LATENTS_FILE), epoch_latents=_load_npz(path / EPOCH_LATENTS_FILE),
               model_path=model_path)


def write_decoder_weights(run_dir, weights, epoch: int) -> None:
    atomic_save_npz(Path(run_dir) / DECODER_WEIGHTS_FILE, epoch=np.int64(epoch),
                    **{f"w{i}": np.asarray(w) for i, w in enumerate(weights)})


def read_decoder_weights(run_dir, epoch: int) -> list | None:
    """The decoder's weights that ``decoder_weights.npz`` holds for ``epoch`` (None when it is missing,
    damaged or of another epoch)."""
    data = _load_npz(Path(run_dir) / DECODER_WEIGHTS_FILE)
    if data is None or int(data.get("epoch", -1)) != int(epoch):
        return None
    n = sum(1 for k in data if re.fullmatch(r"w\d+", k))
    return [data[f"w{i}"] for i in range(n)] if all(f"w{i}" in data for i in range(n)) else None


def _load_npz(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception:
        return None  # damaged optional file: the app re-encodes when it has the dataset


# -- what else a run folder is used for -------------------------------------------------------------
def new_run_dir(root, prefix: str = "run", when: float | None = None) -> Path:
    """Create and return a new, empty run folder ``root/<prefix>-YYYYmmdd-HHMMSS[-k]``.

    The folder is made with one exclusive ``mkdir``: two starters in the same second (two windows,
    a window and a script) get two folders, never one between them."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime(f"{prefix}-%Y%m%d-%H%M%S", time.localtime(when))
    for k in range(1, 10_000):
        path = root / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunError(f"cannot create a new run folder in {root}: too many named {stamp}-*")


def is_empty_folder(path) -> bool:
    """Whether ``path`` is a folder that holds nothing a run could lose (no file but an unheld lock
    file, which a writer killed before its first write leaves): a new run may be trained into it."""
    try:
        names = [e.name for e in os.scandir(path)]
    except OSError:
        return False
    return not names or (names == [LOCK_FILE] and not is_locked(path))


def copy_run(src, dest) -> Path:
    """Copy a run folder to ``dest`` (a new or empty folder), leaving temporary files and the lock behind.
    RunError (one line) when ``dest`` is taken or cannot be written."""
    src, dest = Path(src), Path(dest)
    if not (src / CONFIG_FILE).is_file():
        raise RunError(f"{src} is not a run folder: there is nothing to save yet")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RunError(f"{dest} already exists and is not empty: choose a new folder name")
    try:
        if dest.exists():
            dest.rmdir()
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".*.tmp*", LOCK_FILE))
    except OSError as e:
        raise RunError(f"cannot save the run to {dest} ({e.strerror or e}); choose a folder you can write to") from None
    return dest


def find_runs(folder) -> list[str]:
    """``folder`` itself when it is a run folder, else its subfolders that are (sorted): the runs of a sweep."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).is_file():
        return [str(folder)]
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def read_latents(run_dir) -> dict | None:
    """A run folder's latents.npz as a dict of arrays; None when it is missing or damaged."""
    return _load_npz(Path(run_dir) / LATENTS_FILE)


def latents_match(paths, latents: dict | None) -> bool:
    """Whether a dataset's image paths (in order) are those the run's latents.npz was made from, so
    that index i of one is image i of the other."""
    if latents is None or "paths" not in latents:
        return False
    return [str(p) for p in paths] == [str(p) for p in latents["paths"]]


def latents_csv(latents: dict) -> str:
    """latents.npz as CSV text: path, label, class, split, then z_mean_* and (when present) z_log_var_*,
    floats written exactly (repr). ``split`` is train/val, empty where unknown."""
    z_mean = np.asarray(latents["z_mean"])
    z_log_var = latents.get("z_log_var")
    n, d = z_mean.shape
    names = [str(s) for s in latents.get("class_names", [])]
    labels = np.asarray(latents.get("labels", np.full(n, -1)))
    paths = latents.get("paths", [str(i) for i in range(n)])
    split = latents.get("split")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["path", "label", "class", "split"] + [f"z_mean_{i}" for i in range(d)]
               + ([f"z_log_var_{i}" for i in range(d)] if z_log_var is not None else []))
    for i in range(n):
        label = int(labels[i]) if i < len(labels) else -1
        row = [str(paths[i]), label, names[label] if 0 <= label < len(names) else "",
               "" if split is None else ("val" if split[i] else "train")]
        row += [repr(float(v)) for v in z_mean[i]]
        if z_log_var is not None:
            row += [repr(float(v)) for v in z_log_var[i]]
        w.writerow(row)
    return out.getvalue()


def write_latents_csv(path, latents: dict) -> None:
    """`latents_csv` written atomically to ``path`` (OSError when it cannot be)."""
    atomic_write_text(path, latents_csv(latents))
