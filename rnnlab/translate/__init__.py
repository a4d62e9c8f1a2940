"""rnnlab.translate: English -> French with an attentional encoder-decoder, every gradient by hand.

``Translator(...).fit(pairs).translate(sentences)``; the model is ``model.Seq2Seq``, the
attention ``rnnlab.nn.attention.Attention``; ``rnnlab translate`` is the command line.
"""

from rnnlab.translate.translator import Translator

__all__ = ["Translator"]
