"""`MapController`: the model shown on the latent map and what the map's clicks and hovers show.

It holds the decoders of that model — a `GridRenderer` for the grid under the points and a decoder
of the GUI thread's own for single points (~1 ms, never the model another thread trains) — and the
newest decoder weights (a training's snapshots, or an opened run's). Clicks on the map become the
decoded image in the `ImagePanel`; a click on a data point shows its original beside its
reconstruction; hovering previews under the mouse. The window forwards training events' weights here.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from gui.map.grid_renderer import GridRenderer
from latentlab.runs import folder as runs
from latentlab.events import EpochEnd, WeightsSnapshot

__all__ = ["MapController", "GRID_DUTY_TRAINING"]

# While training, grids for new weights take at most this share of the time (the rest is
# training's): on two CPU cores a 20×20 grid refreshes every ~4 s instead of every snapshot (2 s).
GRID_DUTY_TRAINING = 0.03


class MapController(QObject):
    gridShown = Signal()
    decoderReady = Signal(object)   # the GUI thread's point decoder, when a new one is ready

    def __init__(self, latent_map, image_panel, parent=None):
        super().__init__(parent)
        self.map, self.image_panel = latent_map, image_panel
        self.renderer = GridRenderer(self)
        self.model_info = None        # the latentlab.model.key.ModelKey of the decoder shown
        self.point_decoder = None
        self.latest_weights = None
        self.points_dataset = None    # the dataset the map's indices refer to (None: originals unknown)
        self.last_click = None
        self.last_grid_timing = None
        self.renderer.pointDecoderReady.connect(self._on_point_decoder)
        self.renderer.rendered.connect(self._on_grid_rendered)
        latent_map.gridRequested.connect(self.request_grid)
        latent_map.clicked.connect(self.on_map_clicked)
        latent_map.hovered.connect(self.on_map_hovered)
        latent_map.pointClicked.connect(self.on_point_clicked)

    # -- which model ---------------------------------------------------------------------------------
    def prepare_training(self, model_info, dataset):
        """A new training of ``model_info`` (a ModelKey) is about to start on ``dataset``: forget the weights
        and the click, keep decoders of the same model. Returns the key the training thread must build decoders
        for (TensorFlow must not build graphs in two threads at once), or None when they are ready."""
        self.model_info, self.points_dataset = model_info, dataset
        self.latest_weights = self.last_click = None
        self.map.set_latent_dim(model_info.latent_dim)
        self.map.show_preview(None)
        key = model_info
        if self.renderer.ready_key == key:
            self.renderer.weights = None
            self._use_point_decoder(self.renderer.point_decoder)
            return None
        self.renderer.expect(key)
        self.point_decoder = None
        return key

    def training_ended(self) -> None:
        if self.renderer.configuring:   # stopped before its decoders were built: forget them
            self.renderer.expect(None)
        self.renderer.set_duty(None)    # a grid of the last weights waiting for its turn goes now

    def show_model(self, model_info, weights) -> None:
        """An opened run's decoder: build (or reuse) decoders for it and show its weights."""
        self.model_info, self.last_click = model_info, None
        self.latest_weights = weights
        self.point_decoder = None
        self._use_point_decoder(self.renderer.set_model(model_info))   # None: pointDecoderReady follows
        self.renderer.set_weights(weights)
        self.map.set_latent_dim(model_info.latent_dim)
        self.map.show_preview(None)

    def show_run(self, view, dataset) -> bool:
        """An opened run (a `latentlab.runs.view.RunView`): its decoder, and its encoded validation images
        on the map when latents.npz has them. ``dataset`` is the loaded one: it gives the points'
        originals when it is the run's. True when the run's own dataset should be loaded for that."""
        from latentlab.runs.view import map_points

        self.show_model(view.model_key, view.decoder_weights)
        lat = view.run.latents
        self.points_dataset = dataset if dataset is not None and runs.latents_match(dataset.paths, lat) else None
        points = map_points(lat)
        if points is None:
            self.map.fit()
            return False
        lv = lat.get("z_log_var")
        self.map.set_points(*points, z_log_var=None if lv is None else np.asarray(lv)[points[3]])
        return self.points_dataset is None

    @Slot(object)
    def show_foreign(self, view) -> None:
        """A decoder trained elsewhere (a `latentlab.model.foreign.ForeignView`, from ForeignModel.opened): its
        decoder, and the dataset's images it encoded on the map when it has an encoder and a dataset."""
        self.show_model(view.model_key, view.decoder_weights)
        ds = view.dataset
        if view.z_mean is not None and ds is not None:
            labels = ds.labels if ds.labeled else None
            self.map.set_points(view.z_mean, labels, list(ds.class_names), np.arange(ds.num_images))
            self.points_dataset = ds
        else:
            self.map.fit()

    def dataset_loaded(self, dataset, latents) -> None:
        """A dataset finished loading: it gives the originals of the points of the run shown if it is that
        run's (``latents``: the run's latents.npz)."""
        if self.points_dataset is None and runs.latents_match(dataset.paths, latents):
            self.points_dataset = dataset

    @Slot(object)
    def on_train_event(self, ev) -> None:
        """A training's weights follow on the map: snapshots mid-epoch; at an epoch's end, the encoded
        validation images too."""
        if isinstance(ev, WeightsSnapshot):
            self.set_weights(ev.decoder_weights)
        elif isinstance(ev, EpochEnd):
            ds = self.points_dataset
            labels = ds.labels[ev.val_indices] if ds is not None and len(ev.val_indices) else None
            self.map.set_points(ev.val_z_mean, labels, list(ds.class_names) if ds is not None else [], ev.val_indices,
                                z_log_var=ev.val_z_log_var)
            self.set_weights(ev.decoder_weights)

    def points_as_latents(self) -> dict | None:
        """The map's points as a latents dict (for a CSV when the run has no latents.npz yet)."""
        m, ds = self.map, self.points_dataset
        if not len(m.z):
            return None
        return {"z_mean": m.z, "labels": m.labels, "class_names": m.class_names, "split": [1] * len(m.z),
                "paths": [ds.paths[i] if ds is not None else str(i) for i in m.indices]}

    def set_weights(self, weights) -> None:
        """New decoder weights (a snapshot or a finished epoch): the grid follows, the click is redone."""
        self.latest_weights = weights
        self.renderer.set_weights(weights)
        if self.point_decoder is not None:
            self.point_decoder.set_weights(weights)
        self.map.request_grid(urgent=False)
        self._redo_last_click()

    @Slot(object, object, object)
    def on_decoders_built(self, key, grid_decoder, point_decoder) -> None:
        self.renderer.adopt(key, grid_decoder, point_decoder)
        if self.renderer.ready_key == key:
            self._on_point_decoder(point_decoder)

    def _use_point_decoder(self, decoder) -> None:
        self.point_decoder = decoder
        if decoder is not None:
            if self.latest_weights is not None:
                decoder.set_weights(self.latest_weights)
            self.decoderReady.emit(decoder)

    @Slot(object)
    def _on_point_decoder(self, decoder) -> None:
        self._use_point_decoder(decoder)
        if self.latest_weights is not None:
            self._redo_last_click()
        self.map.request_grid()

    # -- decoding ----------------------------------------------------------------------------------------
    def decode(self, z) -> np.ndarray | None:
        """The image for one latent vector, decoded on the GUI thread by its own Decoder (~1 ms)."""
        if self.point_decoder is None or self.latest_weights is None:
            return None
        return self.point_decoder.decode(np.asarray(z, np.float32)[None])[0]

    @Slot()
    def request_grid(self) -> None:
        if self.model_info is None or self.latest_weights is None:
            return
        self.renderer.request(**self.map.grid_params(self.model_info.image_shape), urgent=self.map.take_grid_urgency())

    @Slot(object)
    def _on_grid_rendered(self, out: dict) -> None:
        self.map.set_grid(out["mosaic"], out["x_range"], out["y_range"], out["n"])
        self.last_grid_timing = {"decode_s": out.get("seconds"), "latency_s": out.get("latency")}
        self.gridShown.emit()

    # -- the map's clicks and hovers ------------------------------------------------------------------------
    @Slot(object, object)
    def on_map_clicked(self, z, xy) -> None:
        self.last_click = ("z", np.asarray(z), xy)
        image = self.decode(z)
        if image is None:
            self.image_panel.clear("The decoder is not ready yet: it appears after the first weights snapshot.")
            return
        self.image_panel.show_decoded(image, z, xy)

    @Slot(object, object)
    def on_map_hovered(self, z, xy) -> None:
        self.map.show_preview(self.decode(z), xy)

    @Slot(int, object)
    def on_point_clicked(self, index: int, z) -> None:
        self.last_click = ("point", int(index), np.asarray(z))
        recon = self.decode(z)
        if recon is None:
            return
        ds = self.points_dataset
        original, title = None, f"image #{index}"
        if ds is not None and 0 <= index < ds.num_images:
            original = ds.images[index]
            title = ds.paths[index]
            if ds.labeled and ds.labels[index] >= 0:
                title += f" ({ds.class_names[ds.labels[index]]})"
        selected = self.map.layers.selected
        kl = selected["kl_per_dim"] if selected is not None and int(self.map.indices[selected["row"]]) == index else None
        self.image_panel.show_pair(original, recon, z, title, kl_per_dim=kl)

    def _redo_last_click(self) -> None:
        if self.last_click is None:
            if self.point_decoder is not None and self.latest_weights is not None:
                (x0, x1), (y0, y1) = self.map.vb.viewRange()
                x, y = (x0 + x1) / 2, (y0 + y1) / 2   # show something at once: the map's centre
                self.on_map_clicked(self.map.z_at(x, y), (x, y))
            return
        if self.last_click[0] == "z":
            self.on_map_clicked(self.last_click[1], self.last_click[2])
        else:
            self.on_point_clicked(self.last_click[1], self.last_click[2])

    @property
    def busy(self) -> bool:
        return self.renderer.busy or self.map._grid_timer.isActive()

    def shutdown(self) -> None:
        self.renderer.shutdown()
