"""The runs wing: a run folder and its atomic writes (folder), the one-writer lock (lock), a run
packed for the wire (pack), what a finished run shows (view) and the Embedding Projector export
(projector).

Kept empty on purpose: importing this package imports no TensorFlow; import the module you need."""
