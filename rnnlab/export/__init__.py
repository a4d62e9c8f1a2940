"""Models that leave rnnlab: ONNX graphs (``to_onnx``). Keras and PyTorch modules: ``rnnlab.interop``."""

from rnnlab.export.onnx_graph import to_onnx

__all__ = ["to_onnx"]
