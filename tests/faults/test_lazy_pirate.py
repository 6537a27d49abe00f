"""The one reliable-request helper against fake peers in this process: fresh sockets, codes."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import zmq

from conftest import unused_tcp_endpoint
from zdir.errors import AuthFailed, Unreachable
from zdir.reliable import DEFAULT_BACKOFF, Exchange, Peer, request

pytestmark = pytest.mark.timeout(30)

POLL_MS = 5000


def fake_upstream(context: zmq.Context, **options) -> "tuple[zmq.Socket, str]":
    """A ROUTER standing in for a peer that the test answers (or not) by hand."""
    router = context.socket(zmq.ROUTER)
    for name, value in options.items():
        setattr(router, name, value)
    router.bind("tcp://127.0.0.1:*")
    return router, router.getsockopt_string(zmq.LAST_ENDPOINT)


def receive(router: zmq.Socket) -> list:
    assert router.poll(POLL_MS), "the helper sent nothing"
    return router.recv_multipart()


def in_background(target) -> "tuple[threading.Thread, dict]":
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = target()
        except Exception as exc:  # handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def fixed(frames: "list[bytes]"):
    return lambda budget: list(frames)


def test_retry_goes_out_on_a_fresh_socket_and_the_late_reply_is_lost(zmq_context):
    router, endpoint = fake_upstream(zmq_context)
    peer = Peer(zmq_context, endpoint)
    thread, result = in_background(
        lambda: request(peer, fixed([b"question"]), timeout=0.3, retries=1)
    )
    first_id, _, body = receive(router)  # attempt 1: left unanswered until it times out
    second_id, _, again = receive(router)  # attempt 2 arrives on a new connection
    assert first_id != second_id and body == again == b"question"
    router.send_multipart([first_id, b"", b"late answer to attempt 1"])
    router.send_multipart([second_id, b"", b"answer to attempt 2"])
    thread.join(5)
    peer.close()
    assert "error" not in result, result
    assert [f.bytes for f in result["value"]] == [b"answer to attempt 2"]


def test_silent_peer_costs_every_attempt_then_timeout(zmq_context):
    router, endpoint = fake_upstream(zmq_context)
    peer = Peer(zmq_context, endpoint)
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        request(peer, fixed([b"q"]), timeout=0.2, retries=2)
    elapsed = time.monotonic() - started
    peer.close()
    seen = []
    while router.poll(0):
        seen.append(router.recv_multipart()[0])
    assert len(set(seen)) == 3, "one connection per attempt"
    assert caught.value.code == "timeout" and "3 attempts" in caught.value.message
    backoff = DEFAULT_BACKOFF + 2 * DEFAULT_BACKOFF
    assert 0.6 + backoff <= elapsed < 0.6 + backoff + 0.5


def test_nobody_listening_is_unreachable(zmq_context):
    peer = Peer(zmq_context, unused_tcp_endpoint())
    with pytest.raises(Unreachable) as caught:
        request(peer, fixed([b"q"]), timeout=0.2, retries=1)
    peer.close()
    assert caught.value.code == "unreachable"
    assert type(caught.value) is Unreachable


def test_a_stopped_process_is_a_timeout_not_an_auth_failure(zmq_context):
    # A SIGSTOPped server's kernel still completes TCP connects but nothing ever
    # answers the ZeroMQ greeting: a listening socket that is never accepted is
    # exactly that, without stopping anything.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        peer = Peer(zmq_context, f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(Unreachable) as caught:
            request(peer, fixed([b"q"]), timeout=0.2, retries=1)
        peer.close()
    assert caught.value.code == "timeout", caught.value.message
    assert not isinstance(caught.value, AuthFailed)


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq built without CURVE")
def test_plain_socket_against_curve_server_is_auth_failed(zmq_context):
    public, secret = zmq.curve_keypair()
    router, endpoint = fake_upstream(zmq_context, curve_server=True, curve_secretkey=secret)
    peer = Peer(zmq_context, endpoint)
    with pytest.raises(AuthFailed) as caught:
        request(peer, fixed([b"q"]), timeout=0.3, retries=0)
    peer.close()
    assert caught.value.code == "auth_failed"
    assert not router.poll(0), "nothing got through"


def test_deadline_caps_attempts_and_shrinks_the_budget(zmq_context):
    router, endpoint = fake_upstream(zmq_context)
    peer = Peer(zmq_context, endpoint)
    budgets = []

    def build(budget: float) -> "list[bytes]":
        budgets.append(budget)
        return [b"q"]

    started = time.monotonic()
    exchange = Exchange([peer], build, timeout=0.3, retries=5, deadline=started + 0.5)
    exchange.send()
    (outcome,) = exchange.wait()
    elapsed = time.monotonic() - started
    peer.close()
    assert outcome.error is not None and outcome.error.code == "timeout"
    assert 0.45 <= elapsed < 0.8
    assert outcome.attempts == 2
    assert budgets[0] == pytest.approx(0.3, abs=0.01)
    assert budgets[1] < 0.2, "the last attempt only gets what is left of the deadline"


def test_one_silent_peer_does_not_delay_the_others(zmq_context):
    silent, silent_endpoint = fake_upstream(zmq_context)
    answering, answering_endpoint = fake_upstream(zmq_context)
    peers = [Peer(zmq_context, silent_endpoint), Peer(zmq_context, answering_endpoint)]
    exchange = Exchange(peers, fixed([b"q"]), timeout=0.5, retries=0)
    exchange.send()
    identity, _, body = receive(answering)
    answering.send_multipart([identity, b"", b"reply"])
    silent_outcome, answered = exchange.wait()
    for peer in peers:
        peer.close()
    assert [f.bytes for f in answered.frames] == [b"reply"]
    assert answered.elapsed < 0.3
    assert silent_outcome.error is not None and silent_outcome.error.code == "timeout"
    assert 0.5 <= silent_outcome.elapsed < 0.9


def test_a_node_stopping_between_attempts_is_context_terminated():
    """A worker retrying while its node stops must see ContextTerminated, not a bare error."""
    context = zmq.Context()
    holder = context.socket(zmq.REP)  # keeps term() waiting, as a busy worker's socket does
    closer = threading.Thread(target=context.term, daemon=True)
    closer.start()
    with pytest.raises(zmq.ContextTerminated):
        holder.recv()  # returns as soon as term() has begun: the signal to go on
    peer = Peer(context, unused_tcp_endpoint())
    with pytest.raises(zmq.ContextTerminated):
        peer.open()
    peer.close()
    holder.close(linger=0)
    closer.join(5)
    assert not closer.is_alive()
