"""Byte-level BPE vocabularies from GGUF files (``tokenizer.ggml.model``
"gpt2"): the tokenizer of Llama 3 and its derivatives, of Mistral's Tekken
models (NeMo, Small 3) and of GPT-2.

Text is split into words by a pre-tokenizer regex that depends on the model
family (``tokenizer.ggml.pre``), each word's UTF-8 bytes are spelled in
GPT-2's printable byte alphabet (a space is "Ġ"), and adjacent symbols are
merged in the order of ``tokenizer.ggml.merges``. Encoding runs on the
``tokenizers`` package (imported only here), whose regex engine knows the
Unicode classes (``\\p{L}``) these patterns use; decoding is the byte
alphabet read backwards and needs nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from luminal.models.token_list import TokenList

# GPT-2's pre-tokenizer: contractions, letters, digits and other symbols
# (each with an optional leading space), then runs of whitespace.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# Llama 3's: contractions in any case, a letter run may take one leading
# non-letter, digits go in groups of at most three, and newlines split apart.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Tekken's (Mistral NeMo, Mistral Small 3): a word is a run of capitals then
# lower-case letters (so CamelCase splits), digits go one by one, and no
# contractions.
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                  r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                  r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class PreTokenizer:
    """A family's word-splitting rule, as llama.cpp names it in ``tokenizer.ggml.pre``."""

    def __init__(self, pattern: str, ignore_merges: bool, add_bos: bool) -> None:
        self.pattern = pattern
        self.ignore_merges = ignore_merges  # a word that is a token is taken whole, before any merge
        self.add_bos = add_bos  # the default when the file does not say


_LLAMA3 = PreTokenizer(LLAMA3_PATTERN, ignore_merges=True, add_bos=True)
_GPT2 = PreTokenizer(GPT2_PATTERN, ignore_merges=False, add_bos=False)
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    "llama-bpe": _LLAMA3, "llama3": _LLAMA3, "llama-v3": _LLAMA3,
    "gpt-2": _GPT2,
    "tekken": PreTokenizer(TEKKEN_PATTERN, ignore_merges=True, add_bos=True),
}


def _byte_alphabet() -> list[str]:
    """GPT-2's character for each byte: printable Latin-1 bytes stand for
    themselves, the others (controls, space, ...) for chr(256 + n) in order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars: list[str] = []
    extra = 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


BYTE_CHARS = _byte_alphabet()
_BYTE_OF = {c: b for b, c in enumerate(BYTE_CHARS)}

# GGUF token types (llama.cpp's llama_token_type) this vocabulary treats apart.
_CONTROL, _USER_DEFINED = 3, 4


class ByteBPEVocab(TokenList):
    """Byte-level BPE (``tokenizer.ggml.model`` "gpt2") over ``tokens`` and
    ``merges`` ("a b": symbol ``a`` followed by ``b`` merges, earlier first),
    splitting words by the rule ``pre`` names (``PRE_TOKENIZERS``; None or
    "default", a file older than the key: GPT-2's, with a warning). Control
    and user-defined tokens written in the text become their ids. ``where``
    names the source in errors.

    >>> v = ByteBPEVocab(["h", "i", "hi", "<|begin_of_text|>"], ["h i"], [1, 1, 1, 3],
    ...                  pre="llama-bpe", bos_id=3)
    >>> v.encode("hi", add_bos=True)
    [3, 2]
    """

    def __init__(
        self,
        tokens: Sequence[str],
        merges: Sequence[str],
        token_types: Sequence[int] | None = None,
        *,
        pre: str | None = "gpt-2",
        bos_id: int | None = None,
        where: str = "",
    ) -> None:
        label = f"[Tokenizer] {where}: " if where else "[ByteBPEVocab] "
        n = len(tokens)
        if token_types is not None and len(token_types) != n:
            raise ValueError(f"{label}{len(token_types)} token types for {n} tokens")
        if pre in (None, "default"):  # files older than the key: the model's own rule is unknown
            warnings.warn(f"{label}no tokenizer.ggml.pre (the file predates it): splitting words by "
                          "GPT-2's rule, which may differ from the model's own tokenizer", stacklevel=3)
            pre = "gpt-2"
        rule = PRE_TOKENIZERS.get(pre)
        if rule is None:
            raise NotImplementedError(
                f"{label}byte-level BPE pre-tokenizer {pre!r} is not supported yet (known: "
                f"{', '.join(sorted(PRE_TOKENIZERS))}); pass a directory with the model's tokenizer.json instead")
        try:
            from tokenizers import AddedToken, Regex, models, pre_tokenizers
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise ImportError(f"{label}this GGUF vocabulary is byte-level BPE, which needs the 'tokenizers' "
                              "package: pip install tokenizers") from None
        super().__init__(tokens)
        self.token_types = [int(t) for t in token_types] if token_types is not None else [1] * n
        self.bos_id = bos_id
        self.pre = pre
        ids = self._ids
        pairs: list[tuple[str, str]] = []
        for m in merges:
            a, sep, b = m.partition(" ")
            if not sep or not a or not b or " " in b:
                raise ValueError(f"{label}tokenizer.ggml.merges holds {m[:40]!r}, not two symbols "
                                 "separated by one space")
            if a not in ids or b not in ids or a + b not in ids:
                raise ValueError(f"{label}tokenizer.ggml.merges holds {m[:40]!r}, whose symbols or "
                                 "result are not tokens")
            pairs.append((a, b))
        # Bytes with no token of their own (some vocabularies drop those
        # UTF-8 never uses): text with one fails to encode, never loses it.
        self._unspellable = frozenset(b for b, c in enumerate(BYTE_CHARS) if c not in ids)
        self._label = label
        self._tok = HFTokenizer(models.BPE(ids, pairs, ignore_merges=rule.ignore_merges))
        self._tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(rule.pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        special = [AddedToken(t, special=True, normalized=False) for i, t in enumerate(self.tokens)
                   if self.token_types[i] == _CONTROL and ids[t] == i]
        plain = [AddedToken(t, special=False, normalized=False) for i, t in enumerate(self.tokens)
                 if self.token_types[i] == _USER_DEFINED and ids[t] == i]
        self._tok.add_special_tokens(special)
        self._tok.add_tokens(plain)
        self.default_add_bos = rule.add_bos

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids: list[int] = list(self._tok.encode(text, add_special_tokens=False).ids)
        if self._unspellable and self.decode(ids, skip_special_tokens=False) != text:
            lacks = " ".join(f"0x{b:02X}" for b in sorted(self._unspellable)[:8])
            raise ValueError(f"{self._label}the text holds a byte this vocabulary has no token for "
                             f"(it lacks {len(self._unspellable)}: {lacks} ...)")
        return ([self.bos_id] if add_bos and self.bos_id is not None else []) + ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        buf = bytearray()
        for tid in ids:
            tid = int(tid)
            if not 0 <= tid < len(self.tokens):
                raise ValueError(f"[ByteBPEVocab] token id {tid} is out of range (vocab {len(self.tokens)})")
            t, kind = self.tokens[tid], self.token_types[tid]
            if kind == _CONTROL and skip_special_tokens:
                continue
            if kind in (_CONTROL, _USER_DEFINED):  # stored as text, not in the byte alphabet
                buf += t.encode("utf-8", "surrogateescape")
                continue
            for c in t:
                b = _BYTE_OF.get(c)
                if b is None:
                    buf += c.encode("utf-8", "surrogateescape")
                else:
                    buf.append(b)
        return buf.decode("utf-8", "replace")
