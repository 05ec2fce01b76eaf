"""``luminal.nn.functional``: torch.nn.functional's names and semantics, as
compositions of the 12 primitives.

One module per family: ``linear`` (linear, bilinear; bmm/einsum from
``hl_ops.linalg``), ``conv``, ``pooling`` (+ ``upsampling``: interpolate),
``normalization``, ``dropout``, ``activation``, ``attention``, ``loss``,
``padding`` (pad with torch's modes); ``embedding``/``one_hot`` come from
``hl_ops.indexing``.
Differences from torch are listed in each module's docstring; the main ones:
no RNG (training-mode dropout raises), no in-place updates (``inplace=`` is
ignored, batch_norm does not update running stats). Boolean masks are
tensors of dtype "bool" (what comparisons return) or "i32"; class indices are "i32".

>>> import luminal.nn.functional as F
>>> y = F.conv2d(x, w, b, padding=1).relu()
"""

from luminal.hl_ops.indexing import embedding, one_hot
from luminal.nn.functional.activation import (
    celu, elu, gelu, glu, hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax, logsigmoid,
    mish, prelu, relu, relu6, rrelu, selu, sigmoid, silu, softmax, softmin, softplus, softshrink, softsign,
    tanh, tanhshrink, threshold,
)
from luminal.nn.functional.attention import scaled_dot_product_attention
from luminal.nn.functional.conv import (
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d,
)
from luminal.nn.functional.dropout import (
    alpha_dropout, dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout,
)
from luminal.nn.functional.linear import bilinear, bmm, einsum, linear, matmul
from luminal.nn.functional.loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss,
    mse_loss, nll_loss, smooth_l1_loss,
)
from luminal.nn.functional.normalization import (
    batch_norm, group_norm, instance_norm, layer_norm, normalize, rms_norm,
)
from luminal.nn.functional.padding import pad
from luminal.nn.functional.pooling import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, avg_pool1d, avg_pool2d, avg_pool3d,
    interpolate, max_pool1d, max_pool2d, max_pool3d, upsample,
)

__all__ = [
    # activation
    "celu", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu",
    "log_softmax", "logsigmoid", "mish", "prelu", "relu", "relu6", "rrelu", "selu", "sigmoid", "silu",
    "softmax", "softmin", "softplus", "softshrink", "softsign", "tanh", "tanhshrink", "threshold",
    # attention
    "scaled_dot_product_attention",
    # conv
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    # dropout
    "alpha_dropout", "dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout",
    # linear
    "bilinear", "bmm", "einsum", "linear", "matmul",
    # loss
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
    "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
    # normalization
    "batch_norm", "group_norm", "instance_norm", "layer_norm", "normalize", "rms_norm",
    # padding
    "pad",
    # sparse (luminal.hl_ops.indexing)
    "embedding", "one_hot",
    # pooling / upsampling
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "interpolate", "max_pool1d", "max_pool2d", "max_pool3d", "upsample",
]
