"""latentlab: a desktop laboratory for variational autoencoders (engine, no Qt)."""

__version__ = "0.1.0"
