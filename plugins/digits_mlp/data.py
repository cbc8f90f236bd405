"""Loading a prepared dataset file into train/validation tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (float32, 2-D) and ``y`` (int64) from an ``.npz`` or ``.csv`` file."""
    file = Path(path)
    if file.is_dir():
        candidates = sorted(p for p in file.rglob("*") if p.suffix in (".npz", ".csv"))
        if not candidates:
            raise ValueError(f"dataset folder {file} holds no .npz or .csv file")
        file = candidates[0]
    if file.suffix == ".npz":
        with np.load(file) as arrays:
            if "X" not in arrays or "y" not in arrays:
                raise ValueError(f"{file.name}: an .npz dataset needs arrays 'X' and 'y'")
            features, labels = arrays["X"], arrays["y"]
    elif file.suffix == ".csv":
        table = np.loadtxt(file, delimiter=",", skiprows=_header_rows(file), ndmin=2)
        features, labels = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"{file.name}: expected an .npz or .csv file")
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    return features, np.asarray(labels, dtype=np.int64)


def _header_rows(file: Path) -> int:
    with open(file) as handle:
        first = handle.readline().split(",")
    try:
        [float(cell) for cell in first]
        return 0
    except ValueError:
        return 1


def split(
    features: np.ndarray, labels: np.ndarray, *, seed: int, validation_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded shuffle, then ``validation_fraction`` held out."""
    order = np.random.default_rng(seed).permutation(len(features))
    cut = max(1, int(len(features) * (1 - validation_fraction)))
    train, valid = order[:cut], order[cut:]
    return features[train], labels[train], features[valid], labels[valid]
