#!/usr/bin/python3
# Np from Python through GObject-Introspection: real sockets, real child
# processes, the real GLib main loop.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

# A runtime directory of our own, set before GLib reads it.
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="np-python-test-")

import gi  # noqa: E402

gi.require_version("Np", "1.0")
from gi.repository import Gio, GLib, GObject, Np  # noqa: E402

MIB = 1024 * 1024


def wait_until(condition):
    """Iterates the main context until condition() holds."""
    context = GLib.MainContext.default()
    while not condition():
        context.iteration(True)


def finish_when_done(finish):
    """A callback for an _async call, and the list where it leaves the
    result of finish(result), or the GLib.Error it raised."""
    done = []

    def callback(source, result, *user_data):
        try:
            done.append((finish(result), user_data))
        except GLib.Error as error:
            done.append((error, user_data))

    return callback, done


def start_peer(argv):
    """Starts a server process that prints "ready" once it listens and
    stops when its stdin closes."""
    process = Gio.Subprocess.new(argv, Gio.SubprocessFlags.STDIN_PIPE |
                                 Gio.SubprocessFlags.STDOUT_PIPE)
    out = Gio.DataInputStream.new(process.get_stdout_pipe())
    line, _ = out.read_line_utf8(None)
    assert line == "ready", line
    return process


def stop_peer(process):
    process.get_stdin_pipe().close(None)
    return process.wait_check(None)


def memfd_with(data):
    fd = os.memfd_create("np-python-test")
    os.write(fd, data)
    return fd


def read_fd(fd):
    """What fd holds, from its start, read through a duplicate."""
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb") as f:
        return f.read()


def pattern(size, seed):
    return bytes((seed + i * 7) & 0xFF for i in range(256)) * (size // 256) + bytes(size % 256)


class Events:
    """Records what a server reports."""

    def __init__(self, server):
        self.connected = []
        self.messages = []
        self.disconnected = []
        server.connect("client-connected", self.on_connected)
        server.connect("message-received", self.on_message)
        server.connect("client-disconnected", self.on_disconnected)

    def on_connected(self, server, connection):
        self.connected.append(connection)

    def on_message(self, server, connection, message):
        self.messages.append((connection, message.get_data()))

    def on_disconnected(self, server, connection, error):
        self.disconnected.append((connection, error))


class RawPeer:
    """A socket that speaks the protocol by hand, or not at all."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.received = bytearray()

    def read_some(self):
        """Reads what is there; returns True at the end of the stream."""
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return False
        self.received += chunk
        return not chunk


class Client:
    """A client and what it receives."""

    def __init__(self, name):
        self.client = Np.PipeClient.new(name)
        self.messages = []
        self.disconnects = []
        self.client.connect("message-received", lambda c, m: self.messages.append(m))
        self.client.connect("disconnected", lambda c, e: self.disconnects.append(e))
        self.client.connect_sync(None)


class NpTestCase(unittest.TestCase):
    def setUp(self):
        self.server = Np.PipeServer.new(None)
        self.events = Events(self.server)
        self.assertTrue(self.server.start())

    def tearDown(self):
        self.server.stop()


class TestServer(NpTestCase):
    def test_generated_name_and_two_clients(self):
        name = self.server.get_name()
        self.assertTrue(name.startswith("np-"))
        self.assertEqual(self.server.props.name, name)
        self.assertTrue(os.path.exists(self.server.get_path()))
        self.assertTrue(self.server.props.running)

        a = Client(name)
        b = Client(name)
        a.client.send_data(b"from a")
        b.client.send(GLib.Bytes.new(b"from b"))
        wait_until(lambda: len(self.events.messages) == 2)

        self.assertEqual(len(self.events.connected), 2)
        self.assertEqual(self.server.get_n_connections(), 2)
        self.assertEqual(self.server.get_connections().get_n_items(), 2)
        received = {bytes(data) for _, data in self.events.messages}
        self.assertEqual(received, {b"from a", b"from b"})

        ids = [c.get_id() for c in self.events.connected]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(self.events.connected[0].get_peer_pid(), os.getpid())
        self.assertEqual(self.events.connected[0].get_peer_uid(), os.getuid())

    def test_large_messages_both_ways(self):
        big = pattern(4 * MIB, 3)
        self.server.connect("message-received",
                            lambda s, connection, message: connection.send(message))
        c = Client(self.server.get_name())
        c.client.send_data(big)
        c.client.send_data(b"")
        wait_until(lambda: len(c.messages) == 2)

        self.assertEqual(len(self.events.messages), 2)
        self.assertEqual(bytes(self.events.messages[0][1]), big)
        self.assertEqual(c.messages[0].get_size(), 4 * MIB)
        self.assertEqual(bytes(c.messages[0].get_data()), big)
        self.assertEqual(c.messages[1].get_size(), 0)

    def test_all_signals(self):
        c = Client(self.server.get_name())
        wait_until(lambda: len(self.events.connected) == 1)
        connection = self.events.connected[0]
        self.assertTrue(connection.get_connected())

        # Server to client, and the client's message-received.
        self.assertTrue(connection.send_data(b"to the client"))
        self.server.broadcast(GLib.Bytes.new(b"to everyone"))
        wait_until(lambda: len(c.messages) == 2)
        self.assertEqual(bytes(c.messages[0].get_data()), b"to the client")
        self.assertEqual(bytes(c.messages[1].get_data()), b"to everyone")

        # The client closes: client-disconnected with no error.
        c.client.close()
        self.assertFalse(c.client.props.connected)
        self.assertEqual(c.disconnects, [None])
        wait_until(lambda: len(self.events.disconnected) == 1)
        self.assertIs(self.events.disconnected[0][0], connection)
        self.assertIsNone(self.events.disconnected[0][1])
        self.assertFalse(connection.get_connected())

        # The server stops: the client's disconnected signal.
        d = Client(self.server.get_name())
        wait_until(lambda: len(self.events.connected) == 2)
        self.server.stop()
        wait_until(lambda: len(d.disconnects) == 1)
        self.assertIsNone(d.disconnects[0])
        self.assertFalse(d.client.get_connected())

    def test_error_domain_and_code(self):
        client = Np.PipeClient.new("nobody-is-here")
        with self.assertRaises(GLib.Error) as caught:
            client.connect_sync(None)
        error = caught.exception
        self.assertTrue(error.matches(Np.pipe_error_quark(), Np.PipeError.NOT_FOUND))
        self.assertEqual(error.domain, "np-pipe-error-quark")
        self.assertEqual(error.code, int(Np.PipeError.NOT_FOUND))
        self.assertIn("nobody-is-here", error.message)

        with self.assertRaises(GLib.Error) as caught:
            Np.PipeServer.new("../escape").start()
        self.assertTrue(caught.exception.matches(Np.pipe_error_quark(),
                                                 Np.PipeError.INVALID_NAME))

        with self.assertRaises(GLib.Error) as caught:
            client.send_data(b"x")
        self.assertTrue(caught.exception.matches(Np.pipe_error_quark(), Np.PipeError.CLOSED))

    def test_oversize_before_the_handshake_refused(self):
        # Sent before the server's hello arrived, so before the client's
        # handshake was complete: the client is told, and the server
        # never had it as a client.
        self.server.props.max_message_size = 1024
        c = Client(self.server.get_name())
        c.client.send_data(bytes(2048))
        wait_until(lambda: c.disconnects)
        self.assertTrue(c.disconnects[0].matches(Np.pipe_error_quark(),
                                                 Np.PipeError.MESSAGE_TOO_LARGE))
        self.assertEqual(self.events.connected, [])
        self.assertEqual(self.events.disconnected, [])

    def test_peer_in_its_handshake_is_no_connection(self):
        # A peer that connects and says nothing: no row in the model, not
        # counted, and dropped at the handshake deadline without a word.
        self.server.props.handshake_timeout = 200
        model = self.server.get_connections()
        changes = []
        model.connect("items-changed", lambda m, p, r, a: changes.append((p, r, a)))

        silent = RawPeer(self.server.get_path())
        wait_until(lambda: silent.read_some() or len(silent.received) >= 12)
        self.assertEqual(bytes(silent.received[:4]), b"NPIP")
        self.assertEqual(model.get_n_items(), 0)
        self.assertEqual(self.server.get_n_connections(), 0)
        self.assertEqual(self.server.props.n_connections, 0)

        wait_until(silent.read_some)
        goodbye = silent.received[12:]
        self.assertEqual(goodbye[4], 3)
        self.assertEqual(int.from_bytes(goodbye[8:12], "big"), Np.PipeError.TIMED_OUT)
        self.assertEqual(changes, [])
        self.assertEqual(self.events.connected, [])
        self.assertEqual(self.events.disconnected, [])

        # One of version 3 is a connection once its hello arrived.
        peer = RawPeer(self.server.get_path())
        wait_until(lambda: peer.read_some() or len(peer.received) >= 12)
        self.assertEqual(model.get_n_items(), 0)
        peer.sock.sendall(b"NPIP\x03\x00\x00\x00\x00\x00\x10\x00")
        wait_until(lambda: model.get_n_items() == 1)
        self.assertEqual(changes, [(0, 0, 1)])
        self.assertEqual(self.server.get_n_connections(), 1)
        self.assertEqual(self.events.connected, [model.get_item(0)])
        peer.sock.close()
        wait_until(lambda: model.get_n_items() == 0)
        self.assertEqual(len(self.events.disconnected), 1)
        self.assertIsNone(self.events.disconnected[0][1])
        silent.sock.close()

    def test_single_instance_client_reconnects_at_once(self):
        """At max-connections 1, a client that closes and connects again at
        once is served: its old connection is not in the way."""
        self.server.props.max_connections = 1
        client = Np.PipeClient.new(self.server.get_name())
        disconnects = []
        client.connect("disconnected", lambda c, e: disconnects.append(e))
        for attempt in range(3):
            callback, done = finish_when_done(client.connect_finish)
            client.connect_async(None, callback)
            wait_until(lambda: done)
            self.assertIs(done[0][0], True, done[0][0])
            client.send_data(b"attempt %d" % attempt)
            client.close()
            self.assertEqual(disconnects, [None] * (attempt + 1))
        wait_until(lambda: len(self.events.messages) == 3)
        self.assertEqual([bytes(data) for _, data in self.events.messages],
                         [b"attempt 0", b"attempt 1", b"attempt 2"])

    def test_async_connect_and_send(self):
        client = Np.PipeClient.new(self.server.get_name())
        results = []
        client.connect_async(None, lambda c, res: results.append(c.connect_finish(res)))
        wait_until(lambda: results)
        self.assertEqual(results, [True])

        client.send_async(GLib.Bytes.new(pattern(MIB, 1)), None,
                          lambda c, res: results.append(c.send_finish(res)))
        wait_until(lambda: len(results) == 2)
        self.assertEqual(results[1], True)
        wait_until(lambda: self.events.messages)
        self.assertEqual(bytes(self.events.messages[0][1]), pattern(MIB, 1))
        client.close()

    def test_child_process_sends_and_closes(self):
        code = (
            "import gi, sys\n"
            "gi.require_version('Np', '1.0')\n"
            "from gi.repository import Np\n"
            "c = Np.PipeClient.new(sys.argv[1])\n"
            "c.connect_sync(None)\n"
            "for i in range(200):\n"
            "    c.send_data(str(i).encode() * (i * 50 + 1))\n"
            "c.close()\n"
        )
        process = Gio.Subprocess.new([sys.executable, "-c", code, self.server.get_name()],
                                     Gio.SubprocessFlags.NONE)
        pid = int(process.get_identifier())
        done = []
        process.wait_check_async(None, lambda p, res: done.append(p.wait_check_finish(res)))
        wait_until(lambda: done and self.events.disconnected)

        self.assertEqual(done, [True])
        self.assertIsNone(self.events.disconnected[0][1])
        self.assertEqual(self.events.connected[0].get_peer_pid(), pid)
        sent = [str(i).encode() * (i * 50 + 1) for i in range(200)]
        self.assertEqual([bytes(data) for _, data in self.events.messages], sent)


class TestRequests(NpTestCase):
    """Requests and replies, in both directions."""

    def answer_with(self, answer):
        """Has the server answer each request with answer(request)."""
        def on_request(server, connection, request):
            answer(request)
            return True
        self.server.connect("request-received", on_request)

    def test_request_async_with_callback(self):
        seen = []

        def on_request(server, connection, request):
            seen.append((connection, request.get_connection(), request.get_answered()))
            request.reply_data(b"re: " + request.get_message().get_data())
            seen.append(request.get_answered())
            return True

        self.server.connect("request-received", on_request)
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(GLib.Bytes.new(b"hello"), None, callback, "extra")
        wait_until(lambda: done)

        reply, user_data = done[0]
        self.assertIsInstance(reply, GLib.Bytes)
        self.assertEqual(reply.get_data(), b"re: hello")
        self.assertEqual(user_data, ("extra",))
        connection, request_connection, answered = seen[0]
        self.assertIs(request_connection, connection)
        self.assertFalse(answered)
        self.assertTrue(seen[1])
        self.assertEqual(self.events.messages, [], "a request is no message")

    def test_many_requests_in_flight_answered_in_any_order(self):
        held = []
        self.answer_with(held.append)
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        for i in range(10):
            c.client.request_async(GLib.Bytes.new(b"%d" % i), None, callback, i)
        wait_until(lambda: len(held) == 10)

        # Answered later, last first, from the main loop.
        def answer_all():
            for request in reversed(held):
                request.reply(request.get_message())
            held.clear()
        GLib.idle_add(answer_all)
        wait_until(lambda: len(done) == 10)
        self.assertEqual(sorted((user_data[0], reply.get_data()) for reply, user_data in done),
                         [(i, b"%d" % i) for i in range(10)])

    def test_pending_requests_bounded(self):
        self.assertEqual(self.server.props.max_pending_requests, 4096)
        self.assertEqual(self.server.props.max_pending_request_bytes, 64 * MIB)
        self.server.props.max_pending_requests = 2
        held = []
        self.answer_with(held.append)
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        for i in range(3):
            c.client.request_async(GLib.Bytes.new(b"%d" % i), None, callback, i)
        wait_until(lambda: done)
        error, (index,) = done[0]
        self.assertEqual(index, 2)
        self.assertTrue(error.matches(Np.pipe_error_quark(), Np.PipeError.TOO_MANY_REQUESTS))
        self.assertEqual(len(held), 2)
        for request in held:
            request.reply(request.get_message())
        held.clear()
        wait_until(lambda: len(done) == 3)

    def test_reply_data_with_bytes(self):
        replies = {b"binary": b"\x00\xff\x00 binary", b"empty": b""}
        self.answer_with(lambda r: r.reply_data(replies[r.get_message().get_data()]))
        c = Client(self.server.get_name())
        for ask, expected in replies.items():
            callback, done = finish_when_done(c.client.request_finish)
            c.client.request_async(GLib.Bytes.new(ask), None, callback)
            wait_until(lambda: done)
            reply = done[0][0]
            self.assertEqual(reply.get_size(), len(expected))
            self.assertEqual(bytes(reply.get_data() or b""), expected)

    def test_error_reply_keeps_domain_and_code(self):
        self.answer_with(lambda r: r.reply_error_literal(Gio.io_error_quark(),
                                                         Gio.IOErrorEnum.NOT_FOUND,
                                                         "no such thing"))
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(GLib.Bytes.new(b"where?"), None, callback)
        wait_until(lambda: done)
        error = done[0][0]
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND))
        self.assertEqual(error.domain, "g-io-error-quark")
        self.assertEqual(error.code, int(Gio.IOErrorEnum.NOT_FOUND))
        self.assertEqual(error.message, "no such thing")

    def test_error_reply_with_a_glib_error(self):
        denied = GLib.Error.new_literal(Gio.io_error_quark(), "denied",
                                        Gio.IOErrorEnum.PERMISSION_DENIED)
        self.answer_with(lambda r: r.reply_error(denied))
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(GLib.Bytes.new(b"may I?"), None, callback)
        wait_until(lambda: done)
        error = done[0][0]
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.PERMISSION_DENIED))
        self.assertEqual(error.message, "denied")

    def test_unhandled_and_dropped_requests(self):
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(GLib.Bytes.new(b"anyone?"), None, callback)
        wait_until(lambda: done)
        self.assertTrue(done[0][0].matches(Np.pipe_error_quark(), Np.PipeError.NOT_SUPPORTED))

        # Taken, never answered: the last reference gone answers it.
        self.server.connect("request-received", lambda server, connection, request: True)
        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(GLib.Bytes.new(b"anyone?"), None, callback)
        wait_until(lambda: done)
        self.assertTrue(done[0][0].matches(Np.pipe_error_quark(), Np.PipeError.FAILED))

    def test_server_asks_the_client(self):
        def on_request(client, request):
            # The client's own end of the connection it came over.
            self.assertEqual(request.get_connection(), client.get_connection())
            request.reply_data(b"client says " + request.get_message().get_data())
            return True

        c = Client(self.server.get_name())
        c.client.connect("request-received", on_request)
        wait_until(lambda: self.events.connected)
        connection = self.events.connected[0]
        callback, done = finish_when_done(connection.request_finish)
        connection.request_async(GLib.Bytes.new(b"hi"), None, callback)
        wait_until(lambda: done)
        self.assertEqual(done[0][0].get_data(), b"client says hi")

    def test_request_sync_from_a_thread_while_the_main_loop_serves(self):
        self.answer_with(lambda r: r.reply_data(b"re: " + r.get_message().get_data()))
        name = self.server.get_name()
        loop = GLib.MainLoop()
        results = []

        def worker():
            try:
                client = Np.PipeClient.new(name)
                client.connect_sync(None)
                for i in range(20):
                    results.append(client.request_sync(GLib.Bytes.new(b"%d" % i), None).get_data())
                client.close()
            except Exception as error:  # reported by the main thread
                results.append(error)
            finally:
                GLib.idle_add(loop.quit)

        thread = threading.Thread(target=worker)
        thread.start()
        loop.run()
        thread.join()
        self.assertEqual(results, [b"re: %d" % i for i in range(20)])
        self.assertEqual(self.events.messages, [])

    def test_request_timeout(self):
        held = []
        self.answer_with(held.append)
        client = Np.PipeClient(name=self.server.get_name(), request_timeout=50)
        client.connect_sync(None)
        callback, done = finish_when_done(client.request_finish)
        client.request_async(GLib.Bytes.new(b"slow"), None, callback)
        wait_until(lambda: done)
        self.assertTrue(done[0][0].matches(Np.pipe_error_quark(), Np.PipeError.TIMED_OUT))
        self.assertIn(self.server.get_name(), done[0][0].message)
        held[0].reply_data(b"too late")  # goes nowhere
        client.close()


class TestRequestsToOtherProcesses(unittest.TestCase):
    def test_request_sync_to_a_c_server(self):
        peer = os.path.join(os.environ["NP_TEST_BUILDDIR"], "np-test-peer")
        name = "c-server-for-python-requests"
        process = start_peer([peer, "serve", name])
        client = Np.PipeClient.new(name)
        client.connect_sync(None)
        # No main loop runs: request_sync reads the reply itself.
        reply = client.request_sync(GLib.Bytes.new(b"ask the C server"), None)
        self.assertEqual(reply.get_data(), b"ask the C server")
        big = pattern(MIB, 9)
        self.assertEqual(client.request_sync(GLib.Bytes.new(big), None).get_data(), big)

        # Answers and echoed messages, each in its place.
        messages = []
        client.connect("message-received", lambda c, m: messages.append(m.get_data()))
        client.send_data(b"a message")
        self.assertEqual(client.request_sync(GLib.Bytes.new(b"after it"), None).get_data(),
                         b"after it")
        wait_until(lambda: messages)
        self.assertEqual(messages, [b"a message"])
        client.close()
        self.assertTrue(stop_peer(process))

    def test_error_domain_from_another_process(self):
        # A domain this process never registered arrives as it was sent.
        code = (
            "import gi, sys\n"
            "gi.require_version('Np', '1.0')\n"
            "from gi.repository import GLib, Np\n"
            "server = Np.PipeServer.new(sys.argv[1])\n"
            "def on_request(server, connection, request):\n"
            "    request.reply_error_literal(GLib.quark_from_string('np-test-app-error'),\n"
            "                                42, 'custom trouble')\n"
            "    return True\n"
            "server.connect('request-received', on_request)\n"
            "server.start()\n"
            "loop = GLib.MainLoop()\n"
            "GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IO_HUP | GLib.IO_IN,\n"
            "                  lambda *args: loop.quit())\n"
            "print('ready', flush=True)\n"
            "loop.run()\n"
        )
        name = "python-server-with-its-own-errors"
        process = start_peer([sys.executable, "-c", code, name])
        client = Np.PipeClient.new(name)
        client.connect_sync(None)
        with self.assertRaises(GLib.Error) as caught:
            client.request_sync(GLib.Bytes.new(b"trouble?"), None)
        self.assertEqual(caught.exception.domain, "np-test-app-error")
        self.assertEqual(caught.exception.code, 42)
        self.assertEqual(caught.exception.message, "custom trouble")
        self.assertTrue(caught.exception.matches(GLib.quark_from_string("np-test-app-error"), 42))
        client.close()
        self.assertTrue(stop_peer(process))


class TestRefusalsWithoutMainLoop(unittest.TestCase):
    """A script that runs no main loop, against servers in other
    processes: each refusal is the error of the call that meets it."""

    PEER = os.path.join(os.environ.get("NP_TEST_BUILDDIR", ""), "np-test-peer")

    def assertPipeError(self, error, code):
        self.assertTrue(error.matches(Np.pipe_error_quark(), code), (error.message, error.code))

    def single_instance(self, name, message):
        """The single-instance pattern: be the server, or, when one runs
        already, hand it the message and go."""
        server = Np.PipeServer.new(name)
        try:
            server.start()
            self.fail("another instance listens already")
        except GLib.Error as error:
            self.assertPipeError(error, Np.PipeError.ADDRESS_IN_USE)
        client = Np.PipeClient.new(name)
        ends = []
        client.connect("disconnected", lambda c, e: ends.append(e))
        try:
            client.connect_sync(None)
            client.send_data(message)
        finally:
            client.close()
        return client, ends

    def test_single_instance_handing_over(self):
        name = "single-instance-accepting"
        process = start_peer([self.PEER, "serve", name])
        client, ends = self.single_instance(name, b"open file.txt")
        self.assertEqual(ends, [None])
        self.assertTrue(stop_peer(process))

    def test_single_instance_refused(self):
        name = "single-instance-refusing"
        process = start_peer([self.PEER, "serve-as", name, "refuse"])
        for _ in range(4):
            with self.assertRaises(GLib.Error) as caught:
                self.single_instance(name, b"important")
            self.assertPipeError(caught.exception, Np.PipeError.PERMISSION_DENIED)
            self.assertIn("refused", caught.exception.message)
        self.assertTrue(stop_peer(process))

    def test_script_against_a_refusing_server(self):
        name = "script-refused"
        process = start_peer([self.PEER, "serve-as", name, "refuse"])
        client = Np.PipeClient.new(name)
        ends = []
        client.connect("disconnected", lambda c, e: ends.append(e))
        with self.assertRaises(GLib.Error) as caught:
            client.connect_sync(None)
        self.assertPipeError(caught.exception, Np.PipeError.PERMISSION_DENIED)
        with self.assertRaises(GLib.Error) as caught:
            client.send_data(b"important")
        self.assertPipeError(caught.exception, Np.PipeError.PERMISSION_DENIED)
        client.close()
        self.assertNotIn(None, ends)
        self.assertTrue(stop_peer(process))

    def test_script_against_a_full_server(self):
        name = "script-full"
        process = start_peer([self.PEER, "serve-as", name, "full"])
        first = Np.PipeClient.new(name)
        first.connect_sync(None)
        second = Np.PipeClient.new(name)
        with self.assertRaises(GLib.Error) as caught:
            second.connect_sync(None)
        self.assertPipeError(caught.exception, Np.PipeError.TOO_MANY_CLIENTS)
        self.assertIn(name, caught.exception.message)
        with self.assertRaises(GLib.Error) as caught:
            second.request_sync(GLib.Bytes.new(b"ask"), None)
        self.assertPipeError(caught.exception, Np.PipeError.TOO_MANY_CLIENTS)
        self.assertEqual(first.request_sync(GLib.Bytes.new(b"ask"), None).get_data(), b"ask")
        first.close()
        second.close()
        self.assertTrue(stop_peer(process))

    def test_script_against_a_server_that_never_answers(self):
        name = "script-mute"
        process = start_peer([self.PEER, "serve-as", name, "mute"])
        client = Np.PipeClient.new(name)
        client.props.connect_timeout = 300
        with self.assertRaises(GLib.Error) as caught:
            client.connect_sync(None)
        self.assertPipeError(caught.exception, Np.PipeError.TIMED_OUT)
        self.assertFalse(client.props.connected)
        client.close()
        self.assertTrue(stop_peer(process))


class TestVariants(NpTestCase):
    """GLib.Variant messages: np_variant_to_message and
    Np.variant_from_message, and what sends and answers with them."""

    VALUES = [
        GLib.Variant("a{sv}", {"name": GLib.Variant("s", "np"), "size": GLib.Variant("u", 42),
                               "ratio": GLib.Variant("d", 0.5),
                               "nested": GLib.Variant("a{sv}", {"ok": GLib.Variant("b", True)})}),
        GLib.Variant("(sia{sv})", ("tuple", -7, {"x": GLib.Variant("x", -(1 << 40))})),
        GLib.Variant("ai", [1, -2, 3, 1 << 30]),
        GLib.Variant("as", ["", "grüße", "three"]),
        GLib.Variant("aay", [b"", b"\x00\x01", b"bytes"]),
        GLib.Variant("a(sv)", [("v", GLib.Variant("ms", None)), ("w", GLib.Variant("ms", "some"))]),
        GLib.Variant("()", ()),
        GLib.Variant("s", ""),
    ]

    def test_round_trip(self):
        for value in self.VALUES:
            message = Np.variant_to_message(value)
            self.assertIsInstance(message, GLib.Bytes)
            back = Np.variant_from_message(message)
            self.assertEqual(back.get_type_string(), value.get_type_string())
            self.assertTrue(back.equal(value), (value, back))
            self.assertEqual(back.unpack(), value.unpack())

    def test_message_layout(self):
        # The type string, a NUL, zeros to 8 bytes, the value (little-endian).
        data = Np.variant_to_message(GLib.Variant("(iu)", (1, 2))).get_data()
        self.assertEqual(data, b"(iu)\0\0\0\0" + b"\x01\0\0\0\x02\0\0\0")

    def test_send_variant_both_ways_and_reply_variant(self):
        def on_message(server, connection, message):
            value = Np.variant_from_message(message)
            connection.send_variant(GLib.Variant("(sv)", ("echo", value)))

        def on_request(server, connection, request):
            value = Np.variant_from_message(request.get_message())
            request.reply_variant(GLib.Variant("a{sv}", {"asked": value}))
            return True

        self.server.connect("message-received", on_message)
        self.server.connect("request-received", on_request)
        c = Client(self.server.get_name())
        for value in self.VALUES:
            c.client.send_variant(value)
        wait_until(lambda: len(c.messages) == len(self.VALUES))
        for value, message in zip(self.VALUES, c.messages):
            expected = GLib.Variant("(sv)", ("echo", value))
            self.assertTrue(Np.variant_from_message(message).equal(expected))
        received = [Np.variant_from_message(GLib.Bytes.new(data))
                    for _, data in self.events.messages]
        self.assertEqual([v.unpack() for v in received], [v.unpack() for v in self.VALUES])

        callback, done = finish_when_done(c.client.request_finish)
        c.client.request_async(Np.variant_to_message(self.VALUES[1]), None, callback)
        wait_until(lambda: done)
        reply = Np.variant_from_message(done[0][0])
        self.assertEqual(reply.get_type_string(), "a{sv}")
        self.assertEqual(reply.unpack(), {"asked": self.VALUES[1].unpack()})

    def test_malformed_variants_rejected(self):
        valid = Np.variant_to_message(GLib.Variant("(ii)", (1, 2))).get_data()
        cases = {
            "empty": b"",
            "no NUL after the type": b"(ii)",
            "not a type": b"(i\0\0\0\0\0\0" + bytes(8),
            "an indefinite type": b"a?\0\0\0\0\0\0",
            "truncated header": b"a{sv}\0",
            "truncated value": valid[:-1],
            "a value too long": valid + b"\0",
            "a string without its NUL": b"s\0\0\0\0\0\0\0abc",
        }
        for what, data in cases.items():
            with self.subTest(what), self.assertRaises(GLib.Error) as caught:
                Np.variant_from_message(GLib.Bytes.new(data))
            self.assertTrue(caught.exception.matches(Gio.io_error_quark(),
                                                     Gio.IOErrorEnum.INVALID_DATA),
                            (what, caught.exception.message))

        # A malformed variant is one bad message, not a broken connection.
        c = Client(self.server.get_name())
        c.client.send_data(b"a{sv}\0")
        c.client.send_variant(GLib.Variant("s", "still here"))
        wait_until(lambda: len(self.events.messages) == 2)
        with self.assertRaises(GLib.Error):
            Np.variant_from_message(GLib.Bytes.new(self.events.messages[0][1]))
        second = GLib.Bytes.new(self.events.messages[1][1])
        self.assertEqual(Np.variant_from_message(second).unpack(), "still here")


class TestBindingsIdioms(unittest.TestCase):
    """What Python programs do that C programs rarely do."""

    def test_created_by_property(self):
        # Np.PipeServer() and Np.PipeClient() go through g_object_new().
        server = Np.PipeServer()
        self.assertIsNone(server.get_name())
        self.assertTrue(server.start())
        self.assertTrue(server.props.name.startswith("np-"))

        client = Np.PipeClient(name=server.props.name, connect_timeout=2000)
        self.assertTrue(client.connect_sync(None))
        wait_until(lambda: server.get_n_connections() == 1)

        nameless = Np.PipeClient()
        self.assertIsNone(nameless.props.path)
        with self.assertRaises(GLib.Error) as raised:
            nameless.connect_sync(None)
        self.assertTrue(raised.exception.matches(Np.pipe_error_quark(),
                                                 Np.PipeError.INVALID_NAME))
        results = []
        nameless.connect_async(None, lambda c, res: results.append(res))
        wait_until(lambda: results)
        with self.assertRaises(GLib.Error) as raised:
            nameless.connect_finish(results[0])
        self.assertEqual(raised.exception.code, Np.PipeError.INVALID_NAME)
        client.close()
        server.stop()

    def test_connections_model_is_read_only(self):
        server = Np.PipeServer.new(None)
        self.assertTrue(server.start())
        client = Client(server.get_name())
        wait_until(lambda: server.get_n_connections() == 1)
        model = server.get_connections()
        self.assertIsInstance(model, Gio.ListModel)
        self.assertNotIsInstance(model, Gio.ListStore)
        self.assertFalse(hasattr(model, "remove_all"))
        self.assertEqual(model.get_n_items(), 1)
        client.client.close()
        server.stop()

    def test_close_async_and_peer_limit(self):
        server = Np.PipeServer(max_message_size=4096)
        self.assertTrue(server.start())
        client = Np.PipeClient.new(server.get_name())
        self.assertEqual(client.props.peer_max_message_size, 0)
        results = []
        client.connect_async(None, lambda c, res: results.append(c.connect_finish(res)))
        wait_until(lambda: results)
        self.assertEqual(client.props.peer_max_message_size, 4096)
        with self.assertRaises(GLib.Error) as raised:
            client.send_data(bytes(4097))
        self.assertEqual(raised.exception.code, Np.PipeError.MESSAGE_TOO_LARGE)

        disconnects = []
        client.connect("disconnected", lambda c, e: disconnects.append(e))
        client.send_data(b"last")
        client.close_async(None, lambda c, res: results.append(c.close_finish(res)))
        wait_until(lambda: len(results) == 2 and disconnects)
        self.assertEqual(results[1], True)
        self.assertEqual(disconnects, [None])
        self.assertFalse(client.props.connected)
        server.stop()


class TestCServer(unittest.TestCase):
    """A Python client talking to a server process written in C."""

    def test_echo_from_c_server(self):
        peer = os.path.join(os.environ["NP_TEST_BUILDDIR"], "np-test-peer")
        name = "c-server-for-python"
        process = Gio.Subprocess.new([peer, "serve", name],
                                     Gio.SubprocessFlags.STDIN_PIPE |
                                     Gio.SubprocessFlags.STDOUT_PIPE)
        out = Gio.DataInputStream.new(process.get_stdout_pipe())
        line, _ = out.read_line_utf8(None)
        self.assertEqual(line, "ready")

        c = Client(name)
        c.client.send_data(b"ping from python")
        wait_until(lambda: c.messages)
        self.assertEqual(bytes(c.messages[0].get_data()), b"ping from python")
        c.client.close()

        process.get_stdin_pipe().close(None)
        self.assertTrue(process.wait_check(None))


def stop_process(process):
    """Stops a peer process (SIGSTOP) and waits until it is stopped."""
    pid = int(process.get_identifier())
    os.kill(pid, signal.SIGSTOP)
    os.waitid(os.P_PID, pid, os.WSTOPPED)


def continue_process(process):
    os.kill(int(process.get_identifier()), signal.SIGCONT)


class TestFlowControl(unittest.TestCase):
    """queue-drained and queued-bytes on both ends, against processes
    written in C that are stopped while the queue fills."""

    LIMIT = MIB

    def test_client_pauses_on_queue_drained(self):
        peer = os.path.join(os.environ["NP_TEST_BUILDDIR"], "np-test-peer")
        name = "flow-python-client"
        process = start_peer([peer, "serve", name])
        client = Np.PipeClient.new(name)
        client.props.max_queued_bytes = self.LIMIT
        drained, notified, echoed = [], [], []
        client.connect("queue-drained", lambda c: drained.append(c.get_queued_bytes()))
        client.connect("notify::queued-bytes", lambda c, pspec: notified.append(pspec))
        client.connect("message-received", lambda c, m: echoed.append(m.get_size()))
        callback, done = finish_when_done(client.connect_finish)
        client.connect_async(None, callback)
        wait_until(lambda: done)
        self.assertIs(done[0][0], True)

        # The queued-bytes property is read-only.
        with self.assertRaises(TypeError):
            client.props.queued_bytes = 1

        stop_process(process)
        sent = 0
        for _round in range(2):
            before = len(drained)
            while client.props.queued_bytes <= self.LIMIT // 2:
                client.send(GLib.Bytes.new(pattern(64 * 1024, sent)))
                sent += 1
            self.assertEqual(client.props.queued_bytes, client.get_queued_bytes())
            continue_process(process)
            wait_until(lambda: len(drained) == before + 1)
            self.assertLessEqual(drained[-1], self.LIMIT // 4)
            stop_process(process)
        continue_process(process)

        wait_until(lambda: len(echoed) == sent)
        self.assertEqual(len(drained), 2)
        self.assertEqual(notified, [])
        client.close()
        self.assertTrue(stop_peer(process))

    def test_connection_pauses_on_queue_drained(self):
        peer = os.path.join(os.environ["NP_TEST_BUILDDIR"], "np-test-peer")
        server = Np.PipeServer.new(None)
        server.props.max_queued_bytes = self.LIMIT
        events = Events(server)
        drained = []
        server.connect("client-connected",
                       lambda s, c: c.connect("queue-drained",
                                              lambda c: drained.append(c.props.queued_bytes)))
        self.assertTrue(server.start())
        count = 40
        process = Gio.Subprocess.new([peer, "echo", server.get_name(), "7", str(count)],
                                     Gio.SubprocessFlags.NONE)
        wait_until(lambda: len(events.messages) == count)
        connection = events.connected[0]
        stop_process(process)

        paused = 0
        for _connection, data in events.messages[:-1]:
            connection.send(GLib.Bytes.new(data))
            if connection.props.queued_bytes > self.LIMIT // 2:
                before = len(drained)
                if paused == 0:
                    continue_process(process)
                paused += 1
                wait_until(lambda: len(drained) == before + 1)
                self.assertLessEqual(drained[-1], self.LIMIT // 4)
        self.assertGreater(paused, 0)

        # The last one with send_async, then a flush.
        callback, sent = finish_when_done(connection.send_finish)
        connection.send_async(GLib.Bytes.new(events.messages[-1][1]), None, callback)
        callback, flushed = finish_when_done(connection.flush_finish)
        connection.flush_async(None, callback)
        wait_until(lambda: sent and flushed)
        self.assertIs(sent[0][0], True)
        self.assertIs(flushed[0][0], True)
        self.assertTrue(connection.flush_sync(None))

        # The C client checked every echo, in order.
        self.assertTrue(process.wait_check(None))
        wait_until(lambda: events.disconnected)
        self.assertEqual(events.disconnected, [(connection, None)])
        self.assertEqual(len(drained), paused)
        server.stop()


class TestReconnect(unittest.TestCase):
    """A client with auto-reconnect comes back to a server restarted
    under the same name, and delivers what was sent meanwhile."""

    def test_server_restarted(self):
        server = Np.PipeServer.new("py-reconnect")
        events = Events(server)
        self.assertTrue(server.start())

        client = Np.PipeClient.new("py-reconnect")
        client.props.auto_reconnect = True
        client.props.reconnect_interval = 10
        connected = []
        disconnects = []
        client.connect("accepted", lambda c: connected.append(c.get_connected()))
        client.connect("disconnected", lambda c, e: disconnects.append(e))
        callback, done = finish_when_done(client.connect_finish)
        client.connect_async(None, callback)
        wait_until(lambda: done)
        self.assertIs(done[0][0], True)
        self.assertEqual(connected, [True])

        server.stop()
        wait_until(lambda: disconnects)
        self.assertFalse(client.get_connected())
        client.send_data(b"held")  # written once the server is back
        self.assertGreater(client.get_queued_bytes(), 0)

        self.assertTrue(server.start())
        wait_until(lambda: len(connected) == 2)
        client.send_data(b"after")
        wait_until(lambda: len(events.messages) == 2)
        self.assertEqual([data for _, data in events.messages], [b"held", b"after"])

        client.close()
        server.stop()

    def test_client_before_server_and_close(self):
        client = Np.PipeClient.new("py-reconnect-later")
        client.props.auto_reconnect = True
        callback, done = finish_when_done(client.connect_finish)
        client.connect_async(None, callback)
        client.send_data(b"early")

        server = Np.PipeServer.new("py-reconnect-later")
        events = Events(server)
        self.assertTrue(server.start())
        wait_until(lambda: done)
        self.assertIs(done[0][0], True)
        wait_until(lambda: events.messages)
        self.assertEqual(events.messages[0][1], b"early")

        # Without auto-reconnect, a client that lost its server fails at once.
        client.props.auto_reconnect = False
        server.stop()
        wait_until(lambda: not client.get_connected())
        with self.assertRaises(GLib.Error) as caught:
            client.send_data(b"lost")
        self.assertTrue(caught.exception.matches(Np.pipe_error_quark(), Np.PipeError.CLOSED))
        client.close()


class TestFileDescriptors(NpTestCase):
    """Descriptors with messages, as Gio.UnixFDList."""

    def test_fd_from_a_child_process_and_back(self):
        received = []
        self.server.connect("message-with-fds-received",
                            lambda s, conn, m, fds: received.append((conn, m.get_data(), fds)))
        code = (
            "import gi, os, sys\n"
            "gi.require_version('Np', '1.0')\n"
            "from gi.repository import Gio, GLib, Np\n"
            "c = Np.PipeClient.new(sys.argv[1])\n"
            "got = []\n"
            "c.connect('message-with-fds-received', lambda c, m, fds: got.append(fds.steal_fds()))\n"
            "c.connect_sync(None)\n"
            "r, w = os.pipe()\n"
            "os.write(w, b'from the child')\n"
            "os.close(w)\n"
            "fds = Gio.UnixFDList.new_from_array([r])\n"
            "c.send_with_fds(GLib.Bytes.new(b'pipe'), fds)\n"
            "while not got:\n"
            "    GLib.MainContext.default().iteration(True)\n"
            "with os.fdopen(got[0][0], 'rb') as f:\n"
            "    c.send_data(f.read())\n"
            "c.close()\n"
        )
        process = Gio.Subprocess.new([sys.executable, "-c", code, self.server.get_name()],
                                     Gio.SubprocessFlags.NONE)
        wait_until(lambda: received)
        connection, data, fds = received[0]
        self.assertEqual(bytes(data), b"pipe")
        self.assertEqual(fds.get_length(), 1)
        with os.fdopen(fds.get(0), "rb") as f:
            self.assertEqual(f.read(), b"from the child")

        # And back: a memfd the child reads and returns as a message.
        memfd = os.memfd_create("np-python-test")
        os.write(memfd, b"from the parent")
        os.lseek(memfd, 0, os.SEEK_SET)
        reply = Gio.UnixFDList.new_from_array([memfd])
        self.assertTrue(connection.send_with_fds(GLib.Bytes.new(b"memfd"), reply))
        wait_until(lambda: self.events.messages)
        self.assertEqual(bytes(self.events.messages[0][1]), b"from the parent")
        self.assertTrue(process.wait_check(None))

    def test_unhandled_fds_go_to_message_received_and_are_closed(self):
        client = Client(self.server.get_name())
        # Counted once the server holds its end of the connection.
        wait_until(lambda: self.events.connected)
        before = len(os.listdir("/proc/self/fd"))
        r, w = os.pipe()
        fds = Gio.UnixFDList.new_from_array([r])
        for _ in range(100):
            client.client.send_with_fds(GLib.Bytes.new(b"unasked"), fds)
        del fds
        os.close(w)
        wait_until(lambda: len(self.events.messages) == 100)
        self.assertEqual({bytes(data) for _, data in self.events.messages}, {b"unasked"})
        self.assertEqual(len(os.listdir("/proc/self/fd")), before)
        client.client.close()

    def test_request_and_reply_with_memfds(self):
        asked = []

        def on_request(server, connection, request):
            fds = request.get_fd_list()
            asked.append(read_fd(fds.peek_fds()[0]))
            answer = memfd_with(b"answer to " + asked[-1])
            reply = Gio.UnixFDList.new_from_array([answer])
            request.reply_with_fds(request.get_message(), reply)
            return True

        self.server.connect("request-received", on_request)
        client = Client(self.server.get_name())
        callback, done = finish_when_done(client.client.request_with_fds_finish)
        fds = Gio.UnixFDList.new_from_array([memfd_with(b"the client's memfd")])
        client.client.request_with_fds_async(GLib.Bytes.new(b"open"), fds, None, callback)
        wait_until(lambda: done)
        (reply, reply_fds), _ = done[0]
        self.assertEqual(reply.get_data(), b"open")
        self.assertEqual(asked, [b"the client's memfd"])
        self.assertEqual(reply_fds.get_length(), 1)
        self.assertEqual(read_fd(reply_fds.peek_fds()[0]), b"answer to the client's memfd")

        # A plain request, asked with the same call, gets no list.
        self.server.disconnect_by_func(on_request)
        self.server.connect("request-received",
                            lambda s, c, r: r.reply_with_fds(r.get_message(), None) or True)
        callback, done = finish_when_done(client.client.request_with_fds_finish)
        client.client.request_with_fds_async(GLib.Bytes.new(b"plain"), None, None, callback)
        wait_until(lambda: done)
        (reply, reply_fds), _ = done[0]
        self.assertEqual(reply.get_data(), b"plain")
        self.assertIsNone(reply_fds)
        client.client.close()

    def test_request_sync_with_a_memfd_to_a_c_server(self):
        peer = os.path.join(os.environ["NP_TEST_BUILDDIR"], "np-test-peer")
        name = "c-server-for-python-fds"
        process = start_peer([peer, "serve", name])
        client = Np.PipeClient.new(name)
        client.connect_sync(None)
        # The C server answers with the request's message and descriptors.
        fds = Gio.UnixFDList.new_from_array([memfd_with(b"there and back")])
        reply, reply_fds = client.request_with_fds_sync(GLib.Bytes.new(b"echo"), fds, None)
        self.assertEqual(reply.get_data(), b"echo")
        self.assertEqual(read_fd(reply_fds.peek_fds()[0]), b"there and back")
        client.close()
        self.assertTrue(stop_peer(process))

    def test_max_fds_per_message(self):
        # The server announces its limit in its handshake: a send past it
        # fails at the call, and the connection goes on.
        self.assertEqual(self.server.props.max_fds_per_message, 16)
        self.server.props.max_fds_per_message = 2
        client = Np.PipeClient.new(self.server.get_name())
        opened = []
        client.connect("accepted", lambda c: opened.append(True))
        client.connect_sync(None)
        wait_until(lambda: opened)
        fds = Gio.UnixFDList.new_from_array([os.memfd_create("x") for _ in range(3)])
        with self.assertRaises(GLib.Error) as raised:
            client.send_with_fds(GLib.Bytes.new(b"three"), fds)
        self.assertTrue(raised.exception.matches(Np.pipe_error_quark(),
                                                 Np.PipeError.MESSAGE_TOO_LARGE))
        two = Gio.UnixFDList.new_from_array([os.memfd_create("x") for _ in range(2)])
        client.send_with_fds(GLib.Bytes.new(b"two"), two)
        client.send_data(b"after")
        wait_until(lambda: len(self.events.messages) == 2)
        self.assertEqual([bytes(m) for _, m in self.events.messages],
                         [b"two", b"after"])
        self.assertEqual(self.events.disconnected, [])
        client.close()


class TestCallsForBindings(NpTestCase):
    """The API as Python reads it: bytes in, plain results out, real
    type names, close() that raises."""

    def test_request_data_and_reply_data_with_bytes(self):
        def on_request(server, connection, request):
            request.reply_data(b"re: " + request.get_message().get_data())
            return True

        def client_answers(client, request):
            request.reply_data(b"client: " + request.get_message().get_data())
            return True

        self.server.connect("request-received", on_request)
        c = Client(self.server.get_name())
        c.client.connect("request-received", client_answers)
        wait_until(lambda: len(self.events.connected) == 1)

        callback, done = finish_when_done(c.client.request_data_finish)
        c.client.request_data_async(b"plain bytes", None, callback)
        wait_until(lambda: done)
        self.assertEqual(done[0][0].get_data(), b"re: plain bytes")

        connection = self.events.connected[0]
        callback, done = finish_when_done(connection.request_data_finish)
        connection.request_data_async(b"to you", None, callback)
        wait_until(lambda: done)
        self.assertEqual(done[0][0].get_data(), b"client: to you")

        # The blocking twin, from a thread while this one serves.
        replies = []

        loop = GLib.MainLoop()

        def worker():
            try:
                replies.append(c.client.request_data_sync(b"blocking", None))
            finally:
                GLib.idle_add(loop.quit)

        thread = threading.Thread(target=worker)
        thread.start()
        loop.run()
        thread.join()
        self.assertEqual(replies[0].get_data(), b"re: blocking")
        c.client.close()

    def test_ping_finish_returns_the_round_trip(self):
        c = Client(self.server.get_name())
        callback, done = finish_when_done(c.client.ping_finish)
        c.client.ping_async(None, callback)
        wait_until(lambda: done)
        usec = done[0][0]
        self.assertIsInstance(usec, int)
        self.assertGreaterEqual(usec, 0)
        c.client.close()

        # A failed ping raises, as any _finish does.
        callback, done = finish_when_done(c.client.ping_finish)
        c.client.ping_async(None, callback)
        wait_until(lambda: done)
        self.assertTrue(done[0][0].matches(Np.pipe_error_quark(), Np.PipeError.CLOSED))

    def test_connections_and_connection_names(self):
        c = Client(self.server.get_name())
        wait_until(lambda: len(self.events.connected) == 1)
        model = self.server.get_connections()
        self.assertIsInstance(model, Np.PipeConnectionList)
        self.assertIsInstance(model, Gio.ListModel)
        self.assertEqual(type(model).__name__, "PipeConnectionList")
        self.assertEqual(model.__gtype__.name, "NpPipeConnectionList")
        self.assertNotIn("__gi__", repr(model))

        connection = model.get_item(0)
        self.assertTrue(connection.get_connected())
        self.assertTrue(connection.props.connected)
        self.assertFalse(hasattr(connection, "is_connected"))
        self.assertEqual(connection.get_max_queued_bytes(), self.server.props.max_queued_bytes)
        self.assertEqual(connection.props.max_queued_bytes, self.server.props.max_queued_bytes)

        # The client's signal for each accepted connection does not share
        # its name with the connected property.
        self.assertEqual(GObject.signal_lookup("connected", Np.PipeClient), 0)
        self.assertNotEqual(GObject.signal_lookup("accepted", Np.PipeClient), 0)
        c.client.close()

    def test_close_raises_when_queued_messages_were_dropped(self):
        # A server that accepts and never reads.
        client = Np.PipeClient(name="never-reads-%d" % os.getpid(), close_timeout=100)
        os.makedirs(os.path.dirname(client.get_path()), mode=0o700, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(client.get_path())
        listener.listen(1)
        try:
            disconnects = []
            client.connect("disconnected", lambda c, e: disconnects.append(e))
            client.connect_sync(None)
            big = bytes(4 * MIB)
            client.send_data(big)
            client.send_data(big)
            with self.assertRaises(GLib.Error) as raised:
                client.close()
            self.assertTrue(raised.exception.matches(Np.pipe_error_quark(),
                                                     Np.PipeError.TIMED_OUT))
            self.assertIn("dropped", raised.exception.message)
            self.assertFalse(client.get_connected())
            self.assertEqual(len(disconnects), 1)
            # Closed now: closing again succeeds.
            self.assertTrue(client.close())
        finally:
            listener.close()
            os.unlink(client.get_path())

    def test_check_version(self):
        major = Np.get_major_version()
        self.assertEqual((major, Np.get_minor_version(), Np.get_micro_version()),
                         (Np.MAJOR_VERSION, Np.MINOR_VERSION, Np.MICRO_VERSION))
        self.assertIsNone(Np.check_version(major, 0, 0))
        self.assertIsNone(Np.check_version(major, Np.get_minor_version(), Np.get_micro_version()))
        self.assertIn("too old", Np.check_version(major + 1, 0, 0))
        self.assertIn("too old", Np.check_version(major, Np.get_minor_version() + 1, 0))


def make_certificate(directory, cn):
    """A self-signed certificate naming IP 127.0.0.1, and its key, made
    now as PEM files with openssl or GnuTLS's certtool; None without
    either."""
    cert = os.path.join(directory, f"{cn}-cert.pem")
    key = os.path.join(directory, f"{cn}-key.pem")
    if shutil.which("openssl"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
    elif shutil.which("certtool"):
        template = os.path.join(directory, f"{cn}.template")
        with open(template, "w") as f:
            f.write(f'cn = "{cn}"\nip_address = "127.0.0.1"\nexpiration_days = 2\n'
                    "ca\ncert_signing_key\nsigning_key\ntls_www_server\ntls_www_client\n")
        subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                       check=True, capture_output=True)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key,
                        "--template", template, "--outfile", cert],
                       check=True, capture_output=True)
    else:
        return None
    return cert, key


def fingerprint_of(certificate):
    return hashlib.sha256(bytes(certificate.props.certificate)).hexdigest()


class TestTls(unittest.TestCase):
    """A pipe over TCP on 127.0.0.1 with TLS, and a self-signed certificate
    made for the test."""

    @classmethod
    def setUpClass(cls):
        if not Gio.TlsBackend.get_default().supports_tls():
            raise unittest.SkipTest("GLib has no TLS backend: glib-networking is not installed")
        cls.directory = tempfile.mkdtemp(prefix="np-python-tls-")
        files = make_certificate(cls.directory, "np-python-server")
        if files is None:
            raise unittest.SkipTest("neither openssl nor certtool is installed")
        cls.cert_path, cls.key_path = files
        cls.certificate = Gio.TlsCertificate.new_from_files(cls.cert_path, cls.key_path)
        cls.fingerprint = fingerprint_of(cls.certificate)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.directory, ignore_errors=True)

    def setUp(self):
        self.server = Np.PipeServer.new("tcp:127.0.0.1:0")
        self.server.props.tls_certificate = self.certificate
        self.server.props.allow_anonymous = True
        self.names = []
        self.server.connect("notify::name", lambda s, pspec: self.names.append(s.props.name))
        self.events = Events(self.server)
        self.server.connect("message-received",
                            lambda s, connection, message: connection.send_data(
                                b"echo: " + message.get_data()))

        def on_request(server, connection, request):
            request.reply_data(b"re: " + request.get_message().get_data())
            return True

        self.server.connect("request-received", on_request)
        self.assertTrue(self.server.start())
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        self.server.stop()

    def client(self, **properties):
        client = Np.PipeClient.new(self.server.get_name())
        for name, value in properties.items():
            client.set_property(name, value)
        self.clients.append(client)
        return client

    def connect(self, client):
        """Connects while this thread's main loop serves the handshake;
        returns True or the GLib.Error."""
        callback, done = finish_when_done(client.connect_finish)
        client.connect_async(None, callback)
        wait_until(lambda: done)
        return done[0][0]

    def round_trip(self, client):
        messages = []
        client.connect("message-received", lambda c, m: messages.append(m.get_data()))
        client.send_data(b"over TLS")
        wait_until(lambda: messages)
        self.assertEqual(messages, [b"echo: over TLS"])
        self.assertEqual(self.events.messages[-1][1], b"over TLS")

        callback, done = finish_when_done(client.request_data_finish)
        client.request_data_async(b"a request", None, callback)
        wait_until(lambda: done)
        self.assertEqual(done[0][0].get_data(), b"re: a request")

    def test_the_name_gets_the_port(self):
        name = self.server.get_name()
        m = re.fullmatch(r"tcp:127\.0\.0\.1:(\d+)", name)
        self.assertIsNotNone(m, name)
        self.assertNotEqual(int(m[1]), 0)
        self.assertEqual(self.names, [name])
        address = self.server.get_address()
        self.assertIsInstance(address, Gio.InetSocketAddress)
        self.assertEqual(address.get_port(), int(m[1]))
        self.assertEqual(address.get_address().to_string(), "127.0.0.1")
        self.assertIsNone(self.server.get_path())

    def test_round_trip_with_a_pin(self):
        client = self.client(tls_pin=self.fingerprint)
        self.assertIs(self.connect(client), True)
        self.round_trip(client)

        connection = self.events.connected[0]
        self.assertEqual(connection.get_peer_pid(), -1)
        remote = connection.get_remote_address()
        self.assertIsInstance(remote, Gio.InetSocketAddress)
        self.assertEqual(remote.get_address().to_string(), "127.0.0.1")
        self.assertIsNone(connection.get_peer_certificate())

    def test_round_trip_with_a_database(self):
        client = self.client(tls_database=Gio.TlsFileDatabase.new(self.cert_path))
        accepts = []
        client.connect("accept-certificate", lambda c, cert, errors: accepts.append(errors) or False)
        self.assertIs(self.connect(client), True)
        self.assertEqual(accepts, [], "a certificate the database vouches for needs no signal")
        self.round_trip(client)

    def test_accept_certificate_from_python_accepts_a_self_signed_one(self):
        client = self.client()
        seen = []

        def accept(client, certificate, errors):
            seen.append((certificate, errors))
            return certificate.is_same(self.certificate)

        client.connect("accept-certificate", accept)
        self.assertIs(self.connect(client), True)
        self.assertEqual(len(seen), 1)
        certificate, errors = seen[0]
        self.assertEqual(fingerprint_of(certificate), self.fingerprint)
        self.assertTrue(errors & Gio.TlsCertificateFlags.UNKNOWN_CA, errors)
        self.round_trip(client)

    def test_accept_certificate_refusing_fails_the_connect(self):
        client = self.client()
        client.connect("accept-certificate", lambda c, cert, errors: False)
        error = self.connect(client)
        self.assertIsInstance(error, GLib.Error)
        self.assertIn("TLS", error.message)
        self.assertIn(self.server.get_name(), error.message)
        self.assertFalse(client.get_connected())

    def test_a_wrong_pin_is_refused(self):
        client = self.client(tls_pin="00" * 32)
        error = self.connect(client)
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(Np.pipe_error_quark(), Np.PipeError.PERMISSION_DENIED),
                        error)
        self.assertIn("does not match the pinned fingerprint", error.message)
        self.assertEqual(self.events.messages, [])

    def test_client_certificates_required(self):
        files = make_certificate(self.directory, "np-python-client")
        client_certificate = Gio.TlsCertificate.new_from_files(*files)
        server = Np.PipeServer.new("tcp:127.0.0.1:0")
        server.props.tls_certificate = self.certificate
        authorities = Gio.TlsFileDatabase.new(files[0])
        server.props.tls_database = authorities
        server.props.tls_authentication_mode = Gio.TlsAuthenticationMode.REQUIRED
        events = Events(server)
        self.assertTrue(server.start())
        try:
            client = Np.PipeClient.new(server.get_name())
            client.props.tls_pin = self.fingerprint
            client.props.tls_certificate = client_certificate
            self.clients.append(client)
            self.assertIs(self.connect(client), True)
            wait_until(lambda: events.connected)
            connection = events.connected[0]
            self.assertEqual(fingerprint_of(connection.get_peer_certificate()),
                             fingerprint_of(client_certificate))
            self.assertEqual(connection.get_peer_certificate_errors(), 0)

            # Without a certificate, or with one the database does not
            # vouch for: refused.
            for mine in (None, self.certificate):
                refused = Np.PipeClient.new(server.get_name())
                refused.props.tls_pin = self.fingerprint
                if mine is not None:
                    refused.props.tls_certificate = mine
                self.assertIsInstance(self.connect(refused), GLib.Error)
            self.assertEqual(len(events.connected), 1)
        finally:
            server.stop()

    def test_anonymous_server_refuses_to_start(self):
        server = Np.PipeServer.new("tcp:127.0.0.1:0")
        server.props.tls_certificate = self.certificate
        with self.assertRaises(GLib.Error) as raised:
            server.start()
        self.assertTrue(raised.exception.matches(Np.pipe_error_quark(),
                                                 Np.PipeError.PERMISSION_DENIED),
                        raised.exception)
        self.assertFalse(server.props.running)


if __name__ == "__main__":
    unittest.main(verbosity=2)
