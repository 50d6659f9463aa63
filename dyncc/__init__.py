"""dyncc: one topology spec in, consistent Dynamo + TensorRT-LLM deployments out."""

__version__ = "0.1.0"
