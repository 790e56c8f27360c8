/* np-stream-life.c: a stream's life: its states, every way it closes,
 * its deadlines
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <inttypes.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-stream-internal.h"

/* Above np-stream-ops.c and np-stream-io.c. Every function may be called
 * from any thread, with the lock held where the name says so. */

static void np_stream_deadline_cb (NpPollerTimer *timer,
                                   gpointer       data);

/* Arms the handshake deadline, or (closing) the one by which the peer
 * must have read something. */
void
np_stream_set_deadline_locked (NpStream *self,
                               guint     timeout_msec)
{
  NP_STREAM_ENSURE_LOCKED (self);

  np_stream_clear_timer (&self->deadline);

  if (timeout_msec == 0 || self->state == NP_STREAM_CLOSED)
    return;

  if (self->state == NP_STREAM_CLOSING)
    self->stall_until = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;

  self->deadline = np_poller_timer_new (self->context, timeout_msec, "[np] pipe deadline",
                                        np_stream_deadline_cb, np_stream_ref (self),
                                        (GDestroyNotify) np_stream_unref);
}

/* Ends the stream: fails what waits on it, and leaves the report to the
 * caller (np_stream_after()). */
void
np_stream_finish_locked (NpStream      *self,
                         const GError  *error,
                         NpStreamAfter *after)
{
  g_autoptr(GError) closed = NULL;
  g_autoptr(GError) unsent = NULL;
  guint n_parked;
  NpOp *op;

  NP_STREAM_ENSURE_LOCKED (self);

  g_assert (self->state != NP_STREAM_CLOSED);

  /* Messages that wait behind a request for the peer's hello have no
   * call of their own to fail: a close that drops them is not clean. */
  n_parked = np_stream_count_parked_messages_locked (self);
  if (error == NULL && n_parked > 0 && self->owner != NULL)
    error = unsent = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                          _("%u messages queued behind a request were dropped: "
                                            "the connection closed before the peer's hello"),
                                          n_parked);

  np_stream_set_state (self, NP_STREAM_CLOSED);
  self->error = error != NULL ? g_error_copy (error) : NULL;
  /* The end is all there is left to report. */
  self->over_half = FALSE;
  self->drained_pending = FALSE;
  self->report_pending = self->owner != NULL;
  self->want_out = FALSE;
  after->finished = TRUE;

  np_stream_clear_timer (&self->deadline);
  /* Before the transport, and its descriptor, may go. */
  if (self->io_watch != NULL)
    np_poller_watch_destroy (g_steal_pointer (&self->io_watch));

  np_out_queue_clear (&self->out);
  /* The error of the calls in flight, made only when there are any: a
   * connection that ends cleanly with none formats no message. */
  if (self->writes.length > 0 || self->pings.length > 0 || self->parked.length > 0 ||
      (self->requests != NULL && g_hash_table_size (self->requests) > 0))
    {
      closed = error != NULL ? g_error_copy (error)
                             : np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                                    _("the pipe closed first"));
      np_stream_fail_ops_locked (&self->writes, closed, after);
      np_stream_fail_ops_locked (&self->pings, closed, after);
      np_stream_fail_requests_locked (self, closed, after);
    }
  while ((op = g_queue_pop_head (&self->closers)) != NULL)
    {
      if (error != NULL)
        op->error = g_error_copy (error);
      g_queue_push_tail (&after->done, op);
    }

  if (self->transport != NULL)
    self->transport->funcs->shutdown (self->transport);
  np_stream_release_transport_locked (self);
}

static void
np_stream_push_goodbye_locked (NpStream     *self,
                               NpPipeError   code,
                               const char   *reason)
{
  g_autoptr(GBytes) goodbye = np_goodbye_encode (code, reason);
  guint8 header[NP_FRAME_HEADER_SIZE];

  NP_STREAM_ENSURE_LOCKED (self);

  self->goodbye_queued = TRUE;
  np_frame_header_encode (header, NP_FRAME_GOODBYE, g_bytes_get_size (goodbye));
  np_out_queue_push_frame (&self->out, header, sizeof header, goodbye);
}

/* Queues the goodbye of a normal close, once, behind everything queued:
 * from version 4 on, it is how the peer tells a close from a vanishing
 * (older peers take it as the clean close it always meant). */
void
np_stream_queue_goodbye_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->goodbye_queued || self->write_error != NULL || self->transport == NULL)
    return;

  np_stream_push_goodbye_locked (self, NP_PIPE_ERROR_CLOSED, "closed");
}

/* Ends the stream because of @error, telling the peer why in a goodbye
 * frame. What was queued and not begun is dropped; the frame being
 * written is finished first, so that the goodbye follows a whole frame:
 * when the socket does not take both at once, the stream stays closing
 * (reading nothing more) until they are out, or the close timeout ends
 * the wait. The calls waiting on the stream fail at once. */
void
np_stream_abort_locked (NpStream      *self,
                        const GError  *error,
                        NpStreamAfter *after)
{
  g_autoptr(GError) failed = NULL;

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->state == NP_STREAM_CLOSED || self->abort_error != NULL)
    return;

  if (self->write_error == NULL && self->transport != NULL)
    {
      gint code = error->domain == NP_PIPE_ERROR ? error->code : NP_PIPE_ERROR_FAILED;

      np_out_queue_cut (&self->out);
      np_stream_push_goodbye_locked (self, code, error->message);
      if (!self->want_out)
        np_stream_write_some_locked (self);
    }

  if (self->write_error != NULL || np_stream_all_written_locked (self) ||
      np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT) == 0)
    {
      np_stream_finish_locked (self, error, after);
      return;
    }

  /* Nothing that waits on the stream waits for the goodbye. */
  self->abort_error = g_error_copy (error);
  failed = g_error_copy (error);
  np_stream_fail_ops_locked (&self->writes, failed, after);
  np_stream_fail_ops_locked (&self->pings, failed, after);
  np_stream_fail_requests_locked (self, failed, after);
  self->awaiting_answers = FALSE;
  if (self->state != NP_STREAM_CLOSING)
    np_stream_set_state (self, NP_STREAM_CLOSING);
  np_stream_update_events_locked (self);
  np_stream_set_deadline_locked (self, np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT));
  np_stream_request_flush_locked (self);
}

/* The peer's hello arrived: from version 4 on, the stream opens once
 * the peer's settings follow, and ours go out now. Returns TRUE when the
 * stream opened (np_stream_opened_locked()). */
gboolean
np_stream_hello_locked (NpStream *self,
                        guint8    version,
                        guint32   peer_max_message_size)
{
  NP_STREAM_ENSURE_LOCKED (self);

  /* Another thread may have closed it since the hello was read. */
  if (self->state != NP_STREAM_HANDSHAKE)
    return FALSE;

  self->version = version;
  self->peer_max_message_size = peer_max_message_size;
  self->peer_known = TRUE;

  if (version >= NP_PROTOCOL_SETTINGS)
    {
      g_autoptr(GBytes) settings = np_settings_encode (self->max_fds);
      guint8 header[NP_FRAME_HEADER_SIZE];

      np_frame_header_encode (header, NP_FRAME_SETTINGS, g_bytes_get_size (settings));
      np_out_queue_push_frame (&self->out, header, sizeof header, settings);
      /* At once: they count in no one's queued bytes. */
      if (!self->want_out)
        np_stream_write_some_locked (self);
      np_stream_request_flush_locked (self);
      return FALSE;
    }

  return np_stream_opened_locked (self);
}

/* The peer's handshake is complete: the stream is open. Returns TRUE
 * when it opened now; the caller then sends what waited for it
 * (np_stream_send_parked_locked()). */
gboolean
np_stream_opened_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->state != NP_STREAM_HANDSHAKE)
    return FALSE;

  self->peer_ready = TRUE;
  np_stream_set_state (self, NP_STREAM_OPEN);
  np_stream_clear_timer (&self->deadline);

  return TRUE;
}

/* The peer ended its side at a frame boundary: it sends nothing more,
 * but may still read what we queued, which goes out (within the close
 * timeout) before the stream closes, and the answers to its requests
 * that the application still owes, which it may give later. */
void
np_stream_peer_ended_locked (NpStream      *self,
                             NpStreamAfter *after)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->state > NP_STREAM_OPEN)
    return;

  self->peer_eof = TRUE;
  self->awaiting_answers = TRUE;

  np_stream_set_state (self, NP_STREAM_CLOSING);
  np_stream_update_events_locked (self);
  np_stream_set_deadline_locked (self, np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT));
  np_stream_settle_locked (self, after);
  np_stream_request_flush_locked (self);
}

/* A write found the peer gone while the stream closes: the goodbye the
 * peer left in the socket, if any, when this thread may read it (it
 * holds the context, or takes it: nothing else reads then). */
static GError *
np_stream_goodbye_of_hangup_locked (NpStream *self)
{
  GError *goodbye = NULL;
  gboolean acquired = FALSE;

  NP_STREAM_ENSURE_LOCKED (self);

  if (g_main_context_is_owner (self->context) ||
      (acquired = g_main_context_acquire (self->context)))
    {
      goodbye = np_stream_read_goodbye_locked (self);
      if (acquired)
        g_main_context_release (self->context);
    }

  return goodbye;
}

/* Takes the stream as far as what was written allows: a closing stream
 * whose queue is out closes, a write failure ends it. */
void
np_stream_settle_locked (NpStream      *self,
                         NpStreamAfter *after)
{
  NP_STREAM_ENSURE_LOCKED (self);
  NP_STREAM_ASSERT_STATE (self, NP_STREAM_IN (NP_STREAM_HANDSHAKE) | NP_STREAM_IN (NP_STREAM_OPEN) |
                                NP_STREAM_IN (NP_STREAM_CLOSING));

  /* Closing normally, with nothing left to send but the goodbye. */
  if (self->state == NP_STREAM_CLOSING && self->abort_error == NULL &&
      self->write_error == NULL && !self->goodbye_queued &&
      np_stream_closing_done_locked (self))
    {
      np_stream_queue_goodbye_locked (self);
      if (!self->want_out)
        np_stream_write_some_locked (self);
    }

  if (self->state == NP_STREAM_CLOSING && self->abort_error != NULL)
    {
      if (self->write_error != NULL || np_stream_all_written_locked (self))
        np_stream_finish_locked (self, self->abort_error, after);
    }
  else if (self->state == NP_STREAM_CLOSING)
    {
      if (self->write_error != NULL)
        {
          g_autoptr(GError) goodbye = NULL;

          if (!self->peer_eof && np_stream_write_error_is_hangup (self))
            goodbye = np_stream_goodbye_of_hangup_locked (self);
          self->peer_said_why = goodbye != NULL;

          /* After the peer's end of stream, a peer that stops reading has
           * closed as it meant to; one that said why it went away did so
           * for that reason. */
          np_stream_finish_locked (self, self->peer_eof ? NULL
                                         : goodbye != NULL ? goodbye : self->write_error,
                                   after);
        }
      else if (np_stream_closing_done_locked (self))
        np_stream_finish_locked (self, NULL, after);
    }
  else if (self->state <= NP_STREAM_OPEN && self->write_error != NULL &&
           !np_stream_write_error_is_hangup (self))
    np_stream_finish_locked (self, self->write_error, after);

  /* On a hang-up while open, reading finds the end and reports it. */

  np_stream_collect_writes_locked (self, after);
}

/* The deadline of the handshake, or of a close */
static void
np_stream_deadline_cb (NpPollerTimer *timer,
                       gpointer       data)
{
  NpStream *self = data;
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  g_autoptr(GError) error = NULL;
  gboolean ours;

  g_mutex_lock (self->lock);
  /* Another thread may have replaced it while this ran. */
  ours = self->deadline == timer;
  if (ours)
    np_stream_clear_timer (&self->deadline);
  g_mutex_unlock (self->lock);

  /* The hello may be waiting in the socket, unread because the context
   * did not run (the application was busy): read before giving up, unless
   * a handler of this stream's messages is what runs the context now. */
  if (ours && np_stream_get_state (self) == NP_STREAM_HANDSHAKE && !self->reading)
    np_stream_poll_once (self, 0, NULL);

  g_mutex_lock (self->lock);
  if (ours)
    {
      if (self->state == NP_STREAM_HANDSHAKE)
        {
          error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                       _("the peer did not complete the handshake in time"));
          np_stream_abort_locked (self, error, &after);
        }
      else if (self->state == NP_STREAM_CLOSING && self->deadline == NULL)
        {
          gint64 left = self->stall_until - g_get_monotonic_time ();

          if (left > 0)
            np_stream_set_deadline_locked (self, (left + 999) / 1000);
          else if (self->abort_error != NULL)
            np_stream_finish_locked (self, self->abort_error, &after);
          else
            {
              error = np_stream_stalled_error_new (self);
              np_stream_finish_locked (self, error, &after);
            }
        }
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);
}

gboolean
np_stream_check_send_locked (NpStream       *self,
                             gsize           len,
                             NpStreamAfter  *after,
                             GError        **error)
{
  guint64 max_queued_bytes;
  guint64 queued;

  NP_STREAM_ENSURE_LOCKED (self);

  /* After a hang-up on the write side, reading soon reports the end. */
  if (self->state > NP_STREAM_OPEN || self->write_error != NULL)
    {
      g_propagate_error (error, np_stream_ended_error_new (self));
      return FALSE;
    }

  if (self->peer_known && len > self->peer_max_message_size)
    {
      g_propagate_error (error, np_stream_too_large_error_new (self, len));
      return FALSE;
    }

  queued = np_out_queue_get_size (&self->out) + self->parked_bytes;
  max_queued_bytes = np_stream_limit (self, NP_LIMIT_MAX_QUEUED_BYTES);
  if (max_queued_bytes > 0 &&
      queued + NP_FRAME_HEADER_SIZE + len > max_queued_bytes)
    {
      GError *full;

      full = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                                  _("the peer does not keep up: %" PRIu64 " bytes are "
                                    "queued to it, and %zu more would pass the "
                                    "limit of %" PRIu64),
                                  queued, len, max_queued_bytes);

      /* Reported from the context, never from inside send(). A server
       * drops a client that does not keep up; a client's send fails. */
      if (!self->client_end)
        np_stream_abort_locked (self, full, after);

      g_propagate_error (error, full);
      return FALSE;
    }

  return TRUE;
}

static gboolean
np_stream_begin_close_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  /* The application closes: answers it did not give are not awaited. */
  self->awaiting_answers = FALSE;
  if (self->state > NP_STREAM_OPEN)
    return FALSE;
  NP_STREAM_ASSERT_STATE (self, NP_STREAM_IN (NP_STREAM_HANDSHAKE) | NP_STREAM_IN (NP_STREAM_OPEN));

  np_stream_set_state (self, NP_STREAM_CLOSING);
  np_stream_update_events_locked (self);
  np_stream_set_deadline_locked (self, np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT));

  return TRUE;
}

/* Stops reading, writes out what is queued from the context, then
 * reports a clean close; the close timeout bounds it. Reports before
 * returning when nothing is queued and this thread may. */
void
np_stream_close (NpStream *self)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  if (np_stream_begin_close_locked (self))
    {
      np_stream_write_some_locked (self);
      np_stream_settle_locked (self, &after);
      np_stream_request_flush_locked (self);
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);
}

/* A close_async() cancelled: the stream closes at once, dropping what
 * is still queued. */
static void
np_stream_close_cancelled_cb (GCancellable *cancellable,
                              gpointer      data)
{
  NpCancelData *cancel = data;
  NpStream *self = cancel->stream;
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  NpOp *op;

  g_mutex_lock (self->lock);
  op = np_stream_take_op_locked (self, cancel->task);
  if (op != NULL)
    {
      g_assert (op->kind == NP_OP_CLOSE);
      if (self->state != NP_STREAM_CLOSED)
        {
          g_autoptr(GError) error = NULL;
          guint64 dropped = np_out_queue_get_size (&self->out);

          if (dropped > 0)
            error = np_stream_error_new (self, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                         _("the close was cancelled: %" PRIu64
                                           " queued bytes were dropped"), dropped);
          np_stream_finish_locked (self, error, &after);
        }
      np_op_cancel_soon (op);
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);
}

void
np_stream_close_async (NpStream *self,
                       GTask    *task)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  if (self->state == NP_STREAM_CLOSED)
    {
      g_mutex_unlock (self->lock);
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_queue_push_tail (&self->closers, np_op_new (NP_OP_CLOSE, task));
  if (np_stream_begin_close_locked (self))
    {
      np_stream_write_some_locked (self);
      np_stream_settle_locked (self, &after);
      np_stream_request_flush_locked (self);
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);
  np_stream_watch_cancellable (self, task, G_CALLBACK (np_stream_close_cancelled_cb));
}

/* Writes out what is queued, blocking this thread for at most the close
 * timeout, then closes and reports. Fails when something queued was not
 * written. Cancelling closes at once, dropping what is still queued, as
 * np_stream_close_async() does, and fails with G_IO_ERROR_CANCELLED. */
gboolean
np_stream_close_sync (NpStream      *self,
                      GCancellable  *cancellable,
                      GError       **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  guint close_timeout = np_stream_limit (self, NP_LIMIT_CLOSE_TIMEOUT);
  gboolean cancelled = FALSE;
  gboolean ret;

  g_mutex_lock (self->lock);

  self->stall_until = g_get_monotonic_time () + close_timeout * G_TIME_SPAN_MILLISECOND;

  /* What waits for the peer's handshake (requests, messages with
   * descriptors) goes out once it completes: a caller without a main
   * loop (connect, send, close) waits for it here, within the close
   * timeout, when it may read for the context. */
  while (self->state == NP_STREAM_HANDSHAKE && !g_queue_is_empty (&self->parked) &&
         g_main_context_acquire (self->context))
    {
      gint64 left = self->stall_until - g_get_monotonic_time ();

      g_mutex_unlock (self->lock);
      if (close_timeout == 0 || left > 0)
        cancelled = !np_stream_poll_once (self, close_timeout == 0 ? -1 : (gint) ((left + 999) / 1000),
                                          cancellable);
      g_main_context_release (self->context);
      g_mutex_lock (self->lock);

      if (cancelled)
        break;

      if (close_timeout > 0 && left <= 0)
        break;
    }

  self->awaiting_answers = FALSE;
  if (self->state <= NP_STREAM_OPEN)
    {
      np_stream_set_state (self, NP_STREAM_CLOSING);
      np_stream_update_events_locked (self);
      np_stream_clear_timer (&self->deadline);
    }

  self->stall_until = g_get_monotonic_time () + close_timeout * G_TIME_SPAN_MILLISECOND;

  while (self->state == NP_STREAM_CLOSING)
    {
      gint64 left = -1;

      np_stream_write_some_locked (self);
      np_stream_settle_locked (self, &after);
      if (self->state == NP_STREAM_CLOSED)
        break;

      if (cancelled || g_cancellable_is_cancelled (cancellable))
        {
          g_autoptr(GError) dropped = NULL;
          guint64 size = np_out_queue_get_size (&self->out);

          cancelled = TRUE;
          if (size > 0)
            dropped = np_stream_error_new (self, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           _("the close was cancelled: %" PRIu64
                                             " queued bytes were dropped"), size);
          np_stream_finish_locked (self, dropped, &after);
          break;
        }

      if (close_timeout > 0)
        {
          left = self->stall_until - g_get_monotonic_time ();
          if (left <= 0)
            {
              g_autoptr(GError) stalled = np_stream_stalled_error_new (self);

              np_stream_finish_locked (self, stalled, &after);
              break;
            }
        }

      if (!np_stream_wait_writable_locked (self, left < 0 ? -1 : (gint) ((left + 999) / 1000),
                                           cancellable, NULL))
        cancelled = TRUE;
    }

  ret = self->error == NULL && !cancelled;
  if (cancelled)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                         _("Operation was cancelled"));
  else if (!ret)
    g_propagate_error (error, g_error_copy (self->error));
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);

  return ret;
}

/* Has the context's thread run the stream's I/O, once: not before the
 * stream is started or aborted, so that it never reads the peer's hello
 * while its creator still sets it up. Fails when the poller cannot take
 * the descriptor (the process has none left for an epoll instance). */
gboolean
np_stream_start_watch_locked (NpStream  *self,
                              GError   **error)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->io_watch != NULL)
    return np_poller_watch_start (self->io_watch, error);

  return TRUE;
}

/* Ends the stream because of @error, telling the peer why. */
void
np_stream_abort (NpStream     *self,
                 const GError *error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  /* Whether or not the watch starts, the stream ends: at worst without
   * its goodbye, at its close deadline. */
  np_stream_start_watch_locked (self, NULL);
  np_stream_abort_locked (self, error, &after);
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);
}

/* Closed, and its end reported: it no longer calls its owner. */
gboolean
np_stream_is_done_locked (NpStream *self)
{
  NP_STREAM_ENSURE_LOCKED (self);

  return self->state == NP_STREAM_CLOSED && !self->report_pending;
}
