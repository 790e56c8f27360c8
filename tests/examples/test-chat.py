#!/usr/bin/python3
# The chat examples in C, Python and GJS talk to each other: each serves
# a client of each other kind, every line reaches the other client, and
# each client's /who gets the server's list of clients, the same from
# every server. Prints TAP.
#
# Usage: test-chat.py C-CHAT PY-CHAT JS-CHAT
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import subprocess
import sys
import tempfile

os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="np-chat-test-")
os.environ["LC_ALL"] = "C.UTF-8"


def commands(c_chat, py_chat, js_chat):
    return {
        "c": [c_chat],
        "python": ["/usr/bin/python3", py_chat],
        "gjs": ["gjs", "-m", js_chat],
    }


def start(argv, stderr=None):
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                            encoding="utf-8", bufsize=1)


def expect_line(process, predicate, what, stream=None):
    """Reads lines until one matches, and returns it; blocking reads, no
    sleeping."""
    for line in stream or process.stdout:
        if predicate(line.rstrip("\n")):
            return line.rstrip("\n")
    raise AssertionError(f"{what}: the output ended first")


def next_lines(process, count, what):
    lines = [process.stdout.readline() for _ in range(count)]
    if not all(lines):
        raise AssertionError(f"{what}: the output ended first")
    return [line.rstrip("\n") for line in lines]


def say(process, line):
    process.stdin.write(f"{line}\n")
    process.stdin.flush()


def run_case(kinds, server_kind, client_kinds, name):
    server = start(kinds[server_kind] + ["server", name])
    clients = []
    try:
        expect_line(server, lambda l: l == f"listening on {name}", "server listens")
        ids = []
        for kind in client_kinds:
            clients.append(start(kinds[kind] + ["client", name, kind], stderr=subprocess.PIPE))
            joined = expect_line(server, lambda l: l.startswith("joined: client"), f"{kind} client joins")
            ids.append(joined.split()[2])
            assert joined == f"joined: client {ids[-1]} (pid {clients[-1].pid})", joined

        a, b = clients
        say(a, f"hello from {client_kinds[0]}")
        expect_line(b, lambda l: l == f"{client_kinds[0]}: hello from {client_kinds[0]}",
                    f"{client_kinds[1]} hears {client_kinds[0]}")
        say(b, f"hello from {client_kinds[1]}")
        expect_line(a, lambda l: l == f"{client_kinds[1]}: hello from {client_kinds[1]}",
                    f"{client_kinds[0]} hears {client_kinds[1]}")

        # /who: the server's answer, printed as it is by each client.
        for asker, kind in zip(clients, client_kinds):
            say(asker, "/who")
            listed = next_lines(asker, 3, f"{kind} gets an answer to /who")
            expected = ["who: 2 connected"] + [
                f"client {id} (pid {client.pid}{', you' if client is asker else ''})"
                for id, client in zip(ids, clients)]
            assert listed == expected, f"{kind} client's /who: {listed}, not {expected}"
            expect_line(server, lambda l: l == f"client {ids[clients.index(asker)]} asks: /who",
                        f"server sees {kind}'s /who")

        # An unknown command comes back as an error, with its message.
        say(a, "/nope")
        expect_line(a, lambda l: l == "np-chat: unknown command “/nope”; try /who",
                    f"{client_kinds[0]} gets the error", a.stderr)

        for client in clients:
            client.stdin.close()
            assert client.wait() == 0, "client exits cleanly"
        for _ in clients:
            expect_line(server, lambda l: l.startswith("left: client") and ":" not in l[5:],
                        "server sees a clean leave")

        # A client whose input ends with a command waits for the answer.
        last = start(kinds[client_kinds[0]] + ["client", name, "last"])
        out, _ = last.communicate("/who\n", timeout=60)
        joined = expect_line(server, lambda l: l.startswith("joined: client"), "last client joins")
        expected = f"who: 1 connected\nclient {joined.split()[2]} (pid {last.pid}, you)\n"
        assert out == expected, f"{client_kinds[0]} client with /who on stdin: {out!r}"
        assert last.returncode == 0, "the last client exits cleanly"
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
        server.send_signal(signal.SIGTERM)
    assert server.wait() == 0, "server exits cleanly on SIGTERM"


def main():
    kinds = commands(*sys.argv[1:4])
    cases = [("c", ["python", "gjs"]), ("python", ["gjs", "c"]), ("gjs", ["c", "python"])]
    print(f"1..{len(cases)}")
    failed = 0
    for i, (server_kind, client_kinds) in enumerate(cases, 1):
        what = f"{server_kind} server with {' and '.join(client_kinds)} clients"
        try:
            run_case(kinds, server_kind, client_kinds, f"chat-{server_kind}")
            print(f"ok {i} {what}")
        except AssertionError as error:
            failed += 1
            print(f"not ok {i} {what}\n# {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
