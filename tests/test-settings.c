/* test-settings.c: a setting changed on an open connection applies to
 * the next call that uses it
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "np-test-util.h"

typedef struct
{
  char          *runtime_dir;
  GMainContext  *server_context;
  NpPipeServer  *server;
  NpPipeClient  *client;
  NpPipeConnection *connection;   /* the server's end */
  GPtrArray     *held;            /* requests the server keeps unanswered */
  GAsyncResult  *first;           /* of the calls a test makes */
  GAsyncResult  *second;
} Fixture;

static void
connect_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  np_pipe_client_connect_finish (NP_PIPE_CLIENT (object), result, &error);
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
client_connected_cb (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     gpointer          user_data)
{
  Fixture *f = user_data;

  g_set_object (&f->connection, connection);
}

static gboolean
hold_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->held, g_object_ref (request));
  return TRUE;
}

/* Iterates both contexts until @cond holds. */
#define WAIT_BOTH(f, cond) \
  G_STMT_START { \
    while (!(cond)) \
      { \
        g_main_context_iteration ((f)->server_context, FALSE); \
        g_main_context_iteration (NULL, FALSE); \
      } \
  } G_STMT_END

/* A server in a context of its own, which the test iterates only when
 * it wants the server to run, and a client connected to it. */
static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  gboolean connected = FALSE;

  f->runtime_dir = np_test_runtime_dir_new ("np-test-settings-XXXXXX");
  f->held = g_ptr_array_new_with_free_func (g_object_unref);

  f->server_context = g_main_context_new ();
  g_main_context_push_thread_default (f->server_context);
  f->server = np_pipe_server_new (NULL);
  g_main_context_pop_thread_default (f->server_context);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (client_connected_cb), f);
  g_signal_connect (f->server, "request-received", G_CALLBACK (hold_request_cb), f);
  np_pipe_server_start (f->server, &error);
  g_assert_no_error (error);

  f->client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  np_pipe_client_connect_async (f->client, NULL, connect_done_cb, &connected);
  WAIT_BOTH (f, connected && f->connection != NULL);
  g_assert_true (np_pipe_client_get_connected (f->client));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_ptr_array_unref (f->held);
  g_clear_object (&f->first);
  g_clear_object (&f->second);
  g_clear_object (&f->client);
  g_clear_object (&f->connection);
  g_clear_object (&f->server);
  while (g_main_context_iteration (f->server_context, FALSE))
    ;
  g_main_context_unref (f->server_context);
  np_test_runtime_dir_remove (f->runtime_dir);
  g_free (f->runtime_dir);
}

static gboolean
flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A request-timeout set once the client is connected bounds its next
 * request: the server holds the request unanswered. The guard only keeps
 * a broken build from waiting for the 25 s default. */
static void
test_client_request_timeout (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("ping", 4);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean gave_up = FALSE;
  guint guard;

  np_pipe_client_set_request_timeout (f->client, 50);
  np_pipe_client_request_async (f->client, request, NULL, np_test_async_done_cb, &result);

  guard = g_timeout_add_seconds (10, flag_cb, &gave_up);
  WAIT_BOTH (f, result != NULL || gave_up);
  g_assert_false (gave_up);
  g_source_remove (guard);

  reply = np_pipe_client_request_finish (f->client, result, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_null (reply);
  g_assert_cmpuint (f->held->len, ==, 1);
}

/* The same at the server's end, for a request to a client. */
static gboolean
client_holds_request_cb (NpPipeClient  *client,
                         NpPipeRequest *request,
                         gpointer       user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->held, g_object_ref (request));
  return TRUE;
}

static void
test_server_request_timeout (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("ping", 4);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean gave_up = FALSE;
  guint guard;

  g_signal_connect (f->client, "request-received", G_CALLBACK (client_holds_request_cb), f);
  np_pipe_server_set_request_timeout (f->server, 50);
  np_pipe_connection_request_async (f->connection, request, NULL, np_test_async_done_cb, &result);

  guard = g_timeout_add_seconds (10, flag_cb, &gave_up);
  WAIT_BOTH (f, result != NULL || gave_up);
  g_assert_false (gave_up);
  g_source_remove (guard);

  reply = np_pipe_connection_request_finish (f->connection, result, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_null (reply);
  g_assert_cmpuint (f->held->len, ==, 1);
}

/* A close-timeout set once connected bounds the next close: the server,
 * whose context is not run, reads nothing, and what is queued past the
 * socket's buffer is dropped after 50 ms, not the default 5 s. */
static void
test_client_close_timeout (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GBytes) message = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;

  message = g_bytes_new_take (g_malloc0 (8 * 1024 * 1024), 8 * 1024 * 1024);
  np_pipe_client_send (f->client, message, &error);
  g_assert_no_error (error);

  np_pipe_client_set_close_timeout (f->client, 50);
  g_assert_false (np_pipe_client_close (f->client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  expected = g_strdup_printf ("for %u ms", 50);
  g_assert_nonnull (strstr (error->message, expected));
}

/* max-pending-requests lowered on the server while a client is
 * connected: the client's second request, past the new bound, is
 * refused at once. */
static void
test_server_max_pending_requests (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("ping", 4);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_server_set_max_pending_requests (f->server, 1);
  np_pipe_client_request_async (f->client, request, NULL, np_test_async_done_cb, &f->first);
  WAIT_BOTH (f, f->held->len == 1);
  np_pipe_client_request_async (f->client, request, NULL, np_test_async_done_cb, &f->second);
  WAIT_BOTH (f, f->second != NULL);

  reply = np_pipe_client_request_finish (f->client, f->second, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS);
  g_assert_null (f->first);
  g_assert_cmpuint (f->held->len, ==, 1);

  /* The held one is answered; the first request completes with it. */
  np_pipe_request_reply (g_ptr_array_index (f->held, 0), request);
  WAIT_BOTH (f, f->first != NULL);
}

/* What the handshake announced stays as it was on the open connection,
 * and applies from the next one: the client's own connection object
 * says so. */
static void
test_max_message_size_next_connection (Fixture       *f,
                                       gconstpointer  data)
{
  g_autoptr(NpPipeConnection) first = np_pipe_client_get_connection (f->client);
  g_autoptr(NpPipeConnection) second = NULL;
  g_autoptr(GError) error = NULL;
  gboolean connected = FALSE;

  g_assert_nonnull (first);
  np_pipe_server_set_max_message_size (f->server, 1000);
  g_assert_cmpuint (np_pipe_connection_get_peer_max_message_size (first), ==, 16 * 1024 * 1024);

  np_pipe_client_close (f->client, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&f->connection);
  np_pipe_client_connect_async (f->client, NULL, connect_done_cb, &connected);
  WAIT_BOTH (f, connected && f->connection != NULL);

  second = np_pipe_client_get_connection (f->client);
  g_assert_true (second != first);
  g_assert_cmpuint (np_pipe_connection_get_peer_max_message_size (second), ==, 1000);
  g_assert_cmpuint (np_pipe_client_get_peer_max_message_size (f->client), ==, 1000);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/settings/client/request-timeout", test_client_request_timeout);
  ADD ("/settings/server/request-timeout", test_server_request_timeout);
  ADD ("/settings/client/close-timeout", test_client_close_timeout);
  ADD ("/settings/server/max-pending-requests", test_server_max_pending_requests);
  ADD ("/settings/max-message-size/next-connection", test_max_message_size_next_connection);
#undef ADD

  return g_test_run ();
}
