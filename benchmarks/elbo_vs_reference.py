"""Test negative ELBO on Fashion-MNIST: latentlab's trainer vs the classic Keras recipe.

Both: 2-D latent, β = 1, batch 128, the same epochs, trained on the 60,000 training images,
scored on the 10,000 test images with one estimator (`reference_vae.neg_elbo`).

    python -m benchmarks.elbo_vs_reference --epochs 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_latentlab(x_train, y_train, x_test, epochs: int, seed: int, batch_size: int = 128, **overrides) -> dict:
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.latent import Decoder, encode
    from latentlab.train import Trainer
    from benchmarks.reference_vae import neg_elbo

    ds = Dataset.from_arrays(x_train, y_train, root="fashion-mnist")
    # the reference's model (dense 16) unless overridden: this compares the engines, not the defaults
    cfg = TrainConfig(dataset="fashion-mnist", epochs=epochs, batch_size=batch_size, beta=1.0, latent_dim=2,
                      seed=seed, val_fraction=0.0, **{"hidden_units": 16, **overrides})
    t0 = time.perf_counter()
    trainer = Trainer(cfg, ds, None, latents_every_epoch_max=0)
    trainer.run()
    seconds = time.perf_counter() - t0
    dec = Decoder.from_model(trainer.model)
    score = neg_elbo(lambda xb: encode(trainer.model, xb), dec.decode, x_test, seed=seed)
    return {"test_neg_elbo": score, "train_seconds": seconds, "history": trainer.history}


def run_reference(x_train, x_test, epochs: int, seed: int) -> dict:
    import keras

    from benchmarks import reference_vae

    keras.utils.set_random_seed(seed)
    model = reference_vae.build()
    model.compile(optimizer=keras.optimizers.Adam())
    t0 = time.perf_counter()
    model.fit(x_train, epochs=epochs, batch_size=128, verbose=0)
    seconds = time.perf_counter() - t0

    def enc(xb):
        m, lv, _ = model.encoder(xb, training=False)
        return m.numpy(), lv.numpy()

    score = reference_vae.neg_elbo(enc, lambda z: model.decoder(z, training=False).numpy(), x_test, seed=seed)
    return {"test_neg_elbo": score, "train_seconds": seconds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each runs both models")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    from benchmarks import fashion_mnist

    x_train, y_train = fashion_mnist.load("train")
    x_test, _ = fashion_mnist.load("test")
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        ref = run_reference(x_train, x_test, args.epochs, seed)
        ours = run_latentlab(x_train, y_train, x_test, args.epochs, seed)
        row = {"seed": seed, "epochs": args.epochs, "latentlab_test_neg_elbo": ours["test_neg_elbo"],
               "reference_test_neg_elbo": ref["test_neg_elbo"], "latentlab_seconds": ours["train_seconds"],
               "reference_seconds": ref["train_seconds"]}
        results.append(row)
        print(f"seed {seed}: test neg ELBO latentlab {ours['test_neg_elbo']:.2f} vs reference "
              f"{ref['test_neg_elbo']:.2f} nats ({ours['train_seconds']:.0f}s vs {ref['train_seconds']:.0f}s)",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
