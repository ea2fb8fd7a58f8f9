"""The reply of a fake OpenAI-compatible chat endpoint, for the tests' stub servers (judge, target generation)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


def send_chat_reply(handler: BaseHTTPRequestHandler, content: str, status: int = 200, **extra: Any) -> None:
    """Answer as an OpenAI chat completion: one assistant choice holding ``content`` (``extra``: more top-level
    fields, e.g. ``usage``; ``finish_reason`` goes into the choice)."""
    choice: dict[str, Any] = {"message": {"role": "assistant", "content": content}}
    if "finish_reason" in extra:
        choice["finish_reason"] = extra.pop("finish_reason")
    payload = json.dumps({"choices": [choice], **extra}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
