# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON someone else wrote (a server's answer, a state row): parsed only when it nests within MAX_DEPTH.

Python's decoder recurses once per level. Past the recursion limit that is a RecursionError, and
once a library has raised the limit (py_ecc, which eth-account imports, sets 100,000) deep enough
nesting overflows the C stack and kills the process. No answer of a VM on Golem server and no
state row nests more than a few levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
# A string as JSON writes it (escapes included): its brackets are text, not nesting.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


def depth_problem(data: bytes | str) -> str | None:
    """Why ``data`` nests too deeply to be parsed safely, or None."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return None  # too few brackets to nest that deep: the common case costs two counts
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            return f"it nests deeper than {MAX_DEPTH} levels"
    return None


def loads(data: bytes | str) -> Any:
    """json.loads, with ValueError for anything nested deeper than MAX_DEPTH (never a crash)."""
    problem = depth_problem(data)
    if problem is not None:
        raise ValueError(f"not accepted as JSON: {problem}")
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("not accepted as JSON: it nests too deeply") from None
