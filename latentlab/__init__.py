"""latentlab: a desktop laboratory for variational autoencoders (engine, no Qt)."""

__version__ = "0.1.0"

from latentlab.tfquiet import configure_environment as _configure_environment

# before any module of the package (or the app) imports TensorFlow: see tfquiet.configure_environment
_configure_environment()
