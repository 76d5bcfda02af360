"""OpenAI wire-format payloads the fake server sends (plain dicts, no HTTP)."""

from __future__ import annotations

import hashlib
import math
import re
import time
from typing import Any

EMBEDDING_DIMS = 64


def estimate_tokens(text: str) -> int:
    """Four characters a token, like the rest of promptc's estimates."""
    return len(text) // 4 + 1


def message_text(messages: Any) -> str:
    """All text in a chat `messages` list, tolerating multi-part and malformed content."""
    parts: list[str] = []
    for msg in messages if isinstance(messages, list) else []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # multi-part content: count the text parts only
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


def completion_payload(
    body: dict[str, Any], content: str, *, completion_id: str, default_model: str
) -> dict[str, Any]:
    """A `chat.completion` object answering request `body` with `content`."""
    prompt_tokens = estimate_tokens(message_text(body.get("messages")))
    completion_tokens = estimate_tokens(content)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or default_model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }


def model_object(name: str) -> dict[str, Any]:
    """One entry of `GET /v1/models`."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "promptc-fake"}


def model_list(names: list[str]) -> dict[str, Any]:
    """The `GET /v1/models` body."""
    return {"object": "list", "data": [model_object(n) for n in names]}


def hashed_embedding(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """A deterministic bag-of-words vector: each lower-cased word adds 1 to a hashed slot
    (blake2b), then the vector is scaled to unit length (all zeros for a text with no word)."""
    vector = [0.0] * dims
    for word in re.findall(r"[^\W_]+", text.lower()):
        slot = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest(), "big") % dims
        vector[slot] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def embeddings_payload(body: dict[str, Any], *, default_model: str, dims: int = EMBEDDING_DIMS) -> dict[str, Any]:
    """The `POST /v1/embeddings` reply for `body` (`input` is a string or a list of strings)."""
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else [str(t) for t in raw] if isinstance(raw, list) else []
    tokens = sum(estimate_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": hashed_embedding(t, dims)}
                 for i, t in enumerate(texts)],
        "model": body.get("model") or default_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
