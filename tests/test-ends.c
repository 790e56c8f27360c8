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

/* A first connect that the server never accepted leaves the client
 * without a connection: np_pipe_client_get_connection() gives none
 * before the first successful connect. */
static void
test_no_connection_before_first_connect (void)
{
  g_autofree char *name = np_test_unique_name ("no-connection");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GBytes) goodbye = np_test_goodbye (NP_PIPE_ERROR_PERMISSION_DENIED, "no");
  guint8 hello[NP_HELLO_SIZE];
  Result result = { 0 };
  GSocket *peer;

  np_pipe_client_connect_async (client, NULL, connect_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);
  np_test_raw_read_exactly (peer, hello, sizeof hello);
  g_assert_null (np_pipe_client_get_connection (client));

  /* Refused. */
  np_test_raw_write_hello (peer, 4, 1024);
  np_test_raw_write_bytes (peer, goodbye);
  WAIT_UNTIL (result.done);
  g_assert_false (result.ok);
  g_assert_error (result.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);

  connection = np_pipe_client_get_connection (client);
  g_assert_null (connection);
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
  g_autoptr(NpPipeConnection) current = NULL;

  np_pipe_client_set_auto_reconnect (pair->client, TRUE);
  np_pipe_client_set_reconnect_interval (pair->client, 10);
  WAIT_UNTIL (np_pipe_client_get_connected (pair->client) && pair->n_accepted == 1);
  old = np_pipe_client_get_connection (pair->client);

  /* The server drops the client; it comes back. */
  g_assert_true (np_pipe_connection_close (g_ptr_array_index (pair->connections, 0), NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (pair->n_accepted == 2);

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

/* A connect_async() to a server of this thread, cancelled, or overtaken
 * by close(), after each number of iterations of the context in turn:
 * it succeeds only when it completed first, and then the client is
 * connected; otherwise it fails, and the client is not. */
static void
test_stop_connect_at_every_step (NpTestPair    *pair,
                                 gconstpointer  data)
{
  gboolean use_close = GPOINTER_TO_INT (data);
  guint n_succeeded = 0;
  guint n_failed = 0;

  for (guint step = 0; step < 12; step++)
    {
      g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (pair->server));
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      Result result = { 0 };
      guint n_accepted = 0;

      g_signal_connect_swapped (client, "accepted", G_CALLBACK (count_cb), &n_accepted);
      np_pipe_client_connect_async (client, cancellable, connect_done_cb, &result);
      for (guint i = 0; i < step && !result.done; i++)
        g_main_context_iteration (NULL, FALSE);

      if (use_close)
        g_assert_true (np_pipe_client_close (client, NULL, NULL));
      else
        g_cancellable_cancel (cancellable);
      WAIT_UNTIL (result.done);

      if (result.ok)
        {
          n_succeeded++;
          g_assert_no_error (result.error);
          /* Done before it was stopped: close() closed it, a cancel
           * came too late to matter. */
          g_assert_true (np_pipe_client_get_connected (client) == !use_close);
        }
      else
        {
          n_failed++;
          g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_assert_false (np_pipe_client_get_connected (client));
          np_test_run_ready (20);
          g_assert_false (np_pipe_client_get_connected (client));
          g_assert_cmpuint (n_accepted, ==, 0);
        }
      result_clear (&result);
      g_assert_true (np_pipe_client_close (client, NULL, NULL));
    }

  /* Every client the server saw went. */
  WAIT_UNTIL (pair->disconnect_errors->len == pair->connections->len);
  g_assert_cmpuint (n_failed, >, 0);
  g_test_message ("%u connects completed first, %u were stopped", n_succeeded, n_failed);
}

/* Messages held for a reconnect, then a connect_sync() of the
 * application's own to a server of its thread, which it does not wait
 * for: they go out first, in order, on the new connection. */
static void
test_held_then_connect_sync (NpTestPair    *pair,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  guint n_disconnected = 0;

  np_pipe_client_set_auto_reconnect (pair->client, TRUE);
  /* The reconnect loop waits long: the application connects first. */
  np_pipe_client_set_reconnect_interval (pair->client, 600000);
  np_pipe_client_set_reconnect_max_interval (pair->client, 600000);
  g_signal_connect_swapped (pair->client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  WAIT_UNTIL (pair->n_accepted == 1);

  np_pipe_server_stop (pair->server);
  WAIT_UNTIL (n_disconnected == 1);
  for (guint32 seq = 0; seq < 3; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, seq, 32);

      g_assert_true (np_pipe_client_send (pair->client, message, &error));
      g_assert_no_error (error);
    }

  g_assert_true (np_pipe_server_start (pair->server, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_connect_sync (pair->client, NULL, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (pair->messages->len == 3);
  for (guint32 seq = 0; seq < 3; seq++)
    {
      guint32 id = 0, got = G_MAXUINT32;

      g_assert_true (np_test_message_parse (g_ptr_array_index (pair->messages, seq), &id, &got));
      g_assert_cmpuint (got, ==, seq);
    }
  WAIT_UNTIL (pair->n_accepted == 2);
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

/* Threads */

#define N_SENDERS   2
#define N_PER_SENDER 3000

typedef struct
{
  NpPipeClient *client;
  guint32       id;
  gint          n_sent;       /* atomic */
  GArray       *sent;         /* the seqs that were accepted */
  gint          done;         /* atomic */
} Sender;

static gpointer
sender_thread (gpointer data)
{
  Sender *sender = data;

  for (guint32 seq = 0; seq < N_PER_SENDER; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (sender->id, seq, NP_TEST_MESSAGE_MIN + seq % 64);
      g_autoptr(GError) error = NULL;

      if (np_pipe_client_send (sender->client, message, &error))
        g_array_append_val (sender->sent, seq);
      else
        g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_atomic_int_inc (&sender->n_sent);
      /* The main thread waits for that. */
      g_main_context_wakeup (NULL);
    }
  g_atomic_int_set (&sender->done, 1);
  g_main_context_wakeup (NULL);

  return NULL;
}

typedef struct
{
  NpPipeClient *client;
  gint          stop;  /* atomic */
  gint          done;  /* atomic */
  guint         n_calls;
} Meddler;

/* Calls the client's other methods meanwhile, and changes its limits. */
static gpointer
meddler_thread (gpointer data)
{
  Meddler *meddler = data;

  while (!g_atomic_int_get (&meddler->stop))
    {
      g_autoptr(NpPipeConnection) connection = np_pipe_client_get_connection (meddler->client);
      g_autoptr(GError) error = NULL;

      if (connection != NULL)
        {
          (void) np_pipe_connection_get_queued_bytes (connection);
          (void) np_pipe_connection_get_max_queued_bytes (connection);
          (void) np_pipe_connection_get_connected (connection);
        }
      (void) np_pipe_client_get_connected (meddler->client);
      (void) np_pipe_client_get_queued_bytes (meddler->client);
      (void) np_pipe_client_get_peer_max_message_size (meddler->client);
      np_pipe_client_set_max_queued_bytes (meddler->client, 32 * 1024 * 1024 + (meddler->n_calls % 2));
      np_pipe_client_set_request_timeout (meddler->client, 20000 + meddler->n_calls % 7);
      np_pipe_client_set_close_timeout (meddler->client, 5000 + meddler->n_calls % 3);
      np_pipe_client_set_max_pending_requests (meddler->client, 100 + meddler->n_calls % 5);
      if (!np_pipe_client_flush_sync (meddler->client, NULL, &error))
        g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      meddler->n_calls++;
    }
  g_atomic_int_set (&meddler->done, 1);
  g_main_context_wakeup (NULL);

  return NULL;
}

static void
count_messages_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   GBytes           *message,
                   GArray          **received)
{
  guint32 id = 0, seq = 0;

  g_assert_true (np_test_message_parse (message, &id, &seq));
  g_assert_cmpuint (id, <, N_SENDERS);
  g_array_append_val (received[id], seq);
}

/* Two threads send while the client reconnects, a third calls its other
 * methods and changes its limits: what each thread sent successfully
 * arrives once, in its order, held messages first. */
static void
test_held_order_two_threads (NpTestPair    *pair,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GArray *received[N_SENDERS];
  Sender senders[N_SENDERS];
  GThread *threads[N_SENDERS];
  GThread *meddler_thread_;
  Meddler meddler = { .client = pair->client };
  guint n_disconnected = 0;

  for (guint i = 0; i < N_SENDERS; i++)
    received[i] = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_signal_connect (pair->server, "message-received", G_CALLBACK (count_messages_cb), received);
  np_pipe_client_set_auto_reconnect (pair->client, TRUE);
  np_pipe_client_set_reconnect_interval (pair->client, 5);
  np_pipe_client_set_reconnect_max_interval (pair->client, 20);
  g_signal_connect_swapped (pair->client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  WAIT_UNTIL (pair->n_accepted == 1);

  np_pipe_server_stop (pair->server);
  WAIT_UNTIL (n_disconnected == 1);

  meddler_thread_ = g_thread_new ("meddler", meddler_thread, &meddler);
  for (guint i = 0; i < N_SENDERS; i++)
    {
      senders[i] = (Sender) { .client = pair->client, .id = i,
                              .sent = g_array_new (FALSE, FALSE, sizeof (guint32)) };
      threads[i] = g_thread_new ("sender", sender_thread, &senders[i]);
    }

  /* Some are held; then the server comes back while they send. */
  WAIT_UNTIL (g_atomic_int_get (&senders[0].n_sent) >= N_PER_SENDER / 4 &&
              g_atomic_int_get (&senders[1].n_sent) >= N_PER_SENDER / 4);
  g_assert_true (np_pipe_server_start (pair->server, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (g_atomic_int_get (&senders[0].done) && g_atomic_int_get (&senders[1].done));
  for (guint i = 0; i < N_SENDERS; i++)
    g_thread_join (threads[i]);
  g_atomic_int_set (&meddler.stop, 1);
  WAIT_UNTIL (pair->n_accepted == 2);
  /* Its flush_sync() waits for the server, of this thread. */
  WAIT_UNTIL (g_atomic_int_get (&meddler.done));
  g_thread_join (meddler_thread_);

  for (guint i = 0; i < N_SENDERS; i++)
    {
      /* The client stayed connected since it came back: nothing sent
       * was refused. */
      g_assert_cmpuint (senders[i].sent->len, ==, N_PER_SENDER);
      WAIT_UNTIL (received[i]->len >= senders[i].sent->len);
      g_assert_cmpuint (received[i]->len, ==, senders[i].sent->len);
      for (guint j = 0; j < received[i]->len; j++)
        g_assert_cmpuint (g_array_index (received[i], guint32, j), ==,
                          g_array_index (senders[i].sent, guint32, j));
      g_array_unref (senders[i].sent);
      g_array_unref (received[i]);
    }
  g_assert_cmpuint (n_disconnected, ==, 1);
}

typedef struct
{
  NpPipeClient *client;
  gboolean      ok;
  GError       *error;
  gint          done;   /* atomic */
} SyncConnect;

static gpointer
connect_sync_thread (gpointer data)
{
  SyncConnect *connect = data;

  connect->ok = np_pipe_client_connect_sync (connect->client, NULL, &connect->error);
  g_atomic_int_set (&connect->done, 1);
  g_main_context_wakeup (NULL);

  return NULL;
}

/* close() from the client's thread while another thread waits in
 * connect_sync() for a server (another process) that sent its hello but
 * never its settings: the connect fails at once, and the client stays
 * closed. */
static void
test_close_during_connect_sync (void)
{
  g_autofree char *name = np_test_unique_name ("close-connect-sync");
  const char *args[] = { "serve-as", name, "hello-only", NULL };
  g_autoptr(GSubprocess) peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *ready = np_test_read_line (peer);
  g_autofree char *accepted = NULL;
  g_autoptr(GError) error = NULL;
  SyncConnect connect = { 0 };
  guint n_accepted = 0;
  GThread *thread;

  g_assert_cmpstr (ready, ==, "ready");
  connect.client = np_pipe_client_new (name);
  /* No limit of its own: only close() ends the wait. */
  np_pipe_client_set_connect_timeout (connect.client, 0);
  g_signal_connect_swapped (connect.client, "accepted", G_CALLBACK (count_cb), &n_accepted);
  thread = g_thread_new ("connect", connect_sync_thread, &connect);
  accepted = np_test_read_line (peer);
  g_assert_cmpstr (accepted, ==, "accepted");

  g_assert_true (np_pipe_client_close (connect.client, NULL, NULL));
  WAIT_UNTIL (g_atomic_int_get (&connect.done));
  g_thread_join (thread);

  g_assert_false (connect.ok);
  g_assert_error (connect.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&connect.error);
  g_assert_false (np_pipe_client_get_connected (connect.client));
  g_assert_cmpuint (n_accepted, ==, 0);
  g_clear_object (&connect.client);

  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-ends-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Ends/close-overtakes-connect-async", test_close_overtakes_connect_async);
  g_test_add_func ("/Np/Ends/no-connection-before-first-connect", test_no_connection_before_first_connect);
  g_test_add ("/Np/Ends/connection-after-dispose", NpTestPair, NULL,
              np_test_pair_setup, test_connection_after_dispose, np_test_pair_teardown);
  g_test_add ("/Np/Ends/connection-after-reconnect", NpTestPair, NULL,
              np_test_pair_setup, test_connection_after_reconnect, np_test_pair_teardown);

  g_test_add ("/Np/Ends/stop-connect-at-every-step/cancel", NpTestPair, GINT_TO_POINTER (FALSE),
              np_test_pair_setup_server, test_stop_connect_at_every_step, np_test_pair_teardown);
  g_test_add ("/Np/Ends/stop-connect-at-every-step/close", NpTestPair, GINT_TO_POINTER (TRUE),
              np_test_pair_setup_server, test_stop_connect_at_every_step, np_test_pair_teardown);
  g_test_add ("/Np/Ends/held-then-connect-sync", NpTestPair, NULL,
              np_test_pair_setup, test_held_then_connect_sync, np_test_pair_teardown);
  g_test_add ("/Np/Ends/held-order-two-threads", NpTestPair, NULL,
              np_test_pair_setup, test_held_order_two_threads, np_test_pair_teardown);
  g_test_add_func ("/Np/Ends/close-during-connect-sync", test_close_during_connect_sync);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/disconnected", test_drop_in_disconnected, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/message-received", test_drop_in_message, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/request-received", test_drop_in_request, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/connection-queue-drained", test_drop_in_connection_drained, 30);
  np_test_add_isolated ("/Np/Ends/drop-in-handler/connection-notify-connected", test_drop_in_connection_notify, 30);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
