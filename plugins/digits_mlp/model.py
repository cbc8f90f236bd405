"""Training loop, checkpointing and the predictions image of the digits MLP."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from unitrain.plugins.digits_mlp.data import load_arrays, split

CHECKPOINT_FILE = "model.pt"


class Hyperparameters(BaseModel):
    """What this plugin accepts in ``hyperparameter``; anything else is rejected."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    #: SGD's and RMSprop's momentum (Adam keeps its own moments and ignores it)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    dropout_rate: float = Field(default=0.0, ge=0, lt=1)
    hidden_units: int = Field(default=64, ge=1, le=4096)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    report_every: int = Field(default=1, ge=1, description="epochs between metric reports")


def _network(inputs: int, hidden: int, classes: int, dropout: float) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, classes),
    )


def _optimizer(name: str, parameters: Any, lr: float, weight_decay: float, momentum: float) -> Any:
    import torch

    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    factory = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    return factory[name](parameters, lr=lr, weight_decay=weight_decay, momentum=momentum)


def train(
    run: Any, dataset: Any, hyperparameter: dict[str, Any], checkpoint: Any, **kwargs: Any
) -> dict[str, float]:
    """Train the MLP; save ``model.pt`` into ``run.checkpoint_output``; return final metrics."""
    import torch

    hp = Hyperparameters.model_validate(hyperparameter)
    torch.manual_seed(hp.seed)
    torch.set_num_threads(1)  # trials run side by side; one thread each is fastest here
    features, labels = load_arrays(dataset.path)
    x_train, y_train, x_valid, y_valid = split(features, labels, seed=hp.seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    classes = int(labels.max()) + 1

    model = _network(features.shape[1], hp.hidden_units, classes, hp.dropout_rate)
    start_epoch = 0
    end_epoch = hp.epochs
    if checkpoint is not None:
        state = torch.load(Path(checkpoint.path) / CHECKPOINT_FILE, weights_only=True)
        if state["inputs"] != features.shape[1] or state["classes"] != classes:
            raise ValueError(
                f"checkpoint {checkpoint.model_id} was trained on {state['inputs']} features and "
                f"{state['classes']} classes; this dataset has {features.shape[1]} and {classes}"
            )
        if state["hidden_units"] != hp.hidden_units:
            raise ValueError(
                f"checkpoint {checkpoint.model_id} has hidden_units={state['hidden_units']}; "
                f"the job asks for {hp.hidden_units}"
            )
        model.load_state_dict(state["state_dict"])
        mean, std = state["mean"].numpy(), state["std"].numpy()
        start_epoch = int(state.get("epochs_done", 0))
        if getattr(checkpoint, "continues", False):
            # work in progress (a retried or resumed trial, PBT, a resumed job): finish it
            end_epoch = int(state.get("epochs_target", start_epoch + hp.epochs))
            run.log_message(f"continuing at epoch {start_epoch} of {end_epoch}")
        else:  # a registered model: train it for this job's epochs more
            end_epoch = start_epoch + hp.epochs
            run.log_message(f"resumed from model {checkpoint.model_id} after {start_epoch} epochs")

    xt = torch.from_numpy((x_train - mean) / std)
    yt = torch.from_numpy(y_train)
    xv = torch.from_numpy((x_valid - mean) / std)
    yv = torch.from_numpy(y_valid)
    optimizer = _optimizer(
        hp.optimizer, model.parameters(), hp.learning_rate, hp.weight_decay, hp.momentum
    )
    # the model's size, a second objective or a constraint for a search
    size = float(sum(p.numel() for p in model.parameters()))
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(hp.seed)

    output = Path(run.checkpoint_output)

    def save(epochs_done: int) -> None:
        output.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "state_dict": model.state_dict(),
                "inputs": features.shape[1],
                "classes": classes,
                "hidden_units": hp.hidden_units,
                "mean": torch.from_numpy(mean),
                "std": torch.from_numpy(std),
                "epochs_done": epochs_done,
                "epochs_target": end_epoch,
            },
            output / CHECKPOINT_FILE,
        )

    metrics: dict[str, float] = {}
    total = max(end_epoch - start_epoch, 1)
    for epoch in range(start_epoch, end_epoch):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total_loss, correct = 0.0, 0
        for begin in range(0, len(xt), hp.batch_size):
            index = order[begin : begin + hp.batch_size]
            optimizer.zero_grad()
            logits = model(xt[index])
            loss = loss_fn(logits, yt[index])
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == yt[index]).sum())
        if not np.isfinite(total_loss):
            raise FloatingPointError(
                f"training diverged at epoch {epoch} (loss is {total_loss}); "
                f"lower learning_rate (now {hp.learning_rate})"
            )
        model.eval()
        with torch.no_grad():
            valid_logits = model(xv)
        metrics = {
            "loss": total_loss / len(xt),
            "accuracy": correct / len(xt),
            "validation_loss": float(loss_fn(valid_logits, yv)),
            "validation_accuracy": float((valid_logits.argmax(1) == yv).float().mean()),
            "parameters": size,
        }
        done = epoch - start_epoch + 1
        if done % hp.report_every == 0 or epoch + 1 == end_epoch:
            for key, value in metrics.items():
                category = "validation" if key.startswith("validation") else "training"
                run.log_metric(category, key, value, epoch=epoch)
            # Saved first: a report's checkpoint is what the folder holds when it is
            # made. In tuning mode the report also lets schedulers (HyperBand, ASHA,
            # ...) stop a bad trial here, keeping that checkpoint as its model.
            save(epoch + 1)
            run.report(metrics, epoch=epoch)
        run.set_progress(done, total, category="train")

    with torch.no_grad():
        predictions = model(xv).argmax(1).numpy()
    run.log_visualization(
        "predictions", "validation", end_epoch, _grid(x_valid, y_valid, predictions)
    )
    save(end_epoch)
    _log_mlflow_model(run, _on_raw_features(model, mean, std), x_valid[:5])
    return metrics


class _Predictor:
    """The network of a saved ``model.pt`` on raw features: what ``load_model`` returns."""

    def __init__(self, path: str) -> None:
        import torch

        state = torch.load(Path(path) / CHECKPOINT_FILE, weights_only=True)
        network = _network(state["inputs"], state["hidden_units"], state["classes"], 0.0)
        network.load_state_dict(state["state_dict"])
        self.network = _on_raw_features(network, state["mean"].numpy(), state["std"].numpy())

    def predict(self, inputs: Any) -> Any:
        import torch

        features = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        with torch.no_grad():
            return self.network(features).numpy()


def load_model(path: str) -> _Predictor:
    """A model folder as something that predicts: for versions saved as plain checkpoints
    (a trial a scheduler stopped keeps its last checkpoint as its model)."""
    return _Predictor(path)


def evaluate(model_path: str, dataset: Any) -> dict[str, float]:
    """Score a saved model on ``dataset``'s held-out rows (the split of seed 0, which a
    model trained with the default seed never trained on): the promotion gate's
    comparison of two models on new data."""
    import torch

    features, labels = load_arrays(dataset.path)
    _, _, x_valid, y_valid = split(features, labels, seed=0)
    scores = torch.as_tensor(load_model(model_path).predict(x_valid))
    targets = torch.as_tensor(y_valid, dtype=torch.long)
    return {
        "validation_loss": float(torch.nn.functional.cross_entropy(scores, targets)),
        "validation_accuracy": float((scores.argmax(1) == targets).float().mean()),
    }


def _on_raw_features(model: Any, mean: np.ndarray, std: np.ndarray) -> Any:
    """The network on unscaled features: the input scaling folded into its first layer."""
    import copy

    import torch

    served = copy.deepcopy(model).eval()
    first = served[0]
    with torch.no_grad():
        weight = first.weight.clone()
        first.bias -= weight @ torch.from_numpy(mean / std).to(weight.dtype)
        first.weight.copy_(weight / torch.from_numpy(std).to(weight.dtype))
    return served


def _log_mlflow_model(run: Any, served: Any, example: np.ndarray) -> None:
    """The registered version as an MLflow PyTorch model: raw features in, class scores out."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    example = example.astype(np.float32)
    with torch.no_grad():
        scores = served(torch.from_numpy(example)).numpy()
    run.log_model(
        mlflow.pytorch,
        served,
        signature=infer_signature(example, scores),
        input_example=example,
    )


def _grid(
    features: np.ndarray, labels: np.ndarray, predictions: np.ndarray, count: int = 32
) -> np.ndarray:
    """Validation samples as tiles, framed green when predicted right, red when wrong."""
    side = int(round(features.shape[1] ** 0.5))
    if side * side != features.shape[1]:
        # Not images: a strip of right/wrong squares is still a readable summary.
        tiles = [
            np.full((8, 8), 1.0 if p == t else 0.0)
            for p, t in zip(predictions[:count], labels[:count], strict=False)
        ]
        side = 8
    else:
        tiles = [f.reshape(side, side) for f in features[:count]]
    scale = 4
    cell = side * scale + 4
    columns = 8
    rows = (len(tiles) + columns - 1) // columns
    canvas = np.full((rows * cell, columns * cell, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        span = tile.max() - tile.min()
        gray = ((tile - tile.min()) / (span if span else 1) * 255).astype(np.uint8)
        big = np.kron(gray, np.ones((scale, scale), dtype=np.uint8))
        colour = (0, 170, 0) if predictions[i] == labels[i] else (220, 0, 0)
        y, x = r * cell, c * cell
        canvas[y : y + cell, x : x + cell] = colour
        canvas[y + 2 : y + cell - 2, x + 2 : x + cell - 2] = big[..., None]
    return canvas
