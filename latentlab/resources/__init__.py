"""Bundled resources: the sample dataset and icons (found with importlib.resources)."""
