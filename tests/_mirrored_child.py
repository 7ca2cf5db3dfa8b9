"""Run in a subprocess by test_mirrored.py (logical CPU devices must be set before TensorFlow starts):
one device vs two mirrored CPU replicas on the same data, seed and global batch; resume; the NaN guard.
Prints one JSON line."""

import json
import sys

import numpy as np

from latentlab.training.distribute import make_strategy, split_cpu

split_cpu(2)

from latentlab.runs import folder as runs  # noqa: E402
from latentlab.cli import main  # noqa: E402
from latentlab.config import TrainConfig  # noqa: E402
from latentlab.data import load_folder  # noqa: E402
from latentlab.events import EpochEnd, Started  # noqa: E402
from latentlab.training.trainer import Trainer  # noqa: E402

folder, out = sys.argv[1], sys.argv[2]
common = ["--epochs", "2", "--batch-size", "50", "--seed", "3", "--beta", "2", "--hidden-units", "16", "--quiet"]
assert main(["train", folder, "--out", f"{out}/one", *common[:1], "3", *common[2:]]) == 0
assert main(["train", folder, "--out", f"{out}/two", "--strategy", "mirrored", "--cpu-replicas", "2", *common]) == 0
assert main(["train", "--resume", f"{out}/two", "--epochs", "3", "--strategy", "mirrored", "--cpu-replicas", "2",
             "--quiet"]) == 0
result = {"one": runs.open_run(f"{out}/one").history, "two": runs.open_run(f"{out}/two").history,
          "two_state": runs.open_run(f"{out}/two").state}

# the NaN guard under the strategy: a NaN weight after epoch 1 stops training, epoch 1 is kept
ds = load_folder(folder, cache=False)
seen = {}
trainer = None


def poison(ev):
    if isinstance(ev, Started):
        seen["device"] = ev.device
    if isinstance(ev, EpochEnd) and ev.epoch == 1:
        v = trainer.model.decoder.trainable_weights[0]
        v.assign(v * np.nan)


cfg = TrainConfig(dataset=folder, epochs=3, batch_size=50, seed=3, hidden_units=16)
trainer = Trainer(cfg, ds, f"{out}/nan", poison, strategy=make_strategy("mirrored"))
failed = trainer.run()
run = runs.open_run(f"{out}/nan")
from latentlab.model.latent import Decoder  # noqa: E402

image = Decoder.from_model(run.load_model()).decode(np.zeros((1, 2)))
result.update(nan_type=type(failed).__name__, nan_message=getattr(failed, "message", ""), nan_epochs=run.epochs_done,
              nan_status=run.status, nan_model_finite=bool(np.isfinite(image).all()), device=seen.get("device"),
              replicas=trainer.strategy.num_replicas_in_sync)
print("RESULT " + json.dumps(result))
