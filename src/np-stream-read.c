/* np-stream-read.c: what arrives on a stream: reading, parsing, and
 * handing each frame to the layer that handles it
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* First allocation for a frame body that did not arrive whole; it grows as
 * bytes come, so a peer cannot make us allocate a size it only announced. */
#define NP_BODY_INITIAL     (256 * 1024)

G_STATIC_ASSERT (NP_HELLO_SIZE >= NP_FRAME_HEADER_SIZE);

/* Each kind of frame is handled by a different layer (the end by the
 * life, a pong by the ops, a reply by the requests), which puts this file
 * above them all, below np-stream.c only. Only the thread that runs the
 * stream's context reads, from the I/O watch's dispatch: nothing here
 * takes the lock but to change what the other threads see. */

/* One read buffer per thread, taken while in use so that a nested main
 * loop run from a signal handler gets a buffer of its own. Idle streams
 * hold none. */
static GPrivate np_read_buffer = G_PRIVATE_INIT (g_free);

static guint8 *
take_read_buffer (void)
{
  guint8 *buf = g_private_get (&np_read_buffer);

  if (buf == NULL)
    return g_malloc (NP_READ_CHUNK);

  g_private_set (&np_read_buffer, NULL);
  return buf;
}

static void
give_back_read_buffer (guint8 *buf)
{
  if (buf == NULL)
    return;

  if (g_private_get (&np_read_buffer) == NULL)
    g_private_set (&np_read_buffer, buf);
  else
    g_free (buf);
}

/* Ends the stream from the read side. */
static void
np_stream_read_failed (NpStream      *self,
                       const GError  *error,
                       gboolean       abort,
                       NpStreamAfter *after)
{
  g_mutex_lock (self->lock);
  if (self->state != NP_STREAM_CLOSED)
    {
      if (abort)
        np_stream_abort_locked (self, error, after);
      else
        np_stream_finish_locked (self, error, after);
    }
  g_mutex_unlock (self->lock);
}

/* Tells the owner the peer accepted us, once: when its handshake is
 * complete, or before anything else the peer sent is delivered
 * (@delivering), whichever comes first. From version 4 on the handshake
 * ends with the peer's settings, and a peer may send messages before
 * them (a server, from its client-connected handler): those are
 * delivered as from an open connection, the owner told first. */
static void
np_stream_report_opened (NpStream *self,
                         NpStreamTarget *target,
                         gboolean  delivering)
{
  NpStreamState state;

  /* Once reported, which is at once for every message after the first. */
  if (G_LIKELY (!self->open_pending))
    return;

  state = np_stream_get_state (self);
  if (state == NP_STREAM_HANDSHAKE && !delivering)
    return;

  self->open_pending = FALSE;
  if (target->owner != NULL && state <= NP_STREAM_OPEN)
    {
      g_object_notify (target->connection, "peer-max-message-size");
      self->owner_iface->opened ((NpConnectionOwner *) target->owner,
                                 (NpPipeConnection *) target->connection);
    }
}

/* Descriptors came with bytes in which no frame that carries them
 * starts: found when a later frame starts, or the stream ends. */
static GError *
np_stream_stray_fds_error_new (NpStream *self)
{
  NpFdBatch *batch = g_queue_peek_head (&self->fd_batches);

  return g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                      _("%u descriptors came with bytes that start no message "
                        "with descriptors"),
                      batch->n);
}

static void
np_stream_handle_pong (NpStream      *self,
                       GBytes        *payload,
                       NpStreamAfter *after)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  guint64 id = 0;
  NpOp *op;

  if (len != sizeof id)
    return;

  for (guint i = 0; i < sizeof id; i++)
    id = (id << 8) | data[i];

  g_mutex_lock (self->lock);
  op = g_queue_peek_head (&self->pings);
  /* A pong that answers none of our pings (a cancelled one) is ignored. */
  if (op != NULL && op->ping_id == id)
    {
      g_queue_pop_head (&self->pings);
      op->value = g_get_monotonic_time () - op->sent_at;
      g_queue_push_tail (&after->done, op);
    }
  g_mutex_unlock (self->lock);
}

static void
np_stream_handle_goodbye (NpStream      *self,
                          GBytes        *payload,
                          NpStreamAfter *after)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  g_autoptr(GError) error = np_goodbye_decode (data, len);

  /* A goodbye that announces a normal close ends the peer's side, as the
   * end of the stream does: what is queued to it, and the answers it
   * waits for, still go out before the stream closes cleanly. */
  if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED))
    {
      /* The flags share a word that other threads write under the
       * lock. */
      g_mutex_lock (self->lock);
      self->goodbye_received = TRUE;
      g_mutex_unlock (self->lock);
      /* Nothing follows a goodbye: descriptors nothing took are stray. */
      if (self->fd_batches.head != NULL)
        {
          g_clear_error (&error);
          error = np_stream_stray_fds_error_new (self);
          g_prefix_error (&error, "%s: ", self->label);
          np_stream_read_failed (self, error, TRUE, after);
          return;
        }
      g_mutex_lock (self->lock);
      np_stream_peer_ended_locked (self, after);
      g_mutex_unlock (self->lock);
      return;
    }

  g_prefix_error (&error, "%s: ", self->label);
  g_mutex_lock (self->lock);
  if (self->state != NP_STREAM_CLOSED)
    self->peer_said_why = TRUE;
  g_mutex_unlock (self->lock);
  np_stream_read_failed (self, error, FALSE, after);
}

/* The peer's settings, the last step of its handshake (version 4 on). */
static void
np_stream_handle_settings (NpStream      *self,
                           GBytes        *payload,
                           NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  NpSettings settings;
  gboolean twice;

  /* Under the lock: the flag shares a word that other threads write. */
  g_mutex_lock (self->lock);
  twice = self->settings_received;
  g_mutex_unlock (self->lock);

  if (twice)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("the peer sent its settings twice"));
  else if (!np_settings_decode (data, len, &settings, &error))
    g_prefix_error (&error, "%s: ", self->label);

  if (error != NULL)
    {
      np_stream_read_failed (self, error, TRUE, after);
      return;
    }

  g_mutex_lock (self->lock);
  self->settings_received = TRUE;
  self->peer_max_fds = settings.max_fds;
  if (np_stream_opened_locked (self))
    np_stream_send_parked_locked (self, after);
  g_mutex_unlock (self->lock);
}

/* Hands @fds (which the frame took from the budget) over with their
 * message: from here on they are the owner's, or closed. */
static void
np_stream_deliver_fds (NpStream    *self,
                       NpStreamTarget *target,
                       GBytes      *payload,
                       GUnixFDList *fds)
{
  np_fd_budget_release (g_unix_fd_list_get_length (fds));
  if (target->owner != NULL)
    self->owner_iface->message ((NpConnectionOwner *) target->owner,
                                (NpPipeConnection *) target->connection, payload, fds);
}

static void
np_stream_handle_frame (NpStream      *self,
                        NpStreamTarget *target,
                        NpFrameType    type,
                        GBytes        *payload,
                        GUnixFDList   *fds,
                        NpStreamAfter *after)
{
  switch (type)
    {
    case NP_FRAME_MESSAGE:
      np_stream_report_opened (self, target, TRUE);
      if (target->owner != NULL)
        self->owner_iface->message ((NpConnectionOwner *) target->owner,
                                    (NpPipeConnection *) target->connection, payload, NULL);
      break;

    case NP_FRAME_MESSAGE_FDS:
      g_assert (fds != NULL);
      np_stream_report_opened (self, target, TRUE);
      np_stream_deliver_fds (self, target, payload, fds);
      break;

    case NP_FRAME_PING:
      {
        guint8 header[NP_FRAME_HEADER_SIZE];
        g_autoptr(GError) full = NULL;

        np_frame_header_encode (header, NP_FRAME_PONG, g_bytes_get_size (payload));
        g_mutex_lock (self->lock);
        if (!np_stream_queue_peer_frame_locked (self, header, sizeof header, payload, &full))
          np_stream_abort_locked (self, full, after);
        g_mutex_unlock (self->lock);
      }
      break;

    case NP_FRAME_PONG:
      np_stream_handle_pong (self, payload, after);
      break;

    case NP_FRAME_GOODBYE:
      np_stream_handle_goodbye (self, payload, after);
      break;

    case NP_FRAME_SETTINGS:
      np_stream_handle_settings (self, payload, after);
      /* At once, before the frames after them: a peer that completes
       * its handshake and ends its side in the same read was open all
       * the same. (Settings are never part of a refusal.) */
      np_stream_report_opened (self, target, FALSE);
      break;

    case NP_FRAME_REQUEST:
    case NP_FRAME_REQUEST_FDS:
      {
        gsize len;
        const guint8 *data = g_bytes_get_data (payload, &len);
        guint32 id = np_request_id_decode (data);
        g_autoptr(GBytes) message = g_bytes_new_from_bytes (payload, 4, len - 4);
        guint n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;

        g_assert ((type == NP_FRAME_REQUEST_FDS) == (fds != NULL));

        /* In its place among the messages; its descriptors are the
         * owner's from here on, or closed with @fds. They stay in the
         * budget until it is answered. */
        np_stream_report_opened (self, target, TRUE);
        if (!np_stream_take_request (self, id, len - 4, n_fds, after))
          {
            np_fd_budget_release (n_fds);
            break;
          }
        if (target->owner != NULL)
          self->owner_iface->request ((NpConnectionOwner *) target->owner,
                                      (NpPipeConnection *) target->connection, id, message, fds);
        else
          {
            g_autoptr(GError) error = NULL;

            error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                                         _("nothing handles requests on this pipe"));
            np_stream_reply (self, id, NULL, NULL, error);
          }
      }
      break;

    case NP_FRAME_REPLY_FDS:
      g_assert (fds != NULL);
      np_fd_budget_release (g_unix_fd_list_get_length (fds));
      np_stream_handle_reply (self, type, payload, fds, after);
      break;

    case NP_FRAME_REPLY:
    case NP_FRAME_ERROR:
      np_stream_handle_reply (self, type, payload, NULL, after);
      break;

    default:
      g_assert_not_reached ();
    }
}

/* Matches the frame at @pos (its first byte's place in the stream) with
 * the descriptors received: a frame that carries descriptors
 * (MESSAGE_FDS, REQUEST_FDS, REPLY_FDS) takes those that came with its
 * first byte, exactly as many as its header says; no other frame may
 * start after descriptors nothing took. */
static gboolean
np_stream_match_fds (NpStream       *self,
                     guint64         pos,
                     NpFrameHeader  *header,
                     GUnixFDList   **fds,
                     GError        **error)
{
  NpFdBatch *batch = g_queue_peek_head (&self->fd_batches);

  if (header->n_fds == 0)
    {
      if (batch == NULL || batch->end > pos)
        return TRUE;

      g_propagate_error (error, np_stream_stray_fds_error_new (self));
      return FALSE;
    }

  if (header->n_fds > self->max_fds)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("a message carries %u descriptors, more than the %u allowed"),
                   header->n_fds, self->max_fds);
      return FALSE;
    }

  if (batch == NULL || batch->start > pos || batch->end <= pos)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("a message announces %u descriptors, but none came with its first byte"),
                   header->n_fds);
      return FALSE;
    }

  if (batch->n != header->n_fds)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("a message announces %u descriptors, but %u came with it"),
                   header->n_fds, batch->n);
      return FALSE;
    }

  /* Still counted in the budget until delivered. */
  g_queue_pop_head (&self->fd_batches);
  *fds = g_unix_fd_list_new_from_array (batch->fds, batch->n);
  g_free (batch);

  return TRUE;
}

/* Parses every complete hello and frame left of the buffer being
 * delivered (self->rest), advancing past each before delivering it: a
 * handler that runs a nested read finds the frames after its own there.
 * Keeps what is left over as a partial header or body. */
static void
np_stream_parse_rest_frames (NpStream      *self,
                             NpStreamTarget *target,
                             NpStreamAfter *after)
{
  while (self->rest != NULL && self->rest < self->rest_end &&
         np_stream_get_state (self) <= NP_STREAM_OPEN)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GUnixFDList) fds = NULL;
      const guint8 *p = self->rest;
      gsize left = self->rest_end - p;
      NpFrameHeader header;

      if (!self->hello_read)
        {
          NpHello hello;

          if (left < NP_HELLO_SIZE)
            break;

          if (!np_hello_decode (p, &hello, &error))
            {
              g_prefix_error (&error, "%s: ", self->label);
              self->rest = self->rest_end = NULL;
              np_stream_read_failed (self, error, TRUE, after);
              return;
            }

          g_mutex_lock (self->lock);
          if (np_stream_hello_locked (self, hello.version, hello.max_message_size))
            np_stream_send_parked_locked (self, after);
          g_mutex_unlock (self->lock);
          self->hello_read = TRUE;
          self->open_pending = TRUE;
          self->rest = p + NP_HELLO_SIZE;
          /* A peer that does not refuse (a client) completed its
           * handshake with its hello before version 4: at once, before
           * a goodbye or an end that may follow in the same read. */
          if (!self->client_end)
            np_stream_report_opened (self, target, FALSE);
          continue;
        }

      if (left < NP_FRAME_HEADER_SIZE)
        break;

      /* Plain frames with no descriptors received skip the matching. */
      if (!np_frame_header_decode (p, self->version, self->max_message_size, &header, &error) ||
          (G_UNLIKELY (header.n_fds > 0 || self->fd_batches.head != NULL) &&
           !np_stream_match_fds (self, self->buf_pos + (p - self->buf), &header, &fds, &error)))
        {
          g_prefix_error (&error, "%s: ", self->label);
          self->rest = self->rest_end = NULL;
          np_stream_read_failed (self, error, TRUE, after);
          return;
        }

      p += NP_FRAME_HEADER_SIZE;
      left -= NP_FRAME_HEADER_SIZE;

      if (left >= header.length)
        {
          g_autoptr(GBytes) payload = g_bytes_new (p, header.length);

          self->rest = p + header.length;
          if (self->rest < self->rest_end && !self->rest_ready)
            np_stream_set_rest_ready (self, TRUE);
          np_stream_handle_frame (self, target, header.type, payload, fds, after);
        }
      else
        {
          self->body_fds = g_steal_pointer (&fds);
          self->body_type = header.type;
          self->body_len = header.length;
          self->body_alloc = MAX (left, MIN (header.length, NP_BODY_INITIAL));
          self->body = g_malloc (self->body_alloc);
          self->body_filled = left;
          memcpy (self->body, p, left);
          self->rest = self->rest_end = NULL;
          return;
        }
    }

  /* A nested read delivered the rest already. */
  if (self->rest == NULL)
    return;

  if (np_stream_get_state (self) <= NP_STREAM_OPEN)
    {
      self->head_len = self->rest_end - self->rest;
      memcpy (self->head, self->rest, self->head_len);
    }
  self->rest = self->rest_end = NULL;
}

/* Delivers what is left of the buffer (np_stream_parse_rest_frames());
 * nothing is left after it. */
static void
np_stream_parse_rest (NpStream      *self,
                      NpStreamTarget *target,
                      NpStreamAfter *after)
{
  np_stream_parse_rest_frames (self, target, after);

  if (self->rest_ready)
    np_stream_set_rest_ready (self, FALSE);
}

/* Handles a read that moved no bytes. Returns TRUE to read on. */
static gboolean
np_stream_read_ended (NpStream      *self,
                      NpIOStatus     status,
                      const GError  *io_error,
                      NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;

  if (status == NP_IO_WOULD_BLOCK)
    return FALSE;

  /* Over TCP, a host that stopped answering (keepalive probes or our
   * data unacknowledged, np-tcp.c) or a network that went away. */
  if (status == NP_IO_FAILED && self->remote && self->version >= NP_PROTOCOL_SETTINGS &&
      (g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
       g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
       g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE)))
    {
      error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PEER_VANISHED,
                                   _("The peer went away without closing the connection: "
                                     "its host no longer answers (%s)"), io_error->message);
      np_stream_read_failed (self, error, FALSE, after);
      return FALSE;
    }

  if (status == NP_IO_FAILED)
    {
      error = np_stream_error_new (self, io_error->domain, io_error->code,
                                   _("Reading from the socket failed: %s"), io_error->message);
      np_stream_read_failed (self, error, FALSE, after);
      return FALSE;
    }

  /* The end of the stream. */
  if (!self->hello_read && self->remote && self->client_end)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("The peer closed the connection before completing the handshake "
                                   "(a server over TCP does so when it refuses this client’s "
                                   "certificate, or the lack of one)"));
  else if (!self->hello_read)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("The peer closed the connection before completing the handshake"));
  else if (self->head_len > 0 || self->body != NULL)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("The peer closed the connection in the middle of a message"));
  else if (self->fd_batches.head != NULL)
    {
      error = np_stream_stray_fds_error_new (self);
      g_prefix_error (&error, "%s: ", self->label);
    }
  else if (self->version >= NP_PROTOCOL_SETTINGS)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PEER_VANISHED,
                                 _("The peer went away without closing the connection: "
                                   "its process ended or crashed"));

  if (error != NULL)
    np_stream_read_failed (self, error, FALSE, after);
  else
    {
      g_mutex_lock (self->lock);
      np_stream_peer_ended_locked (self, after);
      g_mutex_unlock (self->lock);
    }

  return FALSE;
}

/* Keeps the descriptors one receive brought, for the frame that starts
 * in the bytes it brought: [@start, @end). Returns FALSE, having closed
 * them and ended the stream, when they cannot be kept. @in_body: the
 * bytes were read into a frame's body, where no frame starts. */
static gboolean
np_stream_keep_fds (NpStream      *self,
                    NpReceivedFds *fds,
                    guint64        start,
                    guint64        end,
                    gboolean       in_body,
                    NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;
  NpFdBatch *batch;

  /* Refused at once: kept until the next frame's header, such
   * descriptors would pile up for as long as the body lasts. */
  if (in_body && !fds->truncated)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("%u descriptors came with bytes in the middle of a "
                                   "message, where no message with descriptors starts"),
                                 fds->n);
  else if (fds->truncated)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 _("a control message was cut short: the peer sent more than "
                                   "the %u descriptors a message may carry, or this process "
                                   "has no descriptors left"), self->max_fds);
  else if (!np_fd_budget_hold (fds->n))
    error = np_stream_error_new (self, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                                 _("the peer sent %u descriptors, which would take the "
                                   "library past the %u this process may use (RLIMIT_NOFILE "
                                   "less a reserve for the application)"),
                                 fds->n, np_fd_budget_limit ());

  if (error != NULL)
    {
      for (guint i = 0; i < fds->n; i++)
        close (fds->fds[i]);
      np_stream_read_failed (self, error, TRUE, after);
      return FALSE;
    }

  batch = g_malloc (sizeof (NpFdBatch) + fds->n * sizeof (int));
  batch->start = start;
  batch->end = end;
  batch->n = fds->n;
  memcpy (batch->fds, fds->fds, fds->n * sizeof (int));
  g_queue_push_tail (&self->fd_batches, batch);

  return TRUE;
}

static gboolean
np_stream_receive (NpStream      *self,
                   guint8        *buffer,
                   gsize          size,
                   gboolean       in_body,
                   gsize         *received,
                   NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;
  NpReceivedFds fds;
  NpIOStatus status;
  guint64 start = self->received;

  fds.max = self->max_fds;
  fds.n = 0;
  fds.truncated = FALSE;
  status = self->transport->funcs->receive (self->transport, buffer, size, received,
                                            self->max_fds > 0 ? &fds : NULL, &error);
  if (status == NP_IO_DONE && *received > 0)
    {
      self->received += *received;
      if (G_UNLIKELY (fds.n > 0 || fds.truncated))
        return np_stream_keep_fds (self, &fds, start, self->received, in_body, after);
      return TRUE;
    }

  /* Descriptors never come without bytes; nothing to close. */
  g_assert (fds.n == 0);
  np_stream_read_ended (self, status, error, after);
  return FALSE;
}

/* Reads what the transport has, up to a budget, delivering each whole
 * message to @target's owner (NULL once the owner is gone). */
void
np_stream_read (NpStream      *self,
                NpStreamTarget *target,
                NpStreamAfter *after)
{
  guint8 *buf = NULL;
  gsize budget = NP_READ_BUDGET;

  /* Nested in the delivery of a buffer: what is left of it comes first. */
  if (self->rest != NULL)
    np_stream_parse_rest (self, target, after);

  while (np_stream_get_state (self) <= NP_STREAM_OPEN && budget > 0)
    {
      gsize n = 0;
      gsize want;

      if (self->body != NULL)
        {
          /* Read a large body straight into its own allocation. */
          if (self->body_filled == self->body_alloc)
            {
              self->body_alloc = MIN (self->body_len, self->body_alloc * 2);
              self->body = g_realloc (self->body, self->body_alloc);
            }

          want = self->body_alloc - self->body_filled;
          if (!np_stream_receive (self, self->body + self->body_filled, want, TRUE, &n, after))
            break;

          budget -= MIN (budget, n);
          self->body_filled += n;

          if (self->body_filled == self->body_len)
            {
              g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&self->body),
                                                            self->body_len);

              g_autoptr(GUnixFDList) fds = g_steal_pointer (&self->body_fds);

              self->body_len = self->body_alloc = self->body_filled = 0;
              np_stream_handle_frame (self, target, self->body_type, payload, fds, after);
            }
          else if (n < want)
            break;

          continue;
        }

      if (buf == NULL)
        buf = take_read_buffer ();

      memcpy (buf, self->head, self->head_len);
      want = NP_READ_CHUNK - self->head_len;
      if (!np_stream_receive (self, buf + self->head_len, want, FALSE, &n, after))
        break;

      budget -= MIN (budget, n);
      self->buf = buf;
      self->buf_pos = self->received - n - self->head_len;
      self->rest = buf;
      self->rest_end = buf + self->head_len + n;
      self->head_len = 0;
      np_stream_parse_rest (self, target, after);

      /* A short read means the socket is drained (don't pay for EAGAIN),
       * unless it stopped after a write that carried descriptors. Over
       * TLS, that the record read was read whole: GnuTLS reads a record
       * at a time, never ahead, so nothing decrypted is left behind, and
       * the socket tells whether more came. */
      if (n < want && g_queue_is_empty (&self->fd_batches))
        break;
    }

  /* The budget ran out with a record perhaps read in part, the rest
   * decrypted and kept: it is read in the next dispatch, readable socket
   * or not. */
  if (G_UNLIKELY (self->transport->buffers_reads) &&
      (budget == 0) != self->transport_ready && np_stream_get_state (self) <= NP_STREAM_OPEN)
    np_stream_set_transport_ready (self, budget == 0);

  give_back_read_buffer (buf);
  np_stream_report_opened (self, target, FALSE);
}
