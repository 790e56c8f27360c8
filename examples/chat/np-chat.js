// np-chat.js: a small chat over Np; the server relays every message to all
// the other clients. Talks to np-chat (C) and np-chat.py as well.
//
//   gjs -m np-chat.js server [NAME]          serve until Ctrl-C
//   gjs -m np-chat.js client [NAME] [NICK]   send each line of stdin; print what comes
//
// A client line starting with "/" is a command, sent as a request that the
// server answers: "/who" lists the clients connected, one per line.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Np from 'gi://Np?version=1.0';
import System from 'system';

const DEFAULT_NAME = 'np-chat';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Unbuffered, so each line shows as it happens even through a pipe.
const stdout = new Gio.UnixOutputStream({fd: 1, close_fd: false});
function say(line) {
    stdout.write_all(encoder.encode(`${line}\n`), null);
}
function complain(line) {
    printerr(`np-chat: ${line}`);
}

function runServer(name) {
    const loop = new GLib.MainLoop(null, false);
    const server = Np.PipeServer.new(name);

    server.connect('client-connected', (_server, connection) =>
        say(`joined: client ${connection.get_id()} (pid ${connection.get_peer_pid()})`));
    server.connect('message-received', (_server, sender, message) => {
        say(`client ${sender.get_id()}: ${decoder.decode(message.toArray())}`);
        const connections = server.get_connections();
        for (let i = 0; i < connections.get_n_items(); i++) {
            const connection = connections.get_item(i);
            if (connection !== sender)
                connection.send(message);
        }
    });
    // Answers "/who" with the clients connected, in the order they came.
    server.connect('request-received', (_server, asker, request) => {
        const command = decoder.decode(request.get_message().toArray());
        say(`client ${asker.get_id()} asks: ${command}`);
        if (command !== '/who') {
            request.reply_error_literal(Np.pipe_error_quark(), Np.PipeError.NOT_SUPPORTED,
                `unknown command “${command}”; try /who`);
            return true;
        }
        const connections = server.get_connections();
        const lines = [`who: ${connections.get_n_items()} connected`];
        for (let i = 0; i < connections.get_n_items(); i++) {
            const connection = connections.get_item(i);
            const you = connection === asker ? ', you' : '';
            lines.push(`client ${connection.get_id()} (pid ${connection.get_peer_pid()}${you})`);
        }
        request.reply_data(encoder.encode(lines.join('\n')));
        return true;
    });
    server.connect('client-disconnected', (_server, connection, error) =>
        say(`left: client ${connection.get_id()}${error ? `: ${error.message}` : ''}`));

    try {
        server.start();
    } catch (e) {
        complain(e.message);
        return 1;
    }

    say(`listening on ${server.get_name()}`);
    for (const signum of [2, 15]) { // SIGINT, SIGTERM
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, () => {
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
    }
    loop.run();
    server.stop();
    return 0;
}

function runClient(name, nick) {
    const loop = new GLib.MainLoop(null, false);
    const client = Np.PipeClient.new(name);
    const lines = Gio.DataInputStream.new(new Gio.UnixInputStream({fd: 0, close_fd: false}));
    let status = 0;
    let pending = 0; // commands waiting for their answer
    let inputDone = false;

    const closeWhenDone = () => {
        if (inputDone && pending === 0)
            client.close(null); // writes out what is queued
    };
    const onAnswer = (_client, result) => {
        try {
            say(decoder.decode(client.request_finish(result).toArray()));
        } catch (e) {
            complain(e.message);
        }
        pending--;
        closeWhenDone();
    };

    client.connect('message-received', (_client, message) => say(decoder.decode(message.toArray())));
    client.connect('disconnected', (_client, error) => {
        if (error) {
            complain(error.message);
            status = 1;
        }
        GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
    });

    const onLine = (stream, result) => {
        const [line] = stream.read_line_finish_utf8(result);
        if (line === null) {
            inputDone = true;
            closeWhenDone();
            return;
        }
        if (line.startsWith('/')) {
            pending++;
            client.request_async(new GLib.Bytes(encoder.encode(line)), null, onAnswer);
            stream.read_line_async(GLib.PRIORITY_DEFAULT, null, onLine);
            return;
        }
        try {
            client.send_data(encoder.encode(`${nick}: ${line}`));
        } catch (e) {
            complain(e.message);
            status = 1;
            loop.quit();
            return;
        }
        stream.read_line_async(GLib.PRIORITY_DEFAULT, null, onLine);
    };

    try {
        client.connect_sync(null);
    } catch (e) {
        complain(e.message);
        return 1;
    }

    lines.read_line_async(GLib.PRIORITY_DEFAULT, null, onLine);
    loop.run();
    return status;
}

function main(args) {
    const name = args[1] ?? DEFAULT_NAME;
    if (args[0] === 'server' && args.length <= 2)
        return runServer(name);
    if (args[0] === 'client' && args.length <= 3)
        return runClient(name, args[2] ?? GLib.get_user_name());
    complain('usage: gjs -m np-chat.js server [NAME] | client [NAME] [NICK]');
    return 2;
}

System.exit(main(ARGV));
