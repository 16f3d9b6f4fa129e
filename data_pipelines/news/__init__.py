"""data_pipelines.news."""
