/* fuzz-stream.c: libFuzzer target for the handshake and frame decoder
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is what a peer sends: it is written into one end of a
 * socketpair whose other end is read by an NpPipeConnection, on a main
 * context, exactly as a server's connection reads a client. The
 * connection must end cleanly or with an error, never deliver a message
 * over its limit, and report its end once.
 */

#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "np-connection-owner-private.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-request-private.h"

#define MAX_MESSAGE_SIZE 4096

/* What the connection reports to: the server's part, as small as it
 * gets. */
#define FUZZ_TYPE_OWNER (fuzz_owner_get_type ())
G_DECLARE_FINAL_TYPE (FuzzOwner, fuzz_owner, FUZZ, OWNER, GObject)

struct _FuzzOwner
{
  GObject  parent_instance;
  guint    n_closed;
  gboolean oversize;
};

static void
fuzz_owner_opened (NpConnectionOwner *owner,
                   NpPipeConnection  *connection)
{
}

/* Bytes alone never carry descriptors: a frame that announces some must
 * end the stream, never get here. */
static void
fuzz_owner_message (NpConnectionOwner *owner,
                    NpPipeConnection  *connection,
                    GBytes            *message,
                    GUnixFDList       *fds)
{
  g_assert (fds == NULL);
  if (g_bytes_get_size (message) > MAX_MESSAGE_SIZE)
    FUZZ_OWNER (owner)->oversize = TRUE;
}

/* Requests are answered, so that replies are exercised too. */
static void
fuzz_owner_request (NpConnectionOwner *owner,
                    NpPipeConnection  *connection,
                    guint32            id,
                    GBytes            *message,
                    GUnixFDList       *fds)
{
  g_autoptr(NpPipeRequest) request = _np_pipe_connection_new_request (connection, id, message, fds);

  g_assert (fds == NULL);
  if (g_bytes_get_size (message) > MAX_MESSAGE_SIZE)
    FUZZ_OWNER (owner)->oversize = TRUE;
  np_pipe_request_reply (request, message);
}

static void
fuzz_owner_closed (NpConnectionOwner *owner,
                   NpPipeConnection  *connection,
                   const GError      *error)
{
  FUZZ_OWNER (owner)->n_closed++;
}

static void
fuzz_owner_iface_init (NpConnectionOwnerInterface *iface)
{
  iface->opened = fuzz_owner_opened;
  iface->message = fuzz_owner_message;
  iface->request = fuzz_owner_request;
  iface->closed = fuzz_owner_closed;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (FuzzOwner, fuzz_owner, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (NP_TYPE_CONNECTION_OWNER,
                                                      fuzz_owner_iface_init))

static void
fuzz_owner_class_init (FuzzOwnerClass *klass)
{
}

static void
fuzz_owner_init (FuzzOwner *self)
{
}

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
  g_autoptr(FuzzOwner) owner = g_object_new (FUZZ_TYPE_OWNER, NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) socket_connection = NULL;
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(NpLimits) limits = np_limits_new ();
  int fds[2];
  gsize written = 0;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    abort ();

  g_main_context_push_thread_default (context);

  np_limits_set (limits, NP_LIMIT_MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE);
  socket = g_socket_new_from_fd (fds[0], NULL);
  socket_connection = g_socket_connection_factory_create_connection (socket);
  connection = _np_pipe_connection_new (G_OBJECT (owner), context, socket_connection, NULL,
                                        "fuzzed", limits, 1, FALSE, NULL);
  g_assert (connection != NULL);
  _np_pipe_connection_start (connection, 0);

  /* Feed the input, letting the connection read whenever the socket is
   * full, then hang up and let it find the end. */
  while (written < size && owner->n_closed == 0)
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

  while (owner->n_closed == 0)
    {
      drain (fds[1]);
      g_main_context_iteration (context, TRUE);
    }

  if (owner->n_closed != 1 || owner->oversize)
    abort ();

  _np_pipe_connection_detach (connection);
  g_clear_object (&connection);
  while (g_main_context_iteration (context, FALSE))
    ;
  close (fds[1]);
  g_main_context_pop_thread_default (context);

  return 0;
}
