"""OpenAI wire-format payloads the fake server sends (plain dicts, no HTTP)."""

from __future__ import annotations

import time
from typing import Any


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
