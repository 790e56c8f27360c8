/* test-contract.c: the thread contract, where other threads call
 *
 * Signals are emitted in the main context that was the thread-default
 * one when the object was created; a thread that merely could take that
 * context (it pushed none, and nobody iterates it right now) does not
 * run them. Blocking calls keep what they promise when another thread
 * closes meanwhile.
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sys/syscall.h>

#include "np-test-util.h"

/* Where a signal ran: the main thread, or another one. */
typedef struct
{
  GThread *main;
  gint     n_main;
  gint     n_foreign;
} Seen;

static void
seen_init (Seen *seen)
{
  seen->main = g_thread_self ();
  seen->n_main = 0;
  seen->n_foreign = 0;
}

static void
seen_mark (Seen *seen)
{
  if (g_thread_self () == seen->main)
    g_atomic_int_inc (&seen->n_main);
  else
    g_atomic_int_inc (&seen->n_foreign);
}

static void
seen_disconnected_cb (NpPipeClient *client,
                      GError       *error,
                      Seen         *seen)
{
  seen_mark (seen);
}

static void
seen_notify_cb (GObject    *object,
                GParamSpec *pspec,
                Seen       *seen)
{
  seen_mark (seen);
}

static void
seen_client_disconnected_cb (NpPipeServer     *server,
                             NpPipeConnection *connection,
                             GError           *error,
                             Seen             *seen)
{
  seen_mark (seen);
}

static void
seen_items_changed_cb (GListModel *model,
                       guint       position,
                       guint       removed,
                       guint       added,
                       Seen       *seen)
{
  seen_mark (seen);
}

static void
seen_client_connected_cb (NpPipeServer      *server,
                          NpPipeConnection  *connection,
                          NpPipeConnection **out)
{
  g_set_object (out, connection);
}

/* A server and a client of it, both of the main thread's default
 * context, connected. */
typedef struct
{
  NpPipeServer     *server;
  NpPipeClient     *client;
  NpPipeConnection *connection;
} Pair;

static void
pair_init (Pair *pair)
{
  g_autoptr(GError) error = NULL;

  pair->server = np_pipe_server_new (NULL);
  pair->connection = NULL;
  g_signal_connect (pair->server, "client-connected",
                    G_CALLBACK (seen_client_connected_cb), &pair->connection);
  g_assert_true (np_pipe_server_start (pair->server, &error));
  g_assert_no_error (error);

  pair->client = np_pipe_client_new (np_pipe_server_get_name (pair->server));
  g_assert_true (np_pipe_client_connect_sync (pair->client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (pair->connection != NULL);
  g_signal_handlers_disconnect_by_func (pair->server, seen_client_connected_cb,
                                        &pair->connection);
}

static void
pair_clear (Pair *pair)
{
  g_clear_object (&pair->connection);
  g_clear_object (&pair->client);
  g_clear_object (&pair->server);
}

static gpointer
close_client_thread (gpointer data)
{
  NpPipeClient *client = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_close (client, NULL, &error));
  g_assert_no_error (error);

  return NULL;
}

/* A worker that pushed no main context closes a client of the main
 * thread while the main loop sits between iterations (here, in
 * g_thread_join()): disconnected and notify::connected are emitted in the
 * main thread once its loop runs, not in the worker that could have
 * taken the context. */
static void
test_client_close_from_worker (void)
{
  Pair pair;
  Seen disconnected, connected;
  GThread *worker;

  pair_init (&pair);
  seen_init (&disconnected);
  seen_init (&connected);
  g_signal_connect (pair.client, "disconnected", G_CALLBACK (seen_disconnected_cb), &disconnected);
  g_signal_connect (pair.client, "notify::connected", G_CALLBACK (seen_notify_cb), &connected);

  worker = g_thread_new ("closer", close_client_thread, pair.client);
  g_thread_join (worker);

  g_assert_cmpint (disconnected.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);
  g_assert_false (np_pipe_client_get_connected (pair.client));

  WAIT_UNTIL (disconnected.n_main == 1 && connected.n_main == 1);
  g_assert_cmpint (disconnected.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);

  pair_clear (&pair);
}

static gpointer
close_connection_thread (gpointer data)
{
  NpPipeConnection *connection = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_connection_close (connection, NULL, &error));
  g_assert_no_error (error);

  return NULL;
}

/* The same for a connection a worker closes: the server's
 * client-disconnected, the list's items-changed and the connection's
 * notify::connected run in the server's context. */
static void
test_connection_close_from_worker (void)
{
  Pair pair;
  Seen gone, listed, connected;
  GListModel *connections;
  GThread *worker;

  pair_init (&pair);
  connections = np_pipe_server_get_connections (pair.server);
  seen_init (&gone);
  seen_init (&listed);
  seen_init (&connected);
  g_signal_connect (pair.server, "client-disconnected",
                    G_CALLBACK (seen_client_disconnected_cb), &gone);
  g_signal_connect (connections, "items-changed", G_CALLBACK (seen_items_changed_cb), &listed);
  g_signal_connect (pair.connection, "notify::connected", G_CALLBACK (seen_notify_cb), &connected);

  worker = g_thread_new ("closer", close_connection_thread, pair.connection);
  g_thread_join (worker);

  g_assert_cmpint (gone.n_foreign, ==, 0);
  g_assert_cmpint (listed.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);

  WAIT_UNTIL (gone.n_main == 1 && listed.n_main == 1 && connected.n_main == 1);
  g_assert_cmpint (gone.n_foreign, ==, 0);
  g_assert_cmpint (listed.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (connections), ==, 0);

  g_signal_handlers_disconnect_by_data (connections, &listed);
  pair_clear (&pair);
}

static gpointer
unref_thread (gpointer data)
{
  g_object_unref (data);

  return NULL;
}

/* The last reference to a server goes in a worker: no handler of the
 * application runs there, nor later: the server is going away, and its
 * connections close without client-disconnected. A connections list the
 * application still holds empties in the server's context, with
 * items-changed there. */
static void
test_server_last_unref_from_worker (void)
{
  Pair pair;
  Seen gone, notified, listed, connected, client_gone;
  g_autoptr(GListModel) connections = NULL;
  GThread *worker;

  pair_init (&pair);
  connections = g_object_ref (np_pipe_server_get_connections (pair.server));
  g_assert_cmpuint (g_list_model_get_n_items (connections), ==, 1);
  seen_init (&gone);
  seen_init (&notified);
  seen_init (&listed);
  seen_init (&connected);
  seen_init (&client_gone);
  g_signal_connect (pair.server, "client-disconnected",
                    G_CALLBACK (seen_client_disconnected_cb), &gone);
  g_signal_connect (pair.server, "notify", G_CALLBACK (seen_notify_cb), &notified);
  g_signal_connect (connections, "items-changed", G_CALLBACK (seen_items_changed_cb), &listed);
  g_signal_connect (pair.connection, "notify::connected", G_CALLBACK (seen_notify_cb), &connected);
  g_signal_connect (pair.client, "disconnected", G_CALLBACK (seen_disconnected_cb), &client_gone);

  worker = g_thread_new ("unref", unref_thread, g_steal_pointer (&pair.server));
  g_thread_join (worker);

  g_assert_cmpint (gone.n_foreign, ==, 0);
  g_assert_cmpint (notified.n_foreign, ==, 0);
  g_assert_cmpint (listed.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);

  /* The client sees the end; the list empties. */
  WAIT_UNTIL (client_gone.n_main == 1 && g_list_model_get_n_items (connections) == 0 &&
              connected.n_main == 1);
  g_assert_cmpint (listed.n_main, ==, 1);
  g_assert_cmpint (listed.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);
  g_assert_cmpint (client_gone.n_foreign, ==, 0);
  g_assert_cmpint (gone.n_main + gone.n_foreign, ==, 0);
  g_assert_cmpint (notified.n_main + notified.n_foreign, ==, 0);
  g_assert_false (np_pipe_connection_get_connected (pair.connection));

  g_signal_handlers_disconnect_by_data (connections, &listed);
  pair_clear (&pair);
}

/* The same in the server's own thread, from a handler: dispose emits
 * nothing either; a connection the application holds is notified
 * afterwards. */
typedef struct
{
  NpPipeServer *server;
  Seen         *connected;
  gint          connected_in_dispose;
} UnrefCase;

static gboolean
unref_server_cb (gpointer data)
{
  UnrefCase *unref = data;

  g_clear_object (&unref->server);
  unref->connected_in_dispose = g_atomic_int_get (&unref->connected->n_main);

  return G_SOURCE_REMOVE;
}

static void
test_server_last_unref_in_context (void)
{
  Pair pair;
  Seen gone, notified, listed, connected, client_gone;
  UnrefCase unref = { .connected_in_dispose = -1 };
  GListModel *connections;

  pair_init (&pair);
  connections = np_pipe_server_get_connections (pair.server);
  seen_init (&gone);
  seen_init (&notified);
  seen_init (&listed);
  seen_init (&connected);
  seen_init (&client_gone);
  g_signal_connect (pair.server, "client-disconnected",
                    G_CALLBACK (seen_client_disconnected_cb), &gone);
  g_signal_connect (pair.server, "notify", G_CALLBACK (seen_notify_cb), &notified);
  g_signal_connect (connections, "items-changed", G_CALLBACK (seen_items_changed_cb), &listed);
  g_signal_connect (pair.connection, "notify::connected", G_CALLBACK (seen_notify_cb), &connected);
  g_signal_connect (pair.client, "disconnected", G_CALLBACK (seen_disconnected_cb), &client_gone);

  unref.server = g_steal_pointer (&pair.server);
  unref.connected = &connected;
  g_idle_add (unref_server_cb, &unref);
  WAIT_UNTIL (unref.server == NULL);
  g_assert_cmpint (unref.connected_in_dispose, ==, 0);

  WAIT_UNTIL (client_gone.n_main == 1 && connected.n_main == 1);
  g_assert_cmpint (gone.n_main + gone.n_foreign, ==, 0);
  g_assert_cmpint (notified.n_main + notified.n_foreign, ==, 0);
  g_assert_cmpint (listed.n_main + listed.n_foreign, ==, 0);
  g_assert_cmpint (connected.n_foreign, ==, 0);
  g_assert_false (np_pipe_connection_get_connected (pair.connection));

  pair_clear (&pair);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  runtime_dir = np_test_runtime_dir_new ("np-test-contract-XXXXXX");

  g_test_add_func ("/Np/Contract/client/close-from-worker", test_client_close_from_worker);
  g_test_add_func ("/Np/Contract/connection/close-from-worker", test_connection_close_from_worker);
  g_test_add_func ("/Np/Contract/server/last-unref-from-worker", test_server_last_unref_from_worker);
  g_test_add_func ("/Np/Contract/server/last-unref-in-context", test_server_last_unref_in_context);

  ret = g_test_run ();
  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
