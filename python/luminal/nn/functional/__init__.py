"""``luminal.nn.functional``: torch.nn.functional's names and semantics, as
compositions of the 12 primitives."""
