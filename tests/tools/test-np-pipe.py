#!/usr/bin/env python3
# np-pipe, the real binary, against real servers and clients. Prints TAP.
#
# Usage: test-np-pipe.py NP-PIPE LOCALEDIR
#
# LOCALEDIR holds the catalogs of po/ as the build made them.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

NP_PIPE = sys.argv[1]
LOCALEDIR = sys.argv[2]
RUNTIME_DIR = tempfile.mkdtemp(prefix="np-pipe-test-")
os.environ["XDG_RUNTIME_DIR"] = RUNTIME_DIR
os.environ["LC_ALL"] = "C.UTF-8"

tests = []


class Skip(Exception):
    """A test that cannot run here: reported as skipped (TAP "# SKIP")."""


def test(func):
    tests.append(func)
    return func


def run(*args, input=None):
    return subprocess.run([NP_PIPE, *args], input=input, capture_output=True, timeout=120)


def run_timed(*args):
    start = time.monotonic()
    result = run(*args)
    return result, time.monotonic() - start


# Well under the 10 s default: a run this short used the --timeout given.
PROMPTLY = 8.0


class Listener:
    """np-pipe listen, read line by line (blocking reads, no sleeping)."""

    def __init__(self, name, *options):
        self.name = name
        self.process = subprocess.Popen([NP_PIPE, "listen", *options, name],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.line() if "--raw" not in options else self.error_line()
        assert first.startswith(f"Listening as pipe “{name}” on "), first
        self.path = first.split(" on ", 1)[1]

    def line(self):
        line = self.process.stdout.readline()
        assert line, "listen ended its output"
        return line.decode().rstrip("\n")

    def error_line(self):
        line = self.process.stderr.readline()
        assert line, "listen ended its error output"
        return line.decode().rstrip("\n")

    def expect(self, predicate, what):
        while True:
            line = self.line()
            if predicate(line):
                return line

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=120)
        assert status == 0, f"listen exited with {status}"
        assert not os.path.exists(self.path), "the socket file was removed"


@test
def listen_and_send_text():
    listener = Listener("text")
    result = run("send", "text", "hello", "wörld")
    assert result.returncode == 0, result
    listener.expect(lambda l: l.startswith("client 1 connected (pid "), "connected")
    assert listener.line() == "client 1: hello"
    assert listener.line() == "client 1: wörld"
    assert listener.line() == "client 1 disconnected"
    listener.stop()


@test
def speaks_the_users_language():
    # Under LANGUAGE=de, from po/de.po: its own help, and the library's
    # errors, which it shares the catalog of.
    env = dict(os.environ, LANGUAGE="de", NP_LOCALEDIR=LOCALEDIR)
    result = subprocess.run([NP_PIPE, "--help"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result
    assert "  send        Nachrichten an einen Server senden\n" in result.stdout.decode(), result.stdout
    result = subprocess.run([NP_PIPE, "send", "nobody-here", "x"], env=env, capture_output=True,
                            timeout=120)
    assert result.returncode == 1, result
    assert "np-pipe: Als Pipe „nobody-here“ läuft kein Server (" in result.stderr.decode(), result


@test
def listen_and_send_binary():
    listener = Listener("binary")
    data = bytes(range(256))
    path = os.path.join(RUNTIME_DIR, "binary.bin")
    with open(path, "wb") as f:
        f.write(data)
    assert run("send", "--file", path, "binary").returncode == 0
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1: 256 bytes"
    first = listener.line()
    assert first.startswith("  00000000  00 01 02 03 04 05 06 07  08 09"), first
    listener.stop()


@test
def send_a_5_mib_file_arrives_intact():
    listener = Listener("file", "--raw")
    data = os.urandom(5 * 1024 * 1024)
    path = os.path.join(RUNTIME_DIR, "big.bin")
    with open(path, "wb") as f:
        f.write(data)
    assert run("send", "--file", path, "file").returncode == 0
    received = b""
    while len(received) < len(data):
        chunk = listener.process.stdout.read(len(data) - len(received))
        assert chunk, "listen --raw ended early"
        received += chunk
    assert received == data, "the bytes differ"
    listener.stop()


@test
def send_stdin_lines_and_null_separated():
    listener = Listener("lines")
    assert run("send", "lines", input=b"one\ntwo\nthree\n").returncode == 0
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert [listener.line() for _ in range(3)] == ["client 1: one", "client 1: two", "client 1: three"]
    assert listener.line() == "client 1 disconnected"

    assert run("send", "--null", "lines", input=b"x y\0z\0").returncode == 0
    listener.expect(lambda l: l.startswith("client 2 connected"), "connected")
    assert [listener.line() for _ in range(2)] == ["client 2: x y", "client 2: z"]
    listener.stop()


@test
def echo_with_wait():
    listener = Listener("echo", "--echo")
    result = run("send", "--wait", "2", "echo", "first", "second")
    assert result.returncode == 0, result
    assert result.stdout.decode().splitlines() == ["reply: first", "reply: second"], result.stdout
    listener.stop()


@test
def send_wait_times_out_when_nothing_replies():
    listener = Listener("deaf-listener")
    result, elapsed = run_timed("send", "--wait", "1", "--timeout", "1", "deaf-listener", "hello")
    assert result.returncode == 1, result
    error = result.stderr.decode()
    assert "pipe “deaf-listener”: reply 1 of 1 did not arrive within 1 s" in error, error
    assert result.stdout == b"", result.stdout
    assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1: hello"
    listener.stop()


@test
def send_wait_timeout_counts_each_reply():
    listener = Listener("echo-two", "--echo")
    result, elapsed = run_timed("send", "--wait", "3", "--timeout", "1", "echo-two", "one", "two")
    assert result.returncode == 1, result
    assert result.stdout.decode().splitlines() == ["reply: one", "reply: two"], result.stdout
    error = result.stderr.decode()
    assert "pipe “echo-two”: reply 3 of 3 did not arrive within 1 s" in error, error
    assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
    listener.stop()


class DeafPeer:
    """Accepts one connection, sends a valid hello (docs/protocol.md), then
    never reads nor replies."""

    def __init__(self, name):
        os.makedirs(os.path.join(RUNTIME_DIR, "np"), mode=0o700, exist_ok=True)
        self.path = os.path.join(RUNTIME_DIR, "np", name)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen()
        self.accepted = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            connection, _ = self.server.accept()
        except OSError:
            return  # closed before anyone connected
        connection.sendall(b"NPIP" + bytes([1, 0, 0, 0]) + struct.pack(">I", 16 << 20))
        self.accepted.set()
        self.release.wait()
        connection.close()

    def close(self):
        self.release.set()
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # ends a pending accept()
        except OSError:
            pass
        self.thread.join(timeout=120)
        self.server.close()
        os.unlink(self.path)


@test
def ping_times_out_against_a_peer_that_never_answers():
    peer = DeafPeer("deaf-peer")
    try:
        result, elapsed = run_timed("ping", "-c", "3", "--timeout", "1", "deaf-peer")
        assert peer.accepted.is_set(), "the peer accepted the connection"
        assert result.returncode == 1, result
        error = result.stderr.decode()
        assert "pipe “deaf-peer”: ping 1 of 3 was not answered within 1 s" in error, error
        assert result.stdout == b"", result.stdout
        assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
    finally:
        peer.close()


class RequestPeer:
    """A server speaking protocol version 2 with nothing but the socket
    module (src/np-frame.c): accepts one connection, reads frames until
    the client goes, and records each request. answer(request_id, payload)
    gives the frame to answer it with, or None to never answer."""

    REQUEST, REPLY, ERROR = 4, 5, 6

    def __init__(self, name, answer=lambda request_id, payload: None, version=2):
        os.makedirs(os.path.join(RUNTIME_DIR, "np"), mode=0o700, exist_ok=True)
        self.path = os.path.join(RUNTIME_DIR, "np", name)
        self.answer = answer
        self.version = version
        self.requests = []
        self.got_request = threading.Event()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def frame(frame_type, payload):
        return struct.pack(">IB3x", len(payload), frame_type) + payload

    @staticmethod
    def read_exactly(connection, size):
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def serve(self):
        try:
            connection, _ = self.server.accept()
        except OSError:
            return  # closed before anyone connected
        with connection:
            connection.sendall(b"NPIP" + bytes([self.version, 0, 0, 0]) + struct.pack(">I", 16 << 20))
            if self.read_exactly(connection, 12) is None:
                return
            while True:
                header = self.read_exactly(connection, 8)
                if header is None:
                    return
                length, frame_type = struct.unpack(">IB3x", header)
                payload = self.read_exactly(connection, length)
                if payload is None:
                    return
                if frame_type == self.REQUEST:
                    request_id = struct.unpack(">I", payload[:4])[0]
                    self.requests.append((request_id, payload[4:]))
                    self.got_request.set()
                    reply = self.answer(request_id, payload[4:])
                    if reply is not None:
                        connection.sendall(reply)

    def close(self):
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # ends a pending accept()
        except OSError:
            pass
        self.thread.join(timeout=120)
        self.server.close()
        os.unlink(self.path)


@test
def request_to_listen_echo():
    listener = Listener("asked", "--echo")
    result = run("request", "asked", "hello wörld")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: hello wörld\n", result.stdout
    assert result.stderr == b"", result.stderr
    listener.expect(lambda l: l.startswith("client 1 connected (pid "), "connected")
    assert listener.line() == "client 1 request: hello wörld"
    assert listener.line() == "client 1 disconnected"

    # No limit, and a binary reply printed as a hex dump.
    result = run("request", "--timeout", "0", "--hex", "asked", "abc")
    assert result.returncode == 0, result
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "reply: 3 bytes", lines
    assert lines[1].startswith("  00000000  61 62 63 ") and lines[1].endswith(" |abc|"), lines
    assert len(lines) == 2, lines
    listener.expect(lambda l: l.startswith("client 2 connected"), "connected")
    assert listener.line() == "client 2 request: abc"
    listener.stop()


@test
def request_to_listen_without_echo_is_not_supported():
    listener = Listener("unanswering")
    result, elapsed = run_timed("request", "unanswering", "anyone?")
    assert result.returncode == 1, result
    assert result.stdout == b"", result.stdout
    error = result.stderr.decode()
    assert ("np-pipe: pipe “unanswering” answered the request with an error: "
            "Client 1 of pipe “unanswering”: nothing handles requests on this pipe: ") in error, error
    assert "(np-pipe-error-quark, 11)" in error, error
    assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1 request: anyone?", "listen prints it all the same"
    listener.stop()


@test
def request_times_out_against_a_peer_that_never_replies():
    peer = RequestPeer("silent-peer")
    try:
        result, elapsed = run_timed("request", "--timeout", "1", "silent-peer", "anyone?")
        assert peer.got_request.is_set(), "the peer received the request"
        assert len(peer.requests) == 1 and peer.requests[0][1] == b"anyone?", peer.requests
        assert result.returncode == 1, result
        assert result.stdout == b"", result.stdout
        error = result.stderr.decode()
        assert "np-pipe: pipe “silent-peer”: the reply did not arrive within 1 s" in error, error
        assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
    finally:
        peer.close()


@test
def request_error_reply_keeps_its_domain_and_code():
    def error_reply(request_id, payload):
        domain, message = b"g-io-error-quark", "no “%s” here".encode() % payload
        return RequestPeer.frame(RequestPeer.ERROR,
                                 struct.pack(">IIH", request_id, 1, len(domain)) + domain + message)

    peer = RequestPeer("erring-peer", error_reply)
    try:
        result = run("request", "erring-peer", "thing")
        assert result.returncode == 1, result
        error = result.stderr.decode()
        assert ("np-pipe: pipe “erring-peer” answered the request with an error: "
                "no “thing” here (g-io-error-quark, 1)") in error, error
    finally:
        peer.close()

    def binary_reply(request_id, payload):
        return RequestPeer.frame(RequestPeer.REPLY, struct.pack(">I", request_id) + bytes([0, 1, 2]))

    peer = RequestPeer("binary-peer", binary_reply)
    try:
        result = run("request", "binary-peer", "bytes, please")
        assert result.returncode == 0, result
        assert result.stdout.decode().splitlines()[0] == "reply: 3 bytes", result.stdout
    finally:
        peer.close()


@test
def request_to_a_version_1_peer_fails_at_once():
    peer = RequestPeer("old-peer", version=1)
    try:
        result, elapsed = run_timed("request", "old-peer", "anyone?")
        assert result.returncode == 1, result
        error = result.stderr.decode()
        assert "np-pipe: Pipe “old-peer”: the peer speaks protocol version 1, which has no requests" in error, error
        assert elapsed < PROMPTLY, f"took {elapsed:.1f} s"
        assert peer.requests == [], "nothing was sent"
    finally:
        peer.close()


@test
def list_live_and_stale():
    listener = Listener("alive")
    stale_path = os.path.join(RUNTIME_DIR, "np", "gone")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale_path)
    s.listen()
    s.close()

    rows = {line.split()[0]: line.split() for line in
            run("list").stdout.decode().splitlines()[1:]}
    assert rows["alive"][1] == "live", rows
    assert rows["alive"][2] == str(listener.process.pid), rows
    assert rows["gone"][1] == "stale", rows

    result = run("list", "--clean")
    assert result.returncode == 0
    assert "removed stale" in result.stderr.decode()
    assert not os.path.exists(stale_path)
    assert os.path.exists(listener.path)
    listener.stop()


@test
def list_after_a_crash_and_beside_a_foreign_listener():
    np_dir = os.path.join(RUNTIME_DIR, "np")
    alive = Listener("still-alive")
    crashed = Listener("crashed")
    crashed.process.kill()
    crashed.process.wait(timeout=120)
    # A crash leaves the socket and an unlocked lock file behind.
    assert os.path.exists(crashed.path) and os.path.exists(crashed.path + ".lock")

    # Not an Np server, but something accepts on the socket, beside a lock
    # file nobody holds.
    foreign_path = os.path.join(np_dir, "foreign")
    foreign = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    foreign.bind(foreign_path)
    foreign.listen()
    with open(foreign_path + ".lock", "w") as f:
        f.write("1\n")

    with open(os.path.join(np_dir, "not-a-socket"), "w") as f:
        f.write("precious")

    try:
        result = run("list")
        assert result.returncode == 0, result
        rows = {line.split()[0]: line.split() for line in result.stdout.decode().splitlines()[1:]}
        assert rows["still-alive"][1:3] == ["live", str(alive.process.pid)], rows
        assert rows["crashed"][1:3] == ["stale", "-"], rows
        assert rows["foreign"][1] == "live", rows
        assert "not-a-socket" not in rows, rows

        result = run("list", "--clean")
        assert result.returncode == 0, result
        assert f"removed stale {crashed.path}" in result.stderr.decode(), result.stderr
        assert not os.path.exists(crashed.path)
        assert not os.path.exists(crashed.path + ".lock")
        assert os.path.exists(foreign_path), "a socket something accepts on stays"
        assert os.path.exists(alive.path)
        assert os.path.exists(os.path.join(np_dir, "not-a-socket"))
    finally:
        foreign.close()
        os.unlink(foreign_path)
        os.unlink(foreign_path + ".lock")
        os.unlink(os.path.join(np_dir, "not-a-socket"))
    alive.stop()


class RefusingPeer:
    """A server that answers every client as an Np server refusing it does
    (docs/protocol.md): its hello and a GOODBYE with @code and @reason in
    one write, then closes. With code None, it accepts and never says
    hello."""

    def __init__(self, name, code=None, reason=""):
        os.makedirs(os.path.join(RUNTIME_DIR, "np"), mode=0o700, exist_ok=True)
        self.path = os.path.join(RUNTIME_DIR, "np", name)
        self.code = code
        self.reason = reason.encode()
        self.connections = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            if self.code is None:
                self.connections.append(connection)
                continue
            goodbye = struct.pack(">I", self.code) + self.reason
            connection.sendall(b"NPIP" + bytes([3, 0, 0, 0]) + struct.pack(">I", 16 << 20) +
                               struct.pack(">IB3x", len(goodbye), 3) + goodbye)
            connection.close()

    def close(self):
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # ends a pending accept()
        except OSError:
            pass
        self.thread.join(timeout=120)
        self.server.close()
        for connection in self.connections:
            connection.close()
        os.unlink(self.path)


NP_PIPE_ERROR_PERMISSION_DENIED = 7
NP_PIPE_ERROR_TOO_MANY_CLIENTS = 10


def assert_fails_once(result, *expected):
    """Exit status 1, and one line on stderr that says why."""
    assert result.returncode == 1, result
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "the pipe is closed" not in lines[0], lines
    for text in expected:
        assert text in lines[0], (text, lines)


@test
def refusals_exit_1_saying_why():
    cases = [(NP_PIPE_ERROR_PERMISSION_DENIED, "refused-tool", "not you"),
             (NP_PIPE_ERROR_TOO_MANY_CLIENTS, "full-tool", "no room left")]
    for code, name, reason in cases:
        peer = RefusingPeer(name, code, reason)
        try:
            for args in (["send", name, "hello"], ["send", "--wait", "1", name, "hello"],
                         ["request", name, "hello"], ["ping", "-c", "1", name]):
                for _ in range(3):
                    assert_fails_once(run(*args), name, reason)
        finally:
            peer.close()


@test
def a_server_that_never_says_hello_fails_the_connect():
    peer = RefusingPeer("mute-tool")
    try:
        for args in (["send", "mute-tool", "hello"], ["request", "mute-tool", "hello"],
                     ["ping", "-c", "1", "mute-tool"]):
            assert_fails_once(run(*args), "mute-tool", "handshake")
    finally:
        peer.close()


@test
def a_message_over_the_servers_limit_exits_1():
    listener = Listener("small", "-m", "4")
    with tempfile.NamedTemporaryFile() as oversize:
        oversize.write(b"x" * 100)
        oversize.flush()
        for args in (["send", "small", "hello world"], ["send", "--wait", "1", "small", "hello world"],
                     ["send", "--file", oversize.name, "small"], ["request", "small", "hello world"]):
            assert_fails_once(run(*args), "small", "exceeds the limit of 4 bytes")
    listener.stop()


@test
def max_clients_refuses_the_client_past_it():
    listener = Listener("one-client", "--max-clients", "1")
    first = RawClient("one-client")
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert_fails_once(run("send", "one-client", "hello"), "one-client", "maximum of 1 clients")
    first.close()
    listener.expect(lambda l: l == "client 1 disconnected", "disconnected")
    assert run("send", "one-client", "hello").returncode == 0
    listener.expect(lambda l: l.endswith(": hello"), "the message, once there was room")
    listener.stop()

    # 0 is no limit, not no clients.
    listener = Listener("any-clients", "--max-clients", "0")
    held = [RawClient("any-clients") for _ in range(2)]
    assert run("send", "any-clients", "hello").returncode == 0
    listener.expect(lambda l: l.endswith(": hello"), "the message of a third client")
    for client in held:
        client.close()
    listener.stop()


@test
def ping_a_server_without_ping_code():
    listener = Listener("pingable")
    result = run("ping", "-c", "20", "pingable")
    assert result.returncode == 0, result
    out = result.stdout.decode()
    assert out.startswith("pipe “pingable”: 20 pings, round trip min/median/max = "), out
    low, mid, high = (int(x) for x in out.split("= ")[1].split()[0].split("/"))
    assert 0 <= low <= mid <= high, out
    listener.stop()


# What a peer may choose to make a terminal misbehave: set the title,
# clear the screen, fake a red prompt.
HOSTILE = "\x1b]0;title\x07\x1b[2J\x1b[31mfake prompt$ "


def assert_no_escapes(data, what):
    assert b"\x1b" not in data and b"\x07" not in data, (what, data)


@test
def peer_text_is_escaped():
    # A goodbye reason, through every command that connects.
    peer = RefusingPeer("hostile-refusal", NP_PIPE_ERROR_PERMISSION_DENIED, HOSTILE)
    try:
        for args in (["send", "hostile-refusal", "hello"], ["send", "--wait", "1", "hostile-refusal", "hello"],
                     ["request", "hostile-refusal", "hello"], ["ping", "-c", "1", "hostile-refusal"]):
            result = run(*args)
            assert_fails_once(result, "hostile-refusal", "fake prompt")
            assert_no_escapes(result.stderr, args)
            assert "\\x1b]0;title\\x07" in result.stderr.decode(), result.stderr
    finally:
        peer.close()

    # An error reply: its message, and a domain a peer made up.
    def error_reply(request_id, payload):
        domain, message = b"evil-\x1b[2J-quark", HOSTILE.encode()
        return RequestPeer.frame(RequestPeer.ERROR,
                                 struct.pack(">IIH", request_id, 1, len(domain)) + domain + message)

    for name, domain in (("hostile-error", b"g-io-error-quark"), ("hostile-domain", b"evil-\x1b[2J-quark")):
        def answer(request_id, payload, domain=domain):
            message = HOSTILE.encode()
            return RequestPeer.frame(RequestPeer.ERROR,
                                     struct.pack(">IIH", request_id, 1, len(domain)) + domain + message)
        peer = RequestPeer(name, answer)
        try:
            result = run("request", name, "hello")
            assert_fails_once(result, name, "fake prompt")
            assert_no_escapes(result.stderr, name)
        finally:
            peer.close()

    # A client's goodbye reason, as listen reports the disconnect.
    listener = Listener("hostile-listen")
    client = RawClient("hostile-listen")
    reason = HOSTILE.encode()
    client.sock.sendall(struct.pack(">IB3xI", 4 + len(reason), 3, 5) + reason)  # GOODBYE PROTOCOL
    client.close()
    line = listener.expect(lambda l: l.startswith("client 1 disconnected"), "disconnected")
    assert_no_escapes(line.encode(), "listen")
    assert "fake prompt" in line and "\\x1b[2J" in line, line
    listener.stop()


class RawClient:
    """A client of protocol version 3 with nothing but the socket module:
    no SETTINGS, and the end of the stream is its clean close."""

    def __init__(self, name):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.path.join(RUNTIME_DIR, "np", name))
        self.sock.sendall(b"NPIP" + bytes([3, 0, 0, 0]) + struct.pack(">I", 16 << 20))
        hello = self.sock.recv(12, socket.MSG_WAITALL)
        assert hello[:4] == b"NPIP", hello

    def close(self):
        self.sock.shutdown(socket.SHUT_WR)
        while self.sock.recv(4096):
            pass
        self.sock.close()


@test
def listen_shows_the_first_256_bytes_unless_full():
    data = bytes(range(256)) * 4096                     # 1 MiB
    path = os.path.join(RUNTIME_DIR, "snap.bin")
    with open(path, "wb") as f:
        f.write(data)

    listener = Listener("snap")
    assert run("send", "--file", path, "snap").returncode == 0
    assert run("send", "snap", "a" * 300).returncode == 0
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1: 1048576 bytes"
    dump = [listener.line() for _ in range(16)]
    assert dump[0].startswith("  00000000  00 01 02"), dump
    assert dump[15].startswith("  000000f0  f0 f1 f2"), dump
    assert listener.line() == "  (1048320 more bytes not shown; --full shows all)"
    assert listener.line() == "client 1 disconnected"
    listener.expect(lambda l: l.startswith("client 2 connected"), "connected")
    assert listener.line() == "client 2: " + "a" * 256
    assert listener.line() == "  (44 more bytes not shown; --full shows all)"
    listener.stop()

    listener = Listener("snap-full", "--full")
    assert run("send", "--file", path, "snap-full").returncode == 0
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1: 1048576 bytes"
    lines = 0
    while True:
        line = listener.line()
        if not line.startswith("  "):
            break
        lines += 1
    assert lines == len(data) // 16, lines
    assert line == "client 1 disconnected", line
    listener.stop()


@test
def listen_counts_and_closes_descriptors():
    listener = Listener("fds")
    client = RawClient("fds")
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    frame = struct.pack(">IBBxx", 4, 7, 2) + b"pipe"          # MESSAGE_FDS, 2 descriptors
    socket.send_fds(client.sock, [frame], [r1, r2])
    os.close(r1)
    os.close(r2)
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1 (with 2 descriptors, closed): pipe"
    # listen holds no read end: writing finds no reader.
    for w in (w1, w2):
        try:
            os.write(w, b"x")
            assert False, "a read end is still open"
        except BrokenPipeError:
            pass
        os.close(w)
    client.close()
    assert listener.line() == "client 1 disconnected"

    # A request with a descriptor, in version 4: after both SETTINGS.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.path.join(RUNTIME_DIR, "np", "fds"))
    sock.sendall(b"NPIP" + bytes([4, 0, 0, 0]) + struct.pack(">I", 16 << 20))
    assert sock.recv(12, socket.MSG_WAITALL)[4] >= 4
    sock.sendall(struct.pack(">IB3xII", 8, 8, 0, 0))          # SETTINGS: no descriptors
    while True:
        length, kind = struct.unpack(">IB3x", sock.recv(8, socket.MSG_WAITALL))
        if length:
            sock.recv(length, socket.MSG_WAITALL)
        if kind == 8:
            break
    r, w = os.pipe()
    frame = struct.pack(">IBBxxI", 4 + 3, 9, 1, 1) + b"ask"   # REQUEST_FDS, id 1, 1 descriptor
    socket.send_fds(sock, [frame], [r])
    os.close(r)
    listener.expect(lambda l: l.startswith("client 2 connected"), "connected")
    assert listener.line() == "client 2 request (with 1 descriptor, closed): ask"
    try:
        os.write(w, b"x")
        assert False, "the read end is still open"
    except BrokenPipeError:
        pass
    os.close(w)
    sock.sendall(struct.pack(">IB3xI", 10, 3, 6) + b"closed")  # GOODBYE CLOSED
    while sock.recv(4096):
        pass
    sock.close()
    assert listener.line() == "client 2 disconnected"
    listener.stop()


@test
def listen_serves_while_nobody_reads_its_output():
    # 3 MB in full is a 15 MB hex dump: far more than a pipe holds, and
    # nobody reads it while the pings go.
    listener = Listener("unread", "--full")
    path = os.path.join(RUNTIME_DIR, "unread.bin")
    size = 3 * 1000 * 1000
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    assert run("send", "--file", path, "unread").returncode == 0
    result = run("ping", "-c", "3", "--timeout", "30", "unread")
    assert result.returncode == 0, result

    # Now read it all: nothing was lost, in order.
    listener.process.send_signal(signal.SIGINT)
    out, err = listener.process.communicate(timeout=120)
    assert listener.process.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[0].startswith("client 1 connected"), lines[:2]
    assert lines[1] == f"client 1: {size} bytes", lines[1]
    dump = (size + 15) // 16
    assert all(line.startswith("  ") for line in lines[2:2 + dump])
    assert lines[2 + dump] == "client 1 disconnected", lines[2 + dump:]
    assert lines[3 + dump].startswith("client 2 connected"), lines[2 + dump:]
    assert err == b"", err


@test
def listen_drops_and_counts_what_stdout_cannot_take():
    # --raw holds each message whole until it is written; 16 MiB may wait.
    listener = Listener("flooded", "--raw")
    path = os.path.join(RUNTIME_DIR, "flood.bin")
    size = 4 * 1000 * 1000
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    for _ in range(6):
        assert run("send", "--file", path, "flooded").returncode == 0
    assert run("ping", "-c", "1", "flooded").returncode == 0

    listener.process.send_signal(signal.SIGINT)
    out, err = listener.process.communicate(timeout=120)
    assert listener.process.returncode == 0, err
    assert len(out) == 5 * size, len(out)
    assert (f"np-pipe: 1 message ({size} bytes) was dropped from standard output: "
            "it was slower than the traffic") in err.decode(), err


@test
def request_timeout_bounds_the_connect_and_says_so():
    peer = RefusingPeer("mute-timeout")
    try:
        result, elapsed = run_timed("request", "-t", "1", "mute-timeout", "hello")
        assert_fails_once(result, "mute-timeout", "--timeout (1 s) ran out while connecting", "handshake")
        assert "reply" not in result.stderr.decode(), result.stderr
        # The connect's own limit is 5 s.
        assert elapsed < 4, f"took {elapsed:.1f} s"
    finally:
        peer.close()


@test
def list_probes_an_activated_service_cleanly():
    # As systemd does: a listening socket nobody holds the lock of; the
    # first connection starts the service, which adopts the socket.
    os.makedirs(os.path.join(RUNTIME_DIR, "np"), mode=0o700, exist_ok=True)
    path = os.path.join(RUNTIME_DIR, "np", "activated")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen()
    lister = subprocess.Popen([NP_PIPE, "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    service = None
    try:
        readable, _, _ = select.select([sock], [], [], 120)
        assert readable, "list connected"
        service = subprocess.Popen(
            ["/bin/sh", "-c", f'exec 3<&{sock.fileno()}; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" listen activated',
             NP_PIPE],
            pass_fds=(sock.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = lister.communicate(timeout=120)
        assert lister.returncode == 0, (out, err)
        rows = {line.split()[0]: line.split() for line in out.decode().splitlines()[1:]}
        assert rows["activated"][1] == "live", rows

        lines = [service.stdout.readline().decode().rstrip("\n") for _ in range(3)]
        assert lines[0].startswith("Listening as pipe “activated”"), lines
        assert lines[1].startswith("client 1 connected"), lines
        assert lines[2] == "client 1 disconnected", lines
    finally:
        if service is not None:
            service.send_signal(signal.SIGINT)
            service.wait(timeout=120)
        sock.close()
        os.unlink(path)
        if os.path.exists(path + ".lock"):
            os.unlink(path + ".lock")


@test
def variants_from_the_shell():
    listener = Listener("typed", "--variant", "--echo")
    result = run("send", "--variant", "--wait", "1", "typed", '("uptime", <"">)')
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: ('uptime', <''>)\n", result.stdout
    listener.expect(lambda l: l.startswith("client 1 connected"), "connected")
    assert listener.line() == "client 1: ('uptime', <''>)"
    assert listener.line() == "client 1 disconnected"

    # Not a GVariant: shown as it is.
    assert run("send", "typed", "plain text").returncode == 0
    listener.expect(lambda l: l.startswith("client 2 connected"), "connected")
    assert listener.line() == "client 2: plain text"

    result = run("request", "--variant", "typed", "{'answer': <uint32 42>}")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: {'answer': <uint32 42>}\n", result.stdout
    listener.expect(lambda l: l.startswith("client 3 request: "), "request")

    result = run("send", "--variant", "typed", "(1,")
    assert result.returncode == 2, result
    assert "not the text of a GVariant" in result.stderr.decode(), result.stderr
    listener.stop()


@test
def usage_errors_exit_2():
    for args in ([], ["bogus"], ["send"], ["ping"], ["ping", "-c", "0", "x"],
                 ["listen", "--raw", "--hex"], ["listen", "a", "b"], ["send", "--no-such-option", "x"],
                 ["list", "extra"], ["send", "--timeout", "1", "x", "m"],
                 ["send", "--wait", "1", "--timeout", "soon", "x", "m"],
                 ["ping", "--timeout", "-1", "x"], ["request"], ["request", "x"],
                 ["request", "x", "one", "two"], ["request", "--timeout", "soon", "x", "m"],
                 ["listen", "--raw", "--full"], ["listen", "--hex", "--variant"],
                 ["request", "--variant", "x", "(1,"], ["send", "--variant", "x", "nope"],
                 ["listen", "--max-clients", "-1"]):
        result = run(*args)
        assert result.returncode == 2, (args, result)
        assert result.stderr, (args, "says why")


@test
def send_to_a_missing_name_exits_1():
    result = run("send", "nobody-home", "hello")
    assert result.returncode == 1, result
    error = result.stderr.decode()
    assert "nobody-home" in error and "No server" in error, error

    result = run("ping", "../bad")
    assert result.returncode == 1, result
    assert "not a valid pipe name" in result.stderr.decode(), result.stderr


@test
def broken_stdout_ends_quietly():
    listener = Listener("quiet")
    listener.process.stdout.close()
    status = listener.process.wait(timeout=120)
    assert status == 0, status
    assert listener.process.stderr.read() == b"", "nothing on stderr"
    assert not os.path.exists(listener.path), "the socket file was removed"


@test
def demo_runs_its_five_flows():
    result = run("demo")
    assert result.returncode == 0, result
    out = result.stdout.decode()
    for flow in range(1, 6):
        assert f"Flow {flow}:" in out, f"flow {flow} missing"
    assert "all flows done" in out


@test
def demo_server_and_clients_agree_on_numbers():
    result = run("demo")
    assert result.returncode == 0, result
    lines = result.stdout.decode().splitlines()

    # Client id to pid, as the server saw the connections...
    server_ids = {}
    for line in lines:
        m = re.match(r"\[server\] +Flow 2: client (\d+) connected \(pid (\d+),", line)
        if m:
            server_ids[m[1]] = m[2]
    # ... and as each client process reports itself.
    client_ids = {}
    for line in lines:
        m = re.match(r"\[client (\d+)\] +Flow 2: connected to pipe “[^”]+” \(pid (\d+)\); "
                     r"the server calls me client (\d+)$", line)
        if m:
            assert m[1] == m[3], line
            client_ids[m[1]] = m[2]
    assert len(server_ids) == 3, lines
    assert client_ids == server_ids, (client_ids, server_ids)

    # Every line a client prints carries a number the server gave out, and
    # the relayed greetings name the same process the server numbered.
    received = 0
    for line in lines:
        if line.startswith("[client"):
            assert re.match(r"\[client (\d+)\]", line)[1] in server_ids, line
        for m in re.finditer(r"client (\d+) says:? “?hello from process (\d+)", line):
            assert server_ids[m[1]] == m[2], line
            received += line.startswith("[server]")
    # How many relays arrive depends on who is still connected; the server
    # receives all three greetings.
    assert received == 3, lines


# TCP and TLS, on loopback only, with certificates made here.

def make_certificate(stem, cn="np-test"):
    """A self-signed certificate naming IP 127.0.0.1 and its key, as PEM
    files; with openssl, or GnuTLS's certtool."""
    cert = os.path.join(RUNTIME_DIR, f"{stem}-cert.pem")
    key = os.path.join(RUNTIME_DIR, f"{stem}-key.pem")
    if shutil.which("openssl"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=120)
    elif shutil.which("certtool"):
        template = os.path.join(RUNTIME_DIR, f"{stem}.template")
        with open(template, "w") as f:
            f.write(f'cn = "{cn}"\nip_address = "127.0.0.1"\nexpiration_days = 2\n'
                    "ca\ncert_signing_key\nsigning_key\ntls_www_server\ntls_www_client\n")
        subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key,
                        "--template", template, "--outfile", cert],
                       check=True, capture_output=True, timeout=120)
    else:
        raise Skip("neither openssl nor certtool is installed")
    return cert, key


def sha256_of(cert):
    """The fingerprint computed here, independently of np-pipe."""
    with open(cert) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


_tls_files = {}


def tls_files(stem="server"):
    """Certificates made once per run; skips when GLib has no TLS backend."""
    if stem not in _tls_files:
        cert, key = make_certificate(stem, cn=f"np-test-{stem}")
        result = run("fingerprint", cert)
        if result.returncode != 0 and b"install the glib-networking package" in result.stderr:
            raise Skip("GLib has no TLS backend (glib-networking is not installed)")
        assert result.returncode == 0, result
        _tls_files[stem] = (cert, key)
    return _tls_files[stem]


class TcpListener(Listener):
    """np-pipe listen on tcp:127.0.0.1:0, with the port it got."""

    def __init__(self, *options, host="127.0.0.1"):
        address = f"[{host}]" if ":" in host else host
        self.process = subprocess.Popen([NP_PIPE, "listen", *options, f"tcp:{address}:0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.line()
        m = re.fullmatch(r"Listening on (tcp:" + re.escape(address) + r":(\d+)) "
                         r"(?:with TLS \(certificate SHA-256 ([0-9a-f]{64})\)|without TLS)", first)
        assert m, first
        self.name, self.port, self.fingerprint = m[1], int(m[2]), m[3]
        assert self.port != 0, first

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=120)
        assert status == 0, f"listen exited with {status}"


def tls_listener(*options, host="127.0.0.1"):
    cert, key = tls_files()
    return TcpListener("--tls-certificate", cert, "--tls-key", key, *options, host=host)


@test
def fingerprint_prints_the_sha256_of_the_certificate():
    cert, key = tls_files()
    result = run("fingerprint", cert)
    assert result.returncode == 0, result
    assert result.stdout.decode() == sha256_of(cert) + "\n", (result.stdout, sha256_of(cert))

    other, _ = tls_files("client")
    result = run("fingerprint", cert, other)
    assert result.returncode == 0, result
    assert result.stdout.decode().splitlines() == [f"{sha256_of(cert)}  {cert}",
                                                   f"{sha256_of(other)}  {other}"], result.stdout

    result = run("fingerprint", key)
    assert result.returncode == 1, result
    assert result.stderr.decode().startswith(f"np-pipe: {key}: "), result.stderr

    assert run("fingerprint").returncode == 2


@test
def tls_listen_prints_its_port_and_fingerprint_and_send_pins_it():
    cert, _ = tls_files()
    listener = tls_listener("--allow-anonymous", "--echo")
    assert listener.fingerprint == sha256_of(cert), listener.fingerprint

    result = run("send", "--tls-pin", listener.fingerprint, "--wait", "1", listener.name, "hello")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: hello\n", result.stdout

    line = listener.line()
    assert re.fullmatch(r"client 1 connected \(from 127\.0\.0\.1:\d+\)", line), line
    assert listener.line() == "client 1: hello"
    assert listener.line() == "client 1 disconnected"
    listener.stop()


@test
def tls_request_and_ping_with_the_ca_or_the_pin():
    cert, _ = tls_files()
    listener = tls_listener("--allow-anonymous", "--echo")
    # openssl's way of writing it: upper case, with colons.
    colons = ":".join(listener.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()

    for trust in (["--tls-ca", cert], ["--tls-pin", listener.fingerprint], ["--tls-pin", colons]):
        result = run("request", *trust, listener.name, "status?")
        assert result.returncode == 0, (trust, result)
        assert result.stdout.decode() == "reply: status?\n", result.stdout

        result = run("ping", "-c", "3", *trust, listener.name)
        assert result.returncode == 0, (trust, result)
        out = result.stdout.decode()
        assert out.startswith(f"pipe “{listener.name}”: 3 pings, round trip min/median/max = "), out

    result = run("send", "--tls-ca", cert, listener.name, "by the CA")
    assert result.returncode == 0, result
    listener.expect(lambda l: l.endswith(": by the CA"), "the message verified by the CA")
    listener.stop()


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@test
def tls_over_ipv6_loopback():
    cert, _ = tls_files()
    if not have_ipv6_loopback():
        raise Skip("no IPv6 loopback here")
    listener = tls_listener("--allow-anonymous", "--echo", host="::1")
    result = run("request", "--tls-pin", listener.fingerprint, listener.name, "over IPv6")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: over IPv6\n", result.stdout
    line = listener.line()
    assert re.fullmatch(r"client 1 connected \(from \[::1\]:\d+\)", line), line

    # The certificate names 127.0.0.1 only: verified, it is refused for ::1.
    result = run("request", "--tls-ca", cert, listener.name, "unverified")
    assert result.returncode == 1, result
    error = result.stderr.decode()
    assert "not for the host name or address connected to" in error, error
    listener.stop()


@test
def tls_a_wrong_pin_is_refused_and_nothing_is_sent():
    listener = tls_listener("--allow-anonymous")
    wrong = "00" * 32
    result = run("send", "--tls-pin", wrong, listener.name, "secret")
    assert result.returncode == 1, result
    error = result.stderr.decode()
    assert "does not match the pinned fingerprint" in error, error
    assert error.startswith("np-pipe: ") and error.count("\n") == 1, error

    result = run("request", "--tls-pin", wrong, listener.name, "secret")
    assert result.returncode == 1, result
    assert "does not match the pinned fingerprint" in result.stderr.decode(), result

    # What arrives next is the message sent with the right pin.
    assert run("send", "--tls-pin", listener.fingerprint, listener.name, "good").returncode == 0
    line = listener.expect(lambda l: re.fullmatch(r"client \d+: .*", l), "a message")
    assert line.endswith(": good"), line
    listener.stop()


@test
def tls_an_untrusted_certificate_is_refused():
    # The certificate is self-signed: without --tls-ca or --tls-pin, the
    # system's CAs do not vouch for it.
    other, _ = tls_files("client")
    listener = tls_listener("--allow-anonymous")
    for trust in ([], ["--tls-ca", other]):
        result = run("send", *trust, listener.name, "secret")
        assert result.returncode == 1, (trust, result)
        error = result.stderr.decode()
        assert "TLS" in error and listener.name in error, error
    assert run("send", "--tls-pin", listener.fingerprint, listener.name, "good").returncode == 0
    line = listener.expect(lambda l: re.fullmatch(r"client \d+: .*", l), "a message")
    assert line.endswith(": good"), line
    listener.stop()


@test
def tls_a_server_anyone_could_use_refuses_to_start():
    cert, key = tls_files()
    result = run("listen", "--tls-certificate", cert, "--tls-key", key, "tcp:127.0.0.1:0")
    assert result.returncode == 1, result
    error = result.stderr.decode().splitlines()
    assert error[0].startswith("np-pipe: "), error
    assert error[1:] == ["np-pipe: give --allow-anonymous to serve anyone who can reach the port, "
                         "or --require-client-certificate with --tls-ca"], error
    assert result.stdout == b"", result.stdout


@test
def tls_client_certificates_required():
    client_cert, client_key = tls_files("client")
    cert, _ = tls_files()
    listener = tls_listener("--tls-ca", client_cert, "--require-client-certificate", "--echo")

    result = run("request", "--tls-pin", listener.fingerprint, "--tls-certificate", client_cert,
                 "--tls-key", client_key, listener.name, "with a certificate")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: with a certificate\n", result.stdout
    line = listener.line()
    assert re.fullmatch(r"client 1 connected \(from 127\.0\.0\.1:\d+, "
                        r"certificate “[^”]*CN=np-test-client[^”]*”\)", line), line

    # Without one, or with one the CA did not sign: refused.
    for mine in ([], ["--tls-certificate", cert, "--tls-key", tls_files()[1]]):
        result = run("request", "--tls-pin", listener.fingerprint, *mine, listener.name, "no")
        assert result.returncode == 1, (mine, result)
        assert listener.name in result.stderr.decode(), result.stderr

    result = run("request", "--tls-pin", listener.fingerprint, "--tls-certificate", client_cert,
                 "--tls-key", client_key, listener.name, "again")
    assert result.returncode == 0, result
    # The refused clients sent nothing that arrived.
    while True:
        line = listener.line()
        assert not line.endswith(" request: no"), line
        if line.endswith(" request: again"):
            break
    listener.stop()


@test
def tls_client_certificates_requested():
    client_cert, client_key = tls_files("client")
    cert, key = tls_files()
    listener = tls_listener("--tls-ca", client_cert, "--allow-anonymous")

    # Verified, not verified (the CA did not sign it), and none at all.
    for mine, shown in (([client_cert, client_key], r", certificate “[^”]*CN=np-test-client[^”]*”"),
                        ([cert, key], r", certificate “[^”]*CN=np-test-server[^”]*” \(not verified\)"),
                        (None, "")):
        options = ["--tls-certificate", mine[0], "--tls-key", mine[1]] if mine else []
        result = run("send", "--tls-pin", listener.fingerprint, *options, listener.name, "hi")
        assert result.returncode == 0, (mine, result)
        line = listener.expect(lambda l: " connected " in l, "connected")
        assert re.fullmatch(r"client \d+ connected \(from 127\.0\.0\.1:\d+" + shown + r"\)", line), \
            (mine, line)
    listener.stop()


@test
def tcp_insecure_plaintext_on_loopback_only():
    listener = TcpListener("--insecure-plaintext", "--allow-anonymous", "--echo")
    assert listener.fingerprint is None
    result = run("request", "--insecure-plaintext", listener.name, "plain")
    assert result.returncode == 0, result
    assert result.stdout.decode() == "reply: plain\n", result.stdout
    listener.stop()

    result = run("listen", "--insecure-plaintext", "--allow-anonymous", "tcp:0.0.0.0:0")
    assert result.returncode == 1, result
    assert result.stderr.decode().startswith("np-pipe: "), result.stderr


@test
def without_a_tls_backend_the_programs_say_what_to_install():
    # GIO finds no module in an empty directory: no TLS backend.
    cert, key = make_certificate("no-backend")
    env = dict(os.environ, GIO_MODULE_DIR=tempfile.mkdtemp(dir=RUNTIME_DIR))
    for args in (["fingerprint", cert],
                 ["listen", "--tls-certificate", cert, "--tls-key", key, "--allow-anonymous",
                  "tcp:127.0.0.1:0"],
                 ["send", "--tls-pin", "00" * 32, "tcp:127.0.0.1:1", "x"]):
        result = subprocess.run([NP_PIPE, *args], env=env, capture_output=True, timeout=120)
        assert result.returncode == 1, (args, result)
        error = result.stderr.decode()
        assert error.startswith("np-pipe: ") and "install the glib-networking package" in error, \
            (args, error)


@test
def tls_usage_errors_exit_2():
    cert, key = tls_files()
    for args in (["send", "--tls-pin", "00" * 32, "local-name", "x"],
                 ["listen", "--allow-anonymous", "local-name"],
                 ["listen", "--tls-key", key, "--allow-anonymous", "tcp:127.0.0.1:0"],
                 ["listen", "--tls-certificate", cert, "--require-client-certificate",
                  "tcp:127.0.0.1:0"],
                 ["ping", "--insecure-plaintext", "--tls-pin", "00" * 32, "tcp:127.0.0.1:1"]):
        result = run(*args)
        assert result.returncode == 2, (args, result)
        assert result.stderr.decode().startswith("np-pipe: "), (args, result.stderr)


@test
def help_shows_tcp_and_a_complete_example():
    for args in (["--help"], ["listen", "--help"], ["send", "--help"]):
        result = run(*args)
        assert result.returncode == 0, result
        out = result.stdout.decode()
        for piece in ("openssl req -x509", "np-pipe listen --tls-certificate cert.pem",
                      'np-pipe send --tls-pin "$(np-pipe fingerprint cert.pem)"'):
            assert piece in out, (args, piece, out)
    out = run("list", "--help").stdout.decode()
    assert "local pipes" in out and "tcp:" in out, out
    for command in ("send", "request", "ping"):
        out = run(command, "--help").stdout.decode()
        assert "--tls-pin" in out and "--tls-ca" in out, (command, out)
    out = run("listen", "--help").stdout.decode()
    for option in ("--tls-certificate", "--tls-key", "--tls-ca", "--require-client-certificate",
                   "--allow-anonymous", "--insecure-plaintext"):
        assert option in out, (option, out)


def main():
    print(f"1..{len(tests)}")
    failed = 0
    for i, func in enumerate(tests, 1):
        try:
            func()
            print(f"ok {i} {func.__name__}")
        except Skip as reason:
            print(f"ok {i} {func.__name__} # SKIP {reason}")
        except Exception:
            failed += 1
            print(f"not ok {i} {func.__name__}")
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
