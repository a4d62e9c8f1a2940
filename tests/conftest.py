import numpy as np
import pytest


def rel_err(a, b):
    """max |a - b| / max(|b|, tiny): one number per tensor, scaled by the reference."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-30))


def assert_close(name, a, b, tol):
    e = rel_err(a, b)
    assert e <= tol, f"{name}: relative error {e:.3e} > {tol:.0e}"
    return e


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
