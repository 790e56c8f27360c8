/* test-nested-loops.c: handlers that run main loops of their own, or
 * block, inside the library's signals, and what the library owes them:
 * every message once, in order, and a context that keeps running
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "np-test-util.h"

/* A handler that waits for a reply in a main loop of its own, the way
 * GLib programs wait for an asynchronous result (np_pipe_client_request_sync():
 * "use np_pipe_client_request_async() there"). */

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
greet_cb (NpPipeServer     *server,
          NpPipeConnection *connection,
          gpointer          user_data)
{
  g_autoptr(GBytes) hello = g_bytes_new_static ("hello", 5);

  g_assert_true (np_pipe_connection_send (connection, hello, NULL));
}

typedef struct
{
  gboolean replied;
  gboolean handled;
} NestedWait;

static void
ask_and_wait_cb (NpPipeClient *client,
                 GBytes       *message,
                 NestedWait   *wait)
{
  g_autoptr(GBytes) question = g_bytes_new_static ("question", 8);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_request_async (client, question, NULL, np_test_async_done_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);

  reply = np_pipe_client_request_finish (client, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, question));
  wait->handled = TRUE;
}

static void
test_nested_loop_waits_for_reply (void)
{
  NestedWait wait = { 0 };
  NpTestPair pair;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  g_signal_connect (pair.server, "client-connected", G_CALLBACK (greet_cb), NULL);
  np_test_pair_start (&pair);
  g_signal_connect (np_test_pair_new_client (&pair), "message-received",
                    G_CALLBACK (ask_and_wait_cb), &wait);
  np_test_pair_connect (&pair);

  WAIT_UNTIL (wait.handled);
  np_test_pair_clear (&pair);
}

/* Handlers that run main loops of their own, nested several deep,
 * while messages keep coming: each message is delivered once, whole, in
 * the order sent, whatever level of the nesting delivers it. */

#define N_ORDERED 3000

typedef struct
{
  GArray  *seen;       /* of guint32, the sequence numbers delivered */
  guint    depth;
  guint    max_depth;
  gboolean broken;
} Ordered;

static void
ordered_message_cb (NpPipeClient *client,
                    GBytes       *message,
                    Ordered      *o)
{
  guint32 id, seq;
  guint target;

  if (!np_test_message_parse (message, &id, &seq))
    {
      o->broken = TRUE;
      return;
    }
  g_array_append_val (o->seen, seq);

  /* Every 97th message runs a loop until 50 more arrived, up to 3 deep. */
  if (seq % 97 != 0 || o->depth >= 3)
    return;

  o->depth++;
  o->max_depth = MAX (o->max_depth, o->depth);
  target = MIN (o->seen->len + 50, N_ORDERED);
  while (o->seen->len < target && !o->broken)
    g_main_context_iteration (NULL, TRUE);
  o->depth--;
}

static void
send_ordered_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 gpointer          user_data)
{
  for (guint32 i = 0; i < N_ORDERED; i++)
    {
      /* Some larger than a read, so that a body is read on its own. */
      gsize size = i % 500 == 7 ? 200 * 1024 : np_test_random_size (1, i);
      g_autoptr(GBytes) message = np_test_message_new (1, i, size);

      g_assert_true (np_pipe_connection_send (connection, message, NULL));
    }
}

static void
test_nested_loops_keep_order (void)
{
  Ordered o = { 0 };
  NpTestPair pair;

  o.seen = g_array_new (FALSE, FALSE, sizeof (guint32));
  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "client-connected", G_CALLBACK (send_ordered_cb), NULL);
  np_test_pair_start (&pair);
  g_signal_connect (np_test_pair_new_client (&pair), "message-received",
                    G_CALLBACK (ordered_message_cb), &o);
  np_test_pair_connect (&pair);

  WAIT_UNTIL (o.seen->len == N_ORDERED || o.broken);

  g_assert_false (o.broken);
  g_assert_cmpuint (o.max_depth, >=, 2);
  for (guint i = 0; i < o.seen->len; i++)
    g_assert_cmpuint (g_array_index (o.seen, guint32, i), ==, i);
  g_array_unref (o.seen);
  np_test_pair_clear (&pair);
}

/* request_sync() from a worker, to a server of the main thread's
 * context, while the main thread runs that context with
 * g_main_context_iteration() and does some work between iterations. The
 * server answers in microseconds, if its context gets to run. */

typedef struct
{
  NpPipeClient *client;
  guint         n_requests;
  guint         n_failed;
  gint64        slowest;
  gint          done;
} SyncWorker;

static gpointer
request_sync_worker (gpointer data)
{
  SyncWorker *w = data;
  g_autoptr(GBytes) message = g_bytes_new_static ("x", 1);

  for (guint i = 0; i < w->n_requests; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) reply = NULL;
      gint64 start = g_get_monotonic_time ();

      reply = np_pipe_client_request_sync (w->client, message, NULL, &error);
      w->slowest = MAX (w->slowest, g_get_monotonic_time () - start);
      if (reply == NULL)
        w->n_failed++;
    }

  g_atomic_int_set (&w->done, TRUE);
  g_main_context_wakeup (NULL);

  return NULL;
}

static void
some_work (void)
{
  /* What an application does between two iterations of its loop. */
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 block[4096] = { 0 };

  for (guint i = 0; i < 1024; i++)
    g_checksum_update (checksum, block, sizeof block);
}

static void
test_request_sync_starves_context (void)
{
  SyncWorker w = { 0 };
  GThread *thread;
  NpTestPair pair;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  np_test_pair_start (&pair);
  w.client = np_test_pair_new_client (&pair);
  np_pipe_client_set_request_timeout (w.client, 2000);
  np_test_pair_connect (&pair);
  w.n_requests = 40;

  thread = g_thread_new ("request-sync", request_sync_worker, &w);
  while (!g_atomic_int_get (&w.done))
    {
      g_main_context_iteration (NULL, TRUE);
      some_work ();
    }
  g_thread_join (thread);

  g_test_message ("slowest request: %" G_GINT64_FORMAT " us", w.slowest);
  g_assert_cmpuint (w.n_failed, ==, 0);
  /* A quarter of a second is a thousand times what an answer takes. */
  g_assert_cmpint (w.slowest, <, 250 * G_TIME_SPAN_MILLISECOND);
  np_test_pair_clear (&pair);
}

/* A handler that closes its own connection and then runs the main loop
 * while frames of the same read wait behind its message: the connection
 * reads nothing more, and those frames must not keep the context busy.
 * The peer reads nothing, so that the close waits (for the close
 * timeout) with the connection's queue full: once what happened is
 * dispatched, an iteration that does not block finds nothing to do. */

#define CLOSING_FILLER_SIZE (1024 * 1024)
#define CLOSING_MAX_BUSY    1000

typedef struct
{
  guint    n_messages;
  guint    n_busy;
  gboolean iterated;
} ClosingLoop;

static void
close_and_iterate_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      GBytes           *message,
                      ClosingLoop      *loop)
{
  g_autoptr(GBytes) filler = g_bytes_new_take (g_malloc0 (CLOSING_FILLER_SIZE), CLOSING_FILLER_SIZE);

  if (loop->n_messages++ > 0)
    return;

  g_assert_true (np_pipe_connection_send (connection, filler, NULL));
  np_pipe_connection_close_async (connection, NULL, NULL, NULL);

  while (loop->n_busy < CLOSING_MAX_BUSY && g_main_context_iteration (NULL, FALSE))
    loop->n_busy++;
  loop->iterated = TRUE;
}

static void
test_closed_in_handler_with_frames_left (void)
{
  g_autoptr(GSocket) peer = NULL;
  g_autoptr(GByteArray) frames = g_byte_array_new ();
  ClosingLoop loop = { 0 };
  NpTestPair pair;

  np_test_pair_init (&pair);
  np_pipe_server_set_close_timeout (pair.server, 60000);
  g_signal_connect (pair.server, "message-received", G_CALLBACK (close_and_iterate_cb), &loop);
  np_test_pair_start (&pair);

  peer = np_test_raw_connect (np_pipe_server_get_path (pair.server));
  np_test_raw_write_hello (peer, 3, 16 * 1024 * 1024);
  WAIT_UNTIL (pair.connections->len == 1);

  /* Three messages in one write: the server reads them at once. */
  for (guint i = 0; i < 3; i++)
    {
      guint8 header[NP_FRAME_HEADER_SIZE];

      np_frame_header_encode (header, NP_FRAME_MESSAGE, 4);
      g_byte_array_append (frames, header, sizeof header);
      g_byte_array_append (frames, (const guint8 *) "abcd", 4);
    }
  np_test_raw_write (peer, frames->data, frames->len);

  WAIT_UNTIL (loop.iterated);
  g_assert_cmpuint (pair.disconnect_errors->len, ==, 0);
  g_test_message ("%u busy iterations after the close", loop.n_busy);
  g_assert_cmpuint (loop.n_busy, <, CLOSING_MAX_BUSY);

  /* The peer goes: the close ends, the messages after the first were
   * never delivered. */
  g_socket_close (peer, NULL);
  WAIT_UNTIL (pair.disconnect_errors->len == 1);
  g_assert_cmpuint (loop.n_messages, ==, 1);
  np_test_pair_clear (&pair);
}

/* Deadlines that pass together: the callback of a request that timed
 * out runs a main loop until another request, whose deadline passed at
 * the same time, has timed out too. The nested loop must fire it. The
 * client runs in a context of its own, left alone until both deadlines
 * are past, so that one dispatch finds both due. */

typedef struct
{
  GMainContext *context;
  guint         n_timed_out;
  gboolean      first_done;
} DueTogether;

/* Answers the first request, holds the others unanswered. */
static gboolean
hold_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 GPtrArray        *held)
{
  if (held->len == 0)
    np_pipe_request_reply (request, np_pipe_request_get_message (request));
  g_ptr_array_add (held, g_object_ref (request));
  return TRUE;
}

static void
second_timed_out_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  DueTogether *due = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = np_pipe_client_request_finish (NP_PIPE_CLIENT (object), result, &error);

  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  due->n_timed_out++;
}

static void
first_timed_out_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  DueTogether *due = user_data;

  second_timed_out_cb (object, result, due);
  while (due->n_timed_out < 2)
    g_main_context_iteration (due->context, TRUE);
  due->first_done = TRUE;
}

/* Iterates the default context and @context, neither blocking, until
 * @result is set. */
static void
iterate_both_until (GMainContext  *context,
                    GAsyncResult **result)
{
  while (*result == NULL)
    {
      g_main_context_iteration (NULL, FALSE);
      g_main_context_iteration (context, FALSE);
    }
}

static void
test_deadlines_due_together (void)
{
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GBytes) question = g_bytes_new_static ("question", 8);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GAsyncResult) connected = NULL;
  g_autoptr(GAsyncResult) answered = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  DueTogether due = { 0 };
  NpTestPair pair;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (hold_request_cb), held);
  np_test_pair_start (&pair);

  due.context = g_main_context_new ();
  g_main_context_push_thread_default (due.context);
  client = np_pipe_client_new (np_pipe_server_get_name (pair.server));
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &connected);
  iterate_both_until (due.context, &connected);
  g_assert_true (np_pipe_client_connect_finish (client, connected, &error));
  g_assert_no_error (error);

  /* A first request answered: the client knows the server's settings. */
  np_pipe_client_request_async (client, question, NULL, np_test_async_done_cb, &answered);
  iterate_both_until (due.context, &answered);
  reply = np_pipe_client_request_finish (client, answered, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, question));

  np_pipe_client_set_request_timeout (client, 10);
  np_pipe_client_request_async (client, question, NULL, first_timed_out_cb, &due);
  np_pipe_client_request_async (client, question, NULL, second_timed_out_cb, &due);
  g_assert_true (np_pipe_client_flush_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (held->len == 3);
  np_test_run_for (50);

  while (!due.first_done)
    g_main_context_iteration (due.context, TRUE);
  g_assert_cmpuint (due.n_timed_out, ==, 2);

  np_pipe_client_close_async (client, NULL, NULL, NULL);
  g_clear_object (&client);
  while (g_main_context_iteration (due.context, FALSE))
    ;
  g_main_context_pop_thread_default (due.context);
  g_main_context_unref (due.context);
  g_ptr_array_set_size (held, 0);
  np_test_pair_clear (&pair);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-nested-loops-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  /* Each in a process of its own: a handler that hangs fails its test
   * alone, by a timeout. */
  np_test_add_isolated ("/Np/NestedLoops/waits-for-reply", test_nested_loop_waits_for_reply, 20);
  np_test_add_isolated ("/Np/NestedLoops/keep-order", test_nested_loops_keep_order, 60);
  np_test_add_isolated ("/Np/NestedLoops/request-sync-starves-context",
                        test_request_sync_starves_context, 60);
  np_test_add_isolated ("/Np/NestedLoops/closed-in-handler-with-frames-left",
                        test_closed_in_handler_with_frames_left, 60);
  np_test_add_isolated ("/Np/NestedLoops/deadlines-due-together", test_deadlines_due_together, 20);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
