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

/* close() while connect_sync() is in connect(): the attempt is over
 * when close() returns, even though the socket connects afterwards. */

typedef struct
{
  NpPipeClient *client;
  pid_t         tid;
  gboolean      result;
  GError       *error;
} ConnectCase;

static gpointer
connect_thread (gpointer data)
{
  ConnectCase *connect = data;

  g_atomic_int_set (&connect->tid, (pid_t) syscall (SYS_gettid));
  connect->result = np_pipe_client_connect_sync (connect->client, NULL, &connect->error);

  return NULL;
}

/* Whether thread @tid of this process waits inside system call @nr;
 * FALSE with *@readable unset when the kernel does not say. */
static gboolean
thread_in_syscall (pid_t     tid,
                   long      nr,
                   gboolean *readable)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/task/%d/syscall", (int) tid);
  g_autofree char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    {
      *readable = FALSE;
      return FALSE;
    }

  /* "running" while it runs. */
  *readable = TRUE;
  return g_ascii_isdigit (contents[0]) && g_ascii_strtoll (contents, NULL, 10) == nr;
}

static void
test_close_during_connect_sync (void)
{
  g_autofree char *name = g_strdup_printf ("contract-connect-%u", g_random_int ());
  g_autoptr(GPtrArray) fillers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocket) taken = NULL;
  g_autoptr(GError) error = NULL;
  ConnectCase connect = { 0 };
  NpTestRawServer *raw;
  gboolean readable = TRUE;
  GThread *worker;

  /* A listener of this process, no Np server, whose backlog is full: a
   * connect waits in the kernel for room. */
  raw = np_test_raw_server_new (name, 0, FALSE);
  for (;;)
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (raw->path);
      g_autoptr(GSocket) filler = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, &error);

      g_assert_no_error (error);
      g_socket_set_blocking (filler, FALSE);
      if (!g_socket_connect (filler, address, NULL, &error))
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          g_clear_error (&error);
          break;
        }
      g_ptr_array_add (fillers, g_steal_pointer (&filler));
    }
  g_assert_cmpuint (fillers->len, >, 0);

  connect.client = np_pipe_client_new (name);
  np_pipe_client_set_connect_timeout (connect.client, 0);
  worker = g_thread_new ("connect", connect_thread, &connect);

  /* Until the worker waits in connect(). */
  while (g_atomic_int_get (&connect.tid) == 0 ||
         !thread_in_syscall (g_atomic_int_get (&connect.tid), SYS_connect, &readable))
    {
      if (!readable)
        break;
      g_main_context_iteration (NULL, FALSE);
    }

  if (!readable)
    {
      /* Let the worker go, and say why nothing was tested. */
      g_ptr_array_set_size (fillers, 0);
      taken = g_socket_accept (raw->listener, NULL, NULL);
      g_assert_true (np_pipe_client_close (connect.client, NULL, NULL));
      g_thread_join (worker);
      g_clear_error (&connect.error);
      g_clear_object (&connect.client);
      np_test_raw_server_free (raw);
      g_test_skip ("/proc/self/task/TID/syscall cannot be read");
      return;
    }

  g_assert_true (np_pipe_client_close (connect.client, NULL, &error));
  g_assert_no_error (error);

  /* Room: the socket connects now, after close() returned. */
  taken = g_socket_accept (raw->listener, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (worker);

  g_assert_false (connect.result);
  g_assert_error (connect.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (connect.client));

  g_clear_error (&connect.error);
  g_clear_object (&connect.client);
  np_test_raw_server_free (raw);
}

typedef struct
{
  NpPipeClient *client;
  GCancellable *cancellable;
  gboolean      result;
  GError       *error;
} HelloCase;

static gpointer
connect_hello_thread (gpointer data)
{
  HelloCase *hello = data;

  hello->result = np_pipe_client_connect_sync (hello->client, hello->cancellable, &hello->error);

  return NULL;
}

/* close() while connect_sync() waits for the hello of a server (of
 * another process) that never answers: connect_sync() fails with
 * G_IO_ERROR_CANCELLED at once, and the client is not connected. */
static void
test_close_during_hello_wait (void)
{
  g_autofree char *name = g_strdup_printf ("contract-mute-%u", g_random_int ());
  const char *args[] = { "serve-as", name, "mute", NULL };
  g_autoptr(GSubprocess) peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (peer);
  g_autoptr(GError) error = NULL;
  HelloCase hello = { 0 };
  guint cancelled;
  GThread *worker;

  g_assert_cmpstr (line, ==, "ready");

  hello.client = np_pipe_client_new (name);
  hello.cancellable = g_cancellable_new ();
  cancelled = g_signal_lookup ("cancelled", G_TYPE_CANCELLABLE);
  /* Far longer than the test: only close() can end the wait. */
  np_pipe_client_set_connect_timeout (hello.client, 0);
  worker = g_thread_new ("connect", connect_hello_thread, &hello);

  /* The attempt is under way once connect_sync() chained the caller's
   * cancellable to it. */
  while (!g_signal_has_handler_pending (hello.cancellable, cancelled, 0, TRUE))
    g_main_context_iteration (NULL, FALSE);

  g_assert_true (np_pipe_client_close (hello.client, NULL, &error));
  g_assert_no_error (error);
  g_thread_join (worker);

  g_assert_false (hello.result);
  g_assert_error (hello.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (np_pipe_client_get_connected (hello.client));

  g_clear_error (&hello.error);
  g_clear_object (&hello.cancellable);
  g_clear_object (&hello.client);
  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
}

/* The convenience senders check their error argument themselves, before
 * building a message. */
static void
test_send_preconditions (void)
{
  Pair pair;
  static const guint8 data[] = { 1, 2, 3 };
  g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_uint32 (7));
  GError *set = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "already set");

  pair_init (&pair);

  g_test_expect_message ("Np", G_LOG_LEVEL_CRITICAL, "*np_pipe_client_send_data*error*");
  g_assert_false (np_pipe_client_send_data (pair.client, data, sizeof data, &set));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Np", G_LOG_LEVEL_CRITICAL, "*np_pipe_client_send_variant*error*");
  g_assert_false (np_pipe_client_send_variant (pair.client, value, &set));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Np", G_LOG_LEVEL_CRITICAL, "*np_pipe_connection_send_data*error*");
  g_assert_false (np_pipe_connection_send_data (pair.connection, data, sizeof data, &set));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Np", G_LOG_LEVEL_CRITICAL, "*np_pipe_connection_send_variant*error*");
  g_assert_false (np_pipe_connection_send_variant (pair.connection, value, &set));
  g_test_assert_expected_messages ();

  /* The error given is left alone. */
  g_assert_error (set, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_error_free (set);

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
  g_test_add_func ("/Np/Contract/client/close-during-connect-sync", test_close_during_connect_sync);
  g_test_add_func ("/Np/Contract/client/close-during-hello-wait", test_close_during_hello_wait);
  g_test_add_func ("/Np/Contract/preconditions/send", test_send_preconditions);

  ret = g_test_run ();
  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
