/* np-test-peer.c: the other process in the tests
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   np-test-peer send NAME CLIENT COUNT
 *       connect, send COUNT test messages of mixed sizes, close at once,
 *       without ever running a main loop
 *   np-test-peer echo NAME CLIENT COUNT
 *       connect, send COUNT messages, wait for COUNT replies, check each,
 *       close
 *   np-test-peer garbage PATH
 *       connect to the raw socket, write random bytes, read until closed
 *   np-test-peer load NAME CLIENT COUNT
 *       like send, with sizes from np_test_random_size()
 *   np-test-peer half PATH
 *       connect to the raw socket, send a hello and half of a 1 MiB
 *       message, print "ready", then wait to be killed
 *   np-test-peer probe PATH
 *       connect, send a message, and print "accepted" when the (echo)
 *       server answers, or "refused CODE" when it closes the connection
 *   np-test-peer serve NAME
 *       run a server that echoes each message to its sender, and answers
 *       each request with its message and its descriptors; print "ready"
 *       once it listens, and stop when stdin closes
 *   np-test-peer serve-limited NAME NOFILE FILL
 *       the same, with RLIMIT_NOFILE set to NOFILE and descriptors opened
 *       until FILL are in use (0: none); print "connected" for each client
 *       announced and "warning" for each warning the library logs; on
 *       stdin's end, print "warnings W connected C", their counts
 *   np-test-peer serve-as NAME refuse|full|mute
 *       run a server that refuses every client (authorize-peer), that
 *       takes one client at most (max-connections 1), or a listener that
 *       accepts and never says hello; print "ready" once it listens, and
 *       stop when stdin closes
 *   np-test-peer count NAME
 *       run a server that checks each message: the next test message of
 *       its client on that connection, sized by np_test_mixed_size().
 *       Print "ready" once it listens; when stdin closes, wait until every
 *       client that connected has gone, then print "MESSAGES BAD CLIENTS"
 *   np-test-peer fd-send NAME TEXT
 *       connect, send the message "memfd" with a memfd holding TEXT, and
 *       close, without ever running a main loop
 *   np-test-peer reconnect NAME
 *       connect, send test message 0 of client 0, close, connect again at
 *       once and print "accepted", or "refused CODE"; then wait for stdin
 *       to close, and close
 *   np-test-peer fd-receive NAME
 *       connect, and print "MESSAGE DATA" for the first message with
 *       descriptors that comes: its text, and what its first descriptor
 *       reads until its end; then close
 *   np-test-peer hold NAME COUNT
 *       with RLIMIT_NOFILE raised to its hard limit, connect COUNT clients
 *       at once, print "connected COUNT" once the server accepted them
 *       all, then stay idle; close them all when stdin closes
 *   np-test-peer flood NAME FIRST COUNT
 *       connect COUNT clients, of client ids FIRST, FIRST + 1…, print
 *       "connected COUNT" once the server accepted them all, then send
 *       each one's test messages (sized by np_test_small_size()) as fast
 *       as the server reads them, keeping at most 64 KiB queued per
 *       client, until stdin closes; then close them, writing out what is
 *       queued. A client the server closes stops sending.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <stdio.h>
#include <unistd.h>

#include "np-test-util.h"

static void
connect_and_send (NpPipeClient *client,
                  guint32       client_id,
                  guint32       count,
                  gsize       (*size_for) (guint32 client, guint32 seq))
{
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    g_error ("%s", error->message);

  for (guint32 seq = 0; seq < count; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (client_id, seq, size_for (client_id, seq));

      if (!np_pipe_client_send (client, message, &error))
        g_error ("%s", error->message);
    }
}

static gsize
fixed_sizes (guint32 client,
             guint32 seq)
{
  return np_test_size_for (seq);
}

static int
run_send (const char *name,
          guint32     client_id,
          guint32     count,
          gsize     (*size_for) (guint32 client, guint32 seq))
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);

  /* Everything must arrive, however long a loaded server (one that
   * spawns a hundred of us, say) takes to read it. */
  np_pipe_client_set_close_timeout (client, 0);
  connect_and_send (client, client_id, count, size_for);

  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

typedef struct
{
  guint32  client_id;
  guint32  received;
  gboolean disconnected;
} EchoState;

static void
echo_message_cb (NpPipeClient *client,
                 GBytes       *message,
                 EchoState    *state)
{
  guint32 client_id = 0, seq = 0;

  if (!np_test_message_parse (message, &client_id, &seq) ||
      client_id != state->client_id || seq != state->received)
    g_error ("Reply %u is not the message that was sent", state->received);

  state->received++;
}

static void
echo_disconnected_cb (NpPipeClient *client,
                      GError       *error,
                      EchoState    *state)
{
  state->disconnected = TRUE;
  if (error != NULL)
    g_printerr ("np-test-peer: %s\n", error->message);
}

static int
run_echo (const char *name,
          guint32     client_id,
          guint32     count)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  EchoState state = { client_id, 0, FALSE };

  g_signal_connect (client, "message-received", G_CALLBACK (echo_message_cb), &state);
  g_signal_connect (client, "disconnected", G_CALLBACK (echo_disconnected_cb), &state);

  connect_and_send (client, client_id, count, fixed_sizes);

  while (state.received < count && !state.disconnected)
    g_main_context_iteration (NULL, TRUE);

  if (state.received < count)
    g_error ("Disconnected after %u of %u replies", state.received, count);

  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

static GSocketConnection *
raw_connect (const char *path)
{
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect (socket_client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  if (connection == NULL)
    g_error ("%s", error->message);

  return connection;
}

static int
run_garbage (const char *path)
{
  g_autoptr(GSocketConnection) connection = raw_connect (path);
  GOutputStream *out;
  GInputStream *in;
  guint8 junk[4096];
  guint8 sink[4096];

  for (gsize i = 0; i < sizeof junk; i++)
    junk[i] = g_random_int_range (0, 256);

  out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  in = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  /* The server may close on us before all of it is written. */
  g_output_stream_write_all (out, junk, sizeof junk, NULL, NULL, NULL);

  while (g_input_stream_read (in, sink, sizeof sink, NULL, NULL) > 0)
    ;

  return 0;
}

static int
run_half (const char *path)
{
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_FRAME_HEADER_SIZE];
  g_autoptr(GSocketConnection) connection = raw_connect (path);
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autofree guint8 *half = g_malloc0 (512 * 1024);
  g_autoptr(GError) error = NULL;
  char buf[16];

  /* A peer of version 1, and the header of a message of 1 MiB. */
  np_test_hello (hello, 1, 1024 * 1024);
  np_frame_header_encode (header, NP_FRAME_MESSAGE, 1024 * 1024);
  if (!g_output_stream_write_all (out, hello, sizeof hello, NULL, NULL, &error) ||
      !g_output_stream_write_all (out, header, sizeof header, NULL, NULL, &error) ||
      !g_output_stream_write_all (out, half, 512 * 1024, NULL, NULL, &error))
    g_error ("%s", error->message);

  printf ("ready\n");
  fflush (stdout);

  /* Until killed. */
  while (read (STDIN_FILENO, buf, sizeof buf) > 0)
    ;

  return 0;
}

typedef struct
{
  GMainLoop *loop;
  char      *verdict;
} Probe;

static void
probe_message_cb (NpPipeClient *client,
                  GBytes       *message,
                  Probe        *probe)
{
  probe->verdict = g_strdup ("accepted");
  g_main_loop_quit (probe->loop);
}

static void
probe_disconnected_cb (NpPipeClient *client,
                       GError       *error,
                       Probe        *probe)
{
  if (probe->verdict == NULL)
    probe->verdict = g_strdup_printf ("refused %d", error && error->domain == NP_PIPE_ERROR ? error->code : -1);
  g_main_loop_quit (probe->loop);
}

static int
run_probe (const char *path)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (path);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  Probe probe = { loop, NULL };

  g_signal_connect (client, "message-received", G_CALLBACK (probe_message_cb), &probe);
  g_signal_connect (client, "disconnected", G_CALLBACK (probe_disconnected_cb), &probe);

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    {
      printf ("refused %d\n", error->domain == NP_PIPE_ERROR ? error->code : -1);
      return 0;
    }

  np_pipe_client_send_data (client, (const guint8 *) "probe", 5, NULL);
  g_main_loop_run (loop);
  printf ("%s\n", probe.verdict);
  g_free (probe.verdict);

  return 0;
}

static void
reconnect_done_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* The single-instance pattern: a client closes and connects again at
 * once. */
static int
run_reconnect (const char *name)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = np_test_message_new (0, 0, np_test_size_for (0));
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  char buf[256];

  np_pipe_client_set_close_timeout (client, 0);
  if (!np_pipe_client_connect_sync (client, NULL, &error) ||
      !np_pipe_client_send (client, message, &error))
    g_error ("%s", error->message);
  np_pipe_client_close (client, NULL, NULL);

  /* Only the asynchronous connect waits for the server to accept. Its
   * socket is connected (in the server's backlog) once what is ready
   * has run: the server, busy until it reads this line, then finds the
   * old connection's end and the new one together. */
  np_pipe_client_connect_async (client, NULL, reconnect_done_cb, &result);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  printf ("reconnecting\n");
  fflush (stdout);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  if (np_pipe_client_connect_finish (client, result, &error))
    printf ("accepted\n");
  else
    printf ("refused %d\n", error->domain == NP_PIPE_ERROR ? error->code : -1);
  fflush (stdout);

  while (read (STDIN_FILENO, buf, sizeof buf) > 0)
    ;
  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

static void
serve_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  gpointer          user_data)
{
  g_autoptr(GError) error = NULL;

  if (!np_pipe_connection_send (connection, message, &error))
    g_error ("%s", error->message);
}

/* Requests are answered with their message and their descriptors. */
static gboolean
serve_request_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  NpPipeRequest    *request,
                  gpointer          user_data)
{
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request),
                                  np_pipe_request_get_fd_list (request));
  return TRUE;
}

static gboolean
serve_stdin_cb (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  char buf[256];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;

  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

typedef struct
{
  guint n_warnings;
  guint n_connected;
} ServeStats;

static void
count_warning (const char     *log_domain,
               GLogLevelFlags  log_level,
               const char     *message,
               gpointer        user_data)
{
  ((ServeStats *) user_data)->n_warnings++;
  printf ("warning\n");
  fflush (stdout);
}

static void
count_connected (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 ServeStats       *stats)
{
  stats->n_connected++;
  printf ("connected\n");
  fflush (stdout);
}

static int
run_serve_limited (const char *name,
                   guint       nofile,
                   guint       fill)
{
  struct rlimit limit = { nofile, nofile };
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  ServeStats stats = { 0 };

  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    g_error ("setrlimit: %s", g_strerror (errno));

  g_log_set_handler ("Np", G_LOG_LEVEL_WARNING, count_warning, &stats);
  g_signal_connect (server, "message-received", G_CALLBACK (serve_message_cb), NULL);
  g_signal_connect (server, "request-received", G_CALLBACK (serve_request_cb), NULL);
  g_signal_connect (server, "client-connected", G_CALLBACK (count_connected), &stats);
  if (!np_pipe_server_start (server, &error))
    g_error ("%s", error->message);

  /* Leave the application holding most of what is left. */
  if (fill > 0)
    for (int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0 && fd < (int) fill - 1;
         fd = open ("/dev/null", O_RDONLY | O_CLOEXEC))
      ;

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, serve_stdin_cb, loop);
  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (loop);

  printf ("warnings %u connected %u\n", stats.n_warnings, stats.n_connected);
  fflush (stdout);

  return 0;
}

static int
run_serve (const char *name)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;

  g_signal_connect (server, "message-received", G_CALLBACK (serve_message_cb), NULL);
  g_signal_connect (server, "request-received", G_CALLBACK (serve_request_cb), NULL);
  if (!np_pipe_server_start (server, &error))
    g_error ("%s", error->message);

  /* Started by socket activation, the server must not hand it on. */
  if (g_getenv ("LISTEN_FDS") != NULL || g_getenv ("LISTEN_PID") != NULL)
    printf ("LISTEN_FDS or LISTEN_PID still set\n");

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, serve_stdin_cb, loop);
  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (loop);

  return 0;
}

static gboolean
refuse_cb (NpPipeServer     *server,
           NpPipeConnection *connection,
           gpointer          user_data)
{
  return FALSE;
}

/* Accepts, and says a hello of version 4, but never its settings. */
static gboolean
hello_only_accept_cb (GSocket      *listener,
                      GIOCondition  condition,
                      gpointer      data)
{
  NpTestRawServer *server = data;
  GSocket *peer = g_socket_accept (listener, NULL, NULL);
  guint8 hello[NP_HELLO_SIZE];

  if (peer != NULL)
    {
      np_test_hello (hello, 4, 1024);
      np_test_raw_write (peer, hello, sizeof hello);
      g_ptr_array_add (server->accepted, peer);
      printf ("accepted\n");
      fflush (stdout);
    }

  return G_SOURCE_CONTINUE;
}

static int
run_serve_as (const char *name,
              const char *mode)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  NpTestRawServer *mute = NULL;

  g_signal_connect (server, "message-received", G_CALLBACK (serve_message_cb), NULL);
  g_signal_connect (server, "request-received", G_CALLBACK (serve_request_cb), NULL);
  if (g_str_equal (mode, "refuse"))
    g_signal_connect (server, "authorize-peer", G_CALLBACK (refuse_cb), NULL);
  else if (g_str_equal (mode, "full"))
    np_pipe_server_set_max_connections (server, 1);
  else if (g_str_equal (mode, "mute"))
    mute = np_test_raw_server_new (name, 8, TRUE);
  else if (g_str_equal (mode, "hello-only"))
    {
      mute = np_test_raw_server_new (name, 8, FALSE);
      mute->source = g_socket_create_source (mute->listener, G_IO_IN, NULL);
      g_source_set_callback (mute->source, G_SOURCE_FUNC (hello_only_accept_cb), mute, NULL);
      g_source_attach (mute->source, NULL);
    }
  else
    g_error ("serve-as: no mode %s", mode);

  if (mute == NULL && !np_pipe_server_start (server, &error))
    g_error ("%s", error->message);

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, serve_stdin_cb, loop);
  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (loop);

  g_clear_pointer (&mute, np_test_raw_server_free);

  return 0;
}

typedef struct
{
  GHashTable *next_seq;     /* connection → next sequence number + 1 */
  GHashTable *client_ids;   /* connection → client id + 1 */
  guint       n_messages;
  guint       n_bad;
  guint       n_clients;
  guint       n_open;
  gboolean    stdin_closed;
} Count;

static void
count_connected_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    Count            *count)
{
  count->n_clients++;
  count->n_open++;
}

static void
count_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  Count            *count)
{
  guint32 client_id = 0, seq = 0;
  guint32 expected = GPOINTER_TO_UINT (g_hash_table_lookup (count->next_seq, connection));
  guint32 known = GPOINTER_TO_UINT (g_hash_table_lookup (count->client_ids, connection));

  count->n_messages++;

  if (!np_test_message_parse (message, &client_id, &seq) ||
      (known != 0 && client_id != known - 1) ||
      seq != expected ||
      g_bytes_get_size (message) != np_test_mixed_size (client_id, seq))
    {
      count->n_bad++;
      return;
    }

  g_hash_table_insert (count->client_ids, connection, GUINT_TO_POINTER (client_id + 1));
  g_hash_table_insert (count->next_seq, connection, GUINT_TO_POINTER (seq + 1));
}

static void
count_disconnected_cb (NpPipeServer     *server,
                       NpPipeConnection *connection,
                       GError           *error,
                       Count            *count)
{
  if (error != NULL)
    {
      g_printerr ("np-test-peer: %s\n", error->message);
      count->n_bad++;
    }
  count->n_open--;
}

static gboolean
count_stdin_cb (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  Count *count = user_data;
  char buf[256];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;

  count->stdin_closed = TRUE;
  return G_SOURCE_REMOVE;
}

static int
run_count (const char *name)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GError) error = NULL;
  Count count = { 0 };

  count.next_seq = g_hash_table_new (NULL, NULL);
  count.client_ids = g_hash_table_new (NULL, NULL);

  /* The clients close at once: what they sent must all be read. */
  np_pipe_server_set_close_timeout (server, 0);
  np_pipe_server_set_max_queued_bytes (server, 0);
  g_signal_connect (server, "client-connected", G_CALLBACK (count_connected_cb), &count);
  g_signal_connect (server, "message-received", G_CALLBACK (count_message_cb), &count);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (count_disconnected_cb), &count);
  if (!np_pipe_server_start (server, &error))
    g_error ("%s", error->message);

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, count_stdin_cb, &count);
  printf ("ready\n");
  fflush (stdout);

  while (!count.stdin_closed)
    g_main_context_iteration (NULL, TRUE);

  /* Clients whose connection is still in the listen backlog make the
   * socket readable: nothing pending and nobody open means all came and
   * went. */
  for (;;)
    {
      if (count.n_open > 0)
        g_main_context_iteration (NULL, TRUE);
      else if (!g_main_context_iteration (NULL, FALSE))
        break;
    }

  printf ("%u %u %u\n", count.n_messages, count.n_bad, count.n_clients);
  fflush (stdout);

  g_hash_table_unref (count.next_seq);
  g_hash_table_unref (count.client_ids);

  return 0;
}

static int
run_fd_send (const char *name,
             const char *text)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) message = g_bytes_new_static ("memfd", 5);
  g_autoptr(GError) error = NULL;
  int fd = memfd_create ("np-test", MFD_CLOEXEC);

  if (fd < 0 || write (fd, text, strlen (text)) != (gssize) strlen (text))
    g_error ("memfd: %s", g_strerror (errno));
  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);

  if (!np_pipe_client_connect_sync (client, NULL, &error) ||
      !np_pipe_client_send_with_fds (client, message, fds, &error))
    g_error ("%s", error->message);
  g_clear_object (&fds);
  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

static void
fd_receive_cb (NpPipeClient *client,
               GBytes       *message,
               GUnixFDList  *fds,
               gboolean     *done)
{
  g_autoptr(GString) data = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  int fd = g_unix_fd_list_get (fds, 0, &error);
  char buf[256];
  gssize n;

  g_assert_no_error (error);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (data, buf, n);
  close (fd);

  printf ("%.*s %s\n", (int) g_bytes_get_size (message),
          (const char *) g_bytes_get_data (message, NULL), data->str);
  fflush (stdout);
  *done = TRUE;
}

static int
run_fd_receive (const char *name)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  gboolean done = FALSE;

  g_signal_connect (client, "message-with-fds-received", G_CALLBACK (fd_receive_cb), &done);
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    g_error ("%s", error->message);
  WAIT_UNTIL (done);
  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

static void
many_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_connect_finish (NP_PIPE_CLIENT (object), result, &error))
    g_error ("%s", error->message);
  (*(guint *) user_data)++;
}

/* COUNT clients, connected at once, each accepted by the server: with a
 * server busy with them all, no timeout. */
static GPtrArray *
connect_many (const char *name,
              guint       count)
{
  GPtrArray *clients = g_ptr_array_new_with_free_func (g_object_unref);
  guint n_connected = 0;

  np_test_raise_nofile ();
  for (guint i = 0; i < count; i++)
    {
      NpPipeClient *client = np_pipe_client_new (name);

      np_pipe_client_set_connect_timeout (client, 0);
      np_pipe_client_set_close_timeout (client, 0);
      np_pipe_client_connect_async (client, NULL, many_connected_cb, &n_connected);
      g_ptr_array_add (clients, client);
    }
  WAIT_UNTIL (n_connected == count);

  printf ("connected %u\n", count);
  fflush (stdout);

  return clients;
}

static gboolean
stdin_closed_cb (int          fd,
                 GIOCondition condition,
                 gpointer     user_data)
{
  char buf[256];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;

  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
close_many (GPtrArray *clients)
{
  for (guint i = 0; i < clients->len; i++)
    np_pipe_client_close (g_ptr_array_index (clients, i), NULL, NULL);
  g_ptr_array_unref (clients);
}

static int
run_hold (const char *name,
          guint       count)
{
  GPtrArray *clients = connect_many (name, count);
  gboolean closed = FALSE;

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, stdin_closed_cb, &closed);
  WAIT_UNTIL (closed);
  close_many (clients);

  return 0;
}

static int
run_flood (const char *name,
           guint32     first,
           guint       count)
{
  GPtrArray *clients = connect_many (name, count);
  g_autofree guint32 *next_seq = g_new0 (guint32, count);
  gboolean closed = FALSE;

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, stdin_closed_cb, &closed);
  while (!closed)
    {
      gboolean sent = FALSE;

      for (guint i = 0; i < count; i++)
        {
          NpPipeClient *client = g_ptr_array_index (clients, i);
          g_autoptr(GBytes) message = NULL;
          g_autoptr(GError) error = NULL;

          if (!np_pipe_client_get_connected (client) ||
              np_pipe_client_get_queued_bytes (client) >= 64 * 1024)
            continue;

          message = np_test_message_new (first + i, next_seq[i],
                                         np_test_small_size (first + i, next_seq[i]));
          if (np_pipe_client_send (client, message, &error))
            next_seq[i]++;
          else if (!g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED))
            g_error ("%s", error->message);
          sent = TRUE;
        }

      /* Blocks only when every queue is full, until one drains. */
      g_main_context_iteration (NULL, !sent);
    }
  close_many (clients);

  return 0;
}

int
main (int   argc,
      char *argv[])
{
  if (argc == 5 && g_str_equal (argv[1], "send"))
    return run_send (argv[2], atoi (argv[3]), atoi (argv[4]), fixed_sizes);
  if (argc == 5 && g_str_equal (argv[1], "load"))
    return run_send (argv[2], atoi (argv[3]), atoi (argv[4]), np_test_random_size);
  if (argc == 3 && g_str_equal (argv[1], "half"))
    return run_half (argv[2]);
  if (argc == 3 && g_str_equal (argv[1], "probe"))
    return run_probe (argv[2]);
  if (argc == 5 && g_str_equal (argv[1], "echo"))
    return run_echo (argv[2], atoi (argv[3]), atoi (argv[4]));
  if (argc == 3 && g_str_equal (argv[1], "garbage"))
    return run_garbage (argv[2]);
  if (argc == 3 && g_str_equal (argv[1], "serve"))
    return run_serve (argv[2]);
  if (argc == 5 && g_str_equal (argv[1], "serve-limited"))
    return run_serve_limited (argv[2], atoi (argv[3]), atoi (argv[4]));
  if (argc == 4 && g_str_equal (argv[1], "serve-as"))
    return run_serve_as (argv[2], argv[3]);
  if (argc == 3 && g_str_equal (argv[1], "count"))
    return run_count (argv[2]);
  if (argc == 4 && g_str_equal (argv[1], "fd-send"))
    return run_fd_send (argv[2], argv[3]);
  if (argc == 3 && g_str_equal (argv[1], "reconnect"))
    return run_reconnect (argv[2]);
  if (argc == 3 && g_str_equal (argv[1], "fd-receive"))
    return run_fd_receive (argv[2]);
  if (argc == 4 && g_str_equal (argv[1], "hold"))
    return run_hold (argv[2], atoi (argv[3]));
  if (argc == 5 && g_str_equal (argv[1], "flood"))
    return run_flood (argv[2], atoi (argv[3]), atoi (argv[4]));

  g_printerr ("Usage: %s send|echo|load NAME CLIENT COUNT | garbage|half|probe PATH | serve|count NAME"
              " | serve-limited NAME NOFILE FILL | serve-as NAME refuse|full|mute"
              " | hold NAME COUNT | flood NAME FIRST COUNT\n", argv[0]);
  return 2;
}
