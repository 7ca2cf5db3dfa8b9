"""The trade-off wing: the "Trade-off" dock (tradeoff_panel, the wing's facade: the window imports
nothing else from here) and its views: loss terms, KL per dimension, the rate–distortion plane, the
β sweep, run comparison, epoch replay, the lesson, and the latent tools (traversal, interpolation,
nearest) the comparison and the lesson show. It never imports the map wing.

Kept empty on purpose (no TensorFlow, no re-exports): import the module you need."""
