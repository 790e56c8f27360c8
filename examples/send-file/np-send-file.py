#!/usr/bin/python3
# np-send-file.py: streams a file of any size through a pipe, pacing
# itself on queue-drained so that the queue stays bounded and sending
# never fails with QUEUE_FULL. Talks to np-send-file (C) as well.
#
#   np-send-file.py receive NAME OUTPUT   serve; write what one client
#                                         sends to OUTPUT, then exit
#   np-send-file.py send NAME FILE        send FILE, in 64 KiB messages
#
# Both print the size and SHA-256 of what went through.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import hashlib
import sys

import gi

gi.require_version("Np", "1.0")
from gi.repository import GLib, Np  # noqa: E402

CHUNK_SIZE = 64 * 1024
MAX_QUEUED_BYTES = 1024 * 1024


def run_receive(name, path):
    loop = GLib.MainLoop()
    checksum = hashlib.sha256()
    size = 0
    failed = False

    def on_message(server, connection, message):
        nonlocal size
        data = message.get_data()
        checksum.update(data)
        size += len(data)
        output.write(data)

    def on_disconnected(server, connection, error):
        nonlocal failed
        if error is not None:
            print(f"np-send-file: {error.message}", file=sys.stderr)
            failed = True
        loop.quit()

    with open(path, "wb") as output:
        server = Np.PipeServer.new(name)
        server.connect("message-received", on_message)
        server.connect("client-disconnected", on_disconnected)
        server.start()
        print(f"listening on {name}", flush=True)
        loop.run()

    print(f"received {size} bytes, sha256 {checksum.hexdigest()}", flush=True)
    return 1 if failed else 0


def run_send(name, path):
    checksum = hashlib.sha256()
    state = {"size": 0, "pauses": 0, "done": False, "error": None}
    client = Np.PipeClient.new(name)
    client.set_max_queued_bytes(MAX_QUEUED_BYTES)

    def send_some(*_args):
        # Sends until the queue passes half its limit, then returns: the
        # client emits queue-drained once the server has read it down to
        # a quarter, and that calls this again. Each chunk fits in the
        # half left, so sending never fails with QUEUE_FULL.
        while client.get_queued_bytes() <= MAX_QUEUED_BYTES // 2:
            chunk = source.read(CHUNK_SIZE)
            if not chunk:
                state["done"] = True  # close() writes out what is queued
                return
            checksum.update(chunk)
            state["size"] += len(chunk)
            try:
                client.send(GLib.Bytes.new(chunk))
            except GLib.Error as error:  # never QUEUE_FULL; CLOSED if the server went
                state["error"] = error.message
                state["done"] = True
                return
        state["pauses"] += 1

    def on_disconnected(client, error):
        if not state["done"]:
            state["error"] = error.message if error else "the server closed the connection"
            state["done"] = True

    client.connect("queue-drained", send_some)
    client.connect("disconnected", on_disconnected)

    with open(path, "rb") as source:
        client.connect_sync(None)
        send_some()
        context = GLib.MainContext.default()
        while not state["done"]:
            context.iteration(True)
        client.close()

    if state["error"] is not None:
        print(f"np-send-file: {state['error']}", file=sys.stderr)
        return 1
    print(f"sent {state['size']} bytes, sha256 {checksum.hexdigest()}, "
          f"paused {state['pauses']} times", flush=True)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "receive":
        return run_receive(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "send":
        return run_send(argv[2], argv[3])
    print(f"Usage: {argv[0]} receive NAME OUTPUT | send NAME FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
