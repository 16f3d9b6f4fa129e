"""data_pipelines.prices."""
