/* fuzz-stream.c: libFuzzer target for the handshake and frame decoder
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is what a peer sends: it is written into one end of a
 * socketpair whose other end is read by the library's own stream, on a
 * main context, exactly as a connection reads a client. The stream must
 * end cleanly or with an error, never deliver a message over its limit,
 * and report its end once.
 */

#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "np-stream-private.h"

#define MAX_MESSAGE_SIZE 4096

typedef struct
{
  guint    n_closed;
  gboolean oversize;
} State;

static State *state;

static void
on_message (GObject *owner,
            GBytes  *message)
{
  if (g_bytes_get_size (message) > MAX_MESSAGE_SIZE)
    state->oversize = TRUE;
}

static void
on_opened (GObject  *owner,
           NpStream *stream)
{
}

/* Requests are answered, so that replies are exercised too. */
static void
on_request (GObject     *owner,
            NpStream    *stream,
            guint32      id,
            GBytes      *message,
            GUnixFDList *fds)
{
  /* Bytes alone never carry descriptors (see on_message_with_fds()). */
  g_assert (fds == NULL);
  if (g_bytes_get_size (message) > MAX_MESSAGE_SIZE)
    state->oversize = TRUE;
  np_stream_reply (stream, id, message, NULL, NULL);
}

/* Bytes alone never carry descriptors: a frame that announces some must
 * end the stream, never get here. */
static void
on_message_with_fds (GObject     *owner,
                     GBytes      *message,
                     GUnixFDList *fds)
{
  g_assert_not_reached ();
}

static void
on_closed (GObject      *owner,
           NpStream     *stream,
           const GError *error)
{
  state->n_closed++;
}

static const NpStreamCallbacks callbacks = {
  .opened = on_opened,
  .message = on_message,
  .request = on_request,
  .message_with_fds = on_message_with_fds,
  .closed = on_closed,
};

static void
drain (int fd)
{
  guint8 sink[4096];

  while (recv (fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
    ;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GObject) owner = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  State s = { 0 };
  NpStream *stream;
  int fds[2];
  gsize written = 0;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    abort ();

  g_main_context_push_thread_default (context);
  state = &s;

  socket = g_socket_new_from_fd (fds[0], NULL);
  connection = g_socket_connection_factory_create_connection (socket);
  stream = np_stream_new (owner, &callbacks, np_transport_unix_new (connection), context,
                          NULL, "Fuzzed peer", MAX_MESSAGE_SIZE);
  np_stream_start (stream);

  /* Feed the input, letting the stream read whenever the socket is full,
   * then hang up and let it find the end. */
  while (written < size && s.n_closed == 0)
    {
      ssize_t n = send (fds[1], data + written, size - written, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n > 0)
        written += n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        break;

      drain (fds[1]);
      while (g_main_context_iteration (context, FALSE))
        ;
    }
  shutdown (fds[1], SHUT_WR);

  while (s.n_closed == 0)
    {
      drain (fds[1]);
      g_main_context_iteration (context, TRUE);
    }

  if (s.n_closed != 1 || s.oversize)
    abort ();

  np_stream_detach (stream);
  np_stream_unref (stream);
  close (fds[1]);
  g_main_context_pop_thread_default (context);
  state = NULL;

  return 0;
}
