"""The Chat Completions side: request mapping, SSE framing and chunk decoding (all sans-I/O)."""
