"""Neural-network layers (``luminal.nn``) and their functional forms
(``luminal.nn.functional``), named and behaving like ``torch.nn``."""

from luminal.nn import functional as functional
