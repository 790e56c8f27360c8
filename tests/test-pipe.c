/* test-pipe.c: NpPipeServer, NpPipeConnection and NpPipeClient over real
 * sockets, with real peer processes and the real main loop
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "np-test-util.h"

typedef struct
{
  guint64  connection_id;
  GBytes  *message;
} Received;

typedef struct
{
  NpPipeServer *server;
  GPtrArray    *connected;         /* NpPipeConnection */
  GPtrArray    *disconnected;      /* NpPipeConnection */
  GPtrArray    *disconnect_errors; /* GError, or NULL for a clean close */
  GPtrArray    *received;          /* Received */
  gboolean      echo;
} Fixture;

static void
received_free (gpointer data)
{
  Received *r = data;

  g_bytes_unref (r->message);
  g_free (r);
}

static void
on_client_connected (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     Fixture          *f)
{
  g_assert_true (np_pipe_connection_get_connected (connection));
  g_ptr_array_add (f->connected, g_object_ref (connection));
}

static void
on_message_received (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     GBytes           *message,
                     Fixture          *f)
{
  Received *r = g_new0 (Received, 1);

  r->connection_id = np_pipe_connection_get_id (connection);
  r->message = g_bytes_ref (message);
  g_ptr_array_add (f->received, r);

  if (f->echo)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }
}

static gboolean
model_contains (GListModel *model,
                gpointer    item)
{
  for (guint i = 0; i < g_list_model_get_n_items (model); i++)
    {
      g_autoptr(GObject) object = g_list_model_get_item (model, i);

      if (object == item)
        return TRUE;
    }

  return FALSE;
}

static void
on_client_disconnected (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        Fixture          *f)
{
  /* Reported once, after it left the list model. */
  g_assert_false (g_ptr_array_find (f->disconnected, connection, NULL));
  g_assert_false (model_contains (np_pipe_server_get_connections (server), connection));
  g_assert_false (np_pipe_connection_get_connected (connection));

  g_ptr_array_add (f->disconnected, g_object_ref (connection));
  g_ptr_array_add (f->disconnect_errors, error ? g_error_copy (error) : NULL);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->connected = g_ptr_array_new_with_free_func (g_object_unref);
  f->disconnected = g_ptr_array_new_with_free_func (g_object_unref);
  f->disconnect_errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  f->received = g_ptr_array_new_with_free_func (received_free);

  f->server = np_pipe_server_new (NULL);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_client_connected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message_received), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_client_disconnected), f);

  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  /* Every connection ever announced is reported gone, once, when the
   * server stops: dropping it says nothing more. */
  np_pipe_server_stop (f->server);
  WAIT_UNTIL (f->disconnected->len >= f->connected->len);

  g_object_add_weak_pointer (G_OBJECT (f->server), (gpointer *) &f->server);
  g_object_unref (f->server);
  g_assert_null (f->server);

  g_assert_cmpuint (f->disconnected->len, ==, f->connected->len);

  g_ptr_array_unref (f->connected);
  g_ptr_array_unref (f->disconnected);
  g_ptr_array_unref (f->disconnect_errors);
  g_ptr_array_unref (f->received);
}

static const GError *
disconnect_error_of (Fixture          *f,
                     NpPipeConnection *connection)
{
  guint index;

  g_assert_true (g_ptr_array_find (f->disconnected, connection, &index));
  return g_ptr_array_index (f->disconnect_errors, index);
}

static const GError *
nth_error (Fixture *f,
           guint    index)
{
  g_assert_cmpuint (index, <, f->disconnect_errors->len);
  return g_ptr_array_index (f->disconnect_errors, index);
}

static guint
count_received_from (Fixture *f,
                     guint64  connection_id)
{
  guint n = 0;

  for (guint i = 0; i < f->received->len; i++)
    n += ((Received *) g_ptr_array_index (f->received, i))->connection_id == connection_id;

  return n;
}

/* Checks that the messages from each connection are exactly the test
 * messages 0..count-1 of one client, in order. */
static void
assert_received_in_order (Fixture *f,
                          guint64  connection_id,
                          guint32  count)
{
  guint32 expected_seq = 0;
  guint32 client_id = G_MAXUINT32;

  for (guint i = 0; i < f->received->len; i++)
    {
      Received *r = g_ptr_array_index (f->received, i);
      guint32 c = 0, seq = 0;

      if (r->connection_id != connection_id)
        continue;

      g_assert_true (np_test_message_parse (r->message, &c, &seq));
      if (client_id == G_MAXUINT32)
        client_id = c;
      g_assert_cmpuint (c, ==, client_id);
      g_assert_cmpuint (seq, ==, expected_seq);
      g_assert_cmpuint (g_bytes_get_size (r->message), ==, np_test_size_for (seq));
      expected_seq++;
    }

  g_assert_cmpuint (expected_seq, ==, count);
}

static NpPipeConnection *
connection_by_pid (Fixture *f,
                   GPid     pid)
{
  for (guint i = 0; i < f->connected->len; i++)
    {
      NpPipeConnection *connection = g_ptr_array_index (f->connected, i);

      if (np_pipe_connection_get_peer_pid (connection) == pid)
        return connection;
    }

  return NULL;
}

/* Peer processes */

static GSubprocess *
spawn_peer (const char *mode,
            const char *name,
            guint       client_id,
            guint       count)
{
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autofree char *client_str = g_strdup_printf ("%u", client_id);
  g_autofree char *count_str = g_strdup_printf ("%u", count);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  if (count > 0)
    process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error,
                                peer, mode, name, client_str, count_str, NULL);
  else
    process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, peer, mode, name, NULL);
  g_assert_no_error (error);

  return process;
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
wait_peer_success (GSubprocess *process)
{
  gboolean done = FALSE;

  g_subprocess_wait_async (process, NULL, wait_cb, &done);
  WAIT_UNTIL (done);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
}

/* In-process clients */

typedef struct
{
  NpPipeClient *client;
  GPtrArray    *received;   /* GBytes */
  GError       *error;
  guint         n_disconnected;
} TestClient;

static void
test_client_message_cb (NpPipeClient *client,
                        GBytes       *message,
                        TestClient   *tc)
{
  g_ptr_array_add (tc->received, g_bytes_ref (message));
}

static void
test_client_disconnected_cb (NpPipeClient *client,
                             GError       *error,
                             TestClient   *tc)
{
  g_assert_false (np_pipe_client_get_connected (client));
  tc->n_disconnected++;
  g_clear_error (&tc->error);
  tc->error = error ? g_error_copy (error) : NULL;
}

static TestClient *
test_client_new (const char *name)
{
  TestClient *tc = g_new0 (TestClient, 1);
  g_autoptr(GError) error = NULL;

  tc->client = np_pipe_client_new (name);
  tc->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_signal_connect (tc->client, "message-received", G_CALLBACK (test_client_message_cb), tc);
  g_signal_connect (tc->client, "disconnected", G_CALLBACK (test_client_disconnected_cb), tc);

  g_assert_true (np_pipe_client_connect_sync (tc->client, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_get_connected (tc->client));

  return tc;
}

static void
test_client_free (TestClient *tc)
{
  g_object_add_weak_pointer (G_OBJECT (tc->client), (gpointer *) &tc->client);
  g_object_unref (tc->client);
  g_assert_null (tc->client);
  g_ptr_array_unref (tc->received);
  g_clear_error (&tc->error);
  g_free (tc);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestClient, test_client_free)

static void
test_client_send (TestClient *tc,
                  GBytes     *message)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (tc->client, message, &error));
  g_assert_no_error (error);
}

static gboolean
readable_cb (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
wait_readable (GSocket *socket)
{
  g_autoptr(GSource) source = g_socket_create_source (socket, G_IO_IN | G_IO_HUP, NULL);
  gboolean readable = FALSE;

  g_source_set_callback (source, G_SOURCE_FUNC (readable_cb), &readable, NULL);
  g_source_attach (source, NULL);
  WAIT_UNTIL (readable);
  g_source_destroy (source);
}

/* The hello of a peer of version 1 that takes messages of 1 MiB. */
static void
write_raw_hello (GSocket *socket)
{
  np_test_raw_write_hello (socket, 1, 1024 * 1024);
}

/* Tests */

/* Flow 1 and flow 5 of the seed: a server is created and started under a
 * generated name, and stopped. */
static void
test_server_start_stop (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *lock = NULL;
  g_autofree char *expected_path = NULL;
  struct stat st;

  g_assert_null (np_pipe_server_get_name (server));
  g_assert_false (np_pipe_server_is_running (server));

  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_server_is_running (server));
  g_assert_nonnull (np_pipe_server_get_name (server));
  g_assert_true (g_str_has_prefix (np_pipe_server_get_name (server), "np-"));

  path = g_strdup (np_pipe_server_get_path (server));
  expected_path = g_build_filename (g_get_user_runtime_dir (), "np",
                                    np_pipe_server_get_name (server), NULL);
  g_assert_cmpstr (path, ==, expected_path);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  dir = g_path_get_dirname (path);
  g_assert_cmpint (lstat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  lock = g_strconcat (path, ".lock", NULL);
  g_assert_true (g_file_test (lock, G_FILE_TEST_EXISTS));

  np_pipe_server_stop (server);
  g_assert_false (np_pipe_server_is_running (server));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));

  /* Started again, it listens on the same name. */
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (np_pipe_server_get_path (server), ==, path);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  g_clear_object (&server);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* Flows 2 to 5 of the seed with three client processes: each connects
 * (client-connected, with its real pid), sends messages larger than any
 * read buffer that arrive whole, disconnects (client-disconnected), and
 * the server stops. */
static void
test_server_flows (Fixture       *f,
                   gconstpointer  data)
{
  GSubprocess *peers[3];
  GPid pids[3];
  const guint32 count = 40;

  f->echo = TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (peers); i++)
    {
      peers[i] = spawn_peer ("echo", np_pipe_server_get_name (f->server), i, count);
      pids[i] = atoi (g_subprocess_get_identifier (peers[i]));
    }

  for (guint i = 0; i < G_N_ELEMENTS (peers); i++)
    {
      GPid pid = pids[i];
      NpPipeConnection *connection;

      wait_peer_success (peers[i]);
      WAIT_UNTIL (connection_by_pid (f, pid) != NULL &&
                  g_ptr_array_find (f->disconnected, connection_by_pid (f, pid), NULL));

      connection = connection_by_pid (f, pid);
      g_assert_cmpuint (np_pipe_connection_get_peer_uid (connection), ==, getuid ());
      g_assert_null (disconnect_error_of (f, connection));
      assert_received_in_order (f, np_pipe_connection_get_id (connection), count);
      g_object_unref (peers[i]);
    }

  /* Identifiers are unique: they increase in the order the server
   * accepted the peers, which is not always the order their handshakes
   * completed in. */
  for (guint i = 0; i < f->connected->len; i++)
    for (guint j = i + 1; j < f->connected->len; j++)
      g_assert_cmpuint (np_pipe_connection_get_id (g_ptr_array_index (f->connected, i)), !=,
                        np_pipe_connection_get_id (g_ptr_array_index (f->connected, j)));

  g_assert_cmpuint (f->connected->len, ==, 3);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  np_pipe_server_stop (f->server);
  g_assert_false (np_pipe_server_is_running (f->server));
}

/* Fifty clients at once, in this process, each echoed in order. */
static void
test_server_many_clients (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) test_client_free);
  const guint n_clients = 50;
  const guint32 count = 20;
  GListModel *model = np_pipe_server_get_connections (f->server);

  f->echo = TRUE;

  for (guint i = 0; i < n_clients; i++)
    g_ptr_array_add (clients, test_client_new (np_pipe_server_get_name (f->server)));

  for (guint32 seq = 0; seq < count; seq++)
    for (guint i = 0; i < n_clients; i++)
      {
        g_autoptr(GBytes) message = np_test_message_new (i, seq, np_test_size_for (seq));

        test_client_send (g_ptr_array_index (clients, i), message);
      }

  WAIT_UNTIL (f->received->len == n_clients * count);

  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, n_clients);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, n_clients);
  g_assert_cmpuint (f->connected->len, ==, n_clients);

  for (guint i = 0; i < f->connected->len; i++)
    assert_received_in_order (f, np_pipe_connection_get_id (g_ptr_array_index (f->connected, i)), count);

  /* Each client gets its own messages back, in order. */
  for (guint i = 0; i < n_clients; i++)
    {
      TestClient *tc = g_ptr_array_index (clients, i);

      WAIT_UNTIL (tc->received->len == count);
      for (guint32 seq = 0; seq < count; seq++)
        {
          guint32 c = 0, s = 0;

          g_assert_true (np_test_message_parse (g_ptr_array_index (tc->received, seq), &c, &s));
          g_assert_cmpuint (c, ==, i);
          g_assert_cmpuint (s, ==, seq);
        }
    }

  for (guint i = 0; i < n_clients; i++)
    np_pipe_client_close (((TestClient *) g_ptr_array_index (clients, i))->client, NULL, NULL);

  WAIT_UNTIL (f->disconnected->len == n_clients);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 0);
}

/* 0-byte and 8 MiB messages, both ways, arrive whole and once. */
static void
test_message_sizes (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) big = np_test_message_new (7, 1, 8 * 1024 * 1024);
  guint32 c = 0, s = 0;

  f->echo = TRUE;

  test_client_send (tc, empty);
  test_client_send (tc, big);
  test_client_send (tc, empty);

  WAIT_UNTIL (tc->received->len == 3);
  g_assert_cmpuint (f->received->len, ==, 3);

  g_assert_cmpuint (g_bytes_get_size (((Received *) g_ptr_array_index (f->received, 0))->message), ==, 0);
  g_assert_true (g_bytes_equal (((Received *) g_ptr_array_index (f->received, 1))->message, big));
  g_assert_cmpuint (g_bytes_get_size (((Received *) g_ptr_array_index (f->received, 2))->message), ==, 0);

  g_assert_cmpuint (g_bytes_get_size (g_ptr_array_index (tc->received, 0)), ==, 0);
  g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, 1), big));
  g_assert_true (np_test_message_parse (g_ptr_array_index (tc->received, 1), &c, &s));
  g_assert_cmpuint (g_bytes_get_size (g_ptr_array_index (tc->received, 2)), ==, 0);
}

/* Boundaries and order hold over many messages of mixed sizes, sent
 * faster than the server, in the same thread, reads them: the sender lets
 * the loop run when its queue grows, as a producer should. */
static void
test_message_order (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));
  const guint32 count = 2000;

  for (guint32 seq = 0; seq < count; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (3, seq, np_test_size_for (seq));

      if (np_pipe_client_get_queued_bytes (tc->client) > 8 * 1024 * 1024)
        WAIT_UNTIL (np_pipe_client_get_queued_bytes (tc->client) < 1024 * 1024);
      test_client_send (tc, message);
    }

  WAIT_UNTIL (f->received->len == count);
  assert_received_in_order (f, np_pipe_connection_get_id (g_ptr_array_index (f->connected, 0)), count);
}

/* The server sends to one client, and broadcasts to all. */
static void
test_server_send_and_broadcast (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) test_client_free);
  g_autoptr(GBytes) direct = g_bytes_new_static ("to one", 6);
  g_autoptr(GBytes) everyone = np_test_message_new (0, 0, 100000);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 5; i++)
    g_ptr_array_add (clients, test_client_new (np_pipe_server_get_name (f->server)));

  WAIT_UNTIL (f->connected->len == 5);

  g_assert_true (np_pipe_connection_send (g_ptr_array_index (f->connected, 2), direct, &error));
  g_assert_no_error (error);
  np_pipe_server_broadcast (f->server, everyone);

  for (guint i = 0; i < 5; i++)
    {
      TestClient *tc = g_ptr_array_index (clients, i);
      guint expected = i == 2 ? 2 : 1;

      WAIT_UNTIL (tc->received->len == expected);
      if (i == 2)
        g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, 0), direct));
      g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, expected - 1), everyone));
    }

  /* Nothing more was sent to anyone. */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GBytes) marker = g_bytes_new_static ("end", 3);
      TestClient *tc = g_ptr_array_index (clients, i);
      guint before = tc->received->len;

      g_assert_true (np_pipe_connection_send (g_ptr_array_index (f->connected, i), marker, NULL));
      WAIT_UNTIL (tc->received->len == before + 1);
      g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, before), marker));
    }
}

static void
make_stale_socket (const char *path)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, address, FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (g_socket_listen (socket, &error));
  g_socket_close (socket, NULL);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* A socket file left by a server that died is taken over; a client of it
 * is told no server runs there. */
static void
test_server_stale_socket (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  g_autofree char *path = g_build_filename (dir, "stale", NULL);
  g_autoptr(NpPipeServer) server = np_pipe_server_new ("stale");
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("stale");
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  make_stale_socket (path);

  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
}

/* A path held by something that is not a socket is left alone. */
static void
test_server_path_not_socket (void)
{
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "not-a-socket", NULL);
  g_autoptr(NpPipeServer) server = np_pipe_server_new (path);
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;

  g_assert_true (g_file_set_contents (path, "precious", -1, &error));

  g_assert_false (np_pipe_server_start (server, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_assert_false (np_pipe_server_is_running (server));

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "precious");
  g_unlink (path);
}

/* A second server under a live name fails and leaves the first alone. */
static void
test_server_address_in_use (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(NpPipeServer) second = np_pipe_server_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) message = np_test_message_new (1, 0, 64);

  g_assert_false (np_pipe_server_start (second, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, np_pipe_server_get_name (f->server)));
  g_clear_object (&second);

  /* Also from another path spelling: an absolute path to the same socket. */
  second = np_pipe_server_new (np_pipe_server_get_path (f->server));
  g_clear_error (&error);
  g_assert_false (np_pipe_server_start (second, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);

  {
    g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));

    test_client_send (tc, message);
    WAIT_UNTIL (f->received->len == 1);
  }
}

static void
test_client_not_found (void)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("nobody-listens-here");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) message = g_bytes_new_static ("x", 1);

  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nobody-listens-here"));
  g_assert_false (np_pipe_client_get_connected (client));
  g_clear_error (&error);

  g_assert_false (np_pipe_client_send (client, message, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
}

static void
test_invalid_names (void)
{
  g_autofree char *long_name = g_strnfill (65, 'a');
  g_autofree char *long_path = g_strconcat ("/tmp/", long_name, long_name, NULL);
  const char *names[] = { "", ".", "..", "a/b", "../escape", "with space", "tab\t",
                          "ends.lock", long_name, long_path };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(NpPipeServer) server = np_pipe_server_new (names[i]);
      g_autoptr(NpPipeClient) client = np_pipe_client_new (names[i]);
      g_autoptr(GError) error = NULL;

      g_assert_false (np_pipe_server_start (server, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME);
      g_clear_error (&error);

      g_assert_null (np_pipe_client_get_path (client));
      g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME);
    }
}

/* A message over the server's limit closes only that client, with
 * MESSAGE_TOO_LARGE on both sides; once the client knows the limit, send()
 * refuses such a message itself. */
static void
test_oversize_message (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GBytes) large = np_test_message_new (1, 0, 2048);
  g_autoptr(GBytes) fits = np_test_message_new (2, 0, 1024);
  g_autoptr(GError) error = NULL;

  np_pipe_server_set_max_message_size (f->server, 1024);

  {
    g_autoptr(TestClient) bystander = test_client_new (np_pipe_server_get_name (f->server));
    g_autoptr(TestClient) offender = test_client_new (np_pipe_server_get_name (f->server));

    /* Sent before the server's hello arrived, so before the offender's
     * handshake was complete: the server must refuse it, and the
     * offender never was one of its clients. */
    test_client_send (offender, large);
    WAIT_UNTIL (offender->n_disconnected == 1);

    g_assert_error (offender->error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
    g_assert_cmpuint (count_received_from (f, 2), ==, 0);

    /* The other client goes on. */
    test_client_send (bystander, fits);
    WAIT_UNTIL (f->received->len == 1);
    g_assert_true (g_bytes_equal (((Received *) g_ptr_array_index (f->received, 0))->message, fits));
    g_assert_cmpuint (f->connected->len, ==, 1);
    g_assert_cmpuint (f->disconnected->len, ==, 0);

    /* Once a message from the server arrived, the server's hello before it
     * has too: the bystander knows the limit, so send() refuses, and the
     * pipe stays. */
    g_assert_true (np_pipe_connection_send (g_ptr_array_index (f->connected, 0), fits, NULL));
    WAIT_UNTIL (bystander->received->len == 1);
    g_assert_false (np_pipe_client_send (bystander->client, large, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
    g_assert_true (np_pipe_client_get_connected (bystander->client));
  }
}

/* A peer process sending garbage loses its own connection, with a
 * PROTOCOL error, while another client's messages all arrive. */
static void
test_garbage_peer (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GSubprocess) peer = NULL;
  const guint32 count = 50;
  GPid pid;

  peer = spawn_peer ("garbage", np_pipe_server_get_path (f->server), 0, 0);
  pid = atoi (g_subprocess_get_identifier (peer));

  for (guint32 seq = 0; seq < count; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (9, seq, np_test_size_for (seq));

      test_client_send (tc, message);
    }

  /* The peer reads until the server dropped it, at its hello: it never
   * was a client. */
  wait_peer_success (peer);
  g_assert_null (connection_by_pid (f, pid));
  g_assert_cmpuint (f->disconnected->len, ==, 0);

  WAIT_UNTIL (f->received->len == count);
  assert_received_in_order (f, np_pipe_connection_get_id (g_ptr_array_index (f->connected, 0)), count);
  g_assert_true (np_pipe_client_get_connected (tc->client));
  g_assert_true (np_pipe_server_is_running (f->server));
}

/* A frame cut off in the middle, then close: a PROTOCOL error, and no
 * message. An announced length of 0xFFFFFFFF is refused without
 * allocating it. Each peer's hello is read first, which makes it a
 * client. */
static void
test_truncated_and_huge_frames (Fixture       *f,
                                gconstpointer  data)
{
  guint8 cut[NP_FRAME_HEADER_SIZE + 10];
  guint8 huge[NP_FRAME_HEADER_SIZE];
  g_autoptr(GSocket) a = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GSocket) b = np_test_raw_connect (np_pipe_server_get_path (f->server));

  write_raw_hello (a);
  WAIT_UNTIL (f->connected->len == 1);
  np_frame_header_encode (cut, NP_FRAME_MESSAGE, 100);
  memcpy (cut + NP_FRAME_HEADER_SIZE, "only ten!!", 10);
  np_test_raw_write (a, cut, sizeof cut);
  g_socket_close (a, NULL);

  WAIT_UNTIL (f->disconnected->len == 1);
  g_assert_error (nth_error (f, 0), NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (nth_error (f, 0)->message, "middle of a message"));

  write_raw_hello (b);
  WAIT_UNTIL (f->connected->len == 2);
  np_frame_header_encode (huge, NP_FRAME_MESSAGE, G_MAXUINT32);
  np_test_raw_write (b, huge, sizeof huge);

  WAIT_UNTIL (f->disconnected->len == 2);
  g_assert_error (nth_error (f, 1), NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpuint (f->received->len, ==, 0);
}

/* A wrong magic is a PROTOCOL error, which the peer is told; a peer that
 * never completes the handshake is dropped at the deadline. Neither ever
 * was a client: no signal tells of them. */
static void
test_bad_handshakes (Fixture       *f,
                     gconstpointer  data)
{
  static const guint8 wrong_magic[12] = { 'H', 'T', 'T', 'P', 1, 0, 0, 0, 0, 0, 0x10, 0 };
  g_autoptr(GSocket) a = NULL;
  g_autoptr(GSocket) b = NULL;
  guint8 byte;

  np_pipe_server_set_handshake_timeout (f->server, 50);

  a = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write (a, wrong_magic, sizeof wrong_magic);
  g_assert_cmpuint (np_test_raw_read_goodbye (a), ==, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpint (np_test_raw_read (a, &byte, 1), ==, 0);

  b = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_assert_cmpuint (np_test_raw_read_goodbye (b), ==, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_cmpint (np_test_raw_read (b, &byte, 1), ==, 0);

  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
}

static void
count_items_changed_cb (GListModel *model,
                        guint       position,
                        guint       removed,
                        guint       added,
                        guint      *count)
{
  (*count)++;
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *count)
{
  (*count)++;
}

/* Reads the server's hello: once it came, the server accepted the peer. */
static void
read_server_hello (GSocket *socket)
{
  guint8 hello[NP_HELLO_SIZE];
  NpHello decoded;
  g_autoptr(GError) error = NULL;

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  g_assert_true (np_hello_decode (hello, &decoded, &error));
  g_assert_no_error (error);
}

/* A peer that connects and says nothing is no client: no client-connected,
 * no row in the list model, not counted in n-connections; dropped at the
 * handshake deadline, with no client-disconnected. */
static void
test_handshake_silent_peer (Fixture       *f,
                            gconstpointer  data)
{
  GListModel *model = np_pipe_server_get_connections (f->server);
  g_autoptr(GSocket) socket = NULL;
  guint n_items_changed = 0;
  guint n_notified = 0;
  guint8 byte;

  g_signal_connect (model, "items-changed", G_CALLBACK (count_items_changed_cb), &n_items_changed);
  g_signal_connect (f->server, "notify::n-connections", G_CALLBACK (count_notify_cb), &n_notified);
  np_pipe_server_set_handshake_timeout (f->server, 200);

  socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  read_server_hello (socket);

  /* Accepted, its handshake under way. */
  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  /* The frames after the hello: the goodbye, then the end. */
  {
    NpFrameHeader header;
    g_autoptr(GBytes) payload = NULL;

    g_assert_true (np_test_raw_read_frame (socket, &header, &payload));
    g_assert_cmpuint (header.type, ==, NP_FRAME_GOODBYE);
    g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload)),
                      ==, NP_PIPE_ERROR_TIMED_OUT);
  }
  g_assert_cmpint (np_test_raw_read (socket, &byte, 1), ==, 0);

  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
  g_assert_cmpuint (n_items_changed, ==, 0);
  g_assert_cmpuint (n_notified, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  g_signal_handlers_disconnect_by_func (model, count_items_changed_cb, &n_items_changed);
}

/* A peer of version 3: its hello is all of its handshake, and makes it a
 * client. */
static void
test_handshake_version3 (Fixture       *f,
                         gconstpointer  data)
{
  GListModel *model = np_pipe_server_get_connections (f->server);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(NpPipeConnection) connection = NULL;

  read_server_hello (socket);
  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  np_test_raw_write_hello (socket, 3, 4096);
  WAIT_UNTIL (f->connected->len == 1);

  connection = g_list_model_get_item (model, 0);
  g_assert_true (connection == g_ptr_array_index (f->connected, 0));
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 1);
  g_assert_cmpuint (np_pipe_connection_get_peer_max_message_size (connection), ==, 4096);

  g_socket_close (socket, NULL);
  WAIT_UNTIL (f->disconnected->len == 1);
  g_assert_null (g_ptr_array_index (f->disconnect_errors, 0));
}

static void
welcome_cb (NpPipeServer     *server,
            NpPipeConnection *connection,
            gpointer          user_data)
{
  g_autoptr(GBytes) welcome = g_bytes_new_static ("welcome", 7);

  g_assert_true (np_pipe_connection_send (connection, welcome, NULL));
}

/* A peer of version 4 is a client once its settings arrived, not at its
 * hello; what the server sends from client-connected follows the
 * server's settings. */
static void
test_handshake_version4 (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) settings = np_test_settings (0);
  g_autoptr(GBytes) server_settings = NULL;
  g_autoptr(GBytes) body = NULL;
  NpFrameHeader header;

  g_signal_connect (f->server, "client-connected", G_CALLBACK (welcome_cb), NULL);

  np_test_raw_write_hello (socket, 4, 4096);

  /* The server's settings come once it read the peer's hello. */
  read_server_hello (socket);
  g_assert_true (np_test_raw_read_frame (socket, &header, &server_settings));
  g_assert_cmpuint (header.type, ==, NP_FRAME_SETTINGS);
  g_assert_cmpuint (header.length, ==, NP_SETTINGS_SIZE);

  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (np_pipe_server_get_connections (f->server)), ==, 0);

  np_test_raw_write_bytes (socket, settings);
  WAIT_UNTIL (f->connected->len == 1);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 1);
  g_assert_cmpuint (np_pipe_connection_get_peer_max_message_size (g_ptr_array_index (f->connected, 0)),
                    ==, 4096);

  /* The message sent from client-connected is the next frame. */
  g_assert_true (np_test_raw_read_frame (socket, &header, &body));
  g_assert_cmpuint (header.type, ==, NP_FRAME_MESSAGE);
  g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), "welcome", 7);

  g_socket_close (socket, NULL);
  WAIT_UNTIL (f->disconnected->len == 1);
}

/* Peers in their handshake count against max-connections, though they
 * are no clients yet: the server's memory stays bounded. */
static void
test_handshake_max_connections (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GSocket) a = NULL;
  g_autoptr(GSocket) b = NULL;
  g_autoptr(GSocket) c = NULL;
  g_autoptr(GSocket) d = NULL;

  np_pipe_server_set_max_connections (f->server, 2);

  a = np_test_raw_connect (np_pipe_server_get_path (f->server));
  read_server_hello (a);
  b = np_test_raw_connect (np_pipe_server_get_path (f->server));
  read_server_hello (b);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  c = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_assert_cmpuint (np_test_raw_read_goodbye (c), ==, NP_PIPE_ERROR_TOO_MANY_CLIENTS);

  /* One completes its handshake: still two held. */
  np_test_raw_write_hello (a, 3, 4096);
  WAIT_UNTIL (f->connected->len == 1);
  g_clear_object (&c);
  c = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_assert_cmpuint (np_test_raw_read_goodbye (c), ==, NP_PIPE_ERROR_TOO_MANY_CLIENTS);

  /* The other goes away before its handshake: room again. */
  g_socket_close (b, NULL);
  d = np_test_raw_connect (np_pipe_server_get_path (f->server));
  read_server_hello (d);
  np_test_raw_write_hello (d, 3, 4096);
  WAIT_UNTIL (f->connected->len == 2);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
}

/* The library answers a ping frame by itself, echoing its payload. */
static void
test_ping (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GBytes) ping = np_test_frame (NP_FRAME_PING, (const guint8 *) "abcd", 4);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GError) error = NULL;
  guint8 reply[NP_HELLO_SIZE + NP_FRAME_HEADER_SIZE + 4];
  NpFrameHeader header;
  NpHello hello;
  gsize got = 0;

  write_raw_hello (socket);
  np_test_raw_write_bytes (socket, ping);

  /* The raw peer's socket joins the main loop, so that waiting for it
   * lets the server run. */
  g_socket_set_blocking (socket, FALSE);
  while (got < sizeof reply)
    {
      gssize n = g_socket_receive (socket, (char *) reply + got, sizeof reply - got, NULL, NULL);

      if (n > 0)
        got += n;
      else
        wait_readable (socket);
    }

  g_assert_true (np_hello_decode (reply, &hello, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (reply[4], ==, NP_PROTOCOL_VERSION);   /* the version the server speaks */
  np_test_header_decode (reply + NP_HELLO_SIZE, &header);
  g_assert_cmpuint (header.type, ==, NP_FRAME_PONG);
  g_assert_cmpuint (header.length, ==, 4);
  g_assert_cmpmem (reply + NP_HELLO_SIZE + NP_FRAME_HEADER_SIZE, 4, "abcd", 4);
  g_assert_cmpuint (f->received->len, ==, 0);
}

/* The client API pings any server without application code, and the
 * queue is measured until it is written. */
static void
test_client_ping_and_queue (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) big = np_test_message_new (1, 0, 2 * 1024 * 1024);
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GError) error = NULL;
  gint64 usec = -1;

  np_pipe_client_ping_async (tc->client, NULL, np_test_async_done_cb, &first);
  np_pipe_client_ping_async (tc->client, NULL, np_test_async_done_cb, &second);
  WAIT_UNTIL (first != NULL && second != NULL);
  usec = np_pipe_client_ping_finish (tc->client, first, &error);
  g_assert_no_error (error);
  g_assert_cmpint (usec, >=, 0);
  g_assert_cmpint (np_pipe_client_ping_finish (tc->client, second, &error), >=, 0);
  g_assert_no_error (error);
  g_assert_cmpuint (f->received->len, ==, 0);

  /* More than the socket takes at once stays queued until the loop runs. */
  test_client_send (tc, big);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (tc->client), >, 0);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (tc->client), <=, 2 * 1024 * 1024 + 8);
  WAIT_UNTIL (f->received->len == 1);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (tc->client), ==, 0);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (g_ptr_array_index (f->connected, 0)), ==, 0);

  /* A ping on a closed client fails at once. */
  np_pipe_client_close (tc->client, NULL, NULL);
  g_clear_object (&first);
  np_pipe_client_ping_async (tc->client, NULL, np_test_async_done_cb, &first);
  WAIT_UNTIL (first != NULL);
  g_assert_cmpint (np_pipe_client_ping_finish (tc->client, first, &error), ==, -1);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
}

/* A client whose server does not keep up gets QUEUE_FULL from send()
 * and stays connected; once the queue drains, sending works again. */
static void
test_client_queue_full (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TestClient) tc = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) chunk = np_test_message_new (1, 0, 100000);
  g_autoptr(GError) error = NULL;
  guint sent = 0;

  np_pipe_client_set_max_queued_bytes (tc->client, 1024 * 1024);

  /* The server runs in this thread and reads nothing meanwhile. */
  while (np_pipe_client_send (tc->client, chunk, &error))
    sent++;
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_clear_error (&error);
  g_assert_cmpuint (sent, >=, 10);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (tc->client), <=, 1024 * 1024);
  g_assert_true (np_pipe_client_get_connected (tc->client));

  WAIT_UNTIL (f->received->len == sent);
  g_assert_true (np_pipe_client_send (tc->client, chunk, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->received->len == sent + 1);
  g_assert_cmpuint (tc->n_disconnected, ==, 0);
}

/* stop() with clients connected: what was queued to them still arrives,
 * then each is reported gone once, and each client sees a clean close. */
static void
test_stop_with_clients (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) test_client_free);
  g_autoptr(GBytes) farewell = np_test_message_new (0, 0, 500000);
  g_autofree char *path = g_strdup (np_pipe_server_get_path (f->server));

  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (clients, test_client_new (np_pipe_server_get_name (f->server)));
  WAIT_UNTIL (f->connected->len == 3);

  np_pipe_server_broadcast (f->server, farewell);
  np_pipe_server_stop (f->server);

  g_assert_false (np_pipe_server_is_running (f->server));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  WAIT_UNTIL (f->disconnected->len == 3);
  for (guint i = 0; i < 3; i++)
    {
      TestClient *tc = g_ptr_array_index (clients, i);

      g_assert_null (g_ptr_array_index (f->disconnect_errors, i));
      WAIT_UNTIL (tc->n_disconnected == 1);
      g_assert_no_error (tc->error);
      g_assert_cmpuint (tc->received->len, ==, 1);
      g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, 0), farewell));
    }
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
}

/* A process that connects, sends and closes at once, never running a
 * main loop, loses nothing. */
static void
test_send_then_close (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GSubprocess) peer = spawn_peer ("send", np_pipe_server_get_name (f->server), 5, 300);

  wait_peer_success (peer);
  WAIT_UNTIL (f->disconnected->len == 1);

  g_assert_null (g_ptr_array_index (f->disconnect_errors, 0));
  assert_received_in_order (f, np_pipe_connection_get_id (g_ptr_array_index (f->connected, 0)), 300);
}

static gboolean
refuse_all (NpPipeServer     *server,
            NpPipeConnection *connection,
            gpointer          user_data)
{
  guint *n_asked = user_data;

  g_assert_cmpint (np_pipe_connection_get_peer_pid (connection), ==, getpid ());
  g_assert_cmpuint (np_pipe_connection_get_peer_uid (connection), ==, getuid ());
  g_assert_cmpuint (np_pipe_connection_get_peer_gid (connection), ==, getgid ());
  (*n_asked)++;

  return FALSE;
}

/* A peer the application refuses never reaches any other signal, and
 * learns why; connect_sync() in the server's thread does not deadlock. */
static void
test_authorize_peer (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  guint n_asked = 0;

  g_signal_connect (f->server, "authorize-peer", G_CALLBACK (refuse_all), &n_asked);

  tc = test_client_new (np_pipe_server_get_name (f->server));
  WAIT_UNTIL (tc->n_disconnected == 1);

  g_assert_cmpuint (n_asked, ==, 1);
  g_assert_error (tc->error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
}

/* connect_async, send_async and flush_async complete once done. */
static void
test_client_async (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) message = np_test_message_new (4, 0, 3 * 1024 * 1024);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_get_connected (client));
  g_clear_object (&result);

  np_pipe_client_send_async (client, message, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_send_finish (client, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  np_pipe_client_flush_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_flush_finish (client, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  WAIT_UNTIL (f->received->len == 1);
  g_assert_true (g_bytes_equal (((Received *) g_ptr_array_index (f->received, 0))->message, message));

  /* A connect to a missing server fails through the callback. */
  {
    g_autoptr(NpPipeClient) lost = np_pipe_client_new ("missing-async");

    np_pipe_client_connect_async (lost, NULL, np_test_async_done_cb, &result);
    WAIT_UNTIL (result != NULL);
    g_assert_false (np_pipe_client_connect_finish (lost, result, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);
  }
}

static void
items_changed_cb (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  gint       *balance)
{
  *balance += (gint) added - (gint) removed;
}

/* The connections list model follows clients as they come and go, and
 * the connection itself notifies when it closes. */
static void
test_connections_model (Fixture       *f,
                        gconstpointer  data)
{
  GListModel *model = np_pipe_server_get_connections (f->server);
  g_autoptr(TestClient) a = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(TestClient) b = test_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(NpPipeConnection) first = NULL;
  gint balance = 0;

  g_signal_connect (model, "items-changed", G_CALLBACK (items_changed_cb), &balance);
  WAIT_UNTIL (g_list_model_get_n_items (model) == 2);
  g_assert_cmpint (balance, ==, 2);
  g_assert_true (g_list_model_get_item_type (model) == NP_TYPE_PIPE_CONNECTION);
  /* A type of the API, which bindings can name. */
  g_assert_true (NP_IS_PIPE_CONNECTION_LIST (model));
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (model), ==, "NpPipeConnectionList");

  first = g_list_model_get_item (model, 0);
  g_assert_true (first == g_ptr_array_index (f->connected, 0));

  /* The server closes the first client itself. */
  np_pipe_connection_close (first, NULL, NULL);
  g_assert_false (np_pipe_connection_get_connected (first));
  WAIT_UNTIL (a->n_disconnected == 1);
  g_assert_no_error (a->error);
  g_assert_cmpint (balance, ==, 1);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 1);

  np_pipe_client_close (b->client, NULL, NULL);
  WAIT_UNTIL (balance == 0);
  g_assert_cmpuint (f->disconnected->len, ==, 2);
  g_signal_handlers_disconnect_by_func (model, items_changed_cb, &balance);
}

/* A connection's max-queued-bytes is its server's, as it is now: a
 * change applies to open connections too. */
static void
test_connection_max_queued_bytes (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  NpPipeConnection *connection;
  guint limit = 0;

  np_pipe_server_set_max_queued_bytes (f->server, 3 * 1024 * 1024);
  tc = test_client_new (np_pipe_server_get_name (f->server));
  WAIT_UNTIL (f->connected->len == 1);
  connection = g_ptr_array_index (f->connected, 0);

  g_assert_cmpuint (np_pipe_connection_get_max_queued_bytes (connection), ==, 3 * 1024 * 1024);
  np_pipe_server_set_max_queued_bytes (f->server, 5 * 1024 * 1024);
  g_assert_cmpuint (np_pipe_connection_get_max_queued_bytes (connection), ==, 5 * 1024 * 1024);
  g_object_get (connection, "max-queued-bytes", &limit, NULL);
  g_assert_cmpuint (limit, ==, 5 * 1024 * 1024);
}

/* The version of the library running, and the check against it. */
static void
test_version (void)
{
  g_assert_cmpuint (np_get_major_version (), ==, NP_MAJOR_VERSION);
  g_assert_cmpuint (np_get_minor_version (), ==, NP_MINOR_VERSION);
  g_assert_cmpuint (np_get_micro_version (), ==, NP_MICRO_VERSION);

  g_assert_null (np_check_version (NP_MAJOR_VERSION, NP_MINOR_VERSION, NP_MICRO_VERSION));
  g_assert_null (np_check_version (NP_MAJOR_VERSION, 0, 0));
  if (NP_MICRO_VERSION > 0)
    g_assert_null (np_check_version (NP_MAJOR_VERSION, NP_MINOR_VERSION, NP_MICRO_VERSION - 1));

  g_assert_nonnull (strstr (np_check_version (NP_MAJOR_VERSION + 1, 0, 0), "too old"));
  g_assert_nonnull (strstr (np_check_version (NP_MAJOR_VERSION - 1, 0, 0), "too new"));
  g_assert_nonnull (strstr (np_check_version (NP_MAJOR_VERSION, NP_MINOR_VERSION + 1, 0), "too old"));
  g_assert_nonnull (strstr (np_check_version (NP_MAJOR_VERSION, NP_MINOR_VERSION,
                                              NP_MICRO_VERSION + 1), "too old"));
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  /* A runtime directory of our own, so runs never share sockets. Set
   * before GLib reads it. */
  runtime_dir = np_test_runtime_dir_new ("np-test-XXXXXX");

  g_test_init (&argc, &argv, NULL);

#define ADD_FIXTURE_TEST(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  g_test_add_func ("/Np/PipeServer/start-stop", test_server_start_stop);
  ADD_FIXTURE_TEST ("/Np/PipeServer/flows", test_server_flows);
  ADD_FIXTURE_TEST ("/Np/PipeServer/many-clients", test_server_many_clients);
  ADD_FIXTURE_TEST ("/Np/PipeServer/message-sizes", test_message_sizes);
  ADD_FIXTURE_TEST ("/Np/PipeServer/message-order", test_message_order);
  ADD_FIXTURE_TEST ("/Np/PipeServer/send-and-broadcast", test_server_send_and_broadcast);
  g_test_add_func ("/Np/PipeServer/stale-socket", test_server_stale_socket);
  g_test_add_func ("/Np/PipeServer/path-not-socket", test_server_path_not_socket);
  ADD_FIXTURE_TEST ("/Np/PipeServer/address-in-use", test_server_address_in_use);
  g_test_add_func ("/Np/PipeClient/not-found", test_client_not_found);
  g_test_add_func ("/Np/PipeClient/invalid-names", test_invalid_names);
  ADD_FIXTURE_TEST ("/Np/PipeServer/oversize-message", test_oversize_message);
  ADD_FIXTURE_TEST ("/Np/PipeServer/garbage-peer", test_garbage_peer);
  ADD_FIXTURE_TEST ("/Np/PipeServer/truncated-and-huge-frames", test_truncated_and_huge_frames);
  ADD_FIXTURE_TEST ("/Np/PipeServer/bad-handshakes", test_bad_handshakes);
  ADD_FIXTURE_TEST ("/Np/PipeServer/handshake/silent-peer", test_handshake_silent_peer);
  ADD_FIXTURE_TEST ("/Np/PipeServer/handshake/version3", test_handshake_version3);
  ADD_FIXTURE_TEST ("/Np/PipeServer/handshake/version4", test_handshake_version4);
  ADD_FIXTURE_TEST ("/Np/PipeServer/handshake/max-connections", test_handshake_max_connections);
  ADD_FIXTURE_TEST ("/Np/PipeServer/ping", test_ping);
  ADD_FIXTURE_TEST ("/Np/PipeClient/ping-and-queue", test_client_ping_and_queue);
  ADD_FIXTURE_TEST ("/Np/PipeClient/queue-full", test_client_queue_full);
  ADD_FIXTURE_TEST ("/Np/PipeServer/stop-with-clients", test_stop_with_clients);
  ADD_FIXTURE_TEST ("/Np/PipeClient/send-then-close", test_send_then_close);
  ADD_FIXTURE_TEST ("/Np/PipeServer/authorize-peer", test_authorize_peer);
  ADD_FIXTURE_TEST ("/Np/PipeClient/async", test_client_async);
  ADD_FIXTURE_TEST ("/Np/PipeServer/connections-model", test_connections_model);
  ADD_FIXTURE_TEST ("/Np/PipeConnection/max-queued-bytes", test_connection_max_queued_bytes);
  g_test_add_func ("/Np/Version/check", test_version);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
