"""A picture of the graph: DOT text always, rendered by Graphviz when present."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luminal.graph import Graph

_COLORS = {
    "Input": "#cfe8ff",
    "Constant": "#eeeeee",
    "SumReduce": "#ffe0b3",
    "MaxReduce": "#ffe0b3",
    "Contiguous": "#e6d9ff",
}
_INSTALL = (
    "Graphviz's `dot` program was not found. Install it to render graphs "
    "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz), or use graph.to_dot() and paste the text "
    "into any Graphviz viewer."
)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _label(node: dict[str, Any]) -> str:
    op = node["op"]
    if op == "Input":
        head = f"{node['name']}" + (f" ({node['dtype']})" if node["dtype"] != "f32" else "")
    elif op == "Constant":
        v = node["value"]
        head = f"{v:g}" if isinstance(v, float) else str(v)
    elif op in ("SumReduce", "MaxReduce"):
        head = f"{op}(axis={node['axis']})"
    else:
        head = op
    return f"{_escape(head)}\\n{_escape(node['shape'])}"


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text: one box per node, shapes under op names, outputs
    outlined, edges that read through a view drawn dashed (hover for the view)."""
    nodes = graph.nodes()
    lines = [
        "digraph luminal {",
        "  rankdir=TB;",
        f'  label="{len(nodes)} nodes"; labelloc=t;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fillcolor="#ffffff"];',
    ]
    for n in nodes:
        attrs = [f'label="{_label(n)}"']
        if n["op"] in _COLORS:
            attrs.append(f'fillcolor="{_COLORS[n["op"]]}"')
        if n["output"]:
            attrs.append("penwidth=3")
        lines.append(f"  n{n['id']} [{', '.join(attrs)}];")
    for n in nodes:
        for src, view in zip(n["inputs"], n["views"]):
            style = f' [style=dashed, tooltip="{_escape(view)}"]' if view else ""
            lines.append(f"  n{src} -> n{n['id']}{style};")
    lines.append("}")
    return "\n".join(lines)


def _in_notebook() -> bool:
    shell: Any = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def display(graph: Graph, path: str | None = None, format: str = "svg") -> str | None:
    """Render with Graphviz. In Jupyter the picture is shown inline; otherwise it
    is written to ``path`` (a temp file when None) and the path is returned.
    Without Graphviz, prints how to install it and returns None."""
    if format not in ("svg", "png", "pdf"):
        raise ValueError(f"[display] format must be svg, png or pdf, got {format!r}")
    dot = shutil.which("dot")
    if dot is None:
        print(_INSTALL, file=sys.stderr)
        return None
    rendered = subprocess.run(
        [dot, f"-T{format}"], input=graph.to_dot().encode(), capture_output=True, check=False
    )
    if rendered.returncode != 0:
        raise RuntimeError(f"[display] dot failed: {rendered.stderr.decode(errors='replace')}")
    if path is None and _in_notebook():
        ipd: Any = importlib.import_module("IPython.display")
        ipd.display(ipd.SVG(rendered.stdout) if format == "svg" else ipd.Image(rendered.stdout))
        return None
    if path is None:
        fd, path = tempfile.mkstemp(prefix="luminal-graph-", suffix=f".{format}")
        os.close(fd)
    with open(path, "wb") as f:
        f.write(rendered.stdout)
    return path
