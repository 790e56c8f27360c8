/* test-closing.c: how connections begin and end: the handshake, refusals,
 * half-closed peers and bounded closes
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sys/socket.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

typedef struct
{
  NpTestPair  pair;
  GBytes     *reply;            /* sent back for every message */
} Fixture;

static void
on_message (NpPipeServer     *server,
            NpPipeConnection *connection,
            GBytes           *message,
            Fixture          *f)
{
  g_autoptr(GError) error = NULL;

  if (f->reply != NULL)
    {
      g_assert_true (np_pipe_connection_send (connection, f->reply, &error));
      g_assert_no_error (error);
    }
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  np_test_pair_init (&f->pair);
  g_signal_connect (f->pair.server, "message-received", G_CALLBACK (on_message), f);
  np_test_pair_start (&f->pair);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  np_test_pair_clear (&f->pair);
  g_clear_pointer (&f->reply, g_bytes_unref);
}

typedef struct
{
  guint   n_disconnected;
  GError *error;
  GThread *thread;
} Disconnects;

static void
count_disconnect_cb (NpPipeClient *client,
                     GError       *error,
                     Disconnects  *d)
{
  d->n_disconnected++;
  d->thread = g_thread_self ();
  g_clear_error (&d->error);
  d->error = error != NULL ? g_error_copy (error) : NULL;
}

/* Reads frames from a raw peer until the end of the stream; returns the
 * payload sizes in order. A frame cut short fails the test. */
static GArray *
read_frames_until_end (GSocket *socket)
{
  g_autoptr(GPtrArray) frames = np_test_raw_read_frames (socket);
  GArray *sizes = g_array_new (FALSE, FALSE, sizeof (guint32));

  for (guint i = 0; i < frames->len; i++)
    {
      NpTestFrame *frame = g_ptr_array_index (frames, i);
      guint32 len = g_bytes_get_size (frame->payload);

      g_array_append_val (sizes, len);
    }

  return sizes;
}

/* A peer that sends a request, ends its side (shutdown SHUT_WR) and
 * keeps reading gets the whole reply, then the end; the server reports a
 * clean close. */
static void
test_half_close_server (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->pair.server));
  g_autoptr(GBytes) request = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "request", 7);
  g_autoptr(GArray) sizes = NULL;
  g_autoptr(GError) error = NULL;
  guint8 server_hello[NP_HELLO_SIZE];

  f->reply = np_test_message_new (1, 0, 1024 * 1024);

  np_test_raw_write_hello (socket, 1, 16 * 1024 * 1024);
  np_test_raw_write_bytes (socket, request);
  g_assert_true (g_socket_shutdown (socket, FALSE, TRUE, &error));
  g_assert_no_error (error);

  np_test_raw_read_exactly (socket, server_hello, sizeof server_hello);
  sizes = read_frames_until_end (socket);

  /* The reply, then the goodbye of a normal close. */
  g_assert_cmpuint (sizes->len, ==, 2);
  g_assert_cmpuint (g_array_index (sizes, guint32, 0), ==, 1024 * 1024);
  g_assert_cmpuint (g_array_index (sizes, guint32, 1), ==, 4 + strlen ("closed"));

  WAIT_UNTIL (f->pair.disconnect_errors->len == 1);
  g_assert_null (g_ptr_array_index (f->pair.disconnect_errors, 0));
}

/* The same on the client side: a server that ends its side still gets
 * everything the client had queued, then the client reports a clean
 * close. */
static void
test_half_close_client (void)
{
  g_autofree char *name = g_strdup_printf ("half-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = np_test_message_new (2, 0, 2 * 1024 * 1024);
  g_autoptr(GArray) sizes = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  GSocket *peer;
  guint8 hello[NP_HELLO_SIZE];

  g_signal_connect (client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);

  /* More than the socket holds: most of it is still queued when the
   * server's end of stream arrives. */
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_true (np_pipe_client_send (client, message, &error));

  np_test_raw_write_hello (peer, 1, 16 * 1024 * 1024);
  g_assert_true (g_socket_shutdown (peer, FALSE, TRUE, &error));

  np_test_raw_read_exactly (peer, hello, sizeof hello);
  sizes = read_frames_until_end (peer);

  /* Both messages, then the goodbye of a normal close. */
  g_assert_cmpuint (sizes->len, ==, 3);
  g_assert_cmpuint (g_array_index (sizes, guint32, 1), ==, 2 * 1024 * 1024);
  g_assert_cmpuint (g_array_index (sizes, guint32, 2), ==, 4 + strlen ("closed"));
  WAIT_UNTIL (d.n_disconnected == 1);
  g_assert_no_error (d.error);

  np_test_raw_server_free (raw);
}

/* close() to a server that accepts and never reads returns once the
 * close timeout passes, dropping what is queued, and says so. */
static void
test_close_bounded (void)
{
  g_autofree char *name = g_strdup_printf ("stuck-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = np_test_message_new (3, 0, 4 * 1024 * 1024);
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };

  np_pipe_client_set_close_timeout (client, 200);
  g_signal_connect (client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_true (np_pipe_client_send (client, message, &error));

  /* It fails, as g_io_stream_close() does, with the error it reports. */
  g_assert_false (np_pipe_client_close (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "dropped"));
  g_clear_error (&error);

  g_assert_false (np_pipe_client_get_connected (client));
  g_assert_cmpuint (d.n_disconnected, ==, 1);
  g_assert_error (d.error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (d.error->message, "dropped"));
  g_assert_true (d.thread == g_thread_self ());

  /* Closing a closed client succeeds. */
  g_assert_true (np_pipe_client_close (client, NULL, &error));
  g_assert_no_error (error);

  g_clear_error (&d.error);
  np_test_raw_server_free (raw);
}

/* close() with a cancelled cancellable closes at once, dropping what is
 * queued, and fails with G_IO_ERROR_CANCELLED; with nothing queued, it
 * succeeds. */
static void
test_close_sync_results (void)
{
  g_autofree char *name = g_strdup_printf ("stuck-sync-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = np_test_message_new (3, 0, 4 * 1024 * 1024);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  gint64 start;

  np_pipe_client_set_close_timeout (client, 0);   /* would wait for ever */
  g_signal_connect (client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_true (np_pipe_client_send (client, message, &error));

  g_cancellable_cancel (cancellable);
  start = g_get_monotonic_time ();
  g_assert_false (np_pipe_client_close (client, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_clear_error (&error);
  g_assert_false (np_pipe_client_get_connected (client));
  g_assert_cmpuint (d.n_disconnected, ==, 1);
  g_assert_error (d.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_nonnull (strstr (d.error->message, "dropped"));
  g_clear_error (&d.error);

  /* Nothing queued: a clean close. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_true (np_pipe_client_close (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (d.n_disconnected, ==, 2);
  g_assert_no_error (d.error);

  np_test_raw_server_free (raw);
}

/* Messages held for a reconnect that close() drops fail it too. */
static void
test_close_drops_held (void)
{
  g_autofree char *name = g_strdup_printf ("nobody-%u", g_random_int ());
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = g_bytes_new_static ("held", 4);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_set_auto_reconnect (client, TRUE);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_no_error (error);

  g_assert_false (np_pipe_client_close (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_nonnull (strstr (error->message, "dropped"));
  WAIT_UNTIL (result != NULL);
}

/* The server's close of a client that never reads: bounded by the close
 * timeout, failing with what the server reports; its async twin the
 * same; a closed connection closes again without error. */
static void
test_connection_close_results (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GBytes) message = np_test_message_new (3, 0, 4 * 1024 * 1024);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GSocket *peers[2];
  guint8 hello[NP_HELLO_SIZE];

  np_pipe_server_set_close_timeout (f->pair.server, 200);
  np_test_hello (hello, 1, 16 * 1024 * 1024);
  for (guint i = 0; i < G_N_ELEMENTS (peers); i++)
    {
      peers[i] = np_test_raw_connect (np_pipe_server_get_path (f->pair.server));
      np_test_raw_write (peers[i], hello, sizeof hello);
    }
  WAIT_UNTIL (f->pair.connections->len == 2);

  for (guint i = 0; i < 2; i++)
    {
      NpPipeConnection *connection = g_ptr_array_index (f->pair.connections, i);

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }

  g_assert_false (np_pipe_connection_close (g_ptr_array_index (f->pair.connections, 0), NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "dropped"));
  g_clear_error (&error);
  g_assert_false (np_pipe_connection_get_connected (g_ptr_array_index (f->pair.connections, 0)));
  WAIT_UNTIL (f->pair.disconnect_errors->len == 1);
  g_assert_error ((GError *) g_ptr_array_index (f->pair.disconnect_errors, 0),
                  NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_true (np_pipe_connection_close (g_ptr_array_index (f->pair.connections, 0), NULL, &error));
  g_assert_no_error (error);

  np_pipe_connection_close_async (g_ptr_array_index (f->pair.connections, 1), NULL, np_test_async_done_cb, &result);
  g_assert_null (result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_connection_close_finish (g_ptr_array_index (f->pair.connections, 1), result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  WAIT_UNTIL (f->pair.disconnect_errors->len == 2);

  for (guint i = 0; i < G_N_ELEMENTS (peers); i++)
    g_object_unref (peers[i]);
}

/* close_async does not block; it ends the same way, and its result says
 * what was lost. */
static void
test_close_async (void)
{
  g_autofree char *name = g_strdup_printf ("stuck-async-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = np_test_message_new (3, 0, 4 * 1024 * 1024);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };

  np_pipe_client_set_close_timeout (client, 200);
  g_signal_connect (client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_true (np_pipe_client_send (client, message, &error));

  np_pipe_client_close_async (client, NULL, np_test_async_done_cb, &result);
  g_assert_null (result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_close_finish (client, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_clear_error (&error);
  WAIT_UNTIL (d.n_disconnected == 1);
  g_assert_error (d.error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_clear_object (&result);

  /* Cancelled, it closes at once. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_true (np_pipe_client_send (client, message, &error));
  np_pipe_client_set_close_timeout (client, 0);
  cancellable = g_cancellable_new ();
  np_pipe_client_close_async (client, cancellable, np_test_async_done_cb, &result);
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_close_finish (client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (client));
  WAIT_UNTIL (d.n_disconnected == 2);

  /* Closing a closed client succeeds at once. */
  g_clear_object (&result);
  g_clear_error (&error);
  np_pipe_client_close_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_close_finish (client, result, &error));
  g_assert_no_error (error);

  g_clear_error (&d.error);
  np_test_raw_server_free (raw);
}

/* close() while connect_async waits for the server's hello cancels the
 * connect: the client stays unconnected. */
static void
test_close_during_connect (void)
{
  g_autofree char *name = g_strdup_printf ("silent-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  np_pipe_client_close (client, NULL, NULL);

  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (client));

  /* The connection it had made is gone too: its hello, the goodbye of a
   * normal close, then the end. */
  {
    GSocket *peer = g_ptr_array_index (raw->accepted, 0);
    guint8 hello[NP_HELLO_SIZE];
    NpFrameHeader header;
    g_autoptr(GBytes) goodbye = NULL;
    guint8 byte;

    np_test_raw_read_exactly (peer, hello, sizeof hello);
    g_assert_true (np_test_raw_read_frame (peer, &header, &goodbye));
    g_assert_cmpuint (header.type, ==, NP_FRAME_GOODBYE);
    g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye)),
                      ==, NP_PIPE_ERROR_CLOSED);
    g_assert_cmpint (np_test_raw_read (peer, &byte, 1), ==, 0);
  }

  np_test_raw_server_free (raw);
}

static gboolean
refuse_cb (NpPipeServer     *server,
           NpPipeConnection *connection,
           gpointer          user_data)
{
  return FALSE;
}

/* connect_async completes once the server accepted the client: a refusal
 * is its error, and the server's limit is known after. */
static void
test_connect_waits_for_hello (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->pair.server));
  g_autoptr(NpPipeClient) refused = np_pipe_client_new (np_pipe_server_get_name (f->pair.server));
  g_autoptr(NpPipeClient) extra = np_pipe_client_new (np_pipe_server_get_name (f->pair.server));
  g_autoptr(GBytes) too_large = g_bytes_new_take (g_malloc0 (4097), 4097);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };
  gulong id;

  np_pipe_server_set_max_message_size (f->pair.server, 4096);
  np_pipe_server_set_max_connections (f->pair.server, 1);

  g_assert_cmpuint (np_pipe_client_get_peer_max_message_size (client), ==, 0);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (np_pipe_client_get_peer_max_message_size (client), ==, 4096);
  g_assert_false (np_pipe_client_send (client, too_large, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);
  g_clear_object (&result);

  /* The server is full. */
  g_signal_connect (extra, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  np_pipe_client_connect_async (extra, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (extra, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_assert_false (np_pipe_client_get_connected (extra));
  g_clear_error (&error);
  g_clear_object (&result);

  /* The application refuses. */
  np_pipe_server_set_max_connections (f->pair.server, 0);
  id = g_signal_connect (f->pair.server, "authorize-peer", G_CALLBACK (refuse_cb), NULL);
  np_pipe_client_connect_async (refused, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (refused, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_signal_handler_disconnect (f->pair.server, id);

  /* A failed connect is not a disconnection too. */
  g_assert_cmpuint (d.n_disconnected, ==, 0);
  g_assert_cmpuint (f->pair.connections->len, ==, 1);
}

/* A listener that accepts and never says hello is given up at the
 * connect timeout, by connect_async and after connect_sync alike. */
static void
test_client_handshake_deadline (void)
{
  g_autofree char *name = g_strdup_printf ("mute-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(NpPipeClient) sync_client = np_pipe_client_new (name);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Disconnects d = { 0 };

  np_pipe_client_set_connect_timeout (client, 100);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, name));
  g_assert_false (np_pipe_client_get_connected (client));
  g_clear_error (&error);

  /* The server is told why: the client's hello, then GOODBYE TIMED_OUT,
   * then the end of the stream. */
  g_assert_cmpuint (raw->accepted->len, ==, 1);
  {
    GSocket *peer = g_ptr_array_index (raw->accepted, 0);
    guint8 hello[NP_HELLO_SIZE];
    NpHello decoded;
    NpFrameHeader header;
    g_autoptr(GBytes) goodbye = NULL;

    np_test_raw_read_exactly (peer, hello, sizeof hello);
    g_assert_true (np_hello_decode (hello, &decoded, &error));
    g_assert_no_error (error);
    g_assert_true (np_test_raw_read_frame (peer, &header, &goodbye));
    g_assert_cmpuint (header.type, ==, NP_FRAME_GOODBYE);
    g_assert_cmpuint (header.length, >=, 4);
    g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (goodbye, NULL), g_bytes_get_size (goodbye)),
                      ==, NP_PIPE_ERROR_TIMED_OUT);
  }

  np_pipe_client_set_connect_timeout (sync_client, 100);
  g_signal_connect (sync_client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
  g_assert_true (np_pipe_client_connect_sync (sync_client, NULL, &error));
  WAIT_UNTIL (d.n_disconnected == 1);
  g_assert_error (d.error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (d.error->message, name));

  g_clear_error (&d.error);
  np_test_raw_server_free (raw);
}

/* What a peer written from docs/protocol.md may send: a goodbye that
 * announces a normal close is a clean close; a malformed goodbye is a
 * protocol error; a higher version is accepted. */
static void
test_goodbyes_and_versions (void)
{
  struct {
    guint8      version;
    GBytes     *goodbye;
    gint        code;      /* -1: clean */
  } cases[] = {
    { 1, np_test_goodbye (NP_PIPE_ERROR_CLOSED, "bye"), -1 },
    { 7, np_test_goodbye (NP_PIPE_ERROR_CLOSED, "bye from a later version"), -1 },
    { 1, np_test_frame (NP_FRAME_GOODBYE, (const guint8 *) "ab", 2), NP_PIPE_ERROR_PROTOCOL },
    { 1, np_test_goodbye (NP_PIPE_ERROR_TIMED_OUT, "too slow"), NP_PIPE_ERROR_TIMED_OUT },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("bye-%u-%u", i, g_random_int ());
      NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
      g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
      g_autoptr(GError) error = NULL;
      Disconnects d = { 0 };

      g_signal_connect (client, "disconnected", G_CALLBACK (count_disconnect_cb), &d);
      g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
      WAIT_UNTIL (raw->accepted->len == 1);

      np_test_raw_write_hello (g_ptr_array_index (raw->accepted, 0), cases[i].version, 1024);
      np_test_raw_write_bytes (g_ptr_array_index (raw->accepted, 0), cases[i].goodbye);

      WAIT_UNTIL (d.n_disconnected == 1);
      if (cases[i].code < 0)
        g_assert_no_error (d.error);
      else
        g_assert_error (d.error, NP_PIPE_ERROR, cases[i].code);

      g_clear_error (&d.error);
      g_bytes_unref (cases[i].goodbye);
      np_test_raw_server_free (raw);
    }
}

typedef struct
{
  Fixture       *f;
  GBytes        *big;
  GAsyncResult  *result;
  GError        *request_error;
  guint          n_messages;
} AbortInHandler;

static void
abort_connected_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    AbortInHandler   *a)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_connection_send (connection, a->big, &error));
  g_assert_no_error (error);
}

/* Waits, in a loop of its own, for a request that the bad frame after
 * this message fails, then closes the connection. */
static void
abort_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  AbortInHandler   *a)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("q", 1);

  a->n_messages++;
  np_pipe_connection_request_async (connection, request, NULL, np_test_async_done_cb, &a->result);
  WAIT_UNTIL (a->result != NULL);
  g_assert_null (np_pipe_connection_request_finish (connection, a->result, &a->request_error));
  /* Without blocking: the peer reads in this same thread. */
  np_pipe_connection_close_async (connection, NULL, NULL, NULL);
  g_assert_false (np_pipe_connection_get_connected (connection));
}

/* A connection closed by the application while it ends on an error, its
 * goodbye not yet out (the peer is slow to read): the frame being
 * written still goes out whole, then the goodbye that says why, and the
 * connection is reported ended on that error, once. */
static void
test_close_while_aborting (Fixture       *f,
                           gconstpointer  data)
{
  AbortInHandler a = { f, NULL, NULL, NULL, 0 };
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->pair.server));
  g_autoptr(GBytes) message = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "a", 1);
  g_autoptr(GBytes) bad = np_test_frame (99, (const guint8 *) "?", 1);
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GPtrArray) frames = NULL;
  guint8 hello[NP_HELLO_SIZE];
  NpTestFrame *frame;

  a.big = np_test_message_new (1, 0, 4 * 1024 * 1024);
  g_signal_connect (f->pair.server, "client-connected", G_CALLBACK (abort_connected_cb), &a);
  g_signal_connect (f->pair.server, "message-received", G_CALLBACK (abort_message_cb), &a);

  np_test_hello (hello, 3, 16 * 1024 * 1024);
  g_byte_array_append (bytes, hello, sizeof hello);
  g_byte_array_append (bytes, g_bytes_get_data (message, NULL), g_bytes_get_size (message));
  g_byte_array_append (bytes, g_bytes_get_data (bad, NULL), g_bytes_get_size (bad));
  np_test_raw_write (socket, bytes->data, bytes->len);

  WAIT_UNTIL (a.n_messages == 1 && a.result != NULL);
  g_assert_error (a.request_error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);

  /* Now read: the hello, the whole message, the goodbye, the end. */
  np_test_raw_read_exactly (socket, hello, sizeof hello);
  frames = np_test_raw_read_frames (socket);

  g_assert_cmpuint (frames->len, ==, 2);
  frame = g_ptr_array_index (frames, 0);
  g_assert_cmpuint (frame->type, ==, NP_FRAME_MESSAGE);
  g_assert_cmpuint (g_bytes_get_size (frame->payload), ==, 4 * 1024 * 1024);
  frame = g_ptr_array_index (frames, 1);
  g_assert_cmpuint (frame->type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (frame->payload, NULL),
                                          g_bytes_get_size (frame->payload)), ==,
                    NP_PIPE_ERROR_PROTOCOL);

  WAIT_UNTIL (f->pair.disconnect_errors->len == 1);
  g_assert_error ((GError *) g_ptr_array_index (f->pair.disconnect_errors, 0),
                  NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&a.request_error);
  g_clear_object (&a.result);
  g_bytes_unref (a.big);
}

/* A request followed by a half-close gets its whole answer, also when
 * the application answers after the handler returned (protocol.md,
 * "Closing"; NpPipeRequest: "or later, after asynchronous work"). */

static gboolean
keep_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 GPtrArray        *kept)
{
  g_ptr_array_add (kept, g_object_ref (request));
  return TRUE;
}

static void
test_half_close_deferred_reply (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) request = np_test_request_frame (NP_FRAME_REQUEST, 1, (const guint8 *) "ask", 3);
  g_autoptr(GBytes) answer = g_bytes_new_static ("answer", 6);
  g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GError) error = NULL;
  NpTestPair pair;
  guint8 hello[NP_HELLO_SIZE];
  NpTestFrame *frame;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (keep_request_cb), kept);
  np_test_pair_start (&pair);

  socket = np_test_raw_connect (np_pipe_server_get_path (pair.server));
  np_test_raw_write_hello (socket, 2, 16 * 1024 * 1024);
  np_test_raw_write_bytes (socket, request);
  g_assert_true (g_socket_shutdown (socket, FALSE, TRUE, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (kept->len == 1);
  /* The end of the stream is in the socket already: let the server see
   * it before the application answers. */
  np_test_run_ready (50);

  np_pipe_request_reply (g_ptr_array_index (kept, 0), answer);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  frames = np_test_raw_read_frames (socket);

  /* The reply, then the goodbye of a normal close. */
  g_assert_cmpuint (frames->len, ==, 2);
  frame = g_ptr_array_index (frames, 0);
  g_assert_cmpuint (frame->type, ==, NP_FRAME_REPLY);
  g_assert_cmpuint (g_bytes_get_size (frame->payload), ==, 4 + 6);
  g_assert_cmpuint (np_request_id_decode (g_bytes_get_data (frame->payload, NULL)), ==, 1);
  frame = g_ptr_array_index (frames, 1);
  g_assert_cmpuint (frame->type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (frame->payload, NULL),
                                          g_bytes_get_size (frame->payload)), ==,
                    NP_PIPE_ERROR_CLOSED);

  WAIT_UNTIL (pair.disconnect_errors->len == 1);
  g_assert_null (g_ptr_array_index (pair.disconnect_errors, 0));

  g_ptr_array_set_size (kept, 0);
  np_test_pair_clear (&pair);
}

/* A connection ended over an error finishes the frame it was writing,
 * drops what it had queued after it (but for frames copied together with
 * that one), then writes the goodbye (protocol.md, "Frames"): the peer
 * reads whole frames, then the goodbye, and not everything queued. */

static void
test_abort_drops_frames_not_begun (void)
{
  NpPipeConnection *connection;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) too_much = g_bytes_new_take (g_malloc0 (2 * 1024 * 1024), 2 * 1024 * 1024);
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *sink = g_malloc (64 * 1024);
  const gsize size = 1000;
  const guint n_sent = 1000;
  guint64 written, frame = NP_FRAME_HEADER_SIZE + size;
  gsize drained = 0;
  guint n_messages = 0;
  NpTestFrame *last;
  NpTestPair pair;

  np_test_pair_init (&pair);
  np_pipe_server_set_max_queued_bytes (pair.server, 2 * 1024 * 1024);
  np_test_pair_start (&pair);

  socket = np_test_raw_connect (np_pipe_server_get_path (pair.server));
  np_test_raw_write_hello (socket, 2, 16 * 1024 * 1024);
  WAIT_UNTIL (pair.connections->len == 1);
  connection = g_ptr_array_index (pair.connections, 0);

  /* Small messages, more than the socket holds: the server stops in the
   * middle of one, with many queued behind it. */
  for (guint i = 0; i < n_sent; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, size);

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }
  np_test_run_ready (50);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), >, 0);

  /* The client reads some, which makes room in the socket, and keeps it
   * (the server's context does not run meanwhile). */
  g_socket_set_blocking (socket, TRUE);
  while (drained < 64 * 1024)
    {
      gssize n = g_socket_receive (socket, (char *) sink, 64 * 1024 - drained, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      drained += n;
    }
  written = NP_HELLO_SIZE + (guint64) n_sent * frame - np_pipe_connection_get_queued_bytes (connection);
  g_assert_cmpuint ((written - NP_HELLO_SIZE) % frame, !=, 0);

  /* A send past max-queued-bytes drops the client: the connection ends
   * over QUEUE_FULL, writing what the socket takes at once. */
  g_assert_false (np_pipe_connection_send (connection, too_much, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);

  /* What the client reads: the hello and the messages written before
   * (64 KiB of it read already), the rest of the one being written, then
   * the goodbye. */
  {
    g_autoptr(GByteArray) all = g_byte_array_new ();
    gssize n;
    const guint8 *p, *end;

    g_byte_array_append (all, sink, drained);
    while ((n = np_test_raw_read (socket, sink, 64 * 1024)) > 0)
      g_byte_array_append (all, sink, n);

    p = all->data + NP_HELLO_SIZE;
    end = all->data + all->len;
    frames = g_ptr_array_new_with_free_func (np_test_frame_free);
    while (p + NP_FRAME_HEADER_SIZE <= end)
      {
        NpFrameHeader header;
        NpTestFrame *f;

        np_test_header_decode (p, &header);
        g_assert_true (p + NP_FRAME_HEADER_SIZE + header.length <= end);
        f = g_new0 (NpTestFrame, 1);
        f->type = header.type;
        f->payload = g_bytes_new (p + NP_FRAME_HEADER_SIZE, header.length);
        g_ptr_array_add (frames, f);
        p += NP_FRAME_HEADER_SIZE + header.length;
      }
    g_assert_true (p == end);
  }

  g_assert_cmpuint (frames->len, >=, 1);
  last = g_ptr_array_index (frames, frames->len - 1);
  g_assert_cmpuint (last->type, ==, NP_FRAME_GOODBYE);
  for (guint i = 0; i < frames->len - 1; i++)
    {
      NpTestFrame *f = g_ptr_array_index (frames, i);

      g_assert_cmpuint (f->type, ==, NP_FRAME_MESSAGE);
      n_messages++;
    }

  /* What was written whole, and the one being written: at least; what
   * was queued after them: dropped, but for the frames of one copy. */
  g_assert_cmpuint (n_messages, >=, (written - NP_HELLO_SIZE + frame - 1) / frame);
  g_assert_cmpuint ((n_messages - (written - NP_HELLO_SIZE + frame - 1) / frame) * frame, <=, 16 * 1024);
  g_assert_cmpuint (n_messages, <, n_sent);

  np_test_pair_clear (&pair);
}

/* close() writes out everything queued, and says so when it could
 * not (np_pipe_client_close(): "Its error is NULL when everything was
 * written"). What waits for the server's hello behind a request is
 * queued too. */

typedef struct
{
  guint   n_disconnected;
  GError *error;
} ClientEnd;

static void
client_end_cb (NpPipeClient *client,
               const GError *error,
               ClientEnd    *end)
{
  end->n_disconnected++;
  g_clear_error (&end->error);
  end->error = error != NULL ? g_error_copy (error) : NULL;
}

static gboolean
echo_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

static void
test_close_drops_parked_as_clean (void)
{
  NpPipeClient *client;
  g_autoptr(GBytes) request = g_bytes_new_static ("request", 7);
  g_autoptr(GBytes) message = g_bytes_new_static ("after the request", 17);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  ClientEnd end = { 0 };
  NpTestPair pair;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  np_test_pair_start (&pair);

  /* Connected, and not waiting for the server to say so. */
  client = np_test_pair_new_client (&pair);
  g_signal_connect (client, "disconnected", G_CALLBACK (client_end_cb), &end);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  /* A request, then a message: both queued, in that order. */
  np_pipe_client_request_async (client, request, NULL, np_test_async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_no_error (error);

  np_pipe_client_close (client, NULL, NULL);
  g_assert_cmpuint (end.n_disconnected, ==, 1);

  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (client, result, &error);

  /* Either the message went out, and the server had the peer as a
   * client, or close() says something was lost: then the peer closed
   * before its handshake was complete, having sent nothing, and never
   * was a client. */
  if (end.error == NULL)
    WAIT_UNTIL (pair.messages->len == 1 && pair.disconnect_errors->len == 1);
  g_clear_error (&end.error);
  np_test_pair_clear (&pair);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-closing-XXXXXX");

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Closing/half-close/server", test_half_close_server);
  ADD ("/Np/Closing/close-while-aborting", test_close_while_aborting);
  g_test_add_func ("/Np/Closing/half-close/client", test_half_close_client);
  g_test_add_func ("/Np/Closing/close-bounded", test_close_bounded);
  g_test_add_func ("/Np/Closing/close-async", test_close_async);
  g_test_add_func ("/Np/Closing/close-sync-results", test_close_sync_results);
  g_test_add_func ("/Np/Closing/close-drops-held", test_close_drops_held);
  ADD ("/Np/Closing/connection-close-results", test_connection_close_results);
  g_test_add_func ("/Np/Closing/close-during-connect", test_close_during_connect);
  ADD ("/Np/Closing/connect-waits-for-hello", test_connect_waits_for_hello);
  g_test_add_func ("/Np/Closing/client-handshake-deadline", test_client_handshake_deadline);
  g_test_add_func ("/Np/Closing/goodbyes-and-versions", test_goodbyes_and_versions);

  /* Each in a process of its own: a crash or a hang fails that test
   * alone, with its report. */
  np_test_add_isolated ("/Np/Closing/half-close/deferred-reply", test_half_close_deferred_reply,
                        60);
  np_test_add_isolated ("/Np/Closing/abort-drops-frames-not-begun", test_abort_drops_frames_not_begun,
                        60);
  np_test_add_isolated ("/Np/Closing/close-drops-parked-as-clean", test_close_drops_parked_as_clean,
                        60);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
