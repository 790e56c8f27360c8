// Np from GJS through GObject-Introspection: real sockets, a real server
// process written in C, the real GLib main loop. Prints TAP.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import System from 'system';

// A runtime directory of our own, set before anything reads it.
GLib.setenv('XDG_RUNTIME_DIR', GLib.dir_make_tmp('np-gjs-test-XXXXXX'), true);

const {default: Np} = await import('gi://Np?version=1.0');

const MIB = 1024 * 1024;
const tests = [];
let failed = 0;

function test(name, func) {
    tests.push({name, func});
}

function assert(condition, what) {
    if (!condition)
        throw new Error(`assertion failed: ${what}`);
}

function assertEqual(actual, expected, what) {
    if (actual !== expected)
        throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

function assertBytesEqual(actual, expected, what) {
    assertEqual(actual.length, expected.length, `${what} (length)`);
    for (let i = 0; i < expected.length; i++) {
        if (actual[i] !== expected[i])
            throw new Error(`${what}: differs at byte ${i}`);
    }
}

// Iterates the main context until condition() holds.
function waitUntil(condition) {
    const context = GLib.MainContext.default();
    while (!condition())
        context.iteration(true);
}

function pattern(size, seed) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++)
        data[i] = (seed + i * 7) & 0xff;
    return data;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function startServer() {
    const server = Np.PipeServer.new(null);
    const events = {connected: [], messages: [], disconnected: []};
    server.connect('client-connected', (_s, connection) => events.connected.push(connection));
    server.connect('message-received', (_s, connection, message) =>
        events.messages.push({connection, data: message.toArray()}));
    server.connect('client-disconnected', (_s, connection, error) =>
        events.disconnected.push({connection, error}));
    assert(server.start(), 'server starts');
    return {server, events};
}

function startClient(name) {
    const client = Np.PipeClient.new(name);
    const state = {client, messages: [], disconnects: []};
    client.connect('message-received', (_c, message) => state.messages.push(message.toArray()));
    client.connect('disconnected', (_c, error) => state.disconnects.push(error));
    assert(client.connect_sync(null), 'client connects');
    return state;
}

test('generated name and two clients', () => {
    const {server, events} = startServer();
    const name = server.get_name();
    assert(name.startsWith('np-'), 'generated name');
    assert(server.get_path().startsWith(GLib.getenv('XDG_RUNTIME_DIR')), 'socket in our runtime dir');

    const a = startClient(name);
    const b = startClient(name);
    a.client.send_data(encoder.encode('from a'));
    b.client.send(new GLib.Bytes(encoder.encode('from b')));
    waitUntil(() => events.messages.length === 2);

    assertEqual(events.connected.length, 2, 'client-connected emissions');
    assertEqual(server.get_n_connections(), 2, 'n-connections');
    assertEqual(server.get_connections().get_n_items(), 2, 'connections model');
    const texts = events.messages.map(m => decoder.decode(m.data)).sort();
    assertEqual(texts.join(','), 'from a,from b', 'messages');
    assert(events.connected[0].get_id() < events.connected[1].get_id(), 'increasing ids');
    server.stop();
});

test('4 MiB messages both ways', () => {
    const {server, events} = startServer();
    server.connect('message-received', (_s, connection, message) => connection.send(message));
    const big = pattern(4 * MIB, 5);
    const c = startClient(server.get_name());
    c.client.send_data(big);
    c.client.send_data(new Uint8Array(0));
    waitUntil(() => c.messages.length === 2);

    assertBytesEqual(events.messages[0].data, big, 'server received');
    assertBytesEqual(c.messages[0], big, 'client received');
    assertEqual(c.messages[1].length, 0, 'empty message');
    server.stop();
});

test('all signals', () => {
    const {server, events} = startServer();
    const c = startClient(server.get_name());
    waitUntil(() => events.connected.length === 1);
    const connection = events.connected[0];

    assert(connection.send_data(encoder.encode('to the client')), 'send to one');
    server.broadcast(new GLib.Bytes(encoder.encode('to everyone')));
    waitUntil(() => c.messages.length === 2);
    assertEqual(decoder.decode(c.messages[0]), 'to the client', 'direct message');
    assertEqual(decoder.decode(c.messages[1]), 'to everyone', 'broadcast');

    c.client.close(null);
    assertEqual(c.disconnects.length, 1, 'client disconnected once');
    assertEqual(c.disconnects[0], null, 'clean close');
    waitUntil(() => events.disconnected.length === 1);
    assert(events.disconnected[0].connection === connection, 'same connection');
    assertEqual(events.disconnected[0].error, null, 'no error');

    const d = startClient(server.get_name());
    waitUntil(() => events.connected.length === 2);
    server.stop();
    waitUntil(() => d.disconnects.length === 1);
    assertEqual(d.disconnects[0], null, 'server stop is a clean close');
});

test('messages kept past their signal stay valid', () => {
    const {server} = startServer();
    const kept = [];
    server.connect('message-received', (_s, _connection, message) => kept.push(message));
    const c = startClient(server.get_name());
    for (let i = 0; i < 100; i++)
        c.client.send_data(encoder.encode(`message ${i}`));
    waitUntil(() => kept.length === 100);
    c.client.close(null);
    System.gc();
    kept.forEach((message, i) =>
        assertEqual(decoder.decode(message.toArray()), `message ${i}`, `message ${i}`));
    server.stop();
});

test('errors are GLib.Error in the Np domain', () => {
    const client = Np.PipeClient.new('nobody-is-here');
    let caught = null;
    try {
        client.connect_sync(null);
    } catch (e) {
        caught = e;
    }
    assert(caught instanceof GLib.Error, 'a GLib.Error');
    assert(caught.matches(Np.pipe_error_quark(), Np.PipeError.NOT_FOUND), 'NOT_FOUND');
    assert(caught.message.includes('nobody-is-here'), 'message names the pipe');

    caught = null;
    try {
        Np.PipeServer.new('../escape').start();
    } catch (e) {
        caught = e;
    }
    assert(caught?.matches(Np.pipe_error_quark(), Np.PipeError.INVALID_NAME), 'INVALID_NAME');
});

test('async connect and send', () => {
    const {server, events} = startServer();
    const client = Np.PipeClient.new(server.get_name());
    const results = [];
    client.connect_async(null, (c, res) => results.push(c.connect_finish(res)));
    waitUntil(() => results.length === 1);
    assertEqual(results[0], true, 'connected');

    client.send_async(new GLib.Bytes(pattern(MIB, 2)), null,
        (c, res) => results.push(c.send_finish(res)));
    waitUntil(() => results.length === 2);
    assertEqual(results[1], true, 'written');
    waitUntil(() => events.messages.length === 1);
    assertBytesEqual(events.messages[0].data, pattern(MIB, 2), 'received');
    client.close(null);
    server.stop();
});

test('objects created with new, as GtkBuilder does', () => {
    const server = new Np.PipeServer();
    assertEqual(server.get_name(), null, 'no name yet');
    assert(server.start(), 'server starts');
    assert(server.name.startsWith('np-'), 'generated name');

    const client = new Np.PipeClient({name: server.name, connect_timeout: 2000});
    assert(client.connect_sync(null), 'client connects');
    waitUntil(() => server.get_n_connections() === 1);

    const nameless = new Np.PipeClient();
    assertEqual(nameless.path, null, 'no path');
    let caught = null;
    try {
        nameless.connect_sync(null);
    } catch (e) {
        caught = e;
    }
    assert(caught instanceof GLib.Error, 'a GLib.Error');
    assert(caught.matches(Np.pipe_error_quark(), Np.PipeError.INVALID_NAME), 'INVALID_NAME');

    const model = server.get_connections();
    assert(model instanceof Gio.ListModel, 'a list model');
    assert(!(model instanceof Gio.ListStore), 'not a store');
    client.close(null);
    server.stop();
});

test('close_async with a promise, and the peer limit', async () => {
    Gio._promisify(Np.PipeClient.prototype, 'connect_async');
    Gio._promisify(Np.PipeClient.prototype, 'close_async');
    const server = new Np.PipeServer({max_message_size: 4096});
    assert(server.start(), 'server starts');
    const client = Np.PipeClient.new(server.name);
    assertEqual(client.peer_max_message_size, 0, 'unknown before the hello');
    assert(await client.connect_async(null), 'connects');
    assertEqual(client.peer_max_message_size, 4096, 'the server limit');
    client.send_data(encoder.encode('last'));
    assert(await client.close_async(null), 'closed with everything written');
    assert(!client.connected, 'not connected');
    server.stop();
});

test('a GJS client talks to a server process written in C', () => {
    const peer = GLib.build_filenamev([GLib.getenv('NP_TEST_BUILDDIR'), 'np-test-peer']);
    const name = 'c-server-for-gjs';
    const process = Gio.Subprocess.new([peer, 'serve', name],
        Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDOUT_PIPE);
    const out = Gio.DataInputStream.new(process.get_stdout_pipe());
    const [line] = out.read_line_utf8(null);
    assertEqual(line, 'ready', 'server ready');

    const c = startClient(name);
    c.client.send_data(encoder.encode('ping from gjs'));
    waitUntil(() => c.messages.length === 1);
    assertEqual(decoder.decode(c.messages[0]), 'ping from gjs', 'echo');
    c.client.close(null);

    process.get_stdin_pipe().close(null);
    assert(process.wait_check(null), 'server exits cleanly');
});

Gio._promisify(Np.PipeClient.prototype, 'request_async', 'request_finish');
Gio._promisify(Np.PipeConnection.prototype, 'request_async', 'request_finish');

function text(bytes) {
    return decoder.decode(bytes.toArray());
}

test('request_async with a promise, answered by a handler', async () => {
    const {server, events} = startServer();
    const seen = [];
    server.connect('request-received', (_s, connection, request) => {
        seen.push({connection, requestConnection: request.get_connection(),
            answered: request.get_answered()});
        request.reply_data(encoder.encode(`re: ${text(request.get_message())}`));
        seen.push(request.get_answered());
        return true;
    });
    const c = startClient(server.get_name());
    const reply = await c.client.request_async(new GLib.Bytes(encoder.encode('hello')), null);
    assert(reply instanceof GLib.Bytes, 'a GLib.Bytes');
    assertEqual(text(reply), 're: hello', 'the reply');
    assert(seen[0].requestConnection === seen[0].connection, 'the request knows its connection');
    assertEqual(seen[0].answered, false, 'unanswered in the handler at first');
    assertEqual(seen[1], true, 'answered after reply_data');
    assertEqual(events.messages.length, 0, 'a request is no message');

    // A Uint8Array is taken for the request's GLib.Bytes; many in flight.
    const replies = await Promise.all([0, 1, 2, 3, 4].map(i =>
        c.client.request_async(encoder.encode(`${i}`), null)));
    assertEqual(replies.map(text).join(','), 're: 0,re: 1,re: 2,re: 3,re: 4', 'replies in order');
    c.client.close(null);
    server.stop();
});

test('a handler answers later, in any order', async () => {
    const {server} = startServer();
    const held = [];
    server.connect('request-received', (_s, _connection, request) => {
        held.push(request);
        if (held.length === 3) {
            GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
                for (const r of held.reverse())
                    r.reply(new GLib.Bytes(encoder.encode(`later: ${text(r.get_message())}`)));
                return GLib.SOURCE_REMOVE;
            });
        }
        return true;
    });
    const c = startClient(server.get_name());
    const replies = await Promise.all(['a', 'b', 'c'].map(x =>
        c.client.request_async(encoder.encode(x), null)));
    assertEqual(replies.map(text).join(','), 'later: a,later: b,later: c', 'each its own reply');
    c.client.close(null);
    server.stop();
});

test('an error reply keeps its domain and code', async () => {
    const {server} = startServer();
    const c = startClient(server.get_name());
    let caught = null;
    try {
        await c.client.request_async(encoder.encode('anyone?'), null);
    } catch (e) {
        caught = e;
    }
    assert(caught?.matches(Np.PipeError, Np.PipeError.NOT_SUPPORTED), 'unhandled: NOT_SUPPORTED');

    server.connect('request-received', (_s, _connection, request) => {
        request.reply_error_literal(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND,
            'no such thing');
        return true;
    });
    caught = null;
    try {
        await c.client.request_async(encoder.encode('where?'), null);
    } catch (e) {
        caught = e;
    }
    assert(caught instanceof GLib.Error, 'a GLib.Error');
    assert(caught.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.NOT_FOUND), 'G_IO_ERROR_NOT_FOUND');
    assertEqual(GLib.quark_to_string(caught.domain), 'g-io-error-quark', 'domain');
    assertEqual(caught.code, Gio.IOErrorEnum.NOT_FOUND, 'code');
    assertEqual(caught.message, 'no such thing', 'message');
    c.client.close(null);
    server.stop();
});

test('the server asks a GJS client', async () => {
    const {server, events} = startServer();
    const c = startClient(server.get_name());
    c.client.connect('request-received', (client, request) => {
        assertEqual(request.get_connection(), client.get_connection(),
            "the client's own end of the connection");
        request.reply_data(encoder.encode(`client says ${text(request.get_message())}`));
        return true;
    });
    waitUntil(() => events.connected.length === 1);
    const reply = await events.connected[0].request_async(encoder.encode('hi'), null);
    assertEqual(text(reply), 'client says hi', 'the client answered');
    c.client.close(null);
    server.stop();
});

test('request_async to a server process written in C', async () => {
    const peer = GLib.build_filenamev([GLib.getenv('NP_TEST_BUILDDIR'), 'np-test-peer']);
    const name = 'c-server-for-gjs-requests';
    const process = Gio.Subprocess.new([peer, 'serve', name],
        Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDOUT_PIPE);
    const out = Gio.DataInputStream.new(process.get_stdout_pipe());
    const [line] = out.read_line_utf8(null);
    assertEqual(line, 'ready', 'server ready');

    const c = startClient(name);
    const big = pattern(MIB, 11);
    assertBytesEqual((await c.client.request_async(big, null)).toArray(), big, 'a 1 MiB request');
    assertEqual(text(await c.client.request_async(encoder.encode('from gjs'), null)), 'from gjs',
        'answered with its message');
    c.client.close(null);

    process.get_stdin_pipe().close(null);
    assert(process.wait_check(null), 'server exits cleanly');
});

test('GLib.Variant round trip with send_variant and Np.variant_from_message', async () => {
    const {server, events} = startServer();
    const values = [
        new GLib.Variant('a{sv}', {
            name: new GLib.Variant('s', 'np'),
            size: new GLib.Variant('u', 42),
            nested: new GLib.Variant('a{sv}', {ok: new GLib.Variant('b', true)}),
        }),
        new GLib.Variant('(sias)', ['tuple', -7, ['x', 'grüße']]),
        new GLib.Variant('ai', [1, -2, 3]),
        new GLib.Variant('ay', new Uint8Array([0, 1, 255])),
    ];
    server.connect('message-received', (_s, connection, message) => {
        const value = Np.variant_from_message(message);
        connection.send_variant(new GLib.Variant('(sv)', ['echo', value]));
    });
    server.connect('request-received', (_s, _connection, request) => {
        const asked = Np.variant_from_message(request.get_message());
        request.reply_variant(new GLib.Variant('a{sv}', {asked}));
        return true;
    });

    for (const value of values) {
        const back = Np.variant_from_message(Np.variant_to_message(value));
        assertEqual(back.get_type_string(), value.get_type_string(), 'type');
        assert(back.equal(value), `${value.print(true)} comes back`);
    }

    const c = startClient(server.get_name());
    for (const value of values)
        c.client.send_variant(value);
    waitUntil(() => c.messages.length === values.length);
    values.forEach((value, i) => {
        const received = Np.variant_from_message(events.messages[i].data);
        assert(received.equal(value), `the server reads ${value.print(true)}`);
        const echoed = Np.variant_from_message(c.messages[i]);
        assert(echoed.equal(new GLib.Variant('(sv)', ['echo', value])),
            `echo of ${value.print(true)}`);
    });
    assertEqual(JSON.stringify(Np.variant_from_message(events.messages[0].data).recursiveUnpack()),
        JSON.stringify({name: 'np', size: 42, nested: {ok: true}}), 'a{sv} unpacks');

    const reply = Np.variant_from_message(
        await c.client.request_async(Np.variant_to_message(values[1]), null));
    assert(reply.equal(new GLib.Variant('a{sv}', {asked: values[1]})), 'reply_variant');

    let caught = null;
    try {
        Np.variant_from_message(encoder.encode('a{sv}'));
    } catch (e) {
        caught = e;
    }
    assert(caught?.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.INVALID_DATA),
        'malformed: INVALID_DATA');
    c.client.close(null);
    server.stop();
});

test('auto-reconnect: a client comes back to a restarted server', () => {
    const {server, events} = startServer();
    const client = new Np.PipeClient({name: server.get_name(), auto_reconnect: true,
        reconnect_interval: 10});
    let nConnected = 0;
    const disconnects = [];
    client.connect('accepted', () => nConnected++);
    client.connect('disconnected', (_c, error) => disconnects.push(error));
    const results = [];
    client.connect_async(null, (c, res) => results.push(c.connect_finish(res)));
    waitUntil(() => nConnected === 1);
    assertEqual(results[0], true, 'connected');

    server.stop();
    waitUntil(() => disconnects.length === 1);
    assertEqual(client.connected, false, 'disconnected');
    client.send_data(encoder.encode('held'));

    assert(server.start(), 'server starts again');
    waitUntil(() => nConnected === 2);
    client.send_data(encoder.encode('after'));
    waitUntil(() => events.messages.length === 2);
    assertEqual(decoder.decode(events.messages[0].data), 'held', 'held message first');
    assertEqual(decoder.decode(events.messages[1].data), 'after', 'then the next');

    client.close(null);
    server.stop();
});

test('auto-reconnect: close() during the back-off stops it', () => {
    const {server} = startServer();
    const client = new Np.PipeClient({name: server.get_name(), auto_reconnect: true,
        reconnect_interval: 600000});
    const disconnects = [];
    client.connect('disconnected', (_c, error) => disconnects.push(error));
    assert(client.connect_sync(null), 'client connects');

    server.stop();
    waitUntil(() => disconnects.length === 1);
    client.close(null);
    try {
        client.send_data(encoder.encode('lost'));
        assert(false, 'send after close fails');
    } catch (e) {
        assert(e.matches(Np.pipe_error_quark(), Np.PipeError.CLOSED), 'CLOSED');
    }
});

test('descriptors both ways with Gio.UnixFDList, to and from C processes', () => {
    const {server, events} = startServer();
    const received = [];
    server.connect('message-with-fds-received', (_s, connection, message, fds) =>
        received.push({data: message.toArray(), fds}));
    const name = server.get_name();
    const peer = GLib.build_filenamev([GLib.getenv('NP_TEST_BUILDDIR'), 'np-test-peer']);

    // A memfd from a C client, read through /proc (where it opens anew,
    // at its start: the writer left the shared offset at its end).
    const sender = Gio.Subprocess.new([peer, 'fd-send', name, 'from C'], Gio.SubprocessFlags.NONE);
    waitUntil(() => received.length === 1);
    assertEqual(decoder.decode(received[0].data), 'memfd', 'message');
    assertEqual(received[0].fds.get_length(), 1, 'one descriptor');
    const memfd = received[0].fds.get(0);
    const [, contents] = GLib.file_get_contents(`/proc/self/fd/${memfd}`);
    assertEqual(decoder.decode(contents), 'from C', 'memfd contents');
    Gio.UnixInputStream.new(memfd, true).close(null);
    assert(sender.wait_check(null), 'sender exits');

    // A temporary file's descriptor to a C client, which reads it.
    const receiver = Gio.Subprocess.new([peer, 'fd-receive', name], Gio.SubprocessFlags.STDOUT_PIPE);
    waitUntil(() => events.connected.length === 2);
    const [fd, path] = GLib.file_open_tmp('np-gjs-XXXXXX');
    // Written through a description of its own, so that the one sent
    // still reads from the start.
    const io = Gio.File.new_for_path(path).open_readwrite(null);
    io.get_output_stream().write_bytes(encoder.encode('from GJS'), null);
    io.close(null);
    const fds = Gio.UnixFDList.new_from_array([fd]);
    assert(events.connected[1].send_with_fds(encoder.encode('file'), fds), 'send_with_fds');
    // Read without blocking the loop: the message waits for the
    // client's handshake, which the loop completes.
    const out = Gio.DataInputStream.new(receiver.get_stdout_pipe());
    let line = null;
    out.read_line_async(GLib.PRIORITY_DEFAULT, null, (stream, res) => {
        [line] = stream.read_line_finish_utf8(res);
    });
    waitUntil(() => line !== null);
    assertEqual(line, 'file from GJS', 'what the C client read');
    assert(receiver.wait_check(null), 'receiver exits');
    GLib.unlink(path);
    server.stop();
});

Gio._promisify(Np.PipeClient.prototype, 'request_with_fds_async', 'request_with_fds_finish');
Gio._promisify(Np.PipeConnection.prototype, 'request_with_fds_async',
    'request_with_fds_finish');

// A temporary file holding `contents`, opened: its descriptor, to pass,
// and its path, to remove. Written through a description of its own, so
// that the descriptor still reads from the start.
function fileWith(contents) {
    const [fd, path] = GLib.file_open_tmp('np-gjs-XXXXXX');
    const io = Gio.File.new_for_path(path).open_readwrite(null);
    io.get_output_stream().write_bytes(encoder.encode(contents), null);
    io.close(null);
    return {fd, path};
}

// What the one descriptor of `fds` holds, read through /proc, where it
// opens anew at its start.
function readFdList(fds) {
    assertEqual(fds.get_length(), 1, 'one descriptor');
    const [, contents] = GLib.file_get_contents(`/proc/self/fd/${fds.peek_fds()[0]}`);
    return decoder.decode(contents);
}

test('a request and its reply carry descriptors, as Gio.UnixFDList', async () => {
    const {server, events} = startServer();
    const files = [];
    const asked = [];
    server.connect('request-received', (_s, _connection, request) => {
        asked.push(readFdList(request.get_fd_list()));
        const answer = fileWith(`answer to ${asked.at(-1)}`);
        files.push(answer.path);
        request.reply_with_fds(request.get_message(),
            Gio.UnixFDList.new_from_array([answer.fd]));
        return true;
    });
    const c = startClient(server.get_name());
    const question = fileWith('the client\'s file');
    files.push(question.path);
    const [reply, replyFds] = await c.client.request_with_fds_async(encoder.encode('open'),
        Gio.UnixFDList.new_from_array([question.fd]), null);
    assertEqual(text(reply), 'open', 'the reply');
    assertEqual(asked.join(), 'the client\'s file', 'what the server read');
    assertEqual(readFdList(replyFds), 'answer to the client\'s file', 'what the client read');

    // The other way, and a plain request that gets no list.
    c.client.connect('request-received', (_c, request) => {
        request.reply_with_fds(request.get_message(), request.get_fd_list());
        return true;
    });
    waitUntil(() => events.connected.length === 1);
    const back = fileWith('there and back');
    files.push(back.path);
    const [echo, echoFds] = await events.connected[0].request_with_fds_async(
        encoder.encode('echo'), Gio.UnixFDList.new_from_array([back.fd]), null);
    assertEqual(text(echo), 'echo', 'the client answered');
    assertEqual(readFdList(echoFds), 'there and back', 'the descriptor came back');
    const [plain, plainFds] = await events.connected[0].request_with_fds_async(
        encoder.encode('plain'), null, null);
    assertEqual(text(plain), 'plain', 'a plain request answered');
    assertEqual(plainFds, null, 'with no list');

    c.client.close(null);
    server.stop();
    for (const path of files)
        GLib.unlink(path);
});

Gio._promisify(Np.PipeClient.prototype, 'request_data_async', 'request_data_finish');
Gio._promisify(Np.PipeConnection.prototype, 'request_data_async', 'request_data_finish');
Gio._promisify(Np.PipeClient.prototype, 'ping_async', 'ping_finish');

test('request_data, reply_data and ping with plain values', async () => {
    const {server, events} = startServer();
    server.connect('request-received', (_s, _connection, request) => {
        request.reply_data(encoder.encode(`re: ${text(request.get_message())}`));
        return true;
    });
    const c = startClient(server.get_name());
    c.client.connect('request-received', (_c, request) => {
        request.reply_data(encoder.encode(`client: ${text(request.get_message())}`));
        return true;
    });
    assertEqual(text(await c.client.request_data_async(encoder.encode('bytes'), null)),
        're: bytes', 'the server answered');
    waitUntil(() => events.connected.length === 1);
    assertEqual(text(await events.connected[0].request_data_async(encoder.encode('you'), null)),
        'client: you', 'the client answered');

    // The round trip is the result itself, a number.
    const usec = await c.client.ping_async(null);
    assertEqual(typeof usec, 'number', 'ping_finish returns a number');
    assert(usec >= 0, 'a round trip of 0 µs or more');
    c.client.close(null);
    server.stop();
});

test('the connections list and the connection have names of their own', () => {
    const {server, events} = startServer();
    const c = startClient(server.get_name());
    waitUntil(() => events.connected.length === 1);
    const model = server.get_connections();
    assert(model instanceof Np.PipeConnectionList, 'an Np.PipeConnectionList');
    assertEqual(model.constructor.$gtype.name, 'NpPipeConnectionList', 'its GType');
    assert(!String(model).includes('unknown'), `a known type: ${model}`);
    const connection = model.get_item(0);
    assert(connection.get_connected(), 'get_connected');
    assertEqual(connection.is_connected, undefined, 'no is_connected');
    assertEqual(connection.get_max_queued_bytes(), server.max_queued_bytes, 'max-queued-bytes');
    assertEqual(GObject.signal_lookup('connected', Np.PipeClient), 0, 'no connected signal');
    assert(GObject.signal_lookup('accepted', Np.PipeClient) !== 0, 'an accepted signal');
    c.client.close(null);
    server.stop();
});

test('close() throws when queued messages were dropped', () => {
    const client = new Np.PipeClient({name: 'never-reads-gjs', close_timeout: 100});
    GLib.mkdir_with_parents(GLib.path_get_dirname(client.get_path()), 0o700);
    // A server that accepts (in the kernel's backlog) and never reads.
    const listener = Gio.Socket.new(Gio.SocketFamily.UNIX, Gio.SocketType.STREAM,
        Gio.SocketProtocol.DEFAULT);
    listener.bind(Gio.UnixSocketAddress.new(client.get_path()), true);
    listener.listen();
    try {
        client.connect_sync(null);
        const big = new Uint8Array(4 * MIB);
        client.send_data(big);
        client.send_data(big);
        let error = null;
        try {
            client.close(null);
        } catch (e) {
            error = e;
        }
        assert(error !== null, 'close() threw');
        assert(error.matches(Np.pipe_error_quark(), Np.PipeError.TIMED_OUT), `timed out: ${error}`);
        assert(!client.get_connected(), 'closed all the same');
        assert(client.close(null), 'closing again succeeds');
    } finally {
        listener.close();
        GLib.unlink(client.get_path());
    }
});

test('check_version', () => {
    const major = Np.get_major_version();
    assertEqual(Np.check_version(major, 0, 0), null, 'compatible');
    assert(Np.check_version(major + 1, 0, 0).includes('too old'), 'a newer major is refused');
    assertEqual(Np.get_minor_version(), Np.MINOR_VERSION, 'minor');
    assertEqual(Np.get_micro_version(), Np.MICRO_VERSION, 'micro');
});

// A self-signed certificate naming IP 127.0.0.1, and its key, made now as
// PEM files with openssl or GnuTLS's certtool; null without either.
function makeCertificate(directory, cn) {
    const cert = GLib.build_filenamev([directory, `${cn}-cert.pem`]);
    const key = GLib.build_filenamev([directory, `${cn}-key.pem`]);
    let commands;
    if (GLib.find_program_in_path('openssl')) {
        commands = [['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${cn}`,
            '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]];
    } else if (GLib.find_program_in_path('certtool')) {
        const template = GLib.build_filenamev([directory, `${cn}.template`]);
        GLib.file_set_contents(template, `cn = "${cn}"\nip_address = "127.0.0.1"\n` +
            'expiration_days = 2\nca\ncert_signing_key\nsigning_key\ntls_www_server\n');
        commands = [['certtool', '--generate-privkey', '--key-type=ecdsa', '--outfile', key],
            ['certtool', '--generate-self-signed', '--load-privkey', key, '--template', template,
                '--outfile', cert]];
    } else {
        return null;
    }
    for (const argv of commands) {
        const process = Gio.Subprocess.new(argv, Gio.SubprocessFlags.STDOUT_SILENCE |
            Gio.SubprocessFlags.STDERR_SILENCE);
        assert(process.wait_check(null), `${argv[0]} made the certificate`);
    }
    return {cert, key};
}

function fingerprintOf(certificate) {
    return GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256,
        new GLib.Bytes(certificate.certificate));
}

class Skip extends Error {}

// A server on tcp:127.0.0.1:0 with a certificate made for the test, which
// echoes messages and answers requests.
function startTlsServer() {
    if (!Gio.TlsBackend.get_default().supports_tls())
        throw new Skip('GLib has no TLS backend: glib-networking is not installed');
    const directory = GLib.dir_make_tmp('np-gjs-tls-XXXXXX');
    const files = makeCertificate(directory, 'np-gjs-server');
    if (files === null)
        throw new Skip('neither openssl nor certtool is installed');
    const certificate = Gio.TlsCertificate.new_from_files(files.cert, files.key);

    const server = Np.PipeServer.new('tcp:127.0.0.1:0');
    server.tls_certificate = certificate;
    server.allow_anonymous = true;
    const events = {connected: [], messages: []};
    server.connect('client-connected', (_s, connection) => events.connected.push(connection));
    server.connect('message-received', (_s, connection, message) => {
        events.messages.push(text(message));
        connection.send_data(encoder.encode(`echo: ${text(message)}`));
    });
    server.connect('request-received', (_s, _connection, request) => {
        request.reply_data(encoder.encode(`re: ${text(request.get_message())}`));
        return true;
    });
    assert(server.start(), 'the TCP server starts');
    return {server, events, certificate, files};
}

function connectTls(client) {
    const results = [];
    client.connect_async(null, (c, res) => {
        try {
            results.push(c.connect_finish(res));
        } catch (e) {
            results.push(e);
        }
    });
    waitUntil(() => results.length > 0);
    return results[0];
}

async function tlsRoundTrip(client, events) {
    const messages = [];
    client.connect('message-received', (_c, message) => messages.push(text(message)));
    client.send_data(encoder.encode('over TLS'));
    waitUntil(() => messages.length > 0);
    assertEqual(messages[0], 'echo: over TLS', 'the echo');
    assertEqual(events.messages[events.messages.length - 1], 'over TLS', 'the server got it');
    assertEqual(text(await client.request_data_async(encoder.encode('a request'), null)),
        're: a request', 'the reply');
}

test('TLS on tcp:127.0.0.1:0, accept-certificate connected from GJS', async () => {
    const {server, events, certificate} = startTlsServer();
    try {
        const name = server.get_name();
        const match = /^tcp:127\.0\.0\.1:(\d+)$/.exec(name);
        assert(match !== null && Number(match[1]) !== 0, `the name has the port: ${name}`);
        assertEqual(server.get_address().get_port(), Number(match[1]), 'the bound address');

        // A self-signed certificate: only the handler can accept it.
        const client = Np.PipeClient.new(name);
        const seen = [];
        client.connect('accept-certificate', (_c, peerCertificate, errors) => {
            seen.push({peerCertificate, errors});
            return peerCertificate.is_same(certificate);
        });
        assertEqual(connectTls(client), true, 'connects');
        assertEqual(seen.length, 1, 'accept-certificate ran once');
        assertEqual(fingerprintOf(seen[0].peerCertificate), fingerprintOf(certificate),
            'the server certificate');
        assert(seen[0].errors & Gio.TlsCertificateFlags.UNKNOWN_CA, 'an unknown CA');
        await tlsRoundTrip(client, events);
        waitUntil(() => events.connected.length === 1);
        assertEqual(events.connected[0].get_peer_pid(), -1, 'no pid over TCP');
        assertEqual(events.connected[0].get_remote_address().get_address().to_string(),
            '127.0.0.1', 'the peer address');
        client.close(null);

        // Refused by the handler: the connect fails.
        const refusing = Np.PipeClient.new(name);
        refusing.connect('accept-certificate', () => false);
        const error = connectTls(refusing);
        assert(error instanceof GLib.Error, `a GLib.Error: ${error}`);
        assert(error.message.includes('TLS'), `says TLS: ${error.message}`);
    } finally {
        server.stop();
    }
});

test('TLS with tls-pin and with tls-database', async () => {
    const {server, events, certificate, files} = startTlsServer();
    try {
        const pinned = Np.PipeClient.new(server.get_name());
        pinned.tls_pin = fingerprintOf(certificate);
        assertEqual(connectTls(pinned), true, 'the pin is accepted');
        await tlsRoundTrip(pinned, events);
        pinned.close(null);

        const verified = Np.PipeClient.new(server.get_name());
        verified.tls_database = Gio.TlsFileDatabase.new(files.cert);
        assertEqual(connectTls(verified), true, 'the database vouches for it');
        await tlsRoundTrip(verified, events);
        verified.close(null);

        const wrong = Np.PipeClient.new(server.get_name());
        wrong.tls_pin = '00'.repeat(32);
        const error = connectTls(wrong);
        assert(error instanceof GLib.Error, `a GLib.Error: ${error}`);
        assert(error.matches(Np.pipe_error_quark(), Np.PipeError.PERMISSION_DENIED),
            `permission denied: ${error}`);
    } finally {
        server.stop();
    }
});

// Awaiting a test that returns a promise lets the main loop run until it
// settles (a top-level await does that in GJS).
print(`1..${tests.length}`);
for (const [i, {name, func}] of tests.entries()) {
    try {
        await func();
        print(`ok ${i + 1} ${name}`);
    } catch (e) {
        if (e instanceof Skip) {
            print(`ok ${i + 1} ${name} # SKIP ${e.message}`);
            continue;
        }
        failed++;
        print(`not ok ${i + 1} ${name}`);
        for (const line of `${e}\n${e.stack ?? ''}`.split('\n'))
            print(`# ${line}`);
    }
}

System.exit(failed > 0 ? 1 : 0);
