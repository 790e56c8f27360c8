/* np-stream-io.c: a stream's bytes in and out: the transport, writing,
 * framing what goes out, waiting on the socket, the descriptors received
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* The bottom of the stream: nothing here calls another file of it. What
 * the transport is ready for is handled above (self->handle_io), given at
 * creation, as a GSource is given its dispatch function. Every function
 * may be called from any thread, with the lock held where the name says
 * so; the read side's fields only from the context's thread. */

/* Past this many queued bytes a message is written at once instead of
 * waiting for the flusher. */
#define NP_WRITE_THRESHOLD  (64 * 1024)
#define NP_IOV_MAX          64

GError *
np_stream_error_new (NpStream    *self,
                     GQuark       domain,
                     int          code,
                     const char  *format,
                     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  return g_error_new (domain, code, "%s: %s", self->label, message);
}

GError *
np_stream_closed_error_new (NpStream *self)
{
  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED, _("the pipe is closed"));
}

/* The error a call that fails on a closed stream reports: why it ended,
 * when the peer said (a refusal, above all), or that it is closed. */
GError *
np_stream_ended_error_new (NpStream *self)
{
  if (self->state == NP_STREAM_CLOSED && self->error != NULL && self->peer_said_why)
    return g_error_copy (self->error);

  return np_stream_closed_error_new (self);
}

GError *
np_stream_stalled_error_new (NpStream *self)
{
  if (np_out_queue_is_empty (&self->out))
    return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                _("%u requests of the peer were still unanswered %u ms after "
                                  "it ended its side of the connection"),
                                self->n_unanswered, np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT));

  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                              _("%" PRIu64 " bytes queued to the peer were dropped: "
                                "it read nothing for %u ms while the connection closed"),
                              np_out_queue_get_size (&self->out), np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT));
}

GError *
np_stream_too_large_error_new (NpStream *self,
                               gsize     len)
{
  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                              _("message of %zu bytes exceeds the limit of %u "
                                "bytes that the receiving side accepts"),
                              len, self->peer_max_message_size);
}

GError *
np_stream_not_supported_error_new (NpStream *self)
{
  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                              _("the peer speaks protocol version %u, which has no requests"),
                              self->version);
}

void
np_stream_clear_timer (NpPollerTimer **timer)
{
  if (*timer != NULL)
    np_poller_timer_destroy (g_steal_pointer (timer));
}

/* Frees the transport once nothing uses it: another thread may be in
 * the middle of a read or a wait on its descriptor, and a descriptor
 * closed under it could be reused by anything. */
void
np_stream_release_transport_locked (NpStream *self)
{
  NpTransport *transport = self->transport;

  if (self->state == NP_STREAM_CLOSED && transport != NULL && self->transport_users == 0)
    {
      self->transport = NULL;
      transport->funcs->free (transport);
      np_fd_budget_remove_stream ();
    }
}

void
np_stream_update_events_locked (NpStream *self)
{
  GIOCondition events = 0;

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->state <= NP_STREAM_OPEN)
    events |= G_IO_IN;
  if (self->want_out)
    events |= G_IO_OUT;

  if (events != self->events)
    {
      self->events = events;
      if (self->io_watch != NULL)
        np_poller_watch_set_events (self->io_watch, events);
    }
}

static void
np_stream_write_failed_locked (NpStream     *self,
                               const GError *error)
{
  self->write_error = np_stream_error_new (self, error->domain, error->code,
                                           _("Writing to the socket failed: %s"),
                                           error->message);
  np_out_queue_clear (&self->out);
}

/* Writes as much as the transport takes, without blocking. A failure
 * drops the queue and stays in write_error; the callers decide when to
 * report it. */
void
np_stream_write_some_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  while (!np_out_queue_is_empty (&self->out) && self->write_error == NULL &&
         self->transport != NULL)
    {
      GOutputVector vectors[NP_IOV_MAX];
      guint n_vectors = np_out_queue_peek (&self->out, vectors, NP_IOV_MAX);
      GUnixFDList *fds = np_out_queue_peek_fds (&self->out);
      const int *fd_array = NULL;
      int n_fds = 0;
      g_autoptr(GError) error = NULL;
      gsize written = 0;

      if (fds != NULL)
        fd_array = g_unix_fd_list_peek_fds (fds, &n_fds);

      switch (self->transport->funcs->send (self->transport, vectors, n_vectors,
                                            fd_array, n_fds, &written, &error))
        {
        case NP_IO_DONE:
          np_out_queue_consume (&self->out, written);
          /* Reported from the context's dispatch, never from here. */
          if (G_UNLIKELY (self->over_half) &&
              np_out_queue_get_size (&self->out) <= np_stream_limit (self, NP_LIMIT_MAX_QUEUED_BYTES) / 4)
            {
              self->over_half = FALSE;
              if (self->state <= NP_STREAM_OPEN && self->connection != NULL)
                {
                  self->drained_pending = TRUE;
                  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
                }
            }
          /* A closing stream waits for a peer that reads, however slowly. */
          if (self->state == NP_STREAM_CLOSING && np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT) > 0 && written > 0)
            self->stall_until = g_get_monotonic_time () +
                                np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT) * G_TIME_SPAN_MILLISECOND;
          break;

        case NP_IO_WOULD_BLOCK:
          self->want_out = TRUE;
          np_stream_update_events_locked (self);
          return;

        case NP_IO_FAILED:
          np_stream_write_failed_locked (self, error);
          break;

        default:
          g_assert_not_reached ();
        }
    }

  /* What the transport holds of what it was given. */
  if (G_UNLIKELY (self->transport != NULL && self->transport->wants_out) && self->write_error == NULL)
    {
      g_autoptr(GError) error = NULL;
      NpIOStatus status = self->transport->funcs->flush (self->transport, &error);

      if (status == NP_IO_FAILED)
        np_stream_write_failed_locked (self, error);
      else if (status == NP_IO_WOULD_BLOCK)
        {
          self->want_out = TRUE;
          np_stream_update_events_locked (self);
          return;
        }
    }

  self->want_out = FALSE;
  np_stream_update_events_locked (self);
}

gboolean
np_stream_write_error_is_hangup (NpStream *self)
{
  return g_error_matches (self->write_error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
         g_error_matches (self->write_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

/* Has the flusher write the queue in the context's next iteration. */
void
np_stream_request_flush_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (!self->flush_requested && !self->want_out && self->state != NP_STREAM_CLOSED)
    {
      self->flush_requested = TRUE;
      np_flusher_arm (self->flusher, &self->flush_link, FALSE);
    }
}

/* Queues a frame the peer's own frames call for (a pong, a reply).
 * Returns FALSE past the queue limit, with the error for which the caller
 * drops the peer, which sends and does not read. */
gboolean
np_stream_queue_peer_frame_locked (NpStream      *self,
                                   const guint8  *header,
                                   gsize          header_len,
                                   GBytes        *payload,
                                   GError       **error)
{
  NP_STREAM_ENSURE_LOCKED (self);

  return np_stream_queue_peer_frame_with_fds_locked (self, header, header_len, payload, NULL,
                                                     error);
}

/* The same, for a frame whose first byte carries @fds (nullable). */
gboolean
np_stream_queue_peer_frame_with_fds_locked (NpStream      *self,
                                            const guint8  *header,
                                            gsize          header_len,
                                            GBytes        *payload,
                                            GUnixFDList   *fds,
                                            GError       **error)
{
  gsize len = g_bytes_get_size (payload);
  guint64 max_queued_bytes;

  NP_STREAM_ENSURE_LOCKED (self);

  /* After the peer's end of stream, only the answers it waits for. */
  if (self->state > NP_STREAM_OPEN &&
      !(self->state == NP_STREAM_CLOSING && self->awaiting_answers))
    return TRUE;

  max_queued_bytes = np_stream_limit (self, NP_LIMIT_MAX_QUEUED_BYTES);
  if (max_queued_bytes > 0 &&
      np_out_queue_get_size (&self->out) + header_len + len > max_queued_bytes)
    {
      g_propagate_error (error,
                         np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                                              _("the peer sends but does not read: %" PRIu64
                                                " bytes are queued to it, the limit is %" PRIu64),
                                              np_out_queue_get_size (&self->out),
                                              max_queued_bytes));
      return FALSE;
    }

  np_out_queue_push_frame_with_fds (&self->out, header, header_len, payload, fds);
  np_stream_note_queued_locked (self);
  np_stream_request_flush_locked (self);

  return TRUE;
}

/* Queues @message, for @op (a send_async) when given, which then knows
 * where its frame lies. */
void
np_stream_queue_message_locked (NpStream *self,
                                GBytes   *message,
                                NpOp     *op)
{
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint64 start;

  NP_STREAM_ENSURE_LOCKED (self);

  np_frame_header_encode (header, NP_FRAME_MESSAGE, g_bytes_get_size (message));
  start = np_out_queue_push_frame (&self->out, header, sizeof header, message);
  np_stream_note_queued_locked (self);
  if (op != NULL)
    {
      op->start = start;
      op->end = self->out.queued;
    }

  /* A caller that never returns to the main loop must not pile up. */
  if (!self->want_out && np_out_queue_get_size (&self->out) >= NP_WRITE_THRESHOLD)
    np_stream_write_some_locked (self);

  np_stream_request_flush_locked (self);
}

/* Queues a MESSAGE_FDS frame: the peer is known to take descriptors. */
void
np_stream_queue_message_with_fds_locked (NpStream    *self,
                                         GBytes      *message,
                                         GUnixFDList *fds)
{
  guint8 header[NP_FRAME_HEADER_SIZE];

  NP_STREAM_ENSURE_LOCKED (self);

  np_frame_header_encode_fds (header, g_bytes_get_size (message),
                              g_unix_fd_list_get_length (fds));
  np_out_queue_push_frame_with_fds (&self->out, header, sizeof header, message, fds);

  if (!self->want_out && np_out_queue_get_size (&self->out) >= NP_WRITE_THRESHOLD)
    np_stream_write_some_locked (self);

  np_stream_request_flush_locked (self);
}

/* Whether @n_fds descriptors may go in one frame to the peer: never more
 * than the kernel passes in one write, none to a peer too old for them,
 * and from version 4 on, no more than the peer announced it takes. */
gboolean
np_stream_check_fds_locked (NpStream  *self,
                            guint      n_fds,
                            GError   **error)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->remote)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                   _("%s: descriptors cannot travel over TCP, only over a local pipe"),
                   self->label);
      return FALSE;
    }

  if (n_fds > NP_FDS_MAX)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                   _("%s: a message carries at most %u descriptors, not %u"),
                   self->label, NP_FDS_MAX, n_fds);
      return FALSE;
    }

  if (self->peer_known && self->version < NP_PROTOCOL_FDS)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                   _("%s: the peer speaks protocol version %u, which carries no descriptors"),
                   self->label, self->version);
      return FALSE;
    }

  if (self->settings_received && n_fds > self->peer_max_fds)
    {
      if (self->peer_max_fds == 0)
        g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                     _("%s: the peer takes no descriptors"), self->label);
      else
        g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                     _("%s: %u descriptors exceed the limit of %u per message that the "
                       "receiving side accepts"),
                     self->label, n_fds, self->peer_max_fds);
      return FALSE;
    }

  return TRUE;
}

/* Whether a request or a reply may carry @n_fds descriptors: only to a
 * peer of version NP_PROTOCOL_SETTINGS or later (when its hello told),
 * and within what any frame may carry. */
gboolean
np_stream_check_request_fds_locked (NpStream  *self,
                                    guint      n_fds,
                                    GError   **error)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->peer_known && self->version < NP_PROTOCOL_SETTINGS)
    {
      g_propagate_error (error,
                         np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                                              _("the peer speaks protocol version %u, whose "
                                                "requests and replies carry no descriptors"),
                                              self->version));
      return FALSE;
    }

  return np_stream_check_fds_locked (self, n_fds, error);
}

gboolean
np_stream_needs_dispatch_locked (NpStream *self)
{
  NpOp *op = g_queue_peek_head (&self->writes);

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->deferred.length > 0 || self->drained_pending)
    return TRUE;

  if (self->state == NP_STREAM_CLOSED)
    return self->report_pending;

  return (op != NULL && (op->end <= self->out.written || self->write_error != NULL)) ||
         (self->state == NP_STREAM_CLOSING &&
          (self->write_error != NULL || np_stream_closing_done_locked (self))) ||
         (self->write_error != NULL && !np_stream_write_error_is_hangup (self));
}

/* While a poll() waits, the slice after which it looks at a cancellable
 * that has no descriptor to wake it. */
#define NP_CANCEL_SLICE_MSEC 50

/* Puts a descriptor of @cancellable in @pollfd, to wake a poll() on @fd
 * up when it is cancelled; returns FALSE when there is none. GLib aborts
 * the process when it cannot make one, so a process with no descriptor
 * to spare polls in slices instead (*@timeout_msec shortened), after
 * which the caller, which loops, looks at the cancellable itself. */
static gboolean
np_cancellable_make_pollfd (GCancellable *cancellable,
                            int           fd,
                            GPollFD      *pollfd,
                            gint         *timeout_msec)
{
  int spare;

  if (cancellable == NULL)
    return FALSE;

  spare = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  if (spare < 0)
    {
      if (*timeout_msec < 0 || *timeout_msec > NP_CANCEL_SLICE_MSEC)
        *timeout_msec = NP_CANCEL_SLICE_MSEC;
      return FALSE;
    }
  close (spare);

  return g_cancellable_make_pollfd (cancellable, pollfd);
}

/* Waits until the transport is writable, @timeout_msec passes (-1: no
 * limit) or @cancellable is cancelled. Called with the lock held and the
 * transport in use; drops the lock while waiting. */
gboolean
np_stream_wait_writable_locked (NpStream      *self,
                                gint           timeout_msec,
                                GCancellable  *cancellable,
                                GError       **error)
{
  GPollFD fds[2] = { { self->transport->fd, G_IO_OUT, 0 } };
  guint n_fds = 1;
  int res;

  NP_STREAM_ENSURE_LOCKED (self);

  self->transport_users++;
  g_mutex_unlock (self->lock);

  if (np_cancellable_make_pollfd (cancellable, fds[0].fd, &fds[1], &timeout_msec))
    n_fds++;

  do
    res = g_poll (fds, n_fds, timeout_msec);
  while (res < 0 && errno == EINTR);

  if (n_fds > 1)
    g_cancellable_release_fd (cancellable);

  g_mutex_lock (self->lock);
  self->transport_users--;
  np_stream_release_transport_locked (self);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  return TRUE;
}

static void
np_fd_batch_free (NpFdBatch *batch)
{
  for (guint i = 0; i < batch->n; i++)
    close (batch->fds[i]);
  np_fd_budget_release (batch->n);
  g_free (batch);
}

/* Closes the descriptors received and not delivered. */
static void
np_stream_clear_fds (NpStream *self)
{
  NpFdBatch *batch;

  while ((batch = g_queue_pop_head (&self->fd_batches)) != NULL)
    np_fd_batch_free (batch);

  if (self->body_fds != NULL)
    {
      np_fd_budget_release (g_unix_fd_list_get_length (self->body_fds));
      g_clear_object (&self->body_fds);
    }
}

void
np_stream_clear_partial (NpStream *self)
{
  self->head_len = 0;
  g_clear_pointer (&self->body, g_free);
  self->body_len = self->body_alloc = self->body_filled = 0;
  np_stream_clear_fds (self);
}

/* A handler runs a main loop of its own while a buffer is delivered:
 * the frames left of it are ready now, whether or not the socket is
 * (they may be what the handler waits for). The watch is made ready
 * for as long as frames are left after the one being delivered, once a
 * buffer: a prepare function would cost every main loop iteration a call
 * per connection. */
void
np_stream_set_rest_ready (NpStream *self,
                          gboolean  ready)
{
  self->rest_ready = ready;
  g_mutex_lock (self->lock);
  if (self->io_watch != NULL)
    np_poller_watch_set_ready (self->io_watch, ready || self->transport_ready);
  g_mutex_unlock (self->lock);
}

/* A transport that keeps what it read (np_transport_tls.c) may have
 * bytes when its descriptor has none: the watch is ready while it may. */
void
np_stream_set_transport_ready (NpStream *self,
                               gboolean  ready)
{
  self->transport_ready = ready;
  g_mutex_lock (self->lock);
  if (self->io_watch != NULL)
    np_poller_watch_set_ready (self->io_watch, ready || self->rest_ready);
  g_mutex_unlock (self->lock);
}

/* Waits for the transport, at most @timeout_msec (-1: no limit) or until
 * @cancellable is cancelled, then handles what it is ready for, as the
 * I/O watch would. For a thread that holds the stream's context and
 * runs nothing else meanwhile. Returns FALSE when cancelled. */
gboolean
np_stream_poll_once (NpStream     *self,
                     gint          timeout_msec,
                     GCancellable *cancellable)
{
  GPollFD fds[2] = { { -1, 0, 0 } };
  guint n_fds = 1;
  gboolean rest;
  int res;

  g_mutex_lock (self->lock);
  if (self->state == NP_STREAM_CLOSED || self->transport == NULL)
    {
      g_mutex_unlock (self->lock);
      return TRUE;
    }

  /* What the flusher would have written, had the context run. */
  if (!self->want_out)
    np_stream_write_some_locked (self);

  fds[0].fd = self->transport->fd;
  fds[0].events = self->events;
  self->transport_users++;
  /* Called from a handler, whose buffer has frames left to deliver:
   * they are ready now (see np_stream_set_rest_ready()). */
  rest = np_stream_read_pending (self) && self->state <= NP_STREAM_OPEN;
  if (rest)
    timeout_msec = 0;
  g_mutex_unlock (self->lock);

  if (np_cancellable_make_pollfd (cancellable, fds[0].fd, &fds[1], &timeout_msec))
    n_fds++;

  do
    res = g_poll (fds, n_fds, timeout_msec);
  while (res < 0 && errno == EINTR);

  if (n_fds > 1)
    g_cancellable_release_fd (cancellable);

  g_mutex_lock (self->lock);
  self->transport_users--;
  if (((res > 0 && fds[0].revents != 0) || rest) && self->state != NP_STREAM_CLOSED)
    self->handle_io (self, res > 0 ? fds[0].revents : 0);
  else
    {
      np_stream_release_transport_locked (self);
      g_mutex_unlock (self->lock);
    }

  return !g_cancellable_is_cancelled (cancellable);
}

/* A write found the peer gone (a broken pipe, a reset) while the stream
 * is open: what the peer sent before going, a goodbye that says why
 * above all, is still in the socket. When this thread may read (it
 * holds the stream's context, or takes it), it reads all of it, so that
 * the stream ends with the peer's reason rather than a broken pipe;
 * otherwise the thread that runs the context does. Called with no lock
 * held. */
void
np_stream_read_after_hangup (NpStream *self)
{
  gboolean acquired = FALSE;
  gboolean hangup;

  g_mutex_lock (self->lock);
  hangup = self->state <= NP_STREAM_OPEN && np_stream_write_error_is_hangup (self);
  g_mutex_unlock (self->lock);

  if (!hangup || self->reading > 0 ||
      !(g_main_context_is_owner (self->context) ||
        (acquired = g_main_context_acquire (self->context))))
    return;

  /* The peer is gone: what it sent is all there is, and is bounded by
   * the socket's buffer. */
  for (;;)
    {
      guint64 received = self->received;

      np_stream_poll_once (self, 0, NULL);
      if (np_stream_get_state (self) > NP_STREAM_OPEN || self->received == received)
        break;
    }

  if (acquired)
    g_main_context_release (self->context);
}

/* The goodbye of a peer that went away while the stream was closing
 * (a write found it gone, and the stream no longer reads): what the peer
 * sent before going, its goodbye above all, may still be in the socket.
 * Reads it, delivering nothing, and returns the goodbye's error with the
 * peer's reason; NULL when none came, or it announced a normal close.
 * Called with the lock held, by a thread that holds the context, so that
 * nothing else reads. */
GError *
np_stream_read_goodbye_locked (NpStream *self)
{
  g_autoptr(GByteArray) pending = g_byte_array_new ();
  g_autofree guint8 *chunk = NULL;
  gboolean hello = !self->peer_known;
  guint8 version = self->version;
  guint64 skip = 0;
  gsize budget = NP_READ_BUDGET;

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->transport == NULL)
    return NULL;

  /* What was received and not yet parsed comes first. */
  if (self->rest != NULL)
    g_byte_array_append (pending, self->rest, self->rest_end - self->rest);
  else if (self->body != NULL && self->body_type == NP_FRAME_GOODBYE)
    {
      guint8 header[NP_FRAME_HEADER_SIZE];

      np_frame_header_encode (header, NP_FRAME_GOODBYE, self->body_len);
      g_byte_array_append (pending, header, sizeof header);
      g_byte_array_append (pending, self->body, self->body_filled);
    }
  else if (self->body != NULL)
    skip = self->body_len - self->body_filled;
  else
    g_byte_array_append (pending, self->head, self->head_len);

  for (;;)
    {
      gsize n = 0;
      NpIOStatus status;

      for (;;)
        {
          NpFrameHeader header;
          gsize drop;

          if (skip > 0)
            {
              drop = MIN (skip, pending->len);
              g_byte_array_remove_range (pending, 0, drop);
              skip -= drop;
              if (skip > 0)
                break;
            }

          if (hello)
            {
              NpHello peer;

              if (pending->len < NP_HELLO_SIZE)
                break;
              if (!np_hello_decode (pending->data, &peer, NULL))
                return NULL;
              version = peer.version;
              hello = FALSE;
              g_byte_array_remove_range (pending, 0, NP_HELLO_SIZE);
              continue;
            }

          if (pending->len < NP_FRAME_HEADER_SIZE)
            break;
          if (!np_frame_header_decode (pending->data, version, self->max_message_size, &header, NULL))
            return NULL;

          if (header.type == NP_FRAME_GOODBYE)
            {
              GError *error;

              if (pending->len - NP_FRAME_HEADER_SIZE < header.length)
                break;
              error = np_goodbye_decode (pending->data + NP_FRAME_HEADER_SIZE, header.length);
              if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED))
                g_clear_error (&error);
              else
                g_prefix_error (&error, "%s: ", self->label);
              return error;
            }

          g_byte_array_remove_range (pending, 0, NP_FRAME_HEADER_SIZE);
          skip = header.length;
        }

      if (budget == 0)
        return NULL;

      if (chunk == NULL)
        chunk = g_malloc (NP_READ_CHUNK);
      status = self->transport->funcs->receive (self->transport, chunk, NP_READ_CHUNK, &n,
                                                NULL, NULL);
      if (status != NP_IO_DONE || n == 0)
        return NULL;

      budget -= MIN (budget, n);
      g_byte_array_append (pending, chunk, n);
    }
}

/* References */

NpStream *
np_stream_ref (NpStream *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
np_stream_unref (NpStream *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Every source and armed link holds a reference: they are all gone. */
  g_assert (self->state == NP_STREAM_CLOSED);
  g_assert (self->transport_users == 0);
  g_assert (g_queue_is_empty (&self->writes) && g_queue_is_empty (&self->pings) &&
            g_queue_is_empty (&self->closers) && g_queue_is_empty (&self->deferred) &&
            g_queue_is_empty (&self->parked) && g_hash_table_size (np_stream_get_requests_locked (self)) == 0);

  g_clear_pointer (&self->requests, g_hash_table_unref);
  g_clear_pointer (&self->unanswered, g_hash_table_unref);
  if (self->unanswered_fds != NULL)
    {
      GHashTableIter iter;
      gpointer held_fds;

      /* Requests never answered, by an owner that did not keep them. */
      g_hash_table_iter_init (&iter, self->unanswered_fds);
      while (g_hash_table_iter_next (&iter, NULL, &held_fds))
        np_fd_budget_release (GPOINTER_TO_UINT (held_fds));
      g_hash_table_unref (self->unanswered_fds);
    }

  np_stream_release_transport_locked (self);
  np_stream_clear_partial (self);
  np_flusher_release (self->flusher);
  g_clear_error (&self->error);
  g_clear_error (&self->abort_error);
  g_clear_error (&self->write_error);
  g_main_context_unref (self->context);
  g_free (self->label);
  np_limits_unref (self->limits);
  g_mutex_clear (self->lock);
  g_free (self);
}
