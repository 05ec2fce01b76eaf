"""Train an MLP classifier on scikit-learn's 8x8 digits with luminal.

The whole training step (forward, cross-entropy, backward, AdamW update) is
one compiled graph built once; each step only sets a new batch and runs it.
The learning rate follows a linear warmup then a cosine decay (the rate is a
graph input, so changing it never recompiles). After training, the weights
are copied back into the module and evaluated in a second, inference-only
graph over the whole test set.

    python examples/train_digits.py
    python examples/train_digits.py --epochs 40 --seed 1 --plot loss.png --checkpoint digits.safetensors

Needs scikit-learn (the dataset ships with it, no download), matplotlib and tqdm.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

import luminal as lm
import luminal.nn as nn
import luminal.nn.functional as F
from luminal.optim import lr_scheduler

BATCH = 64


class MLP(nn.Module):
    """64 -> hidden -> hidden -> 10 with ReLU."""

    def __init__(self, in_features: int = 64, hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x: lm.Tensor) -> lm.Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # type: ignore[no-any-return]


def load_data(seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardized digits split into (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    # Statistics from the training split only; some border pixels are always 0.
    mean = x_tr.mean(0)
    std = x_tr.std(0) + 1e-6
    return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te


def batches(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled full batches; the last partial batch is dropped because the
    graph's inputs have a fixed batch size."""
    order = rng.permutation(len(x))
    for i in range(len(x) // BATCH):
        idx = order[i * BATCH:(i + 1) * BATCH]
        yield x[idx], y[idx]


def warmup_cosine(opt: lm.optim.Optimizer, warmup: int, total: int) -> lr_scheduler.LRScheduler:
    warm = lr_scheduler.LinearLR(opt, start_factor=0.05, end_factor=1.0, total_iters=warmup)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=max(total - warmup, 1), eta_min=opt.lr * 0.01)
    return lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup])


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``model``'s current parameters, in a new inference graph."""
    model.eval()
    cx = lm.Graph()
    xt = cx.tensor(x.shape, name="x").set(x)
    logits = model(xt).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    model.train()
    return float((logits.numpy().argmax(-1) == y).mean())


def save_plot(path: str, losses: Sequence[float], steps_per_epoch: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.8, alpha=0.5, label="batch loss")
    if len(losses) >= steps_per_epoch:
        kernel = np.ones(steps_per_epoch) / steps_per_epoch
        ax.plot(np.arange(steps_per_epoch - 1, len(losses)), np.convolve(losses, kernel, "valid"),
                lw=1.5, label="epoch moving average")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title("luminal: MLP on sklearn digits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--plot", default="digits_loss.png", help="where to save the loss curve (PNG)")
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="save model + optimizer state here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> float:
    """Train, evaluate, plot; returns the test accuracy."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_data(args.seed)
    nn.init.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = MLP(x_tr.shape[1], args.hidden)
    cx = lm.Graph()
    x = cx.tensor((BATCH, x_tr.shape[1]), name="x")
    y = cx.tensor((BATCH,), name="y", dtype="i32")
    loss = F.cross_entropy(model(x), y).retrieve()
    opt = lm.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    opt.minimize(loss)
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())

    steps_per_epoch = len(x_tr) // BATCH
    total = steps_per_epoch * args.epochs
    sched = warmup_cosine(opt, warmup=max(total // 20, 1), total=total)

    losses: list[float] = []
    bar = tqdm(total=total, desc="digits", unit="step", disable=args.no_progress)
    for _ in range(args.epochs):
        for xb, yb in batches(x_tr, y_tr, rng):
            x.set(xb)
            y.set(yb)
            cx.execute()
            losses.append(loss.item())  # before sched.step(): setting any input clears results
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{opt.lr:.2e}", refresh=False)
    bar.close()
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError("training diverged (non-finite loss)")

    opt.sync_parameters()  # the trained values live in the training graph until now
    accuracy = evaluate(model, x_te, y_te)
    train_accuracy = evaluate(model, x_tr, y_tr)

    save_plot(args.plot, losses, steps_per_epoch)
    if args.checkpoint:
        lm.training.save_checkpoint(args.checkpoint, model, opt)
        print(f"checkpoint: {args.checkpoint}")
    print(f"loss: first {losses[0]:.4f}, last epoch mean {np.mean(losses[-steps_per_epoch:]):.4f}")
    print(f"train accuracy {train_accuracy:.4f} | test accuracy {accuracy:.4f} "
          f"({len(y_te)} images) | {time.perf_counter() - t_start:.1f} s | plot: {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
