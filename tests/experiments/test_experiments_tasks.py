"""The task generators: targets computed independently from the inputs, seeded, right shapes."""

import numpy as np
import pytest

from rnnlab.experiments import ADDING_BASELINE_MSE, adding_problem, copy_chance, copy_problem


def test_adding_targets_are_the_sum_of_the_two_marked_values():
    x, y = adding_problem(64, 17, np.random.default_rng(0))
    assert x.shape == (17, 64, 2) and y.shape == (64, 1)
    values, marks = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks.sum(0) == 2), "exactly two marked steps per sequence"
    for n in range(64):
        a, b = np.flatnonzero(marks[:, n])
        assert a < 17 // 2 <= b, "one mark in each half"
        assert y[n, 0] == pytest.approx(values[a, n] + values[b, n], abs=1e-6)


def test_adding_is_seeded():
    x1, y1 = adding_problem(8, 10, 3)
    x2, y2 = adding_problem(8, 10, 3)
    x3, _ = adding_problem(8, 10, 4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_constant_one_baseline_is_one_sixth():
    _, y = adding_problem(40000, 6, np.random.default_rng(1))
    mse = float(np.mean((y.astype(np.float64) - 1.0) ** 2))
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert mse == pytest.approx(1 / 6, abs=0.005)


def test_copy_inputs_and_targets():
    A, K, T = 6, 4, 9
    x, y = copy_problem(32, T, np.random.default_rng(0), n_symbols=A, n_recall=K)
    assert x.shape == (K + T + K, 32, A + 2) and y.shape == (K, 32)
    np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot everywhere
    codes = x.argmax(-1)  # (K+T+K, N)
    np.testing.assert_array_equal(codes[:K], y)  # the symbols come first ...
    assert np.all((y >= 0) & (y < A))
    assert np.all(codes[K : K + T] == A)  # ... then T blanks
    assert np.all(codes[K + T] == A + 1)  # ... then the go marker
    assert np.all(codes[K + T + 1 :] == A)  # ... then blanks while recalling
    assert copy_chance(A) == pytest.approx(1 / A)


def test_copy_zero_delay_and_seed():
    x, y = copy_problem(5, 0, 7, n_symbols=3, n_recall=2)
    assert x.shape == (4, 5, 5)
    x2, y2 = copy_problem(5, 0, 7, n_symbols=3, n_recall=2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0, length=5), "n must be"),
        (dict(n=4, length=1), "length must be"),
        (dict(n=4, length=2.5), "length must be"),
    ],
)
def test_adding_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adding_problem(rng=0, **kwargs)


def test_copy_bad_arguments():
    with pytest.raises(ValueError, match="n_symbols"):
        copy_problem(4, 3, 0, n_symbols=1)
    with pytest.raises(ValueError, match="delay"):
        copy_problem(4, -1, 0)
