"""The model wing: the β-VAE (vae), encoding and decoding latents (latent), the likelihood estimate
(likelihood), the process's pool of built models (pool), decoders from outside (foreign, keras_files).

Kept empty on purpose: importing this package imports no TensorFlow; import the module you need."""
