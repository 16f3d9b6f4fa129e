"""data_pipelines.synthetic."""
