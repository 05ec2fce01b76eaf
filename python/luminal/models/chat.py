"""A multi-turn conversation with an instruct model that keeps its KV cache
between turns: each turn runs only the text its chat template adds after
what the cache already holds, not the whole conversation again.

>>> chat = Chat(Generator(model, tok), system="Answer in one sentence.")
>>> for piece in chat.send("What is a compiler?"):
...     print(piece, end="")
>>> print(chat.send("And an interpreter?").read())
>>> chat.messages[-1]["role"]
'assistant'

How a turn finds what is new: the cache holds the text of the conversation
as last sent (the rendered prompt, then the reply's tokens as generated).
The conversation with the new message is rendered whole; when it starts
with that text, only the rest is encoded and run after the cache (llama.cpp's
chat does the same). When it does not (a template that moves the system
message into the last turn, or a reply the template trims), the cache is
emptied and the whole conversation runs, so a reply is always the one a
fresh prompt of the same conversation would get (up to float rounding when
the encodings of the two differ).
"""

from __future__ import annotations

from typing import Iterable

from luminal.models.generate import GenerationStream, Generator

__all__ = ["Chat"]


class Chat:
    """A conversation over ``generator`` (whose tokenizer must have a chat
    template), optionally opened by a ``system`` message. ``send`` adds a
    user message and returns the reply as a ``GenerationStream``; the reply
    joins ``messages`` when the next message is sent (as the text generated
    by then, if the stream was not read to its end). Sampling arguments are
    ``Generator.stream``'s.

    Attributes: ``messages`` (role/content dicts, system first), and after
    each ``send`` ``reused_tokens`` (how many of the conversation's tokens
    the cache already held) and ``new_tokens`` (how many that turn ran).
    """

    def __init__(self, generator: Generator, system: str | None = None) -> None:
        tok = generator.tokenizer
        if tok is None or tok.chat_template is None:
            name = "" if tok is None else f" ({tok.name or 'this tokenizer'})"
            raise ValueError(f"[Chat] a conversation needs a tokenizer with a chat template{name}")
        self.generator = generator
        self.tokenizer = tok
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        self.reused_tokens = 0
        self.new_tokens = 0
        self._pending: GenerationStream | None = None  # the last reply, until the next message
        self._sent = ""  # the last rendered conversation (ending in the reply's header) ...
        self._sent_ids: list[int] = []  # ... and the ids that ran for it: the cache's first ones

    def send(
        self,
        text: str,
        max_tokens: int = 256,
        *,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop: Iterable[int | str] = (),
        suppress_tokens: Iterable[int] = (),
    ) -> GenerationStream:
        """Add the user message ``text``; stream the model's reply. Raises
        ``ValueError`` (and adds nothing) when the conversation with it no
        longer fits the model's context."""
        gen, tok = self.generator, self.tokenizer
        self._close_reply()
        messages = [*self.messages, {"role": "user", "content": text}]
        prompt = tok.apply_chat_template(messages)
        held = self._held_text()
        if held is not None and prompt.startswith(held) and len(prompt) > len(held):
            reused = len(gen.cached_ids)
            ids = tok.encode(prompt[len(held):], add_bos=False)
        else:
            reused = 0
            ids = tok.encode(prompt, add_bos=False)
        limit = gen.config.max_position_embeddings
        if reused + len(ids) >= limit:
            raise ValueError(f"[Chat] the conversation with this message takes {reused + len(ids)} tokens; "
                             f"the model's context is {limit} (start a new one with reset())")
        stream = gen.stream(ids, max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                            repetition_penalty=repetition_penalty, seed=seed, stop=stop,
                            suppress_tokens=suppress_tokens, after_cache=reused > 0)
        self.messages = messages
        self.reused_tokens, self.new_tokens = reused, len(ids)
        self._sent, self._sent_ids = prompt, gen.cached_ids[:reused] + ids
        self._pending = stream
        return stream

    def reset(self) -> None:
        """Forget the conversation (the system message stays)."""
        self._pending = None
        self.messages = [m for m in self.messages[:1] if m["role"] == "system"]
        self._sent, self._sent_ids = "", []
        self.generator.cache.reset()
        self.generator.cached_ids = []

    def _close_reply(self) -> None:
        """The last reply, as far as it was generated, joins the messages."""
        if self._pending is None:
            return
        stream, self._pending = self._pending, None
        self.messages.append({"role": "assistant",
                              "content": self.tokenizer.decode(stream.tokens)})

    def _held_text(self) -> str | None:
        """The text of the ids the cache holds, or None when the cache is not
        this conversation's (another prompt ran on the generator since)."""
        gen = self.generator
        ids, n = gen.cached_ids, len(self._sent_ids)
        if not n or len(ids) != gen.cache.length or ids[:n] != self._sent_ids:
            return None
        return self._sent + self.tokenizer.decode(ids[n:], skip_special_tokens=False)
