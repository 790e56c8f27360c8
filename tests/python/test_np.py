#!/usr/bin/python3
# Np from Python through GObject-Introspection: real sockets, real child
# processes, the real GLib main loop.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys
import tempfile
import unittest

# A runtime directory of our own, set before GLib reads it.
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="np-python-test-")

import gi  # noqa: E402

gi.require_version("Np", "1.0")
from gi.repository import Gio, GLib, Np  # noqa: E402

MIB = 1024 * 1024


def wait_until(condition):
    """Iterates the main context until condition() holds."""
    context = GLib.MainContext.default()
    while not condition():
        context.iteration(True)


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
        self.assertTrue(connection.is_connected())

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
        self.assertFalse(connection.is_connected())

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

    def test_oversize_reported_to_both(self):
        self.server.props.max_message_size = 1024
        c = Client(self.server.get_name())
        c.client.send_data(bytes(2048))
        wait_until(lambda: c.disconnects and self.events.disconnected)
        self.assertTrue(c.disconnects[0].matches(Np.pipe_error_quark(),
                                                 Np.PipeError.MESSAGE_TOO_LARGE))
        self.assertTrue(self.events.disconnected[0][1].matches(
            Np.pipe_error_quark(), Np.PipeError.MESSAGE_TOO_LARGE))

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
