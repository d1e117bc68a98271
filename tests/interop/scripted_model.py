"""Scripted GGUF models: tiny llama networks that say a chosen text, deterministically.

No model weights can be downloaded here, so the interop tests make their own. A scripted model is a
2-layer llama whose attention and MLP weights are all zero: the residual stream, and so the final
hidden state, is the embedding of the *current* token alone. Each token that the script uses gets
its own one-hot embedding direction; every other token shares direction 0, the "start" state. The
LM head row of token ``b`` weighs the direction of ``a`` heavily when the script says ``a`` is
followed by ``b``. The model is thus a first-order Markov chain over tokens with an enormous logit
margin: greedy or not, it says the script and then ``<|im_end|>``, whatever the prompt was.

A script is a list of *paths*. Path 0 leaves the start state with the highest logit, path 1 with a
lower one, so it is taken only when a grammar forbids path 0's first token. One model thereby
answers both llama-server's Hermes-style ``<tool_call>`` output and llama-cpp-python's
grammar-constrained arguments for a named ``tool_choice``. A path lists its tokens by their text;
a text that no Qwen token has gets a fresh user-defined token in one of the vocab's unused
placeholder slots. As every token has a single successor, no text may repeat within a script.

The tokenizer is Qwen2's (the vocab-only GGUF vendored in llama.cpp), completed with Qwen2.5's added
tokens (``<tool_call>``...), and the chat template is Qwen2.5's, which supports tools. Models are
written to ``<out_dir>/<name>-<hash>.gguf`` where the hash covers the script, the inputs and this
generator's version, so a changed script gets a new file and an unchanged one is reused.

Run as a script to write the standard models and print their token chains:
``python tests/interop/scripted_model.py --vocab V.gguf --template T.jinja --out-dir DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai.types.responses import FunctionToolParam

GENERATOR_VERSION = 2
EOS_TEXT = "<|im_end|>"
CONTEXT_LENGTH = 32_768
N_LAYERS = 2
N_HEADS = 4
# Logit of a path's next token at each rank (after the final RMSNorm); every other token gets 0.
RANK_LOGITS = (48.0, 24.0)
# Tokens a prompt plausibly ends with ("...<|im_start|>assistant\n"): they must stay in the start
# state, so no path may use them.
RESERVED_TEXTS = ("\n", "\n\n", " ", "assistant")
GENERATION_PROMPT = "<|im_start|>assistant\n"

# Qwen2.5's added tokens (the Qwen2 vocab file has "[PAD...]" placeholders at these ids).
QWEN25_ADDED: dict[int, tuple[str, bool]] = {
    151646: ("<|object_ref_start|>", True),
    151647: ("<|object_ref_end|>", True),
    151648: ("<|box_start|>", True),
    151649: ("<|box_end|>", True),
    151650: ("<|quad_start|>", True),
    151651: ("<|quad_end|>", True),
    151652: ("<|vision_start|>", True),
    151653: ("<|vision_end|>", True),
    151654: ("<|vision_pad|>", True),
    151655: ("<|image_pad|>", True),
    151656: ("<|video_pad|>", True),
    151657: ("<tool_call>", False),
    151658: ("</tool_call>", False),
    151659: ("<|fim_prefix|>", False),
    151660: ("<|fim_middle|>", False),
    151661: ("<|fim_suffix|>", False),
    151662: ("<|fim_pad|>", False),
    151663: ("<|repo_name|>", False),
    151664: ("<|file_sep|>", False),
}

Fragment = str | bytes


@dataclass(frozen=True)
class Script:
    """A script: ``paths[0]`` is what the model says; ``paths[1:]`` are fallbacks taken only when a
    grammar forbids the first token of every earlier path. A path is a list of fragments, each
    emitted as ONE token: a ``str`` fragment is the vocab token with that text (an added token
    such as ``<tool_call>`` included, or a fresh user-defined one), a ``bytes`` fragment the
    byte-level token with those bytes (a piece of a UTF-8 character). No fragment may repeat."""

    name: str
    paths: tuple[tuple[Fragment, ...], ...]

    def to_json(self) -> Any:
        return {
            "name": self.name,
            "paths": [
                [{"b": f.hex()} if isinstance(f, bytes) else {"t": f} for f in path]
                for path in self.paths
            ],
        }

    def text(self, path: int = 0) -> str:
        return b"".join(
            f if isinstance(f, bytes) else f.encode() for f in self.paths[path]
        ).decode()


TEXT_SENTENCE = "The bridge works."
EMOJI_SENTENCE = "Bridge \U0001f309 built."
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = {"city": "Oslo"}
TOOL_ARGUMENTS_JSON = json.dumps(TOOL_ARGUMENTS)
HERMES_TOOL_CALL = "<tool_call>\n" + json.dumps({"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS})
HERMES_TOOL_CALL += "\n</tool_call>"
# The tool that the `tool` script calls, as a Responses API function tool (the SDK, the bridge).
WEATHER_TOOL: FunctionToolParam = {
    "type": "function",
    "name": TOOL_NAME,
    "description": "Get the current weather for a city.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

TEXT = Script("text", (("The", " bridge", " works", "."),))
# Path 0: Qwen2.5's (Hermes) tool call, which llama-server parses into an OpenAI tool call.
# Path 1: the bare arguments, taken when a named tool_choice makes llama-cpp-python constrain the
# output to the parameters' JSON schema (its grammar forbids "<tool_call>").
TOOL = Script(
    "tool",
    (
        (
            "<tool_call>",
            '\n{"',
            "name",
            '":',
            ' "',
            "get",
            "_weather",
            '",',
            ' "arguments',
            '": {"',
            "city",
            '": "',
            "Oslo",
            '"}}\n',
            "</tool_call>",
        ),
        ('{"', 'city":', ' "Os', 'lo"}'),
    ),
)
# U+1F309 (F0 9F 8C 89) is spelled as three byte-level tokens (" F0 9F", "8C", "89"): no token
# holds the character whole, so a server has to hold back incomplete UTF-8.
EMOJI = Script("emoji", (("Bridge", b" \xf0\x9f", b"\x8c", b"\x89", " built", "."),))
STANDARD_SCRIPTS = (TEXT, TOOL, EMOJI)
assert TEXT.text() == TEXT_SENTENCE
assert TOOL.text(0) == HERMES_TOOL_CALL
assert TOOL.text(1) == TOOL_ARGUMENTS_JSON
assert EMOJI.text() == EMOJI_SENTENCE


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, inverted: vocab character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    by_bytes: dict[bytes, int]  # byte-level (normal) tokens
    by_text: dict[str, int]  # added tokens (control, user-defined)
    model: str
    pre: str


@cache
def load_vocab(vocab_path: Path) -> Vocab:
    from gguf import GGUFReader, TokenType

    fields = GGUFReader(vocab_path).fields
    tokens: list[str] = list(fields["tokenizer.ggml.tokens"].contents())
    types: list[int] = [int(t) for t in fields["tokenizer.ggml.token_type"].contents()]
    merges: list[str] = list(fields["tokenizer.ggml.merges"].contents())
    for tid, (tok_text, special) in QWEN25_ADDED.items():
        if tid < len(tokens) and tokens[tid].startswith("[PAD"):
            tokens[tid] = tok_text
            types[tid] = int(TokenType.CONTROL if special else TokenType.USER_DEFINED)
    decoder = _byte_decoder()
    by_bytes: dict[bytes, int] = {}
    by_text: dict[str, int] = {}
    for tid, tok in enumerate(tokens):
        if types[tid] == TokenType.NORMAL and all(c in decoder for c in tok):
            by_bytes.setdefault(bytes(decoder[c] for c in tok), tid)
        elif types[tid] in (TokenType.CONTROL, TokenType.USER_DEFINED):
            by_text.setdefault(tok, tid)
    return Vocab(
        tokens=tokens,
        types=types,
        merges=merges,
        by_bytes=by_bytes,
        by_text=by_text,
        model=str(fields["tokenizer.ggml.model"].contents()),
        pre=str(fields["tokenizer.ggml.pre"].contents()),
    )


class ScriptError(ValueError):
    pass


@dataclass(frozen=True)
class Plan:
    vocab: Vocab  # with the script's fresh user-defined tokens
    paths: list[list[int]]  # token ids of each path, without the final EOS


def plan(script: Script, vocab: Vocab) -> Plan:
    """Map each fragment to a token id, adding user-defined tokens where the vocab has none.

    Token texts are unique in a vocab, so a fragment that repeats cannot get a second token: a
    script spells every fragment differently (``'": "'`` once, ``'": {"'`` elsewhere).
    """
    from gguf import TokenType

    tokens, types = list(vocab.tokens), list(vocab.types)
    texts = set(tokens)
    free = [i for i in range(len(tokens) - 1, -1, -1) if tokens[i].startswith("[PAD")]
    reserved = {vocab.by_bytes.get(t.encode()) for t in RESERVED_TEXTS}
    used: set[int] = set()
    paths: list[list[int]] = []
    for path in script.paths:
        ids: list[int] = []
        for fragment in path:
            if isinstance(fragment, bytes):
                tid = vocab.by_bytes.get(fragment)
                if tid is None:
                    raise ScriptError(f"{script.name}: no byte-level token for {fragment!r}")
            else:
                tid = vocab.by_text.get(fragment, vocab.by_bytes.get(fragment.encode()))
                if tid is not None and types[tid] == TokenType.CONTROL:
                    raise ScriptError(f"{script.name}: control token {fragment!r} in a path")
                if tid is None:
                    if not fragment or fragment in GENERATION_PROMPT or fragment in texts:
                        # A user-defined token would also match inside the prompt's tail.
                        raise ScriptError(f"{script.name}: cannot add a token {fragment!r}")
                    if not free:
                        raise ScriptError("no free vocab slot for a user-defined token")
                    tid = free.pop(0)
                    tokens[tid] = fragment
                    types[tid] = int(TokenType.USER_DEFINED)
                    texts.add(fragment)
            if tid in reserved:
                raise ScriptError(f"{script.name}: {fragment!r} is where prompts end")
            if tid in used:
                raise ScriptError(f"{script.name}: fragment {fragment!r} repeats; spell it apart")
            used.add(tid)
            ids.append(tid)
        paths.append(ids)
    return Plan(vocab=replace(vocab, tokens=tokens, types=types), paths=paths)


def script_digest(script: Script, vocab_path: Path, template: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(script.to_json(), sort_keys=True).encode())
    h.update(hashlib.sha256(vocab_path.read_bytes()).digest())
    h.update(template.encode())
    h.update(repr((GENERATOR_VERSION, CONTEXT_LENGTH, N_LAYERS, N_HEADS, RANK_LOGITS)).encode())
    return h.hexdigest()[:16]


def model_path(script: Script, vocab_path: Path, template_path: Path, out_dir: Path) -> Path:
    template = template_path.read_text()
    return out_dir / f"{script.name}-{script_digest(script, vocab_path, template)}.gguf"


def write_model(script: Script, vocab_path: Path, template_path: Path, out_dir: Path) -> Path:
    """Write the scripted model (if not already there) and return its path."""
    target = model_path(script, vocab_path, template_path, out_dir)
    if target.exists():
        return target
    import gguf
    import numpy as np

    planned = plan(script, load_vocab(vocab_path))
    vocab, paths = planned.vocab, planned.paths
    eos = vocab.by_text[EOS_TEXT]
    n_vocab = len(vocab.tokens)

    # Direction 0 is the start state; each token with a successor gets its own direction.
    sources: list[int] = []
    for path in paths:
        for tid in path:
            if tid not in sources:
                sources.append(tid)
    dim = max(64, -(-(len(sources) + 1) // 32) * 32)
    direction = {tid: i + 1 for i, tid in enumerate(sources)}
    scale = 1.0 / np.sqrt(dim)  # RMSNorm turns a one-hot e_k into sqrt(dim) * e_k

    embd = np.zeros((n_vocab, dim), dtype=np.float32)
    embd[:, 0] = 1.0
    for tid, k in direction.items():
        embd[tid, 0] = 0.0
        embd[tid, k] = 1.0
    output = np.zeros((n_vocab, dim), dtype=np.float32)
    for rank, path in enumerate(paths):
        output[path[0], 0] = RANK_LOGITS[min(rank, len(RANK_LOGITS) - 1)] * scale
        for a, b in zip(path, [*path[1:], eos], strict=True):
            output[b, direction[a]] = RANK_LOGITS[0] * scale

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp_name, "llama")
        writer.add_name(f"wirebridge-scripted-{script.name}")
        writer.add_description(json.dumps(script.to_json()))
        writer.add_context_length(CONTEXT_LENGTH)
        writer.add_embedding_length(dim)
        writer.add_block_count(N_LAYERS)
        writer.add_feed_forward_length(dim * 2)
        writer.add_head_count(N_HEADS)
        writer.add_head_count_kv(N_HEADS)
        writer.add_rope_dimension_count(dim // N_HEADS)
        writer.add_rope_freq_base(1_000_000.0)
        writer.add_layer_norm_rms_eps(1e-6)
        writer.add_vocab_size(n_vocab)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_tokenizer_model(vocab.model)
        writer.add_tokenizer_pre(vocab.pre)
        writer.add_token_list(vocab.tokens)
        writer.add_token_types(vocab.types)
        writer.add_token_merges(vocab.merges)
        writer.add_bos_token_id(vocab.by_text["<|endoftext|>"])
        writer.add_eos_token_id(eos)
        writer.add_pad_token_id(vocab.by_text["<|endoftext|>"])
        writer.add_add_bos_token(False)
        writer.add_chat_template(template_path.read_text())

        f16 = np.float16
        writer.add_tensor("token_embd.weight", embd.astype(f16))
        zeros_sq = np.zeros((dim, dim), dtype=np.float32)
        for i in range(N_LAYERS):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(dim, dtype=np.float32))
            for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
                writer.add_tensor(f"blk.{i}.{name}.weight", zeros_sq)
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(dim, dtype=np.float32))
            ffn = np.zeros((dim * 2, dim), dtype=np.float32)
            writer.add_tensor(f"blk.{i}.ffn_gate.weight", ffn)
            writer.add_tensor(f"blk.{i}.ffn_up.weight", ffn)
            writer.add_tensor(f"blk.{i}.ffn_down.weight", np.ascontiguousarray(ffn.T))
        writer.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
        writer.add_tensor("output.weight", output.astype(f16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def describe(script: Script, vocab_path: Path) -> list[list[str]]:
    """The token chains of a script, as vocab strings (for humans)."""
    planned = plan(script, load_vocab(vocab_path))
    return [[planned.vocab.tokens[t] for t in path] + [EOS_TEXT] for path in planned.paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=Path, required=True)
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args()
    for script in STANDARD_SCRIPTS:
        for i, chain in enumerate(describe(script, args.vocab)):
            print(f"{script.name} path {i}: {chain}")
        print(write_model(script, args.vocab, args.template, args.out_dir))


if __name__ == "__main__":
    main()
