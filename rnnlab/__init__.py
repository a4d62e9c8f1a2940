"""rnnlab: gated recurrent networks from first principles, in NumPy."""

from rnnlab import nn, optim
from rnnlab.gradcheck import gradcheck, gradcheck_module

__version__ = "0.2.0"
__all__ = ["nn", "optim", "gradcheck", "gradcheck_module", "__version__"]
