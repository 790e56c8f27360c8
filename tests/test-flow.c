/* test-flow.c: flow control on both ends, across real processes: a
 * queue that passed half of max-queued-bytes reports queue-drained once
 * it is down to a quarter, once per crossing, never after a close and
 * never without a limit; the connection's send_async and flushes
 *
 * The peer is stopped (SIGSTOP) while the queue fills, so that it reads
 * nothing until it is let go (SIGCONT): no timing is involved.
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

#define LIMIT (1024 * 1024)

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *count)
{
  (*count)++;
}

/* Stops @peer, and waits until it is stopped: the signal alone only
 * asks. */
static void
stop_peer (GSubprocess *peer)
{
  pid_t pid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (peer), NULL, 10);
  siginfo_t info;

  g_subprocess_send_signal (peer, SIGSTOP);
  while (waitid (P_PID, pid, &info, WSTOPPED) != 0)
    g_assert_cmpint (errno, ==, EINTR);
  g_assert_cmpint (info.si_code, ==, CLD_STOPPED);
}

/* Runs what is ready to run, without waiting. */
static void
run_pending (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
wait_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  gboolean *done = user_data;

  g_assert_true (g_subprocess_wait_check_finish (G_SUBPROCESS (object), result, NULL));
  *done = TRUE;
}

/* Waits for @peer to exit with status 0, running the loop meanwhile. */
static void
wait_peer_success (GSubprocess *peer)
{
  gboolean done = FALSE;

  g_subprocess_wait_check_async (peer, NULL, wait_done_cb, &done);
  WAIT_UNTIL (done);
}

/* The client end: a client that sends to a `count` server process. */

typedef struct
{
  char         *name;
  GSubprocess  *peer;
  NpPipeClient *client;
  guint         n_drained;
  guint         n_notified;
  guint64       queued_when_drained;
  GError       *disconnect_error;
  gboolean      disconnected;
  guint32       seq;
} ClientCase;

static void
client_drained_cb (NpPipeClient *client,
                   ClientCase   *c)
{
  c->n_drained++;
  c->queued_when_drained = np_pipe_client_get_queued_bytes (client);
}

static void
client_disconnected_cb (NpPipeClient *client,
                        GError       *error,
                        ClientCase   *c)
{
  c->disconnected = TRUE;
  c->disconnect_error = error != NULL ? g_error_copy (error) : NULL;
}

static void
client_case_setup (ClientCase *c,
                   guint       limit)
{
  const char *args[] = { "count", NULL, NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  c->name = g_strdup_printf ("flow-%u", g_random_int ());
  args[1] = c->name;
  c->peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                args);
  line = np_test_read_line (c->peer);
  g_assert_cmpstr (line, ==, "ready");

  c->client = np_pipe_client_new (c->name);
  np_pipe_client_set_max_queued_bytes (c->client, limit);
  np_pipe_client_set_close_timeout (c->client, 0);
  g_signal_connect (c->client, "queue-drained", G_CALLBACK (client_drained_cb), c);
  g_signal_connect (c->client, "notify::queued-bytes", G_CALLBACK (count_notify_cb),
                    &c->n_notified);
  g_signal_connect (c->client, "disconnected", G_CALLBACK (client_disconnected_cb), c);

  /* Accepted before the server stops: its handshake has come. */
  np_pipe_client_connect_async (c->client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (c->client, result, &error));
  g_assert_no_error (error);
}

static void
client_case_teardown (ClientCase *c)
{
  g_clear_object (&c->client);
  g_clear_object (&c->peer);
  g_clear_error (&c->disconnect_error);
  g_free (c->name);
}

/* Sends the next test message, which the count server checks. */
static void
client_send_next (ClientCase *c)
{
  g_autoptr(GBytes) message = np_test_message_new (1, c->seq, np_test_mixed_size (1, c->seq));
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (c->client, message, &error));
  g_assert_no_error (error);
  c->seq++;
}

/* With the server stopped, sends until the queue passes half the limit
 * (and so never meets QUEUE_FULL). */
static void
client_fill_past_half (ClientCase *c)
{
  guint drained = c->n_drained;

  stop_peer (c->peer);
  while (np_pipe_client_get_queued_bytes (c->client) <= LIMIT / 2)
    client_send_next (c);

  /* Nothing is written while the server is stopped. */
  run_pending ();
  g_assert_cmpuint (c->n_drained, ==, drained);
}

/* The count server's verdict once every client left: messages, bad
 * ones, clients. */
static void
client_case_check_count (ClientCase *c,
                         guint       n_messages)
{
  g_autofree char *expected = g_strdup_printf ("%u 0 1", n_messages);
  g_autofree char *line = NULL;

  g_output_stream_close (g_subprocess_get_stdin_pipe (c->peer), NULL, NULL);
  line = np_test_read_line (c->peer);
  g_assert_cmpstr (line, ==, expected);
  wait_peer_success (c->peer);
}

/* A producer that pauses past half the limit and resumes on the signal:
 * one signal per crossing, with the queue down to a quarter, never
 * QUEUE_FULL, everything delivered; the queued-bytes property reads as
 * the getter and is never notified. */
static void
test_client_drained (void)
{
  ClientCase c = { 0 };
  guint64 value = 1;

  client_case_setup (&c, LIMIT);

  g_object_get (c.client, "queued-bytes", &value, NULL);
  g_assert_cmpuint (value, ==, 0);

  client_fill_past_half (&c);
  g_object_get (c.client, "queued-bytes", &value, NULL);
  g_assert_cmpuint (value, ==, np_pipe_client_get_queued_bytes (c.client));
  g_assert_cmpuint (value, >, LIMIT / 2);

  g_subprocess_send_signal (c.peer, SIGCONT);
  WAIT_UNTIL (c.n_drained == 1);
  g_assert_cmpuint (c.queued_when_drained, <=, LIMIT / 4);

  /* A second crossing, a second signal. */
  client_fill_past_half (&c);
  g_subprocess_send_signal (c.peer, SIGCONT);
  WAIT_UNTIL (c.n_drained == 2);
  g_assert_cmpuint (c.queued_when_drained, <=, LIMIT / 4);

  /* A queue that never passes half says nothing. */
  for (guint i = 0; i < 10; i++)
    client_send_next (&c);
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GError) error = NULL;

    np_pipe_client_flush_async (c.client, NULL, np_test_async_done_cb, &result);
    WAIT_UNTIL (result != NULL);
    g_assert_true (np_pipe_client_flush_finish (c.client, result, &error));
    g_assert_no_error (error);
  }
  run_pending ();
  g_assert_cmpuint (c.n_drained, ==, 2);
  g_assert_cmpuint (c.n_notified, ==, 0);

  np_pipe_client_close (c.client, NULL, NULL);
  g_assert_true (c.disconnected);
  g_assert_no_error (c.disconnect_error);
  client_case_check_count (&c, c.seq);
  client_case_teardown (&c);
}

/* Without a limit there are no marks: no signal, however much was
 * queued. */
static void
test_client_no_limit (void)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ClientCase c = { 0 };

  client_case_setup (&c, 0);
  client_fill_past_half (&c);
  g_subprocess_send_signal (c.peer, SIGCONT);

  np_pipe_client_flush_async (c.client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_flush_finish (c.client, result, &error));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (c.client), ==, 0);
  run_pending ();
  g_assert_cmpuint (c.n_drained, ==, 0);

  np_pipe_client_close (c.client, NULL, NULL);
  client_case_check_count (&c, c.seq);
  client_case_teardown (&c);
}

/* A queue over half that drains while the client closes, or that goes
 * with the connection, reports nothing but the end. */
static void
test_client_closed (void)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ClientCase c = { 0 };

  /* Closing: everything still goes out, and no signal. */
  client_case_setup (&c, LIMIT);
  client_fill_past_half (&c);
  np_pipe_client_close_async (c.client, NULL, np_test_async_done_cb, &result);
  g_subprocess_send_signal (c.peer, SIGCONT);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_close_finish (c.client, result, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (c.disconnected);
  run_pending ();
  g_assert_no_error (c.disconnect_error);
  g_assert_cmpuint (c.n_drained, ==, 0);
  client_case_check_count (&c, c.seq);
  client_case_teardown (&c);

  /* The server goes: the queue goes with the connection. */
  memset (&c, 0, sizeof c);
  client_case_setup (&c, LIMIT);
  client_fill_past_half (&c);
  g_subprocess_force_exit (c.peer);
  WAIT_UNTIL (c.disconnected);
  run_pending ();
  g_assert_cmpuint (c.n_drained, ==, 0);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (c.client), ==, 0);
  g_assert_true (g_subprocess_wait (c.peer, NULL, NULL));
  client_case_teardown (&c);
}

/* The server end: a server in this process, an `echo` client process
 * that sends COUNT messages and checks that each comes back, in order. */

#define ECHO_COUNT 40

typedef struct
{
  NpPipeServer     *server;
  GSubprocess      *peer;
  NpPipeConnection *connection;
  GPtrArray        *received;
  guint             n_drained;
  guint             n_notified;
  guint64           queued_when_drained;
  gboolean          disconnected;
  GError           *disconnect_error;
} ServerCase;

static void
server_message_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   GBytes           *message,
                   ServerCase       *s)
{
  g_ptr_array_add (s->received, g_bytes_ref (message));
}

static void
connection_drained_cb (NpPipeConnection *connection,
                       ServerCase       *s)
{
  s->n_drained++;
  s->queued_when_drained = np_pipe_connection_get_queued_bytes (connection);
}

static void
server_connected_cb (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     ServerCase       *s)
{
  g_assert_null (s->connection);
  s->connection = g_object_ref (connection);
  g_signal_connect (connection, "queue-drained", G_CALLBACK (connection_drained_cb), s);
  g_signal_connect (connection, "notify::queued-bytes", G_CALLBACK (count_notify_cb),
                    &s->n_notified);
}

static void
server_disconnected_cb (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        ServerCase       *s)
{
  s->disconnected = TRUE;
  s->disconnect_error = error != NULL ? g_error_copy (error) : NULL;
}

/* Starts the server with @limit and an echo client, and waits for all
 * its messages; the client is then stopped. */
static void
server_case_setup (ServerCase *s,
                   guint       limit)
{
  g_autofree char *count = g_strdup_printf ("%u", ECHO_COUNT);
  const char *args[] = { "echo", NULL, "7", count, NULL };
  g_autoptr(GError) error = NULL;

  s->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  s->server = np_pipe_server_new (NULL);
  np_pipe_server_set_max_queued_bytes (s->server, limit);
  g_signal_connect (s->server, "client-connected", G_CALLBACK (server_connected_cb), s);
  g_signal_connect (s->server, "message-received", G_CALLBACK (server_message_cb), s);
  g_signal_connect (s->server, "client-disconnected", G_CALLBACK (server_disconnected_cb), s);
  g_assert_true (np_pipe_server_start (s->server, &error));
  g_assert_no_error (error);

  args[1] = np_pipe_server_get_name (s->server);
  s->peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_NONE, args);
  WAIT_UNTIL (s->received->len == ECHO_COUNT);
  g_assert_nonnull (s->connection);
  stop_peer (s->peer);
}

static void
server_case_teardown (ServerCase *s)
{
  g_clear_object (&s->connection);
  g_clear_object (&s->server);
  g_clear_object (&s->peer);
  g_clear_pointer (&s->received, g_ptr_array_unref);
  g_clear_error (&s->disconnect_error);
}

/* The server streams the echoes back to a client that is stopped at
 * first: it pauses past half the limit and resumes on the connection's
 * queue-drained, which comes once per crossing. The client is never
 * dropped, and checks every echo. */
static void
test_server_drained (void)
{
  ServerCase s = { 0 };
  guint n_paused = 0;
  guint64 value = 1;

  server_case_setup (&s, LIMIT);

  for (guint i = 0; i < s.received->len; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                              &error));
      g_assert_no_error (error);

      if (np_pipe_connection_get_queued_bytes (s.connection) > LIMIT / 2)
        {
          guint drained = s.n_drained;

          g_object_get (s.connection, "queued-bytes", &value, NULL);
          g_assert_cmpuint (value, >, LIMIT / 2);
          if (n_paused++ == 0)
            {
              /* Stopped: nothing drains until it goes on. */
              run_pending ();
              g_assert_cmpuint (s.n_drained, ==, 0);
              g_subprocess_send_signal (s.peer, SIGCONT);
            }
          WAIT_UNTIL (s.n_drained == drained + 1);
          g_assert_cmpuint (s.queued_when_drained, <=, LIMIT / 4);
        }
    }

  g_assert_cmpuint (n_paused, >, 0);
  g_assert_cmpuint (s.n_drained, ==, n_paused);
  wait_peer_success (s.peer);
  WAIT_UNTIL (s.disconnected);
  g_assert_no_error (s.disconnect_error);
  run_pending ();
  g_assert_cmpuint (s.n_drained, ==, n_paused);
  g_assert_cmpuint (s.n_notified, ==, 0);
  server_case_teardown (&s);
}

/* A connection closed with its queue over half reports its end, not a
 * drain; without a limit, no signal at all. */
static void
test_server_closed (void)
{
  ServerCase s = { 0 };

  server_case_setup (&s, LIMIT);
  for (guint i = 0; np_pipe_connection_get_queued_bytes (s.connection) <= LIMIT / 2; i++)
    g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                            NULL));
  g_subprocess_force_exit (s.peer);
  WAIT_UNTIL (s.disconnected);
  run_pending ();
  g_assert_cmpuint (s.n_drained, ==, 0);
  g_assert_true (g_subprocess_wait (s.peer, NULL, NULL));
  server_case_teardown (&s);

  memset (&s, 0, sizeof s);
  server_case_setup (&s, 0);
  for (guint i = 0; i < s.received->len; i++)
    g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                            NULL));
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (s.connection), >, LIMIT / 2);
  g_subprocess_send_signal (s.peer, SIGCONT);
  wait_peer_success (s.peer);
  WAIT_UNTIL (s.disconnected);
  run_pending ();
  g_assert_cmpuint (s.n_drained, ==, 0);
  server_case_teardown (&s);
}

/* send_async reports once the message is written, flush_async once all
 * that was queued is, flush_sync writes it out; a cancelled send_async
 * never reaches the client (which would fail on a message it did not
 * send), and a cancelled flush fails at once. */
static void
test_connection_send_async (void)
{
  g_autoptr(GBytes) junk = g_bytes_new_static ("not an echo", 11);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) flush_cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) sent = NULL;
  g_autoptr(GAsyncResult) cancelled = NULL;
  g_autoptr(GAsyncResult) flushed = NULL;
  g_autoptr(GAsyncResult) flush_cancelled = NULL;
  g_autoptr(GError) error = NULL;
  ServerCase s = { 0 };
  guint half = ECHO_COUNT / 2;

  server_case_setup (&s, 0);

  /* The client is stopped: the first half fills the socket and waits. */
  for (guint i = 0; i + 1 < half; i++)
    g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                            NULL));
  np_pipe_connection_send_async (s.connection, g_ptr_array_index (s.received, half - 1), NULL,
                                 np_test_async_done_cb, &sent);
  np_pipe_connection_send_async (s.connection, junk, cancellable, np_test_async_done_cb, &cancelled);
  g_cancellable_cancel (cancellable);
  /* Never from inside the cancel call. */
  g_assert_null (cancelled);
  WAIT_UNTIL (cancelled != NULL);
  g_assert_false (np_pipe_connection_send_finish (s.connection, cancelled, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_null (sent);

  np_pipe_connection_flush_async (s.connection, flush_cancellable, np_test_async_done_cb,
                                  &flush_cancelled);
  g_cancellable_cancel (flush_cancellable);
  WAIT_UNTIL (flush_cancelled != NULL);
  g_assert_false (np_pipe_connection_flush_finish (s.connection, flush_cancelled, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  for (guint i = half; i < s.received->len; i++)
    g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                            NULL));
  np_pipe_connection_flush_async (s.connection, NULL, np_test_async_done_cb, &flushed);

  g_subprocess_send_signal (s.peer, SIGCONT);
  WAIT_UNTIL (sent != NULL && flushed != NULL);
  g_assert_true (np_pipe_connection_send_finish (s.connection, sent, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_connection_flush_finish (s.connection, flushed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (s.connection), ==, 0);
  g_assert_true (np_pipe_connection_flush_sync (s.connection, NULL, &error));
  g_assert_no_error (error);

  wait_peer_success (s.peer);
  WAIT_UNTIL (s.disconnected);
  g_assert_no_error (s.disconnect_error);

  /* Closed: each call says so. */
  g_clear_object (&sent);
  g_assert_false (np_pipe_connection_flush_sync (s.connection, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);
  np_pipe_connection_send_async (s.connection, junk, NULL, np_test_async_done_cb, &sent);
  WAIT_UNTIL (sent != NULL);
  g_assert_false (np_pipe_connection_send_finish (s.connection, sent, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  server_case_teardown (&s);
}

typedef struct
{
  NpPipeConnection *connection;
  GSubprocess      *peer;
  gboolean          callback_ran;
  gboolean          finalized;
} DropCase;

static void
drop_ref_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  DropCase *drop = user_data;

  g_assert_true (np_pipe_connection_send_finish (NP_PIPE_CONNECTION (object), result, NULL));
  drop->callback_ran = TRUE;
  /* The application's only reference. */
  g_clear_object (&drop->connection);
}

static gboolean
flush_from_source_cb (gpointer user_data)
{
  DropCase *drop = user_data;
  g_autoptr(GError) error = NULL;

  /* The pending send completes inside this call, from a source of the
   * server's context: its callback drops the connection while the call
   * still uses it. The client reads from now on. */
  g_subprocess_send_signal (drop->peer, SIGCONT);
  g_assert_true (np_pipe_connection_flush_sync (drop->connection, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (drop->callback_ran);

  return G_SOURCE_REMOVE;
}

static void
finalized_cb (gpointer  data,
              GObject  *where_the_object_was)
{
  ((DropCase *) data)->finalized = TRUE;
}

/* A send_async callback that drops the application's reference runs
 * inside flush_sync(), which holds one until it returns; the connection
 * goes once the client has left. */
static void
test_connection_drop_in_callback (void)
{
  DropCase drop = { NULL };
  ServerCase s = { 0 };

  server_case_setup (&s, 0);
  drop.peer = s.peer;
  for (guint i = 0; i + 1 < s.received->len; i++)
    g_assert_true (np_pipe_connection_send (s.connection, g_ptr_array_index (s.received, i),
                                            NULL));

  drop.connection = g_steal_pointer (&s.connection);
  g_object_weak_ref (G_OBJECT (drop.connection), finalized_cb, &drop);
  np_pipe_connection_send_async (drop.connection,
                                 g_ptr_array_index (s.received, s.received->len - 1), NULL,
                                 drop_ref_cb, &drop);
  g_timeout_add (0, flush_from_source_cb, &drop);

  WAIT_UNTIL (drop.callback_ran);
  g_assert_null (drop.connection);
  wait_peer_success (s.peer);
  WAIT_UNTIL (s.disconnected && drop.finalized);
  server_case_teardown (&s);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-flow-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Flow/client/drained", test_client_drained);
  g_test_add_func ("/Np/Flow/client/no-limit", test_client_no_limit);
  g_test_add_func ("/Np/Flow/client/closed", test_client_closed);
  g_test_add_func ("/Np/Flow/server/drained", test_server_drained);
  g_test_add_func ("/Np/Flow/server/closed", test_server_closed);
  g_test_add_func ("/Np/Flow/connection/send-async", test_connection_send_async);
  g_test_add_func ("/Np/Flow/connection/drop-in-callback", test_connection_drop_in_callback);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
