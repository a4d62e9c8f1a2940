"""params.TABLE is the one list of the translator's parameters: Translator's signature (spelled
out for readers and editors) is the table's, name for name and default for default; every
argument is stored; translate train's options are the table's train rows."""

import argparse
import inspect

from rnnlab.translate import Translator, params, train_args
from rnnlab.translate.options import TRAIN_DEFAULTS


def test_the_signature_is_the_table():
    sig = inspect.signature(Translator)
    named = [(n, p.default) for n, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD]
    assert named == [(p.name, p.default) for p in params.TABLE if p.argument]
    assert list(sig.parameters)[-1] == "old_names"  # round 1's names, warned (params.RENAMED)
    assert Translator._PARAMS == params.NAMES


def test_every_argument_is_stored_under_its_name():
    values = {name: f"value of {name}" for name in params.NAMES}
    assert Translator(**values).get_params() == values
    assert all(f"    {name} : " in Translator.__doc__ for name in params.NAMES)


def test_translate_train_has_one_option_per_train_row():
    parser = argparse.ArgumentParser()
    for add in (train_args.add_data_arguments, train_args.add_model_arguments):
        add(parser)
    train_args.add_training_arguments(parser)
    dests = {a.dest for a in parser._actions} - {"help", "out", "overwrite", "resume", "quiet"}
    assert dests == set(TRAIN_DEFAULTS) == {p.name for p in params.TRAIN}
    assert all(a.default is None for a in parser._actions if a.dest in dests)  # a default is told apart
    for p in params.TRAIN:
        assert p.type is bool or p.parse is not None or p.choices is not None or p.name == "pairs", p.name
        if p.choices:
            assert isinstance(p.cli_default, str) and p.cli_default in p.choices, p.name
        elif p.cli_default is not None and p.parse is not None:
            assert p.parse(str(p.cli_default)) == p.cli_default, p.name  # the default is valid


def test_bools_have_switches_and_others_a_type():
    for p in params.TABLE:
        assert isinstance(p.default, (p.type, type(None))), p.name
        assert bool(p.switches) == (p.type is bool and p.section is not None), p.name
