/* test-vapi.vala: the Vala bindings compile, and a message goes through
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

int main () {
    try {
        Environment.set_variable ("XDG_RUNTIME_DIR", DirUtils.make_tmp ("np-vala-test-XXXXXX"), true);
    } catch (FileError e) {
        error ("%s", e.message);
    }

    var server = new Np.PipeServer (null);
    Bytes? received = null;
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
        client.close ();
    } catch (Error e) {
        if (e is Np.PipeError.NOT_FOUND)
            error ("the server vanished");
        error ("%s", e.message);
    }

    server.stop ();
    print ("1..1\nok 1 the Vala bindings send and receive\n");
    return 0;
}
