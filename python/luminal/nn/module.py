"""``Module``: the base of every layer, with torch.nn.Module's tree API.

A module holds ``Parameter``/``Buffer`` objects (numpy data) and child
modules. Calling it with graph tensors binds its whole tree to that graph
(once per graph; each weight becomes ``graph.parameter(shape, name=<state_dict
name>)``) and then runs ``forward``, which adds ops to the graph.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple, TypeVar

import numpy as np

from luminal.dtype import _as_numpy
from luminal.nn.parameter import Buffer, Parameter, as_array

if TYPE_CHECKING:
    from luminal.graph import Graph
    from luminal.tensor import Tensor

M = TypeVar("M", bound="Module")


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` returns, like torch's."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError):
    """``load_state_dict`` found missing keys, unexpected keys or shape
    mismatches. The attributes list every one; the message the first
    ``MAX_LISTED`` of each kind (a hostile checkpoint can have millions)."""

    MAX_LISTED = 50

    def __init__(
        self,
        module_name: str,
        missing_keys: list[str],
        unexpected_keys: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.missing_keys = missing_keys
        self.unexpected_keys = unexpected_keys
        self.mismatched = mismatched  # (key, shape given, shape expected)
        n = self.MAX_LISTED

        def listed(keys: list[str]) -> str:
            more = f", ... and {len(keys) - n} more" if len(keys) > n else ""
            return ", ".join(f'"{k}"' for k in keys[:n]) + more + "."

        lines = []
        if missing_keys:
            lines.append("Missing key(s) in state_dict: " + listed(missing_keys))
        if unexpected_keys:
            lines.append("Unexpected key(s) in state_dict: " + listed(unexpected_keys))
        for key, got, want in mismatched[:n]:
            lines.append(
                f"size mismatch for {key}: copying a param with shape {got} from checkpoint, "
                f"the shape in current model is {want}."
            )
        if len(mismatched) > n:
            lines.append(f"... and {len(mismatched) - n} more size mismatches.")
        super().__init__(f"Error(s) in loading state_dict for {module_name}:\n\t" + "\n\t".join(lines))


def _first_graph(args: Any) -> Graph | None:
    """The graph of the first Tensor in ``args`` (searching tuples, lists, dicts)."""
    from luminal.tensor import Tensor

    stack = [args]
    while stack:
        a = stack.pop(0)
        if isinstance(a, Tensor):
            return a.graph
        if isinstance(a, (tuple, list)):
            stack[0:0] = list(a)
        elif isinstance(a, dict):
            stack[0:0] = list(a.values())
    return None


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


def _forward_unimplemented(self: Module, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')


class Module:
    """Base class of all layers, like ``torch.nn.Module``.

    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8)
    ...         self.fc2 = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(F.relu(self.fc1(x)))
    >>> y = MLP()(cx.tensor((3, 4)).set(data)).retrieve()

    ``training`` is read while ``forward`` builds the graph: a graph built in
    train mode keeps train behaviour; call ``eval()`` before building.
    """

    forward: Callable[..., Any] = _forward_unimplemented
    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Buffer | None]
    _modules: dict[str, Module | None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})

    # ---- calling ---------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _first_graph((args, kwargs))
        if graph is not None:
            self.bind(graph)
        return self.forward(*args, **kwargs)

    def bind(self, graph: Graph, prefix: str = "") -> None:
        """Give every parameter and float buffer of this tree an input in
        ``graph`` (those already bound keep theirs), named by its state_dict
        name after ``prefix``. ``__call__`` does this; forwards then fetch the
        inputs with ``p.tensor(graph)``."""
        for name, p in self.named_parameters(prefix.rstrip(".")):
            p.tensor(graph, name)
        for name, b in self.named_buffers(prefix.rstrip(".")):
            if b.dtype.kind == "f":
                b.tensor(graph, name)

    # ---- registration ----------------------------------------------------------
    def _check_new_name(self, name: str, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got {name!r}')
        if name == "":
            raise KeyError(f"{kind} name can't be empty string")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (or None: a declared-but-absent weight, like ``bias=False``)."""
        self._check_new_name(name, "parameter")
        if isinstance(param, Buffer) or (param is not None and not isinstance(param, Parameter)):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} (nn.Parameter or None required)")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute {name!r} already exists")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer: numpy data (or None) that is module state but not a
        weight. Persistent buffers are listed in ``state_dict``."""
        self._check_new_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is None or isinstance(tensor, Buffer):
            buf = tensor
            if buf is not None:
                buf.persistent = persistent
        else:
            buf = Buffer(tensor, persistent=persistent)
        self._buffers[name] = buf

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (or None)."""
        self._check_new_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, (Parameter, Module)):
            if params is None:
                what = "module" if isinstance(value, Module) else type(value).__name__.lower() + "s"
                raise AttributeError(f"cannot assign {what} before Module.__init__() call")
            if isinstance(value, Buffer):
                if name not in self._buffers:
                    self._forget(name)
                self.register_buffer(name, value, value.persistent)
            elif isinstance(value, Parameter):
                if name not in params:  # a re-assignment keeps its place, as in torch
                    self._forget(name)
                self.register_parameter(name, value)
            else:
                if name not in self._modules:
                    self._forget(name)
                self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} (nn.Parameter or None expected)")
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} (Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            buf = self._buffers[name]
            if value is None:
                self._buffers[name] = None
            elif buf is None:
                self._buffers[name] = Buffer(value)
            else:
                buf.data = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            sub = d.get(key)
            if sub is not None and name in sub:
                return sub[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for key in ("_parameters", "_buffers", "_modules"):
            sub = self.__dict__.get(key)
            if sub is not None and name in sub:
                del sub[name]
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---- the tree --------------------------------------------------------------
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module in the tree, this one first (name ""), depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, attr: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mod_prefix, mod in mods:
            for name, v in getattr(mod, attr).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + name, v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(state_dict name, Parameter)`` for every parameter; a shared one once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Buffer]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Buffer]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The module at dotted path ``target`` ("" is self)."""
        mod: Module = self
        if target == "":
            return mod
        for item in target.split("."):
            child = mod._modules.get(item)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {item!r} (in {target!r})")
            mod = child
        return mod

    def get_parameter(self, target: str) -> Parameter:
        mod_path, _, name = target.rpartition(".")
        p = self.get_submodule(mod_path)._parameters.get(name)
        if p is None:
            raise AttributeError(f"no parameter {target!r}")
        return p

    def apply(self: M, fn: Callable[[Module], Any]) -> M:
        """Call ``fn`` on every child (recursively), then on self. Returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes -----------------------------------------------------------------
    def train(self: M, mode: bool = True) -> M:
        """Set training mode here and in every child. Returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self: M) -> M:
        return self.train(False)

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    # ---- state -----------------------------------------------------------------
    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every state_dict entry, shared tensors under each of their names."""
        for mod_prefix, mod in self.named_modules(prefix=prefix, remove_duplicate=False):
            dot = mod_prefix + ("." if mod_prefix else "")
            for name, p in mod._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in mod._buffers.items():
                if b is not None and b.persistent:
                    yield dot + name, b

    def state_dict(
        self, destination: dict[str, Any] | None = None, prefix: str = "", keep_vars: bool = False
    ) -> dict[str, Any]:
        """name -> numpy array (a copy) for every parameter and persistent
        buffer, with torch's names; ``keep_vars=True`` gives the Parameter and
        Buffer objects instead."""
        out: dict[str, Any] = OrderedDict() if destination is None else destination
        for name, p in self._state_items(prefix.rstrip(".")):
            out[name] = p if keep_vars else p.data.copy()
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (numpy arrays, torch tensors, lists,
        or Parameters) into this tree, re-setting every graph the parameters
        are bound to. A torch ``model.state_dict()`` loads directly.

        Raises one ``StateDictError`` listing every missing key, unexpected key
        and shape mismatch (``strict=False`` tolerates missing and unexpected
        keys, returning them, but still rejects mismatched shapes). Nothing
        changes when it raises. ``assign`` is accepted for torch compatibility;
        values are always copied."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
        updates: list[tuple[Parameter, np.ndarray]] = []
        for key, p in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value.data if isinstance(value, Parameter) else _as_numpy(value)
            if tuple(arr.shape) != p.shape:
                mismatched.append((key, tuple(arr.shape), p.shape))
                continue
            updates.append((p, as_array(arr, p.dtype)))  # convert all before changing any
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(
                type(self).__name__,
                missing if strict else [],
                unexpected if strict else [],
                mismatched,
            )
        for p, arr in updates:
            p._replace(arr)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing --------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside ``Name(...)`` (overridden by layers)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for key, m in self._modules.items():
            lines.append(f"({key}): " + _addindent(repr(m), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def param_tensor(p: Parameter | None, graph: Graph) -> Tensor | None:
    """``p.tensor(graph)``, or None for an absent parameter."""
    return None if p is None else p.tensor(graph)
