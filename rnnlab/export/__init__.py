"""Models that leave rnnlab: ONNX graphs of the layers (``to_onnx``) and the pieces a whole
model's graph is built of (``onnx_graph``). A forecaster's graph and a translator's two are
their own (``rnnlab.forecast.estimator.export``, ``rnnlab.translate.export``), built on these, so nothing
here imports an application. Keras and PyTorch modules: ``rnnlab.interop``."""

from rnnlab.errors import UserError
from rnnlab.export.onnx_graph import to_onnx

__all__ = ["to_onnx", "need_onnx"]


def need_onnx() -> None:
    """Raise a one-line ``UserError`` when the onnx package is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError('export needs the onnx package: pip install "rnnlab[onnx]"') from None
