"""dyncc: one topology spec in, consistent NVIDIA Dynamo deployments out."""

__version__ = "0.1.0"
