"""Neural-network layers (``luminal.nn``) and their functional forms
(``luminal.nn.functional``), named and behaving like ``torch.nn``.

Modules are built like torch's and hold their weights as float32 numpy arrays
in ``nn.Parameter`` objects (buffers such as BatchNorm's running statistics in
``nn.Buffer``), initialised like torch's defaults from one seeded numpy
generator (``nn.init.manual_seed(s)``; same seed, same weights).

A module binds to a graph the first time it is called on that graph's
tensors: ``y = model(x)`` creates, once per graph, a ``cx.parameter(...)``
for every parameter and float buffer of the tree, named by its state_dict name
(``"0.weight"``, ``"layers.1.self_attn.in_proj_weight"``) and set to its data;
``forward`` then adds the layer's ops (``luminal.nn.functional``) to the
graph. ``Parameter.tensor(cx)`` returns a parameter's input in ``cx``. A module
can be called in any number of graphs, and several times in one.

The numpy data is the source of truth (``p.data`` is read-only: assign a
new array instead of editing it). ``load_state_dict`` (numpy arrays or
torch tensors: a torch ``model.state_dict()`` loads directly),
``p.data = ...`` and ``nn.init`` functions update it and re-set every graph
the parameter is bound to, so an already compiled graph sees the new weights
at its next ``execute()`` without rebuilding.

>>> import luminal as lm, luminal.nn as nn, numpy as np
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> model.load_state_dict(torch_model.state_dict())    # optional
>>> cx = lm.Graph()
>>> y = model(cx.tensor((3, 4)).set(np.ones((3, 4)))).retrieve()
>>> cx.compile(lm.GenericCompiler()); cx.execute(); y.numpy().shape
(3, 2)

Differences from torch: ``training`` is read when ``forward`` builds the
graph (call ``eval()`` before building an inference graph); BatchNorm in
train mode normalises with batch statistics but does not update its running
statistics; boolean attention masks are numpy/torch bool arrays or ``"i32"``
tensors (see ``nn.attention``). See docs/nn.md.
"""

from luminal.nn import functional as functional
from luminal.nn import init as init
from luminal.nn.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from luminal.nn.attention import MultiheadAttention, NonDynamicallyQuantizableLinear
from luminal.nn.container import ModuleDict, ModuleList, Sequential
from luminal.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from luminal.nn.dropout import Dropout
from luminal.nn.flatten import Flatten, Unflatten
from luminal.nn.linear import Identity, Linear
from luminal.nn.module import IncompatibleKeys, Module, StateDictError
from luminal.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from luminal.nn.parameter import Buffer, Parameter, QuantizedParameter
from luminal.nn.pooling import AvgPool2d, MaxPool2d
from luminal.nn.quantize import quantize_
from luminal.nn.sparse import Embedding
from luminal.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Buffer", "Conv1d", "Conv2d", "ConvTranspose2d", "Dropout",
    "ELU", "Embedding", "Flatten", "GELU", "GroupNorm", "Hardsigmoid", "Hardswish", "Identity",
    "IncompatibleKeys", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax", "MaxPool2d", "Mish", "Module",
    "ModuleDict", "ModuleList", "MultiheadAttention", "NonDynamicallyQuantizableLinear", "Parameter", "QuantizedParameter", "RMSNorm",
    "ReLU", "ReLU6", "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "StateDictError", "Tanh",
    "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "Unflatten", "functional", "init", "quantize_",
]
