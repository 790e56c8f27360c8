/* test-version4.c: what protocol version 4 adds: the settings after the
 * hello, the descriptor limit they announce, the goodbye of a normal
 * close and the peer that vanishes without one; and how an error
 * goodbye and stray descriptors end a connection
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#define _GNU_SOURCE

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <gio/gunixfdlist.h>

#include "np-test-util.h"

/* A server started, recording what it announces. */
typedef NpTestPair Fixture;

static GUnixFDList *
memfds (guint n)
{
  GUnixFDList *fds = g_unix_fd_list_new ();

  for (guint i = 0; i < n; i++)
    {
      int fd = memfd_create ("np-test-version4", MFD_CLOEXEC);

      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (g_unix_fd_list_append (fds, fd, NULL), >=, 0);
      close (fd);
    }

  return fds;
}

static void
count_cb (gpointer  instance,
          guint    *count)
{
  (*count)++;
}

/* Reads one whole frame from a raw peer: its type, and its payload. */
static GBytes *
read_frame (GSocket *socket,
            guint8  *type)
{
  NpFrameHeader header;
  GBytes *payload;

  g_assert_true (np_test_raw_read_frame (socket, &header, &payload));
  *type = header.type;

  return payload;
}

/* The code of a GOODBYE payload. */
static NpPipeError
goodbye_code (GBytes *payload)
{
  return np_test_goodbye_code (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
}

/* A peer of version 4 is sent the server's settings once it said hello:
 * 8 bytes, no flags, the server's descriptor limit. */
static void
test_settings_sent (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) settings = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;
  NpSettings decoded;
  g_autoptr(GError) error = NULL;

  np_pipe_server_set_max_fds_per_message (f->server, 5);
  socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write_hello (socket, 4, 1024);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  g_assert_cmpuint (hello[4], ==, 4);
  settings = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);
  g_assert_cmpuint (g_bytes_get_size (settings), ==, NP_SETTINGS_SIZE);
  g_assert_true (np_settings_decode (g_bytes_get_data (settings, NULL), g_bytes_get_size (settings),
                                     &decoded, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (decoded.flags, ==, 0);
  g_assert_cmpuint (decoded.max_fds, ==, 5);
}

/* Settings sent twice, or cut short, end the connection with PROTOCOL;
 * a peer of version 3 sending them sends an unknown frame. */
static void
test_settings_bad (Fixture       *f,
                   gconstpointer  data)
{
  struct {
    guint8 version;
    gsize  len;
    guint  count;
  } cases[] = {
    { 4, 8, 2 },      /* twice */
    { 4, 4, 1 },      /* too short */
    { 4, 1025, 1 },   /* too long */
    { 3, 8, 1 },      /* not in version 3 */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
      g_autofree guint8 *payload = g_malloc0 (cases[i].len);
      g_autoptr(GBytes) frame = np_test_frame (NP_FRAME_SETTINGS, payload, cases[i].len);
      const GError *error;

      np_test_raw_write_hello (socket, cases[i].version, 1024);
      for (guint n = 0; n < cases[i].count; n++)
        np_test_raw_write_bytes (socket, frame);

      /* The peer is told; one that was a client is reported gone. */
      g_assert_cmpuint (np_test_raw_read_goodbye (socket), ==, NP_PIPE_ERROR_PROTOCOL);
      WAIT_UNTIL (f->disconnect_errors->len == f->connections->len);
      for (guint n = 0; n < f->disconnect_errors->len; n++)
        {
          error = g_ptr_array_index (f->disconnect_errors, n);
          g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
        }
    }

  /* Settings sent twice: the first completed the handshake. Settings
   * too short or too long never let it complete. */
  g_assert_cmpuint (f->connections->len, >=, 1);
  g_assert_cmpuint (f->connections->len, <=, 2);
}

/* The limit the server announced: a send past it fails at the call with
 * MESSAGE_TOO_LARGE, and the connection goes on. */
static void
test_fds_limit (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GUnixFDList) three = memfds (3);
  g_autoptr(GUnixFDList) two = memfds (2);
  g_autoptr(GBytes) message = g_bytes_new_static ("fds", 3);
  g_autoptr(GBytes) after = g_bytes_new_static ("after", 5);
  g_autoptr(GError) error = NULL;
  guint opened = 0;

  np_pipe_server_set_max_fds_per_message (f->server, 2);
  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &opened);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (opened == 1);

  g_assert_false (np_pipe_client_send_with_fds (client, message, three, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  g_assert_true (np_pipe_client_send_with_fds (client, message, two, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_send (client, after, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->messages->len == 2);
  g_assert_true (g_bytes_equal (g_ptr_array_index (f->messages, 0), message));
  g_assert_true (g_bytes_equal (g_ptr_array_index (f->messages, 1), after));
  g_assert_cmpuint (f->disconnect_errors->len, ==, 0);
  g_assert_true (np_pipe_client_get_connected (client));
}

/* Sent before the server's settings came, a message with more
 * descriptors than the server takes waits for them, and is then dropped
 * with a warning; what follows it still goes out. */
static void
test_fds_limit_parked (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GUnixFDList) three = memfds (3);
  g_autoptr(GBytes) message = g_bytes_new_static ("three", 5);
  g_autoptr(GBytes) after = g_bytes_new_static ("after", 5);
  g_autoptr(GError) error = NULL;

  np_pipe_server_set_max_fds_per_message (f->server, 2);
  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  /* This thread runs the server: the connect returns before the hello. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_send_with_fds (client, message, three, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_send (client, after, &error));
  g_assert_no_error (error);

  g_test_expect_message ("Np", G_LOG_LEVEL_WARNING, "*3 descriptors exceed the limit of 2*dropped*");
  WAIT_UNTIL (f->messages->len == 1);
  g_test_assert_expected_messages ();
  g_assert_true (g_bytes_equal (g_ptr_array_index (f->messages, 0), after));
  g_assert_cmpuint (f->disconnect_errors->len, ==, 0);
}

/* A request queued before the hello, larger than the server's hello
 * then says it takes, fails on its own with MESSAGE_TOO_LARGE; the
 * message queued behind it goes out. */
static void
test_parked_request_too_large (void)
{
  g_autofree char *name = g_strdup_printf ("small-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) request = g_bytes_new_static ("far too large", 13);
  g_autoptr(GBytes) after = g_bytes_new_static ("ok", 2);
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GSocket *peer;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_async (client, request, NULL, np_test_async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, after, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_write_hello (peer, 3, 4);

  WAIT_UNTIL (result != NULL);
  g_assert_null (np_pipe_client_request_finish (client, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);

  np_test_raw_read_exactly (peer, hello, sizeof hello);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_MESSAGE);
  g_assert_true (g_bytes_equal (frame, after));
  g_assert_true (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

/* Disconnects of a client, recorded. */
typedef struct
{
  guint   n;
  GError *error;
} Disconnects;

static void
disconnected_cb (NpPipeClient *client,
                 const GError *error,
                 Disconnects  *d)
{
  d->n++;
  g_clear_error (&d->error);
  d->error = error != NULL ? g_error_copy (error) : NULL;
}

/* A server killed outright is a peer that vanished; one that stops is a
 * clean close. */
static void
test_vanished (void)
{
  for (guint kill_it = 0; kill_it < 2; kill_it++)
    {
      g_autofree char *name = g_strdup_printf ("vanishing-%u", g_random_int ());
      const char *args[] = { "serve", name, NULL };
      g_autoptr(GSubprocess) server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                          G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
      g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
      g_autoptr(GError) error = NULL;
      g_autofree char *line = np_test_read_line (server);
      Disconnects d = { 0 };
      guint opened = 0;

      g_assert_cmpstr (line, ==, "ready");
      g_signal_connect (client, "disconnected", G_CALLBACK (disconnected_cb), &d);
      g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &opened);
      np_pipe_client_set_auto_reconnect (client, FALSE);
      g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
      g_assert_no_error (error);
      WAIT_UNTIL (opened == 1);

      if (kill_it)
        g_subprocess_send_signal (server, SIGKILL);
      else
        g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);

      WAIT_UNTIL (d.n == 1);
      if (kill_it)
        g_assert_error (d.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PEER_VANISHED);
      else
        g_assert_no_error (d.error);
      g_clear_error (&d.error);
      g_subprocess_wait (server, NULL, NULL);
    }
}

/* From a peer of version 3, the end of the stream is a clean close, as
 * it always was. */
static void
test_older_peer_ends_cleanly (void)
{
  g_autofree char *name = g_strdup_printf ("older-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  guint opened = 0;
  guint8 hello[NP_HELLO_SIZE];

  g_signal_connect (client, "disconnected", G_CALLBACK (disconnected_cb), &d);
  g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &opened);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 1);
  np_test_hello (hello, 3, 1024);
  np_test_raw_write (g_ptr_array_index (raw->accepted, 0), hello, sizeof hello);
  WAIT_UNTIL (opened == 1);

  g_ptr_array_set_size (raw->accepted, 0);
  WAIT_UNTIL (d.n == 1);
  g_assert_no_error (d.error);

  np_test_raw_server_free (raw);
}

/* A connection ended over an error finishes the frame it was writing
 * before its goodbye: a peer that sends an unknown frame while the
 * server (another process) echoes 5 MiB to it gets the whole echo, then
 * the goodbye that says why. */
static void
test_error_goodbye_after_frame (void)
{
  g_autofree char *name = g_strdup_printf ("echo-%u", g_random_int ());
  const char *args[] = { "serve", name, NULL };
  g_autoptr(GSubprocess) server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "np", name, NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) big = np_test_message_new (1, 0, 5 * 1024 * 1024);
  g_autoptr(GBytes) frame = np_test_frame (NP_FRAME_MESSAGE, g_bytes_get_data (big, NULL),
                                           g_bytes_get_size (big));
  g_autoptr(GBytes) bad = np_test_frame (99, (const guint8 *) "?", 1);
  g_autoptr(GBytes) echo = NULL;
  g_autoptr(GBytes) goodbye = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;
  guint8 byte;

  g_assert_cmpstr (line, ==, "ready");
  socket = np_test_raw_connect (path);
  np_test_raw_write_hello (socket, 3, 16 * 1024 * 1024);
  np_test_raw_write_bytes (socket, frame);
  np_test_raw_write_bytes (socket, bad);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  echo = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_MESSAGE);
  g_assert_true (g_bytes_equal (echo, big));
  goodbye = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (goodbye_code (goodbye), ==,
                    NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpint (np_test_raw_read (socket, &byte, 1), ==, 0);

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (server, NULL, NULL));
}

/* Descriptors sent with a plain message, and nothing after them but the
 * end of the stream, or a goodbye: the connection ends with PROTOCOL,
 * never as a clean close. */
static void
test_stray_fds_at_end (Fixture       *f,
                       gconstpointer  data)
{
  for (guint with_goodbye = 0; with_goodbye < 2; with_goodbye++)
    {
      g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
      g_autoptr(GBytes) plain = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "plain", 5);
      g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "bye");
      g_autoptr(GUnixFDList) fds = memfds (1);
      g_autoptr(GByteArray) bytes = g_byte_array_new ();
      guint8 hello[NP_HELLO_SIZE];
      const GError *error;

      np_test_hello (hello, 3, 1024);
      np_test_raw_write (socket, hello, sizeof hello);
      g_byte_array_append (bytes, g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
      if (with_goodbye)
        g_byte_array_append (bytes, g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye));
      np_test_raw_send_with_fds (socket, bytes->data, bytes->len,
                                 g_unix_fd_list_peek_fds (fds, NULL), 1);
      g_assert_true (g_socket_shutdown (socket, FALSE, TRUE, NULL));

      WAIT_UNTIL (f->disconnect_errors->len == with_goodbye + 1);
      error = g_ptr_array_index (f->disconnect_errors, with_goodbye);
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
    }
}

static void
welcome_cb (NpPipeServer     *server,
            NpPipeConnection *connection,
            gpointer          data)
{
  g_autoptr(GBytes) welcome = g_bytes_new_static ("welcome", 7);

  g_assert_true (np_pipe_connection_send (connection, welcome, NULL));
}

static void
record_connected_cb (NpPipeClient *client,
                     GString      *events)
{
  g_string_append (events, "connected;");
}

static void
record_message_cb (NpPipeClient *client,
                   GBytes       *message,
                   GString      *events)
{
  g_string_append_len (events, g_bytes_get_data (message, NULL), g_bytes_get_size (message));
  g_string_append (events, ";");
}

/* A server that sends from client-connected, before it has the client's
 * hello and so before its own settings: the client is told it is
 * connected before the message is delivered, and its connect succeeds. */
static void
test_message_before_settings (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GString) events = g_string_new (NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_signal_connect (f->server, "client-connected", G_CALLBACK (welcome_cb), NULL);
  g_signal_connect (client, "accepted", G_CALLBACK (record_connected_cb), events);
  g_signal_connect (client, "message-received", G_CALLBACK (record_message_cb), events);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL && strstr (events->str, "welcome") != NULL);

  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (events->str, ==, "connected;welcome;");
}

/* A raw peer of version 4 that said hello and sent @settings_len bytes
 * of settings: @flags, then @max_fds. Returns its socket, once the
 * server's hello and settings are read. */
static GSocket *
raw_v4_peer (Fixture *f,
             guint32  flags,
             guint32  max_fds,
             gsize    settings_len)
{
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autofree guint8 *payload = g_malloc0 (settings_len);
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GBytes) theirs = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;

  g_autoptr(GBytes) settings = np_settings_encode (max_fds);
  guint32 flags_be = GUINT32_TO_BE (flags);

  /* The library's settings, with flags it may not know and room that a
   * later version may use. */
  g_assert_cmpuint (settings_len, >=, NP_SETTINGS_SIZE);
  memcpy (payload, g_bytes_get_data (settings, NULL), NP_SETTINGS_SIZE);
  memcpy (payload, &flags_be, sizeof flags_be);
  frame = np_test_frame (NP_FRAME_SETTINGS, payload, settings_len);
  np_test_raw_write_hello (socket, 4, 1024 * 1024);
  np_test_raw_write_bytes (socket, frame);
  np_test_raw_read_exactly (socket, hello, sizeof hello);
  theirs = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);

  return socket;
}

static void
on_message_fds (NpPipeServer     *server,
                NpPipeConnection *connection,
                GBytes           *message,
                GUnixFDList      *fds,
                Fixture          *f)
{
  g_ptr_array_add (f->messages, g_bytes_ref (message));
}

/* Settings with every flag set, the longest payload, and no descriptors
 * taken: the flags are ignored, a send with descriptors to that peer
 * fails at the call with NOT_SUPPORTED, and the peer may still send
 * descriptors itself, up to the server's own limit. */
static void
test_settings_huge_flags_no_fds (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GUnixFDList) one = memfds (1);
  g_autoptr(GUnixFDList) theirs = memfds (1);
  g_autoptr(GBytes) message = g_bytes_new_static ("fds", 3);
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GBytes) received = NULL;
  g_autoptr(GError) error = NULL;
  NpPipeConnection *connection;
  guint8 type;

  g_signal_connect (f->server, "message-with-fds-received", G_CALLBACK (on_message_fds), f);
  socket = raw_v4_peer (f, 0xffffffff, 0, 1024);
  WAIT_UNTIL (f->connections->len == 1);
  connection = g_ptr_array_index (f->connections, 0);

  g_assert_false (np_pipe_connection_send_with_fds (connection, message, one, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_true (np_pipe_connection_send (connection, message, &error));
  g_assert_no_error (error);
  received = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_MESSAGE);
  g_assert_true (g_bytes_equal (received, message));

  frame = np_test_frame_fds (1, (const guint8 *) "mine", 4);
  np_test_raw_send_with_fds (socket, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame),
                             g_unix_fd_list_peek_fds (theirs, NULL), 1);
  WAIT_UNTIL (f->messages->len == 1);
  g_assert_cmpuint (f->disconnect_errors->len, ==, 0);
}

/* A peer that said GOODBYE CLOSED and sends on: what follows the
 * goodbye is not read, and the server closes cleanly, with its own
 * goodbye, at once, whether the peer closes or not. */
static void
test_goodbye_then_frames (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_v4_peer (f, 0, 16, 8);
  g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "closed");
  g_autoptr(GBytes) late = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "late", 4);
  g_autoptr(GBytes) bad = np_test_frame (99, (const guint8 *) "?", 1);
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GBytes) theirs = NULL;
  guint8 type;
  guint8 byte;

  g_byte_array_append (bytes, g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye));
  g_byte_array_append (bytes, g_bytes_get_data (late, NULL), g_bytes_get_size (late));
  g_byte_array_append (bytes, g_bytes_get_data (bad, NULL), g_bytes_get_size (bad));
  np_test_raw_write (socket, bytes->data, bytes->len);

  WAIT_UNTIL (f->disconnect_errors->len == 1);
  g_assert_null (g_ptr_array_index (f->disconnect_errors, 0));
  g_assert_cmpuint (f->messages->len, ==, 0);
  theirs = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (goodbye_code (theirs), ==, NP_PIPE_ERROR_CLOSED);
  g_assert_cmpint (np_test_raw_read (socket, &byte, 1), ==, 0);
}

/* A peer that says hello and never sends its settings is dropped at the
 * handshake deadline, with TIMED_OUT, told in a goodbye; it never was a
 * connection, so the application hears nothing. */
static void
test_no_settings_server (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) theirs = NULL;
  g_autoptr(GBytes) goodbye = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;

  np_pipe_server_set_handshake_timeout (f->server, 200);
  np_test_raw_write_hello (socket, 4, 1024);
  np_test_raw_read_exactly (socket, hello, sizeof hello);
  theirs = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);

  goodbye = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (goodbye_code (goodbye), ==,
                    NP_PIPE_ERROR_TIMED_OUT);
  g_assert_cmpint (np_test_raw_read (socket, &type, 1), ==, 0);

  /* Never a connection: nothing to tell the application. */
  g_assert_cmpuint (f->connections->len, ==, 0);
  g_assert_cmpuint (f->disconnect_errors->len, ==, 0);
}

/* A server that says hello and never sends its settings: connect_sync
 * gives up at the connect timeout, with TIMED_OUT. */
static void
test_no_settings_client (void)
{
  g_autofree char *name = g_strdup_printf ("hello-only-%u", g_random_int ());
  const char *args[] = { "serve-as", name, "hello-only", NULL };
  g_autoptr(GSubprocess) server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  gint64 start;

  g_assert_cmpstr (line, ==, "ready");
  np_pipe_client_set_auto_reconnect (client, FALSE);
  np_pipe_client_set_connect_timeout (client, 300);
  start = g_get_monotonic_time ();
  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 250 * 1000);
  g_assert_false (np_pipe_client_get_connected (client));

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (server, NULL, NULL));
}

/* A request with more descriptors than the server takes ends the
 * connection with PROTOCOL. */
static void
test_request_fds_over_limit (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GUnixFDList) three = memfds (3);
  g_autoptr(GBytes) frame = np_test_request_frame_fds (NP_FRAME_REQUEST_FDS, 1, 3,
                                                       (const guint8 *) "rq", 2);
  const GError *error;

  np_pipe_server_set_max_fds_per_message (f->server, 2);
  socket = raw_v4_peer (f, 0, 16, 8);
  np_test_raw_send_with_fds (socket, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame),
                             g_unix_fd_list_peek_fds (three, NULL), 3);
  WAIT_UNTIL (f->disconnect_errors->len == 1);
  error = g_ptr_array_index (f->disconnect_errors, 0);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
}

static void
unref_in_disconnected_cb (NpPipeClient *client,
                          const GError *error,
                          Disconnects  *d)
{
  disconnected_cb (client, error, d);
  g_object_unref (client);
}

/* The last reference to a client dropped in its disconnected handler,
 * run because the server vanished. */
static void
test_vanished_unref_in_handler (void)
{
  g_autofree char *name = g_strdup_printf ("vanish-unref-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  NpPipeClient *client = np_pipe_client_new (name);
  g_autoptr(GBytes) settings = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  guint opened = 0;
  GSocket *peer;

  np_pipe_client_set_auto_reconnect (client, FALSE);
  g_signal_connect (client, "disconnected", G_CALLBACK (unref_in_disconnected_cb), &d);
  g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &opened);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_write_hello (peer, 4, 1024);
  settings = np_test_settings (4);
  np_test_raw_write_bytes (peer, settings);
  WAIT_UNTIL (opened == 1);

  g_ptr_array_set_size (raw->accepted, 0);
  WAIT_UNTIL (d.n == 1);
  g_assert_error (d.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PEER_VANISHED);
  g_clear_error (&d.error);

  np_test_raw_server_free (raw);
}

static void
unref_in_connected_cb (NpPipeClient *client,
                       guint        *count)
{
  (*count)++;
  g_object_unref (client);
}

/* The last reference to a client dropped in its connected handler,
 * emitted while connect_sync waits for the server's handshake. */
static void
test_unref_in_connected (void)
{
  g_autofree char *name = g_strdup_printf ("connected-unref-%u", g_random_int ());
  const char *args[] = { "serve", name, NULL };
  g_autoptr(GSubprocess) server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);
  NpPipeClient *client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  guint opened = 0;

  g_assert_cmpstr (line, ==, "ready");
  g_signal_connect (client, "accepted", G_CALLBACK (unref_in_connected_cb), &opened);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (opened == 1);

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (server, NULL, NULL));
}

static gboolean
unref_server_in_request_cb (NpPipeServer     *server,
                            NpPipeConnection *connection,
                            NpPipeRequest    *request,
                            Fixture          *f)
{
  g_assert_nonnull (np_pipe_request_get_fd_list (request));
  g_assert_cmpint (g_unix_fd_list_get_length (np_pipe_request_get_fd_list (request)), ==, 2);
  g_clear_object (&f->server);
  np_pipe_request_reply (request, np_pipe_request_get_message (request));

  return TRUE;
}

/* The last reference to the server dropped in the handler of a request
 * with descriptors, which it then answers: the client gets the answer
 * or a clean error, and nothing leaks. */
static void
test_unref_server_in_request_fds (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GUnixFDList) two = memfds (2);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  g_signal_connect (f->server, "request-received", G_CALLBACK (unref_server_in_request_cb), f);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_with_fds_async (client, request, two, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_null (f->server);
  reply = np_pipe_client_request_with_fds_finish (client, result, NULL, &error);
  if (reply != NULL)
    g_assert_true (g_bytes_equal (reply, request));
  else
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
}

/* A request with descriptors cancelled while it waits for the server's
 * settings, and one cancelled once queued: each fails with CANCELLED,
 * the first leaves no trace on the wire, and the connection goes on. */
static void
test_request_fds_cancelled (void)
{
  g_autofree char *name = g_strdup_printf ("cancel-fds-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) one = memfds (1);
  g_autoptr(GUnixFDList) two = memfds (1);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GBytes) after = g_bytes_new_static ("after", 5);
  g_autoptr(GCancellable) parked = g_cancellable_new ();
  g_autoptr(GCancellable) queued = g_cancellable_new ();
  g_autoptr(GAsyncResult) result1 = NULL;
  g_autoptr(GAsyncResult) result2 = NULL;
  g_autoptr(GBytes) settings = NULL;
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GError) error = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;
  GSocket *peer;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_with_fds_async (client, request, one, parked, np_test_async_done_cb, &result1);
  g_cancellable_cancel (parked);
  WAIT_UNTIL (result1 != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, result1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_write_hello (peer, 4, 1024);
  settings = np_test_settings (4);
  np_test_raw_write_bytes (peer, settings);

  np_test_raw_read_exactly (peer, hello, sizeof hello);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);
  g_clear_pointer (&frame, g_bytes_unref);

  np_pipe_client_request_with_fds_async (client, request, two, queued, np_test_async_done_cb, &result2);
  g_cancellable_cancel (queued);
  WAIT_UNTIL (result2 != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, result2, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_assert_true (np_pipe_client_send (client, after, &error));
  g_assert_no_error (error);
  /* What goes out next: the second request, if it left before it was
   * cancelled, then the message. Never the first. */
  frame = read_frame (peer, &type);
  if (type == 9)
    {
      g_clear_pointer (&frame, g_bytes_unref);
      frame = read_frame (peer, &type);
    }
  g_assert_cmpuint (type, ==, NP_FRAME_MESSAGE);
  g_assert_true (g_bytes_equal (frame, after));
  g_assert_true (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

typedef struct
{
  NpPipeClient *client;
  gboolean      connected;
  GError       *error;
  gint64        took;
  gboolean      done;
} SyncConnect;

static gpointer
connect_sync_worker (gpointer data)
{
  SyncConnect *c = data;
  gint64 start = g_get_monotonic_time ();

  c->connected = np_pipe_client_connect_sync (c->client, NULL, &c->error);
  c->took = g_get_monotonic_time () - start;
  g_atomic_int_set (&c->done, TRUE);

  return NULL;
}

/* connect_sync, in another thread, waits for a server that said hello
 * and no settings; close() from this thread ends the wait at once, with
 * CANCELLED, not at the connect timeout. */
static void
test_close_races_connect_sync (void)
{
  g_autofree char *name = g_strdup_printf ("hello-only-%u", g_random_int ());
  const char *args[] = { "serve-as", name, "hello-only", NULL };
  g_autoptr(GSubprocess) server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);
  SyncConnect c = { 0 };
  GThread *thread;

  g_assert_cmpstr (line, ==, "ready");
  c.client = np_pipe_client_new (name);
  np_pipe_client_set_auto_reconnect (c.client, FALSE);
  np_pipe_client_set_connect_timeout (c.client, 20000);
  thread = g_thread_new ("connect-sync", connect_sync_worker, &c);

  /* The server accepted the worker's connection (and wrote its hello). */
  g_free (line);
  line = np_test_read_line (server);
  g_assert_cmpstr (line, ==, "accepted");
  np_pipe_client_close (c.client, NULL, NULL);
  g_thread_join (thread);

  g_assert_false (c.connected);
  g_assert_nonnull (c.error);
  g_assert_cmpint (c.took, <, 5 * G_USEC_PER_SEC);
  g_assert_false (np_pipe_client_get_connected (c.client));
  g_clear_error (&c.error);
  g_object_unref (c.client);

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (server, NULL, NULL));
}

/* A server that says hello, then GOODBYE CLOSED, never its settings:
 * the request and the message with descriptors that waited for the
 * settings fail, or are reported dropped; nothing hangs. */
static void
test_goodbye_before_settings (void)
{
  g_autofree char *name = g_strdup_printf ("bye-early-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) one = memfds (1);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "closed");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  GSocket *peer;

  np_pipe_client_set_auto_reconnect (client, FALSE);
  g_signal_connect (client, "disconnected", G_CALLBACK (disconnected_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_with_fds_async (client, request, one, NULL, np_test_async_done_cb, &result);

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_write_hello (peer, 4, 1024);
  np_test_raw_write_bytes (peer, goodbye);

  WAIT_UNTIL (result != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, result, NULL, &error));
  g_assert_nonnull (error);
  WAIT_UNTIL (d.n == 1);
  g_clear_error (&d.error);
  g_assert_false (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

#define N_THREADED 400

typedef struct
{
  NpPipeClient *client;
  guint         n_failed;
} FdSender;

/* Sends N_THREADED messages, every other one with a descriptor, from
 * the moment the client starts connecting. */
static gpointer
fd_sender_worker (gpointer data)
{
  FdSender *s = data;

  for (guint i = 0; i < N_THREADED; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, 32);
      g_autoptr(GError) error = NULL;
      gboolean ok;

      if (i % 2 == 0)
        {
          g_autoptr(GUnixFDList) fds = memfds (1);

          ok = np_pipe_client_send_with_fds (s->client, message, fds, &error);
        }
      else
        ok = np_pipe_client_send (s->client, message, &error);
      if (!ok)
        s->n_failed++;
    }

  return NULL;
}

typedef struct
{
  GArray *seqs;
  guint   n_fds;
  gboolean broken;
} Ordered;

static void
ordered_message_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    GBytes           *message,
                    Ordered          *o)
{
  guint32 id, seq;

  if (!np_test_message_parse (message, &id, &seq))
    o->broken = TRUE;
  g_array_append_val (o->seqs, seq);
}

static void
ordered_fds_cb (NpPipeServer     *server,
                NpPipeConnection *connection,
                GBytes           *message,
                GUnixFDList      *fds,
                Ordered          *o)
{
  o->n_fds += g_unix_fd_list_get_length (fds);
  ordered_message_cb (server, connection, message, o);
}

/* Messages with and without descriptors sent from another thread while
 * this one runs the handshake (the server's settings arrive meanwhile):
 * each arrives once, in order, with its descriptor. */
static void
test_send_fds_from_thread (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) seqs = g_array_new (FALSE, FALSE, sizeof (guint32));
  Ordered o = { seqs, 0, FALSE };
  FdSender s = { 0 };
  GThread *thread;

  g_signal_connect (server, "message-received", G_CALLBACK (ordered_message_cb), &o);
  g_signal_connect (server, "message-with-fds-received", G_CALLBACK (ordered_fds_cb), &o);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  s.client = np_pipe_client_new (np_pipe_server_get_name (server));
  /* This thread runs the server: the connect returns before the
   * handshake, which this thread's loop runs while the worker sends. */
  g_assert_true (np_pipe_client_connect_sync (s.client, NULL, &error));
  g_assert_no_error (error);
  thread = g_thread_new ("fd-sender", fd_sender_worker, &s);
  WAIT_UNTIL (seqs->len == N_THREADED || o.broken);
  g_thread_join (thread);

  g_assert_false (o.broken);
  g_assert_cmpuint (s.n_failed, ==, 0);
  for (guint i = 0; i < N_THREADED; i++)
    g_assert_cmpuint (g_array_index (seqs, guint32, i), ==, i);
  g_assert_cmpuint (o.n_fds, ==, N_THREADED / 2);
  g_object_unref (s.client);
}

/* A peer that said GOODBYE CLOSED and then neither reads nor closes,
 * with megabytes queued to it: the server gives up at its close
 * timeout, with TIMED_OUT, and closes. */
static void
test_goodbye_never_reads (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "closed");
  g_autoptr(GBytes) big = np_test_message_new (1, 0, 1000 * 1000);
  g_autoptr(GError) error = NULL;
  NpPipeConnection *connection;
  gint64 start;

  np_pipe_server_set_close_timeout (f->server, 300);
  socket = raw_v4_peer (f, 0, 16, 8);
  WAIT_UNTIL (f->connections->len == 1);
  connection = g_ptr_array_index (f->connections, 0);
  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (np_pipe_connection_send (connection, big, &error));
      g_assert_no_error (error);
    }

  start = g_get_monotonic_time ();
  np_test_raw_write_bytes (socket, goodbye);
  WAIT_UNTIL (f->disconnect_errors->len == 1);
  g_assert_error ((GError *) g_ptr_array_index (f->disconnect_errors, 0), NP_PIPE_ERROR,
                  NP_PIPE_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 3 * G_USEC_PER_SEC);
  g_assert_false (np_pipe_connection_get_connected (connection));
}

typedef struct
{
  NpPipeClient *client;
  guint         n_requests;
} ClientKeeper;

static gboolean
client_unref_in_request_cb (NpPipeClient  *client,
                            NpPipeRequest *request,
                            ClientKeeper  *k)
{
  g_assert_cmpint (g_unix_fd_list_get_length (np_pipe_request_get_fd_list (request)), ==, 2);
  k->n_requests++;
  g_clear_object (&k->client);
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request),
                                  np_pipe_request_get_fd_list (request));

  return TRUE;
}

static gboolean
stop_in_request_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    NpPipeRequest    *request,
                    Fixture          *f)
{
  np_pipe_server_stop (server);
  np_pipe_request_reply (request, np_pipe_request_get_message (request));

  return TRUE;
}

/* A server asks a client with descriptors; the client drops its last
 * reference to itself in the handler, then answers with them. And a
 * server that stops in the handler of a request with descriptors, then
 * answers it. Neither crashes or leaks; the askers get an answer or an
 * error. */
static void
test_unref_client_in_request_fds (Fixture       *f,
                                  gconstpointer  data)
{
  ClientKeeper k = { 0 };
  g_autoptr(NpPipeClient) second = NULL;
  g_autoptr(GUnixFDList) two = memfds (2);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GUnixFDList) reply_fds = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint opened = 0;

  k.client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_signal_connect (k.client, "request-received", G_CALLBACK (client_unref_in_request_cb), &k);
  g_signal_connect (k.client, "accepted", G_CALLBACK (count_cb), &opened);
  g_assert_true (np_pipe_client_connect_sync (k.client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (opened == 1 && f->connections->len == 1);

  np_pipe_connection_request_with_fds_async (g_ptr_array_index (f->connections, 0), request,
                                             two, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_null (k.client);
  reply = np_pipe_connection_request_with_fds_finish (g_ptr_array_index (f->connections, 0),
                                                      result, &reply_fds, &error);
  if (reply != NULL)
    g_assert_cmpint (g_unix_fd_list_get_length (reply_fds), ==, 2);
  else
    g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_object (&result);
  g_clear_pointer (&reply, g_bytes_unref);
  WAIT_UNTIL (f->disconnect_errors->len == 1);

  g_signal_connect (f->server, "request-received", G_CALLBACK (stop_in_request_cb), f);
  second = np_pipe_client_new (np_pipe_server_get_name (f->server));
  np_pipe_client_set_auto_reconnect (second, FALSE);
  g_assert_true (np_pipe_client_connect_sync (second, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_with_fds_async (second, request, two, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_with_fds_finish (second, result, NULL, &error);
  if (reply == NULL)
    g_assert_nonnull (error);
  WAIT_UNTIL (f->disconnect_errors->len == 2);
}

static gboolean
reply_with_fds_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   NpPipeRequest    *request,
                   Fixture          *f)
{
  g_autoptr(GUnixFDList) two = memfds (2);

  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request), two);

  return TRUE;
}

/* A peer of version 4 that asks before it sent its settings has not
 * said how many descriptors it takes: a reply with descriptors is not
 * sent to it (it might take none); it gets an ERROR instead, and the
 * connection goes on. */
static void
test_reply_fds_before_settings (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) request = np_test_request_frame (NP_FRAME_REQUEST, 1, (const guint8 *) "ask", 3);
  g_autoptr(GBytes) settings = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(GError) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;
  guint32 id;

  g_signal_connect (f->server, "request-received", G_CALLBACK (reply_with_fds_cb), f);
  np_test_raw_write_hello (socket, 4, 1024);
  np_test_raw_write_bytes (socket, request);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  settings = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);
  answer = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_ERROR);
  g_assert_true (np_error_reply_decode (g_bytes_get_data (answer, NULL), g_bytes_get_size (answer),
                                        &id, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (id, ==, 1);
  g_assert_error (reply, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_assert_cmpuint (f->disconnect_errors->len, ==, 0);
}

typedef struct
{
  NpPipeClient *client;
  GBytes       *reply;
  GUnixFDList  *reply_fds;
  GError       *error;
  gboolean      done;
} SyncAsker;

static gpointer
request_fds_sync_worker (gpointer data)
{
  SyncAsker *a = data;
  g_autoptr(GUnixFDList) two = memfds (2);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);

  a->reply = np_pipe_client_request_with_fds_sync (a->client, request, two, &a->reply_fds,
                                                   NULL, &a->error);
  g_atomic_int_set (&a->done, TRUE);
  g_main_context_wakeup (NULL);

  return NULL;
}

static gboolean
echo_fds_cb (NpPipeServer     *server,
             NpPipeConnection *connection,
             NpPipeRequest    *request,
             Fixture          *f)
{
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request),
                                  np_pipe_request_get_fd_list (request));

  return TRUE;
}

/* A blocking request with descriptors from another thread, made before
 * the server's settings came (this thread runs the server and the
 * client's context): it waits for them, goes out, and gets its answer
 * with its descriptors. */
static void
test_request_fds_sync_from_thread (Fixture       *f,
                                   gconstpointer  data)
{
  SyncAsker a = { 0 };
  g_autoptr(GError) error = NULL;
  GThread *thread;

  g_signal_connect (f->server, "request-received", G_CALLBACK (echo_fds_cb), f);
  a.client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_assert_true (np_pipe_client_connect_sync (a.client, NULL, &error));
  g_assert_no_error (error);
  thread = g_thread_new ("request-fds-sync", request_fds_sync_worker, &a);
  WAIT_UNTIL (g_atomic_int_get (&a.done));
  g_thread_join (thread);

  g_assert_no_error (a.error);
  g_assert_nonnull (a.reply);
  g_assert_cmpint (g_unix_fd_list_get_length (a.reply_fds), ==, 2);
  g_bytes_unref (a.reply);
  g_object_unref (a.reply_fds);
  g_object_unref (a.client);
}

/* A send_async that waits behind a message with descriptors for the
 * server's settings, cancelled: it fails with CANCELLED and never goes
 * out; the message before it and the one after it do. */
static void
test_parked_send_cancelled (void)
{
  g_autofree char *name = g_strdup_printf ("parked-send-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) one = memfds (1);
  g_autoptr(GBytes) first = g_bytes_new_static ("first", 5);
  g_autoptr(GBytes) cancelled = g_bytes_new_static ("cancelled", 9);
  g_autoptr(GBytes) last = g_bytes_new_static ("last", 4);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) settings = NULL;
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GError) error = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 type;
  GSocket *peer;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_send_with_fds (client, first, one, &error));
  g_assert_no_error (error);
  np_pipe_client_send_async (client, cancelled, cancellable, np_test_async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, last, &error));
  g_assert_no_error (error);
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_send_finish (client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_write_hello (peer, 4, 1024);
  settings = np_test_settings (4);
  np_test_raw_write_bytes (peer, settings);

  np_test_raw_read_exactly (peer, hello, sizeof hello);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);
  g_clear_pointer (&frame, g_bytes_unref);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, 7);  /* MESSAGE_FDS */
  g_assert_true (g_bytes_equal (frame, first));
  g_clear_pointer (&frame, g_bytes_unref);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_MESSAGE);
  g_assert_true (g_bytes_equal (frame, last));
  g_assert_true (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

/* A server, in another thread, that greets its client ahead of its
 * settings, all in one write, then answers one request. */
static gpointer
greeting_server (gpointer data)
{
  GSocket *listener = data;
  g_autoptr(GSocket) peer = NULL;
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GBytes) greeting = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "greet", 5);
  g_autoptr(GBytes) settings = np_test_settings (4);
  g_autoptr(GBytes) reply = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 body[256];
  NpFrameHeader decoded;

  g_socket_set_blocking (listener, TRUE);
  peer = g_socket_accept (listener, NULL, NULL);
  g_assert_nonnull (peer);
  np_test_hello (hello, 4, 1024);
  g_byte_array_append (bytes, hello, sizeof hello);
  g_byte_array_append (bytes, g_bytes_get_data (greeting, NULL), g_bytes_get_size (greeting));
  g_byte_array_append (bytes, g_bytes_get_data (settings, NULL), g_bytes_get_size (settings));
  g_assert_cmpint (g_socket_send (peer, (const char *) bytes->data, bytes->len, NULL, NULL), ==,
                   bytes->len);

  /* The client's hello, its settings, then its request. */
  g_assert_cmpint (g_socket_receive (peer, (char *) hello, sizeof hello, NULL, NULL), ==, NP_HELLO_SIZE);
  for (;;)
    {
      g_assert_cmpint (g_socket_receive (peer, (char *) header, sizeof header, NULL, NULL), ==,
                       NP_FRAME_HEADER_SIZE);
      np_test_header_decode (header, &decoded);
      g_assert_cmpuint (decoded.length, <=, sizeof body);
      g_assert_cmpint (g_socket_receive (peer, (char *) body, decoded.length, NULL, NULL), ==,
                       decoded.length);
      if (decoded.type == NP_FRAME_REQUEST)
        break;
    }

  reply = np_test_request_frame (NP_FRAME_REPLY, np_request_id_decode (body),
                                 (const guint8 *) "answer", 6);
  g_assert_cmpint (g_socket_send (peer, g_bytes_get_data (reply, NULL), g_bytes_get_size (reply),
                                  NULL, NULL), ==, g_bytes_get_size (reply));
  /* Until the client hangs up. */
  while (g_socket_receive (peer, (char *) body, sizeof body, NULL, NULL) > 0)
    ;

  return NULL;
}

typedef struct
{
  GBytes *reply;
  GError *error;
  guint   n_messages;
} GreetAsk;

static void
ask_sync_on_greeting_cb (NpPipeClient *client,
                         GBytes       *message,
                         GreetAsk     *ask)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);

  ask->n_messages++;
  ask->reply = np_pipe_client_request_sync (client, request, NULL, &ask->error);
}

/* A client that asks, blocking, in the handler of a greeting the server
 * sent ahead of its settings, in the same read: the request waits for
 * the settings, which are read from what is left of that read, goes out
 * and gets its answer. */
static void
test_request_sync_on_greeting (void)
{
  g_autofree char *name = g_strdup_printf ("greeting-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, FALSE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  GreetAsk ask = { 0 };
  GThread *thread;

  thread = g_thread_new ("greeting-server", greeting_server, raw->listener);
  np_pipe_client_set_auto_reconnect (client, FALSE);
  np_pipe_client_set_request_timeout (client, 5000);
  g_signal_connect (client, "message-received", G_CALLBACK (ask_sync_on_greeting_cb), &ask);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (ask.reply != NULL || ask.error != NULL);

  g_assert_no_error (ask.error);
  g_assert_cmpmem (g_bytes_get_data (ask.reply, NULL), g_bytes_get_size (ask.reply), "answer", 6);
  g_bytes_unref (ask.reply);
  np_pipe_client_close (client, NULL, NULL);
  g_thread_join (thread);
  np_test_raw_server_free (raw);
}

/* A client of version 3 whose hello and goodbye come in one write
 * completed its handshake with its hello: it was a connection, and
 * left, both reported; only a server's hello may be part of a refusal. */
static void
test_older_client_hello_and_goodbye (Fixture       *f,
                                     gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "bye");
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  guint8 hello[NP_HELLO_SIZE];

  np_test_hello (hello, 3, 1024);
  g_byte_array_append (bytes, hello, sizeof hello);
  g_byte_array_append (bytes, g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye));
  np_test_raw_write (socket, bytes->data, bytes->len);

  WAIT_UNTIL (f->disconnect_errors->len == 1);
  g_assert_cmpuint (f->connections->len, ==, 1);
  g_assert_null (g_ptr_array_index (f->disconnect_errors, 0));
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  runtime_dir = np_test_runtime_dir_new ("np-test-v4-XXXXXX");

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, np_test_pair_setup_server, func, np_test_pair_teardown)

  ADD ("/Np/Version4/settings/sent", test_settings_sent);
  ADD ("/Np/Version4/settings/bad", test_settings_bad);
  ADD ("/Np/Version4/fds-limit/at-the-call", test_fds_limit);
  ADD ("/Np/Version4/fds-limit/parked", test_fds_limit_parked);
  ADD ("/Np/Version4/stray-fds-at-end", test_stray_fds_at_end);
  ADD ("/Np/Version4/message-before-settings", test_message_before_settings);
  ADD ("/Np/Version4/older-client-hello-and-goodbye", test_older_client_hello_and_goodbye);
  ADD ("/Np/Version4/settings/huge-flags-no-fds", test_settings_huge_flags_no_fds);
  ADD ("/Np/Version4/goodbye-then-frames", test_goodbye_then_frames);
  ADD ("/Np/Version4/request-fds-sync-from-thread", test_request_fds_sync_from_thread);
  ADD ("/Np/Version4/reply-fds-before-settings", test_reply_fds_before_settings);
  ADD ("/Np/Version4/unref-client-in-request-fds", test_unref_client_in_request_fds);
  ADD ("/Np/Version4/goodbye-never-reads", test_goodbye_never_reads);
  ADD ("/Np/Version4/no-settings/server", test_no_settings_server);
  ADD ("/Np/Version4/request-fds-over-limit", test_request_fds_over_limit);
  g_test_add_func ("/Np/Version4/no-settings/client", test_no_settings_client);
  ADD ("/Np/Version4/unref-server-in-request-fds", test_unref_server_in_request_fds);
  g_test_add_func ("/Np/Version4/vanished/unref-in-handler", test_vanished_unref_in_handler);
  g_test_add_func ("/Np/Version4/unref-in-connected", test_unref_in_connected);
  g_test_add_func ("/Np/Version4/request-fds-cancelled", test_request_fds_cancelled);
  g_test_add_func ("/Np/Version4/no-settings/close-races-connect-sync", test_close_races_connect_sync);
  g_test_add_func ("/Np/Version4/goodbye-before-settings", test_goodbye_before_settings);
  g_test_add_func ("/Np/Version4/send-fds-from-thread", test_send_fds_from_thread);
  g_test_add_func ("/Np/Version4/parked-send-cancelled", test_parked_send_cancelled);
  g_test_add_func ("/Np/Version4/request-sync-on-greeting", test_request_sync_on_greeting);
  g_test_add_func ("/Np/Version4/parked-request-too-large", test_parked_request_too_large);
  g_test_add_func ("/Np/Version4/vanished", test_vanished);
  g_test_add_func ("/Np/Version4/older-peer-ends-cleanly", test_older_peer_ends_cleanly);
  g_test_add_func ("/Np/Version4/error-goodbye-after-frame", test_error_goodbye_after_frame);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
