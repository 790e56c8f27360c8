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

#define NP_TEST_SETTINGS 8

typedef struct
{
  NpPipeServer *server;
  GPtrArray    *connections;
  GPtrArray    *messages;     /* of GBytes */
  GPtrArray    *errors;       /* of GError or NULL, one per disconnect */
} Fixture;

static void
on_connected (NpPipeServer     *server,
              NpPipeConnection *connection,
              Fixture          *f)
{
  g_ptr_array_add (f->connections, g_object_ref (connection));
}

static void
on_message (NpPipeServer     *server,
            NpPipeConnection *connection,
            GBytes           *message,
            Fixture          *f)
{
  g_ptr_array_add (f->messages, g_bytes_ref (message));
}

static void
on_disconnected (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 const GError     *error,
                 Fixture          *f)
{
  g_ptr_array_add (f->errors, error != NULL ? g_error_copy (error) : NULL);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  f->errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  f->server = np_pipe_server_new (NULL);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_connected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_disconnected), f);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->server);
  g_ptr_array_unref (f->connections);
  g_ptr_array_unref (f->messages);
  g_ptr_array_unref (f->errors);
}

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
async_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  *(GAsyncResult **) data = g_object_ref (result);
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
  guint8 header[8];
  guint8 *payload;
  guint32 len;

  np_test_raw_read_exactly (socket, header, sizeof header);
  len = np_test_get_u32 (header);
  *type = header[4];
  payload = g_malloc (MAX (len, 1));
  np_test_raw_read_exactly (socket, payload, len);

  return g_bytes_new_take (payload, len);
}

/* A peer of version 4 is sent the server's settings once it said hello:
 * 8 bytes, no flags, the server's descriptor limit. */
static void
test_settings_sent (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) settings = NULL;
  guint8 hello[12];
  guint8 type;
  const guint8 *payload;

  np_pipe_server_set_max_fds_per_message (f->server, 5);
  socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_hello (hello, 4, 1024);
  np_test_raw_write (socket, hello, sizeof hello);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  g_assert_cmpuint (hello[4], ==, 4);
  settings = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_TEST_SETTINGS);
  g_assert_cmpuint (g_bytes_get_size (settings), ==, 8);
  payload = g_bytes_get_data (settings, NULL);
  g_assert_cmpuint (np_test_get_u32 (payload), ==, 0);
  g_assert_cmpuint (np_test_get_u32 (payload + 4), ==, 5);
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
      g_autoptr(GBytes) frame = np_test_frame (NP_TEST_SETTINGS, payload, cases[i].len);
      const GError *error;
      guint8 hello[12];

      np_test_hello (hello, cases[i].version, 1024);
      np_test_raw_write (socket, hello, sizeof hello);
      for (guint n = 0; n < cases[i].count; n++)
        np_test_raw_write_bytes (socket, frame);

      /* The peer is told; one that was a client is reported gone. */
      g_assert_cmpuint (np_test_raw_read_goodbye (socket), ==, NP_PIPE_ERROR_PROTOCOL);
      WAIT_UNTIL (f->errors->len == f->connections->len);
      for (guint n = 0; n < f->errors->len; n++)
        {
          error = g_ptr_array_index (f->errors, n);
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
  g_signal_connect (client, "connected", G_CALLBACK (count_cb), &opened);
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
  g_assert_cmpuint (f->errors->len, ==, 0);
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
  g_assert_cmpuint (f->errors->len, ==, 0);
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
  guint8 hello[12];
  guint8 type;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_async (client, request, NULL, async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, after, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_hello (hello, 3, 4);
  np_test_raw_write (peer, hello, sizeof hello);

  WAIT_UNTIL (result != NULL);
  g_assert_null (np_pipe_client_request_finish (client, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);

  np_test_raw_read_exactly (peer, hello, sizeof hello);
  frame = read_frame (peer, &type);
  g_assert_cmpuint (type, ==, NP_TEST_MESSAGE);
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
      g_signal_connect (client, "connected", G_CALLBACK (count_cb), &opened);
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
  guint8 hello[12];

  g_signal_connect (client, "disconnected", G_CALLBACK (disconnected_cb), &d);
  g_signal_connect (client, "connected", G_CALLBACK (count_cb), &opened);
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
  g_autoptr(GBytes) frame = np_test_frame (NP_TEST_MESSAGE, g_bytes_get_data (big, NULL),
                                           g_bytes_get_size (big));
  g_autoptr(GBytes) bad = np_test_frame (99, (const guint8 *) "?", 1);
  g_autoptr(GBytes) echo = NULL;
  g_autoptr(GBytes) goodbye = NULL;
  guint8 hello[12];
  guint8 type;
  guint8 byte;

  g_assert_cmpstr (line, ==, "ready");
  socket = np_test_raw_connect (path);
  np_test_hello (hello, 3, 16 * 1024 * 1024);
  np_test_raw_write (socket, hello, sizeof hello);
  np_test_raw_write_bytes (socket, frame);
  np_test_raw_write_bytes (socket, bad);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  echo = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_TEST_MESSAGE);
  g_assert_true (g_bytes_equal (echo, big));
  goodbye = read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_TEST_GOODBYE);
  g_assert_cmpuint (np_test_get_u32 (g_bytes_get_data (goodbye, NULL)), ==,
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
      g_autoptr(GBytes) plain = np_test_frame (NP_TEST_MESSAGE, (const guint8 *) "plain", 5);
      g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_CLOSED, "bye");
      g_autoptr(GUnixFDList) fds = memfds (1);
      g_autoptr(GByteArray) bytes = g_byte_array_new ();
      guint8 hello[12];
      const GError *error;

      np_test_hello (hello, 3, 1024);
      np_test_raw_write (socket, hello, sizeof hello);
      g_byte_array_append (bytes, g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
      if (with_goodbye)
        g_byte_array_append (bytes, g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye));
      np_test_raw_send_with_fds (socket, bytes->data, bytes->len,
                                 g_unix_fd_list_peek_fds (fds, NULL), 1);
      g_assert_true (g_socket_shutdown (socket, FALSE, TRUE, NULL));

      WAIT_UNTIL (f->errors->len == with_goodbye + 1);
      error = g_ptr_array_index (f->errors, with_goodbye);
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
    }
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
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Version4/settings/sent", test_settings_sent);
  ADD ("/Np/Version4/settings/bad", test_settings_bad);
  ADD ("/Np/Version4/fds-limit/at-the-call", test_fds_limit);
  ADD ("/Np/Version4/fds-limit/parked", test_fds_limit_parked);
  ADD ("/Np/Version4/stray-fds-at-end", test_stray_fds_at_end);
  g_test_add_func ("/Np/Version4/parked-request-too-large", test_parked_request_too_large);
  g_test_add_func ("/Np/Version4/vanished", test_vanished);
  g_test_add_func ("/Np/Version4/older-peer-ends-cleanly", test_older_peer_ends_cleanly);
  g_test_add_func ("/Np/Version4/error-goodbye-after-frame", test_error_goodbye_after_frame);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
