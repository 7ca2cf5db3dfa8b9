"""latentlab.runs.pack: a run folder as bytes (a Dask worker's run on its way to the client) carries the
decoder's weights file, so that the client's copy can be followed without loading model.keras."""

from __future__ import annotations

import _engine
from _runs import followed_again_from_weights

from latentlab.runs import folder as runs
from latentlab.runs import pack as run_pack


def test_a_packed_run_carries_decoder_weights_and_its_copy_is_followed_without_keras(tmp_path, digits_dataset):
    from latentlab.runs.follow import load_followed_epoch

    src = _engine.train_run(digits_dataset, tmp_path / "worker" / "run", epochs=2)
    files = run_pack.pack(src, with_latents=False)
    assert runs.DECODER_WEIGHTS_FILE in files and run_pack.epochs_in(files) == 2
    client = run_pack.unpack(files, tmp_path / "client" / "run")
    assert (client / runs.DECODER_WEIGHTS_FILE).read_bytes() == (src / runs.DECODER_WEIGHTS_FILE).read_bytes()

    first = load_followed_epoch(client)            # a window opening it: model.keras once, for the key
    assert followed_again_from_weights(client, first).epochs_done == 2


def test_a_run_without_decoder_weights_still_packs(tmp_path, digits_dataset):
    """Folders written before the file existed travel as before; unpack never invents it."""
    src = _engine.train_run(digits_dataset, tmp_path / "run", epochs=1)
    (src / runs.DECODER_WEIGHTS_FILE).unlink()
    files = run_pack.pack(src)
    assert files and runs.DECODER_WEIGHTS_FILE not in files
    out = run_pack.unpack(files, tmp_path / "copy")
    assert not (out / runs.DECODER_WEIGHTS_FILE).exists() and runs.open_run(out).history
