"""A GGUF model's Qwen2 tokenizer written as a Hugging Face `tokenizer.json`, for the estimate.

No tokenizer.json can be downloaded here, and the scripted models carry Qwen2's vocabulary and
merges in their GGUF metadata, so the interop tier writes the file the way Qwen2's own
`tokenizer.json` is built: NFC, the Qwen2 split regex (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`),
byte-level BPE, and the control and user-defined tokens as added tokens. With `template`, the
folder also gets the `tokenizer_config.json` a model repository ships, holding its chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

from .scripted_model import load_vocab

# Qwen2's pre-tokenizer split (tokenizer.json of Qwen/Qwen2.5-*; llama.cpp's llama-vocab.cpp).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4  # gguf.TokenType


def write_tokenizer_json(model: Path, out: Path, template: Path | None = None) -> Path:
    """`model`'s tokenizer -> `out`/tokenizer.json (a model folder, as the option takes)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    vocab = load_vocab(model)
    if vocab.pre != "qwen2":
        raise ValueError(f"{model}: a {vocab.pre!r} tokenizer, not Qwen2's")
    normal = {tok: tid for tid, tok in enumerate(vocab.tokens) if vocab.types[tid] == NORMAL}
    merges = [tuple(m.split(" ", 1)) for m in vocab.merges]
    tokenizer = Tokenizer(BPE(normal, merges, fuse_unk=False, byte_fallback=False))  # type: ignore[arg-type]
    tokenizer.normalizer = normalizers.NFC()  # type: ignore[assignment]
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(  # type: ignore[assignment]
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()  # type: ignore[assignment]
    added = [
        AddedToken(tok, special=vocab.types[tid] == CONTROL, normalized=False)
        for tid, tok in enumerate(vocab.tokens)
        if vocab.types[tid] in (CONTROL, USER_DEFINED)
    ]
    tokenizer.add_tokens(added)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    if template is not None:
        config = {
            "chat_template": template.read_text(encoding="utf-8"),
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "bos_token": None,  # Qwen2 has none
        }
        (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out / "tokenizer.json"
