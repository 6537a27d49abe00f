"""Paging without sockets: the lister resumes after a key, cuts pages, and tokens are checked."""

from __future__ import annotations

import os
import tempfile

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zdir import protocol, tokens
from zdir.errors import RemoteProtocolError
from zdir.lister import DirListing, Options, order_key
from zdir.tokens import Token

pytestmark = pytest.mark.timeout(120)

# Names that sort in the interesting ways: a prefix of another, '-' and '.' below '/',
# non-ASCII above ASCII.
NAME = st.sampled_from(["a", "a-b", "a.b", "ab", "b", "B", "é", "z", "0", "a b"])
TREE = st.recursive(st.just("file"),
                    lambda inner: st.dictionaries(NAME, inner, max_size=4), max_leaves=25)


def build(root: str, tree) -> None:
    for name, content in tree.items():
        path = os.path.join(root, name)
        if isinstance(content, dict):
            os.mkdir(path)
            build(path, content)
        else:
            with open(path, "w"):
                pass


def names(root: str, **options) -> list:
    listing = DirListing(os.path.realpath(root), "", Options(stat=False, **options))
    return [name for chunk in listing for name in chunk.names]


@settings(max_examples=60, deadline=None)
@given(tree=st.dictionaries(NAME, TREE, max_size=5), recursive=st.booleans(),
       extra=st.lists(st.text(alphabet="ab-./é", min_size=1, max_size=6), max_size=3))
def test_resuming_after_any_key_lists_exactly_what_follows_it(tree, recursive, extra):
    with tempfile.TemporaryDirectory() as root:
        build(root, tree)
        full = names(root, recursive=recursive)
        assert full == sorted(full, key=order_key)  # the documented order
        # Every listed name, and names that are not there (deleted since, or forged).
        for key in full + extra:
            after = order_key(key)
            assert names(root, recursive=recursive, after=after) == \
                [name for name in full if order_key(name) > after]


@settings(max_examples=40, deadline=None)
@given(tree=st.dictionaries(NAME, TREE, max_size=5), page=st.integers(1, 5))
def test_page_cuts_concatenate_to_the_whole_listing(tree, page):
    with tempfile.TemporaryDirectory() as root:
        build(root, tree)
        full = names(root, recursive=True)
        listing = DirListing(os.path.realpath(root), "",
                             Options(stat=False, recursive=True, page_entries=page))
        got, produced = [], 0
        chunks = iter(listing)
        while True:
            listing.page_end = produced + page  # what a worker does before each page
            taken = 0
            for chunk in chunks:
                got.extend(chunk.names)
                taken += len(chunk.names)
                if taken >= page:
                    break
            else:
                break
            assert taken == page
            produced += taken
        assert got == full


def token(**fields) -> bytes:
    return tokens.encode_token(Token(**{"path": "docs", **fields}))


def test_a_token_round_trips():
    made = Token("docs", "b-123", b"12345678", "x/y", False, (("tcp://h:1", b"inner"),))
    assert tokens.decode_token(tokens.encode_token(made), "docs") == made


@pytest.mark.parametrize("raw, words", [
    (b"\xc1", "not valid msgpack"),
    (msgpack.packb({"a": 1}), "not a zdir token"),
    (msgpack.packb([2, "docs", "", None, None, False, {}]), "not a zdir token"),
    (token(path="other"), "another path"),
    (token(path=b"docs"), "another path"),  # bin and str are different paths
    (msgpack.packb([1, "docs", 7, None, None, False, {}]), "node id"),
    (msgpack.packb([1, "docs", "", "cursor", None, False, {}]), "cursor"),
    (msgpack.packb([1, "docs", "", b"x" * 17, None, False, {}]), "cursor"),
    (msgpack.packb([1, "docs", "", None, 5, False, {}]), "position"),
    (msgpack.packb([1, "docs", "", None, "", False, {}]), "position"),
    (msgpack.packb([1, "docs", "", None, "x" * 20000, False, {}]), "position"),
    (msgpack.packb([1, "docs", "", None, None, 1, {}]), "'done'"),
    (msgpack.packb([1, "docs", "", None, None, False, []]), "upstreams"),
    (msgpack.packb([1, "docs", "", None, None, False, {"tcp://h:1": "text"}]), "bin"),
    (msgpack.packb([1, "docs", "", None, None, False, {"tcp://h:1": b""}]), "bin"),
])
def test_a_forged_token_is_the_senders_fault(raw, words):
    with pytest.raises(RemoteProtocolError) as caught:
        tokens.decode_token(raw, "docs")
    assert caught.value.code == "bad_request"
    assert words in caught.value.message


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_random_bytes_are_never_more_than_a_bad_request(raw):
    try:
        decoded = tokens.decode_token(raw, "docs")
    except RemoteProtocolError as exc:
        assert exc.code == "bad_request"
    else:
        assert decoded.path == "docs"


def test_paging_keys_are_left_out_of_an_unpaged_request():
    plain = protocol.Request("list", b"12345678", "docs")
    assert b"page_entries" not in protocol.encode_request(plain)
    assert b"token" not in protocol.encode_request(plain)
    paged = plain._replace(page_entries=1, token=token())
    decoded = protocol.decode_request([protocol.encode_request(paged)])
    assert decoded == paged and decoded.paged


@pytest.mark.parametrize("field, value", [("page_entries", 0), ("page_ms", -1),
                                           ("token", "text"), ("token", b""),
                                           ("horizon", 7)])
def test_bad_paging_keys_are_refused(field, value):
    frame = msgpack.packb({"v": 1, "op": "list", "id": b"12345678", field: value},
                          use_bin_type=True)
    with pytest.raises(RemoteProtocolError) as caught:
        protocol.decode_request([frame])
    assert caught.value.code == "bad_request" and field in caught.value.message


def test_a_paged_header_carries_its_token_and_every_sources_next():
    source = protocol.SourceStatus("b", True, next=b"n", last="x")
    header = protocol.ReplyHeader(b"1", "list", True, sources=(source,), token=None, paged=True)
    decoded = protocol.decode_header(protocol.encode_header(header))
    assert decoded.paged and decoded.token is None and decoded.sources[0].next == b"n"
    unpaged = protocol.encode_header(header._replace(paged=False))
    assert b"token" not in unpaged and b"next" not in unpaged
