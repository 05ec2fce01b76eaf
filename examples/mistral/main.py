"""Chat with Mistral (or Llama) on luminal's CPU backend, streaming tokens.

    python examples/mistral/main.py                       # offline random-weight demo, seconds
    bash examples/mistral/setup.sh                        # once: download the weights
    python examples/mistral/main.py --model mistralai/Mistral-7B-Instruct-v0.3 --prompt "Why is the sky blue?"
    python examples/mistral/main.py --download --model bartowski/Mistral-7B-Instruct-v0.3-GGUF/Mistral-7B-Instruct-v0.3-Q4_K_M.gguf
    python examples/mistral/main.py --model models/Mistral-7B-Instruct-v0.3-Q8_0.gguf --prompt "..."
    python examples/mistral/main.py --model path/to/Llama-3.2-1B-Instruct --prompt "..."

``--model`` is a local Hugging Face directory (config.json, safetensors,
tokenizer.json), a GGUF file (weights and vocabulary), or a Hugging Face id
in the local cache (found through huggingface_hub; ``--download`` fetches one that is not). Without
``--model`` a tiny model with random weights (fixed seed) and a byte-level
tokenizer runs, to show the pipeline offline: its text is gibberish.

The text goes to stdout as it is generated; timings (prefill and decode
tokens/s) go to stderr. ``--temperature 0`` (the default) is greedy decoding.
Instruct models with a chat template get the prompt as a user message
(``--no-chat`` sends it raw). ``--interactive`` chats: each line of stdin is
a message, answered in turn, and the KV cache keeps the conversation, so a
turn runs only its own new tokens.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

DEFAULT_PROMPT = "Explain what a compiler does in one paragraph."
DEMO_NOTICE = ("[demo] no --model given: running a tiny RANDOM-WEIGHT model with a byte-level tokenizer. "
               "The text below is gibberish; it shows the pipeline (compile once, prefill, stream). "
               "Run examples/mistral/setup.sh and pass --model for a real model.")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="local HF directory, GGUF file, or HF id (org/name, or org/name/FILE.gguf) in the "
                   "local Hugging Face cache (default: random-weight demo)")
    p.add_argument("--download", action="store_true",
                   help="fetch an HF id that is not in the cache: config, safetensors and tokenizer (~15 GB for a 7B "
                        "model in bf16), or the one GGUF file; gated models need `hf auth login` first")
    p.add_argument("--prompt", default=None, help=f"the prompt (default: {DEFAULT_PROMPT!r}; with "
                   "--interactive, the first message, if given)")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="chat: read messages from stdin, a line each, and answer each in turn; the "
                        "KV cache keeps the conversation (/reset starts a new one, /exit or end of input ends)")
    p.add_argument("--system", default=None, help="system message (chat models)")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0, help="1 = off")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end the reply where TEXT first appears (not printed); repeatable")
    p.add_argument("--quantize", choices=["q8_0", "q5_k", "q4_k", "q4_0"], default=None,
                   help="store float or F16/BF16 projection matrices in this format first (int8 decode "
                        "products; q5_k: 5.5 bits a weight, q4_k: 4.5), and the embedding table as q6_k (q8_0 "
                        "with q8_0); GGML-quantized files stay as they are")
    p.add_argument("--matmul-precision", choices=["highest", "medium"], default=None,
                   help="CPU float products of a prompt: medium rounds them to bf16 on AMX tiles (the default for "
                        "quantized and f16/bf16 models; ~2.8x a float32 model's prefill on a Sapphire Rapids core), "
                        "highest keeps float32 (the default for float32 models)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: run on the first NVIDIA GPU (CUDACompiler; weights stay on the GPU)")
    p.add_argument("--prefill-chunk", type=int, default=None, metavar="N",
                   help="run the prompt in blocks of at most N tokens (default: 512 on the CPU, 2048 on a GPU; "
                        "fewer where a block's attention scores would take over 1 GiB)")
    chat = p.add_mutually_exclusive_group()
    chat.add_argument("--chat", dest="chat", action="store_true", default=None,
                      help="wrap the prompt in the chat template (default: if the tokenizer has one)")
    chat.add_argument("--no-chat", dest="chat", action="store_false")
    return p.parse_args(argv)


def demo_model(seed: int = 0) -> Tuple[Any, Any, List[int]]:
    """A tiny Mistral-shaped model with random weights from ``seed`` and a
    byte-level tokenizer; also the ids the demo never samples (non-printable
    bytes, so the gibberish is at least printable, and EOS)."""
    from luminal.models import LlamaConfig, LlamaForCausalLM, Tokenizer

    tok = Tokenizer.byte_level()
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, model_type="mistral", sliding_window=256,
                      max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                      eos_token_id=sorted(tok.eos_token_ids)[0])
    model = LlamaForCausalLM(cfg, init=False).eval()
    rng = np.random.default_rng(seed)
    weights = {}
    for name, p in model.state_dict(keep_vars=True).items():
        if name.endswith("norm.weight"):
            weights[name] = np.ones(p.shape, np.float32)
        else:
            weights[name] = (rng.standard_normal(p.shape) * 0.5).astype(np.float32)
    model.load_state_dict(weights)
    # Mistral's chat format, so --interactive runs offline too (the built-in
    # renderer takes [INST] templates without jinja2)
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] "
                         "{{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}"
                         "{% endfor %}")
    printable = set(range(32, 127)) | {10}
    suppress = [i for i in range(256) if i not in printable] + sorted(tok.eos_token_ids)  # run to --max-tokens
    return model, tok, suppress


def load(name: str, download: bool = False) -> Tuple[Any, Any]:
    from luminal.models import LlamaForCausalLM, Tokenizer, resolve_model_path

    path = resolve_model_path(name, download=download)
    t = time.perf_counter()
    # Projection matrices and the embedding table stay as stored:
    # Q8_0/Q4_0/k-quants (int8 decode products, like llama.cpp) or F16/BF16
    # (2 bytes a weight, widened in the kernel). A 7B model then takes ~4.0 GB
    # (Q4_K_M), ~7.6 GB (Q8_0) or ~14.2 GB (BF16) instead of 29 GB as f32.
    model = LlamaForCausalLM.from_pretrained(path, quantized=True)
    tok = Tokenizer.from_pretrained(path)
    print(f"[load] {path}: {model.config.num_hidden_layers} layers, vocab {model.config.vocab_size}, "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    return model, tok


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        import luminal as lm

        if not lm.cuda.is_available():
            print(f"error: --device cuda: no usable CUDA GPU ({lm.cuda.unavailable_reason()})",
                  file=sys.stderr)
            return 2
    if args.prefill_chunk is not None and args.prefill_chunk < 1:
        print("error: --prefill-chunk must be >= 1", file=sys.stderr)
        return 2
    if args.max_tokens < 1:
        print("error: --max-tokens must be >= 1", file=sys.stderr)
        return 2
    if args.download and args.model is None:
        print("error: --download needs --model (a Hugging Face id)", file=sys.stderr)
        return 2

    from luminal.models import Generator

    suppress: List[int] = []
    if args.model is None:
        print(DEMO_NOTICE, file=sys.stderr)
        model, tok, suppress = demo_model(args.seed)
        chat = False
    else:
        from luminal.nn import StateDictError

        try:
            model, tok = load(args.model, args.download)
        except (FileNotFoundError, PermissionError, ImportError, NotImplementedError, ValueError,
                StateDictError) as e:
            # ValueError covers CheckpointError: a corrupt, truncated or mismatched model file
            print(f"error: {e}", file=sys.stderr)
            return 2
        chat = tok.chat_template is not None if args.chat is None else args.chat
    if args.quantize:
        import luminal.nn as nn

        # the embedding table too, at 6 bits or more as llama.cpp keeps it: a
        # tied model's output product reads it (Llama 3.2 1B: 0.5 GB as BF16)
        table = "q8_0" if args.quantize == "q8_0" else "q6_k"
        done = nn.quantize_(model, args.quantize, embeddings=table)
        print(f"[load] {len(done)} matrices stored as {args.quantize} (the embedding table as {table})",
              file=sys.stderr)

    if args.interactive and (args.chat is False or tok.chat_template is None):
        print("error: --interactive needs a chat model (a tokenizer with a chat template) and no --no-chat",
              file=sys.stderr)
        return 2

    t = time.perf_counter()
    gen = Generator(model, tok, device=args.device, prefill_chunk=args.prefill_chunk,
                    float32_matmul_precision=args.matmul_precision)
    print(f"[compile] {time.perf_counter() - t:.1f} s", file=sys.stderr)
    sampling: Dict[str, Any] = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                    repetition_penalty=args.repetition_penalty, seed=args.seed,
                                    suppress_tokens=suppress, stop=args.stop)
    if args.interactive:
        return converse(gen, args, sampling)
    prompt = DEFAULT_PROMPT if args.prompt is None else args.prompt
    try:
        stream = gen.stream(prompt, args.max_tokens, chat=chat, system=args.system, **sampling)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model is None:
        sys.stdout.write(prompt)
    return 0 if print_reply(stream) else 2


def print_reply(stream: Any) -> bool:
    """Stream the text to stdout (Ctrl-C stops it), then the speed to
    stderr; False (the error said) when the prompt cannot run."""
    try:
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.stats.stop_reason = "interrupted"
    except ValueError as e:  # checked when the prompt runs: longer than the model's context, ...
        print(f"error: {e}", file=sys.stderr)
        return False
    sys.stdout.write("\n")
    sys.stdout.flush()
    st = stream.stats
    if st.stop_reason == "interrupted" and not st.prefill_seconds:
        print(f"[speed] interrupted while the prompt ({st.prompt_tokens} tokens) ran", file=sys.stderr)
    else:
        print(f"[speed] {st.summary()} (stopped: {st.stop_reason})", file=sys.stderr)
    return True


def converse(gen: Any, args: argparse.Namespace, sampling: Dict[str, Any]) -> int:
    """--interactive: a message a line from stdin, each answered in turn."""
    from luminal.models import Chat

    chat = Chat(gen, system=args.system)
    pending = [args.prompt] if args.prompt is not None else []
    while True:
        if pending:
            text = pending.pop()
        else:
            sys.stderr.write("> ")
            sys.stderr.flush()
            try:
                line = sys.stdin.readline()
            except KeyboardInterrupt:
                line = ""
            if not line:
                sys.stderr.write("\n")
                return 0
            text = line.rstrip("\r\n")
        command = text.strip()
        if command in ("/exit", "/quit"):
            return 0
        if command == "/reset":
            chat.reset()
            print("[chat] new conversation", file=sys.stderr)
            continue
        if not command:
            continue
        try:
            stream = chat.send(text, args.max_tokens, **sampling)
        except (ValueError, ImportError) as e:
            print(f"error: {e}", file=sys.stderr)
            continue
        print_reply(stream)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while loading or compiling (generation handles its own)
        print("\n[interrupted]", file=sys.stderr)
        sys.exit(130)
