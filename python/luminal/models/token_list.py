"""A vocabulary held as its list of token strings (an id is a position in
it): what the GGUF-embedded tokenizers share."""

from __future__ import annotations

from collections.abc import Sequence


class TokenList:
    """``tokens[i]`` is the text of id i; a token that appears twice keeps
    its first id for ``token_to_id``.

    >>> TokenList(["a", "b", "a"]).token_to_id("a"), TokenList(["a"]).id_to_token(5)
    (0, None)
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self._ids: dict[str, int] = {}
        for i, t in enumerate(self.tokens):
            self._ids.setdefault(t, i)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._ids.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.tokens[token_id] if 0 <= token_id < len(self.tokens) else None
