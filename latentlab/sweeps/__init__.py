"""The sweeps wing: β sweeps in this process (sweep), on a Dask cluster (cluster, cluster_task), and
the β lesson built on them (lesson).

Kept empty on purpose: importing this package imports no TensorFlow; import the module you need."""
