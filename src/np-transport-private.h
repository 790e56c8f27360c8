/* np-transport-private.h: the byte stream under the framing
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _NpTransport NpTransport;

typedef enum
{
  NP_IO_DONE,         /* some bytes moved; 0 from receive is the end */
  NP_IO_WOULD_BLOCK,
  NP_IO_FAILED,
} NpIOStatus;

/* What the stream needs of a transport: a Unix socket, or a TCP one
 * in plain text (np-transport-unix.c), or TLS over TCP
 * (np-transport-tls.c). The framing, the queue and the state machine
 * above know only these calls. None of them blocks. */
/* The descriptors one receive brought: at most @max are taken; more
 * (or a control message cut short) sets @truncated, and the kernel
 * closes what did not fit. */
typedef struct
{
  guint    max;
  guint    n;
  gboolean truncated;
  int      fds[253];
} NpReceivedFds;

typedef struct
{
  /* @fds (@n_fds of them, or none) go with the first byte written. */
  NpIOStatus (*send)     (NpTransport         *self,
                          const GOutputVector *vectors,
                          guint                n_vectors,
                          const int           *fds,
                          guint                n_fds,
                          gsize               *written,
                          GError             **error);
  /* With @fds, descriptors are received too (close-on-exec); without,
   * any the peer sends are closed by the kernel. A receive never
   * returns bytes that follow those of a write that carried
   * descriptors. */
  NpIOStatus (*receive)  (NpTransport         *self,
                          guint8              *buffer,
                          gsize                size,
                          gsize               *received,
                          NpReceivedFds       *fds,
                          GError             **error);
  /* Writes what the transport holds of its own (@wants_out): DONE once
   * it is all out. NULL for a transport that holds nothing. */
  NpIOStatus (*flush)    (NpTransport         *self,
                          GError             **error);
  /* Ends both directions at once, without releasing anything. */
  void       (*shutdown) (NpTransport         *self);
  /* Releases the transport; nothing may use it afterwards. */
  void       (*free)     (NpTransport         *self);
} NpTransportFuncs;

struct _NpTransport
{
  const NpTransportFuncs *funcs;
  /* Polled for readiness: the transport's descriptor. */
  int                     fd;
  /* The transport keeps bytes the descriptor does not show: a short
   * read does not mean it has nothing more, and it may have bytes to
   * read when the descriptor has none (TLS decrypts whole records). */
  gboolean                buffers_reads;
  /* It holds bytes of its own to write, whatever the stream's queue
   * holds: the stream waits for the descriptor to be writable, then
   * calls flush(). */
  gboolean                wants_out;
};

/* Reads away what the peer sent and nobody will read, a bounded amount,
 * without waiting: a socket closed with bytes unread resets the
 * connection, and a reset drops what the peer has not received yet of
 * ours, the goodbye last. */
void         np_transport_drain    (int                fd);
/* Ends both directions of a transport's socket (its shutdown()). */
void         np_transport_shutdown (NpTransport       *transport);

NpTransport *np_transport_unix_new (GSocketConnection *connection);
NpTransport *np_transport_tls_new  (GSocketConnection *connection,
                                    GTlsConnection    *tls);

G_END_DECLS
