/* test-limits.c: what a peer controls stays within the limits, and
 * running out of descriptors or of backlog is handled, not spun on
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

#define QUEUE_LIMIT (1024 * 1024)
/* Past this much flooding, the limit was not enforced. */
#define FLOOD_MAX (256 * 1024 * 1024)

static void
record_connection_cb (NpPipeServer      *server,
                      NpPipeConnection  *connection,
                      NpPipeConnection **out)
{
  *out = g_object_ref (connection);
}

static void
record_server_error_cb (NpPipeServer      *server,
                        NpPipeConnection  *connection,
                        GError            *error,
                        GError           **out)
{
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR, 0, "clean");
}

static void
record_client_error_cb (NpPipeClient  *client,
                        GError        *error,
                        GError       **out)
{
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR, 0, "clean");
}

/* Writes @frame over and over, never reading, until the other side drops
 * us (@dropped set) or FLOOD_MAX is sent; checks @queued (when given)
 * stays within the limit throughout. */
static void
flood (GSocket           *socket,
       GBytes            *frame,
       GError           **dropped,
       NpPipeConnection **queued)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (frame, &len);
  guint64 sent = 0;
  gsize offset = 0;

  g_socket_set_blocking (socket, FALSE);

  while (*dropped == NULL && sent < FLOOD_MAX)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) data + offset, len - offset, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_main_context_iteration (NULL, TRUE);
          continue;
        }
      if (error != NULL)
        break;   /* the other side closed: it reports why below */

      sent += n;
      offset = (offset + n) % len;

      while (g_main_context_iteration (NULL, FALSE))
        ;

      if (queued != NULL && *queued != NULL)
        g_assert_cmpuint (np_pipe_connection_get_queued_bytes (*queued), <=, QUEUE_LIMIT);
    }

  WAIT_UNTIL (*dropped != NULL);
}

/* A peer that pings as fast as it can and never reads the answers is
 * dropped once they would pass max-queued-bytes. */
static void
test_ping_flood_server (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) ping = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) dropped = NULL;
  guint8 payload[1024] = { 0 };

  np_pipe_server_set_max_queued_bytes (server, QUEUE_LIMIT);
  g_signal_connect (server, "client-connected", G_CALLBACK (record_connection_cb), &connection);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (record_server_error_cb), &dropped);
  g_assert_true (np_pipe_server_start (server, &error));

  socket = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_raw_write_hello (socket, 1, 16 * 1024 * 1024);
  ping = np_test_frame (NP_FRAME_PING, payload, sizeof payload);

  flood (socket, ping, &dropped, &connection);

  g_assert_error (dropped, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (server), ==, 0);
}

static gboolean
echo_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

/* The same with requests: the replies to a peer that never reads them
 * count against max-queued-bytes. */
static void
test_request_flood_server (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) dropped = NULL;
  guint8 payload[1024] = { 0 };

  np_pipe_server_set_max_queued_bytes (server, QUEUE_LIMIT);
  g_signal_connect (server, "client-connected", G_CALLBACK (record_connection_cb), &connection);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (record_server_error_cb), &dropped);
  g_signal_connect (server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));

  socket = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_raw_write_hello (socket, 2, 16 * 1024 * 1024);
  request = np_test_request_frame (NP_FRAME_REQUEST, 1, payload, sizeof payload);

  flood (socket, request, &dropped, &connection);

  g_assert_error (dropped, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), ==, 0);
}

/* The same from a hostile server to a client. */
static void
test_ping_flood_client (void)
{
  g_autofree char *name = g_strdup_printf ("pinger-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) ping = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) dropped = NULL;
  guint8 payload[1024] = { 0 };
  guint8 hello[12];

  np_pipe_client_set_max_queued_bytes (client, QUEUE_LIMIT);
  g_signal_connect (client, "disconnected", G_CALLBACK (record_client_error_cb), &dropped);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (raw->accepted->len == 1);

  np_test_hello (hello, 1, 16 * 1024 * 1024);
  np_test_raw_write (g_ptr_array_index (raw->accepted, 0), hello, sizeof hello);
  ping = np_test_frame (NP_FRAME_PING, payload, sizeof payload);

  flood (g_ptr_array_index (raw->accepted, 0), ping, &dropped, NULL);

  g_assert_error (dropped, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), ==, 0);

  np_test_raw_server_free (raw);
}

static gboolean
start_accepting_cb (gpointer data)
{
  np_test_raw_server_start_accepting (data);
  return G_SOURCE_REMOVE;
}

/* A server alive but so busy its listen backlog is full: a blocking
 * connect waits for room until the connect timeout, then fails with an
 * Np error naming the pipe; an asynchronous one waits too, and gets in
 * once there is room. */
static void
test_backlog_full (void)
{
  g_autofree char *name = g_strdup_printf ("busy-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 1, FALSE);
  g_autoptr(GPtrArray) waiting = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* Fill the backlog. */
  for (;;)
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (raw->path);
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, NULL);
      g_autoptr(GError) full = NULL;

      g_socket_set_blocking (socket, FALSE);
      if (!g_socket_connect (socket, address, NULL, &full))
        {
          g_assert_error (full, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      g_ptr_array_add (waiting, g_steal_pointer (&socket));
    }

  np_pipe_client_set_connect_timeout (client, 200);
  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, name));
  g_clear_error (&error);

  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Room comes while an asynchronous connect waits: it gets in. */
  np_pipe_client_set_connect_timeout (client, 0);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  g_timeout_add (50, start_accepting_cb, raw);
  WAIT_UNTIL (raw->accepted->len == waiting->len + 1);
  {
    guint8 hello[12];

    np_test_hello (hello, 1, 1024);
    np_test_raw_write (g_ptr_array_index (raw->accepted, waiting->len), hello, sizeof hello);
  }
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);

  np_test_raw_server_free (raw);
}

/* Connects to the server process's pipe without any main loop: the
 * server is in another process. */
static GSocket *
connect_blocking (const char *path)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_DEFAULT, &error);
  guint8 hello[12];

  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);
  /* A refused peer may be closed on before its hello is written. */
  np_test_hello (hello, 1, 1024);
  g_socket_send (socket, (const char *) hello, sizeof hello, NULL, NULL);

  return socket;
}

static void
read_blocking (GSocket *socket,
               guint8  *buf,
               gsize    len)
{
  g_autoptr(GError) error = NULL;

  g_socket_set_blocking (socket, TRUE);
  while (len > 0)
    {
      gssize n = g_socket_receive (socket, (char *) buf, len, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      buf += n;
      len -= n;
    }
}

/* Reads the server's answer: TRUE when it accepted us, FALSE after its
 * goodbye of @code. */
static gboolean
read_verdict (GSocket *socket,
              gint    *code)
{
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 payload[NP_CONTROL_PAYLOAD_MAX];
  NpHello decoded;
  NpFrameHeader frame;
  g_autoptr(GError) error = NULL;

  read_blocking (socket, hello, sizeof hello);
  g_assert_true (np_hello_decode (hello, &decoded, &error));
  g_assert_no_error (error);
  if (decoded.max_message_size != 0)
    return TRUE;

  read_blocking (socket, header, sizeof header);
  np_test_header_decode (header, &frame);
  g_assert_cmpuint (frame.type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (frame.length, <=, sizeof payload);
  read_blocking (socket, payload, frame.length);
  *code = np_test_goodbye_code (payload, frame.length);

  return FALSE;
}

static GSubprocess *
spawn_limited_server (const char *name,
                      guint       nofile,
                      guint       fill)
{
  g_autofree char *nofile_str = g_strdup_printf ("%u", nofile);
  g_autofree char *fill_str = g_strdup_printf ("%u", fill);
  const char *args[] = { "serve-limited", name, nofile_str, fill_str, NULL };
  GSubprocess *server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                            G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);

  g_assert_cmpstr (line, ==, "ready");

  return server;
}

/* Stops the server process and returns what it logged as warnings. */
static guint
stop_limited_server (GSubprocess *server,
                     guint       *n_connected)
{
  g_autofree char *line = NULL;
  g_autoptr(GError) error = NULL;
  guint n_warnings = G_MAXUINT;

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  do
    {
      g_free (line);
      line = np_test_read_line (server);
      g_assert_cmpstr (line, !=, "");
    }
  while (!g_str_has_prefix (line, "warnings "));
  g_assert_cmpint (sscanf (line, "warnings %u connected %u", &n_warnings, n_connected), ==, 2);
  g_assert_true (g_subprocess_wait_check (server, NULL, &error));
  g_assert_no_error (error);

  return n_warnings;
}

/* At a low RLIMIT_NOFILE, the server refuses clients past what its
 * descriptors allow (keeping room for the application's own) with
 * TOO_MANY_CLIENTS, instead of letting them wait in the backlog. */
static void
test_descriptor_limit (void)
{
  g_autofree char *name = g_strdup_printf ("nofile-%u", g_random_int ());
  g_autoptr(GSubprocess) server = spawn_limited_server (name, 64, 0);
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "np", name, NULL);
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func (g_object_unref);
  guint n_accepted = 0, n_refused = 0, n_connected = 0;

  for (guint i = 0; i < 200; i++)
    {
      GSocket *socket = connect_blocking (path);
      gint code = -1;

      g_ptr_array_add (peers, socket);
      if (read_verdict (socket, &code))
        n_accepted++;
      else
        {
          g_assert_cmpint (code, ==, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
          n_refused++;
        }
    }

  /* 64 descriptors, of which an eighth (at least 32) for the rest. */
  g_assert_cmpuint (n_accepted, ==, 32);
  g_assert_cmpuint (n_refused, ==, 168);

  g_ptr_array_set_size (peers, 0);
  g_assert_cmpuint (stop_limited_server (server, &n_connected), ==, 0);
  g_assert_cmpuint (n_connected, ==, 32);
}

/* When the application itself holds nearly every descriptor, accepting
 * fails with EMFILE: the server warns once and stops polling the socket
 * (it would spin on it), and takes the next client as soon as one
 * leaves. */
static void
test_out_of_descriptors (void)
{
  g_autofree char *name = g_strdup_printf ("emfile-%u", g_random_int ());
  g_autoptr(GSubprocess) server = spawn_limited_server (name, 64, 56);
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "np", name, NULL);
  g_autoptr(GPtrArray) accepted = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func (g_object_unref);
  guint n_connected = 0;
  guint n_first;
  guint next;

  /* The server takes those it has descriptors for, in order, then warns
   * once that it stops accepting. One peer at a time, each answered by
   * one line: "connected" once the server has read its hello (a peer is
   * a client only then), or "warning" when accepting it failed. */
  for (n_first = 0;; n_first++)
    {
      g_autofree char *line = NULL;

      g_assert_cmpuint (n_first, <, 20);
      g_ptr_array_add (peers, connect_blocking (path));
      line = np_test_read_line (server);
      if (g_str_equal (line, "warning"))
        break;
      g_assert_cmpstr (line, ==, "connected");
    }
  g_assert_cmpuint (n_first, >, 0);
  while (peers->len < 20)
    g_ptr_array_add (peers, connect_blocking (path));

  for (next = 0; next < n_first; next++)
    {
      gint code = -1;

      g_assert_true (read_verdict (g_ptr_array_index (peers, next), &code));
      g_ptr_array_add (accepted, g_object_ref (g_ptr_array_index (peers, next)));
    }

  /* Each client that leaves lets the next one in. */
  for (; next < peers->len; next++)
    {
      g_autofree char *line = NULL;
      gint code = -1;

      g_socket_close (g_ptr_array_index (accepted, 0), NULL);
      g_ptr_array_remove_index (accepted, 0);
      line = np_test_read_line (server);
      g_assert_cmpstr (line, ==, "connected");
      g_assert_true (read_verdict (g_ptr_array_index (peers, next), &code));
      g_ptr_array_add (accepted, g_object_ref (g_ptr_array_index (peers, next)));
    }

  g_ptr_array_set_size (accepted, 0);
  g_ptr_array_set_size (peers, 0);
  g_assert_cmpuint (stop_limited_server (server, &n_connected), ==, 1);
  g_assert_cmpuint (n_connected, ==, 20);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-limits-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Limits/ping-flood/server", test_ping_flood_server);
  g_test_add_func ("/Np/Limits/ping-flood/client", test_ping_flood_client);
  g_test_add_func ("/Np/Limits/request-flood/server", test_request_flood_server);
  g_test_add_func ("/Np/Limits/backlog-full", test_backlog_full);
  g_test_add_func ("/Np/Limits/descriptor-limit", test_descriptor_limit);
  g_test_add_func ("/Np/Limits/out-of-descriptors", test_out_of_descriptors);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
