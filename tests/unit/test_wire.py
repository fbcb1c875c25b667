import os

import pytest

from lambdad.runtime import wire


def test_frames_round_trip_through_a_pipe():
    r, w = os.pipe()
    try:
        wire.send(w, {"t": "invoke", "id": "x"}, b'{"big": "' + b"y" * 1000 + b'"}')
        head, body = wire.recv(r)
    finally:
        os.close(r)
        os.close(w)
    assert head == {"t": "invoke", "id": "x"}
    assert body == b"{\"big\": \"" + b"y" * 1000 + b"\"}"


def test_reader_reassembles_frames_split_anywhere():
    data = wire.encode({"n": 1}, b"abc") + wire.encode({"n": 2})
    for cut in range(len(data) + 1):
        reader = wire.FrameReader()
        frames = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert frames == [({"n": 1}, b"abc"), ({"n": 2}, b"")]


def test_reader_rejects_oversized_frames():
    reader = wire.FrameReader()
    with pytest.raises(ValueError):
        reader.feed(wire.PREFIX.pack(10, wire.MAX_FRAME_BYTES))


def test_recv_raises_eof_when_the_peer_is_gone():
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(EOFError):
        wire.recv(r)
    os.close(r)


def test_frame_stream_reads_consecutive_frames():
    r, w = os.pipe()
    try:
        os.write(w, wire.encode({"n": 1}) + wire.encode({"n": 2}, b"body"))
        os.close(w)
        stream = wire.FrameStream(r)
        assert stream.recv() == ({"n": 1}, b"")
        assert stream.recv() == ({"n": 2}, b"body")
        with pytest.raises(EOFError):
            stream.recv()
    finally:
        os.close(r)
