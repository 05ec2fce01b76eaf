"""Tokenizers for the language models: text to token ids and back, streaming
detokenization and chat templates.

Three sources, one ``Tokenizer`` API:

* a Hugging Face ``tokenizer.json`` (through the ``tokenizers`` package,
  imported only then), with ``tokenizer_config.json`` (special tokens, chat
  template), ``config.json`` / ``generation_config.json`` (bos / eos ids) from
  the same directory: ``Tokenizer.from_pretrained("models/Mistral-7B-Instruct-v0.3")``;
* the vocabulary embedded in a GGUF file (``tokenizer.ggml.*``; model "llama",
  i.e. SentencePiece-style BPE: pieces merged greedily by score, "▁" for
  spaces, ``<0xXX>`` byte tokens for anything else), needing no package:
  ``Tokenizer.from_gguf("model.gguf")``; or model "gpt2", the byte-level BPE
  of Llama 3 and Mistral's Tekken models (``byte_bpe.py``; encoding needs the
  ``tokenizers`` package);
* a byte-level vocabulary (256 bytes + ``<s>`` + ``</s>``) for demos and tests:
  ``Tokenizer.byte_level()``.

>>> tok = Tokenizer.from_pretrained("models/Mistral-7B-Instruct-v0.3")
>>> ids = tok.encode("Hello world")             # with BOS
>>> tok.decode(ids)
'Hello world'
>>> stream = tok.stream()                       # incremental, for printing as you go
>>> "".join(stream.put(i) for i in ids) + stream.flush()
'Hello world'
>>> tok.apply_chat_template([{"role": "user", "content": "Hi"}])
'<s>[INST] Hi [/INST]'

Chat templates (``chat_template`` in ``tokenizer_config.json``, or
``tokenizer.chat_template`` in a GGUF) render with jinja2 when it is
installed. Without jinja2, templates in Mistral / Llama 2's ``[INST]`` format
fall back to a built-in renderer (``render_inst_chat``): ``<s>[INST] {system}
\\n\\n{user} [/INST] {assistant}</s>[INST] {user} [/INST]`` (the system
message, if any, joins the first user message); other templates raise.
"""

from __future__ import annotations

import datetime
import heapq
import json
import os
import re
import warnings
from typing import Any, Iterable, Mapping, Protocol, Sequence, Union

import numpy as np

from luminal.io.errors import short_repr
from luminal.models.byte_bpe import ByteBPEVocab
from luminal.models.token_list import TokenList

__all__ = [
    "ByteVocab",
    "SentencePieceVocab",
    "StreamDecoder",
    "Tokenizer",
    "render_inst_chat",
]

PathLike = Union[str, "os.PathLike[str]"]

SPACE = "\u2581"  # "▁", SentencePiece's visible space

# GGUF token types (llama.cpp's llama_token_type).
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# The text of the tokens chat models end a turn with (llama.cpp stops at
# these too when the file names no id for them).
END_OF_TURN_TOKENS = frozenset({"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"})

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class _Backend(Protocol):
    """What a ``Tokenizer`` needs from a vocabulary."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, add_bos: bool) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...

    def id_to_token(self, token_id: int) -> str | None: ...


# ---------------------------------------------------------------- vocabularies


class SentencePieceVocab(TokenList):
    """SentencePiece-style BPE over a vocabulary with scores, as llama.cpp's
    "llama" tokenizer (and GGUF files) define it.

    Encoding: spaces become "▁" (and one is prepended with
    ``add_space_prefix``); the text is split into characters, and the
    adjacent pair whose concatenation is a vocabulary piece with the highest
    score is merged, repeatedly (ties: leftmost first). A final symbol that is
    not a piece is spelled as ``<0xXX>`` byte tokens (or ``unk_id``).
    Control and user-defined tokens written literally in the text (``<s>``,
    ``[INST]``) become their ids. Decoding reverses it: byte tokens become
    bytes, "▁" spaces, and the prefix space of the first piece is dropped.

    >>> v = SentencePieceVocab(["<unk>", "<s>", "</s>", "▁", "h", "i", "▁h", "▁hi"],
    ...                        scores=[0, 0, 0, -1, -2, -3, -1.5, -0.5],
    ...                        token_types=[2, 3, 3, 1, 1, 1, 1, 1], bos_id=1, eos_id=2)
    >>> v.encode("hi", add_bos=True)
    [1, 7]
    """

    def __init__(
        self,
        tokens: Sequence[str],
        scores: Sequence[float] | None = None,
        token_types: Sequence[int] | None = None,
        *,
        bos_id: int | None = 1,
        eos_id: int | None = 2,
        unk_id: int | None = 0,
        add_space_prefix: bool = True,
    ) -> None:
        n = len(tokens)
        if scores is not None and len(scores) != n:
            raise ValueError(f"[SentencePieceVocab] {len(scores)} scores for {n} tokens")
        if token_types is not None and len(token_types) != n:
            raise ValueError(f"[SentencePieceVocab] {len(token_types)} token types for {n} tokens")
        super().__init__(tokens)
        self.scores = [float(s) for s in scores] if scores is not None else [-float(i) for i in range(n)]
        types = [int(t) for t in token_types] if token_types is not None else [TOKEN_NORMAL] * n
        for i, t in enumerate(self.tokens):  # byte tokens, even when types are absent
            if token_types is None and _BYTE_TOKEN.match(t):
                types[i] = TOKEN_BYTE
        if token_types is None:
            for special in (bos_id, eos_id):
                if special is not None and 0 <= special < n:
                    types[special] = TOKEN_CONTROL
            if unk_id is not None and 0 <= unk_id < n:
                types[unk_id] = TOKEN_UNKNOWN
        self.token_types = types
        self.bos_id, self.eos_id, self.unk_id = bos_id, eos_id, unk_id
        self.add_space_prefix = add_space_prefix
        self._pieces: dict[str, int] = {}
        for i, t in enumerate(self.tokens):
            if types[i] in (TOKEN_NORMAL, TOKEN_USER_DEFINED, TOKEN_UNUSED) and t and t not in self._pieces:
                self._pieces[t] = i
        self._bytes: dict[int, int] = {}
        for i, t in enumerate(self.tokens):
            m = _BYTE_TOKEN.match(t)
            if m and (types[i] == TOKEN_BYTE or token_types is None):
                self._bytes.setdefault(int(m.group(1), 16), i)
        self._byte_of = {i: b for b, i in self._bytes.items()}
        literal = sorted(
            (t for i, t in enumerate(self.tokens) if types[i] in (TOKEN_CONTROL, TOKEN_USER_DEFINED) and t),
            key=len,
            reverse=True,
        )
        self._special_re = re.compile("|".join(re.escape(t) for t in literal)) if literal else None

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        out: list[int] = [self.bos_id] if add_bos and self.bos_id is not None else []
        pos = 0
        first = True
        parts: list[tuple[str, bool]] = []
        if self._special_re is not None:
            for m in self._special_re.finditer(text):
                if m.start() > pos:
                    parts.append((text[pos : m.start()], False))
                parts.append((m.group(0), True))
                pos = m.end()
        if pos < len(text):
            parts.append((text[pos:], False))
        for part, special in parts:
            if special:
                out.append(self._ids[part])
            else:
                out.extend(self._encode_text(part, prefix=first and self.add_space_prefix))
            first = False
        return out

    def _encode_text(self, text: str, prefix: bool) -> list[int]:
        s = (" " + text if prefix else text).replace(" ", SPACE)
        if not s:
            return []
        syms = list(s)
        n = len(syms)
        nxt = list(range(1, n)) + [-1]
        prv = list(range(-1, n - 1))
        alive = [True] * n
        pieces, scores = self._pieces, self.scores
        heap: list[tuple[float, int, str]] = []

        def consider(i: int) -> None:
            j = nxt[i]
            if i < 0 or j < 0:
                return
            merged = syms[i] + syms[j]
            tid = pieces.get(merged)
            if tid is not None:
                heapq.heappush(heap, (-scores[tid], i, merged))

        for i in range(n - 1):
            consider(i)
        while heap:
            _, i, merged = heapq.heappop(heap)
            j = nxt[i]
            if not alive[i] or j < 0 or syms[i] + syms[j] != merged:
                continue  # stale: one side was merged since
            syms[i] = merged
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prv[nxt[j]] = i
            consider(prv[i])
            consider(i)
        out: list[int] = []
        i = 0
        while i >= 0:
            sym = syms[i]
            tid = pieces.get(sym)
            if tid is not None:
                out.append(tid)
            else:
                for b in sym.encode("utf-8"):
                    bid = self._bytes.get(b)
                    if bid is not None:
                        out.append(bid)
                    elif self.unk_id is not None:
                        out.append(self.unk_id)
            i = nxt[i]
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        buf = bytearray()
        first = True
        for tid in ids:
            tid = int(tid)
            if not 0 <= tid < len(self.tokens):
                raise ValueError(f"[SentencePieceVocab] token id {tid} is out of range (vocab {len(self.tokens)})")
            t, kind = self.tokens[tid], self.token_types[tid]
            byte = self._byte_of.get(tid)
            if byte is not None:
                buf.append(byte)
                first = False
                continue
            if kind in (TOKEN_CONTROL, TOKEN_UNKNOWN) and skip_special_tokens:
                continue
            if kind in (TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNKNOWN):
                buf += t.encode("utf-8", "surrogateescape")
                first = False
                continue
            piece = t.replace(SPACE, " ")
            if first and self.add_space_prefix and piece.startswith(" "):
                piece = piece[1:]
            first = False
            buf += piece.encode("utf-8", "surrogateescape")
        return buf.decode("utf-8", "replace")


class ByteVocab:
    """Bytes as tokens: ids 0..255 are the bytes, 256 is ``<s>``, 257 ``</s>``.
    Every string round-trips; used by the random-weight demo.

    >>> ByteVocab().encode("hi", add_bos=True)
    [256, 104, 105]
    """

    bos_id = 256
    eos_id = 257

    @property
    def vocab_size(self) -> int:
        return 258

    def token_to_id(self, token: str) -> int | None:
        return {"<s>": 256, "</s>": 257}.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        if 0 <= token_id < 256:
            return f"<0x{token_id:02X}>"
        return {256: "<s>", 257: "</s>"}.get(token_id)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        return ([self.bos_id] if add_bos else []) + list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        data = bytearray()
        for i in ids:
            i = int(i)
            if 0 <= i < 256:
                data.append(i)
            elif i in (256, 257):
                if not skip_special_tokens:
                    data += b"<s>" if i == 256 else b"</s>"
            else:
                raise ValueError(f"[ByteVocab] token id {i} is out of range (vocab 258)")
        return data.decode("utf-8", "replace")


class _HFVocab:
    """A ``tokenizers.Tokenizer`` (from ``tokenizer.json``)."""

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise ImportError(f"reading {path!r} needs the 'tokenizers' package: pip install tokenizers "
                              "(or use a GGUF file, whose vocabulary needs no package)") from None
        self._tok = HFTokenizer.from_file(path)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def token_to_id(self, token: str) -> int | None:
        i = self._tok.token_to_id(token)
        return None if i is None else int(i)

    def id_to_token(self, token_id: int) -> str | None:
        t = self._tok.id_to_token(token_id)
        return None if t is None else str(t)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_bos).ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens))


# ---------------------------------------------------------------- the tokenizer


class Tokenizer:
    """Text <-> token ids for a language model, with its special ids and chat
    template. Build one with ``from_pretrained`` (a Hugging Face directory or
    a GGUF file), ``from_gguf``, ``from_file`` or ``byte_level``.

    Attributes: ``bos_token_id``, ``eos_token_ids`` (a set: generation stops
    at any of them), ``bos_token`` / ``eos_token`` (their text),
    ``chat_template`` (None if the model has none), ``vocab_size``.
    """

    def __init__(
        self,
        vocab: _Backend,
        *,
        bos_token_id: int | None = None,
        eos_token_ids: Iterable[int] = (),
        chat_template: str | None = None,
        add_bos: bool = True,
        name: str = "",
    ) -> None:
        self.vocab = vocab
        self.bos_token_id = bos_token_id
        self.eos_token_ids: set[int] = {int(i) for i in eos_token_ids}
        self.chat_template = chat_template
        self.add_bos = add_bos
        self.name = name

    # ---- construction ----------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: PathLike) -> Tokenizer:
        """From a Hugging Face model directory (``tokenizer.json``, plus
        ``tokenizer_config.json``, ``config.json``, ``generation_config.json``
        when present), a GGUF file (its embedded vocabulary), or the id of a
        model in the local Hugging Face cache."""
        from luminal.models.loading import resolve_model_path

        p = resolve_model_path(os.fspath(path))
        if os.path.isfile(p):
            if p.endswith(".json"):
                return cls.from_file(p)
            return cls.from_gguf(p)
        tj = os.path.join(p, "tokenizer.json")
        if not os.path.isfile(tj):
            extra = (" (it has tokenizer.model: SentencePiece models need a tokenizer.json, which "
                     "`transformers` can write with AutoTokenizer.from_pretrained(dir).save_pretrained(dir))"
                     if os.path.isfile(os.path.join(p, "tokenizer.model")) else "")
            raise FileNotFoundError(f"[Tokenizer] no tokenizer.json in {p!r}{extra}")
        return cls.from_file(tj)

    @classmethod
    def from_file(cls, tokenizer_json: PathLike) -> Tokenizer:
        """From a ``tokenizer.json``; special tokens and the chat template come
        from the JSON files next to it."""
        p = os.fspath(tokenizer_json)
        vocab = _HFVocab(p)
        d = os.path.dirname(os.path.abspath(p))
        tcfg = _read_json(os.path.join(d, "tokenizer_config.json")) or {}
        mcfg = _read_json(os.path.join(d, "config.json")) or {}
        gcfg = _read_json(os.path.join(d, "generation_config.json")) or {}

        def token_id(entry: Any) -> int | None:
            text = entry.get("content") if isinstance(entry, Mapping) else entry
            return vocab.token_to_id(text) if isinstance(text, str) else None

        bos = token_id(tcfg.get("bos_token"))
        if bos is None:
            bos = _first_int(gcfg.get("bos_token_id"), mcfg.get("bos_token_id"))
        eos: set[int] = set()
        e = token_id(tcfg.get("eos_token"))
        if e is not None:
            eos.add(e)
        for src in (gcfg.get("eos_token_id"), mcfg.get("eos_token_id")):
            eos.update(_int_list(src))
        template = tcfg.get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, Mapping)}
            template = named.get("default") or next(iter(named.values()), None)
        return cls(vocab, bos_token_id=bos, eos_token_ids=eos,
                   chat_template=template if isinstance(template, str) else None, name=p)

    @classmethod
    def from_gguf(cls, source: Any) -> Tokenizer:
        """From the vocabulary embedded in a GGUF file (a path or an open
        ``GGUFFile``). Supports ``tokenizer.ggml.model`` "llama"
        (SentencePiece-style) and "gpt2" (byte-level BPE: Llama 3, Tekken, with
        the pre-tokenizers in ``byte_bpe.PRE_TOKENIZERS``); others raise
        ``NotImplementedError``. Generation stops at EOS and at the file's
        end-of-turn tokens (``<|eot_id|>``)."""
        from luminal.io.gguf import GGUFFile

        if isinstance(source, GGUFFile):
            return cls._from_gguf_metadata(source.metadata, source.path)
        with GGUFFile(source) as f:
            return cls._from_gguf_metadata(f.metadata, f.path)

    @classmethod
    def _from_gguf_metadata(cls, md: Mapping[str, Any], where: str) -> Tokenizer:
        model = md.get("tokenizer.ggml.model")
        tokens = md.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, list):
            raise ValueError(f"[Tokenizer] {where}: the GGUF file has no tokenizer.ggml.tokens vocabulary")
        if not isinstance(model, str):
            raise ValueError(f"[Tokenizer] {where}: tokenizer.ggml.model is {short_repr(model)}, not a string")
        if model not in ("llama", "gpt2"):
            raise NotImplementedError(
                f"[Tokenizer] {where}: GGUF tokenizer model {model!r} is not supported yet (only 'llama', "
                "SentencePiece-style, and 'gpt2', byte-level BPE); pass a directory with the model's "
                "tokenizer.json instead")
        # Untrusted metadata: every value checked for its type and range here,
        # so a hostile file gives one clear error naming it.
        def bad(key: str, what: str) -> ValueError:
            return ValueError(f"[Tokenizer] {where}: tokenizer.ggml.{key} {what}")

        n = len(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise bad("tokens", "holds a value that is not a string")

        def column(key: str, integer: bool = False) -> list[Any] | None:
            v = md.get(f"tokenizer.ggml.{key}")
            if v is None:
                return None
            try:
                a = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                raise bad(key, "is not a list of numbers") from None
            if a.shape != (n,):
                raise bad(key, f"has shape {a.shape}, expected one value per token ({n})")
            if integer and not (np.isfinite(a).all() and (a == np.round(a)).all()):
                raise bad(key, "holds a value that is not an integer")
            if integer and not (np.abs(a) < 2**31).all():  # types are small codes (0..6)
                raise bad(key, f"holds {float(a[np.abs(a) >= 2**31][0]):g}, outside the int32 range")
            values: list[Any] = a.astype(np.int64).tolist() if integer else a.tolist()
            return values

        def token_id(key: str) -> int | None:
            v = md.get(f"tokenizer.ggml.{key}")
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise bad(key, f"is {v!r}, not a token id")
            if not 0 <= int(v) < n:  # some files mean "none" by -1 or 2**32 - 1; llama.cpp warns too
                warnings.warn(f"[Tokenizer] {where}: tokenizer.ggml.{key} {int(v)} is outside the "
                              f"vocabulary (0..{n - 1}); ignored", stacklevel=4)
                return None
            return int(v)

        def flag(key: str, default: bool = True) -> bool:
            v = md.get(f"tokenizer.ggml.{key}", default)
            if not isinstance(v, (bool, np.bool_)):
                raise bad(key, f"is {v!r}, not a boolean")
            return bool(v)

        bos, eos, unk = token_id("bos_token_id"), token_id("eos_token_id"), token_id("unknown_token_id")
        types = column("token_type", integer=True)
        vocab: SentencePieceVocab | ByteBPEVocab
        if model == "llama":
            vocab = SentencePieceVocab(tokens, column("scores"), types, bos_id=bos, eos_id=eos, unk_id=unk,
                                       add_space_prefix=flag("add_space_prefix"))
            add_bos = flag("add_bos_token")
        else:
            merges = md.get("tokenizer.ggml.merges", [])
            if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
                raise bad("merges", "is not a list of strings")
            pre = md.get("tokenizer.ggml.pre")
            if pre is not None and not isinstance(pre, str):
                raise bad("pre", f"is {short_repr(pre)}, not a string")
            vocab = ByteBPEVocab(tokens, merges, types, pre=pre, bos_id=bos, where=where)
            add_bos = flag("add_bos_token", vocab.default_add_bos)
        # Generation ends at EOS and at the end-of-turn tokens chat models
        # emit instead (Llama 3 Instruct's <|eot_id|>): by id when the file
        # names them, else by their usual text on a control token.
        stops = {i for i in (eos, token_id("eot_token_id"), token_id("eom_token_id")) if i is not None}
        kinds = types or [TOKEN_NORMAL] * n
        stops.update(i for i, t in enumerate(tokens) if t in END_OF_TURN_TOKENS and kinds[i] == TOKEN_CONTROL)
        template = md.get("tokenizer.chat_template")
        return cls(vocab, bos_token_id=bos, eos_token_ids=stops,
                   chat_template=template if isinstance(template, str) else None,
                   add_bos=add_bos, name=where)

    @classmethod
    def byte_level(cls) -> Tokenizer:
        """Bytes as tokens (vocab 258, ``<s>`` = 256, ``</s>`` = 257): needs no files."""
        v = ByteVocab()
        return cls(v, bos_token_id=v.bos_id, eos_token_ids=[v.eos_id], name="bytes")

    # ---- text <-> ids -------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self.vocab.vocab_size)

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_token_id is None else self.vocab.id_to_token(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        ids = sorted(self.eos_token_ids)
        return self.vocab.id_to_token(ids[0]) if ids else None

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids of ``text``, with BOS first unless ``add_bos=False``
        (None: the tokenizer's default). Special tokens written in the text
        (``<s>``, ``[INST]``) become their ids."""
        return self.vocab.encode(text, self.add_bos if add_bos is None else add_bos)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """The text of ``ids`` (special tokens left out unless asked)."""
        return self.vocab.decode([int(i) for i in ids], skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.vocab.id_to_token(token_id)

    def stream(self, context: Sequence[int] = (), skip_special_tokens: bool = True) -> StreamDecoder:
        """A ``StreamDecoder``: feed it ids one at a time, print what it returns.
        ``context`` (e.g. the prompt's last ids) is decoded for spacing, not printed."""
        return StreamDecoder(self, context, skip_special_tokens)

    # ---- chat ------------------------------------------------------------------
    def apply_chat_template(
        self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True, **extra: Any
    ) -> str:
        """The prompt text for ``messages`` (``[{"role": "user", "content":
        ...}, ...]``) in the model's chat format. Encode it with
        ``encode(text, add_bos=False)``: the template writes BOS itself."""
        if self.chat_template is None:
            raise ValueError(f"[Tokenizer] {self.name or 'this tokenizer'} has no chat template")
        try:
            import jinja2  # noqa: F401
        except ImportError:
            if "[INST]" in self.chat_template:
                return render_inst_chat(messages, self.bos_token or "<s>", self.eos_token or "</s>")
            raise ImportError("rendering this chat template needs jinja2 (pip install jinja2); only "
                              "[INST]-style templates have a built-in fallback") from None
        return _render_jinja(self.chat_template, messages, add_generation_prompt,
                             self.bos_token or "", self.eos_token or "", extra)

    def __repr__(self) -> str:
        return (f"Tokenizer({self.name!r}, vocab_size={self.vocab_size}, bos={self.bos_token_id}, "
                f"eos={sorted(self.eos_token_ids)})")


class StreamDecoder:
    """Incremental detokenization: ``put(id)`` returns the text that id
    completes (possibly ""), so printing every return value prints the decoded
    text as it grows. It decodes a small window of recent ids and returns only
    the new suffix, holding text back while it ends in an incomplete UTF-8
    sequence ("\\ufffd"). ``flush()`` returns whatever is left.

    >>> s = tok.stream()
    >>> [s.put(i) for i in tok.encode("héllo", add_bos=False)]  # doctest: +SKIP
    ['h', '', 'éllo']
    """

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int] = (), skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self._ids: list[int] = [int(i) for i in context]
        self._prefix = 0
        self._read = len(self._ids)
        self.text = ""
        """Everything returned so far."""

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, self.skip_special_tokens)

    def put(self, token_id: int) -> str:
        """Add one id; the text it completes."""
        self._ids.append(int(token_id))
        return self._emit(final=False)

    def flush(self) -> str:
        """The text still held back (an unfinished UTF-8 sequence), decoded as is."""
        return self._emit(final=True)

    def _emit(self, final: bool) -> str:
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
            return ""
        delta = after[len(before) :]
        self._prefix, self._read = self._read, len(self._ids)
        self.text += delta
        return delta


# ---------------------------------------------------------------- chat templates


def render_inst_chat(messages: Sequence[Mapping[str, str]], bos: str = "<s>", eos: str = "</s>") -> str:
    """Mistral / Llama 2 ``[INST]`` chat format, without jinja2:
    ``<s>[INST] {user} [/INST] {assistant}</s>[INST] {user} [/INST]``; a
    system message is prepended to the first user message (blank line between).

    >>> render_inst_chat([{"role": "user", "content": "Hi"}])
    '<s>[INST] Hi [/INST]'
    """
    system = [m["content"] for m in messages if m.get("role") == "system"]
    out = bos
    first_user = True
    for m in messages:
        role, content = m.get("role"), str(m.get("content", ""))
        if role == "system":
            continue
        if role == "user":
            if first_user and system:
                content = "\n\n".join(system) + "\n\n" + content
            first_user = False
            out += f"[INST] {content.strip()} [/INST]"
        elif role == "assistant":
            out += f" {content.strip()}{eos}"
        else:
            raise ValueError(f"[render_inst_chat] unknown role {role!r} (system, user, assistant)")
    return out


# A chat template comes from the model file: untrusted code. The sandbox
# stops attribute tricks; these bound what it may build or loop over (a
# `{{ 'x' * 10**10 }}` or two nested `range(99999)` loops would take the
# memory or the CPU) while real templates stay far below them.
TEMPLATE_MAX_ITEMS = 1_000_000  # elements a `*` may build; range() steps per render


def _render_jinja(
    template: str,
    messages: Sequence[Mapping[str, str]],
    add_generation_prompt: bool,
    bos: str,
    eos: str,
    extra: Mapping[str, Any],
) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(f"[chat template] {message}")

    steps = [0]

    def bounded_range(*args: int) -> range:
        r = range(*args)
        steps[0] += len(r)
        if steps[0] > TEMPLATE_MAX_ITEMS:
            raise ValueError(f"[chat template] loops over more than {TEMPLATE_MAX_ITEMS:,} range steps")
        return r

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if (isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                            and len(seq) * times > TEMPLATE_MAX_ITEMS):
                        raise ValueError(f"[chat template] a repetition of {len(seq) * times:,} elements")
            elif (isinstance(left, int) and isinstance(right, int) and right > 0
                  and max(abs(left), 1).bit_length() * right > 4096):
                raise ValueError(f"[chat template] {short_repr(left)} ** {short_repr(right)} is too large")
            return super().call_binop(context, operator, left, right)

    env = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.globals["range"] = bounded_range
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent)
    variables: dict[str, Any] = {"tools": None, "documents": None}  # what templates test with `is none`
    variables.update(extra)
    try:
        return str(env.from_string(template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt,
            bos_token=bos, eos_token=eos, **variables))
    except ValueError as e:
        if str(e).startswith("[chat template]"):
            raise
        raise ValueError(f"[chat template] the template failed: {e}") from None
    except (jinja2.TemplateError, ArithmeticError, RecursionError, TypeError, LookupError, AttributeError) as e:
        raise ValueError(f"[chat template] the template failed: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- helpers


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _int_list(v: Any) -> list[int]:
    if isinstance(v, bool) or v is None:
        return []
    if isinstance(v, int):
        return [v]
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v if isinstance(x, int) and not isinstance(x, bool)]
    return []  # JSON holds nothing else that is an id ("57" is not [5, 7])


def _first_int(*vals: Any) -> int | None:
    for v in vals:
        ints = _int_list(v)
        if ints:
            return ints[0]
    return None
