/* test-lifetime.c: objects that applications and bindings drop, create
 * and reuse in ways the library must survive
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#define _GNU_SOURCE

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <gio/gunixfdlist.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

static GSubprocess *
spawn_echo_server (const char *name)
{
  const char *args[] = { "serve", name, NULL };
  GSubprocess *peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                          G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (peer);

  g_assert_cmpstr (line, ==, "ready");

  return peer;
}

static void
stop_peer (GSubprocess *peer)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
}

typedef struct
{
  NpPipeClient *client;
  gboolean      use_flush;
  gboolean      callback_ran;
  gboolean      finalized;
  pid_t         server_pid;
} DropCase;

static void
drop_last_ref_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  DropCase *drop = user_data;

  drop->callback_ran = TRUE;
  /* The application's only reference. */
  g_clear_object (&drop->client);
}

static gboolean
close_from_timeout_cb (gpointer user_data)
{
  DropCase *drop = user_data;
  NpPipeClient *client = drop->client;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (kill (drop->server_pid, SIGCONT), ==, 0);

  /* The pending send completes inside this call, from a source of the
   * client's context: its callback drops the client while the call is
   * still using it. */
  if (drop->use_flush)
    np_pipe_client_flush_sync (client, NULL, &error);
  else
    np_pipe_client_close (client, NULL, NULL);

  return G_SOURCE_REMOVE;
}

static void
finalized_cb (gpointer  data,
              GObject  *where_the_object_was)
{
  ((DropCase *) data)->finalized = TRUE;
}

/* A callback that drops the last reference to the client runs inside
 * close() and flush_sync(): both hold a reference until they return. */
static void
test_drop_in_callback (gconstpointer data)
{
  g_autofree char *name = g_strdup_printf ("drop-%u", g_random_int ());
  g_autoptr(GSubprocess) server = spawn_echo_server (name);
  g_autoptr(GBytes) message = np_test_message_new (1, 0, 4 * 1024 * 1024);
  g_autoptr(GError) error = NULL;
  DropCase drop = { .use_flush = GPOINTER_TO_INT (data) };
  siginfo_t stopped;

  drop.client = np_pipe_client_new (name);
  g_object_weak_ref (G_OBJECT (drop.client), finalized_cb, &drop);
  g_assert_true (np_pipe_client_connect_sync (drop.client, NULL, &error));
  g_assert_no_error (error);

  /* The server reads nothing until the call is made: the send cannot
   * complete before it. */
  drop.server_pid = atoi (g_subprocess_get_identifier (server));
  g_assert_cmpint (kill (drop.server_pid, SIGSTOP), ==, 0);
  g_assert_cmpint (waitid (P_PID, drop.server_pid, &stopped, WSTOPPED | WNOWAIT), ==, 0);

  np_pipe_client_send_async (drop.client, message, NULL, drop_last_ref_cb, &drop);
  g_timeout_add (0, close_from_timeout_cb, &drop);

  WAIT_UNTIL (drop.callback_ran && drop.finalized);
  g_assert_null (drop.client);

  stop_peer (server);
}

typedef struct
{
  NpPipeServer *server;
  GError       *start_error;
  gboolean      start_result;
  guint         n_disconnected;
} RestartCase;

static void
restart_on_disconnect_cb (NpPipeServer     *server,
                          NpPipeConnection *connection,
                          GError           *error,
                          RestartCase      *restart)
{
  restart->n_disconnected++;
  g_clear_error (&restart->start_error);
  restart->start_result = np_pipe_server_start (server, &restart->start_error);
}

/* A server whose last reference goes emits nothing more: a
 * client-disconnected handler that would start it again does not run.
 * Nothing is left listening. */
static void
test_restart_while_disposing (void)
{
  RestartCase restart = { 0 };
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(NpPipeClient) late = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;

  restart.server = np_pipe_server_new (NULL);
  g_signal_connect (restart.server, "client-disconnected",
                    G_CALLBACK (restart_on_disconnect_cb), &restart);
  g_assert_true (np_pipe_server_start (restart.server, &error));
  name = g_strdup (np_pipe_server_get_name (restart.server));

  client = np_pipe_client_new (name);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (np_pipe_server_get_n_connections (restart.server) == 1);

  g_clear_object (&restart.server);

  g_assert_cmpuint (restart.n_disconnected, ==, 0);
  g_assert_false (restart.start_result);
  g_assert_no_error (restart.start_error);

  /* Nobody listens: the next peer is told so, and nothing crashes. */
  late = np_pipe_client_new (name);
  g_assert_false (np_pipe_client_connect_sync (late, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);

  g_clear_error (&restart.start_error);
}

/* Objects created by property, as bindings and GtkBuilder do. */
static void
test_created_by_property (void)
{
  g_autoptr(NpPipeServer) server = g_object_new (NP_TYPE_PIPE_SERVER, NULL);
  g_autoptr(NpPipeClient) nameless = g_object_new (NP_TYPE_PIPE_CLIENT, NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* A server without a name gets one. */
  g_assert_null (np_pipe_server_get_name (server));
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_nonnull (np_pipe_server_get_name (server));
  g_assert_true (g_str_has_prefix (np_pipe_server_get_name (server), "np-"));

  client = g_object_new (NP_TYPE_PIPE_CLIENT, "name", np_pipe_server_get_name (server), NULL);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == 1);

  /* A client without one cannot connect, and says why. */
  g_assert_null (np_pipe_client_get_name (nameless));
  g_assert_null (np_pipe_client_get_path (nameless));
  g_assert_false (np_pipe_client_connect_sync (nameless, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME);
  g_clear_error (&error);

  np_pipe_client_connect_async (nameless, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (nameless, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME);
  g_clear_error (&error);

  g_assert_false (np_pipe_client_send_data (nameless, (const guint8 *) "x", 1, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);
  np_pipe_client_close (nameless, NULL, NULL);

  /* A connection made outside a server is inert, not a crash. */
  {
    g_autoptr(NpPipeConnection) orphan = g_object_new (NP_TYPE_PIPE_CONNECTION, NULL);

    g_assert_cmpint (np_pipe_connection_get_peer_pid (orphan), ==, -1);
    g_assert_cmpuint (np_pipe_connection_get_peer_uid (orphan), ==, (guint) -1);
    g_assert_cmpuint (np_pipe_connection_get_peer_gid (orphan), ==, (guint) -1);
    g_assert_cmpuint (np_pipe_connection_get_peer_max_message_size (orphan), ==, 0);
    g_assert_false (np_pipe_connection_get_connected (orphan));
    g_assert_false (np_pipe_connection_send_data (orphan, (const guint8 *) "x", 1, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
    np_pipe_connection_close (orphan, NULL, NULL);
  }
}

/* The connections model is read-only: an application cannot cut clients
 * off behind the server's back. */
static void
test_connections_read_only (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  GListModel *model;

  g_assert_true (np_pipe_server_start (server, &error));
  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == 1);

  model = np_pipe_server_get_connections (server);
  g_assert_true (G_IS_LIST_MODEL (model));
  g_assert_false (G_IS_LIST_STORE (model));
  g_assert_true (g_list_model_get_item_type (model) == NP_TYPE_PIPE_CONNECTION);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 1);
  g_assert_null (g_list_model_get_item (model, 1));
}

typedef struct
{
  NpPipeConnection *kept;
} KeepCase;

static void
keep_connection_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    KeepCase         *keep)
{
  keep->kept = g_object_ref (connection);
}

/* A connection the application keeps outlives its server safely, and
 * an error code the peer sends keeps its value, even one this version
 * does not know. */
static void
test_connection_outlives_server (void)
{
  NpPipeServer *server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  KeepCase keep = { NULL };

  g_signal_connect (server, "client-connected", G_CALLBACK (keep_connection_cb), &keep);
  g_assert_true (np_pipe_server_start (server, &error));
  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (keep.kept != NULL);

  np_pipe_connection_close (keep.kept, NULL, NULL);
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == 0);
  g_object_unref (server);

  g_assert_false (np_pipe_connection_get_connected (keep.kept));
  g_assert_false (np_pipe_connection_send_data (keep.kept, (const guint8 *) "x", 1, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  np_pipe_connection_close (keep.kept, NULL, NULL);
  g_object_unref (keep.kept);
}

static void
record_error_cb (NpPipeClient *client,
                 GError       *error,
                 GError      **out)
{
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR, 0, "none");
}

static void
test_unknown_error_code (void)
{
  g_autofree char *name = g_strdup_printf ("codes-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) goodbye = np_test_goodbye (42, "a reason from a later version");
  g_autoptr(GError) error = NULL;
  GError *reported = NULL;
  guint8 hello[12];

  g_signal_connect (client, "disconnected", G_CALLBACK (record_error_cb), &reported);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (raw->accepted->len == 1);

  np_test_hello (hello, 1, 1024);
  np_test_raw_write (g_ptr_array_index (raw->accepted, 0), hello, sizeof hello);
  np_test_raw_write_bytes (g_ptr_array_index (raw->accepted, 0), goodbye);

  WAIT_UNTIL (reported != NULL);
  g_assert_error (reported, NP_PIPE_ERROR, 42);
  g_assert_nonnull (strstr (reported->message, "a reason from a later version"));
  g_error_free (reported);

  np_test_raw_server_free (raw);
}

/* An application that drops its last reference to a client inside
 * its connected, queue-drained or message-with-fds-received handler:
 * the client goes, its connection closes, nothing is used after. */

typedef enum
{
  DROP_IN_CONNECTED,
  DROP_IN_DRAINED,
  DROP_IN_FDS,
} DropIn;

static void
drop_client_cb (NpPipeClient *client,
                gpointer      data)
{
  NpPipeClient **slot = data;

  g_assert_true (*slot == client);
  g_clear_object (slot);
}

static void
drop_client_fds_cb (NpPipeClient *client,
                    GBytes       *message,
                    GUnixFDList  *fds,
                    gpointer      data)
{
  g_assert_cmpint (g_unix_fd_list_get_length (fds), ==, 1);
  drop_client_cb (client, data);
}

static void
test_drop_client_in_handler (gconstpointer data)
{
  DropIn where = GPOINTER_TO_INT (data);
  NpPipeClient *client;
  GWeakRef weak;
  g_autoptr(GError) error = NULL;
  NpTestPair pair;

  np_test_pair_init (&pair);
  np_pipe_server_set_max_fds_per_message (pair.server, 4);
  np_test_pair_start (&pair);
  client = np_pipe_client_new (np_pipe_server_get_path (pair.server));
  g_weak_ref_init (&weak, client);
  g_object_set (client, "auto-reconnect", TRUE, "max-queued-bytes", 64 * 1024, NULL);
  switch (where)
    {
    case DROP_IN_CONNECTED:
      g_signal_connect (client, "accepted", G_CALLBACK (drop_client_cb), &client);
      np_pipe_client_connect_async (client, NULL, NULL, NULL);
      break;

    case DROP_IN_DRAINED:
      {
        g_autoptr(GBytes) big = np_test_message_new (1, 0, 40 * 1024);

        g_signal_connect (client, "queue-drained", G_CALLBACK (drop_client_cb), &client);
        g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
        g_assert_no_error (error);
        g_assert_true (np_pipe_client_send (client, big, &error));
        g_assert_no_error (error);
      }
      break;

    case DROP_IN_FDS:
      {
        g_autoptr(GBytes) message = g_bytes_new_static ("fd", 2);
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
        int fd = memfd_create ("np-lifetime", MFD_CLOEXEC);

        g_assert_cmpint (g_unix_fd_list_append (fds, fd, &error), ==, 0);
        g_assert_no_error (error);
        close (fd);
        g_signal_connect (client, "message-with-fds-received", G_CALLBACK (drop_client_fds_cb), &client);
        g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
        g_assert_no_error (error);
        WAIT_UNTIL (pair.connections->len == 1);
        g_assert_true (np_pipe_connection_send_with_fds (g_ptr_array_index (pair.connections, 0),
                                                         message, fds, &error));
        g_assert_no_error (error);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  WAIT_UNTIL (client == NULL);
  WAIT_UNTIL (pair.disconnect_errors->len == 1);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
  np_test_run_ready (10);

  np_test_pair_clear (&pair);
}

static void test_drop_in_connected (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_CONNECTED)); }
static void test_drop_in_drained (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_DRAINED)); }
static void test_drop_in_fds (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_FDS)); }

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  g_autoptr(GError) error = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-lifetime-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/Np/Lifetime/drop-in-callback/close", GINT_TO_POINTER (FALSE),
                        test_drop_in_callback);
  g_test_add_data_func ("/Np/Lifetime/drop-in-callback/flush-sync", GINT_TO_POINTER (TRUE),
                        test_drop_in_callback);
  g_test_add_func ("/Np/Lifetime/restart-while-disposing", test_restart_while_disposing);
  g_test_add_func ("/Np/Lifetime/created-by-property", test_created_by_property);
  g_test_add_func ("/Np/Lifetime/connections-read-only", test_connections_read_only);
  g_test_add_func ("/Np/Lifetime/connection-outlives-server", test_connection_outlives_server);
  g_test_add_func ("/Np/Lifetime/unknown-error-code", test_unknown_error_code);

  /* Each in a process of its own: a crash or a hang fails that test
   * alone, with its report. */
  np_test_add_isolated ("/Np/Lifetime/drop-in-handler/connected", test_drop_in_connected, 30);
  np_test_add_isolated ("/Np/Lifetime/drop-in-handler/queue-drained", test_drop_in_drained, 30);
  np_test_add_isolated ("/Np/Lifetime/drop-in-handler/message-with-fds", test_drop_in_fds, 30);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
