"""A stand-in PostgreSQL server that asks for a cleartext password and rejects it.

The test servers trust every local connection, so a wrong password never fails there; this
speaks just enough of the wire protocol (startup, AuthenticationCleartextPassword, an
ErrorResponse 28P01) for the real libpq/psycopg client to send the password and fail exactly
as against a server that checks it. It records the passwords it received, so a test can prove
the secret really was in play.
"""

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


@contextmanager
def fake_postgres() -> Iterator[tuple[int, list[str]]]:
    """Yield (port, passwords received) while the server runs on 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client:
                _reject(client, received)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _reject(client: socket.socket, received: list[str]) -> None:
    client.settimeout(5)
    while True:
        length, code = struct.unpack("!ii", _read(client, 8))
        _read(client, length - 8)
        if code in (_SSL_REQUEST, _GSS_REQUEST):
            client.sendall(b"N")  # no encryption: go on in plain text
            continue
        break
    client.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
    kind, length = struct.unpack("!ci", _read(client, 5))
    assert kind == b"p"
    received.append(_read(client, length - 4).rstrip(b"\0").decode())
    fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "vidpipe"\0\0'
    client.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


def _read(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data
