/* test-ends.c: a client's connection, the one object of both ends, as
 * a careless application and a hostile peer use it
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "np-test-util.h"

static void
count_cb (gpointer data)
{
  (*(guint *) data)++;
}

static void
set_flag_cb (gpointer  data,
             GObject  *where_the_object_was)
{
  *(gboolean *) data = TRUE;
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  GError   *error;
} Result;

static void
result_clear (Result *result)
{
  g_clear_error (&result->error);
  memset (result, 0, sizeof *result);
}

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *res,
                 gpointer      user_data)
{
  Result *result = user_data;

  result->ok = np_pipe_client_connect_finish (NP_PIPE_CLIENT (source), res, &result->error);
  result->done = TRUE;
}

/* Asserts that every operation of @connection, a connection that ended,
 * fails with an error, and that none crashes. */
static void
assert_connection_fails (NpPipeConnection *connection)
{
  g_autoptr(GBytes) message = g_bytes_new_static ("late", 4);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = NULL;
  Result result = { 0 };

  g_assert_false (np_pipe_connection_get_connected (connection));
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), ==, 0);

  g_assert_false (np_pipe_connection_send (connection, message, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_false (np_pipe_connection_send_data (connection, (const guint8 *) "x", 1, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  reply = np_pipe_connection_request_sync (connection, message, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  {
    GAsyncResult *res = NULL;

    np_pipe_connection_request_async (connection, message, NULL, np_test_async_done_cb, &res);
    WAIT_UNTIL (res != NULL);
    reply = np_pipe_connection_request_finish (connection, res, &error);
    g_assert_null (reply);
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
    g_clear_error (&error);
    g_clear_object (&res);

    np_pipe_connection_ping_async (connection, NULL, np_test_async_done_cb, &res);
    WAIT_UNTIL (res != NULL);
    g_assert_cmpint (np_pipe_connection_ping_finish (connection, res, &error), ==, -1);
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
    g_clear_error (&error);
    g_clear_object (&res);

    np_pipe_connection_send_async (connection, message, NULL, np_test_async_done_cb, &res);
    WAIT_UNTIL (res != NULL);
    g_assert_false (np_pipe_connection_send_finish (connection, res, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
    g_clear_error (&error);
    g_clear_object (&res);

    /* Closing what is closed succeeds: there is nothing to lose. */
    np_pipe_connection_close_async (connection, NULL, np_test_async_done_cb, &res);
    WAIT_UNTIL (res != NULL);
    g_assert_true (np_pipe_connection_close_finish (connection, res, &error));
    g_assert_no_error (error);
    g_clear_object (&res);
  }

  g_assert_true (np_pipe_connection_close (connection, NULL, &error));
  g_assert_no_error (error);
  result_clear (&result);
}

/* close() while connect_async() waits for the server's hello: the
 * connect fails, and the client stays closed, even when the hello is
 * read before the cancel is handled. */
static void
test_close_overtakes_connect_async (void)
{
  g_autofree char *name = np_test_unique_name ("close-connect");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) settings = np_test_settings (4);
  guint8 hello[NP_HELLO_SIZE];
  guint n_accepted = 0;
  Result result = { 0 };
  GSocket *peer;

  g_signal_connect_swapped (client, "accepted", G_CALLBACK (count_cb), &n_accepted);
  np_pipe_client_connect_async (client, NULL, connect_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  /* The client's hello came: it waits for the server's. */
  np_test_raw_read_exactly (peer, hello, sizeof hello);
  g_assert_false (result.done);

  g_assert_true (np_pipe_client_close (client, NULL, NULL));
  np_test_raw_write_hello (peer, 4, 1024);
  np_test_raw_write_bytes (peer, settings);
  WAIT_UNTIL (result.done);

  g_assert_false (result.ok);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (client));
  g_assert_cmpuint (n_accepted, ==, 0);
  result_clear (&result);
  np_test_raw_server_free (raw);
}

/* A connection a client gave out, used once the client is gone. */
static void
test_connection_after_dispose (NpTestPair    *pair,
                               gconstpointer  data)
{
  g_autoptr(NpPipeConnection) connection = NULL;
  gboolean finalized = FALSE;

  connection = np_pipe_client_get_connection (pair->client);
  g_assert_nonnull (connection);
  g_assert_true (np_pipe_connection_get_connected (connection));

  g_object_weak_ref (G_OBJECT (pair->client), set_flag_cb, &finalized);
  g_clear_object (&pair->client);
  g_assert_true (finalized);

  assert_connection_fails (connection);
  /* The server learns that the client went. */
  WAIT_UNTIL (pair->disconnect_errors->len == 1);
}

/* A connection a client gave out, used once the client reconnected:
 * it is not the client's current one, and fails. */
static void
test_connection_after_reconnect (NpTestPair    *pair,
                                 gconstpointer  data)
{
  g_autoptr(NpPipeConnection) old = NULL;
  g_autoptr(GBytes) message = g_bytes_new_static ("new", 3);
  g_autoptr(GError) error = NULL;
  guint n_accepted = 0;
  g_autoptr(NpPipeConnection) current = NULL;

  np_pipe_client_set_auto_reconnect (pair->client, TRUE);
  np_pipe_client_set_reconnect_interval (pair->client, 10);
  g_signal_connect_swapped (pair->client, "accepted", G_CALLBACK (count_cb), &n_accepted);
  /* connect_sync() did not wait for a server of its own thread. */
  WAIT_UNTIL (np_pipe_client_get_connected (pair->client) && n_accepted == 1);
  old = np_pipe_client_get_connection (pair->client);

  /* The server drops the client; it comes back. */
  g_assert_true (np_pipe_connection_close (g_ptr_array_index (pair->connections, 0), NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (n_accepted == 2);

  current = np_pipe_client_get_connection (pair->client);
  g_assert_nonnull (current);
  g_assert_true (current != old);
  g_assert_true (np_pipe_connection_get_connected (current));
  assert_connection_fails (old);

  /* The client's own calls go to the new connection. */
  g_assert_true (np_pipe_client_send (pair->client, message, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (pair->messages->len == 1);
}

/* Dropping the last reference in a handler */

typedef enum
{
  DROP_IN_DISCONNECTED,
  DROP_IN_MESSAGE,
  DROP_IN_REQUEST,
  DROP_IN_CONNECTION_DRAINED,
  DROP_IN_CONNECTION_NOTIFY,
} DropIn;

typedef struct
{
  NpPipeClient  *client;
  NpPipeRequest *request;     /* kept by the request handler */
  guint          n_messages;  /* delivered to the client */
  guint          n_after;     /* delivered once it was dropped */
  gboolean      *finalized;
  gboolean       dropped;
} Drop;

static void
drop_client (Drop *drop)
{
  g_assert_nonnull (drop->client);
  drop->dropped = TRUE;
  g_clear_object (&drop->client);
}

static void
drop_on_disconnected_cb (NpPipeClient *client,
                         const GError *error,
                         Drop         *drop)
{
  drop_client (drop);
}

static void
drop_on_message_cb (NpPipeClient *client,
                    GBytes       *message,
                    Drop         *drop)
{
  drop->n_messages++;
  /* The dispatch holds the client until it ends: what came in the same
   * read still reaches a live client. */
  g_assert_false (*drop->finalized);
  if (drop->dropped)
    drop->n_after++;
  else
    drop_client (drop);
}

static gboolean
drop_on_request_cb (NpPipeClient  *client,
                    NpPipeRequest *request,
                    Drop          *drop)
{
  drop->request = g_object_ref (request);
  drop_client (drop);
  /* Answered once the client is gone. */
  np_pipe_request_reply_data (request, (const guint8 *) "late", 4);

  return TRUE;
}

static void
drop_on_connection_cb (NpPipeConnection *connection,
                       Drop             *drop)
{
  drop_client (drop);
}

static void
drop_on_notify_cb (NpPipeConnection *connection,
                   GParamSpec       *pspec,
                   Drop             *drop)
{
  if (!np_pipe_connection_get_connected (connection) && !drop->dropped)
    drop_client (drop);
}

static void
server_request_done_cb (GObject      *source,
                        GAsyncResult *res,
                        gpointer      user_data)
{
  GError **error = user_data;
  g_autoptr(GBytes) reply = np_pipe_connection_request_finish (NP_PIPE_CONNECTION (source), res, error);

  if (reply != NULL)
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "answered");
}

/* The application drops its only reference to a client from one of the
 * client's handlers, or of its connection's, while the connection
 * dispatches: nothing crashes, the client goes once the dispatch is
 * over, its connection fails cleanly, and it does not reconnect. */
static void
test_drop_in_handler (gconstpointer data)
{
  DropIn where = GPOINTER_TO_INT (data);
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  NpPipeConnection *server_end;
  gboolean finalized = FALSE;
  guint n_accepted = 0;
  Drop drop = { 0 };
  NpTestPair pair;

  np_test_pair_init (&pair);
  np_test_pair_start (&pair);
  drop.client = np_test_pair_new_client (&pair);
  pair.client = NULL;
  g_object_weak_ref (G_OBJECT (drop.client), set_flag_cb, &finalized);
  drop.finalized = &finalized;
  g_object_set (drop.client, "auto-reconnect", TRUE, "reconnect-interval", 10,
                "max-queued-bytes", 64 * 1024, NULL);
  g_signal_connect_swapped (drop.client, "accepted", G_CALLBACK (count_cb), &n_accepted);
  g_signal_connect (drop.client, "message-received", G_CALLBACK (drop_on_message_cb), &drop);

  g_assert_true (np_pipe_client_connect_sync (drop.client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (pair.connections->len == 1 && n_accepted == 1);
  server_end = g_ptr_array_index (pair.connections, 0);
  connection = np_pipe_client_get_connection (drop.client);
  g_assert_nonnull (connection);

  switch (where)
    {
    case DROP_IN_DISCONNECTED:
      g_signal_connect (drop.client, "disconnected", G_CALLBACK (drop_on_disconnected_cb), &drop);
      g_assert_true (np_pipe_connection_close (server_end, NULL, &error));
      g_assert_no_error (error);
      break;

    case DROP_IN_MESSAGE:
      /* Three messages in one read: the first drops the client. */
      for (guint i = 0; i < 3; i++)
        {
          g_autoptr(GBytes) message = np_test_message_new (1, i, 16);

          g_assert_true (np_pipe_connection_send (server_end, message, &error));
          g_assert_no_error (error);
        }
      g_assert_true (np_pipe_connection_flush_sync (server_end, NULL, &error));
      g_assert_no_error (error);
      break;

    case DROP_IN_REQUEST:
      {
        g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
        GError *answer = NULL;

        g_signal_connect (drop.client, "request-received", G_CALLBACK (drop_on_request_cb), &drop);
        np_pipe_connection_request_async (server_end, request, NULL, server_request_done_cb, &answer);
        WAIT_UNTIL (answer != NULL);
        /* Answered before the client went, or failed with it: either
         * way, once. */
        if (!g_error_matches (answer, G_IO_ERROR, G_IO_ERROR_EXISTS))
          g_assert_error (answer, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
        g_clear_error (&answer);
      }
      break;

    case DROP_IN_CONNECTION_DRAINED:
      {
        g_autoptr(GBytes) big = np_test_message_new (1, 0, 40 * 1024);

        g_signal_connect (connection, "queue-drained", G_CALLBACK (drop_on_connection_cb), &drop);
        g_assert_true (np_pipe_connection_send (connection, big, &error));
        g_assert_no_error (error);
      }
      break;

    case DROP_IN_CONNECTION_NOTIFY:
      g_signal_connect (connection, "notify::connected", G_CALLBACK (drop_on_notify_cb), &drop);
      g_assert_true (np_pipe_connection_close (server_end, NULL, &error));
      g_assert_no_error (error);
      break;

    default:
      g_assert_not_reached ();
    }

  WAIT_UNTIL (drop.dropped && finalized);
  WAIT_UNTIL (pair.disconnect_errors->len >= 1);
  g_assert_cmpuint (drop.n_messages, ==, where == DROP_IN_MESSAGE ? 1 + drop.n_after : 0);
  g_assert_false (np_pipe_connection_get_connected (connection));
  assert_connection_fails (connection);
  g_clear_object (&drop.request);

  /* A client that was dropped does not come back. */
  g_assert_cmpuint (pair.connections->len, ==, 1);
  np_test_run_ready (10);
  g_assert_cmpuint (pair.connections->len, ==, 1);

  np_test_pair_clear (&pair);
}

static void test_drop_in_disconnected (void) { test_drop_in_handler (GINT_TO_POINTER (DROP_IN_DISCONNECTED)); }
static void test_drop_in_message (void) { test_drop_in_handler (GINT_TO_POINTER (DROP_IN_MESSAGE)); }
static void test_drop_in_request (void) { test_drop_in_handler (GINT_TO_POINTER (DROP_IN_REQUEST)); }
static void test_drop_in_connection_drained (void) { test_drop_in_handler (GINT_TO_POINTER (DROP_IN_CONNECTION_DRAINED)); }
static void test_drop_in_connection_notify (void) { test_drop_in_handler (GINT_TO_POINTER (DROP_IN_CONNECTION_NOTIFY)); }

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-ends-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Ends/close-overtakes-connect-async", test_close_overtakes_connect_async);
  g_test_add ("/Np/Ends/connection-after-dispose", NpTestPair, NULL,
              np_test_pair_setup, test_connection_after_dispose, np_test_pair_teardown);
  g_test_add ("/Np/Ends/connection-after-reconnect", NpTestPair, NULL,
              np_test_pair_setup, test_connection_after_reconnect, np_test_pair_teardown);

  np_test_add_isolated ("/Np/Ends/drop-in-handler/disconnected", test_drop_in_disconnected, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/message-received", test_drop_in_message, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/request-received", test_drop_in_request, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/connection-queue-drained", test_drop_in_connection_drained, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/connection-notify-connected", test_drop_in_connection_notify, 30);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
