#!/usr/bin/env bash
# Download Mistral-7B-Instruct-v0.3 for examples/mistral/main.py (needs internet).
#
#   bash examples/mistral/setup.sh            # both: HF safetensors (~15 GB) and Q8_0 GGUF (~7.7 GB)
#   bash examples/mistral/setup.sh hf         # only the Hugging Face checkpoint
#   bash examples/mistral/setup.sh gguf       # only the GGUF file
#
# The HF checkpoint goes to the Hugging Face cache through luminal's own downloader
# (luminal installed; PYTHON=... picks the interpreter), so `--model <id>` finds it:
#   python examples/mistral/main.py --model mistralai/Mistral-7B-Instruct-v0.3 --prompt "Hello"
# The GGUF file goes to ./models (override with MODELS_DIR=...):
#   python examples/mistral/main.py --model models/Mistral-7B-Instruct-v0.3-Q8_0.gguf --prompt "Hello"
#
# mistralai/Mistral-7B-Instruct-v0.3 is gated: accept its terms on huggingface.co
# and log in first (`hf auth login`, or `huggingface-cli login` on older versions).
# Memory: main.py keeps the matrices as stored: ~7.6 GB for the Q8_0 GGUF, ~14.2 GB
# for the BF16 safetensors (add --quantize q8_0 or q4_k to shrink those).
# llama.cpp's Q4_K_M file (~4.4 GB) works too:
#   GGUF_FILE=Mistral-7B-Instruct-v0.3-Q4_K_M.gguf bash examples/mistral/setup.sh gguf
set -euo pipefail

HF_ID="${HF_ID:-mistralai/Mistral-7B-Instruct-v0.3}"
GGUF_REPO="${GGUF_REPO:-bartowski/Mistral-7B-Instruct-v0.3-GGUF}"
GGUF_FILE="${GGUF_FILE:-Mistral-7B-Instruct-v0.3-Q8_0.gguf}"
MODELS_DIR="${MODELS_DIR:-models}"
WHAT="${1:-all}"

if [[ "$WHAT" == all || "$WHAT" == hf ]]; then
  # Only what luminal reads (luminal.models.loading.HF_DOWNLOAD_PATTERNS): config,
  # HF-format safetensors shards + index, tokenizer (not consolidated.safetensors,
  # Mistral's own duplicate of the weights).
  "${PYTHON:-python}" -c 'import sys
from luminal.models import resolve_model_path
try:
    print("HF:", resolve_model_path(sys.argv[1], download=True))
except OSError as e:
    sys.exit(f"error: {e}")' "$HF_ID"
fi

if [[ "$WHAT" == all || "$WHAT" == gguf ]]; then
  if command -v hf >/dev/null 2>&1; then
    DL=(hf download)
  elif command -v huggingface-cli >/dev/null 2>&1; then
    DL=(huggingface-cli download)
  else
    echo "error: the Hugging Face CLI is missing: pip install -U huggingface_hub" >&2
    exit 1
  fi
  mkdir -p "$MODELS_DIR"
  "${DL[@]}" "$GGUF_REPO" "$GGUF_FILE" --local-dir "$MODELS_DIR"
  echo "GGUF: $MODELS_DIR/$GGUF_FILE"
fi
