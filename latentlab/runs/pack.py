"""A run folder as plain bytes, to travel between machines that share no file system (a Dask worker
and the client that started the sweep), and written back atomically.

`pack` reads the files of a run's last committed epoch — ``config.json``, ``model.keras``, ``history.csv``,
``epochs.npz``, ``decoder_weights.npz``, ``latents.npz`` (when there), ``state.json`` — into a dict ``{name: bytes}`` (msgpack can
carry it as it is). Nothing else travels: no temporary or staged file, no lock file.

`unpack` writes such a dict into a run folder in the order the Trainer commits an epoch: the model is
staged beside the old one, history and latents are replaced atomically, ``state.json`` (the commit record)
comes last, then the staged model takes its name. ``decoder_weights.npz`` travels too, so that a window
following the client's copy of a cluster sweep's run shows each epoch's decoder without loading
``model.keras`` (`latentlab.runs.follow`). A process killed at any moment leaves the folder at the
previous commit or at this one, never between.
"""

from __future__ import annotations

import json
from pathlib import Path

from latentlab.runs import folder as runs

__all__ = ["FILES", "pack", "unpack", "epochs_in", "size"]

FILES = (runs.CONFIG_FILE, runs.MODEL_FILE, runs.HISTORY_FILE, runs.EPOCH_LATENTS_FILE, runs.DECODER_WEIGHTS_FILE,
         runs.LATENTS_FILE, runs.STATE_FILE)
_OPTIONAL = {runs.LATENTS_FILE, runs.EPOCH_LATENTS_FILE, runs.HISTORY_FILE, runs.DECODER_WEIGHTS_FILE}


def pack(run_dir: str | Path, with_latents: bool = True) -> dict[str, bytes]:
    """The committed files of ``run_dir`` (see the module's docstring). {} when it has no finished epoch."""
    run_dir = Path(run_dir)
    runs.promote_staged_model(run_dir)   # a staged model that state.json committed is the model
    if not (run_dir / runs.MODEL_FILE).is_file() or not (run_dir / runs.STATE_FILE).is_file():
        return {}
    out = {}
    for name in FILES:
        if name == runs.LATENTS_FILE and not with_latents:
            continue
        path = run_dir / name
        if path.is_file():
            out[name] = path.read_bytes()
        elif name not in _OPTIONAL:
            return {}
    return out


def epochs_in(files: dict) -> int:
    """The number of finished epochs a packed run holds (its state.json's commit record)."""
    if not files or runs.STATE_FILE not in files:
        return 0
    try:
        state = json.loads(files[runs.STATE_FILE].decode("utf-8"))
        return int(state.get("epochs_done", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def size(files: dict) -> int:
    return sum(len(v) for v in files.values())


def unpack(files: dict, run_dir: str | Path, state_changes: dict | None = None) -> Path:
    """Write a packed run into ``run_dir`` (created when missing), atomically, in commit order.
    ``state_changes`` updates the committed state.json (e.g. the status the client saw)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(files) - set(FILES))
    if unknown:
        raise runs.RunError(f"a packed run holds files a run folder does not: {', '.join(unknown)}")
    epochs = epochs_in(files)
    if runs.CONFIG_FILE in files:
        runs.atomic_write_bytes(run_dir / runs.CONFIG_FILE, files[runs.CONFIG_FILE])
    if runs.MODEL_FILE in files:
        runs.atomic_write_bytes(runs.staged_model_path(run_dir, epochs), files[runs.MODEL_FILE])
    for name in (runs.HISTORY_FILE, runs.EPOCH_LATENTS_FILE, runs.DECODER_WEIGHTS_FILE, runs.LATENTS_FILE):
        if name in files:
            runs.atomic_write_bytes(run_dir / name, files[name])
    if runs.STATE_FILE in files:
        state = files[runs.STATE_FILE]
        if state_changes:
            data = json.loads(state.decode("utf-8"))
            data.update(state_changes)
            state = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
        runs.atomic_write_bytes(run_dir / runs.STATE_FILE, state)
    runs.promote_staged_model(run_dir)
    return run_dir
