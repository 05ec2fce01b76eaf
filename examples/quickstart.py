"""luminal in one screen: build a lazy graph, compile it, run it, look at it.

    python examples/quickstart.py
"""

import numpy as np

import luminal as lm

# 1. Build: nothing runs yet. Dims can be names ("seq") bound at run time.
cx = lm.Graph()
a = cx.tensor((3, 1), name="a").set([[1.0], [2.0], [3.0]])
b = cx.tensor((1, 4), name="b").set([[1.0, 2.0, 3.0, 4.0]])
c = a.matmul(b).retrieve()

x = cx.tensor(("seq", 8), name="x")
scores = x @ x.T / np.sqrt(8.0)  # (seq, seq)
attn = (scores - scores.amax(-1, keepdim=True)).exp()
attn = (attn / attn.sum(-1, keepdim=True)).retrieve()

nodes_before = cx.node_count()
# 2. Compile: compilers rewrite the graph; the tensors above stay valid.
#    GenericCompiler simplifies; CPUCompiler fuses the rest into C kernels built
#    for this machine (cached on disk). verify=True re-checks every run against
#    the reference executor.
cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
print(f"graph: {nodes_before} nodes -> {cx.node_count()} after GenericCompiler, "
      f"{cx.kernel_count()} fused kernels")

# 3. Run, once per sequence length, with the same compiled graph.
rng = np.random.default_rng(0)
for seq in (3, 5):
    data = rng.standard_normal((seq, 8)).astype(np.float32)
    x.set(data)  # binds seq from the data's shape
    cx.execute()
    s = data @ data.T / np.sqrt(8.0)
    want = np.exp(s - s.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    if seq == 3:
        print("outer product a @ b:\n", c.numpy())
    print(f"seq={seq}: softmax rows sum to {attn.numpy().sum(-1).round(5)}, "
          f"max error vs numpy {np.abs(attn.numpy() - want).max():.2e}")

# 4. Look: DOT text always; a picture when Graphviz is installed.
print(cx.to_dot().splitlines()[2])
path = cx.display()
if path:
    print("picture:", path)
