"""Train a small character-level causal transformer LM with luminal, then sample from it.

The corpus is Python's own help text (``pydoc_data.topics``, shipped with
CPython), so nothing is downloaded. The model is GPT-shaped: token and
learned position embeddings, pre-norm ``nn.TransformerEncoderLayer`` blocks
under a causal mask, a final LayerNorm and a linear head over the vocabulary.
One compiled graph holds the whole training step (forward, cross-entropy on
the next character, backward, AdamW). After training, the weights are copied
back into the module, which then builds two inference graphs: one for the
loss on held-out text, one that generates text a character at a time.

    python examples/train_char_lm.py
    python examples/train_char_lm.py --steps 1000 --prompt "The import statement" --temperature 0.7

Needs tqdm for the progress bar.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

import luminal as lm
import luminal.nn as nn
import luminal.nn.functional as F
from luminal.optim import lr_scheduler


def load_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


class Vocab:
    """Characters of the corpus <-> integer ids."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> np.ndarray:
        # Characters the corpus never shows (possible in a user prompt) become spaces.
        space = self.index.get(" ", 0)
        return np.array([self.index.get(c, space) for c in s], dtype=np.int32)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class CharTransformer(nn.Module):
    """Decoder-only transformer over ``context`` positions."""

    def __init__(self, vocab: int, context: int, d_model: int, heads: int, layers: int) -> None:
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        block = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        # torch's Embedding init is N(0, 1): too large next to the residual stream of a
        # pre-norm transformer, so use GPT-2's N(0, 0.02).
        for emb in (self.tok, self.pos):
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, ids: lm.Tensor, positions: lm.Tensor, causal: lm.Tensor) -> lm.Tensor:
        """ids, positions: (N, T) i32; causal: (T, T) additive mask -> logits (N, T, vocab)."""
        x = self.tok(ids) + self.pos(positions)
        x = self.blocks(x, mask=causal)
        return self.head(self.norm(x))  # type: ignore[no-any-return]


def windows(source: np.ndarray, batch: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random windows of ``t`` characters and the characters that follow each."""
    starts = rng.integers(0, len(source) - t - 1, batch)
    window = np.stack([source[s:s + t + 1] for s in starts])
    return window[:, :-1], window[:, 1:]


def causal_mask(t: int) -> np.ndarray:
    return np.triu(np.full((t, t), -np.inf, dtype=np.float32), 1)


def build_inputs(cx: lm.Graph, batch: int, t: int) -> tuple[lm.Tensor, lm.Tensor, lm.Tensor]:
    ids = cx.tensor((batch, t), name="ids", dtype="i32")
    positions = cx.tensor((batch, t), name="positions", dtype="i32")
    positions.set(np.broadcast_to(np.arange(t, dtype=np.int32), (batch, t)).copy())
    causal = cx.tensor((t, t), name="causal").set(causal_mask(t))
    return ids, positions, causal


def held_out_loss(model: CharTransformer, vocab: Vocab, text: np.ndarray, batch: int,
                  rng: np.random.Generator, batches: int = 4) -> float:
    """Mean next-character loss on ``batches`` random windows of ``text``, in an
    inference graph (no gradients, no update)."""
    model.eval()
    t = model.context
    cx = lm.Graph()
    ids, positions, causal = build_inputs(cx, batch, t)
    targets = cx.tensor((batch, t), name="targets", dtype="i32")
    logits = model(ids, positions, causal)
    loss = F.cross_entropy(logits.reshape(batch * t, len(vocab)), targets.reshape(batch * t)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    total = 0.0
    for _ in range(batches):
        xb, yb = windows(text, batch, t, rng)
        ids.set(xb)
        targets.set(yb)
        cx.execute()
        total += loss.item()
    model.train()
    return total / batches


def sample(model: CharTransformer, vocab: Vocab, prompt: str, length: int, temperature: float,
           rng: np.random.Generator) -> str:
    """Generate ``length`` characters after ``prompt``.

    One inference graph with a fixed (1, context) input: the prompt sits at the
    left and the rest is padding. Under the causal mask, position i only sees
    positions <= i, so the padding never changes the logits we read (those of
    the last real character). Once the text is longer than the context, the
    window slides."""
    model.eval()
    cx = lm.Graph()
    ids, positions, causal = build_inputs(cx, 1, model.context)
    logits = model(ids, positions, causal).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())

    tokens = list(vocab.encode(prompt)) or [vocab.index.get("\n", 0)]
    window = np.zeros((1, model.context), dtype=np.int32)
    for _ in range(length):
        ctx = tokens[-model.context:]
        window[:] = 0
        window[0, :len(ctx)] = ctx
        ids.set(window)
        cx.execute()
        z = logits.numpy()[0, len(ctx) - 1].astype(np.float64) / max(temperature, 1e-6)
        p = np.exp(z - z.max())
        tokens.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return vocab.decode(tokens)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt", default="The ")
    p.add_argument("--sample-length", type=int, default=200, help="characters to generate (0: none)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> tuple[float, float]:
    """Train, print a sample; returns (first loss, mean of the last 10 losses)."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    text = load_text()
    vocab = Vocab(text)
    data = vocab.encode(text)
    # Every 20th 4 KiB chunk is held out: the topics are not alike (prose vs tables), so a
    # held-out tail would measure the kind of text rather than generalization.
    held = (np.arange(len(data)) // 4096) % 20 == 19
    train, held_out = data[~held], data[held]
    rng = np.random.default_rng(args.seed)
    nn.init.manual_seed(args.seed)

    B, T = args.batch, args.context
    model = CharTransformer(len(vocab), T, args.d_model, args.heads, args.layers)
    n_params = sum(p.data.size for p in model.parameters())

    cx = lm.Graph()
    ids, positions, causal = build_inputs(cx, B, T)
    targets = cx.tensor((B, T), name="targets", dtype="i32")
    logits = model(ids, positions, causal)
    loss = F.cross_entropy(logits.reshape(B * T, len(vocab)), targets.reshape(B * T)).retrieve()
    opt = lm.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    opt.minimize(loss, max_grad_norm=1.0)
    t0 = time.perf_counter()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    print(f"{n_params / 1e3:.0f}K parameters, vocab {len(vocab)}, {len(train)} training characters; "
          f"graph compiled in {time.perf_counter() - t0:.1f} s ({cx.kernel_count()} kernels)")

    warmup = max(args.steps // 10, 1)
    sched = lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=warmup),
        lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.steps - warmup, 1), eta_min=args.lr * 0.1),
    ], milestones=[warmup])

    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(args.steps), desc="char-lm", unit="step", disable=args.no_progress)
    for _ in bar:
        xb, yb = windows(train, B, T, rng)
        ids.set(xb)
        targets.set(yb)
        cx.execute()
        losses.append(loss.item())  # before sched.step(): setting any input clears results
        sched.step()
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    bar.close()
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError("training diverged (non-finite loss)")
    train_time = time.perf_counter() - t0

    opt.sync_parameters()  # the trained values live in the training graph until now
    held = held_out_loss(model, vocab, held_out, B, rng)

    first, last = losses[0], float(np.mean(losses[-10:]))
    print(f"loss: first {first:.3f} (uniform would be ln {len(vocab)} = {math.log(len(vocab)):.3f}), "
          f"last 10 steps {last:.3f}, held-out {held:.3f} | {args.steps} steps in {train_time:.1f} s "
          f"({1e3 * train_time / args.steps:.0f} ms/step)")

    if args.sample_length > 0:
        t1 = time.perf_counter()
        out = sample(model, vocab, args.prompt, args.sample_length, args.temperature, rng)
        print(f"--- sample (temperature {args.temperature}, {time.perf_counter() - t1:.1f} s) ---")
        print(out)
        print("---")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return first, last


if __name__ == "__main__":
    main()
