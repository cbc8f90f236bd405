"""A small PyTorch MLP classifier for tabular data (default: the bundled digits).

Reads an ``.npz`` file with arrays ``X`` (features) and ``y`` (integer labels),
or a ``.csv`` file whose last column is the label. Trains in seconds on CPU.
"""

from __future__ import annotations

from unitrain.plugins.digits_mlp.model import Hyperparameters, evaluate, load_model, train

__all__ = ["Hyperparameters", "evaluate", "load_model", "train"]
