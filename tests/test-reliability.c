/* test-reliability.c: hostile peers, load, faults and access control,
 * over real sockets with real peer processes
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * After each hostile peer: the server still runs, a well-behaved client's
 * messages all arrived, and the heap is back within a small margin of
 * where it started.
 */

#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <gio/gunixinputstream.h>

#include "np-test-util.h"

/* What the heap may keep after a hostile peer is gone: the thread's read
 * buffer and GLib's caches, nothing proportional to what the peer sent. */
#define HEAP_MARGIN (2 * 1024 * 1024)

typedef struct
{
  guint64  connection_id;
  guint32  client_id;
  guint32  next_seq;
  gboolean sized_randomly;
  gboolean corrupt;
} Stream;

typedef struct
{
  NpPipeServer *server;
  GHashTable   *streams;          /* connection → Stream */
  GPtrArray    *connected;
  GPtrArray    *disconnect_errors;
  guint         n_disconnected;
  guint         n_messages;
  guint         n_corrupt;
  gboolean      echo;
  gsize         heap_before;
} Fixture;

static gsize
heap_in_use (void)
{
  struct mallinfo2 info;

  malloc_trim (0);
  info = mallinfo2 ();
  return info.uordblks + info.hblkhd;
}

static void
on_connected (NpPipeServer     *server,
              NpPipeConnection *connection,
              Fixture          *f)
{
  Stream *stream = g_new0 (Stream, 1);

  stream->connection_id = np_pipe_connection_get_id (connection);
  stream->client_id = G_MAXUINT32;
  g_hash_table_insert (f->streams, connection, stream);
  g_ptr_array_add (f->connected, g_object_ref (connection));
}

/* Checks each message: a test message of the client that sent it, next in
 * its sequence, of the size the sender used, intact. */
static void
on_message (NpPipeServer     *server,
            NpPipeConnection *connection,
            GBytes           *message,
            Fixture          *f)
{
  Stream *stream = g_hash_table_lookup (f->streams, connection);
  guint32 client_id = 0, seq = 0;

  f->n_messages++;

  if (!np_test_message_parse (message, &client_id, &seq) ||
      (stream->client_id != G_MAXUINT32 && client_id != stream->client_id) ||
      seq != stream->next_seq ||
      (stream->sized_randomly && g_bytes_get_size (message) != np_test_random_size (client_id, seq)))
    {
      stream->corrupt = TRUE;
      f->n_corrupt++;
    }

  stream->client_id = client_id;
  stream->next_seq++;

  if (f->echo)
    np_pipe_connection_send (connection, message, NULL);
}

static void
on_disconnected (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 GError           *error,
                 Fixture          *f)
{
  f->n_disconnected++;
  g_ptr_array_add (f->disconnect_errors, error ? g_error_copy (error) : NULL);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->heap_before = heap_in_use ();
  f->streams = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  f->connected = g_ptr_array_new_with_free_func (g_object_unref);
  f->disconnect_errors = g_ptr_array_new_with_free_func (np_test_error_free0);

  f->server = np_pipe_server_new (NULL);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_connected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_disconnected), f);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_object_add_weak_pointer (G_OBJECT (f->server), (gpointer *) &f->server);
  g_object_unref (f->server);
  g_assert_null (f->server);
  g_assert_cmpuint (f->n_corrupt, ==, 0);

  g_hash_table_unref (f->streams);
  g_ptr_array_unref (f->connected);
  g_ptr_array_unref (f->disconnect_errors);
}

static Stream *
stream_of (Fixture          *f,
           NpPipeConnection *connection)
{
  return g_hash_table_lookup (f->streams, connection);
}

static const GError *
last_error (Fixture *f)
{
  g_assert_cmpuint (f->disconnect_errors->len, >, 0);
  return g_ptr_array_index (f->disconnect_errors, f->disconnect_errors->len - 1);
}

/* Peers */

static GSubprocess *
spawn_peer (GSubprocessFlags  flags,
            const char       *mode,
            const char       *target,
            guint             client_id,
            guint             count)
{
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autofree char *client_str = g_strdup_printf ("%u", client_id);
  g_autofree char *count_str = g_strdup_printf ("%u", count);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  if (count > 0)
    process = g_subprocess_new (flags, &error, peer, mode, target, client_str, count_str, NULL);
  else
    process = g_subprocess_new (flags, &error, peer, mode, target, NULL);
  g_assert_no_error (error);

  return process;
}

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  guint *n_done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  (*n_done)++;
}

static void
line_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  char **line = user_data;

  *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (object), result, NULL, NULL);
  if (*line == NULL)
    *line = g_strdup ("");
}

/* Reads one line of a peer's stdout while the main loop runs. */
static char *
read_peer_line (GSubprocess *process)
{
  g_autoptr(GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  char *line = NULL;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (out), FALSE);
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, line_cb, &line);
  WAIT_UNTIL (line != NULL);

  return line;
}

/* A version-1 hello taking 16 MiB messages, made by main(). */
static guint8 hello[NP_HELLO_SIZE];

/* A well-behaved client in this process, checked after each attack. */
static NpPipeClient *
bystander_new (Fixture *f)
{
  NpPipeClient *client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connected->len >= 1);

  return client;
}

static void
bystander_check (Fixture      *f,
                 NpPipeClient *client,
                 guint32       client_id,
                 guint32       count)
{
  NpPipeConnection *connection = g_ptr_array_index (f->connected, 0);
  guint32 before = stream_of (f, connection)->next_seq;

  for (guint32 seq = before; seq < before + count; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (client_id, seq, np_test_size_for (seq));

      g_assert_true (np_pipe_client_send (client, message, NULL));
    }

  WAIT_UNTIL (stream_of (f, connection)->next_seq == before + count);
  g_assert_false (stream_of (f, connection)->corrupt);
  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_true (np_pipe_connection_get_connected (connection));
  g_assert_true (np_pipe_server_is_running (f->server));
}

static void
assert_heap_back (Fixture *f)
{
  gsize now = heap_in_use ();

  if (now > f->heap_before + HEAP_MARGIN)
    g_error ("The heap grew by %" G_GSIZE_FORMAT " bytes and stayed there",
             now - f->heap_before);
}

/* Hostile peers */

static void
test_random_bytes (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  guint n_done = 0;

  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GSubprocess) peer = spawn_peer (G_SUBPROCESS_FLAGS_NONE, "garbage",
                                                np_pipe_server_get_path (f->server), 0, 0);

      g_subprocess_wait_async (peer, NULL, wait_cb, &n_done);
    }

  bystander_check (f, bystander, 1, 100);
  /* Each peer reads until the server drops it, at its hello: none of
   * them ever was a client. */
  WAIT_UNTIL (n_done == 10);
  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (f->connected->len, ==, 1);

  bystander_check (f, bystander, 1, 100);
  assert_heap_back (f);
}

static void
test_huge_length (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  guint8 huge[NP_FRAME_HEADER_SIZE];

  np_frame_header_encode (huge, NP_FRAME_MESSAGE, G_MAXUINT32);

  np_test_raw_write (socket, hello, sizeof hello);
  WAIT_UNTIL (f->connected->len == 2);
  np_test_raw_write (socket, huge, sizeof huge);
  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (last_error (f), NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);

  bystander_check (f, bystander, 2, 100);
  assert_heap_back (f);
}

/* An ERROR whose domain is longer than 255 bytes is a protocol error,
 * even when the frame holds all of it and answers no request. */
static void
test_error_domain_too_long (Fixture       *f,
                            gconstpointer  data)
{
  guint8 hello_v2[NP_HELLO_SIZE];
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  g_autoptr(GBytes) frame = NULL;
  /* Request id 1, code 9, and a domain length of 256, which the codec
   * never writes: made by hand. */
  const guint8 head[10] = { 0, 0, 0, 1, 0, 0, 0, 9, 1, 0 };
  g_autofree char *domain = g_strnfill (256, 'd');

  np_test_hello (hello_v2, 2, 16 * 1024 * 1024);

  g_byte_array_append (payload, head, sizeof head);
  g_byte_array_append (payload, (const guint8 *) domain, 256);
  g_byte_array_append (payload, (const guint8 *) "no", 2);
  frame = np_test_frame (NP_FRAME_ERROR, payload->data, payload->len);

  np_test_raw_write (socket, hello_v2, sizeof hello_v2);
  WAIT_UNTIL (f->connected->len == 2);
  np_test_raw_write_bytes (socket, frame);
  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (last_error (f), NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (last_error (f)->message, "Malformed error reply"));

  bystander_check (f, bystander, 4, 100);
}

static void
test_truncated_frame (Fixture       *f,
                      gconstpointer  data)
{
  guint8 header[NP_FRAME_HEADER_SIZE];
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autofree guint8 *part = g_malloc0 (300000);

  /* 512 KiB announced, 300 000 bytes sent. */
  np_frame_header_encode (header, NP_FRAME_MESSAGE, 512 * 1024);
  np_test_raw_write (socket, hello, sizeof hello);
  np_test_raw_write (socket, header, sizeof header);
  np_test_raw_write (socket, part, 300000);
  g_socket_close (socket, NULL);

  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (last_error (f), NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpuint (f->n_messages, ==, 0);

  bystander_check (f, bystander, 3, 100);
  assert_heap_back (f);
}

static void
test_bad_handshakes (Fixture       *f,
                     gconstpointer  data)
{
  guint8 wrong_magic[NP_HELLO_SIZE];
  guint8 version_zero[NP_HELLO_SIZE];
  guint8 reserved_set[NP_HELLO_SIZE];
  const guint8 *hellos[] = { wrong_magic, version_zero, reserved_set };
  g_autoptr(NpPipeClient) bystander = bystander_new (f);

  /* Each a good hello spoiled in one byte: the codec writes no bad one. */
  np_test_hello (wrong_magic, 1, 4096);
  wrong_magic[3] = 'X';
  np_test_hello (version_zero, 1, 4096);
  version_zero[4] = 0;
  np_test_hello (reserved_set, 1, 4096);
  reserved_set[6] = 1;

  for (guint i = 0; i < G_N_ELEMENTS (hellos); i++)
    {
      g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));

      /* Told why, and never a client. */
      np_test_raw_write (socket, hellos[i], 12);
      g_assert_cmpuint (np_test_raw_read_goodbye (socket), ==, NP_PIPE_ERROR_PROTOCOL);
    }
  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (f->connected->len, ==, 1);

  bystander_check (f, bystander, 4, 100);
  assert_heap_back (f);
}

/* One byte per write, with the server reading in between each: the
 * message is reassembled whole. */
static void
test_slow_drip (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) message = np_test_message_new (77, 0, 300);
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  guint8 header[NP_FRAME_HEADER_SIZE];

  np_frame_header_encode (header, NP_FRAME_MESSAGE, 300);
  g_byte_array_append (wire, hello, sizeof hello);
  g_byte_array_append (wire, header, sizeof header);
  g_byte_array_append (wire, g_bytes_get_data (message, NULL), g_bytes_get_size (message));

  /* Accepted once the server's hello came; a client once its own was
   * read. */
  {
    guint8 server_hello[NP_HELLO_SIZE];

    np_test_raw_read_exactly (socket, server_hello, sizeof server_hello);
  }
  for (guint i = 0; i < wire->len; i++)
    {
      np_test_raw_write (socket, wire->data + i, 1);
      /* Let the server see this byte before the next one. */
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

  WAIT_UNTIL (f->connected->len == 2 &&
              stream_of (f, g_ptr_array_index (f->connected, 1))->next_seq == 1);
  g_assert_cmpuint (stream_of (f, g_ptr_array_index (f->connected, 1))->client_id, ==, 77);
  g_assert_cmpuint (f->n_disconnected, ==, 0);

  bystander_check (f, bystander, 5, 100);
}

static void
test_idle_past_deadline (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = NULL;
  g_autoptr(GSocket) idle = NULL;

  np_pipe_server_set_handshake_timeout (f->server, 100);
  bystander = bystander_new (f);
  idle = np_test_raw_connect (np_pipe_server_get_path (f->server));

  /* Told why; it never was a client, so nothing reports its end. */
  g_assert_cmpuint (np_test_raw_read_goodbye (idle), ==, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (f->connected->len, ==, 1);

  bystander_check (f, bystander, 6, 100);
}

/* 500 peers that connect and close at once, before any handshake: none
 * is ever a client, and the server lets go of every one. */
static void
test_connect_storm (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSocket) last = NULL;
  const guint n = 500;
  guint n_fds;

  n_fds = np_test_count_open_fds ();
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));

      g_socket_close (socket, NULL);
    }

  /* Accepted after all of them: once it is a client, each of them was
   * accepted; once only its two descriptors are left, each was let go. */
  last = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write (last, hello, sizeof hello);
  WAIT_UNTIL (f->connected->len == 2);
  WAIT_UNTIL (np_test_count_open_fds () == n_fds + 2);

  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 2);
  g_socket_close (last, NULL);
  WAIT_UNTIL (f->n_disconnected == 1);

  bystander_check (f, bystander, 7, 100);
  assert_heap_back (f);
}

/* A peer that never reads while the server keeps sending is dropped once
 * its queue would pass the limit; the server's memory stays bounded. */
static void
test_never_reads (Fixture       *f,
                  gconstpointer  data)
{
  const guint limit = 4 * 1024 * 1024;
  g_autoptr(NpPipeClient) bystander = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) chunk = np_test_message_new (8, 0, 256 * 1024);
  g_autoptr(GError) error = NULL;
  NpPipeConnection *sink;
  guint sent = 0;

  np_pipe_server_set_max_queued_bytes (f->server, limit);
  bystander = bystander_new (f);
  socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write (socket, hello, sizeof hello);
  WAIT_UNTIL (f->connected->len == 2);
  sink = g_ptr_array_index (f->connected, 1);

  while (np_pipe_connection_send (sink, chunk, &error))
    {
      g_assert_cmpuint (np_pipe_connection_get_queued_bytes (sink), <=, limit);
      sent++;
      /* The loop runs between sends, as in a real server. */
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_cmpuint (sent, >=, limit / (256 * 1024));
  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (last_error (f), NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_false (np_pipe_connection_get_connected (sink));
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (sink), ==, 0);

  bystander_check (f, bystander, 9, 100);
  assert_heap_back (f);
}

/* Load: 200 concurrent clients, half of them processes, each sending 1000
 * messages of random sizes and closing at once: every message arrives
 * once, intact, in order per client. */
static void
test_load (Fixture       *f,
           gconstpointer  data)
{
  const guint n_processes = 100;
  const guint n_local = 100;
  const guint32 count = 1000;
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) locals = g_ptr_array_new_with_free_func (g_object_unref);
  guint n_done = 0;
  GHashTableIter iter;
  Stream *stream;

  np_pipe_server_set_max_connections (f->server, 0);

  for (guint i = 0; i < n_processes; i++)
    {
      GSubprocess *peer = spawn_peer (G_SUBPROCESS_FLAGS_NONE, "load",
                                      np_pipe_server_get_name (f->server), 1000 + i, count);

      g_subprocess_wait_async (peer, NULL, wait_cb, &n_done);
      g_ptr_array_add (processes, peer);
    }

  for (guint i = 0; i < n_local; i++)
    {
      NpPipeClient *client = np_pipe_client_new (np_pipe_server_get_name (f->server));

      /* The server they share this thread with accepts them only as the
       * loop gets to it, behind a hundred busy processes. */
      np_pipe_client_set_connect_timeout (client, 0);
      g_assert_true (np_pipe_client_connect_sync (client, NULL, NULL));
      g_ptr_array_add (locals, client);
    }

  /* The local clients interleave their sends, letting the loop run
   * whenever their queues grow. */
  for (guint32 seq = 0; seq < count; seq++)
    {
      for (guint i = 0; i < n_local; i++)
        {
          NpPipeClient *client = g_ptr_array_index (locals, i);
          g_autoptr(GBytes) message = np_test_message_new (i, seq, np_test_random_size (i, seq));

          g_assert_true (np_pipe_client_send (client, message, NULL));
        }

      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

  for (guint i = 0; i < n_local; i++)
    np_pipe_client_close (g_ptr_array_index (locals, i), NULL, NULL);

  WAIT_UNTIL (n_done == n_processes && f->n_disconnected == n_processes + n_local);

  for (guint i = 0; i < n_processes; i++)
    {
      GSubprocess *peer = g_ptr_array_index (processes, i);

      g_assert_true (g_subprocess_get_if_exited (peer));
      g_assert_cmpint (g_subprocess_get_exit_status (peer), ==, 0);
    }

  g_assert_cmpuint (g_hash_table_size (f->streams), ==, n_processes + n_local);
  g_hash_table_iter_init (&iter, f->streams);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &stream))
    {
      g_assert_false (stream->corrupt);
      g_assert_cmpuint (stream->next_seq, ==, count);
    }
  for (guint i = 0; i < f->disconnect_errors->len; i++)
    g_assert_null (g_ptr_array_index (f->disconnect_errors, i));
  g_assert_cmpuint (f->n_messages, ==, (n_processes + n_local) * count);
}

/* Faults */

static void
test_killed_mid_message (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = bystander_new (f);
  g_autoptr(GSubprocess) peer = NULL;
  g_autofree char *line = NULL;
  guint n_done = 0;

  peer = spawn_peer (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                     "half", np_pipe_server_get_path (f->server), 0, 0);
  line = read_peer_line (peer);
  g_assert_cmpstr (line, ==, "ready");
  WAIT_UNTIL (f->connected->len == 2);

  g_subprocess_force_exit (peer);
  g_subprocess_wait_async (peer, NULL, wait_cb, &n_done);
  WAIT_UNTIL (n_done == 1 && f->n_disconnected == 1);
  g_assert_error (last_error (f), NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpuint (stream_of (f, g_ptr_array_index (f->connected, 1))->next_seq, ==, 0);

  bystander_check (f, bystander, 10, 100);
}

typedef struct
{
  NpPipeClient *client;
  guint         n_received;
  guint         n_disconnected;
} Watched;

static void
watched_message (NpPipeClient *client,
                 GBytes       *message,
                 Watched      *w)
{
  w->n_received++;
}

static void
watched_disconnected (NpPipeClient *client,
                      GError       *error,
                      Watched      *w)
{
  w->n_disconnected++;
}

static void
watched_init (Watched    *w,
              const char *name)
{
  g_autoptr(GError) error = NULL;

  w->client = np_pipe_client_new (name);
  g_signal_connect (w->client, "message-received", G_CALLBACK (watched_message), w);
  g_signal_connect (w->client, "disconnected", G_CALLBACK (watched_disconnected), w);
  g_assert_true (np_pipe_client_connect_sync (w->client, NULL, &error));
  g_assert_no_error (error);
}

static GSubprocess *
start_server_process (const char *name)
{
  GSubprocess *server = spawn_peer (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                                    "serve", name, 0, 0);
  g_autofree char *line = read_peer_line (server);

  g_assert_cmpstr (line, ==, "ready");
  return server;
}

/* The server process is killed: its clients learn it; a new server takes
 * the stale socket over; new clients connect. */
static void
test_server_killed_and_restarted (void)
{
  const char *name = "killed-and-restarted";
  g_autoptr(GSubprocess) server = start_server_process (name);
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "np", name, NULL);
  Watched a = { 0 }, b = { 0 }, c = { 0 };
  guint n_done = 0;

  watched_init (&a, name);
  watched_init (&b, name);
  np_pipe_client_send_data (a.client, (const guint8 *) "hello", 5, NULL);
  WAIT_UNTIL (a.n_received == 1);

  g_subprocess_force_exit (server);
  g_subprocess_wait_async (server, NULL, wait_cb, &n_done);
  WAIT_UNTIL (n_done == 1 && a.n_disconnected == 1 && b.n_disconnected == 1);
  g_assert_false (np_pipe_client_get_connected (a.client));
  g_assert_false (np_pipe_client_get_connected (b.client));
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  g_clear_object (&server);
  server = start_server_process (name);

  watched_init (&c, name);
  np_pipe_client_send_data (c.client, (const guint8 *) "again", 5, NULL);
  WAIT_UNTIL (c.n_received == 1);

  /* The first clients may connect again too. */
  g_assert_true (np_pipe_client_connect_sync (a.client, NULL, NULL));
  np_pipe_client_send_data (a.client, (const guint8 *) "back", 4, NULL);
  WAIT_UNTIL (a.n_received == 2);

  np_pipe_client_close (a.client, NULL, NULL);
  np_pipe_client_close (c.client, NULL, NULL);
  g_object_unref (a.client);
  g_object_unref (b.client);
  g_object_unref (c.client);
  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_subprocess_wait_async (server, NULL, wait_cb, &n_done);
  WAIT_UNTIL (n_done == 2);
}

/* stop() with much in flight: what was queued before stop() is
 * delivered, then each client is reported gone once. */
static void
test_stop_in_flight (Fixture       *f,
                     gconstpointer  data)
{
  Watched w[3] = { 0 };
  g_autoptr(GBytes) chunk = np_test_message_new (0, 0, 1024 * 1024);

  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    watched_init (&w[i], np_pipe_server_get_name (f->server));
  WAIT_UNTIL (f->connected->len == G_N_ELEMENTS (w));

  for (guint i = 0; i < 20; i++)
    np_pipe_server_broadcast (f->server, chunk);
  np_pipe_server_stop (f->server);

  WAIT_UNTIL (f->n_disconnected == G_N_ELEMENTS (w));
  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    {
      g_assert_null (g_ptr_array_index (f->disconnect_errors, i));
      WAIT_UNTIL (w[i].n_disconnected == 1);
      g_assert_cmpuint (w[i].n_received, ==, 20);
      g_object_unref (w[i].client);
    }
}

/* At the connection limit new peers are refused; connected ones go on. */
static void
test_max_connections (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(NpPipeClient) bystander = NULL;
  Watched extra = { 0 };

  np_pipe_server_set_max_connections (f->server, 1);
  bystander = bystander_new (f);

  watched_init (&extra, np_pipe_server_get_name (f->server));
  WAIT_UNTIL (extra.n_disconnected == 1);
  g_assert_cmpuint (f->connected->len, ==, 1);

  bystander_check (f, bystander, 11, 100);
  g_object_unref (extra.client);
}

/* Connects @client from this thread's context, which also runs the
 * server; returns whether the server took it, with @error set if not. */
static gboolean
connect_and_wait (NpPipeClient  *client,
                  GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);

  return np_pipe_client_connect_finish (client, result, error);
}

static void
count_client_disconnect_cb (NpPipeClient *client,
                            GError       *error,
                            guint        *n_clean)
{
  g_assert_no_error (error);
  (*n_clean)++;
}

/* The single-instance pattern, client and server in one main context: at
 * max-connections 1 a client closes cleanly and connects again at once,
 * while the end of its first connection is still unread by the server.
 * The old connection is not in its way; a live one still is. */
static void
test_reconnect_at_once (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(NpPipeClient) third = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;
  guint n_clean = 0;

  np_pipe_server_set_max_connections (f->server, 1);
  g_signal_connect (client, "disconnected", G_CALLBACK (count_client_disconnect_cb), &n_clean);

  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GBytes) message = np_test_message_new (0, 0, np_test_size_for (0));

      g_assert_true (connect_and_wait (client, &error));
      g_assert_no_error (error);
      g_assert_true (np_pipe_client_send (client, message, &error));
      g_assert_no_error (error);
      np_pipe_client_close (client, NULL, NULL);
      g_assert_cmpuint (n_clean, ==, round + 1);
    }

  g_assert_true (connect_and_wait (client, &error));
  g_assert_no_error (error);
  /* The server has the client once its settings arrived, which the
   * client sent before its connect completed. */
  WAIT_UNTIL (f->n_disconnected == 3 && f->connected->len == 4);
  for (guint i = 0; i < f->disconnect_errors->len; i++)
    g_assert_null (g_ptr_array_index (f->disconnect_errors, i));
  g_assert_cmpuint (f->n_messages, ==, 3);

  /* A third client while that one lives is refused. */
  g_assert_false (connect_and_wait (third, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_assert_cmpuint (f->connected->len, ==, 4);
  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_true (np_pipe_connection_get_connected (g_ptr_array_index (f->connected, 3)));
}

/* A server busy with its work: the client closes and connects again
 * meanwhile. The handler holds the loop until the peer says it is
 * reconnecting, reading its output a byte at a time (so that nothing
 * after that line is taken from the test). */
static void
block_loop_cb (NpPipeServer     *server,
               NpPipeConnection *connection,
               GBytes           *message,
               GSubprocess     **peer)
{
  /* Under the stream, which the test waits on meanwhile. */
  int fd = g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (g_subprocess_get_stdout_pipe (*peer)));
  g_autoptr(GString) line = g_string_new (NULL);
  GPollFD pfd = { fd, G_IO_IN, 0 };
  char c;

  for (;;)
    {
      gssize n = read (fd, &c, 1);

      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        {
          g_poll (&pfd, 1, -1);
          continue;
        }
      g_assert_cmpint (n, ==, 1);
      if (c == '\n')
        break;
      g_string_append_c (line, c);
    }
  g_assert_cmpstr (line->str, ==, "reconnecting");
}

/* The same across processes, the server's loop held by a handler of the
 * first connection's message until the client has closed and connected
 * again. */
static void
test_reconnect_at_once_busy_server (Fixture       *f,
                                    gconstpointer  data)
{
  g_autoptr(NpPipeClient) third = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;

  GSubprocess *current = NULL;

  np_pipe_server_set_max_connections (f->server, 1);
  g_signal_connect (f->server, "message-received", G_CALLBACK (block_loop_cb), &current);

  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GSubprocess) peer = NULL;
      g_autofree char *line = NULL;
      guint n_done = 0;
      guint connected = f->connected->len;
      guint disconnected = f->n_disconnected;

      peer = spawn_peer (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE,
                         "reconnect", np_pipe_server_get_name (f->server), 0, 0);
      current = peer;
      line = read_peer_line (peer);
      g_assert_cmpstr (line, ==, "accepted");
      WAIT_UNTIL (f->connected->len == connected + 2 && f->n_disconnected == disconnected + 1);
      g_assert_null (last_error (f));

      /* The limit holds for the live one. */
      g_assert_false (connect_and_wait (third, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
      g_clear_error (&error);

      g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
      g_subprocess_wait_async (peer, NULL, wait_cb, &n_done);
      WAIT_UNTIL (n_done == 1 && f->n_disconnected == disconnected + 2);
      g_assert_true (g_subprocess_get_if_exited (peer));
      g_assert_cmpint (g_subprocess_get_exit_status (peer), ==, 0);
      current = NULL;
    }

  g_assert_cmpuint (f->n_messages, ==, 3);
}

/* Connections whose peers closed are let aside at the limit, but no more
 * than max-connections of them: peers that end their side and never read
 * cannot make the server hold more than twice the limit, and each such
 * connection is dropped after close-timeout. */
static void
test_closed_peers_bounded (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (4 * 1024 * 1024), 4 * 1024 * 1024);
  g_autoptr(GSocket) a = NULL;
  g_autoptr(GSocket) b = NULL;
  g_autoptr(NpPipeClient) c = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(NpPipeClient) d = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;

  np_pipe_server_set_max_connections (f->server, 1);
  np_pipe_server_set_close_timeout (f->server, 1500);

  /* A says hello, is sent more than its socket holds, ends its side and
   * reads nothing. */
  a = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write (a, hello, sizeof hello);
  WAIT_UNTIL (f->connected->len == 1);
  g_assert_true (np_pipe_connection_send (g_ptr_array_index (f->connected, 0), big, &error));
  g_assert_no_error (error);
  g_assert_true (g_socket_shutdown (a, FALSE, TRUE, &error));
  g_assert_no_error (error);

  /* B gets in in spite of A, as long as it lives a third does not. */
  b = np_test_raw_connect (np_pipe_server_get_path (f->server));
  np_test_raw_write (b, hello, sizeof hello);
  /* Refused, B would be closed at once. */
  WAIT_UNTIL (f->connected->len == 2 || g_socket_condition_check (b, G_IO_HUP) != 0);
  g_assert_cmpuint (f->connected->len, ==, 2);
  g_assert_false (connect_and_wait (c, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_clear_error (&error);

  /* B does as A did: two closing connections, at twice the limit. */
  g_assert_true (np_pipe_connection_send (g_ptr_array_index (f->connected, 1), big, &error));
  g_assert_no_error (error);
  g_assert_true (g_socket_shutdown (b, FALSE, TRUE, &error));
  g_assert_no_error (error);
  g_assert_false (connect_and_wait (c, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_clear_error (&error);
  g_assert_cmpuint (f->connected->len, ==, 2);
  g_assert_cmpuint (f->n_disconnected, ==, 0);

  /* Both are dropped within close-timeout; then clients get in. */
  WAIT_UNTIL (f->n_disconnected == 2);
  for (guint i = 0; i < 2; i++)
    g_assert_error ((const GError *) g_ptr_array_index (f->disconnect_errors, i),
                    NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_true (connect_and_wait (d, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connected->len == 3);
  g_clear_pointer (&big, g_bytes_unref);
  assert_heap_back (f);
}

/* Access */

static void
on_message_echo (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 GBytes           *message,
                 gpointer          user_data)
{
  np_pipe_connection_send (connection, message, NULL);
}

static char *
probe_as_nobody (const char *peer_dir,
                 const char *path)
{
  g_autofree char *peer = g_build_filename (peer_dir, "np-test-peer", NULL);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  g_subprocess_launcher_setenv (launcher, "LD_LIBRARY_PATH", peer_dir, TRUE);
  process = g_subprocess_launcher_spawn (launcher, &error,
                                         "setpriv", "--reuid=65534", "--regid=65534",
                                         "--clear-groups", peer, "probe", path, NULL);
  g_assert_no_error (error);
  line = read_peer_line (process);

  return g_steal_pointer (&line);
}

static void
copy_file (const char *from,
           const char *to)
{
  g_autofree char *contents = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (from, &contents, &len, NULL));
  g_assert_true (g_file_set_contents_full (to, contents, len, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
}

/* A peer of another uid is refused by the kernel's credentials, even when
 * it can reach the socket, and admitted after the opt-in. */
static void
test_other_uid (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autofree char *lib = g_test_build_filename (G_TEST_BUILT, "..", "src", "libnp-1.0.so.0", NULL);
  g_autofree char *peer_copy = NULL;
  g_autofree char *lib_copy = NULL;
  g_autofree char *verdict = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GError) error = NULL;

  if (getuid () != 0 || setpriv == NULL)
    {
      g_test_skip ("Running a peer as another user needs root and setpriv");
      return;
    }

  /* A world-readable place for the peer, whatever the build tree's
   * permissions are. */
  dir = g_dir_make_tmp ("np-access-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  peer_copy = g_build_filename (dir, "np-test-peer", NULL);
  lib_copy = g_build_filename (dir, "libnp-1.0.so.0", NULL);
  copy_file (peer, peer_copy);
  copy_file (lib, lib_copy);

  path = g_build_filename (dir, "shared.sock", NULL);
  server = np_pipe_server_new (path);
  g_signal_connect (server, "message-received", G_CALLBACK (on_message_echo), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  /* By default the socket is the owner's only: connecting is denied. */
  verdict = probe_as_nobody (dir, path);
  expected = g_strdup_printf ("refused %d", NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (verdict, ==, expected);
  g_clear_pointer (&verdict, g_free);

  /* Even with the socket file opened up by mistake, the credentials
   * check refuses the peer before the application sees it. */
  g_assert_cmpint (g_chmod (path, 0666), ==, 0);
  verdict = probe_as_nobody (dir, path);
  g_assert_cmpstr (verdict, ==, expected);
  g_assert_cmpuint (np_pipe_server_get_n_connections (server), ==, 0);
  g_clear_pointer (&verdict, g_free);

  /* After the opt-in, the peer gets in. */
  np_pipe_server_stop (server);
  np_pipe_server_set_allow_other_users (server, TRUE);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  verdict = probe_as_nobody (dir, path);
  g_assert_cmpstr (verdict, ==, "accepted");

  np_pipe_server_stop (server);
  g_unlink (peer_copy);
  g_unlink (lib_copy);
  g_rmdir (dir);
}

/* A symlink planted at the socket path is left alone, and a pipe
 * directory replaced by a symlink is refused. */
static void
test_planted_symlinks (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  g_autofree char *moved = g_build_filename (g_get_user_runtime_dir (), "np-moved", NULL);
  g_autofree char *link_path = g_build_filename (dir, "planted", NULL);
  g_autofree char *target = g_build_filename (g_get_user_runtime_dir (), "target", NULL);
  g_autofree char *behind = g_build_filename (moved, "behind-a-link", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (target, "untouched", -1, NULL));
  g_assert_cmpint (symlink (target, link_path), ==, 0);

  server = np_pipe_server_new ("planted");
  g_assert_false (np_pipe_server_start (server, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_clear_error (&error);
  g_assert_true (g_file_get_contents (target, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "untouched");
  g_assert_true (g_file_test (link_path, G_FILE_TEST_IS_SYMLINK));
  g_unlink (link_path);
  g_clear_object (&server);

  /* The pipe directory itself replaced by a symlink to a directory. */
  g_assert_cmpint (g_rename (dir, moved), ==, 0);
  g_assert_cmpint (symlink (moved, dir), ==, 0);
  server = np_pipe_server_new ("behind-a-link");
  g_assert_false (np_pipe_server_start (server, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_false (g_file_test (behind, G_FILE_TEST_EXISTS));

  g_unlink (dir);
  g_assert_cmpint (g_rename (moved, dir), ==, 0);
  g_unlink (target);
}


/* Refusals seen by a client without a main loop: blocking calls only,
 * nothing iterates this thread's context while the client works. */

typedef struct
{
  guint   n;
  guint   n_clean;
  GError *error;
} Ends;

static void
ends_cb (NpPipeClient *client,
         const GError *error,
         Ends         *e)
{
  e->n++;
  if (error == NULL)
    e->n_clean++;
  g_clear_error (&e->error);
  e->error = error != NULL ? g_error_copy (error) : NULL;
}

/* An Np server, or a listener that never says hello, in another
 * process (np-test-peer serve-as). */
static GSubprocess *
spawn_server_as (const char *name,
                 const char *mode)
{
  const char *args[] = { "serve-as", name, mode, NULL };
  GSubprocess *server = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                            G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *line = np_test_read_line (server);

  g_assert_cmpstr (line, ==, "ready");

  return server;
}

static void
stop_server_as (GSubprocess *server)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (server, NULL, &error));
  g_assert_no_error (error);
  g_object_unref (server);
}

/* connect_sync, send, close against a server that refuses: the refusal,
 * with the server's reason, every time; never a success, never a clean
 * close. */
static void
test_refused_without_loop (void)
{
  const char *name = "refusing-elsewhere";
  GSubprocess *server = spawn_server_as (name, "refuse");

  for (guint run = 0; run < 4; run++)
    {
      g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
      g_autoptr(GError) error = NULL;
      Ends e = { 0 };

      g_signal_connect (client, "disconnected", G_CALLBACK (ends_cb), &e);

      g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
      g_assert_nonnull (strstr (error->message, "refused the peer"));
      g_assert_false (np_pipe_client_get_connected (client));
      g_clear_error (&error);

      g_assert_false (np_pipe_client_send_data (client, (const guint8 *) "important", 9, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
      g_clear_error (&error);

      np_pipe_client_close (client, NULL, NULL);
      g_assert_cmpuint (e.n_clean, ==, 0);
      g_clear_error (&e.error);
    }

  stop_server_as (server);
}

/* A full server: connect_sync fails with TOO_MANY_CLIENTS, and so does a
 * request_sync made after it; the client that got in works. */
static void
test_full_without_loop (void)
{
  const char *name = "full-elsewhere";
  GSubprocess *server = spawn_server_as (name, "full");
  g_autoptr(NpPipeClient) first = np_pipe_client_new (name);
  g_autoptr(NpPipeClient) second = np_pipe_client_new (name);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_connect_sync (first, NULL, &error));
  g_assert_no_error (error);

  g_assert_false (np_pipe_client_connect_sync (second, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_assert_nonnull (strstr (error->message, name));
  g_clear_error (&error);

  g_assert_null (np_pipe_client_request_sync (second, request, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
  g_clear_error (&error);

  reply = np_pipe_client_request_sync (first, request, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, request));

  np_pipe_client_close (first, NULL, NULL);
  np_pipe_client_close (second, NULL, NULL);
  stop_server_as (server);
}

/* A listener that accepts and never says hello: connect_sync gives up
 * at the connect timeout. */
static void
test_mute_without_loop (void)
{
  const char *name = "mute-elsewhere";
  GSubprocess *server = spawn_server_as (name, "mute");
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GError) error = NULL;
  gint64 start;

  np_pipe_client_set_connect_timeout (client, 300);
  start = g_get_monotonic_time ();
  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * G_TIME_SPAN_MILLISECOND);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, name));
  g_assert_false (np_pipe_client_get_connected (client));

  np_pipe_client_close (client, NULL, NULL);
  stop_server_as (server);
}

/* A server of this process that another thread runs answers while this
 * thread waits: the refusal is connect_sync's error. */
typedef struct
{
  const char   *name;
  GMainContext *context;
  GMainLoop    *loop;
  GMutex        mutex;
  GCond         cond;
  gboolean      ready;
} ServerThread;

static gboolean
refuse_peer_cb (NpPipeServer     *server,
                NpPipeConnection *connection,
                gpointer          user_data)
{
  return FALSE;
}

static gpointer
server_thread (gpointer data)
{
  ServerThread *t = data;
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (t->context);
  server = np_pipe_server_new (t->name);
  g_signal_connect (server, "authorize-peer", G_CALLBACK (refuse_peer_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  g_mutex_lock (&t->mutex);
  t->ready = TRUE;
  g_cond_signal (&t->cond);
  g_mutex_unlock (&t->mutex);

  g_main_loop_run (t->loop);
  np_pipe_server_stop (server);
  g_main_context_pop_thread_default (t->context);

  return NULL;
}

static void
test_refused_by_other_thread (void)
{
  ServerThread t = { .name = "refusing-thread" };
  g_autoptr(NpPipeClient) client = np_pipe_client_new (t.name);
  g_autoptr(GError) error = NULL;
  GThread *thread;

  t.context = g_main_context_new ();
  t.loop = g_main_loop_new (t.context, FALSE);
  g_mutex_init (&t.mutex);
  g_cond_init (&t.cond);
  thread = g_thread_new ("server", server_thread, &t);
  g_mutex_lock (&t.mutex);
  while (!t.ready)
    g_cond_wait (&t.cond, &t.mutex);
  g_mutex_unlock (&t.mutex);

  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);

  g_main_loop_quit (t.loop);
  g_thread_join (thread);
  g_main_loop_unref (t.loop);
  g_main_context_unref (t.context);
  g_mutex_clear (&t.mutex);
  g_cond_clear (&t.cond);
}

/* A server in this very thread: connect_sync cannot wait for it, and
 * returns at once; once the loop runs, the connection works. */
static void
test_same_thread_server (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) message = np_test_message_new (7, 0, 100);
  g_autoptr(GError) error = NULL;
  Ends e = { 0 };

  g_signal_connect (client, "disconnected", G_CALLBACK (ends_cb), &e);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (f->n_messages == 1);
  g_assert_cmpuint (f->n_corrupt, ==, 0);
  g_assert_cmpuint (e.n, ==, 0);

  np_pipe_client_close (client, NULL, NULL);
  g_assert_cmpuint (e.n_clean, ==, 1);
}

/* A refusal that comes after connect_sync returned (a listener of this
 * process, which connect_sync does not wait for) left unread while the
 * client writes: each call reports it, not a broken pipe. */
static GSocket *
refuse_raw (NpTestRawServer *raw,
            guint32          code)
{
  g_autoptr(GBytes) goodbye = np_test_goodbye (code, "no room here");
  GSocket *peer;
  guint8 hello_v3[12];

  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_steal_index (raw->accepted, 0);
  np_test_hello (hello_v3, 3, 1024);
  np_test_raw_write (peer, hello_v3, sizeof hello_v3);
  np_test_raw_write_bytes (peer, goodbye);
  /* Gone, with the client's handshake unread. */
  g_socket_close (peer, NULL);

  return peer;
}

static void
test_refusal_after_connect (void)
{
  const char *name = "refusing-raw";
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(GBytes) request = g_bytes_new_static ("ask", 3);
  g_autoptr(GError) error = NULL;

  /* flush_sync, then request_sync. */
  {
    g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
    g_autoptr(GSocket) peer = NULL;
    Ends e = { 0 };

    g_signal_connect (client, "disconnected", G_CALLBACK (ends_cb), &e);
    g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
    peer = refuse_raw (raw, NP_PIPE_ERROR_TOO_MANY_CLIENTS);

    g_assert_true (np_pipe_client_send_data (client, (const guint8 *) "important", 9, &error));
    g_assert_false (np_pipe_client_flush_sync (client, NULL, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
    g_assert_nonnull (strstr (error->message, "no room here"));
    g_clear_error (&error);

    g_assert_null (np_pipe_client_request_sync (client, request, NULL, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
    g_clear_error (&error);

    np_pipe_client_close (client, NULL, NULL);
    g_assert_cmpuint (e.n_clean, ==, 0);
    g_assert_error (e.error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS);
    g_clear_error (&e.error);
  }

  /* send, then close: disconnected says why. */
  {
    g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
    g_autoptr(GSocket) peer = NULL;
    Ends e = { 0 };

    g_signal_connect (client, "disconnected", G_CALLBACK (ends_cb), &e);
    g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
    peer = refuse_raw (raw, NP_PIPE_ERROR_PERMISSION_DENIED);

    g_assert_true (np_pipe_client_send_data (client, (const guint8 *) "important", 9, &error));
    np_pipe_client_close (client, NULL, NULL);
    g_assert_cmpuint (e.n, ==, 1);
    g_assert_error (e.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
    g_assert_nonnull (strstr (e.error->message, "no room here"));
    g_clear_error (&e.error);
  }

  np_test_raw_server_free (raw);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;

  runtime_dir = np_test_runtime_dir_new ("np-reliability-XXXXXX");

  g_test_init (&argc, &argv, NULL);
  np_test_hello (hello, 1, 16 * 1024 * 1024);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Reliability/hostile/random-bytes", test_random_bytes);
  ADD ("/Np/Reliability/hostile/huge-length", test_huge_length);
  ADD ("/Np/Reliability/hostile/truncated-frame", test_truncated_frame);
  ADD ("/Np/Reliability/hostile/error-domain-too-long", test_error_domain_too_long);
  ADD ("/Np/Reliability/hostile/bad-handshakes", test_bad_handshakes);
  ADD ("/Np/Reliability/hostile/slow-drip", test_slow_drip);
  ADD ("/Np/Reliability/hostile/idle-past-deadline", test_idle_past_deadline);
  ADD ("/Np/Reliability/hostile/connect-storm", test_connect_storm);
  ADD ("/Np/Reliability/hostile/never-reads", test_never_reads);
  ADD ("/Np/Reliability/load", test_load);
  ADD ("/Np/Reliability/faults/killed-mid-message", test_killed_mid_message);
  g_test_add_func ("/Np/Reliability/faults/server-killed-and-restarted", test_server_killed_and_restarted);
  ADD ("/Np/Reliability/faults/stop-in-flight", test_stop_in_flight);
  ADD ("/Np/Reliability/limits/max-connections", test_max_connections);
  ADD ("/Np/Reliability/limits/reconnect-at-once", test_reconnect_at_once);
  ADD ("/Np/Reliability/limits/reconnect-at-once/busy-server", test_reconnect_at_once_busy_server);
  ADD ("/Np/Reliability/limits/closed-peers-bounded", test_closed_peers_bounded);
  g_test_add_func ("/Np/Reliability/access/other-uid", test_other_uid);
  g_test_add_func ("/Np/Reliability/access/planted-symlinks", test_planted_symlinks);
  g_test_add_func ("/Np/Reliability/refusals/refused-without-loop", test_refused_without_loop);
  g_test_add_func ("/Np/Reliability/refusals/full-without-loop", test_full_without_loop);
  g_test_add_func ("/Np/Reliability/refusals/mute-without-loop", test_mute_without_loop);
  g_test_add_func ("/Np/Reliability/refusals/refused-by-other-thread", test_refused_by_other_thread);
  ADD ("/Np/Reliability/refusals/same-thread-server", test_same_thread_server);
  g_test_add_func ("/Np/Reliability/refusals/refusal-after-connect", test_refusal_after_connect);

  return g_test_run ();
}
