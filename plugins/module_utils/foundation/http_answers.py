# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an HTTP answer or a failed request says, in words: the reason in an upstream error body, and the
cause requests and urllib3 nest inside their exceptions. No requests here: the client (http.py) asks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation import wire_json


def error_reason(body: Any) -> str | None:
    """A readable reason from an upstream error body, or None if the body has no known shape.

    Shapes seen upstream: {"detail": "..."} (route errors), {"detail": {"code", "message"}}
    (discovery), {"detail": [{loc, msg, type}]} (FastAPI validation) and {"message": ...}
    (provider exception handlers, discovery's rate limiter).
    """
    if not isinstance(body, dict):
        return None
    if "detail" in body:
        return _detail_reason(body["detail"])
    if "message" in body and body["message"] is not None:
        return _with_code(str(body["message"]), body.get("code"))
    return None


def _with_code(message: str, code: Any) -> str:
    return f"{message} ({code})" if code else message


def _detail_reason(detail: Any) -> str | None:
    if detail is None:
        return None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg")
        if message:
            return _with_code(str(message), detail.get("code"))
        return json.dumps(detail, sort_keys=True)[:300]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc") or ())
                msg = str(item.get("msg", "invalid value"))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    return str(detail)


def error_body(resp: Any) -> str | None:
    """The reason in a JSON error body, or None when the body is not one."""
    try:
        return error_reason(parse_json(resp))
    except ValueError:
        return None


def parse_json(resp: Any) -> Any:
    """The JSON of an answer; ValueError for anything else, however deeply nested."""
    return wire_json.loads(resp.content)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps: requests and urllib3 nest the real cause in args and reason."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend(item.args)
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__])


def has_cause(causes: list[BaseException], *kinds: type) -> bool:
    return any(isinstance(c, kinds) for c in causes)


def innermost(causes: list[BaseException]) -> str:
    # The innermost cause usually reads best; urllib3's outer messages repeat the pool details.
    return str(causes[-1]) if causes else "unknown error"
