"""The translator's parameters, declared once: ``TABLE``, one row per parameter (name, default,
type, what is valid, help), in ``Translator``'s signature order, with the three options of
``rnnlab translate train`` that are not its arguments (the corpus and its direction) among them.

Everything that names the parameters reads this table: ``Translator.get_params`` /
``set_params`` and its docstring (``NAMES``, ``doc``), ``translate train``'s options, their
parsers, help and defaults (``train_args.py``, ``TRAIN_DEFAULTS``), what a resumed run must
keep and what a run saved before an option existed meant (``options.py``), the sizes a model
file may ask for, the round-1 names and the architecture a checkpoint must share
(``storage.py``). ``Translator.__init__`` spells its signature out for readers and editors;
``tests/translate/test_params.py`` holds it to this table, name for name, default for default.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnlab import cliargs
from rnnlab.nn.attention import SCORES
from rnnlab.translate.corpus import PROTOCOLS
from rnnlab.translate.model import CELLS
from rnnlab.translate.subword import KINDS

METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF"}  # the validation scores, as printed
SECTIONS = ("data", "model", "training")  # how ``translate train --help`` groups its options
SAME = object()  # train_default: Translator's default; before: every saved run holds it


@dataclass(frozen=True)
class Param:
    name: str
    default: Any  # Translator's (translate train's, for an option that is not its argument)
    type: type  # bool, int, float or str (None is allowed where the default is None)
    help: str  # what it means: the docstring's line, and the option's help
    parse: Callable | None = None  # the command line's parser (``cliargs``): its bounds
    choices: tuple | None = None  # the valid values of a str
    section: str | None = None  # where ``translate train`` lists it (None: not its option)
    flag: str | None = None  # the option, when it is not --name-with-dashes
    switches: tuple = ()  # a bool's options: ("--x" sets True / "--no-x" sets False, help), ...
    metavar: str | None = None
    train_default: Any = SAME  # translate train's default, where it is not Translator's
    default_text: str | None = None  # the help's "(default: ...)", where it is not the value
    argument: bool = True  # an argument of Translator (False: an option of translate train only)
    fixed: str | None = None  # "data", "model": a resumed run keeps it ("model": fit's checkpoint too)
    size: bool = False  # a size a model file may ask for: bounded (``parse``) before anything is built
    before: Any = SAME  # what a run saved before this option existed was trained with
    renamed_from: str | None = None  # its round-1 name, accepted with a DeprecationWarning

    @property
    def cli_default(self) -> Any:
        return self.default if self.train_default is SAME else self.train_default


D, M, T = SECTIONS  # short, for the rows
# fmt: off
TABLE = (
    Param("cell", "gru", str, "recurrent cell of encoder and decoder", choices=CELLS, section=M,
          fixed=M),
    Param("attention", "general", str, "score function; none = the chapter's plain seq2seq",
          choices=SCORES, section=M, fixed=M),
    Param("bidirectional", False, bool, "bidirectional encoder", section=M, fixed=M,
          train_default=True,  # measured: the best of 25 minutes (README, benchmarks/RESULTS.md)
          switches=(("--bidirectional", "bidirectional encoder (the default)"),
                    ("--no-bidirectional", "one direction"))),
    Param("num_layers", 1, int, "layers of encoder and decoder", cliargs.layers, section=M,
          flag="--layers", fixed=M, size=True, renamed_from="layers"),
    Param("hidden_size", 256, int, "hidden units", cliargs.hidden_size, section=M, flag="--hidden",
          fixed=M, size=True, renamed_from="hidden"),
    Param("embedding_size", 256, int, "embedding size", cliargs.hidden_size, section=M, flag="--emb",
          fixed=M, size=True, renamed_from="emb"),
    Param("input_feed", False, bool, "Luong's input feeding: h~_{t-1} joins the decoder input",
          section=M, fixed=M, switches=(("--input-feed", None),)),
    Param("dropout", 0.0, float, "dropout on embeddings and h~",
          cliargs.number(float, 0.0, "a number in [0, 1)", 0.99), section=M),
    Param("teacher_forcing", 1.0, float, "probability of feeding the gold word", cliargs.unit_interval,
          section=T),
    Param("pairs", None, str, "source<TAB>target file", section=D, metavar="PATH", argument=False,
          default_text="the bundled Tatoeba fra-eng", fixed=D),
    Param("split_protocol", "sha1", str, "sha1 bucket of the raw English string (the yardstick's) or "
          "of its normalised tokens; bucket 0 test, 1 valid", choices=PROTOCOLS, section=D,
          argument=False, fixed=D),
    Param("max_len", 10, int, "keep pairs with at most this many tokens a side",
          cliargs.bounded_int(cliargs.MAX_STEPS), section=D, fixed=D, size=True),
    Param("min_freq", 2, int, "vocabulary: words seen at least this often", cliargs.positive_int,
          section=D, fixed=D),
    Param("lower", False, bool, "lower-case the text (the yardstick's protocol; the default before "
          "round 3)", section=D, fixed=D,
          switches=(("--lowercase", "lower-case the text: the yardstick's protocol, and every "
                                    "model before round 3"),
                    ("--no-lower", "keep the case (the default)"))),
    Param("truecase", True, bool, "truecase the text (Moses's recaser): every word in its most "
          "frequent case in the training data, the output's first word capitalised; the vocabulary "
          "of a lower-cased model, cased output (without --lowercase)", section=D, fixed=D,
          before=False,
          switches=(("--truecase", "truecase the text (the default)"),
                    ("--no-truecase", "words exactly as typed: a sentence's first word is a word of its "
                                      "own (Je/je)"))),
    Param("target_lang", None, str, "the target language's code (ISO 639-1: fr, es, en ...), for "
          "sacremoses' detokenisation rules (French keeps a space before ? ! : ;); None: fr on "
          "the bundled pairs (en with --reverse), else en", cliargs.lang_code, section=D, fixed=D,
          metavar="CODE", before=None),
    Param("reverse", False, bool, "translate the file's second column into its first (French -> "
          "English on the bundled pairs)", section=D, argument=False, fixed=D, before=False,
          switches=(("--reverse", None),)),
    Param("vocab", "word", str, "SentencePiece subwords learned on the training part, or words "
          "(min-freq)", choices=KINDS, section=D, fixed=D, before="word",
          train_default="bpe"),  # measured: the best of 25 minutes (README, benchmarks/RESULTS.md)
    Param("vocab_size", 8000, int, "subword vocabulary size, at most", cliargs.bounded_int(1_000_000),
          section=D, fixed=D, before=8000),
    Param("joint_vocab", False, bool, "one subword model for both sides", section=D, fixed=D,
          before=False, switches=(("--joint-vocab", None),)),
    Param("valid_metric", "bleu", str, "the validation score that picks the best epoch: bleu on "
          "tokens, or chrf (characters: for scripts written without spaces)",
          choices=tuple(METRIC_NAMES), section=T, before="bleu"),
    Param("epochs", 10, int, "maximum epochs", cliargs.bounded_int(100_000), section=T),
    Param("time_budget", None, float, "stop training after this many minutes in all (resumed runs "
          "included)", cliargs.positive_float, section=T, metavar="MINUTES"),
    Param("batch_size", 64, int, "sentence pairs per update", cliargs.positive_int, section=T),
    Param("lr", 1e-3, float, "Adam learning rate", cliargs.learning_rate, section=T),
    Param("clip", 5.0, float, "clip the global gradient norm", cliargs.positive_float, section=T),
    Param("lr_decay", 0.5, float, "learning rate factor after an epoch without valid score gain",
          cliargs.number(float, 0.0, "a number in (0, 1]", 1.0, low_open=True), section=T),
    Param("early_stopping", 3, int, "stop after this many epochs without valid score gain",
          cliargs.positive_int, section=T, metavar="EPOCHS"),
    Param("average_last", 1, int, "at the end, average the last K epochs' weights; kept if it "
          "validates better than the best epoch", cliargs.bounded_int(100), section=T, metavar="K",
          default_text="1, off"),
    Param("keep_epochs", 0, int, "keep the last K epochs' weights as model directories "
          "OUT/epochs/<epoch> (for translate average; with a checkpoint directory)",
          cliargs.bounded_int(100, low=0), section=T, metavar="K", train_default=2, before=0),
    Param("beam_size", 1, int, "beam width of translate and evaluate; 1 = greedy"),
    Param("length_penalty", 1.0, float, "beam search: alpha of ((5 + |Y|) / 6) ** alpha"),
    Param("max_output_len", None, int, "output units a translation may have at most (None: the "
          "longer of max_len, 3 max_len for subwords, and the input, + 5)"),
    Param("max_input_len", None, int, "tokens of an input kept, the rest truncated with a warning "
          "(None: 2 max_len)"),
    Param("dtype", "float32", str, "the model's float type (float64 for gradient checks)", fixed=M),
    Param("seed", 0, int, "seed", cliargs.nonnegative_int, section=T),
    Param("threads", 1, int, "threads for the output layer, softmax and Adam; BLAS is held at one",
          cliargs.bounded_int(256), section=T, train_default=None, default_text="the CPUs, at most 4"),
    Param("verbose", 0, int, "0: silent; 1: a line per epoch; 2: and a progress bar"),
)
# fmt: on
BY_NAME = {p.name: p for p in TABLE}
NAMES = tuple(p.name for p in TABLE if p.argument)  # Translator's arguments, in order
# translate train's options, as its help lists them (by section) and config.json holds them
TRAIN = tuple(p for s in SECTIONS for p in TABLE if p.section == s)
RENAMED = {p.renamed_from: p.name for p in TABLE if p.renamed_from}  # round 1's names
# name -> the parser that bounds it
SIZES: dict[str, Callable] = {p.name: p.parse for p in TABLE if p.size and p.parse is not None}
ARCHITECTURE = tuple(p.name for p in TABLE if p.argument and p.fixed == M)  # a checkpoint's


def check_choice(name: str, value) -> None:
    """``ValueError`` unless ``value`` is one of the parameter ``name``'s choices."""
    choices = BY_NAME[name].choices or ()
    if value not in choices:
        raise ValueError(f"{name} must be {' or '.join(map(repr, choices))}, got {value!r}")


def help_line(p: Param) -> str:
    """An option's help: its meaning and, for a value, the default of ``translate train``."""
    if p.default_text is None and p.cli_default is None:
        return p.help
    shown = p.default_text or (f"{p.cli_default:g}" if p.type is float else str(p.cli_default))
    return f"{p.help} (default: {shown})"


def doc() -> str:
    """The rows as a numpydoc "Parameters" section, for ``Translator``'s docstring."""
    lines = ["    Parameters", "    ----------"]
    for p in TABLE:
        if p.argument:
            valid = " | ".join(map(repr, p.choices)) if p.choices else p.type.__name__
            valid += " or None" if p.default is None else ""
            lines.append(f"    {p.name} : {valid}, default {p.default!r}")
            lines += textwrap.wrap(p.help + ".", 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return "\n".join(lines) + "\n"
