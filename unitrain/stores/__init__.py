"""Where unitrain keeps what outlives a job: the model registry and the dataset catalog."""
