/* test-vapi.vala: the Vala bindings compile, and a message goes through
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The cancellable of an _async call may be left out, as with GIO's
 * sync calls. */
async int64 ping (Np.PipeClient client) throws Error {
    yield client.flush_async ();
    return yield client.ping_async ();
}

int main () {
    try {
        Environment.set_variable ("XDG_RUNTIME_DIR", DirUtils.make_tmp ("np-vala-test-XXXXXX"), true);
    } catch (FileError e) {
        error ("%s", e.message);
    }

    var server = new Np.PipeServer (null);
    Bytes? received = null;
    /* Answered with what came, descriptors included. */
    server.request_received.connect ((connection, request) => {
        request.reply_with_fds (request.get_message (), request.get_fd_list ());
        return true;
    });
    server.message_received.connect ((connection, message) => {
        received = message;
        try {
            connection.send (message);
        } catch (Error e) {
            error ("%s", e.message);
        }
    });

    try {
        server.start ();

        var client = new Np.PipeClient (server.name);
        Bytes? echoed = null;
        client.message_received.connect ((message) => echoed = message);
        client.connect_sync ();
        client.send (new Bytes ("hello from Vala".data));

        while (echoed == null)
            MainContext.default ().iteration (true);

        assert (received.compare (echoed) == 0);
        assert (echoed.compare (new Bytes ("hello from Vala".data)) == 0);

        /* A request with no descriptors gets a reply with none. */
        Bytes? reply = null;
        UnixFDList? reply_fds = null;
        Error? failure = null;
        client.request_with_fds_async.begin (new Bytes ("asked from Vala".data), null, null, (obj, res) => {
            try {
                reply = client.request_with_fds_async.end (res, out reply_fds);
            } catch (Error e) {
                failure = e;
            }
        });
        while (reply == null && failure == null)
            MainContext.default ().iteration (true);
        if (failure != null)
            throw failure;
        assert (reply.compare (new Bytes ("asked from Vala".data)) == 0);
        assert (reply_fds == null);

        /* The calls made for bindings: bytes for a request, the round
         * trip as the ping's result, the connections' own type, the
         * version check. */
        Bytes? data_reply = null;
        int64 usec = -1;
        client.request_data_async.begin ("data from Vala".data, null, (obj, res) => {
            try {
                data_reply = client.request_data_async.end (res);
            } catch (Error e) {
                failure = e;
            }
        });
        ping.begin (client, (obj, res) => {
            try {
                usec = ping.end (res);
            } catch (Error e) {
                failure = e;
            }
        });
        while ((data_reply == null || usec < 0) && failure == null)
            MainContext.default ().iteration (true);
        if (failure != null)
            throw failure;
        assert (data_reply.compare (new Bytes ("data from Vala".data)) == 0);
        Np.PipeConnectionList connections = (Np.PipeConnectionList) server.get_connections ();
        var connection = (Np.PipeConnection) connections.get_item (0);
        assert (connection.get_connected ());
        assert (connection.max_queued_bytes == server.max_queued_bytes);
        assert (Np.check_version (Np.get_major_version (), 0, 0) == null);

        assert (client.close ());
    } catch (Error e) {
        if (e is Np.PipeError.NOT_FOUND)
            error ("the server vanished");
        error ("%s", e.message);
    }

    server.stop ();
    print ("1..1\nok 1 the Vala bindings send, receive, ask and ping\n");
    return 0;
}
