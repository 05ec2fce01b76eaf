"""Reading and writing model files: safetensors (checkpoints in and out) and
GGUF (llama.cpp's format, quantized weights included). Every parser checks
bounds: a truncated or hostile file raises ``CheckpointError`` naming the
file and the problem, never a crash or a huge allocation."""
