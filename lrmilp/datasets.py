"""The 8x8 digits of scikit-learn (shipped inside the package: nothing is downloaded), scaled to [0, 1].

lrmilp's trained models (``models/digits-*``) and the benchmark specs use one fixed split, defined
by position so that it needs no random generator: sample i of ``sklearn.datasets.load_digits()``
is a test sample iff ``i % TEST_EVERY == 0`` (360 test, 1437 training samples).  scikit-learn is
an optional dependency; without it :func:`digits` raises :class:`InputError`.

``digits(size=28)`` gives the same images at MNIST's size, 28x28 = 784 inputs (see
:func:`upsample`): each 8x8 image of pixel / 16 is resized by ``scipy.ndimage.zoom(img, 28 / 8,
order=1)`` (bilinear, corners aligned: output pixel (r, c) is the 8x8 image interpolated at
(7 r / 27, 7 c / 27)), then clipped to [0, 1] (bilinear interpolation stays in the hull of its
input pixels, so the clip only removes rounding).  No new information: the zoom is linear, so the
784-vectors lie in a 64-dimensional subspace.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

PIXEL_MAX = 16.0  # load_digits pixels are integers 0..16; dividing by it maps inputs into [0, 1]^64
TEST_EVERY = 5
SPLITS = ("train", "test", "all")
SPLIT_RULE = f"sample i of sklearn.datasets.load_digits() is a test sample iff i % {TEST_EVERY} == 0"
SIDE = 8  # load_digits images are 8x8
SIZES = (SIDE, 28)  # image sides digits() offers: the original and MNIST's
UPSAMPLE_ORDER = 1  # spline order of scipy.ndimage.zoom: 1 = bilinear
INPUTS = {SIDE: "pixel / 16 (8x8, 64 inputs)",
          28: "pixel / 16, each 8x8 image resized by scipy.ndimage.zoom(img, 28 / 8, order=1) (bilinear, "
              "corners aligned), clipped to [0, 1] (28x28, 784 inputs)"}


def digits(*, split: str = "all", size: int = SIDE) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: X of shape (n, size * size), float64 in [0, 1] (pixel / 16, rows of the image in C
    order, so ``X.reshape(-1, 1, size, size)`` is the (C, H, W) image), y the digit 0..9 as int64.

    ``split`` is ``"train"``, ``"test"`` or ``"all"`` (see the module doc for the rule); ``size`` is 8
    (the original images, 64 inputs) or 28 (upsampled by :func:`upsample`, 784 inputs).
    """
    if split not in SPLITS:
        raise InputError(f"unknown digits split '{split}' (expected one of {', '.join(SPLITS)})")
    if size not in SIZES:
        raise InputError(f"digits come in sizes {', '.join(map(str, SIZES))} (image side), not {size!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError("the digits data need scikit-learn: pip install scikit-learn") from None
    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64) / PIXEL_MAX
    y = np.asarray(data.target, dtype=np.int64)
    if split != "all":
        test = np.arange(len(y)) % TEST_EVERY == 0
        keep = test if split == "test" else ~test
        X, y = X[keep], y[keep]
    return (X if size == SIDE else upsample(X, size)), y


def upsample(X: np.ndarray, size: int = 28) -> np.ndarray:
    """Rows of 8x8 images in [0, 1] (shape (n, 64)) as rows of size x size images (shape (n, size**2)):
    ``np.clip(scipy.ndimage.zoom(img, size / 8, order=1), 0, 1)`` per image (bilinear, corners aligned)."""
    from scipy.ndimage import zoom
    X = np.asarray(X, dtype=np.float64).reshape(-1, SIDE, SIDE)
    out = np.empty((len(X), size, size))
    for i, img in enumerate(X):  # one image at a time: a zoom over the stack could blend neighbours
        out[i] = zoom(img, size / SIDE, order=UPSAMPLE_ORDER)
    return np.clip(out, 0.0, 1.0).reshape(len(X), size * size)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest output is at the label (ties go to the first maximum)."""
    return float(np.mean(np.argmax(np.asarray(outputs), axis=1) == np.asarray(labels)))
