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
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
# A string as JSON writes it: its brackets are text, not nesting. An unterminated one runs to the end, so
# the scan never backtracks: linear in the input.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def depth_problem(text: str) -> str | None:
    """Why ``text`` nests too deeply to be parsed safely, or None."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None  # too few brackets to nest that deep: the common case costs two counts
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH:
        return f"it nests deeper than {MAX_DEPTH} levels"
    return None


def loads(data: bytes | str) -> Any:
    """json.loads of UTF-8 text, with ValueError for anything else or nested deeper than MAX_DEPTH (never a crash).

    Bytes are decoded first: JSON between servers is UTF-8, and json would otherwise guess UTF-16 or
    UTF-32, whose bytes the depth check does not read the way the decoder does.
    """
    if isinstance(data, bytes):
        text = data.decode("utf-8")  # a UnicodeDecodeError is a ValueError
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError(f"JSON must be text, not {type(data).__name__}")
    problem = depth_problem(text)
    if problem is not None:
        raise ValueError(f"not accepted as JSON: {problem}")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("not accepted as JSON: it nests too deeply") from None
