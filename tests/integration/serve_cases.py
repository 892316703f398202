"""The bad requests ``kgrec serve`` must answer with a 4xx JSON body (never a 500): used by
``test_serve.py`` and printed with the actual answers by ``benchmarks/bad_requests.py``."""

from __future__ import annotations

from typing import Any

BAD = [  # (name, path, body, headers, status, error code); "USER0": a known user, "auth": the token
    ("malformed JSON", "/recommend", b'{"user_id": 1,', {}, 400, "malformed_json"),
    ("unknown user", "/recommend", {"user_id": "no-such-user"}, {}, 404, "not_found"),
    ("neither user nor history", "/recommend", {"k": 5}, {}, 422, "invalid"),
    ("unknown history items", "/recommend", {"history": ["no-such-item"]}, {}, 422, "invalid"),
    ("k zero", "/recommend", {"user_id": "USER0", "k": 0}, {}, 422, "invalid"),
    ("k too large", "/recommend", {"user_id": "USER0", "k": 101}, {}, 422, "invalid"),
    ("k not an integer", "/recommend", {"user_id": "USER0", "k": "10"}, {}, 422, "invalid"),
    ("unknown field", "/recommend", {"user_id": "USER0", "kk": 3}, {}, 422, "invalid"),
    ("body not an object", "/recommend", [1, 2], {}, 422, "invalid"),
    ("oversized body", "/recommend", {"history": ["x" * 100] * 300}, {}, 413, "too_large"),
    ("feedback without token", "/feedback", {"request_id": "r", "item_id": "i"}, None, 401, "unauthorized"),
    ("feedback wrong token", "/feedback", {"request_id": "r", "item_id": "i"}, {"authorization": "Bearer nope"},
     401, "unauthorized"),
    ("feedback unknown request", "/feedback", {"request_id": "0" * 32, "item_id": "i"}, "auth", 404, "not_found"),
    ("feedback unknown event", "/feedback", {"request_id": "0" * 32, "item_id": "i", "event": "stare"}, "auth",
     422, "invalid"),
    ("new item without content", "/items", {"item_id": "empty-item"}, "auth", 422, "invalid"),
    ("new item unknown relation", "/items", {"item_id": "x-item", "links": {"nope": ["e"]}}, "auth", 422, "invalid"),
]


def concrete(body: Any, headers: Any, *, user: str, token: str) -> tuple[Any, dict[str, str] | None]:
    """A case's body and headers with its placeholders filled in."""
    if isinstance(body, dict) and body.get("user_id") == "USER0":
        body = {**body, "user_id": user}
    return body, {"authorization": f"Bearer {token}"} if headers == "auth" else headers
