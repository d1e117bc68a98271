"""Which models an upstream serves and how big their windows are, as a Codex model catalog.

Codex knows nothing of local models: without a catalog entry it assumes a 272k-token window and
sends no `apply_patch` tool. This package builds the entries it needs.

    servers.py    probe answers (llama.cpp, vLLM, Ollama, LM Studio, OpenAI lists) -> facts; pure
    entries.py    facts -> Codex catalog entries; pure
    bundled.py    the catalog bundled in the user's own Codex binary (where the prompt comes from)
    probe.py      the only network I/O: asks an upstream the questions servers.py reads
    codexconfig.py  merge the provider table and catalog into Codex's config.toml (tomlkit)

Codex's system prompt is never stored in this package: it is read from the user's installed
Codex at the moment a catalog is written or served.
"""

from .entries import catalog_entry, codex_catalog
from .servers import ModelFacts

__all__ = ["ModelFacts", "catalog_entry", "codex_catalog"]
