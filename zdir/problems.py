"""What went wrong with which source: lines for stderr, short at any number of sources."""

from __future__ import annotations

from typing import List, Sequence

from .protocol import SourceStatus


def source_problems(sources: Sequence[SourceStatus]) -> List[str]:
    """For stderr: what went wrong with which source, readable at any number of sources.

    Up to a handful of sources, one line per source that failed, was cut short
    or refused the path, with its message. Beyond, one line for the whole fleet:
    ``998 of 1000 sources answered; failed: node0042 (timeout), node0777
    (unreachable)``, the names folded into ranges per error code when more than
    a handful failed. Either way a source that simply lacks the path
    (not_found) is not worth a word while another source lists it. Works on
    the header's sources alone, so it never waits for the listing.
    """
    from .nodeset import HANDFUL

    if len(sources) > HANDFUL:
        return _fleet_problems(sources)
    lines = []
    for s in sources:
        if not s.error or (not s.failed and s.code == "not_found"):
            continue
        what = s.error["message"]
        where = f" ({s.endpoint})" if s.endpoint and s.endpoint not in what else ""
        verdict = "failed" if s.failed else "refused"
        lines.append(f"source {s.name}{where} {verdict}: {s.code}: {what}{_unheard(s)}")
    return lines


def _unheard(source: SourceStatus) -> str:
    """A failed relay hides the sources behind it: say how many there were last time."""
    if not source.failed or not source.behind or source.behind < 2:
        return ""
    return f" ({source.behind - 1} sources behind it unheard)"


def _fleet_problems(sources: Sequence[SourceStatus]) -> List[str]:
    """``N of M sources answered; failed: ...; refused: ...`` in one line; none if all is well."""
    from .nodeset import HANDFUL, fold

    failed = [s for s in sources if s.failed]
    refused = [s for s in sources if not s.failed and s.error and s.code != "not_found"]
    if not failed and not refused:
        return []
    # A failed relay counts once in ``sources``; the manifest says who stood behind it.
    unheard = sum(s.behind - 1 for s in failed if s.behind)
    clauses = [f"{len(sources) - len(failed)} of {len(sources) + unheard} sources answered"]
    for verdict, group in (("failed", failed), ("refused", refused)):
        if len(group) > HANDFUL:
            by_code: "dict[str, List[str]]" = {}  # codes in order of first appearance
            for s in group:
                by_code.setdefault(s.code or "truncated", []).append(s.name)
            named = [f"{fold(names)} ({code})" for code, names in by_code.items()]
        else:
            named = [f"{s.name} ({s.code or 'truncated'})" for s in group]
        if named:
            clauses.append(f"{verdict}: {', '.join(named)}")
    if unheard:
        clauses.append(f"{unheard} sources behind failed relays unheard")
    return ["; ".join(clauses)]
