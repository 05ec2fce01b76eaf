"""The training examples run end to end: the digits MLP reaches >= 95% test
accuracy, writes its loss plot and a checkpoint that reloads to the same
accuracy; the character LM's loss falls and it samples text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import luminal as lm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses/typing look the module up by name
    spec.loader.exec_module(module)
    return module


def test_train_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    digits = _load("train_digits")
    plot, ckpt = tmp_path / "loss.png", tmp_path / "digits.safetensors"
    acc = digits.main(["--epochs", "15", "--seed", "0", "--plot", str(plot), "--checkpoint", str(ckpt),
                       "--no-progress"])
    assert acc >= 0.95
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test accuracy" in capsys.readouterr().out

    # The checkpoint holds the trained weights: a fresh model loaded from it scores the same.
    _, _, x_te, y_te = digits.load_data(0)
    fresh = digits.MLP()
    lm.training.load_checkpoint(ckpt, fresh)
    assert digits.evaluate(fresh, x_te, y_te) == pytest.approx(acc)


def test_train_char_lm(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    char_lm = _load("train_char_lm")
    first, last = char_lm.main(["--steps", "60", "--d-model", "64", "--context", "32", "--batch", "8",
                                "--sample-length", "40", "--prompt", "The ", "--no-progress"])
    assert np.isfinite([first, last]).all()
    assert first > 4.0  # about ln(vocab) at the random start
    assert last < 0.8 * first
    out = capsys.readouterr().out
    sample = out.split("--- sample", 1)[1].split("\n", 1)[1].rsplit("\n---", 1)[0]
    assert sample.startswith("The ") and len(sample) == 4 + 40
