#!/usr/bin/env python3
# np-pipe, the real binary, against real servers and clients. Prints TAP.
#
# Usage: test-np-pipe.py NP-PIPE
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback

NP_PIPE = sys.argv[1]
RUNTIME_DIR = tempfile.mkdtemp(prefix="np-pipe-test-")
os.environ["XDG_RUNTIME_DIR"] = RUNTIME_DIR
os.environ["LC_ALL"] = "C.UTF-8"

tests = []


def test(func):
    tests.append(func)
    return func


def run(*args, input=None):
    return subprocess.run([NP_PIPE, *args], input=input, capture_output=True, timeout=120)


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
def ping_a_server_without_ping_code():
    listener = Listener("pingable")
    result = run("ping", "-c", "20", "pingable")
    assert result.returncode == 0, result
    out = result.stdout.decode()
    assert out.startswith("pipe “pingable”: 20 pings, round trip min/median/max = "), out
    low, mid, high = (int(x) for x in out.split("= ")[1].split()[0].split("/"))
    assert 0 <= low <= mid <= high, out
    listener.stop()


@test
def usage_errors_exit_2():
    for args in ([], ["bogus"], ["send"], ["ping"], ["ping", "-c", "0", "x"],
                 ["listen", "--raw", "--hex"], ["listen", "a", "b"], ["send", "--no-such-option", "x"],
                 ["list", "extra"]):
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


def main():
    print(f"1..{len(tests)}")
    failed = 0
    for i, func in enumerate(tests, 1):
        try:
            func()
            print(f"ok {i} {func.__name__}")
        except Exception:
            failed += 1
            print(f"not ok {i} {func.__name__}")
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
