/* np-transport-unix.c: a connected Unix socket
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "np-frame-private.h"
#include "np-transport-private.h"

#define NP_DRAIN_MAX (256 * 1024)

typedef struct
{
  NpTransport        parent;
  GSocketConnection *connection;
} NpTransportUnix;

G_STATIC_ASSERT (G_N_ELEMENTS (((NpReceivedFds *) NULL)->fds) == NP_FDS_MAX);

/* sendmsg() takes GOutputVector arrays as they are. */
G_STATIC_ASSERT (sizeof (GOutputVector) == sizeof (struct iovec));
G_STATIC_ASSERT (G_STRUCT_OFFSET (GOutputVector, buffer) == G_STRUCT_OFFSET (struct iovec, iov_base));
G_STATIC_ASSERT (G_STRUCT_OFFSET (GOutputVector, size) == G_STRUCT_OFFSET (struct iovec, iov_len));

static NpIOStatus
np_transport_unix_status (int      errsv,
                          GError **error)
{
  if (errsv == EAGAIN || errsv == EWOULDBLOCK)
    return NP_IO_WOULD_BLOCK;

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s", g_strerror (errsv));
  return NP_IO_FAILED;
}

static NpIOStatus
np_transport_unix_send (NpTransport         *transport,
                        const GOutputVector *vectors,
                        guint                n_vectors,
                        const int           *fds,
                        guint                n_fds,
                        gsize               *written,
                        GError             **error)
{
  struct msghdr msg = {
    .msg_iov = (struct iovec *) vectors,
    .msg_iovlen = n_vectors,
  };
  union {
    struct cmsghdr header;
    char           space[CMSG_SPACE (sizeof (int) * NP_FDS_MAX)];
  } control;
  gssize n;

  /* Only a write that carries descriptors pays for a control message. */
  if (n_fds > 0)
    {
      struct cmsghdr *cmsg;

      g_assert (n_fds <= NP_FDS_MAX);
      memset (&control, 0, CMSG_SPACE (sizeof (int) * n_fds));
      msg.msg_control = control.space;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);
    }

  do
    n = sendmsg (transport->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    return np_transport_unix_status (errno, error);

  *written = n;
  return NP_IO_DONE;
}

/* Takes the descriptors of @msg into @fds; any past @fds->max are
 * closed, and mark it truncated. */
static void
np_transport_unix_take_fds (struct msghdr *msg,
                            NpReceivedFds *fds)
{
  fds->n = 0;
  fds->truncated = (msg->msg_flags & MSG_CTRUNC) != 0;

  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (msg); cmsg != NULL; cmsg = CMSG_NXTHDR (msg, cmsg))
    {
      const guint8 *data = CMSG_DATA (cmsg);
      gsize count;

      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
        continue;

      count = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (gsize i = 0; i < count; i++)
        {
          int fd;

          memcpy (&fd, data + i * sizeof (int), sizeof fd);
          if (fds->n < fds->max)
            fds->fds[fds->n++] = fd;
          else
            {
              /* The buffer is rounded up: it may hold one more. */
              close (fd);
              fds->truncated = TRUE;
            }
        }
    }
}

static NpIOStatus
np_transport_unix_receive (NpTransport    *transport,
                           guint8         *buffer,
                           gsize           size,
                           gsize          *received,
                           NpReceivedFds  *fds,
                           GError        **error)
{
  union {
    struct cmsghdr header;
    char           space[CMSG_SPACE (sizeof (int) * NP_FDS_MAX)];
  } control;
  struct iovec iov = { buffer, size };
  struct msghdr msg = {
    .msg_iov = &iov,
    .msg_iovlen = 1,
  };
  gssize n;

  if (fds != NULL)
    {
      g_assert (fds->max > 0 && fds->max <= NP_FDS_MAX);
      fds->n = 0;
      fds->truncated = FALSE;
      /* Room for what the stream accepts: more is cut (MSG_CTRUNC). */
      msg.msg_control = control.space;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * fds->max);
    }

  do
    n = recvmsg (transport->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);

  if (n >= 0 && fds != NULL)
    np_transport_unix_take_fds (&msg, fds);

  if (n < 0)
    {
      /* A Unix socket reports a reset, after every byte the peer wrote,
       * when the peer closed without reading all we sent: for what we
       * read, that is the end of the stream. */
      if (errno == ECONNRESET)
        n = 0;
      else
        return np_transport_unix_status (errno, error);
    }

  *received = n;
  return NP_IO_DONE;
}

void
np_transport_shutdown (NpTransport *transport)
{
  shutdown (transport->fd, SHUT_RDWR);
}

void
np_transport_drain (int fd)
{
  guint8 sink[4096];

  for (gsize drained = 0; drained < NP_DRAIN_MAX; )
    {
      gssize n = recv (fd, sink, sizeof sink, MSG_DONTWAIT);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      drained += n;
    }
}

static void
np_transport_unix_free (NpTransport *transport)
{
  NpTransportUnix *self = (NpTransportUnix *) transport;

  /* What the peer already sent (a bounded amount) first. */
  np_transport_drain (transport->fd);

  g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_object_unref (self->connection);
  g_free (self);
}

static const NpTransportFuncs np_transport_unix_funcs = {
  .send = np_transport_unix_send,
  .receive = np_transport_unix_receive,
  .shutdown = np_transport_shutdown,
  .free = np_transport_unix_free,
};

NpTransport *
np_transport_unix_new (GSocketConnection *connection)
{
  NpTransportUnix *self = g_new0 (NpTransportUnix, 1);
  GSocket *socket = g_socket_connection_get_socket (connection);

  self->parent.funcs = &np_transport_unix_funcs;
  self->parent.fd = g_socket_get_fd (socket);
  self->connection = g_object_ref (connection);

  return &self->parent;
}
