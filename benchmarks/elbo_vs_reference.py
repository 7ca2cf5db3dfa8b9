"""Test negative ELBO and −log p(x) on Fashion-MNIST: latentlab's trainer vs the classic Keras recipe.

All: 2-D latent, β = 1, the same epochs, trained on the 60,000 training images, scored on the 10,000 test
images with one estimator each: −ELBO (`reference_vae.neg_elbo`) and −log p(x) by importance sampling
(`reference_vae.neg_log_likelihood`, the IWAE bound with ``--iwae-samples`` draws per image). latentlab runs
twice: with the reference's model and batch (128; ``equal``), and with its own defaults (``defaults``:
128 hidden units, batch 64).

    python -m benchmarks.elbo_vs_reference --epochs 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_latentlab(x_train, y_train, x_test, epochs: int, seed: int, batch_size: int = 128, iwae_samples: int = 100,
                  **overrides) -> dict:
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.model.latent import Decoder, encode
    from latentlab.training.trainer import Trainer
    from benchmarks.reference_vae import neg_elbo, neg_log_likelihood

    ds = Dataset.from_arrays(x_train, y_train, root="fashion-mnist")
    # the reference's model (dense 16) unless overridden: this compares the engines, not the defaults
    cfg = TrainConfig(dataset="fashion-mnist", epochs=epochs, batch_size=batch_size, beta=1.0, latent_dim=2,
                      seed=seed, val_fraction=0.0, **{"hidden_units": 16, **overrides})
    t0 = time.perf_counter()
    trainer = Trainer(cfg, ds, None, latents_every_epoch_max=0)
    trainer.run()
    seconds = time.perf_counter() - t0
    dec = Decoder.from_model(trainer.model)
    enc = (lambda xb: encode(trainer.model, xb))
    score = neg_elbo(enc, dec.decode, x_test, seed=seed)
    lik = neg_log_likelihood(enc, dec.decode, x_test, iwae_samples, seed) if iwae_samples else None
    return {"test_neg_elbo": score, "train_seconds": seconds, "history": trainer.history,
            "likelihood": lik.to_json() if lik else None}


def run_reference(x_train, x_test, epochs: int, seed: int, iwae_samples: int = 100) -> dict:
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

    dec = (lambda z: model.decoder(z, training=False).numpy())
    score = reference_vae.neg_elbo(enc, dec, x_test, seed=seed)
    lik = reference_vae.neg_log_likelihood(enc, dec, x_test, iwae_samples, seed) if iwae_samples else None
    return {"test_neg_elbo": score, "train_seconds": seconds, "likelihood": lik.to_json() if lik else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each runs both models")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--iwae-samples", type=int, default=100, help="K for the test −log p(x) (0: none)")
    p.add_argument("--test-images", type=int, default=10_000, help="score on the first N test images")
    p.add_argument("--no-defaults", action="store_true", help="skip latentlab with its own defaults")
    args = p.parse_args(argv)
    from benchmarks import fashion_mnist

    x_train, y_train = fashion_mnist.load("train")
    x_test, _ = fashion_mnist.load("test")
    x_test = x_test[:args.test_images]
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        k = args.iwae_samples
        ref = run_reference(x_train, x_test, args.epochs, seed, k)
        ours = run_latentlab(x_train, y_train, x_test, args.epochs, seed, iwae_samples=k)
        row = {"seed": seed, "epochs": args.epochs, "latentlab_test_neg_elbo": ours["test_neg_elbo"],
               "reference_test_neg_elbo": ref["test_neg_elbo"], "latentlab_seconds": ours["train_seconds"],
               "reference_seconds": ref["train_seconds"], "test_images": len(x_test), "iwae_samples": k,
               "latentlab_likelihood": ours["likelihood"], "reference_likelihood": ref["likelihood"]}
        if not args.no_defaults:   # TrainConfig's defaults: 128 hidden units, batch 64
            dflt = run_latentlab(x_train, y_train, x_test, args.epochs, seed, batch_size=64, iwae_samples=k,
                                 hidden_units=0)
            row.update(defaults_test_neg_elbo=dflt["test_neg_elbo"], defaults_seconds=dflt["train_seconds"],
                       defaults_likelihood=dflt["likelihood"])
        results.append(row)
        print(f"seed {seed}: test neg ELBO latentlab {ours['test_neg_elbo']:.2f} vs reference "
              f"{ref['test_neg_elbo']:.2f} nats ({ours['train_seconds']:.0f}s vs {ref['train_seconds']:.0f}s)",
              flush=True)
        for name in ("latentlab", "reference", "defaults"):
            lik = row.get(f"{name}_likelihood")
            if lik:
                print(f"  {name}: test -ELBO {lik['neg_elbo']:.2f} ± {lik['standard_error']['neg_elbo']:.2f}, "
                      f"-log p(x) {lik['neg_log_likelihood']:.2f} ± {lik['standard_error']['neg_log_likelihood']:.2f} "
                      f"(K={k}, {lik['images']} images)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
