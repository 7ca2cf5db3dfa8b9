"""Stands in for ``latentlab.data.parallel._decode_chunk_packed`` in tests: a worker process that dies.

Its own module (imported by the spawned worker by name) so the worker imports nothing heavy."""

import multiprocessing
import os


def die(*args, **kwargs):
    if multiprocessing.parent_process() is None:
        raise RuntimeError("die() is for worker processes only")
    os._exit(3)
