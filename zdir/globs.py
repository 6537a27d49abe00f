"""Glob and exclude patterns matched against names: capped in length, compiled once, cached."""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Sequence

from . import namesort
from .confine import refuse
from .protocol import ErrorCode

# A pattern compiles to a regular expression: a 30 kB one takes a second and half a
# megabyte, and fnmatch would keep 32768 of them. Patterns are capped, and cached here.
MAX_PATTERN_CHARS = 1024
PATTERN_CACHE = 256


def check_patterns(patterns: Sequence[str]) -> None:
    """Refuse (LIMIT_EXCEEDED) a pattern longer than MAX_PATTERN_CHARS."""
    for pattern in patterns:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise refuse(ErrorCode.LIMIT_EXCEEDED,
                         f"a glob pattern is longer than {MAX_PATTERN_CHARS} characters")


@functools.lru_cache(maxsize=PATTERN_CACHE)
def _matcher(pattern: str):
    return re.compile(fnmatch.translate(pattern)).match


def matches(name: str, patterns: Sequence[str]) -> bool:
    """fnmatch.fnmatchcase, but with a bounded cache of compiled patterns."""
    return any(_matcher(pattern)(name) for pattern in patterns)


def row_matches(row: str, patterns: Sequence[str]) -> bool:
    """Whether a ``namesort`` row will be listed under a glob (counts toward the limit)."""
    return matches(namesort.row_name(row), patterns)
