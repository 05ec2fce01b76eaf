"""Byte-level BPE vocabularies in GGUF files (``tokenizer.ggml.model``
"gpt2", Llama 3's): a small Llama-3-style tokenizer is trained here with the
``tokenizers`` package and written to GGUF the way llama.cpp's converter
writes one; luminal's tokenization of the file must equal the Hugging Face
tokenizer it came from and llama.cpp's (when ``llama-cpp-python`` is
installed) on the same file."""

from __future__ import annotations

import argparse
import inspect
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import finish_metadata_gguf

from luminal.models import Tokenizer
from luminal.models.byte_bpe import ByteBPEVocab

tokenizers = pytest.importorskip("tokenizers")
gguf = pytest.importorskip("gguf")

# Llama 3's pre-tokenizer pattern as its tokenizer.json spells it (written out
# here rather than imported, so a slip in either copy shows).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
# Llama 3 Instruct's chat template.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
TEXTS = [
    "Hello world 12345", "  leading spaces\n\n\nand newlines\r\n", "I'M SURE it's 3.14159!!",
    "héllo wörld ½ ² Ⅻ ٣", "日本語のテキスト and 中文", "emoji 🤖🎉 end", "tabs\tand\u00a0nbsp",
    "<|eot_id|>special<|begin_of_text|> x", "def f(x):\n    return x**2  # comment", "   ", "", "a\n",
    "don't DON'T Don'T", "123456789 1 22 333 4444", "\u0301accent combining e\u0301",
    "getHTTPResponse XMLHttpRequest iPhone ÉCOLE école a/b//\n",
]


def train_llama3_style(vocab_size: int = 800) -> Any:
    """A byte-level BPE trained on two stdlib modules' source and numbers, configured as
    Llama 3's tokenizer.json is (split by the pattern, then bytes; whole-word
    lookup before merges)."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers

    t = tokenizers.Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIALS, show_progress=False)
    numbers = " ".join(f"{i} {i * i}" for i in range(3000))  # digit merges, so the 3-digit groups count
    t.train_from_iterator([inspect.getsource(argparse), inspect.getsource(textwrap), numbers], trainer)
    spec = json.loads(t.to_str())
    spec["model"]["ignore_merges"] = True
    return tokenizers.Tokenizer.from_str(json.dumps(spec))


def hf_tokens_and_merges(t: Any) -> tuple[list[str], list[str]]:
    """The vocabulary in id order and the merges as "a b", as llama.cpp's converter writes them."""
    vocab = t.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    merges = json.loads(t.to_str())["model"]["merges"]
    return tokens, [m if isinstance(m, str) else " ".join(m) for m in merges]


def write_bpe_gguf(path: Path, tokens: list[str], merges: list[str] | None, types: list[int] | None = None,
                   pre: str | None = "llama-bpe", **metadata: Any) -> Path:
    """A GGUF with a byte-level BPE vocabulary; ``metadata``: GGUF key ->
    (value, GGUFValueType name), set last."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    # what llama.cpp needs to open the file for its vocabulary alone
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(8)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types if types is not None else [3 if t in SPECIALS else 1 for t in tokens])
    if merges is not None:
        w.add_token_merges(merges)
    if "<|begin_of_text|>" in tokens:
        w.add_bos_token_id(tokens.index("<|begin_of_text|>"))
        w.add_eos_token_id(tokens.index("<|end_of_text|>"))
    finish_metadata_gguf(w, metadata)
    return path


@pytest.fixture(scope="module")
def llama3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The trained Hugging Face tokenizer and its GGUF file."""
    hf = train_llama3_style()
    tokens, merges = hf_tokens_and_merges(hf)
    path = write_bpe_gguf(tmp_path_factory.mktemp("bpe") / "llama3.gguf", tokens, merges,
                          **{"tokenizer.chat_template": (LLAMA3_TEMPLATE, "STRING")})
    return hf, path


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Short strings over characters that exercise every branch of the patterns."""
    rng = random.Random(seed)
    alphabet = list("abcXYZ 0123456789'\n\r\t.,!?-_()#/") + [
        "é", "É", "ß", "ǅ", "ʰ", "日", "🤖", "\u0301", "½", "²", "\u00a0", "Ⅻ", "٣", "<|eot_id|>", "'S", "'ll",
        "  ", "CamelCase", "XMLHttp"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def test_llama3_gguf_vocabulary_encodes_like_its_tokenizer_json(llama3: tuple[Any, Path]) -> None:
    hf, path = llama3
    tok = Tokenizer.from_pretrained(path)
    bos, eot = hf.token_to_id("<|begin_of_text|>"), hf.token_to_id("<|eot_id|>")
    assert tok.vocab_size == hf.get_vocab_size(with_added_tokens=True)
    assert tok.bos_token_id == bos and tok.add_bos  # llama-bpe adds BOS unless the file says not to
    # generation stops at EOS and at the end-of-turn token, which the file names by no id
    assert tok.eos_token_ids == {hf.token_to_id("<|end_of_text|>"), eot}
    for text in TEXTS + random_texts(500):
        ids = tok.encode(text, add_bos=False)
        assert ids == hf.encode(text, add_special_tokens=False).ids, text
        assert tok.encode(text) == [bos, *ids]
        assert tok.decode(ids, skip_special_tokens=False) == text
        assert tok.decode(ids) == text.replace("<|eot_id|>", "").replace("<|begin_of_text|>", "")
    # several tokens spell one character: streaming holds the bytes back until it is whole
    ids = tok.encode("🤖🎉", add_bos=False)
    stream = tok.stream()
    pieces = [stream.put(i) for i in ids]
    assert len(ids) > 2 and "".join(pieces) + stream.flush() == "🤖🎉" and "\ufffd" not in "".join(pieces)


def test_llama3_chat_prompt(llama3: tuple[Any, Path]) -> None:
    pytest.importorskip("jinja2")
    hf, path = llama3
    tok = Tokenizer.from_gguf(path)
    prompt = tok.apply_chat_template([{"role": "user", "content": " Hi there "}])
    assert prompt == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = tok.encode(prompt, add_bos=False)
    assert ids[:2] == [hf.token_to_id("<|begin_of_text|>"), hf.token_to_id("<|start_header_id|>")]
    assert ids.count(hf.token_to_id("<|begin_of_text|>")) == 1
    assert ids == hf.encode(prompt, add_special_tokens=False).ids


@pytest.mark.parametrize("pre", ["llama-bpe", "gpt-2", "tekken"])
def test_byte_bpe_matches_llama_cpp(llama3: tuple[Any, Path], tmp_path: Path, pre: str) -> None:
    """The independent reference: llama.cpp tokenizing the same file."""
    llama_cpp = pytest.importorskip("llama_cpp")
    hf, _ = llama3
    path = write_bpe_gguf(tmp_path / f"{pre}.gguf", *hf_tokens_and_merges(hf), pre=pre)
    ref = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    tok = Tokenizer.from_gguf(path)
    for text in TEXTS + random_texts(2000, seed=1):
        assert tok.encode(text, add_bos=False) == ref.tokenize(text.encode(), add_bos=False, special=True), text


@pytest.mark.parametrize("pre, words", [
    ("llama-bpe", ["getHTTPResponse", " ", "123", "45", " it", "'s", "//\n\n", " b", " ", " c"]),
    ("tekken", ["get", "HTTPResponse", " ", "1", "2", "3", "4", "5", " it", "'s", "//\n\n", " b", " ", " c"]),
    ("gpt-2", ["getHTTPResponse", " 12345", " it", "'s", "//", "\n\n", " b", " ", " c"]),
])
def test_pre_tokenizer_words(pre: str, words: list[str]) -> None:
    """Each family's split into words, worked out by hand from its pattern:
    Llama 3 groups digits by three, Tekken splits CamelCase and digits and
    GPT-2 keeps a number whole; a punctuation run takes the newlines after it
    (not in GPT-2), and a run of spaces leaves its last to the next word."""
    from luminal.models.byte_bpe import BYTE_CHARS

    v = ByteBPEVocab(BYTE_CHARS, [], pre=pre)
    split = v._tok.pre_tokenizer.pre_tokenize_str("getHTTPResponse 12345 it's//\n\n b  c")
    assert [v.decode([BYTE_CHARS.index(c) for c in w]) for w, _ in split] == words


def test_whole_word_lookup_before_merges(tmp_path: Path) -> None:
    """Llama 3 takes a word that is itself a token whole; GPT-2's rule builds
    every word by merges, which here cannot reach "abc"."""
    chars = [chr(c) for c in range(33, 127)]
    tokens = chars + ["ab", "abc"]
    merges = ["a b"]  # no merge makes "abc"
    for pre, expected in [("llama-bpe", ["abc"]), ("tekken", ["abc"]), ("gpt-2", ["ab", "c"])]:
        path = write_bpe_gguf(tmp_path / f"{pre}.gguf", tokens, merges, pre=pre)
        ids = Tokenizer.from_gguf(path).encode("abc", add_bos=False)
        assert [tokens[i] for i in ids] == expected, pre
        try:
            import llama_cpp
        except ImportError:
            continue
        ref = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        assert ref.tokenize(b"abc", add_bos=False, special=True) == ids, pre


def test_cli_with_a_llama3_style_gguf(llama3: tuple[Any, Path], tmp_path: Path) -> None:
    """--model with one GGUF file holding the weights and a byte-level BPE
    vocabulary with Llama 3's chat template: the CLI streams what the API
    generates for the templated prompt."""
    pytest.importorskip("jinja2")
    from test_generate import run_cli, tiny_model
    from test_models_loading import write_gguf

    from luminal.models import Generator

    hf, _ = llama3
    tokens, merges = hf_tokens_and_merges(hf)
    model = tiny_model(vocab=len(tokens))
    cfg = dict(vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6)
    path = tmp_path / "llama3-tiny.gguf"
    write_gguf(path, dict(model.state_dict()), cfg, metadata={
        "tokenizer.ggml.model": ("gpt2", "STRING"), "tokenizer.ggml.pre": ("llama-bpe", "STRING"),
        "tokenizer.ggml.tokens": (tokens, "ARRAY"), "tokenizer.ggml.merges": (merges, "ARRAY"),
        "tokenizer.ggml.token_type": ([3 if t in SPECIALS else 1 for t in tokens], "ARRAY"),
        "tokenizer.ggml.bos_token_id": (tokens.index("<|begin_of_text|>"), "UINT32"),
        "tokenizer.ggml.eos_token_id": (tokens.index("<|end_of_text|>"), "UINT32"),
        "tokenizer.chat_template": (LLAMA3_TEMPLATE, "STRING")})
    r = run_cli("--model", str(path), "--prompt", "hello world", "--max-tokens", "6")
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.from_pretrained(path)
    ids = tok.encode(tok.apply_chat_template([{"role": "user", "content": "hello world"}]), add_bos=False)
    assert ids == hf.encode("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello world<|eot_id|>"
                            "<|start_header_id|>assistant<|end_header_id|>\n\n", add_special_tokens=False).ids
    assert r.stdout == Generator(model, tok).stream(ids, 6).read() + "\n"


def test_byte_bpe_bad_files(tmp_path: Path) -> None:
    chars = [chr(c) for c in range(33, 127)]
    # a pre-tokenizer luminal does not know: a clear error, not another rule's tokens
    path = write_bpe_gguf(tmp_path / "qwen.gguf", chars, [], pre="qwen2")
    with pytest.raises(NotImplementedError, match=r"qwen\.gguf.*pre-tokenizer 'qwen2'.*tokenizer\.json"):
        Tokenizer.from_gguf(path)
    # no pre-tokenizer named (old files): GPT-2's rule, with a warning (llama.cpp warns too)
    path = write_bpe_gguf(tmp_path / "old.gguf", chars + ["ab"], ["a b"], pre=None)
    with pytest.warns(UserWarning, match="no tokenizer.ggml.pre"):
        tok = Tokenizer.from_gguf(path)
    assert tok.encode("ab", add_bos=False) == [len(chars)] and not tok.add_bos
    # merges that are not "a b" pairs of tokens
    for merges, match in [(["ab"], "'ab', not two symbols"), (["a  b"], "not two symbols"),
                          (["a q"], "not tokens")]:
        path = write_bpe_gguf(tmp_path / "m.gguf", chars[:40], merges)
        with pytest.raises(ValueError, match=rf"m\.gguf.*merges holds .*{match}"):
            Tokenizer.from_gguf(path)
    path = write_bpe_gguf(tmp_path / "n.gguf", chars, None, **{"tokenizer.ggml.merges": ([1, 2], "ARRAY")})
    with pytest.raises(ValueError, match=r"n\.gguf.*merges is not a list of strings"):
        Tokenizer.from_gguf(path)
    path = write_bpe_gguf(tmp_path / "p.gguf", chars, [], pre=None, **{"tokenizer.ggml.pre": ([1, 2], "ARRAY")})
    with pytest.raises(ValueError, match=r"p\.gguf.*tokenizer\.ggml\.pre is .*not a string"):
        Tokenizer.from_gguf(path)
    # a vocabulary without a token for some byte: text with it fails, never loses the byte
    tok = Tokenizer.from_gguf(write_bpe_gguf(tmp_path / "ascii.gguf", chars, []))
    assert tok.decode(tok.encode("a!b", add_bos=False)) == "a!b"
    with pytest.raises(ValueError, match=r"ascii\.gguf.*a byte this vocabulary has no token for"):
        tok.encode("a b")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([len(chars)])


def test_byte_bpe_vocab_directly() -> None:
    v = ByteBPEVocab(["h", "i", "hi", "<|begin_of_text|>"], ["h i"], [1, 1, 1, 3], pre="llama-bpe", bos_id=3)
    assert v.encode("hi", add_bos=True) == [3, 2]
    assert v.encode("hih<|begin_of_text|>", add_bos=False) == [2, 0, 3]
    assert v.decode([3, 2, 0]) == "hih" and v.decode([3, 2], skip_special_tokens=False) == "<|begin_of_text|>hi"
    with pytest.raises(ValueError, match="2 token types for 4 tokens"):
        ByteBPEVocab(["h", "i", "hi", "x"], [], [1, 1])
