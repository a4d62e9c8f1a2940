"""The options of ``rnnlab translate train`` on the command line: the data and vocabulary, the
architecture, the training. Every default is None here, so that an explicit value can be told
from a default; the defaults themselves are ``options.TRAIN_DEFAULTS``."""

from __future__ import annotations

from rnnlab import cliargs
from rnnlab.nn.attention import SCORES
from rnnlab.translate import corpus
from rnnlab.translate.model import CELLS
from rnnlab.translate.subword import KINDS


def add_data_arguments(t):
    """``translate train``: where the model goes, the pairs, the split and the vocabulary."""
    t.add_argument(
        "--out", required=True, metavar="DIR", type=cliargs.output_dir, help="model directory to write"
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace a directory that holds something other than a translator (or a run)",
    )
    t.add_argument(
        "--pairs", metavar="PATH", help="source<TAB>target file (default: the bundled Tatoeba fra-eng)"
    )
    t.add_argument(
        "--split-protocol",
        choices=corpus.PROTOCOLS,
        help="sha1 bucket of the raw English string (the yardstick's) or of its normalised "
        "tokens; bucket 0 test, 1 valid (default: sha1)",
    )
    t.add_argument(
        "--max-len",
        type=cliargs.bounded_int(cliargs.MAX_STEPS),
        help="keep pairs with at most this many tokens a side (default: 10)",
    )
    t.add_argument(
        "--min-freq",
        type=cliargs.positive_int,
        help="vocabulary: words seen at least this often (default: 2)",
    )
    t.add_argument("--no-lower", dest="lower", action="store_const", const=False, help="keep the case")
    t.add_argument(
        "--reverse",
        action="store_const",
        const=True,
        help="translate the file's second column into its first (French -> English on the bundled pairs)",
    )
    t.add_argument(
        "--vocab",
        choices=KINDS,
        help="SentencePiece subwords learned on the training part, or words (min-freq) (default: bpe)",
    )
    t.add_argument(
        "--vocab-size",
        type=cliargs.bounded_int(1_000_000),
        help="subword vocabulary size, at most (default: 8000)",
    )
    t.add_argument("--joint-vocab", action="store_const", const=True, help="one subword model for both sides")


def add_model_arguments(t):
    """``translate train``: the architecture (cell, attention, sizes) and dropout."""
    t.add_argument("--cell", choices=CELLS, help="recurrent cell of encoder and decoder (default: gru)")
    t.add_argument(
        "--attention",
        choices=SCORES,
        help="score function; none = the chapter's plain seq2seq (default: general)",
    )
    t.add_argument(
        "--bidirectional", action="store_const", const=True, help="bidirectional encoder (the default)"
    )
    t.add_argument(
        "--no-bidirectional", dest="bidirectional", action="store_const", const=False, help="one direction"
    )
    t.add_argument(
        "--layers",
        type=cliargs.layers,
        dest="num_layers",
        help="layers of encoder and decoder (default: 1)",
    )
    t.add_argument(
        "--hidden", type=cliargs.hidden_size, dest="hidden_size", help="hidden units (default: 256)"
    )
    t.add_argument(
        "--emb", type=cliargs.hidden_size, dest="embedding_size", help="embedding size (default: 256)"
    )
    t.add_argument(
        "--input-feed",
        action="store_const",
        const=True,
        help="Luong's input feeding: h~_{t-1} joins the decoder input",
    )
    t.add_argument(
        "--dropout",
        type=cliargs.number(float, 0.0, "a number in [0, 1)", 0.99),
        help="dropout on embeddings and h~ (default: 0)",
    )


def add_training_arguments(t):
    """``translate train``: teacher forcing, epochs and time, the optimizer, threads, resuming."""
    t.add_argument(
        "--teacher-forcing",
        type=cliargs.unit_interval,
        help="probability of feeding the gold word (default: 1)",
    )
    t.add_argument("--epochs", type=cliargs.bounded_int(100_000), help="maximum epochs (default: 10)")
    t.add_argument(
        "--time-budget",
        type=cliargs.positive_float,
        metavar="MINUTES",
        help="stop training after this many minutes in all (resumed runs included)",
    )
    t.add_argument("--batch-size", type=cliargs.positive_int, help="sentence pairs per update (default: 64)")
    t.add_argument("--lr", type=cliargs.learning_rate, help="Adam learning rate (default: 0.001)")
    t.add_argument("--clip", type=cliargs.positive_float, help="clip the global gradient norm (default: 5)")
    t.add_argument(
        "--lr-decay",
        type=cliargs.number(float, 0.0, "a number in (0, 1]", 1.0, low_open=True),
        help="learning rate factor after an epoch without valid score gain (default: 0.5)",
    )
    t.add_argument(
        "--early-stopping",
        type=cliargs.positive_int,
        metavar="EPOCHS",
        help="stop after this many epochs without valid score gain (default: 3)",
    )
    t.add_argument(
        "--valid-metric",
        choices=("bleu", "chrf"),
        help="the validation score that picks the best epoch: bleu on tokens, or chrf (characters: "
        "for scripts written without spaces) (default: bleu)",
    )
    t.add_argument(
        "--average-last",
        type=cliargs.bounded_int(100),
        metavar="K",
        help="at the end, average the last K epochs' weights; kept if it validates better than the "
        "best epoch (default: 1, off)",
    )
    t.add_argument("--seed", type=cliargs.nonnegative_int, help="seed (default: 0)")
    t.add_argument(
        "--threads",
        type=cliargs.bounded_int(256),
        help="threads for the output layer, softmax and Adam; BLAS is held at one "
        "(default: the CPUs, at most 4)",
    )
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
