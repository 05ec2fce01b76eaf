"""Training: gradients as graph tensors (``grad``), optimizers that update
parameters inside the graph (``optim``), learning-rate schedules and
checkpoints."""
