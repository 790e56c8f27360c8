/* test-attack.c: what a hostile peer or a careless application does to
 * the library, and what the library must survive or refuse
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#define _GNU_SOURCE

#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gio/gunixfdlist.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

/* Frame types of protocol version 2 (docs/protocol.md). */
enum
{
  NP_TEST_REQUEST = 4,
  NP_TEST_REPLY = 5,
  NP_TEST_ERROR = 6,
};

static char *
unique_name (const char *prefix)
{
  return g_strdup_printf ("%s-%u", prefix, g_random_int ());
}

static void
async_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Iterates what is ready in the default context, without blocking. */
static void
run_ready (guint n)
{
  for (guint i = 0; i < n; i++)
    g_main_context_iteration (NULL, FALSE);
}

/* A frame of protocol version 2 with a request id before @payload. */
static GBytes *
id_frame (guint8        type,
          guint32       id,
          const guint8 *payload,
          gsize         len)
{
  g_autofree guint8 *body = g_malloc (4 + len);

  np_test_put_u32 (body, id);
  if (len > 0)
    memcpy (body + 4, payload, len);

  return np_test_frame (type, body, 4 + len);
}

typedef struct
{
  guint8   type;
  GBytes  *payload;
} Frame;

static void
frame_free (gpointer data)
{
  Frame *frame = data;

  g_bytes_unref (frame->payload);
  g_free (frame);
}

/* Reads frames until the end of the stream. */
static GPtrArray *
read_frames_until_end (GSocket *socket)
{
  GPtrArray *frames = g_ptr_array_new_with_free_func (frame_free);

  for (;;)
    {
      guint8 header[8];
      g_autofree guint8 *payload = NULL;
      gssize n = np_test_raw_read (socket, header, 1);
      Frame *frame;
      guint32 len;

      if (n == 0)
        return frames;

      np_test_raw_read_exactly (socket, header + 1, 7);
      len = np_test_get_u32 (header);
      payload = g_malloc (MAX (len, 1));
      np_test_raw_read_exactly (socket, payload, len);

      frame = g_new0 (Frame, 1);
      frame->type = header[4];
      frame->payload = g_bytes_new_take (g_steal_pointer (&payload), len);
      g_ptr_array_add (frames, frame);
    }
}

/* Sends until the message is still queued: the peer does not read. */
static void
fill_client_queue (NpPipeClient *client)
{
  g_autoptr(GBytes) big = np_test_message_new (7, 0, 8 * 1024 * 1024);
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (client, big, &error));
  g_assert_no_error (error);
  run_ready (10);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), >, 0);
}

/* 1. A connection the client replaced by a new connect is never detached
 * from it: it keeps reporting to the client after the client is gone. */

static void
count_cb (gpointer  instance,
          gpointer  arg,
          guint    *count)
{
  (*count)++;
}

/* Connects @client to @raw and leaves the connection closing: more
 * queued than the socket holds, and the server's side ended, so that
 * the connection has to keep writing. Returns the server's end. */
static GSocket *
leave_client_closing (NpTestRawServer *raw,
                      NpPipeClient    *client)
{
  g_autoptr(GBytes) probe = g_bytes_new_static ("probe", 5);
  g_autoptr(GError) error = NULL;
  GSocket *first;
  guint8 hello[12];

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 1);
  first = g_ptr_array_index (raw->accepted, 0);

  np_test_hello (hello, 2, 16 * 1024 * 1024);
  np_test_raw_write (first, hello, sizeof hello);
  fill_client_queue (client);

  g_assert_true (g_socket_shutdown (first, FALSE, TRUE, &error));
  g_assert_no_error (error);

  /* Once the client read the end of the stream, it no longer sends. */
  while (np_pipe_client_send (client, probe, &error))
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);

  return first;
}

static void
test_reconnect_while_closing_then_drop (void)
{
  g_autofree char *name = unique_name ("reconnect-closing");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(GError) error = NULL;
  NpPipeClient *client = np_pipe_client_new (name);
  GSocket *first;
  guint8 hello[12];
  guint n_disconnected = 0;

  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  first = leave_client_closing (raw, client);

  /* Connecting again is allowed: the first connection is not open. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (raw->accepted->len == 2);

  /* The application lets go of the client. */
  g_object_unref (client);

  /* The first server reads again: the first connection went with its
   * client, after writing what the socket took (docs/client.md: dropping
   * the last reference does not wait). Nothing may reach the freed
   * client. */
  {
    g_autofree guint8 *sink = g_malloc (64 * 1024);
    guint64 total = 0;
    gssize n;

    while ((n = np_test_raw_read (first, sink, 64 * 1024)) > 0)
      total += n;
    g_assert_cmpuint (total, >, sizeof hello);
  }
  run_ready (100);

  np_test_raw_server_free (raw);
}

/* 2. A request followed by a half-close gets its whole answer, also when
 * the application answers after the handler returned (protocol.md,
 * "Closing"; NpPipeRequest: "or later, after asynchronous work"). */

typedef struct
{
  GPtrArray *kept;
  GPtrArray *disconnects;   /* of GError, or a NULL item for a clean close */
} KeepRequests;

static gboolean
keep_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 KeepRequests     *keep)
{
  g_ptr_array_add (keep->kept, g_object_ref (request));
  return TRUE;
}

static void
record_disconnect_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      const GError     *error,
                      KeepRequests     *keep)
{
  g_ptr_array_add (keep->disconnects, error != NULL ? g_error_copy (error) : NULL);
}

static void
test_half_close_deferred_reply (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) request = id_frame (NP_TEST_REQUEST, 1, (const guint8 *) "ask", 3);
  g_autoptr(GBytes) answer = g_bytes_new_static ("answer", 6);
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GError) error = NULL;
  KeepRequests keep = { 0 };
  guint8 hello[12];
  Frame *frame;

  keep.kept = g_ptr_array_new_with_free_func (g_object_unref);
  keep.disconnects = g_ptr_array_new_with_free_func (np_test_error_free0);
  g_signal_connect (server, "request-received", G_CALLBACK (keep_request_cb), &keep);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (record_disconnect_cb), &keep);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  socket = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_hello (hello, 2, 16 * 1024 * 1024);
  np_test_raw_write (socket, hello, sizeof hello);
  np_test_raw_write_bytes (socket, request);
  g_assert_true (g_socket_shutdown (socket, FALSE, TRUE, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (keep.kept->len == 1);
  /* The end of the stream is in the socket already: let the server see
   * it before the application answers. */
  run_ready (50);

  np_pipe_request_reply (g_ptr_array_index (keep.kept, 0), answer);

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  frames = read_frames_until_end (socket);

  /* The reply, then the goodbye of a normal close. */
  g_assert_cmpuint (frames->len, ==, 2);
  frame = g_ptr_array_index (frames, 0);
  g_assert_cmpuint (frame->type, ==, NP_TEST_REPLY);
  g_assert_cmpuint (g_bytes_get_size (frame->payload), ==, 4 + 6);
  g_assert_cmpuint (np_test_get_u32 (g_bytes_get_data (frame->payload, NULL)), ==, 1);
  frame = g_ptr_array_index (frames, 1);
  g_assert_cmpuint (frame->type, ==, NP_TEST_GOODBYE);
  g_assert_cmpuint (np_test_get_u32 (g_bytes_get_data (frame->payload, NULL)), ==,
                    NP_PIPE_ERROR_CLOSED);

  WAIT_UNTIL (keep.disconnects->len == 1);
  g_assert_null (g_ptr_array_index (keep.disconnects, 0));

  g_ptr_array_unref (keep.kept);
  g_ptr_array_unref (keep.disconnects);
}

/* 3. An application that closes the client when its cancellable is
 * cancelled, and uses that cancellable for a request too. */

typedef struct
{
  NpPipeServer *server;
  GPtrArray    *kept;
  NpPipeClient *client;
} CancelClose;

static gboolean
cancel_close_keep_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      NpPipeRequest    *request,
                      CancelClose      *c)
{
  g_ptr_array_add (c->kept, g_object_ref (request));
  return TRUE;
}

static void
close_client_on_cancel_cb (GCancellable *cancellable,
                           CancelClose  *c)
{
  np_pipe_client_close (c->client, NULL, NULL);
}

static void
test_close_from_cancel_handler (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GBytes) message = g_bytes_new_static ("ask", 3);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  CancelClose c = { 0 };

  c.kept = g_ptr_array_new_with_free_func (g_object_unref);
  c.server = np_pipe_server_new (NULL);
  g_signal_connect (c.server, "request-received", G_CALLBACK (cancel_close_keep_cb), &c);
  g_assert_true (np_pipe_server_start (c.server, &error));
  c.client = np_pipe_client_new (np_pipe_server_get_name (c.server));
  g_assert_true (np_pipe_client_connect_sync (c.client, NULL, &error));
  g_assert_no_error (error);

  /* Connected before the request: it runs first. */
  g_signal_connect (cancellable, "cancelled", G_CALLBACK (close_client_on_cancel_cb), &c);
  np_pipe_client_request_async (c.client, message, cancellable, async_done_cb, &result);
  WAIT_UNTIL (c.kept->len == 1);

  g_cancellable_cancel (cancellable);

  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (c.client, result, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);

  g_ptr_array_unref (c.kept);
  g_object_unref (c.client);
  g_object_unref (c.server);
}


/* 4. A connect that fails while the previous connection was still
 * closing leaves a client that says it is connected, with nothing to
 * send on, and that never says otherwise. */

static void
test_failed_reconnect_while_closing (void)
{
  g_autofree char *name = unique_name ("reconnect-fails");
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) probe = g_bytes_new_static ("probe", 5);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  GSocket *first;
  guint8 hello[12];
  guint n_disconnected = 0;

  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  first = leave_client_closing (raw, client);

  /* A new connect, which the server drops before its hello. */
  np_pipe_client_connect_async (client, NULL, async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 2);
  g_socket_close (g_ptr_array_index (raw->accepted, 1), NULL);
  WAIT_UNTIL (result != NULL);
  g_assert_false (np_pipe_client_connect_finish (client, result, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* The first connection ends too. */
  np_test_raw_read_exactly (first, hello, sizeof hello);
  frames = read_frames_until_end (first);
  WAIT_UNTIL (n_disconnected == 1);
  run_ready (20);

  /* Nothing is connected, and the client was told so: it must say so. */
  g_assert_false (np_pipe_client_send (client, probe, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_false (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

/* 5. A connection ended over an error finishes the frame it was writing,
 * drops what it had queued after it (but for frames copied together with
 * that one), then writes the goodbye (protocol.md, "Frames"): the peer
 * reads whole frames, then the goodbye, and not everything queued. */

static void
record_connection_cb (NpPipeServer      *server,
                      NpPipeConnection  *connection,
                      NpPipeConnection **out)
{
  *out = g_object_ref (connection);
}

static void
test_abort_drops_frames_not_begun (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) too_much = g_bytes_new_take (g_malloc0 (2 * 1024 * 1024), 2 * 1024 * 1024);
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *sink = g_malloc (64 * 1024);
  const gsize size = 1000;
  const guint n_sent = 1000;
  guint64 written, frame = 8 + size;
  gsize drained = 0;
  guint n_messages = 0;
  guint8 hello[12];
  Frame *last;

  np_pipe_server_set_max_queued_bytes (server, 2 * 1024 * 1024);
  g_signal_connect (server, "client-connected", G_CALLBACK (record_connection_cb), &connection);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  socket = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_hello (hello, 2, 16 * 1024 * 1024);
  np_test_raw_write (socket, hello, sizeof hello);
  WAIT_UNTIL (connection != NULL);

  /* Small messages, more than the socket holds: the server stops in the
   * middle of one, with many queued behind it. */
  for (guint i = 0; i < n_sent; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, size);

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }
  run_ready (50);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), >, 0);

  /* The client reads some, which makes room in the socket, and keeps it
   * (the server's context does not run meanwhile). */
  g_socket_set_blocking (socket, TRUE);
  while (drained < 64 * 1024)
    {
      gssize n = g_socket_receive (socket, (char *) sink, 64 * 1024 - drained, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      drained += n;
    }
  written = 12 + (guint64) n_sent * frame - np_pipe_connection_get_queued_bytes (connection);
  g_assert_cmpuint ((written - 12) % frame, !=, 0);

  /* A send past max-queued-bytes drops the client: the connection ends
   * over QUEUE_FULL, writing what the socket takes at once. */
  g_assert_false (np_pipe_connection_send (connection, too_much, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);

  /* What the client reads: the hello and the messages written before
   * (64 KiB of it read already), the rest of the one being written, then
   * the goodbye. */
  {
    g_autoptr(GByteArray) all = g_byte_array_new ();
    gssize n;
    const guint8 *p, *end;

    g_byte_array_append (all, sink, drained);
    while ((n = np_test_raw_read (socket, sink, 64 * 1024)) > 0)
      g_byte_array_append (all, sink, n);

    p = all->data + 12;
    end = all->data + all->len;
    frames = g_ptr_array_new_with_free_func (frame_free);
    while (p + 8 <= end)
      {
        guint32 len = np_test_get_u32 (p);
        Frame *f;

        g_assert_true (p + 8 + len <= end);
        f = g_new0 (Frame, 1);
        f->type = p[4];
        f->payload = g_bytes_new (p + 8, len);
        g_ptr_array_add (frames, f);
        p += 8 + len;
      }
    g_assert_true (p == end);
  }

  g_assert_cmpuint (frames->len, >=, 1);
  last = g_ptr_array_index (frames, frames->len - 1);
  g_assert_cmpuint (last->type, ==, NP_TEST_GOODBYE);
  for (guint i = 0; i < frames->len - 1; i++)
    {
      Frame *f = g_ptr_array_index (frames, i);

      g_assert_cmpuint (f->type, ==, NP_TEST_MESSAGE);
      n_messages++;
    }

  /* What was written whole, and the one being written: at least; what
   * was queued after them: dropped, but for the frames of one copy. */
  g_assert_cmpuint (n_messages, >=, (written - 12 + frame - 1) / frame);
  g_assert_cmpuint ((n_messages - (written - 12 + frame - 1) / frame) * frame, <=, 16 * 1024);
  g_assert_cmpuint (n_messages, <, n_sent);
}

/* 6. close() writes out everything queued, and says so when it could
 * not (np_pipe_client_close(): "Its error is NULL when everything was
 * written"). What waits for the server's hello behind a request is
 * queued too. */

typedef struct
{
  guint   n_disconnected;
  GError *error;
} ClientEnd;

static void
client_end_cb (NpPipeClient *client,
               const GError *error,
               ClientEnd    *end)
{
  end->n_disconnected++;
  g_clear_error (&end->error);
  end->error = error != NULL ? g_error_copy (error) : NULL;
}

typedef struct
{
  guint n_messages;
  guint n_requests;
  guint n_disconnected;
} ServerSeen;

static void
server_message_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   GBytes           *message,
                   ServerSeen       *seen)
{
  seen->n_messages++;
}

static gboolean
server_request_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   NpPipeRequest    *request,
                   ServerSeen       *seen)
{
  seen->n_requests++;
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

static void
server_disconnected_cb (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        const GError     *error,
                        ServerSeen       *seen)
{
  seen->n_disconnected++;
}

static void
test_close_drops_parked_as_clean (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GBytes) request = g_bytes_new_static ("request", 7);
  g_autoptr(GBytes) message = g_bytes_new_static ("after the request", 17);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  ServerSeen seen = { 0 };
  ClientEnd end = { 0 };

  g_signal_connect (server, "message-received", G_CALLBACK (server_message_cb), &seen);
  g_signal_connect (server, "request-received", G_CALLBACK (server_request_cb), &seen);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (server_disconnected_cb), &seen);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_signal_connect (client, "disconnected", G_CALLBACK (client_end_cb), &end);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  /* A request, then a message: both queued, in that order. */
  np_pipe_client_request_async (client, request, NULL, async_done_cb, &result);
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_no_error (error);

  np_pipe_client_close (client, NULL, NULL);
  g_assert_cmpuint (end.n_disconnected, ==, 1);

  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (client, result, &error);

  /* Either the message went out, and the server had the peer as a
   * client, or close() says something was lost: then the peer closed
   * before its handshake was complete, having sent nothing, and never
   * was a client. */
  if (end.error == NULL)
    WAIT_UNTIL (seen.n_messages == 1 && seen.n_disconnected == 1);
  g_clear_error (&end.error);
}

/* 7. A handler that waits for a reply in a main loop of its own, the way
 * GLib programs wait for an asynchronous result (np_pipe_client_request_sync():
 * "use np_pipe_client_request_async() there"). */

static gboolean
echo_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

static void
greet_cb (NpPipeServer     *server,
          NpPipeConnection *connection,
          gpointer          user_data)
{
  g_autoptr(GBytes) hello = g_bytes_new_static ("hello", 5);

  g_assert_true (np_pipe_connection_send (connection, hello, NULL));
}

typedef struct
{
  gboolean replied;
  gboolean handled;
} NestedWait;

static void
ask_and_wait_cb (NpPipeClient *client,
                 GBytes       *message,
                 NestedWait   *wait)
{
  g_autoptr(GBytes) question = g_bytes_new_static ("question", 8);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_request_async (client, question, NULL, async_done_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);

  reply = np_pipe_client_request_finish (client, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, question));
  wait->handled = TRUE;
}

static void
test_nested_loop_waits_for_reply (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  NestedWait wait = { 0 };

  g_signal_connect (server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  g_signal_connect (server, "client-connected", G_CALLBACK (greet_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_signal_connect (client, "message-received", G_CALLBACK (ask_and_wait_cb), &wait);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (wait.handled);
}

/* 8. Handlers that run main loops of their own, nested several deep,
 * while messages keep coming: each message is delivered once, whole, in
 * the order sent, whatever level of the nesting delivers it. */

#define N_ORDERED 3000

typedef struct
{
  GArray  *seen;       /* of guint32, the sequence numbers delivered */
  guint    depth;
  guint    max_depth;
  gboolean broken;
} Ordered;

static void
ordered_message_cb (NpPipeClient *client,
                    GBytes       *message,
                    Ordered      *o)
{
  guint32 id, seq;
  guint target;

  if (!np_test_message_parse (message, &id, &seq))
    {
      o->broken = TRUE;
      return;
    }
  g_array_append_val (o->seen, seq);

  /* Every 97th message runs a loop until 50 more arrived, up to 3 deep. */
  if (seq % 97 != 0 || o->depth >= 3)
    return;

  o->depth++;
  o->max_depth = MAX (o->max_depth, o->depth);
  target = MIN (o->seen->len + 50, N_ORDERED);
  while (o->seen->len < target && !o->broken)
    g_main_context_iteration (NULL, TRUE);
  o->depth--;
}

static void
send_ordered_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 gpointer          user_data)
{
  for (guint32 i = 0; i < N_ORDERED; i++)
    {
      /* Some larger than a read, so that a body is read on its own. */
      gsize size = i % 500 == 7 ? 200 * 1024 : np_test_random_size (1, i);
      g_autoptr(GBytes) message = np_test_message_new (1, i, size);

      g_assert_true (np_pipe_connection_send (connection, message, NULL));
    }
}

static void
test_nested_loops_keep_order (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  Ordered o = { 0 };

  o.seen = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_signal_connect (server, "client-connected", G_CALLBACK (send_ordered_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_signal_connect (client, "message-received", G_CALLBACK (ordered_message_cb), &o);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (o.seen->len == N_ORDERED || o.broken);

  g_assert_false (o.broken);
  g_assert_cmpuint (o.max_depth, >=, 2);
  for (guint i = 0; i < o.seen->len; i++)
    g_assert_cmpuint (g_array_index (o.seen, guint32, i), ==, i);
  g_array_unref (o.seen);
}

/* 9. request_sync() from a worker, to a server of the main thread's
 * context, while the main thread runs that context with
 * g_main_context_iteration() and does some work between iterations. The
 * server answers in microseconds, if its context gets to run. */

typedef struct
{
  NpPipeClient *client;
  guint         n_requests;
  guint         n_failed;
  gint64        slowest;
  gint          done;
} SyncWorker;

static gpointer
request_sync_worker (gpointer data)
{
  SyncWorker *w = data;
  g_autoptr(GBytes) message = g_bytes_new_static ("x", 1);

  for (guint i = 0; i < w->n_requests; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) reply = NULL;
      gint64 start = g_get_monotonic_time ();

      reply = np_pipe_client_request_sync (w->client, message, NULL, &error);
      w->slowest = MAX (w->slowest, g_get_monotonic_time () - start);
      if (reply == NULL)
        w->n_failed++;
    }

  g_atomic_int_set (&w->done, TRUE);
  g_main_context_wakeup (NULL);

  return NULL;
}

static void
some_work (void)
{
  /* What an application does between two iterations of its loop. */
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 block[4096] = { 0 };

  for (guint i = 0; i < 1024; i++)
    g_checksum_update (checksum, block, sizeof block);
}

static void
test_request_sync_starves_context (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;
  SyncWorker w = { 0 };
  GThread *thread;

  g_signal_connect (server, "request-received", G_CALLBACK (echo_request_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  w.client = np_pipe_client_new (np_pipe_server_get_name (server));
  np_pipe_client_set_request_timeout (w.client, 2000);
  g_assert_true (np_pipe_client_connect_sync (w.client, NULL, &error));
  g_assert_no_error (error);
  w.n_requests = 40;

  thread = g_thread_new ("request-sync", request_sync_worker, &w);
  while (!g_atomic_int_get (&w.done))
    {
      g_main_context_iteration (NULL, TRUE);
      some_work ();
    }
  g_thread_join (thread);

  g_test_message ("slowest request: %" G_GINT64_FORMAT " us", w.slowest);
  g_assert_cmpuint (w.n_failed, ==, 0);
  /* A quarter of a second is a thousand times what an answer takes. */
  g_assert_cmpint (w.slowest, <, 250 * G_TIME_SPAN_MILLISECOND);
  g_object_unref (w.client);
}

/* 10. Descriptors sent with the bytes of a message body belong to no
 * frame: a peer that keeps sending them must not make the server hold
 * them until the message ends, or the library's descriptor budget. */

/* Sends @len bytes of @data with @n_fds copies of @fd in one sendmsg(). */
static void
raw_send_with_fds (GSocket      *socket,
                   const guint8 *data,
                   gsize         len,
                   int           fd,
                   guint         n_fds)
{
  int fds[253];

  g_assert_cmpuint (n_fds, >, 0);
  g_assert_cmpuint (n_fds, <=, G_N_ELEMENTS (fds));
  for (guint i = 0; i < n_fds; i++)
    fds[i] = fd;
  np_test_raw_send_with_fds (socket, data, len, fds, n_fds);
}

/* A raw peer of protocol version 3, its hello sent. */
static GSocket *
raw_peer_v3 (NpPipeServer *server)
{
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (server));
  guint8 hello[12];

  np_test_hello (hello, 3, 16 * 1024 * 1024);
  np_test_raw_write (socket, hello, sizeof hello);

  return socket;
}

typedef struct
{
  GPtrArray *connections;
  GPtrArray *fd_lists;
  GError    *error;
  guint      n_disconnected;
} FdServer;

static void
fd_server_connected_cb (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        FdServer         *f)
{
  g_ptr_array_add (f->connections, g_object_ref (connection));
}

static void
fd_server_message_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      GBytes           *message,
                      GUnixFDList      *fds,
                      FdServer         *f)
{
  g_ptr_array_add (f->fd_lists, g_object_ref (fds));
}

static void
fd_server_disconnected_cb (NpPipeServer     *server,
                           NpPipeConnection *connection,
                           const GError     *error,
                           FdServer         *f)
{
  g_clear_error (&f->error);
  if (error != NULL)
    f->error = g_error_copy (error);
  f->n_disconnected++;
  g_ptr_array_remove (f->connections, connection);
}

static NpPipeServer *
fd_server_new (FdServer *f,
               guint     max_fds)
{
  NpPipeServer *server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;

  f->connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->fd_lists = g_ptr_array_new_with_free_func (g_object_unref);
  np_pipe_server_set_max_fds_per_message (server, max_fds);
  g_signal_connect (server, "client-connected", G_CALLBACK (fd_server_connected_cb), f);
  g_signal_connect (server, "message-with-fds-received", G_CALLBACK (fd_server_message_cb), f);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (fd_server_disconnected_cb), f);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  return server;
}

static void
fd_server_clear (FdServer *f)
{
  g_clear_pointer (&f->connections, g_ptr_array_unref);
  g_clear_pointer (&f->fd_lists, g_ptr_array_unref);
  g_clear_error (&f->error);
}

static void
test_fds_in_body (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = fd_server_new (&f, 4);
  g_autoptr(GSocket) socket = NULL;
  guint8 header[8] = { 0 };
  guint8 byte = 'x';
  guint base, held_at_most;
  int fd = memfd_create ("np-attack", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  base = np_test_count_open_fds ();
  socket = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 1);

  /* A plain message of 1 MiB, its body sent a byte at a time, each
   * byte with 4 descriptors: 200 in all. */
  np_test_put_u32 (header, 1024 * 1024);
  np_test_raw_write (socket, header, sizeof header);
  for (guint i = 0; i < 50; i++)
    raw_send_with_fds (socket, &byte, 1, fd, 4);

  /* Dropped at the first, never holding more than one write's. */
  held_at_most = base + 2;
  while (f.n_disconnected == 0)
    {
      g_main_context_iteration (NULL, TRUE);
      held_at_most = MAX (held_at_most, np_test_count_open_fds ());
      /* Ends the test rather than waiting for the budget to run out. */
      if (held_at_most > base + 2 + 4)
        break;
    }
  g_assert_cmpuint (held_at_most, <=, base + 2 + 4);
  g_assert_error (f.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (f.error->message, "descriptors"));
  g_assert_cmpuint (f.fd_lists->len, ==, 0);

  g_socket_close (socket, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* 11. The descriptor budget (np-fd-budget.c): with RLIMIT_NOFILE at 48,
 * the library may hold 16 descriptors, its connections included. A peer
 * whose descriptors would pass it is dropped with TOO_MANY_OPEN_FILES,
 * its descriptors closed; a new client past it is refused with
 * TOO_MANY_CLIENTS, saying why; and once the descriptors are delivered
 * and let go of, peers are served again. */

static void
test_fd_budget (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GSocket) holder = NULL;
  g_autoptr(GSocket) greedy = NULL;
  g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocket) refused = NULL;
  g_autoptr(GByteArray) goodbye = g_byte_array_new ();
  struct rlimit limit;
  guint8 frame[8 + 100] = { 0 };
  guint8 buf[4096];
  guint base, before, n_gone;
  gssize n;
  int fd;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = 48;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  fd = memfd_create ("np-attack", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  server = fd_server_new (&f, 8);
  base = np_test_count_open_fds ();
  g_assert_cmpuint (base, <, 24);

  /* A message of 8 descriptors, its body not all there: the server
   * holds them, 8 of its 16. */
  np_test_put_u32 (frame, 100);
  frame[4] = 7;
  frame[5] = 8;
  holder = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 1);
  raw_send_with_fds (holder, frame, 8 + 1, fd, 8);
  WAIT_UNTIL (np_test_count_open_fds () == base + 2 + 8);

  /* 8 more would take it to 8 + 8 + its 2 connections. */
  greedy = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 2);
  raw_send_with_fds (greedy, frame, 8 + 1, fd, 8);
  WAIT_UNTIL (f.n_disconnected == 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_nonnull (strstr (f.error->message, "RLIMIT_NOFILE"));
  g_socket_close (greedy, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base + 2 + 8);

  /* Clients fill what is left: 8 held, and connections up to 8. */
  while (f.connections->len < 8)
    {
      guint n_before = f.connections->len;

      g_ptr_array_add (others, raw_peer_v3 (server));
      WAIT_UNTIL (f.connections->len == n_before + 1);
    }
  refused = raw_peer_v3 (server);
  while ((n = np_test_raw_read (refused, buf, sizeof buf)) > 0)
    g_byte_array_append (goodbye, buf, n);
  g_assert_cmpuint (f.connections->len, ==, 8);
  g_assert_nonnull (memmem (goodbye->data, goodbye->len, "no descriptors left",
                           strlen ("no descriptors left")));
  g_socket_close (refused, NULL);
  g_ptr_array_set_size (others, 0);
  WAIT_UNTIL (f.connections->len == 1);

  /* The holder's message completes: its descriptors are the
   * application's, out of the budget. */
  np_test_raw_write (holder, frame + 9, sizeof frame - 9);
  WAIT_UNTIL (f.fd_lists->len == 1);
  g_assert_cmpint (g_unix_fd_list_get_length (g_ptr_array_index (f.fd_lists, 0)), ==, 8);
  g_ptr_array_set_size (f.fd_lists, 0);
  before = np_test_count_open_fds ();
  g_assert_cmpuint (before, ==, base + 2);

  /* And the greedy peer's message now gets through. */
  n_gone = f.n_disconnected;
  g_clear_object (&greedy);
  greedy = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 2);
  raw_send_with_fds (greedy, frame, sizeof frame, fd, 8);
  WAIT_UNTIL (f.fd_lists->len == 1);
  g_assert_cmpint (g_unix_fd_list_get_length (g_ptr_array_index (f.fd_lists, 0)), ==, 8);
  g_assert_cmpuint (f.n_disconnected, ==, n_gone);
  g_ptr_array_set_size (f.fd_lists, 0);

  g_socket_close (greedy, NULL);
  g_socket_close (holder, NULL);
  WAIT_UNTIL (f.connections->len == 0);
  WAIT_UNTIL (np_test_count_open_fds () == base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* 11b. Requests with descriptors that the application keeps to answer
 * later hold their descriptors: they count in the budget until
 * answered. With RLIMIT_NOFILE at 48 (16 for the library), a peer whose
 * requests of 8 descriptors each would pass it is dropped with
 * TOO_MANY_OPEN_FILES; the application's share of the process's
 * descriptors is left whole, and answering lets the budget go. */

static gboolean
keep_request_fds_cb (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     NpPipeRequest    *request,
                     FdServer         *f)
{
  g_ptr_array_add (f->fd_lists, g_object_ref (request));

  return TRUE;
}

static void
test_fd_budget_requests (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GSocket) greedy = NULL;
  g_autoptr(GBytes) settings = NULL;
  struct rlimit limit;
  guint8 frame[8 + 4 + 1] = { 0 };
  guint8 hello[12];
  guint8 payload[8] = { 0, 0, 0, 0, 0, 0, 0, 8 };
  guint8 header[8] = { 0, 0, 0, 8, 8, 0, 0, 0 };
  guint base;
  int fd;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = 48;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  fd = memfd_create ("np-attack", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  server = fd_server_new (&f, 8);
  g_signal_connect (server, "request-received", G_CALLBACK (keep_request_fds_cb), &f);
  base = np_test_count_open_fds ();

  greedy = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_hello (hello, 4, 1024);
  np_test_raw_write (greedy, hello, sizeof hello);
  np_test_raw_write (greedy, header, sizeof header);
  np_test_raw_write (greedy, payload, sizeof payload);
  WAIT_UNTIL (f.connections->len == 1);

  /* REQUEST_FDS of 8 descriptors, ids 1, 2, ... */
  np_test_put_u32 (frame, 5);
  frame[4] = 9;
  frame[5] = 8;
  for (guint32 id = 1; id <= 6 && f.n_disconnected == 0; id++)
    {
      np_test_put_u32 (frame + 8, id);
      raw_send_with_fds (greedy, frame, sizeof frame, fd, 8);
      while (f.fd_lists->len < id && f.n_disconnected == 0)
        g_main_context_iteration (NULL, TRUE);
    }

  g_assert_cmpuint (f.n_disconnected, ==, 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_cmpuint (f.fd_lists->len, ==, 1);
  g_socket_close (greedy, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base + 8);

  /* Answered (here, dropped), the request lets its descriptors go. */
  g_ptr_array_set_size (f.fd_lists, 0);
  g_assert_cmpuint (np_test_count_open_fds (), ==, base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* 12. A server that accepts, says hello and closes at once, forever:
 * each connect succeeds, so a client that started its back-off afresh
 * after each one would come back ten times a second for ever. The
 * attempts over a window of time are counted by the listener. */

typedef struct
{
  GSocket *listener;
  guint    n_accepted;
} Flapper;

static gboolean
flapper_accept_cb (GSocket      *listener,
                   GIOCondition  condition,
                   gpointer      data)
{
  Flapper *flapper = data;
  g_autoptr(GSocket) peer = g_socket_accept (listener, NULL, NULL);
  guint8 hello[12];

  if (peer == NULL)
    return G_SOURCE_CONTINUE;

  flapper->n_accepted++;
  np_test_hello (hello, 3, 16 * 1024 * 1024);
  g_socket_send (peer, (const char *) hello, sizeof hello, NULL, NULL);
  g_socket_close (peer, NULL);

  return G_SOURCE_CONTINUE;
}

static gboolean
set_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_reconnect_flapping_server (void)
{
  g_autofree char *name = unique_name ("flapping");
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, FALSE);
  Flapper flapper = { raw->listener, 0 };
  guint n_connected = 0, n_disconnected = 0;
  gboolean window_over = FALSE;
  GSource *source;

  source = g_socket_create_source (raw->listener, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (flapper_accept_cb), &flapper, NULL);
  g_source_attach (source, NULL);

  /* Back-off from 20 ms up to 10 s. */
  g_object_set (client, "auto-reconnect", TRUE, "reconnect-interval", 20,
                "reconnect-max-interval", 10000, NULL);
  g_signal_connect (client, "accepted", G_CALLBACK (count_cb), &n_connected);
  g_signal_connect (client, "disconnected", G_CALLBACK (count_cb), &n_disconnected);
  np_pipe_client_connect_async (client, NULL, async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);

  /* In 2 s, backing off from 20 ms: 20 + 40 + ... + 1280 passes 2 s
   * after 7 attempts (8 with jitter); started afresh, it comes back
   * some 100 times. */
  g_timeout_add (2000, set_flag_cb, &window_over);
  WAIT_UNTIL (window_over);
  g_assert_cmpuint (flapper.n_accepted, >=, 2);
  g_assert_cmpuint (flapper.n_accepted, <=, 12);
  g_assert_cmpuint (n_connected, >=, 1);
  g_assert_cmpuint (n_disconnected, >=, 1);

  np_pipe_client_close (client, NULL, NULL);
  g_source_destroy (source);
  g_source_unref (source);
  np_test_raw_server_free (raw);
}

/* 13. An application that drops its last reference to a client inside
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
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = fd_server_new (&f, 4);
  NpPipeClient *client = np_pipe_client_new (np_pipe_server_get_path (server));
  GWeakRef weak;
  g_autoptr(GError) error = NULL;

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
        int fd = memfd_create ("np-attack", MFD_CLOEXEC);

        g_assert_cmpint (g_unix_fd_list_append (fds, fd, &error), ==, 0);
        g_assert_no_error (error);
        close (fd);
        g_signal_connect (client, "message-with-fds-received", G_CALLBACK (drop_client_fds_cb), &client);
        g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
        g_assert_no_error (error);
        WAIT_UNTIL (f.connections->len == 1);
        g_assert_true (np_pipe_connection_send_with_fds (g_ptr_array_index (f.connections, 0),
                                                         message, fds, &error));
        g_assert_no_error (error);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  WAIT_UNTIL (client == NULL);
  WAIT_UNTIL (f.n_disconnected == 1);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
  run_ready (10);

  g_clear_object (&server);
  fd_server_clear (&f);
}

static void test_drop_in_connected (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_CONNECTED)); }
static void test_drop_in_drained (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_DRAINED)); }
static void test_drop_in_fds (void) { test_drop_client_in_handler (GINT_TO_POINTER (DROP_IN_FDS)); }

/* 14. The reconnect loop under a careless application and a hostile
 * server. The server is a raw listener: it counts the connects it
 * gets, and says hello only when the test wants it to. A window of time
 * (never an assertion about time) gives a live loop the chance to show
 * itself. */

#define RC_WINDOW_MSEC 300

static void
run_for (guint msec)
{
  gboolean over = FALSE;

  g_timeout_add (msec, set_flag_cb, &over);
  WAIT_UNTIL (over);
}

static void
raw_say_hello (GSocket *peer)
{
  guint8 hello[12];

  np_test_hello (hello, 3, 16 * 1024 * 1024);
  np_test_raw_write (peer, hello, sizeof hello);
}

/* Reads what the client wrote until it closes its side. */
static void
raw_wait_closed (GSocket *peer)
{
  guint8 buf[256];

  while (np_test_raw_read (peer, buf, sizeof buf) > 0)
    ;
}

/* Accepts, without blocking, what waits in the backlog; returns how many. */
static guint
raw_drain_backlog (GSocket *listener)
{
  guint n = 0;
  GSocket *peer;

  g_socket_set_blocking (listener, FALSE);
  while ((peer = g_socket_accept (listener, NULL, NULL)) != NULL)
    {
      n++;
      g_socket_close (peer, NULL);
      g_object_unref (peer);
    }

  return n;
}

typedef struct
{
  NpPipeClient *client;
  guint         n_connected;
  guint         n_disconnected;
  GPtrArray    *errors;        /* of each disconnected, NULL for none */
  gboolean      close_async;
  guint         close_on_connected;  /* close in the nth connected, 0: never */
  gboolean      close_on_disconnected;
  gboolean      closed;
} Rc;

static void
rc_close_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Rc *rc = data;
  g_autoptr(GError) error = NULL;

  /* Nothing was held: nothing was dropped. */
  g_assert_true (np_pipe_client_close_finish (NP_PIPE_CLIENT (source), result, &error));
  g_assert_no_error (error);
  rc->closed = TRUE;
}

static void
rc_close (Rc *rc)
{
  if (rc->close_async)
    np_pipe_client_close_async (rc->client, NULL, rc_close_done_cb, rc);
  else
    {
      np_pipe_client_close (rc->client, NULL, NULL);
      rc->closed = TRUE;
    }
}

static void
rc_connected_cb (NpPipeClient *client,
                 Rc           *rc)
{
  g_assert_false (rc->closed);
  rc->n_connected++;
  if (rc->n_connected == rc->close_on_connected)
    rc_close (rc);
}

static void
rc_disconnected_cb (NpPipeClient *client,
                    const GError *error,
                    Rc           *rc)
{
  rc->n_disconnected++;
  g_ptr_array_add (rc->errors, error != NULL ? g_error_copy (error) : NULL);
  if (rc->close_on_disconnected && rc->n_disconnected == 1)
    rc_close (rc);
}

/* A client with auto-reconnect connected to @raw, which says hello to
 * it; unless @keep, the raw server then drops it, and it starts to come
 * back. */
static void
rc_init (Rc              *rc,
         NpTestRawServer *raw,
         guint            interval,
         gboolean         keep)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  rc->errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  rc->client = np_pipe_client_new (raw->path);
  g_object_set (rc->client, "auto-reconnect", TRUE, "reconnect-interval", interval,
                "reconnect-max-interval", interval, NULL);
  g_signal_connect (rc->client, "accepted", G_CALLBACK (rc_connected_cb), rc);
  g_signal_connect (rc->client, "disconnected", G_CALLBACK (rc_disconnected_cb), rc);
  np_pipe_client_connect_async (rc->client, NULL, async_done_cb, &result);
  WAIT_UNTIL (raw->accepted->len == 1);
  raw_say_hello (g_ptr_array_index (raw->accepted, 0));
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (rc->client, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rc->n_connected, ==, 1);

  if (!keep)
    g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
}

/* Lets the client go and checks that nothing holds it. */
static void
rc_clear (Rc *rc)
{
  g_object_add_weak_pointer (G_OBJECT (rc->client), (gpointer *) &rc->client);
  g_object_unref (rc->client);
  WAIT_UNTIL (rc->client == NULL);
  g_ptr_array_unref (rc->errors);
}

typedef enum
{
  CLOSE_IN_BACKOFF,
  CLOSE_WHILE_DIALING,
  CLOSE_BEFORE_HELLO,
  CLOSE_IN_DISCONNECTED,
  CLOSE_IN_CONNECTED,
} CloseStep;

/* Fills @listener's backlog with connects no one accepts. */
static GPtrArray *
fill_backlog (const char *path)
{
  GPtrArray *fillers = g_ptr_array_new_with_free_func (g_object_unref);

  for (;;)
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, &error);

      g_assert_no_error (error);
      g_socket_set_blocking (socket, FALSE);
      if (!g_socket_connect (socket, address, NULL, &error))
        {
          g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
                         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING));
          return fillers;
        }
      g_ptr_array_add (fillers, g_steal_pointer (&socket));
    }
}

static void
test_close_during_reconnect (CloseStep step,
                             gboolean  async)
{
  g_autofree char *name = unique_name ("close-reconnect");
  NpTestRawServer *raw = np_test_raw_server_new (name, 1, TRUE);
  g_autoptr(GPtrArray) fillers = NULL;
  Rc rc = { .close_async = async };
  guint n_accepted;

  if (step == CLOSE_IN_DISCONNECTED)
    rc.close_on_disconnected = TRUE;
  if (step == CLOSE_IN_CONNECTED)
    rc.close_on_connected = 2;

  rc_init (&rc, raw, step == CLOSE_IN_BACKOFF ? 50 : 1, step == CLOSE_WHILE_DIALING);

  switch (step)
    {
    case CLOSE_IN_BACKOFF:
      WAIT_UNTIL (rc.n_disconnected == 1);
      rc_close (&rc);
      break;

    case CLOSE_WHILE_DIALING:
      /* The next connect finds the backlog full, and waits for room. */
      g_source_destroy (raw->source);
      g_clear_pointer (&raw->source, g_source_unref);
      fillers = fill_backlog (raw->path);
      g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
      WAIT_UNTIL (rc.n_disconnected == 1);
      run_for (50);
      rc_close (&rc);
      WAIT_UNTIL (rc.closed);
      /* The connect that waited for room never got in. */
      g_assert_cmpuint (raw_drain_backlog (raw->listener), ==, fillers->len);
      np_test_raw_server_start_accepting (raw);
      break;

    case CLOSE_BEFORE_HELLO:
      WAIT_UNTIL (raw->accepted->len == 2);
      rc_close (&rc);
      raw_wait_closed (g_ptr_array_index (raw->accepted, 1));
      break;

    case CLOSE_IN_DISCONNECTED:
      WAIT_UNTIL (rc.n_disconnected == 1);
      break;

    case CLOSE_IN_CONNECTED:
      WAIT_UNTIL (raw->accepted->len == 2);
      raw_say_hello (g_ptr_array_index (raw->accepted, 1));
      WAIT_UNTIL (rc.n_connected == 2);
      raw_wait_closed (g_ptr_array_index (raw->accepted, 1));
      break;

    default:
      g_assert_not_reached ();
    }

  WAIT_UNTIL (rc.closed);
  g_assert_false (np_pipe_client_get_connected (rc.client));
  n_accepted = raw->accepted->len;

  /* Closed means closed: no attempt, no connected, whatever comes. */
  run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n_accepted);
  g_assert_cmpuint (rc.n_connected, ==, step == CLOSE_IN_CONNECTED ? 2 : 1);
  g_assert_false (np_pipe_client_get_connected (rc.client));

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

static void test_close_in_backoff (void) { test_close_during_reconnect (CLOSE_IN_BACKOFF, FALSE); }
static void test_close_async_in_backoff (void) { test_close_during_reconnect (CLOSE_IN_BACKOFF, TRUE); }
static void test_close_while_dialing (void) { test_close_during_reconnect (CLOSE_WHILE_DIALING, FALSE); }
static void test_close_async_while_dialing (void) { test_close_during_reconnect (CLOSE_WHILE_DIALING, TRUE); }
static void test_close_before_hello (void) { test_close_during_reconnect (CLOSE_BEFORE_HELLO, FALSE); }
static void test_close_async_before_hello (void) { test_close_during_reconnect (CLOSE_BEFORE_HELLO, TRUE); }
static void test_close_in_disconnected (void) { test_close_during_reconnect (CLOSE_IN_DISCONNECTED, FALSE); }
static void test_close_async_in_disconnected (void) { test_close_during_reconnect (CLOSE_IN_DISCONNECTED, TRUE); }
static void test_close_in_connected (void) { test_close_during_reconnect (CLOSE_IN_CONNECTED, FALSE); }
static void test_close_async_in_connected (void) { test_close_during_reconnect (CLOSE_IN_CONNECTED, TRUE); }

/* 15. The last reference dropped while an attempt waits for the hello
 * (which then comes), and just before the server's socket appears. */

static void
test_dispose_during_attempt (void)
{
  g_autofree char *name = unique_name ("dispose-attempt");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  Rc rc = { 0 };
  GSocket *peer;

  rc_init (&rc, raw, 1, FALSE);
  WAIT_UNTIL (raw->accepted->len == 2);
  peer = g_ptr_array_index (raw->accepted, 1);

  g_object_add_weak_pointer (G_OBJECT (rc.client), (gpointer *) &rc.client);
  g_object_unref (rc.client);
  raw_say_hello (peer);

  /* The attempt ends, the client goes, and its connection with it. */
  WAIT_UNTIL (rc.client == NULL);
  raw_wait_closed (peer);
  run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, 2);

  g_ptr_array_unref (rc.errors);
  np_test_raw_server_free (raw);
}

static void
test_dispose_before_server_appears (void)
{
  g_autofree char *name = unique_name ("dispose-appears");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  Rc rc = { 0 };

  /* Only the directory watch would bring it back. */
  rc_init (&rc, raw, 600000, TRUE);
  np_test_raw_server_free (raw);
  WAIT_UNTIL (rc.n_disconnected == 1);

  g_object_add_weak_pointer (G_OBJECT (rc.client), (gpointer *) &rc.client);
  g_object_unref (rc.client);
  g_assert_null (rc.client);
  raw = np_test_raw_server_new (name, 16, TRUE);

  run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, 0);

  g_ptr_array_unref (rc.errors);
  np_test_raw_server_free (raw);
}

/* 16. The socket directory removed while the client waits, and made
 * again by the server that comes back: only the directory watch can
 * bring the client back (the back-off is ten minutes). */

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;

  if (d == NULL)
    return;
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, entry, NULL);
      g_unlink (path);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* @at_once: the directory is removed and made anew once, before the
 * loop runs, so that the watch hears of the removal only once a new one
 * is there (16b); otherwise removed and made anew twice, the loop
 * running in between. */
static void
reconnect_dir_recreated (gboolean at_once)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *top = g_dir_make_tmp ("np-attack-dir-XXXXXX", &error);
  g_autofree char *dir = g_build_filename (top, "sub", NULL);
  g_autofree char *path = g_build_filename (dir, "srv", NULL);
  g_autoptr(NpPipeServer) server = np_pipe_server_new (path);
  g_autoptr(GAsyncResult) result = NULL;
  Rc rc = { 0 };

  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  rc.errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  rc.client = np_pipe_client_new (path);
  g_object_set (rc.client, "auto-reconnect", TRUE, "reconnect-interval", 600000, NULL);
  g_signal_connect (rc.client, "accepted", G_CALLBACK (rc_connected_cb), &rc);
  g_signal_connect (rc.client, "disconnected", G_CALLBACK (rc_disconnected_cb), &rc);
  np_pipe_client_connect_async (rc.client, NULL, async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (rc.client, result, &error));
  g_assert_no_error (error);

  np_pipe_server_stop (server);
  WAIT_UNTIL (rc.n_disconnected == 1);

  /* Gone, back empty, gone again, and back with the server. */
  for (guint i = 0; i < (at_once ? 1 : 2); i++)
    {
      remove_tree (dir);
      if (!at_once)
        run_ready (20);
      g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
      run_ready (20);
    }
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (rc.n_connected == 2);

  np_pipe_client_close (rc.client, NULL, NULL);
  g_clear_object (&result);
  rc_clear (&rc);
  np_pipe_server_stop (server);
  remove_tree (dir);
  g_rmdir (top);
}

static void
test_reconnect_dir_recreated (void)
{
  reconnect_dir_recreated (FALSE);
}

/* 16b. The same, the directory removed and made anew before the loop
 * runs: the watch hears that its directory went only once a new one is
 * there, and must watch that one. */
static void
test_reconnect_dir_recreated_at_once (void)
{
  reconnect_dir_recreated (TRUE);
}

/* 17. A socket left by a dead server, then a server that accepts and
 * never says hello: each attempt is given up after connect-timeout
 * (100 ms) and its connection closed before the next; the client never
 * has two attempts at once, nor spins; close() stops it. */

static void
test_reconnect_no_hello_server (void)
{
  g_autofree char *name = unique_name ("no-hello");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autoptr(GError) error = NULL;
  Rc rc = { 0 };
  guint n;

  rc_init (&rc, raw, 20, TRUE);
  np_pipe_client_set_connect_timeout (rc.client, 100);

  /* The listener dies; its socket stays, refusing. */
  g_source_destroy (raw->source);
  g_clear_pointer (&raw->source, g_source_unref);
  g_socket_close (raw->listener, NULL);
  g_socket_close (g_ptr_array_index (raw->accepted, 0), NULL);
  WAIT_UNTIL (rc.n_disconnected == 1);
  g_assert_true (g_file_test (raw->path, G_FILE_TEST_EXISTS));
  run_for (RC_WINDOW_MSEC);
  g_assert_false (np_pipe_client_get_connected (rc.client));
  np_test_raw_server_free (raw);

  /* A listener that takes every connection and never answers. */
  raw = np_test_raw_server_new (name, 16, TRUE);
  run_for (1000);
  n = raw->accepted->len;
  /* At most one attempt per connect-timeout, and a few waits; it keeps
   * trying (a loaded machine may run fewer attempts, never more). */
  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpuint (n, <=, 12);
  for (guint i = 0; i + 1 < n; i++)
    raw_wait_closed (g_ptr_array_index (raw->accepted, i));
  g_assert_cmpuint (rc.n_connected, ==, 1);

  np_pipe_client_close (rc.client, NULL, NULL);
  raw_wait_closed (g_ptr_array_index (raw->accepted, raw->accepted->len - 1));
  n = raw->accepted->len;
  run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n);

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

/* 18. Turning auto-reconnect off while messages wait for the reconnect:
 * the reconnect stops at once, and `disconnected` says that the held
 * messages were dropped, and how many. */

static void
test_reconnect_turned_off (gconstpointer data)
{
  gboolean in_attempt = GPOINTER_TO_INT (data);
  g_autofree char *name = unique_name ("turned-off");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) one = g_bytes_new_static ("x", 1);
  const GError *dropped;
  Rc rc = { 0 };
  guint n;

  rc_init (&rc, raw, in_attempt ? 1 : 600000, FALSE);
  WAIT_UNTIL (rc.n_disconnected == 1);
  if (in_attempt)
    WAIT_UNTIL (raw->accepted->len == 2);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, 64);

      g_assert_true (np_pipe_client_send (rc.client, message, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (rc.client), ==, 3 * (8 + 64));

  np_pipe_client_set_auto_reconnect (rc.client, FALSE);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (rc.client), ==, 0);
  g_assert_false (np_pipe_client_send (rc.client, one, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  WAIT_UNTIL (rc.n_disconnected == 2);
  dropped = g_ptr_array_index (rc.errors, 1);
  g_assert_error (dropped, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_assert_nonnull (strstr (dropped->message, "3 messages"));

  /* The attempt under way is given up; none follows, and the hello
   * that comes too late connects nothing. */
  n = raw->accepted->len;
  if (in_attempt)
    {
      GSocket *peer = g_ptr_array_index (raw->accepted, 1);
      guint8 hello[12];

      /* The client may have closed it already: the write may fail. */
      np_test_hello (hello, 3, 16 * 1024 * 1024);
      g_socket_send (peer, (const char *) hello, sizeof hello, NULL, NULL);
      raw_wait_closed (peer);
    }
  else
    {
      np_test_raw_server_free (raw);
      raw = np_test_raw_server_new (name, 16, TRUE);
      n = 0;
    }
  run_for (RC_WINDOW_MSEC);
  g_assert_cmpuint (raw->accepted->len, ==, n);
  g_assert_cmpuint (rc.n_connected, ==, 1);
  g_assert_cmpuint (rc.n_disconnected, ==, 2);

  rc_clear (&rc);
  np_test_raw_server_free (raw);
}

static void test_turned_off_in_backoff (void) { test_reconnect_turned_off (GINT_TO_POINTER (FALSE)); }
static void test_turned_off_in_attempt (void) { test_reconnect_turned_off (GINT_TO_POINTER (TRUE)); }

/* 19. A server that makes its socket again and again and never accepts:
 * each new socket is a hint to the directory watch, and a client that
 * took every hint would connect as often as the socket is made. The
 * back-off (ten minutes) never passes here: only hints could cause
 * attempts, and at most a few of them are taken per wait. */

typedef struct
{
  const char *socket_name;
  guint       n_created;
} Creations;

static void
creation_cb (GFileMonitor      *monitor,
             GFile             *file,
             GFile             *other,
             GFileMonitorEvent  event,
             Creations         *c)
{
  g_autofree char *basename = g_file_get_basename (file);

  if (event == G_FILE_MONITOR_EVENT_CREATED && g_strcmp0 (basename, c->socket_name) == 0)
    c->n_created++;
}

static void
test_reconnect_socket_churn (void)
{
  g_autofree char *name = unique_name ("churn");
  NpTestRawServer *raw = np_test_raw_server_new (name, 16, TRUE);
  g_autofree char *dir = g_path_get_dirname (raw->path);
  g_autoptr(GFile) dir_file = g_file_new_for_path (dir);
  g_autoptr(GFileMonitor) monitor = NULL;
  g_autoptr(GError) error = NULL;
  Creations c = { name, 0 };
  guint n_attempts = 0;
  Rc rc = { 0 };

  rc_init (&rc, raw, 600000, TRUE);
  np_test_raw_server_free (raw);
  WAIT_UNTIL (rc.n_disconnected == 1);

  monitor = g_file_monitor_directory (dir_file, G_FILE_MONITOR_NONE, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (monitor, "changed", G_CALLBACK (creation_cb), &c);

  for (guint i = 0; i < 40; i++)
    {
      raw = np_test_raw_server_new (name, 16, FALSE);
      WAIT_UNTIL (c.n_created == i + 1);
      run_ready (20);
      n_attempts += raw_drain_backlog (raw->listener);
      np_test_raw_server_free (raw);
      run_ready (20);
    }

  g_assert_cmpuint (n_attempts, >=, 1);
  g_assert_cmpuint (n_attempts, <=, 4);
  g_assert_cmpuint (rc.n_connected, ==, 1);

  np_pipe_client_close (rc.client, NULL, NULL);
  rc_clear (&rc);
}

/* 20. A worker thread sends in a loop while the main thread stops and
 * starts the server again, several times. Messages sent before the
 * client noticed a stop may be lost (at most once); every message it
 * accepted from its `disconnected` on, up to what the server had read
 * when it was stopped next, arrives once, and all in order. */

#define CHURN_MESSAGES 400000

typedef struct
{
  NpPipeClient *client;
  gint          next;        /* the next sequence number to send */
  gint          stop;
  guint8       *accepted;    /* [CHURN_MESSAGES] */
  gint          last_accepted;
} Sender;

static gpointer
churn_sender (gpointer data)
{
  Sender *s = data;

  while (!g_atomic_int_get (&s->stop))
    {
      gint seq = g_atomic_int_add (&s->next, 1);
      g_autoptr(GBytes) message = NULL;

      if (seq >= CHURN_MESSAGES)
        break;
      message = np_test_message_new (9, seq, np_test_random_size (9, seq) / 8 + 8);
      if (np_pipe_client_send (s->client, message, NULL))
        {
          s->accepted[seq] = 1;
          g_atomic_int_set (&s->last_accepted, seq);
        }
      else
        g_thread_yield ();
    }

  return NULL;
}

typedef struct
{
  Sender *sender;
  GArray *received;   /* of gint */
  GArray *lost_from;  /* per stop: the last seq read before it */
  GArray *lost_to;    /* per stop: the first seq sent after `disconnected` */
  guint   n_connected;
} Churn;

static void
churn_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  Churn            *churn)
{
  guint32 client = 0, seq = 0;

  g_assert_true (np_test_message_parse (message, &client, &seq));
  g_assert_cmpuint (client, ==, 9);
  if (churn->received->len > 0)
    g_assert_cmpint (seq, >, g_array_index (churn->received, gint, churn->received->len - 1));
  g_array_append_val (churn->received, seq);
}

static void
churn_disconnected_cb (NpPipeClient *client,
                       const GError *error,
                       Churn        *churn)
{
  gint next = g_atomic_int_get (&churn->sender->next);

  g_array_append_val (churn->lost_to, next);
}

static void
churn_connected_cb (NpPipeClient *client,
                    Churn        *churn)
{
  churn->n_connected++;
}

static gint
churn_last_received (Churn *churn)
{
  return churn->received->len > 0 ? g_array_index (churn->received, gint, churn->received->len - 1) : -1;
}

static void
test_reconnect_threaded_sender (void)
{
  g_autofree char *name = unique_name ("threaded-sender");
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree guint8 *accepted = g_malloc0 (CHURN_MESSAGES);
  Sender s = { .accepted = accepted, .last_accepted = -1 };
  Churn churn = { &s };
  GThread *thread;
  guint r = 0;
  gint last;

  churn.received = g_array_new (FALSE, FALSE, sizeof (gint));
  churn.lost_from = g_array_new (FALSE, FALSE, sizeof (gint));
  churn.lost_to = g_array_new (FALSE, FALSE, sizeof (gint));
  g_signal_connect (server, "message-received", G_CALLBACK (churn_message_cb), &churn);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  s.client = np_pipe_client_new (name);
  g_object_set (s.client, "auto-reconnect", TRUE, "reconnect-interval", 5,
                "reconnect-max-interval", 20, "max-queued-bytes", 4 * 1024 * 1024, NULL);
  g_signal_connect (s.client, "accepted", G_CALLBACK (churn_connected_cb), &churn);
  g_signal_connect (s.client, "disconnected", G_CALLBACK (churn_disconnected_cb), &churn);
  np_pipe_client_connect_async (s.client, NULL, async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (s.client, result, &error));
  g_assert_no_error (error);

  thread = g_thread_new ("sender", churn_sender, &s);

  for (guint i = 0; i < 5; i++)
    {
      gint seen = churn_last_received (&churn);

      /* Some get through, then the server goes. */
      WAIT_UNTIL (churn_last_received (&churn) > seen + 200 ||
                  g_atomic_int_get (&s.next) >= CHURN_MESSAGES);
      last = churn_last_received (&churn);
      g_array_append_val (churn.lost_from, last);
      np_pipe_server_stop (server);
      WAIT_UNTIL (churn.lost_to->len == i + 1);
      g_assert_true (np_pipe_server_start (server, &error));
      g_assert_no_error (error);
      WAIT_UNTIL (churn.n_connected == i + 2);
    }

  WAIT_UNTIL (churn_last_received (&churn) > g_array_index (churn.lost_to, gint, 4) + 200 ||
              g_atomic_int_get (&s.next) >= CHURN_MESSAGES);
  g_atomic_int_set (&s.stop, TRUE);
  g_thread_join (thread);
  last = g_atomic_int_get (&s.last_accepted);
  g_assert_cmpint (last, >=, 0);
  WAIT_UNTIL (churn_last_received (&churn) == last);

  /* Each accepted message arrived, but for those in flight at a stop. */
  for (gint seq = 0; seq <= last; seq++)
    {
      gboolean may_be_lost = FALSE;

      if (!accepted[seq])
        continue;
      for (guint k = 0; k < churn.lost_from->len; k++)
        if (seq > g_array_index (churn.lost_from, gint, k) &&
            seq < g_array_index (churn.lost_to, gint, k))
          may_be_lost = TRUE;
      while (r < churn.received->len && g_array_index (churn.received, gint, r) < seq)
        r++;
      if (r < churn.received->len && g_array_index (churn.received, gint, r) == seq)
        continue;
      if (!may_be_lost)
        g_error ("message %d was accepted after the client was back, and never arrived", seq);
    }

  np_pipe_client_close (s.client, NULL, NULL);
  g_clear_object (&s.client);
  np_pipe_server_stop (server);
  g_array_unref (churn.received);
  g_array_unref (churn.lost_from);
  g_array_unref (churn.lost_to);
}

/* Each test runs in a process of its own, so that a crash or a hang
 * (shown as a timeout) fails that test alone, with its report. */
typedef struct
{
  const char *path;
  GTestFunc   func;
  guint       timeout_sec;
} Isolated;

static const Isolated isolated_tests[] = {
  { "/Np/Attack/reconnect-while-closing-then-drop", test_reconnect_while_closing_then_drop, 60 },
  { "/Np/Attack/failed-reconnect-while-closing", test_failed_reconnect_while_closing, 60 },
  { "/Np/Attack/half-close-deferred-reply", test_half_close_deferred_reply, 60 },
  { "/Np/Attack/close-from-cancel-handler", test_close_from_cancel_handler, 20 },
  { "/Np/Attack/abort-drops-frames-not-begun", test_abort_drops_frames_not_begun, 60 },
  { "/Np/Attack/close-drops-parked-as-clean", test_close_drops_parked_as_clean, 60 },
  { "/Np/Attack/nested-loop-waits-for-reply", test_nested_loop_waits_for_reply, 20 },
  { "/Np/Attack/nested-loops-keep-order", test_nested_loops_keep_order, 60 },
  { "/Np/Attack/request-sync-starves-context", test_request_sync_starves_context, 60 },
  { "/Np/Attack/fds/in-body", test_fds_in_body, 60 },
  { "/Np/Attack/fds/budget", test_fd_budget, 60 },
  { "/Np/Attack/fds/budget/requests", test_fd_budget_requests, 60 },
  { "/Np/Attack/reconnect/flapping-server", test_reconnect_flapping_server, 60 },
  { "/Np/Attack/drop-in-handler/connected", test_drop_in_connected, 30 },
  { "/Np/Attack/drop-in-handler/queue-drained", test_drop_in_drained, 30 },
  { "/Np/Attack/drop-in-handler/message-with-fds", test_drop_in_fds, 30 },
  { "/Np/Attack/reconnect/close/in-backoff", test_close_in_backoff, 30 },
  { "/Np/Attack/reconnect/close-async/in-backoff", test_close_async_in_backoff, 30 },
  { "/Np/Attack/reconnect/close/while-dialing", test_close_while_dialing, 30 },
  { "/Np/Attack/reconnect/close-async/while-dialing", test_close_async_while_dialing, 30 },
  { "/Np/Attack/reconnect/close/before-hello", test_close_before_hello, 30 },
  { "/Np/Attack/reconnect/close-async/before-hello", test_close_async_before_hello, 30 },
  { "/Np/Attack/reconnect/close/in-disconnected", test_close_in_disconnected, 30 },
  { "/Np/Attack/reconnect/close-async/in-disconnected", test_close_async_in_disconnected, 30 },
  { "/Np/Attack/reconnect/close/in-connected", test_close_in_connected, 30 },
  { "/Np/Attack/reconnect/close-async/in-connected", test_close_async_in_connected, 30 },
  { "/Np/Attack/reconnect/dispose-during-attempt", test_dispose_during_attempt, 30 },
  { "/Np/Attack/reconnect/dispose-before-server-appears", test_dispose_before_server_appears, 30 },
  { "/Np/Attack/reconnect/dir-recreated", test_reconnect_dir_recreated, 30 },
  { "/Np/Attack/reconnect/dir-recreated-at-once", test_reconnect_dir_recreated_at_once, 30 },
  { "/Np/Attack/reconnect/no-hello-server", test_reconnect_no_hello_server, 30 },
  { "/Np/Attack/reconnect/turned-off/in-backoff", test_turned_off_in_backoff, 30 },
  { "/Np/Attack/reconnect/turned-off/in-attempt", test_turned_off_in_attempt, 30 },
  { "/Np/Attack/reconnect/socket-churn", test_reconnect_socket_churn, 30 },
  { "/Np/Attack/reconnect/threaded-sender", test_reconnect_threaded_sender, 120 },
};

static void
run_isolated (gconstpointer data)
{
  const Isolated *test = data;

  if (g_test_subprocess ())
    {
      test->func ();
      return;
    }

  g_test_trap_subprocess (NULL, test->timeout_sec * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("%s", g_test_trap_reached_timeout ()
                                ? "the test's process hung: it did not end in time"
                                : "the test's process failed: see its report above");
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  /* A test's own process works in its parent's directory. */
  if (g_getenv ("NP_ATTACK_RUNTIME_DIR") != NULL)
    g_setenv ("XDG_RUNTIME_DIR", g_getenv ("NP_ATTACK_RUNTIME_DIR"), TRUE);
  else
    {
      runtime_dir = np_test_runtime_dir_new ("np-attack-XXXXXX");
      g_setenv ("NP_ATTACK_RUNTIME_DIR", runtime_dir, TRUE);
    }

  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (isolated_tests); i++)
    g_test_add_data_func (isolated_tests[i].path, &isolated_tests[i], run_isolated);

  ret = g_test_run ();

  if (runtime_dir != NULL)
    np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
