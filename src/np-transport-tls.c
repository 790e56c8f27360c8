/* np-transport-tls.c: TLS over a TCP socket, through GIO's TLS
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "np-tls-private.h"
#include "np-transport-private.h"

/* The most plaintext a TLS record carries: small frames are gathered
 * into records of up to this, so that a burst of small messages costs a
 * record each few hundred, not one a vector. */
#define NP_TLS_RECORD_MAX (16 * 1024)

/* Plaintext handed to TLS per send() call at most: the stream calls
 * again for the rest. */
#define NP_TLS_SEND_MAX   (256 * 1024)

typedef struct
{
  NpTransport            parent;
  GSocketConnection     *connection;
  GTlsConnection        *tls;
  GPollableInputStream  *input;
  GPollableOutputStream *output;
  GInputStream          *source;
  GOutputStream         *sink;
  guint8                 gather[NP_TLS_RECORD_MAX];
} NpTransportTls;

static NpIOStatus
np_transport_tls_status (GError  *local_error,
                         GError **error)
{
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_error_free (local_error);
      return NP_IO_WOULD_BLOCK;
    }

  g_propagate_error (error, local_error);
  return NP_IO_FAILED;
}

static NpIOStatus
np_transport_tls_flush (NpTransport  *transport,
                        GError      **error)
{
  NpTransportTls *self = (NpTransportTls *) transport;

  if (!np_tls_sink_flush (self->sink, error))
    return NP_IO_FAILED;

  transport->wants_out = np_tls_sink_is_pending (self->sink);

  return transport->wants_out ? NP_IO_WOULD_BLOCK : NP_IO_DONE;
}

/* The next record's plaintext from @vectors, past @skip bytes of them:
 * a large vector as it is, small ones gathered. */
static const guint8 *
np_transport_tls_next (NpTransportTls      *self,
                       const GOutputVector *vectors,
                       guint                n_vectors,
                       gsize                skip,
                       gsize               *size)
{
  gsize gathered = 0;
  guint i = 0;

  for (; i < n_vectors && skip >= vectors[i].size; i++)
    skip -= vectors[i].size;

  if (i == n_vectors)
    {
      *size = 0;
      return NULL;
    }

  if (vectors[i].size - skip >= NP_TLS_RECORD_MAX)
    {
      *size = vectors[i].size - skip;
      return (const guint8 *) vectors[i].buffer + skip;
    }

  for (; i < n_vectors && gathered < NP_TLS_RECORD_MAX; i++, skip = 0)
    {
      gsize n = MIN (vectors[i].size - skip, NP_TLS_RECORD_MAX - gathered);

      memcpy (self->gather + gathered, (const guint8 *) vectors[i].buffer + skip, n);
      gathered += n;
    }

  *size = gathered;
  return self->gather;
}

static NpIOStatus
np_transport_tls_send (NpTransport         *transport,
                       const GOutputVector *vectors,
                       guint                n_vectors,
                       const int           *fds,
                       guint                n_fds,
                       gsize               *written,
                       GError             **error)
{
  NpTransportTls *self = (NpTransportTls *) transport;
  gsize total = 0;

  /* Descriptors are refused before anything is queued. */
  g_assert (n_fds == 0);

  /* Nothing more until the last record is out. */
  if (transport->wants_out)
    {
      NpIOStatus status = np_transport_tls_flush (transport, error);

      if (status != NP_IO_DONE)
        return status;
    }

  while (total < NP_TLS_SEND_MAX)
    {
      GError *local_error = NULL;
      const guint8 *data;
      gsize size;
      gssize n;

      data = np_transport_tls_next (self, vectors, n_vectors, total, &size);
      if (size == 0)
        break;

      n = g_pollable_output_stream_write_nonblocking (self->output, data, size, NULL, &local_error);
      if (n < 0)
        {
          NpIOStatus status = np_transport_tls_status (local_error, error);

          if (status == NP_IO_FAILED || total == 0)
            return status;
          break;
        }

      total += n;

      /* The socket took not all of it: the rest waits in the sink. */
      if (np_tls_sink_is_pending (self->sink))
        {
          transport->wants_out = TRUE;
          break;
        }
    }

  *written = total;
  return NP_IO_DONE;
}

static NpIOStatus
np_transport_tls_receive (NpTransport    *transport,
                          guint8         *buffer,
                          gsize           size,
                          gsize          *received,
                          NpReceivedFds  *fds,
                          GError        **error)
{
  NpTransportTls *self = (NpTransportTls *) transport;
  GError *local_error = NULL;
  gsize total = 0;
  gssize n;

  if (fds != NULL)
    {
      fds->n = 0;
      fds->truncated = FALSE;
    }

  /* A record at a time, for as long as the source holds some that the
   * socket no longer shows: a read that returns short then means that
   * nothing is left but what the socket will tell of. */
  do
    {
      n = g_pollable_input_stream_read_nonblocking (self->input, buffer + total, size - total,
                                                    NULL, &local_error);
      if (n > 0)
        total += n;
    }
  while (n > 0 && total < size && np_tls_source_is_pending (self->source));

  if (total > 0)
    {
      g_clear_error (&local_error);
      n = total;
    }

  /* Reading may have written (a key update answered), perhaps while
   * another thread writes: what the socket did not take waits in the
   * sink, for the stream to write when the socket takes it. */
  if (G_UNLIKELY (np_tls_sink_is_pending (self->sink)))
    g_atomic_int_set (&transport->wants_out, TRUE);

  if (n < 0)
    {
      /* The end of the TCP stream without TLS's close_notify, or a reset:
       * the end of the stream, which the protocol's own goodbye tells
       * from a cut one (a frame cut short is a protocol error). Asked of
       * glib-networking as an error: one that lets it pass as the end
       * loses a GError of its own each time. */
      if (g_error_matches (local_error, G_TLS_ERROR, G_TLS_ERROR_EOF) ||
          g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
        {
          g_error_free (local_error);
          n = 0;
        }
      else
        return np_transport_tls_status (local_error, error);
    }

  *received = n;
  return NP_IO_DONE;
}

static void
np_transport_tls_free (NpTransport *transport)
{
  NpTransportTls *self = (NpTransportTls *) transport;

  /* What the socket takes now of the last record; never waits. */
  np_tls_sink_flush (self->sink, NULL);

  /* What came and nobody will read (a session ticket the peer sent
   * after the handshake, a record that came while closing). */
  np_transport_drain (transport->fd);

  /* Closing the TLS connection would write its close_notify, blocking:
   * the protocol's goodbye went already, and the socket is closed. */
  g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_object_unref (self->tls);
  g_object_unref (self->connection);
  g_free (self);
}

static const NpTransportFuncs np_transport_tls_funcs = {
  .send = np_transport_tls_send,
  .receive = np_transport_tls_receive,
  .flush = np_transport_tls_flush,
  .shutdown = np_transport_shutdown,
  .free = np_transport_tls_free,
};

/* @tls has completed its handshake over @connection. */
NpTransport *
np_transport_tls_new (GSocketConnection *connection,
                      GTlsConnection    *tls)
{
  NpTransportTls *self = g_new0 (NpTransportTls, 1);

  self->parent.funcs = &np_transport_tls_funcs;
  self->parent.fd = g_socket_get_fd (g_socket_connection_get_socket (connection));
  self->parent.buffers_reads = TRUE;
  self->connection = g_object_ref (connection);
  self->tls = g_object_ref (tls);
  self->input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (tls)));
  self->output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (tls)));
  self->source = np_tls_get_source (tls);
  self->sink = np_tls_get_sink (tls);
  self->parent.wants_out = np_tls_sink_is_pending (self->sink);

  return &self->parent;
}
