"""Paging tokens: a node's position in one paged listing, opaque to clients, checked like paths.

The wire form is ``[1, path, node_id, cursor, after, done, {endpoint: token}]``
(docs/protocol.md, *Pages*). Pure, as ``protocol`` is: no sockets, no file system.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from .errors import RemoteProtocolError
from .protocol import MAX_ITEM_CHARS, MAX_KEY_BYTES, MAX_TOKEN_BYTES, Name, pack, unpack

MAX_CURSOR_ID_BYTES = 16
MAX_TOKEN_UPSTREAMS = 1024
MAX_ENDPOINT_CHARS = 256
TOKEN_FORMAT = 1  # the first item of every token; another value is refused


class Token(NamedTuple):
    """A node's position in one paged listing (decoded from the opaque bin).

    ``after``: the last name this node's own source sent (None: nothing yet);
    ``done``: its own source is finished; ``cursor``: the id of the walk it keeps
    for this listing (a lease); ``upstreams``: each unfinished upstream's own token,
    by endpoint. ``node_id`` says which node made it: a cursor is only looked up there.
    """

    path: Name
    node_id: str = ""
    cursor: Optional[bytes] = None
    after: Optional[Name] = None
    done: bool = False
    upstreams: Tuple[Tuple[str, bytes], ...] = ()


def encode_token(token: Token) -> bytes:
    """The opaque bin a node hands out: ``[1, path, node_id, cursor, after, done, {ep: tok}]``."""
    return pack([TOKEN_FORMAT, token.path, token.node_id, token.cursor, token.after,
                 token.done, dict(token.upstreams)])


def decode_token(raw: bytes, path: Name) -> Token:
    """Check a token as strictly as a path; its ``path`` must be ``path`` (as sent).

    Raises RemoteProtocolError (``bad_request``): the sender's token is forged,
    damaged, or belongs to another listing. Nothing in a valid token is trusted
    beyond a comparison key: ``after`` is only compared, never opened.
    """
    if not isinstance(raw, bytes) or not 0 < len(raw) <= MAX_TOKEN_BYTES:
        raise RemoteProtocolError(f"a token is 1 to {MAX_TOKEN_BYTES} bytes of bin")
    wire = unpack(raw, "token")
    if not isinstance(wire, list) or len(wire) != 7 or wire[0] != TOKEN_FORMAT:
        raise RemoteProtocolError("not a zdir token (or one of another format)")
    _, token_path, node_id, cursor, after, done, upstreams = wire
    if not isinstance(token_path, (str, bytes)) or token_path != path:
        raise RemoteProtocolError("the token belongs to another path: start the listing again "
                                  "without a token")
    if not isinstance(node_id, str) or len(node_id) > MAX_ITEM_CHARS:
        raise RemoteProtocolError("a token's node id is a string of at most "
                                  f"{MAX_ITEM_CHARS} characters")
    if cursor is not None and (not isinstance(cursor, bytes)
                               or not 0 < len(cursor) <= MAX_CURSOR_ID_BYTES):
        raise RemoteProtocolError("a token's cursor is nil or a short bin")
    if after is not None and (not isinstance(after, (str, bytes)) or not after
                              or len(after) > MAX_KEY_BYTES):
        raise RemoteProtocolError("a token's position is nil or a name")
    if type(done) is not bool:
        raise RemoteProtocolError("a token's 'done' is a boolean")
    if not isinstance(upstreams, dict) or len(upstreams) > MAX_TOKEN_UPSTREAMS:
        raise RemoteProtocolError("a token's upstreams are a map of at most "
                                  f"{MAX_TOKEN_UPSTREAMS}")
    for endpoint, inner in upstreams.items():
        if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT_CHARS:
            raise RemoteProtocolError("a token's upstream is named by its endpoint (a string)")
        if not isinstance(inner, bytes) or not inner:
            raise RemoteProtocolError("an upstream's token is a non-empty bin")
    return Token(token_path, node_id, cursor, after, done, tuple(upstreams.items()))
