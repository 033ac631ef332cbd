"""The 8x8 digits of scikit-learn (shipped inside the package: nothing is downloaded), scaled to [0, 1].

lrmilp's trained models (``models/digits-*``) and the benchmark specs use one fixed split, defined
by position so that it needs no random generator: sample i of ``sklearn.datasets.load_digits()``
is a test sample iff ``i % TEST_EVERY == 0`` (360 test, 1437 training samples).  scikit-learn is
an optional dependency; without it :func:`digits` raises :class:`InputError`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

PIXEL_MAX = 16.0  # load_digits pixels are integers 0..16; dividing by it maps inputs into [0, 1]^64
TEST_EVERY = 5
SPLITS = ("train", "test", "all")
SPLIT_RULE = f"sample i of sklearn.datasets.load_digits() is a test sample iff i % {TEST_EVERY} == 0"


def digits(*, split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: X of shape (n, 64), float64 in [0, 1] (pixel / 16, rows of the 8x8 image in C
    order, so ``X.reshape(-1, 1, 8, 8)`` is the (C, H, W) image), y the digit 0..9 as int64.

    ``split`` is ``"train"``, ``"test"`` or ``"all"`` (see the module doc for the rule).
    """
    if split not in SPLITS:
        raise InputError(f"unknown digits split '{split}' (expected one of {', '.join(SPLITS)})")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError("the digits data need scikit-learn: pip install scikit-learn") from None
    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64) / PIXEL_MAX
    y = np.asarray(data.target, dtype=np.int64)
    if split == "all":
        return X, y
    test = np.arange(len(y)) % TEST_EVERY == 0
    keep = test if split == "test" else ~test
    return X[keep], y[keep]


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest output is at the label (ties go to the first maximum)."""
    return float(np.mean(np.argmax(np.asarray(outputs), axis=1) == np.asarray(labels)))
