/* test-reconnect.c: clients that come back after their server went
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>

#include "np-test-util.h"

/* A client with auto-reconnect, and what it saw. */
typedef struct
{
  NpPipeClient *client;
  guint         n_connected;
  guint         n_disconnected;
  GError       *disconnect_error;
  GArray       *echoed;         /* of guint32: sequence numbers echoed back */
  guint32       next_seq;       /* the next one to send */
  guint32       seq_at_disconnect;
} Watcher;

static void
watcher_connected_cb (NpPipeClient *client,
                      Watcher      *w)
{
  g_assert_true (np_pipe_client_get_connected (client));
  w->n_connected++;
}

static void
watcher_disconnected_cb (NpPipeClient *client,
                         const GError *error,
                         Watcher      *w)
{
  g_assert_false (np_pipe_client_get_connected (client));
  w->n_disconnected++;
  w->seq_at_disconnect = w->next_seq;
  g_clear_error (&w->disconnect_error);
  if (error != NULL)
    w->disconnect_error = g_error_copy (error);
}

static void
watcher_message_cb (NpPipeClient *client,
                    GBytes       *message,
                    Watcher      *w)
{
  guint32 client_id = 0, seq = 0;

  g_assert_true (np_test_message_parse (message, &client_id, &seq));
  g_assert_cmpuint (client_id, ==, 7);
  g_array_append_val (w->echoed, seq);
}

static void
watcher_init (Watcher    *w,
              const char *name)
{
  memset (w, 0, sizeof *w);
  w->client = np_pipe_client_new (name);
  w->echoed = g_array_new (FALSE, FALSE, sizeof (guint32));
  np_pipe_client_set_auto_reconnect (w->client, TRUE);
  g_signal_connect (w->client, "accepted", G_CALLBACK (watcher_connected_cb), w);
  g_signal_connect (w->client, "disconnected", G_CALLBACK (watcher_disconnected_cb), w);
  g_signal_connect (w->client, "message-received", G_CALLBACK (watcher_message_cb), w);
}

static void
watcher_clear (Watcher *w)
{
  g_clear_object (&w->client);
  g_clear_pointer (&w->echoed, g_array_unref);
  g_clear_error (&w->disconnect_error);
}

static gboolean
watcher_send_next (Watcher *w)
{
  g_autoptr(GBytes) message = np_test_message_new (7, w->next_seq, np_test_random_size (7, w->next_seq));
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_send (w->client, message, &error))
    {
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      return FALSE;
    }
  w->next_seq++;
  return TRUE;
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GError **error = user_data;

  if (np_pipe_client_connect_finish (NP_PIPE_CLIENT (source), result, error))
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "connected");
}

/* Connects asynchronously; returns the error, or NULL on success. */
static GError *
connect_and_wait (NpPipeClient *client,
                  GCancellable *cancellable)
{
  GError *error = NULL;

  np_pipe_client_connect_async (client, cancellable, connect_cb, &error);
  WAIT_UNTIL (error != NULL);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_clear_error (&error);

  return error;
}

static GSubprocess *
start_server_process (const char *name)
{
  const char *args[] = { "serve", name, NULL };
  GSubprocess *server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                            G_SUBPROCESS_FLAGS_STDIN_PIPE, args);
  g_autofree char *line = np_test_read_line (server);

  g_assert_cmpstr (line, ==, "ready");
  return server;
}

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  *done = TRUE;
}

static void
stop_server_process (GSubprocess *server)
{
  gboolean done = FALSE;

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_subprocess_wait_async (server, NULL, wait_cb, &done);
  WAIT_UNTIL (done);
}

/* Every echo is a message sent once, in the order sent. */
static void
assert_in_order (GArray *echoed)
{
  for (guint i = 1; i < echoed->len; i++)
    g_assert_cmpuint (g_array_index (echoed, guint32, i - 1), <, g_array_index (echoed, guint32, i));
}

/* The echo server process is killed (SIGKILL) while the client sends,
 * and another started under the same name: the client comes back by
 * itself, and everything it sent from the moment it knew the server had
 * gone (held meanwhile) and after it was back arrives once, in order. */
static void
test_server_killed_while_sending (void)
{
  const char *name = "reconnect-killed";
  g_autoptr(GSubprocess) server = start_server_process (name);
  gboolean killed = FALSE;
  guint32 first_held;
  Watcher w;

  watcher_init (&w, name);
  g_assert_no_error (connect_and_wait (w.client, NULL));
  g_assert_cmpuint (w.n_connected, ==, 1);

  for (guint i = 0; i < 100; i++)
    g_assert_true (watcher_send_next (&w));
  WAIT_UNTIL (w.echoed->len == 100);

  /* Killed while the client goes on sending, one message an iteration. */
  g_subprocess_send_signal (server, SIGKILL);
  g_subprocess_wait_async (server, NULL, wait_cb, &killed);
  while (w.n_disconnected == 0)
    {
      g_assert_true (watcher_send_next (&w));
      g_main_context_iteration (NULL, TRUE);
    }
  WAIT_UNTIL (killed);
  g_assert_false (np_pipe_client_get_connected (w.client));
  first_held = w.seq_at_disconnect;

  /* Disconnected: held, counted as queued. */
  for (guint i = 0; i < 50; i++)
    g_assert_true (watcher_send_next (&w));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (w.client), >, 50 * 8);
  g_assert_cmpuint (w.n_connected, ==, 1);

  g_clear_object (&server);
  server = start_server_process (name);
  WAIT_UNTIL (w.n_connected == 2);
  g_assert_true (np_pipe_client_get_connected (w.client));
  g_assert_cmpuint (w.n_disconnected, ==, 1);

  for (guint i = 0; i < 50; i++)
    g_assert_true (watcher_send_next (&w));
  WAIT_UNTIL (w.echoed->len > 0 && g_array_index (w.echoed, guint32, w.echoed->len - 1) == w.next_seq - 1);

  /* Before the kill everything came back; what was in flight at the
   * kill may be lost, never repeated; from first_held on, all of it. */
  assert_in_order (w.echoed);
  for (guint i = 0; i < 100; i++)
    g_assert_cmpuint (g_array_index (w.echoed, guint32, i), ==, i);
  {
    guint i = w.echoed->len - (w.next_seq - first_held);

    g_assert_cmpuint (g_array_index (w.echoed, guint32, i), ==, first_held);
    for (guint32 seq = first_held; seq < w.next_seq; seq++, i++)
      g_assert_cmpuint (g_array_index (w.echoed, guint32, i), ==, seq);
  }

  np_pipe_client_close (w.client, NULL, NULL);
  g_assert_cmpuint (w.n_disconnected, ==, 2);
  g_assert_no_error (w.disconnect_error);
  watcher_clear (&w);
  stop_server_process (server);
}

/* A client started before its server: connect_async waits for it, and
 * what is sent meanwhile goes out first. The back-off is far longer than
 * the connect timeout: only the watch on the socket directory can let
 * the client in. */
static void
test_client_before_server (void)
{
  const char *name = "reconnect-later";
  g_autoptr(GSubprocess) server = NULL;
  GError *error = NULL;
  Watcher w;

  watcher_init (&w, name);
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  np_pipe_client_set_reconnect_max_interval (w.client, 600000);
  np_pipe_client_set_connect_timeout (w.client, 60000);

  np_pipe_client_connect_async (w.client, NULL, connect_cb, &error);
  g_assert_true (watcher_send_next (&w));
  g_assert_true (watcher_send_next (&w));
  g_assert_false (np_pipe_client_get_connected (w.client));

  server = start_server_process (name);
  WAIT_UNTIL (error != NULL);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);  /* connected */
  g_clear_error (&error);
  g_assert_cmpuint (w.n_connected, ==, 1);

  g_assert_true (watcher_send_next (&w));
  WAIT_UNTIL (w.echoed->len == 3);
  assert_in_order (w.echoed);
  g_assert_cmpuint (g_array_index (w.echoed, guint32, 0), ==, 0);

  np_pipe_client_close (w.client, NULL, NULL);
  watcher_clear (&w);
  stop_server_process (server);
}

/* With no server, connect_async gives up after connect-timeout; what
 * was held is dropped; without auto-reconnect it fails at once. */
static void
test_wait_times_out (void)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("reconnect-nobody");
  g_autoptr(GError) error = NULL;

  error = connect_and_wait (client, NULL);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  np_pipe_client_set_auto_reconnect (client, TRUE);
  np_pipe_client_set_connect_timeout (client, 300);
  np_pipe_client_connect_async (client, NULL, connect_cb, &error);
  g_assert_true (np_pipe_client_send_data (client, (const guint8 *) "x", 1, NULL));
  WAIT_UNTIL (error != NULL);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "reconnect-nobody"));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), ==, 0);
  g_clear_error (&error);

  /* Nothing would send it now. */
  g_assert_false (np_pipe_client_send_data (client, (const guint8 *) "x", 1, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
}

/* Cancelling a connect that waits for a server ends it at once. */
static void
test_wait_cancelled (void)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("reconnect-cancelled");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GError *error = NULL;

  np_pipe_client_set_auto_reconnect (client, TRUE);
  np_pipe_client_set_connect_timeout (client, 0);
  np_pipe_client_connect_async (client, cancellable, connect_cb, &error);
  /* Let it find no server and start waiting. */
  for (guint i = 0; i < 3; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (error);

  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (error != NULL);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
}

static void
server_connected_cb (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     guint            *n_connected)
{
  (*n_connected)++;
}

/* close() while the client waits for its next attempt: it stops for
 * good; what was held is dropped; nothing is left that holds the
 * client. */
static void
test_close_during_backoff (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-close");
  g_autoptr(GError) error = NULL;
  guint n_server_connected = 0;
  Watcher w;

  g_signal_connect (server, "client-connected", G_CALLBACK (server_connected_cb), &n_server_connected);
  g_assert_true (np_pipe_server_start (server, &error));

  watcher_init (&w, "reconnect-close");
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  g_assert_no_error (connect_and_wait (w.client, NULL));
  WAIT_UNTIL (n_server_connected == 1);

  np_pipe_server_stop (server);
  WAIT_UNTIL (w.n_disconnected == 1);
  g_assert_no_error (w.disconnect_error);
  g_assert_true (watcher_send_next (&w));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (w.client), >, 0);

  np_pipe_client_close (w.client, NULL, NULL);
  g_assert_false (np_pipe_client_get_connected (w.client));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (w.client), ==, 0);
  g_assert_cmpuint (w.n_disconnected, ==, 1);  /* no connection, nothing to report */
  g_assert_false (watcher_send_next (&w));

  /* The server comes back: a closed client stays closed. */
  g_assert_true (np_pipe_server_start (server, &error));
  g_object_add_weak_pointer (G_OBJECT (w.client), (gpointer *) &w.client);
  g_object_unref (w.client);
  g_assert_null (w.client);
  g_assert_cmpuint (n_server_connected, ==, 1);
  g_assert_cmpuint (w.n_connected, ==, 1);

  watcher_clear (&w);
  np_pipe_server_stop (server);
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GError **error = user_data;

  if (np_pipe_client_close_finish (NP_PIPE_CLIENT (source), result, error))
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "closed");
}

/* close_async() while held messages wait says they were dropped. */
static void
test_close_async_drops_held (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-close-async");
  g_autoptr(GError) error = NULL;
  GError *closed = NULL;
  Watcher w;

  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-close-async");
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  g_assert_no_error (connect_and_wait (w.client, NULL));
  np_pipe_server_stop (server);
  WAIT_UNTIL (w.n_disconnected == 1);

  g_assert_true (watcher_send_next (&w));
  g_assert_true (watcher_send_next (&w));
  np_pipe_client_close_async (w.client, NULL, close_cb, &closed);
  WAIT_UNTIL (closed != NULL);
  g_assert_error (closed, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_nonnull (strstr (closed->message, "2 messages"));
  g_clear_error (&closed);

  watcher_clear (&w);
}

/* A client let go while it waits to reconnect is disposed: the loop
 * holds no reference. */
static void
test_dispose_during_backoff (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-dispose");
  g_autoptr(GError) error = NULL;
  Watcher w;

  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-dispose");
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  g_assert_no_error (connect_and_wait (w.client, NULL));
  np_pipe_server_stop (server);
  WAIT_UNTIL (w.n_disconnected == 1);
  g_assert_true (watcher_send_next (&w));

  g_object_add_weak_pointer (G_OBJECT (w.client), (gpointer *) &w.client);
  g_object_unref (w.client);
  g_assert_null (w.client);

  watcher_clear (&w);
}

/* A server stopped and started again in this process: the client comes
 * back, many times, each reported once. */
static void
test_restart_many (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-many");
  g_autoptr(GError) error = NULL;
  Watcher w;

  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-many");
  np_pipe_client_set_reconnect_interval (w.client, 1);
  np_pipe_client_set_reconnect_max_interval (w.client, 20);
  g_assert_no_error (connect_and_wait (w.client, NULL));

  for (guint i = 1; i <= 5; i++)
    {
      np_pipe_server_stop (server);
      WAIT_UNTIL (w.n_disconnected == i);
      g_assert_true (np_pipe_server_start (server, &error));
      WAIT_UNTIL (w.n_connected == i + 1);
      g_assert_cmpuint (np_pipe_server_get_n_connections (server), <=, 1);
    }

  np_pipe_client_close (w.client, NULL, NULL);
  watcher_clear (&w);
  np_pipe_server_stop (server);
}

static void
request_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GError **error = user_data;
  g_autoptr(GBytes) reply = np_pipe_client_request_finish (NP_PIPE_CLIENT (source), result, error);

  if (reply != NULL)
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "answered");
}

static gboolean
keep_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 GPtrArray        *kept)
{
  g_ptr_array_add (kept, g_object_ref (request));
  return TRUE;
}

/* A request pending at the disconnect fails with its error; one made
 * while disconnected fails at once with CLOSED. */
static void
test_requests_across_disconnect (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-requests");
  g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GBytes) request = g_bytes_new_static ("q", 1);
  g_autoptr(GError) error = NULL;
  GError *pending = NULL;
  GError *late = NULL;
  Watcher w;

  g_signal_connect (server, "request-received", G_CALLBACK (keep_request_cb), kept);
  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-requests");
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  g_assert_no_error (connect_and_wait (w.client, NULL));

  np_pipe_client_request_async (w.client, request, NULL, request_cb, &pending);
  WAIT_UNTIL (kept->len == 1);
  np_pipe_server_stop (server);
  WAIT_UNTIL (pending != NULL && w.n_disconnected == 1);
  g_assert_true (pending->domain == NP_PIPE_ERROR);
  g_clear_error (&pending);

  np_pipe_client_request_async (w.client, request, NULL, request_cb, &late);
  WAIT_UNTIL (late != NULL);
  g_assert_error (late, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&late);

  np_pipe_client_close (w.client, NULL, NULL);
  watcher_clear (&w);
}

/* Held messages are bounded by max-queued-bytes. */
static void
test_held_bounded (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-bounded");
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (1000), 1000);
  g_autoptr(GError) error = NULL;
  Watcher w;

  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-bounded");
  np_pipe_client_set_reconnect_interval (w.client, 600000);
  np_pipe_client_set_max_queued_bytes (w.client, 2500);
  g_assert_no_error (connect_and_wait (w.client, NULL));
  np_pipe_server_stop (server);
  WAIT_UNTIL (w.n_disconnected == 1);

  g_assert_true (np_pipe_client_send (w.client, big, &error));
  g_assert_true (np_pipe_client_send (w.client, big, &error));
  g_assert_false (np_pipe_client_send (w.client, big, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (w.client), ==, 2 * (8 + 1000));

  np_pipe_client_close (w.client, NULL, NULL);
  watcher_clear (&w);
}

/* Without auto-reconnect nothing comes back, and sending fails at once;
 * `connected` follows connect_sync() too, once the server accepted. */
static void
test_off_by_default (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("reconnect-off");
  g_autoptr(GError) error = NULL;
  Watcher w;

  g_assert_true (np_pipe_server_start (server, &error));
  watcher_init (&w, "reconnect-off");
  np_pipe_client_set_auto_reconnect (w.client, FALSE);
  g_assert_true (np_pipe_client_connect_sync (w.client, NULL, &error));
  WAIT_UNTIL (w.n_connected == 1);

  np_pipe_server_stop (server);
  WAIT_UNTIL (w.n_disconnected == 1);
  g_assert_false (watcher_send_next (&w));

  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_true (np_pipe_client_connect_sync (w.client, NULL, &error));
  WAIT_UNTIL (w.n_connected == 2);

  np_pipe_client_close (w.client, NULL, NULL);
  watcher_clear (&w);
  np_pipe_server_stop (server);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *n_notified)
{
  (*n_notified)++;
}

static void
test_properties (void)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("reconnect-properties");
  guint n_notified = 0;

  g_assert_false (np_pipe_client_get_auto_reconnect (client));
  g_assert_cmpuint (np_pipe_client_get_reconnect_interval (client), ==, 100);
  g_assert_cmpuint (np_pipe_client_get_reconnect_max_interval (client), ==, 5000);

  g_signal_connect (client, "notify::auto-reconnect", G_CALLBACK (count_notify_cb), &n_notified);
  g_object_set (client, "auto-reconnect", TRUE, NULL);
  g_object_set (client, "auto-reconnect", TRUE, NULL);
  g_assert_cmpuint (n_notified, ==, 1);

  g_object_set (client, "reconnect-interval", 250, "reconnect-max-interval", 1000, NULL);
  g_assert_cmpuint (np_pipe_client_get_reconnect_interval (client), ==, 250);
  g_assert_cmpuint (np_pipe_client_get_reconnect_max_interval (client), ==, 1000);
}

/* Sends until the message is still queued: the peer does not read. */
static void
fill_client_queue (NpPipeClient *client)
{
  g_autoptr(GBytes) big = np_test_message_new (7, 0, 8 * 1024 * 1024);
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (client, big, &error));
  g_assert_no_error (error);
  np_test_run_ready (10);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), >, 0);
}

/* A connection the client replaced by a new connect is never detached
 * from it: it keeps reporting to the client after the client is gone. */

static void
count_cb (gpointer  instance,
          gpointer  arg,
          guint    *count)
{
  (*count)++;
}

/* Connects @client to @raw and leaves the connection closing: more
 * queued than the socket holds, and the server's side ended, so that
 * the connection has to keep writing. Returns the server's end. */
static GSocket *
leave_client_closing (NpTestRawServer *raw,
                      NpPipeClient    *client)
{
  g_autoptr(GBytes) probe = g_bytes_new_static ("probe", 5);
  g_autoptr(GError) error = NULL;
  GSocket *first;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 1);
  first = g_ptr_array_index (raw->accepted, 0);

  np_test_raw_write_hello (first, 2, 16 * 1024 * 1024);
  fill_client_queue (client);

  g_assert_true (g_socket_shutdown (first, FALSE, TRUE, &error));
  g_assert_no_error (error);

  /* Once the client read the end of the stream, it no longer sends. */
  while (np_pipe_client_send (client, probe, &error))
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);

  return first;
}

static void
test_reconnect_while_closing_then_drop (void)
{
  g_autofree char *name = np_test_unique_name ("reconnect-closing");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(GError) error = NULL;
  NpPipeClient *client = np_pipe_client_new (name);
  GSocket *first;
  guint8 hello[NP_HELLO_SIZE];
  guint n_disconnected = 0;

  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  first = leave_client_closing (raw, client);

  /* Connecting again is allowed: the first connection is not open. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 2);

  /* The application lets go of the client. */
  g_object_unref (client);

  /* The first server reads again: the first connection went with its
   * client, after writing what the socket took (docs/client.md: dropping
   * the last reference does not wait). Nothing may reach the freed
   * client. */
  {
    g_autofree guint8 *sink = g_malloc (64 * 1024);
    guint64 total = 0;
    gssize n;

    while ((n = np_test_raw_read (first, sink, 64 * 1024)) > 0)
      total += n;
    g_assert_cmpuint (total, >, sizeof hello);
  }
  np_test_run_ready (100);

  np_test_raw_server_free (raw);
}
/* A connect that fails while the previous connection was still
 * closing leaves a client that says it is connected, with nothing to
 * send on, and that never says otherwise. */

static void
test_failed_reconnect_while_closing (void)
{
  g_autofree char *name = np_test_unique_name ("reconnect-fails");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) probe = g_bytes_new_static ("probe", 5);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  GSocket *first;
  guint8 hello[NP_HELLO_SIZE];
  guint n_disconnected = 0;

  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  first = leave_client_closing (raw, client);

  /* A new connect, which the server drops before its hello. */
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 2);
  g_socket_close (g_ptr_array_index (raw->accepted, 1), NULL);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* The first connection ends too. */
  np_test_raw_read_exactly (first, hello, sizeof hello);
  frames = np_test_raw_read_frames (first);
  WAIT_UNTIL (n_disconnected == 1);
  np_test_run_ready (20);

  /* Nothing is connected, and the client was told so: it must say so. */
  g_assert_false (np_pipe_client_send (client, probe, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_false (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}
/* A server that accepts, says hello and closes at once, forever:
 * each connect succeeds, so a client that started its back-off afresh
 * after each one would come back ten times a second for ever. The
 * attempts over a window of time are counted by the listener. */

typedef struct
{
  GSocket *listener;
  guint    n_accepted;
} Flapper;

static gboolean
flapper_accept_cb (GSocket      *listener,
                   GIOCondition  condition,
                   gpointer      data)
{
  Flapper *flapper = data;
  g_autoptr(GSocket) peer = g_socket_accept (listener, NULL, NULL);
  guint8 hello[NP_HELLO_SIZE];

  if (peer == NULL)
    return G_SOURCE_CONTINUE;

  flapper->n_accepted++;
  np_test_hello (hello, 3, 16 * 1024 * 1024);
  g_socket_send (peer, (const char *) hello, sizeof hello, NULL, NULL);
  g_socket_close (peer, NULL);

  return G_SOURCE_CONTINUE;
}

static void
test_reconnect_flapping_server (void)
{
  g_autofree char *name = np_test_unique_name ("flapping");
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, FALSE);
  Flapper flapper = { raw->listener, 0 };
  guint n_connected = 0, n_disconnected = 0;
  GSource *source;

  source = g_socket_create_source (raw->listener, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (flapper_accept_cb), &flapper, NULL);
  g_source_attach (source, NULL);

  /* Back-off from 20 ms up to 10 s. */
  g_object_set (client, "auto-reconnect", TRUE, "reconnect-interval", 20,
                "reconnect-max-interval", 10000, NULL);
  g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &n_connected);
  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);

  /* In 2 s, backing off from 20 ms: 20 + 40 + ... + 1280 passes 2 s
   * after 7 attempts (8 with jitter); started afresh, it comes back
   * some 100 times. */
  np_test_run_for (2000);
  g_assert_cmpuint (flapper.n_accepted, >=, 2);
  g_assert_cmpuint (flapper.n_accepted, <=, 12);
  g_assert_cmpuint (n_connected, >=, 1);
  g_assert_cmpuint (n_disconnected, >=, 1);

  np_pipe_client_close (client, NULL, NULL);
  g_source_destroy (source);
  g_source_unref (source);
  np_test_raw_server_free (raw);
}
/* The reconnect loop under a careless application and a hostile
 * server. The server is a raw listener: it counts the connects it
 * gets, and says hello only when the test wants it to. A window of time
 * (never an assertion about time) gives a live loop the chance to show
 * itself. */

#define RC_WINDOW_MSEC 300

static void
raw_say_hello (GSocket *peer)
{
  np_test_raw_write_hello (peer, 3, 16 * 1024 * 1024);
}

/* Reads what the client wrote until it closes its side. */
static void
raw_wait_closed (GSocket *peer)
{
  guint8 buf[256];

  while (np_test_raw_read (peer, buf, sizeof buf) > 0)
    ;
}

/* Accepts, without blocking, what waits in the backlog; returns how many. */
static guint
raw_drain_backlog (GSocket *listener)
{
  guint n = 0;
  GSocket *peer;

  g_socket_set_blocking (listener, FALSE);
  while ((peer = g_socket_accept (listener, NULL, NULL)) != NULL)
    {
      n++;
      g_socket_close (peer, NULL);
      g_object_unref (peer);
    }

  return n;
}

typedef struct
{
  NpPipeClient *client;
  guint         n_connected;
  guint         n_disconnected;
  GPtrArray    *errors;        /* of each disconnected, NULL for none */
  gboolean      close_async;
  guint         close_on_connected;  /* close in the nth connected, 0: never */
  gboolean      close_on_disconnected;
  gboolean      closed;
} Rc;

static void
rc_close_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Rc *rc = data;
  g_autoptr(GError) error = NULL;

  /* Nothing was held: nothing was dropped. */
  g_assert_true (np_pipe_client_close_finish (NP_PIPE_CLIENT (source), result, &error));
  g_assert_no_error (error);
  rc->closed = TRUE;
}

static void
rc_close (Rc *rc)
{
  if (rc->close_async)
    np_pipe_client_close_async (rc->client, NULL, rc_close_done_cb, rc);
  else
    {
      np_pipe_client_close (rc->client, NULL, NULL);
      rc->closed = TRUE;
    }
}

static void
rc_connected_cb (NpPipeClient *client,
                 Rc           *rc)
{
  g_assert_false (rc->closed);
  rc->n_connected++;
  if (rc->n_connected == rc->close_on_connected)
    rc_close (rc);
}

static void
rc_disconnected_cb (NpPipeClient *client,
                    const GError *error,
                    Rc           *rc)
{
  rc->n_disconnected++;
  g_ptr_array_add (rc->errors, error != NULL ? g_error_copy (error) : NULL);
  if (rc->close_on_disconnected && rc->n_disconnected == 1)
    rc_close (rc);
}

/* A client with auto-reconnect connected to @raw, which says hello to
 * it; unless @keep, the raw server then drops it, and it starts to come
 * back. */
static void
rc_init (Rc              *rc,
         NpTestRawServer *raw,
         guint            interval,
         gboolean         keep)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  rc->errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  rc->client = np_pipe_client_new (raw->path);
  g_object_set (rc->client, "auto-reconnect", TRUE, "reconnect-interval", interval,
                "reconnect-max-interval", interval, NULL);
  g_signal_connect (rc->client, "accepted", G_CALLBACK (rc_connected_cb), rc);
  g_signal_connect (rc->client, "disconnected", G_CALLBACK (rc_disconnected_cb), rc);
  np_pipe_client_connect_async (rc->client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  raw_say_hello (g_ptr_array_index (raw->accepted, 0));
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (rc->client, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rc->n_connected, ==, 1);

  if (!keep)
    g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
}

/* Lets the client go and checks that nothing holds it. */
static void
rc_clear (Rc *rc)
{
  g_object_add_weak_pointer (G_OBJECT (rc->client), (gpointer *) &rc->client);
  g_object_unref (rc->client);
  WAIT_UNTIL (rc->client == NULL);
  g_ptr_array_unref (rc->errors);
}

typedef enum
{
  CLOSE_IN_BACKOFF,
  CLOSE_WHILE_DIALING,
  CLOSE_BEFORE_HELLO,
  CLOSE_IN_DISCONNECTED,
  CLOSE_IN_CONNECTED,
} CloseStep;

/* Fills @listener's backlog with connects no one accepts. */
static GPtrArray *
fill_backlog (const char *path)
{
  GPtrArray *fillers = g_ptr_array_new_with_free_func (g_object_unref);

  for (;;)
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, &error);

      g_assert_no_error (error);
      g_socket_set_blocking (socket, FALSE);
      if (!g_socket_connect (socket, address, NULL, &error))
        {
          g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
                         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING));
          return fillers;
        }
      g_ptr_array_add (fillers, g_steal_pointer (&socket));
    }
}

static void
test_close_during_reconnect (CloseStep step,
                             gboolean  async)
{
  g_autofree char *name = np_test_unique_name ("close-reconnect");
  NpTestRawServer *raw = np_test_raw_server_new (name, 1, TRUE);
  g_autoptr(GPtrArray) fillers = NULL;
  Rc rc = { .close_async = async };
  guint n_accepted;

  if (step == CLOSE_IN_DISCONNECTED)
    rc.close_on_disconnected = TRUE;
  if (step == CLOSE_IN_CONNECTED)
    rc.close_on_connected = 2;

  rc_init (&rc, raw, step == CLOSE_IN_BACKOFF ? 50 : 1, step == CLOSE_WHILE_DIALING);

  switch (step)
    {
    case CLOSE_IN_BACKOFF:
      WAIT_UNTIL (rc.n_disconnected == 1);
      rc_close (&rc);
      break;

    case CLOSE_WHILE_DIALING:
      /* The next connect finds the backlog full, and waits for room. */
      g_source_destroy (raw->source);
      g_clear_pointer (&raw->source, g_source_unref);
      fillers = fill_backlog (raw->path);
      g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
      WAIT_UNTIL (rc.n_disconnected == 1);
      np_test_run_for (50);
      rc_close (&rc);
      WAIT_UNTIL (rc.closed);
      /* The connect that waited for room never got in. */
      g_assert_cmpuint (raw_drain_backlog (raw->listener), ==, fillers->len);
      np_test_raw_server_start_accepting (raw);
      break;

    case CLOSE_BEFORE_HELLO:
      WAIT_UNTIL (raw->accepted->len == 2);
      rc_close (&rc);
      raw_wait_closed (g_ptr_array_index (raw->accepted, 1));
      break;

    case CLOSE_IN_DISCONNECTED:
      WAIT_UNTIL (rc.n_disconnected == 1);
      break;

    case CLOSE_IN_CONNECTED:
      WAIT_UNTIL (raw->accepted->len == 2);
      raw_say_hello (g_ptr_array_index (raw->accepted, 1));
      WAIT_UNTIL (rc.n_connected == 2);
      raw_wait_closed (g_ptr_array_index (raw->accepted, 1));
      break;

    default:
      g_assert_not_reached ();
    }

  WAIT_UNTIL (rc.closed);
  g_assert_false (np_pipe_client_get_connected (rc.client));
  n_accepted = raw->accepted->len;

  /* Closed means closed: no attempt, no connected, whatever comes. */
  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n_accepted);
  g_assert_cmpuint (rc.n_connected, ==, step == CLOSE_IN_CONNECTED ? 2 : 1);
  g_assert_false (np_pipe_client_get_connected (rc.client));

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

static void test_close_in_backoff (void) { test_close_during_reconnect (CLOSE_IN_BACKOFF, FALSE); }
static void test_close_async_in_backoff (void) { test_close_during_reconnect (CLOSE_IN_BACKOFF, TRUE); }
static void test_close_while_dialing (void) { test_close_during_reconnect (CLOSE_WHILE_DIALING, FALSE); }
static void test_close_async_while_dialing (void) { test_close_during_reconnect (CLOSE_WHILE_DIALING, TRUE); }
static void test_close_before_hello (void) { test_close_during_reconnect (CLOSE_BEFORE_HELLO, FALSE); }
static void test_close_async_before_hello (void) { test_close_during_reconnect (CLOSE_BEFORE_HELLO, TRUE); }
static void test_close_in_disconnected (void) { test_close_during_reconnect (CLOSE_IN_DISCONNECTED, FALSE); }
static void test_close_async_in_disconnected (void) { test_close_during_reconnect (CLOSE_IN_DISCONNECTED, TRUE); }
static void test_close_in_connected (void) { test_close_during_reconnect (CLOSE_IN_CONNECTED, FALSE); }
static void test_close_async_in_connected (void) { test_close_during_reconnect (CLOSE_IN_CONNECTED, TRUE); }

/* The last reference dropped while an attempt waits for the hello
 * (which then comes), and just before the server's socket appears. */

static void
test_dispose_during_attempt (void)
{
  g_autofree char *name = np_test_unique_name ("dispose-attempt");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  Rc rc = { 0 };
  GSocket *peer;

  rc_init (&rc, raw, 1, FALSE);
  WAIT_UNTIL (raw->accepted->len == 2);
  peer = g_ptr_array_index (raw->accepted, 1);

  g_object_add_weak_pointer (G_OBJECT (rc.client), (gpointer *) &rc.client);
  g_object_unref (rc.client);
  raw_say_hello (peer);

  /* The attempt ends, the client goes, and its connection with it. */
  WAIT_UNTIL (rc.client == NULL);
  raw_wait_closed (peer);
  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, 2);

  g_ptr_array_unref (rc.errors);
  np_test_raw_server_free (raw);
}

static void
test_dispose_before_server_appears (void)
{
  g_autofree char *name = np_test_unique_name ("dispose-appears");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  Rc rc = { 0 };

  /* Only the directory watch would bring it back. */
  rc_init (&rc, raw, 600000, TRUE);
  np_test_raw_server_free (raw);
  WAIT_UNTIL (rc.n_disconnected == 1);

  g_object_add_weak_pointer (G_OBJECT (rc.client), (gpointer *) &rc.client);
  g_object_unref (rc.client);
  g_assert_null (rc.client);
  raw = np_test_raw_server_new (name, 16, TRUE);

  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, 0);

  g_ptr_array_unref (rc.errors);
  np_test_raw_server_free (raw);
}

/* The socket directory removed while the client waits, and made
 * again by the server that comes back: only the directory watch can
 * bring the client back (the back-off is ten minutes). */

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;

  if (d == NULL)
    return;
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, entry, NULL);
      g_unlink (path);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* @at_once: the directory is removed and made anew once, before the
 * loop runs, so that the watch hears of the removal only once a new one
 * is there (16b); otherwise removed and made anew twice, the loop
 * running in between. */
static void
reconnect_dir_recreated (gboolean at_once)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *top = g_dir_make_tmp ("np-reconnect-dir-XXXXXX", &error);
  g_autofree char *dir = g_build_filename (top, "sub", NULL);
  g_autofree char *path = g_build_filename (dir, "srv", NULL);
  g_autoptr(NpPipeServer) server = np_pipe_server_new (path);
  g_autoptr(GAsyncResult) result = NULL;
  Rc rc = { 0 };

  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  rc.errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  rc.client = np_pipe_client_new (path);
  g_object_set (rc.client, "auto-reconnect", TRUE, "reconnect-interval", 600000, NULL);
  g_signal_connect (rc.client, "accepted", G_CALLBACK (rc_connected_cb), &rc);
  g_signal_connect (rc.client, "disconnected", G_CALLBACK (rc_disconnected_cb), &rc);
  np_pipe_client_connect_async (rc.client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (rc.client, result, &error));
  g_assert_no_error (error);

  np_pipe_server_stop (server);
  WAIT_UNTIL (rc.n_disconnected == 1);

  /* Gone, back empty, gone again, and back with the server. */
  for (guint i = 0; i < (at_once ? 1 : 2); i++)
    {
      remove_tree (dir);
      if (!at_once)
        np_test_run_ready (20);
      g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
      np_test_run_ready (20);
    }
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (rc.n_connected == 2);

  np_pipe_client_close (rc.client, NULL, NULL);
  g_clear_object (&result);
  rc_clear (&rc);
  np_pipe_server_stop (server);
  remove_tree (dir);
  g_rmdir (top);
}

static void
test_reconnect_dir_recreated (void)
{
  reconnect_dir_recreated (FALSE);
}

/* The same, the directory removed and made anew before the loop
 * runs: the watch hears that its directory went only once a new one is
 * there, and must watch that one. */
static void
test_reconnect_dir_recreated_at_once (void)
{
  reconnect_dir_recreated (TRUE);
}

/* A socket left by a dead server, then a server that accepts and
 * never says hello: each attempt is given up after connect-timeout
 * (100 ms) and its connection closed before the next; the client never
 * has two attempts at once, nor spins; close() stops it. */

static void
test_reconnect_no_hello_server (void)
{
  g_autofree char *name = np_test_unique_name ("no-hello");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autoptr(GError) error = NULL;
  Rc rc = { 0 };
  guint n;

  rc_init (&rc, raw, 20, TRUE);
  np_pipe_client_set_connect_timeout (rc.client, 100);

  /* The listener dies; its socket stays, refusing. */
  g_source_destroy (raw->source);
  g_clear_pointer (&raw->source, g_source_unref);
  g_socket_close (raw->listener, NULL);
  g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
  WAIT_UNTIL (rc.n_disconnected == 1);
  g_assert_true (g_file_test (raw->path, G_FILE_TEST_EXISTS));
  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_false (np_pipe_client_get_connected (rc.client));
  np_test_raw_server_free (raw);

  /* A listener that takes every connection and never answers. */
  raw = np_test_raw_server_new (name, 16, TRUE);
  np_test_run_for (1000);
  n = raw->accepted->len;
  /* At most one attempt per connect-timeout, and a few waits; it keeps
   * trying (a loaded machine may run fewer attempts, never more). */
  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpuint (n, <=, 12);
  for (guint i = 0; i + 1 < n; i++)
    raw_wait_closed (g_ptr_array_index (raw->accepted, i));
  g_assert_cmpuint (rc.n_connected, ==, 1);

  np_pipe_client_close (rc.client, NULL, NULL);
  raw_wait_closed (g_ptr_array_index (raw->accepted, raw->accepted->len - 1));
  n = raw->accepted->len;
  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n);

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

/* Turning auto-reconnect off while messages wait for the reconnect:
 * the reconnect stops at once, and `disconnected` says that the held
 * messages were dropped, and how many. */

static void
test_reconnect_turned_off (gconstpointer data)
{
  gboolean in_attempt = GPOINTER_TO_INT (data);
  g_autofree char *name = np_test_unique_name ("turned-off");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) one = g_bytes_new_static ("x", 1);
  const GError *dropped;
  Rc rc = { 0 };
  guint n;

  rc_init (&rc, raw, in_attempt ? 1 : 600000, FALSE);
  WAIT_UNTIL (rc.n_disconnected == 1);
  if (in_attempt)
    WAIT_UNTIL (raw->accepted->len == 2);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, 64);

      g_assert_true (np_pipe_client_send (rc.client, message, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (rc.client), ==, 3 * (8 + 64));

  np_pipe_client_set_auto_reconnect (rc.client, FALSE);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (rc.client), ==, 0);
  g_assert_false (np_pipe_client_send (rc.client, one, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  WAIT_UNTIL (rc.n_disconnected == 2);
  dropped = g_ptr_array_index (rc.errors, 1);
  g_assert_error (dropped, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_nonnull (strstr (dropped->message, "3 messages"));

  /* The attempt under way is given up; none follows, and the hello
   * that comes too late connects nothing. */
  n = raw->accepted->len;
  if (in_attempt)
    {
      GSocket *peer = g_ptr_array_index (raw->accepted, 1);
      guint8 hello[NP_HELLO_SIZE];

      /* The client may have closed it already: the write may fail. */
      np_test_hello (hello, 3, 16 * 1024 * 1024);
      g_socket_send (peer, (const char *) hello, sizeof hello, NULL, NULL);
      raw_wait_closed (peer);
    }
  else
    {
      np_test_raw_server_free (raw);
      raw = np_test_raw_server_new (name, 16, TRUE);
      n = 0;
    }
  np_test_run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n);
  g_assert_cmpuint (rc.n_connected, ==, 1);
  g_assert_cmpuint (rc.n_disconnected, ==, 2);

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

static void test_turned_off_in_backoff (void) { test_reconnect_turned_off (GINT_TO_POINTER (FALSE)); }
static void test_turned_off_in_attempt (void) { test_reconnect_turned_off (GINT_TO_POINTER (TRUE)); }

/* A server that makes its socket again and again and never accepts:
 * each new socket is a hint to the directory watch, and a client that
 * took every hint would connect as often as the socket is made. The
 * back-off (ten minutes) never passes here: only hints could cause
 * attempts, and at most a few of them are taken per wait. */

typedef struct
{
  const char *socket_name;
  guint       n_created;
} Creations;

static void
creation_cb (GFileMonitor      *monitor,
             GFile             *file,
             GFile             *other,
             GFileMonitorEvent  event,
             Creations         *c)
{
  g_autofree char *basename = g_file_get_basename (file);

  if (event == G_FILE_MONITOR_EVENT_CREATED && g_strcmp0 (basename, c->socket_name) == 0)
    c->n_created++;
}

static void
test_reconnect_socket_churn (void)
{
  g_autofree char *name = np_test_unique_name ("churn");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autofree char *dir = g_path_get_dirname (raw->path);
  g_autoptr(GFile) dir_file = g_file_new_for_path (dir);
  g_autoptr(GFileMonitor) monitor = NULL;
  g_autoptr(GError) error = NULL;
  Creations c = { name, 0 };
  guint n_attempts = 0;
  Rc rc = { 0 };

  rc_init (&rc, raw, 600000, TRUE);
  np_test_raw_server_free (raw);
  WAIT_UNTIL (rc.n_disconnected == 1);

  monitor = g_file_monitor_directory (dir_file, G_FILE_MONITOR_NONE, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (monitor, "changed", G_CALLBACK (creation_cb), &c);

  for (guint i = 0; i < 40; i++)
    {
      raw = np_test_raw_server_new (name, 16, FALSE);
      WAIT_UNTIL (c.n_created == i + 1);
      np_test_run_ready (20);
      n_attempts += raw_drain_backlog (raw->listener);
      np_test_raw_server_free (raw);
      np_test_run_ready (20);
    }

  g_assert_cmpuint (n_attempts, >=, 1);
  g_assert_cmpuint (n_attempts, <=, 4);
  g_assert_cmpuint (rc.n_connected, ==, 1);

  np_pipe_client_close (rc.client, NULL, NULL);
  rc_clear (&rc);
}

/* A worker thread sends in a loop while the main thread stops and
 * starts the server again, several times. Messages sent before the
 * client noticed a stop may be lost (at most once); every message it
 * accepted from its `disconnected` on, up to what the server had read
 * when it was stopped next, arrives once, and all in order. */

#define CHURN_MESSAGES 400000

typedef struct
{
  NpPipeClient *client;
  gint          next;        /* the next sequence number to send */
  gint          stop;
  guint8       *accepted;    /* [CHURN_MESSAGES] */
  gint          last_accepted;
} Sender;

static gpointer
churn_sender (gpointer data)
{
  Sender *s = data;

  while (!g_atomic_int_get (&s->stop))
    {
      gint seq = g_atomic_int_add (&s->next, 1);
      g_autoptr(GBytes) message = NULL;

      if (seq >= CHURN_MESSAGES)
        break;
      message = np_test_message_new (9, seq, np_test_random_size (9, seq) / 8 + 8);
      if (np_pipe_client_send (s->client, message, NULL))
        {
          s->accepted[seq] = 1;
          g_atomic_int_set (&s->last_accepted, seq);
        }
      else
        g_thread_yield ();
    }

  return NULL;
}

typedef struct
{
  Sender *sender;
  GArray *received;   /* of gint */
  GArray *lost_from;  /* per stop: the last seq read before it */
  GArray *lost_to;    /* per stop: the first seq sent after `disconnected` */
  guint   n_connected;
} Churn;

static void
churn_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  Churn            *churn)
{
  guint32 client = 0, seq = 0;

  g_assert_true (np_test_message_parse (message, &client, &seq));
  g_assert_cmpuint (client, ==, 9);
  if (churn->received->len > 0)
    g_assert_cmpint (seq, >, g_array_index (churn->received, gint, churn->received->len - 1));
  g_array_append_val (churn->received, seq);
}

static void
churn_disconnected_cb (NpPipeClient *client,
                       const GError *error,
                       Churn        *churn)
{
  gint next = g_atomic_int_get (&churn->sender->next);

  g_array_append_val (churn->lost_to, next);
}

static void
churn_connected_cb (NpPipeClient *client,
                    Churn        *churn)
{
  churn->n_connected++;
}

static gint
churn_last_received (Churn *churn)
{
  return churn->received->len > 0 ? g_array_index (churn->received, gint, churn->received->len - 1) : -1;
}

static void
test_reconnect_threaded_sender (void)
{
  g_autofree char *name = np_test_unique_name ("threaded-sender");
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree guint8 *accepted = g_malloc0 (CHURN_MESSAGES);
  Sender s = { .accepted = accepted, .last_accepted = -1 };
  Churn churn = { &s };
  GThread *thread;
  guint r = 0;
  gint last;

  churn.received = g_array_new (FALSE, FALSE, sizeof (gint));
  churn.lost_from = g_array_new (FALSE, FALSE, sizeof (gint));
  churn.lost_to = g_array_new (FALSE, FALSE, sizeof (gint));
  g_signal_connect (server, "message-received", G_CALLBACK (churn_message_cb), &churn);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  s.client = np_pipe_client_new (name);
  g_object_set (s.client, "auto-reconnect", TRUE, "reconnect-interval", 5,
                "reconnect-max-interval", 20, "max-queued-bytes", 4 * 1024 * 1024, NULL);
  g_signal_connect (s.client, "accepted", G_CALLBACK (churn_connected_cb), &churn);
  g_signal_connect (s.client, "disconnected", G_CALLBACK (churn_disconnected_cb), &churn);
  np_pipe_client_connect_async (s.client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (s.client, result, &error));
  g_assert_no_error (error);

  thread = g_thread_new ("sender", churn_sender, &s);

  for (guint i = 0; i < 5; i++)
    {
      gint seen = churn_last_received (&churn);

      /* Some get through, then the server goes. */
      WAIT_UNTIL (churn_last_received (&churn) > seen + 200 ||
                  g_atomic_int_get (&s.next) >= CHURN_MESSAGES);
      last = churn_last_received (&churn);
      g_array_append_val (churn.lost_from, last);
      np_pipe_server_stop (server);
      WAIT_UNTIL (churn.lost_to->len == i + 1);
      g_assert_true (np_pipe_server_start (server, &error));
      g_assert_no_error (error);
      WAIT_UNTIL (churn.n_connected == i + 2);
    }

  WAIT_UNTIL (churn_last_received (&churn) > g_array_index (churn.lost_to, gint, 4) + 200 ||
              g_atomic_int_get (&s.next) >= CHURN_MESSAGES);
  g_atomic_int_set (&s.stop, TRUE);
  g_thread_join (thread);
  last = g_atomic_int_get (&s.last_accepted);
  g_assert_cmpint (last, >=, 0);
  WAIT_UNTIL (churn_last_received (&churn) == last);

  /* Each accepted message arrived, but for those in flight at a stop. */
  for (gint seq = 0; seq <= last; seq++)
    {
      gboolean may_be_lost = FALSE;

      if (!accepted[seq])
        continue;
      for (guint k = 0; k < churn.lost_from->len; k++)
        if (seq > g_array_index (churn.lost_from, gint, k) &&
            seq < g_array_index (churn.lost_to, gint, k))
          may_be_lost = TRUE;
      while (r < churn.received->len && g_array_index (churn.received, gint, r) < seq)
        r++;
      if (r < churn.received->len && g_array_index (churn.received, gint, r) == seq)
        continue;
      if (!may_be_lost)
        g_error ("message %d was accepted after the client was back, and never arrived", seq);
    }

  np_pipe_client_close (s.client, NULL, NULL);
  g_clear_object (&s.client);
  np_pipe_server_stop (server);
  g_array_unref (churn.received);
  g_array_unref (churn.lost_from);
  g_array_unref (churn.lost_to);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-reconnect-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Reconnect/properties", test_properties);
  g_test_add_func ("/Np/Reconnect/off-by-default", test_off_by_default);
  g_test_add_func ("/Np/Reconnect/server-killed-while-sending", test_server_killed_while_sending);
  g_test_add_func ("/Np/Reconnect/client-before-server", test_client_before_server);
  g_test_add_func ("/Np/Reconnect/wait-times-out", test_wait_times_out);
  g_test_add_func ("/Np/Reconnect/wait-cancelled", test_wait_cancelled);
  g_test_add_func ("/Np/Reconnect/close-during-backoff", test_close_during_backoff);
  g_test_add_func ("/Np/Reconnect/close-async-drops-held", test_close_async_drops_held);
  g_test_add_func ("/Np/Reconnect/dispose-during-backoff", test_dispose_during_backoff);
  g_test_add_func ("/Np/Reconnect/restart-many", test_restart_many);
  g_test_add_func ("/Np/Reconnect/requests-across-disconnect", test_requests_across_disconnect);
  g_test_add_func ("/Np/Reconnect/held-bounded", test_held_bounded);

  /* Each in a process of its own: a crash or a hang fails that test
   * alone, with its report. */
  np_test_add_isolated ("/Np/Reconnect/while-closing-then-drop", test_reconnect_while_closing_then_drop,
                        60);
  np_test_add_isolated ("/Np/Reconnect/failed-while-closing", test_failed_reconnect_while_closing,
                        60);
  np_test_add_isolated ("/Np/Reconnect/flapping-server", test_reconnect_flapping_server, 60);
  np_test_add_isolated ("/Np/Reconnect/close/in-backoff", test_close_in_backoff, 30);
  np_test_add_isolated ("/Np/Reconnect/close-async/in-backoff", test_close_async_in_backoff, 30);
  np_test_add_isolated ("/Np/Reconnect/close/while-dialing", test_close_while_dialing, 30);
  np_test_add_isolated ("/Np/Reconnect/close-async/while-dialing", test_close_async_while_dialing,
                        30);
  np_test_add_isolated ("/Np/Reconnect/close/before-hello", test_close_before_hello, 30);
  np_test_add_isolated ("/Np/Reconnect/close-async/before-hello", test_close_async_before_hello,
                        30);
  np_test_add_isolated ("/Np/Reconnect/close/in-disconnected", test_close_in_disconnected, 30);
  np_test_add_isolated ("/Np/Reconnect/close-async/in-disconnected", test_close_async_in_disconnected,
                        30);
  np_test_add_isolated ("/Np/Reconnect/close/in-connected", test_close_in_connected, 30);
  np_test_add_isolated ("/Np/Reconnect/close-async/in-connected", test_close_async_in_connected,
                        30);
  np_test_add_isolated ("/Np/Reconnect/dispose-during-attempt", test_dispose_during_attempt, 30);
  np_test_add_isolated ("/Np/Reconnect/dispose-before-server-appears", test_dispose_before_server_appears,
                        30);
  np_test_add_isolated ("/Np/Reconnect/dir-recreated", test_reconnect_dir_recreated, 30);
  np_test_add_isolated ("/Np/Reconnect/dir-recreated-at-once", test_reconnect_dir_recreated_at_once,
                        30);
  np_test_add_isolated ("/Np/Reconnect/no-hello-server", test_reconnect_no_hello_server, 30);
  np_test_add_isolated ("/Np/Reconnect/turned-off/in-backoff", test_turned_off_in_backoff, 30);
  np_test_add_isolated ("/Np/Reconnect/turned-off/in-attempt", test_turned_off_in_attempt, 30);
  np_test_add_isolated ("/Np/Reconnect/socket-churn", test_reconnect_socket_churn, 30);
  np_test_add_isolated ("/Np/Reconnect/threaded-sender", test_reconnect_threaded_sender, 120);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
