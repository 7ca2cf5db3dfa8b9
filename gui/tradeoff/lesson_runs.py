"""A running lesson's finished runs, read back for the lesson view while the next β trains: each run's
reconstructions of the same validation images (`RunReconstruction`, on a thread of its own)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

__all__ = ["RECON_IMAGES", "RunReconstruction", "pick_images"]

RECON_IMAGES = 10      # validation images reconstructed by every β


class RunReconstruction(QObject):
    """A finished lesson run's reconstructions (on a thread of its own): its decoder and codes from its folder,
    the validation images `pick_images` chooses decoded from their z_mean. ``done`` a dict (beta, paths,
    decoded); a run that cannot be read is skipped (the comparison at the end shows what there is)."""

    done = Signal(object)

    def __init__(self, result: dict):
        super().__init__()
        self.result = result

    @Slot()
    def run(self) -> None:
        from latentlab.model.latent import Decoder
        from latentlab.runs import folder as runs
        from latentlab.runtime import import_tensorflow
        from latentlab.tfquiet import GRAPH_LOCK

        try:
            import_tensorflow()
            run = runs.open_run(self.result["run_dir"])
            lat = run.latents or {}
            z = np.asarray(lat["z_mean"], np.float32)
            split = np.asarray(lat["split"]) if "split" in lat else np.zeros(len(z), np.int8)
            idx = pick_images(split, lat.get("labels"), RECON_IMAGES)
            with GRAPH_LOCK:
                decoder = Decoder.from_model(run.load_model())
            paths = [str(p) for p in lat.get("paths", [])]
            self.done.emit({"beta": float(self.result["beta"]), "run_dir": str(self.result["run_dir"]), "decoded": decoder.decode(z[idx]),
                            "paths": [paths[i] for i in idx] if len(paths) == len(z) else []})
        except (OSError, KeyError, ValueError, runs.RunError):
            return


def pick_images(split, labels, n: int) -> np.ndarray:
    """Up to ``n`` validation images (all images when there is no split), one per class first."""
    split = np.asarray(split)
    pool = np.flatnonzero(split == 1) if np.any(split == 1) else np.arange(len(split))
    if labels is None or len(labels) != len(split):
        return pool[:n]
    labels = np.asarray(labels)[pool]
    firsts = [pool[np.flatnonzero(labels == c)[0]] for c in sorted(set(labels.tolist()))]
    rest = [i for i in pool if i not in set(firsts)]
    return np.asarray((firsts + rest)[:n], dtype=np.int64)
