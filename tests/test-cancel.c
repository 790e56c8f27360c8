/* test-cancel.c: every _async call honours its cancellable at once, and
 * one cancelled before any of its bytes were written leaves no trace on
 * the peer
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gstdio.h>

#include "np-test-util.h"

/* A pipe whose server accepts, says hello, then never reads nor
 * answers: only cancelling ends a call that waits on it. */
typedef struct
{
  char            *name;
  NpTestRawServer *raw;
  NpPipeClient    *client;
} Stuck;

static void
stuck_setup (Stuck         *s,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  guint8 hello[12];

  s->name = g_strdup_printf ("stuck-%u", g_random_int ());
  s->raw = np_test_raw_server_new (s->name, 8, TRUE);
  s->client = np_pipe_client_new (s->name);
  np_pipe_client_set_close_timeout (s->client, 50);
  g_assert_true (np_pipe_client_connect_sync (s->client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (s->raw->accepted->len == 1);

  np_test_hello (hello, 1, 64 * 1024 * 1024);
  np_test_raw_write (g_ptr_array_index (s->raw->accepted, 0), hello, sizeof hello);
  WAIT_UNTIL (np_pipe_client_get_peer_max_message_size (s->client) > 0);
}

static void
stuck_teardown (Stuck         *s,
                gconstpointer  data)
{
  g_clear_object (&s->client);
  np_test_raw_server_free (s->raw);
  g_free (s->name);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* Cancels from the loop, once the call is under way. */
static void
cancel_soon (GCancellable *cancellable)
{
  g_idle_add_full (G_PRIORITY_DEFAULT, cancel_cb, g_object_ref (cancellable), g_object_unref);
}

/* A ping the peer never answers. */
static void
test_ping (Stuck         *s,
           gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_ping_async (s->client, cancellable, np_test_async_done_cb, &result);
  cancel_soon (cancellable);
  WAIT_UNTIL (result != NULL);
  g_assert_cmpint (np_pipe_client_ping_finish (s->client, result, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* Cancelled before it started: never sent at all. */
  g_clear_object (&result);
  g_clear_error (&error);
  np_pipe_client_ping_async (s->client, cancellable, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_cmpint (np_pipe_client_ping_finish (s->client, result, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* A flush and a send to a peer that does not read. */
static void
test_flush_and_send (Stuck         *s,
                     gconstpointer  data)
{
  g_autoptr(GBytes) big = np_test_message_new (1, 0, 8 * 1024 * 1024);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (s->client, big, &error));

  np_pipe_client_flush_async (s->client, cancellable, np_test_async_done_cb, &result);
  cancel_soon (cancellable);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_flush_finish (s->client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&result);
  g_clear_object (&cancellable);

  cancellable = g_cancellable_new ();
  np_pipe_client_send_async (s->client, big, cancellable, np_test_async_done_cb, &result);
  cancel_soon (cancellable);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_send_finish (s->client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The one cancelled before it began is no longer queued. */
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (s->client), <=,
                    8 * 1024 * 1024 + 8 + 12);
}

/* A connect whose server accepts and never says hello. */
static void
test_connect (void)
{
  g_autofree char *name = g_strdup_printf ("mute-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_set_connect_timeout (client, 0);
  np_pipe_client_connect_async (client, cancellable, np_test_async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  g_cancellable_cancel (cancellable);
  /* Never from inside the cancel call. */
  g_assert_null (result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

typedef struct
{
  GPtrArray *messages;
} Received;

static void
on_message (NpPipeServer     *server,
            NpPipeConnection *connection,
            GBytes           *message,
            Received         *r)
{
  g_ptr_array_add (r->messages, g_bytes_ref (message));
}

/* A send cancelled before any of its bytes were written never reaches
 * the server, whether it was cancelled already or while it waited in the
 * queue; the messages around it arrive whole and in order. */
static void
test_send_leaves_no_trace (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  g_autoptr(GCancellable) later = g_cancellable_new ();
  g_autoptr(GBytes) first = np_test_message_new (1, 0, 4 * 1024 * 1024);
  g_autoptr(GBytes) dropped1 = np_test_message_new (1, 1, 100);
  g_autoptr(GBytes) dropped2 = np_test_message_new (1, 2, 100000);
  g_autoptr(GBytes) last = np_test_message_new (1, 3, 100);
  g_autoptr(GAsyncResult) result1 = NULL;
  g_autoptr(GAsyncResult) result2 = NULL;
  g_autoptr(GError) error = NULL;
  Received r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref) };

  g_signal_connect (server, "message-received", G_CALLBACK (on_message), &r);
  g_assert_true (np_pipe_server_start (server, &error));
  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));

  /* The server runs in this thread: nothing is read until the loop
   * runs, so everything after the first message waits in the queue. */
  g_assert_true (np_pipe_client_send (client, first, &error));
  g_cancellable_cancel (cancelled);
  np_pipe_client_send_async (client, dropped1, cancelled, np_test_async_done_cb, &result1);
  np_pipe_client_send_async (client, dropped2, later, np_test_async_done_cb, &result2);
  g_cancellable_cancel (later);
  g_assert_true (np_pipe_client_send (client, last, &error));

  WAIT_UNTIL (result1 != NULL && result2 != NULL);
  g_assert_false (np_pipe_client_send_finish (client, result1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (np_pipe_client_send_finish (client, result2, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  WAIT_UNTIL (r.messages->len == 2);
  g_assert_true (g_bytes_equal (g_ptr_array_index (r.messages, 0), first));
  g_assert_true (g_bytes_equal (g_ptr_array_index (r.messages, 1), last));

  g_ptr_array_unref (r.messages);
}

/* An application that closes the client when its cancellable is
 * cancelled, and uses that cancellable for a request too. */

static gboolean
cancel_close_keep_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      NpPipeRequest    *request,
                      GPtrArray        *kept)
{
  g_ptr_array_add (kept, g_object_ref (request));
  return TRUE;
}

static void
close_client_on_cancel_cb (GCancellable *cancellable,
                           NpPipeClient *client)
{
  np_pipe_client_close (client, NULL, NULL);
}

static void
test_close_from_cancel_handler (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GBytes) message = g_bytes_new_static ("ask", 3);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *kept = g_ptr_array_new_with_free_func (g_object_unref);
  NpTestPair pair;

  np_test_pair_init (&pair);
  g_signal_connect (pair.server, "request-received", G_CALLBACK (cancel_close_keep_cb), kept);
  np_test_pair_start (&pair);
  np_test_pair_connect (&pair);

  /* Connected before the request: it runs first. */
  g_signal_connect (cancellable, "cancelled", G_CALLBACK (close_client_on_cancel_cb), pair.client);
  np_pipe_client_request_async (pair.client, message, cancellable, np_test_async_done_cb, &result);
  WAIT_UNTIL (kept->len == 1);

  g_cancellable_cancel (cancellable);

  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (pair.client, result, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);

  g_ptr_array_unref (kept);
  np_test_pair_clear (&pair);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-cancel-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add ("/Np/Cancel/ping", Stuck, NULL, stuck_setup, test_ping, stuck_teardown);
  g_test_add ("/Np/Cancel/flush-and-send", Stuck, NULL, stuck_setup, test_flush_and_send,
              stuck_teardown);
  g_test_add_func ("/Np/Cancel/connect", test_connect);
  g_test_add_func ("/Np/Cancel/send-leaves-no-trace", test_send_leaves_no_trace);

  /* Each in a process of its own: a crash or a hang fails that test
   * alone, with its report. */
  np_test_add_isolated ("/Np/Cancel/close-from-cancel-handler", test_close_from_cancel_handler, 20);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
