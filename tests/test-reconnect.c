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

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
