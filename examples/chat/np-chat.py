#!/usr/bin/python3
# np-chat.py: a small chat over Np; the server relays every message to all
# the other clients. Talks to np-chat (C) and np-chat.js as well.
#
#   np-chat.py server [NAME]          serve until Ctrl-C
#   np-chat.py client [NAME] [NICK]   send each line of stdin; print what comes
#
# A client line starting with "/" is a command, sent as a request that the
# server answers: "/who" lists the clients connected, one per line.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import getpass
import signal
import sys

import gi

gi.require_version("Np", "1.0")
from gi.repository import Gio, GLib, Np  # noqa: E402

DEFAULT_NAME = "np-chat"


def run_server(name):
    loop = GLib.MainLoop()
    server = Np.PipeServer.new(name)

    def on_connected(server, connection):
        print(f"joined: client {connection.get_id()} (pid {connection.get_peer_pid()})", flush=True)

    def on_message(server, sender, message):
        text = message.get_data().decode("utf-8", "replace")
        print(f"client {sender.get_id()}: {text}", flush=True)
        for connection in server.get_connections():
            if connection != sender:
                connection.send(message)

    def on_request(server, asker, request):
        # Answers "/who" with the clients connected, in the order they came.
        command = request.get_message().get_data().decode("utf-8", "replace")
        print(f"client {asker.get_id()} asks: {command}", flush=True)
        if command != "/who":
            request.reply_error_literal(Np.pipe_error_quark(), Np.PipeError.NOT_SUPPORTED,
                                        f"unknown command “{command}”; try /who")
            return True
        connections = list(server.get_connections())
        lines = [f"who: {len(connections)} connected"]
        for connection in connections:
            you = ", you" if connection == asker else ""
            lines.append(f"client {connection.get_id()} (pid {connection.get_peer_pid()}{you})")
        request.reply_data("\n".join(lines).encode())
        return True

    def on_disconnected(server, connection, error):
        reason = f": {error.message}" if error else ""
        print(f"left: client {connection.get_id()}{reason}", flush=True)

    server.connect("client-connected", on_connected)
    server.connect("message-received", on_message)
    server.connect("request-received", on_request)
    server.connect("client-disconnected", on_disconnected)
    try:
        server.start()
    except GLib.Error as error:
        print(f"np-chat: {error.message}", file=sys.stderr)
        return 1

    print(f"listening on {server.get_name()}", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    loop.run()
    server.stop()
    return 0


def run_client(name, nick):
    loop = GLib.MainLoop()
    status = 0
    pending = 0  # commands waiting for their answer
    input_done = False
    client = Np.PipeClient.new(name)
    lines = Gio.DataInputStream.new(Gio.UnixInputStream.new(0, False))

    def close_when_done():
        if input_done and pending == 0:
            client.close()  # writes out what is queued

    def on_answer(client, result):
        nonlocal pending
        try:
            print(client.request_finish(result).get_data().decode("utf-8", "replace"), flush=True)
        except GLib.Error as error:
            print(f"np-chat: {error.message}", file=sys.stderr, flush=True)
        pending -= 1
        close_when_done()

    def on_message(client, message):
        print(message.get_data().decode("utf-8", "replace"), flush=True)

    def on_disconnected(client, error):
        nonlocal status
        if error:
            print(f"np-chat: {error.message}", file=sys.stderr)
            status = 1
        GLib.idle_add(loop.quit)

    def on_line(stream, result):
        nonlocal status, pending, input_done
        line, _ = stream.read_line_finish_utf8(result)
        if line is None:
            input_done = True
            close_when_done()
            return
        if line.startswith("/"):
            pending += 1
            client.request_async(GLib.Bytes.new(line.encode()), None, on_answer)
            stream.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)
            return
        try:
            client.send_data(f"{nick}: {line}".encode())
        except GLib.Error as error:
            print(f"np-chat: {error.message}", file=sys.stderr)
            status = 1
            loop.quit()
            return
        stream.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)

    client.connect("message-received", on_message)
    client.connect("disconnected", on_disconnected)
    try:
        client.connect_sync(None)
    except GLib.Error as error:
        print(f"np-chat: {error.message}", file=sys.stderr)
        return 1

    lines.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)
    loop.run()
    return status


def main(argv):
    name = argv[2] if len(argv) > 2 else DEFAULT_NAME
    if len(argv) in (2, 3) and argv[1] == "server":
        return run_server(name)
    if len(argv) in (2, 3, 4) and argv[1] == "client":
        return run_client(name, argv[3] if len(argv) > 3 else getpass.getuser())
    print(f"Usage: {argv[0]} server [NAME] | client [NAME] [NICK]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
