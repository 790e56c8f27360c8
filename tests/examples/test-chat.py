#!/usr/bin/python3
# The chat examples in C, Python and GJS talk to each other: each serves
# a client of each other kind, and every line reaches the other client.
# Prints TAP.
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


def commands(c_chat, py_chat, js_chat):
    return {
        "c": [c_chat],
        "python": ["/usr/bin/python3", py_chat],
        "gjs": ["gjs", "-m", js_chat],
    }


def start(argv):
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)


def expect_line(process, predicate, what):
    """Reads lines until one matches; blocking reads, no sleeping."""
    for line in process.stdout:
        if predicate(line.rstrip("\n")):
            return
    raise AssertionError(f"{what}: the output ended first")


def run_case(kinds, server_kind, client_kinds, name):
    server = start(kinds[server_kind] + ["server", name])
    clients = []
    try:
        expect_line(server, lambda l: l == f"listening on {name}", "server listens")
        for kind in client_kinds:
            clients.append(start(kinds[kind] + ["client", name, kind]))
            expect_line(server, lambda l: l.startswith("joined: client"), f"{kind} client joins")

        a, b = clients
        a.stdin.write(f"hello from {client_kinds[0]}\n")
        a.stdin.flush()
        expect_line(b, lambda l: l == f"{client_kinds[0]}: hello from {client_kinds[0]}",
                    f"{client_kinds[1]} hears {client_kinds[0]}")
        b.stdin.write(f"hello from {client_kinds[1]}\n")
        b.stdin.flush()
        expect_line(a, lambda l: l == f"{client_kinds[1]}: hello from {client_kinds[1]}",
                    f"{client_kinds[0]} hears {client_kinds[1]}")

        for client in clients:
            client.stdin.close()
            assert client.wait() == 0, "client exits cleanly"
        for _ in clients:
            expect_line(server, lambda l: l.startswith("left: client") and ":" not in l[5:],
                        "server sees a clean leave")
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
