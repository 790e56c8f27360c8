/* test-vapi.vala: the Vala bindings compile, and a message goes through
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The cancellable of an _async call may be left out, as with GIO's
 * sync calls; not before an out argument, which Vala does not allow. */
async bool ping (Np.PipeClient client) throws Error {
    int64 round_trip_usec;

    yield client.flush_async ();
    return yield client.ping_async (null, out round_trip_usec);
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

        bool pinged = false;
        ping.begin (client, (obj, res) => {
            try {
                pinged = ping.end (res);
            } catch (Error e) {
                failure = e;
            }
        });
        while (!pinged && failure == null)
            MainContext.default ().iteration (true);
        if (failure != null)
            throw failure;
        client.close ();
    } catch (Error e) {
        if (e is Np.PipeError.NOT_FOUND)
            error ("the server vanished");
        error ("%s", e.message);
    }

    server.stop ();
    print ("1..1\nok 1 the Vala bindings send, receive, ask and ping\n");
    return 0;
}
