"""The latent map wing: the map itself (latent_map, made of map_plane, map_viewport, map_grid, map_pointer
and map_layers; its points in point_cloud), the grids decoded off
the GUI thread (grid_renderer), the model shown on it (map_controller) and samples from the prior
(prior_samples). The window reaches the wing through latent_map, map_controller and prior_samples.

Kept empty on purpose (no TensorFlow, no re-exports): import the module you need."""
