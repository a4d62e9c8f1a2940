"""rnnlab.nn: the recurrent family with hand-derived forward and backward passes."""

from rnnlab.nn import init, runtime
from rnnlab.nn.attention import Attention
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.layers import GRU, LSTM, RNN, RNNBase
from rnnlab.nn.linear import Dropout, Embedding, Linear
from rnnlab.nn.loss import CrossEntropyLoss, MSELoss
from rnnlab.nn.module import Module, inference_mode, is_inference_mode_enabled
from rnnlab.nn.quantize import QuantizedRNN, quantize_dynamic
from rnnlab.nn.stepping import StackedCell, StepTape

__all__ = [
    "init",
    "runtime",
    "Attention",
    "Module",
    "RNN",
    "LSTM",
    "GRU",
    "RNNBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "StackedCell",
    "StepTape",
    "Linear",
    "Embedding",
    "Dropout",
    "MSELoss",
    "CrossEntropyLoss",
    "inference_mode",
    "is_inference_mode_enabled",
    "QuantizedRNN",
    "quantize_dynamic",
]
