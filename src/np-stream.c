/* np-stream.c: the state, the write side and the calls of a stream
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "np-context-private.h"
#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* Threads: every function here may be called from any thread. The lock
 * guards the stream's state; it is never held while calling the owner or
 * completing a task, so those may call back in. What only the context's
 * thread touches (the read side) lives in np-stream-read.c; the write
 * side and the calls that wait on it in np-stream-write.c. */

typedef struct
{
  GSource   source;
  NpStream *stream;
} NpStreamSource;

static const NpFlushLinkFuncs np_stream_flush_funcs;
static GSourceFuncs np_stream_io_funcs;

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

void
np_stream_set_state (NpStream      *self,
                     NpStreamState  state)
{
  static const gboolean legal[4][4] = {
    /*                      HANDSHAKE OPEN   CLOSING CLOSED */
    [NP_STREAM_HANDSHAKE] = { FALSE,  TRUE,  TRUE,   TRUE },
    [NP_STREAM_OPEN]      = { FALSE,  FALSE, TRUE,   TRUE },
    [NP_STREAM_CLOSING]   = { FALSE,  FALSE, FALSE,  TRUE },
    [NP_STREAM_CLOSED]    = { FALSE,  FALSE, FALSE,  FALSE },
  };

  g_assert (legal[self->state][state]);
  g_atomic_int_set ((gint *) &self->state, state);
}

void
np_stream_update_events_locked (NpStream *self)
{
  GIOCondition events = 0;

  if (self->state <= NP_STREAM_OPEN)
    events |= G_IO_IN;
  if (self->want_out)
    events |= G_IO_OUT;

  if (events != self->events)
    {
      self->events = events;
      /* Wakes the context up when another thread runs it. */
      if (self->fd_tag != NULL)
        g_source_modify_unix_fd (self->io_source, self->fd_tag, events);
    }
}

/* Sources and reporting */

void
np_stream_destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
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

static gboolean np_stream_deadline_cb (gpointer data);

/* Arms the handshake deadline, or (closing) the one by which the peer
 * must have read something. */
void
np_stream_set_deadline_locked (NpStream *self,
                               guint     timeout_msec)
{
  np_stream_destroy_source (&self->deadline);

  if (timeout_msec == 0 || self->state == NP_STREAM_CLOSED)
    return;

  if (self->state == NP_STREAM_CLOSING)
    self->stall_until = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;

  self->deadline = g_timeout_source_new (timeout_msec);
  g_source_set_static_name (self->deadline, "[np] pipe deadline");
  g_source_set_callback (self->deadline, np_stream_deadline_cb,
                         np_stream_ref (self), (GDestroyNotify) np_stream_unref);
  g_source_attach (self->deadline, self->context);
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

  np_stream_destroy_source (&self->deadline);
  if (self->io_source != NULL)
    {
      self->fd_tag = NULL;
      np_stream_destroy_source (&self->io_source);
    }

  np_out_queue_clear (&self->out);
  closed = error != NULL ? g_error_copy (error)
                         : np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                                _("the pipe closed first"));
  np_stream_fail_ops_locked (&self->writes, closed, after);
  np_stream_fail_ops_locked (&self->pings, closed, after);
  np_stream_fail_requests_locked (self, closed, after);
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

  if (self->write_error != NULL || np_out_queue_is_empty (&self->out) ||
      self->close_timeout == 0)
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
  np_stream_set_deadline_locked (self, self->close_timeout);
  np_stream_request_flush_locked (self);
}

/* The peer's hello arrived: from version 4 on, the stream opens once
 * the peer's settings follow, and ours go out now. */
void
np_stream_hello_locked (NpStream      *self,
                        guint8         version,
                        guint32        peer_max_message_size,
                        NpStreamAfter *after)
{
  /* Another thread may have closed it since the hello was read. */
  if (self->state != NP_STREAM_HANDSHAKE)
    return;

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
      return;
    }

  np_stream_opened_locked (self, after);
}

/* The peer's handshake is complete: what waited for it goes out. */
void
np_stream_opened_locked (NpStream      *self,
                         NpStreamAfter *after)
{
  if (self->state != NP_STREAM_HANDSHAKE)
    return;

  self->peer_ready = TRUE;
  np_stream_set_state (self, NP_STREAM_OPEN);
  np_stream_destroy_source (&self->deadline);
  np_stream_unpark_locked (self, after);
}

/* The peer ended its side at a frame boundary: it sends nothing more,
 * but may still read what we queued, which goes out (within the close
 * timeout) before the stream closes, and the answers to its requests
 * that the application still owes, which it may give later. */
void
np_stream_peer_ended_locked (NpStream      *self,
                             NpStreamAfter *after)
{
  if (self->state > NP_STREAM_OPEN)
    return;

  self->peer_eof = TRUE;
  self->awaiting_answers = TRUE;

  np_stream_set_state (self, NP_STREAM_CLOSING);
  np_stream_update_events_locked (self);
  np_stream_set_deadline_locked (self, self->close_timeout);
  np_stream_settle_locked (self, after);
  np_stream_request_flush_locked (self);
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

/* A write found the peer gone while the stream closes: the goodbye the
 * peer left in the socket, if any, when this thread may read it (it
 * holds the context, or takes it: nothing else reads then). */
static GError *
np_stream_goodbye_of_hangup_locked (NpStream *self)
{
  GError *goodbye = NULL;
  gboolean acquired = FALSE;

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
      if (self->write_error != NULL || np_out_queue_is_empty (&self->out))
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

gboolean
np_stream_needs_dispatch_locked (NpStream *self)
{
  NpOp *op = g_queue_peek_head (&self->writes);

  if (self->deferred.length > 0 || self->drained_pending)
    return TRUE;

  if (self->state == NP_STREAM_CLOSED)
    return self->report_pending;

  return (op != NULL && (op->end <= self->out.written || self->write_error != NULL)) ||
         (self->state == NP_STREAM_CLOSING &&
          (self->write_error != NULL || np_stream_closing_done_locked (self))) ||
         (self->write_error != NULL && !np_stream_write_error_is_hangup (self));
}

static void
np_stream_report (NpStream *self)
{
  g_autoptr(GError) error = NULL;
  GObject *owner = NULL;
  gpointer held = NULL;

  g_mutex_lock (self->lock);
  if (self->report_pending && self->owner != NULL)
    {
      self->report_pending = FALSE;
      owner = g_object_ref (self->owner);
      error = self->error != NULL ? g_error_copy (self->error) : NULL;
    }
  g_mutex_unlock (self->lock);

  if (owner == NULL)
    return;

  /* The end is reported from the context, where the read side lives:
   * descriptors received and not delivered go now, not when the last
   * reference does. */
  if (self->reading == 0)
    np_stream_clear_partial (self);

  if (self->callbacks->enter != NULL)
    held = self->callbacks->enter (owner);
  self->callbacks->closed (owner, self, error);
  if (self->callbacks->leave != NULL)
    self->callbacks->leave (owner, held);
  g_object_unref (owner);
}

/* Tells the owner that the queue drained, unless the stream closed
 * meanwhile. From the context's dispatch. */
static void
np_stream_report_drained (NpStream *self)
{
  GObject *owner = NULL;
  gpointer held = NULL;

  g_mutex_lock (self->lock);
  if (self->owner != NULL && self->state != NP_STREAM_CLOSED)
    owner = g_object_ref (self->owner);
  g_mutex_unlock (self->lock);

  if (owner == NULL)
    return;

  if (self->callbacks->enter != NULL)
    held = self->callbacks->enter (owner);
  self->callbacks->drained (owner, self);
  if (self->callbacks->leave != NULL)
    self->callbacks->leave (owner, held);
  g_object_unref (owner);
}

/* Reports now when this thread owns the stream's context (it iterates
 * it), or is that context's own thread and nobody iterates it now;
 * otherwise from that context. A worker that pushed no context must not
 * run the owner's handlers because it could take the global default
 * one (see np_context_acquire_here()). */
static void
np_stream_report_soon (NpStream *self,
                       gboolean  may_report)
{
  if (may_report && np_context_acquire_here (self->context))
    {
      np_stream_report (self);
      g_main_context_release (self->context);
      return;
    }

  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
}

/* Completes what a locked stretch left done, then reports the end of the
 * stream if it came: now when @may_report and this thread may, or from
 * the context. Called with no lock held. */
void
np_stream_after (NpStream      *self,
                 NpStreamAfter *after,
                 gboolean       may_report)
{
  NpOp *op;

  while ((op = g_queue_pop_head (&after->done)) != NULL)
    np_op_complete (op);

  if (after->finished)
    {
      after->finished = FALSE;
      np_stream_report_soon (self, may_report);
    }
}

GError *
np_stream_stalled_error_new (NpStream *self)
{
  if (np_out_queue_is_empty (&self->out))
    return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                _("%u requests of the peer were still unanswered %u ms after "
                                  "it ended its side of the connection"),
                                self->n_unanswered, self->close_timeout);

  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                              _("%" PRIu64 " bytes queued to the peer were dropped: "
                                "it read nothing for %u ms while the connection closed"),
                              np_out_queue_get_size (&self->out), self->close_timeout);
}

/* The deadline of the handshake, or of a close */
static gboolean
np_stream_deadline_cb (gpointer data)
{
  NpStream *self = data;
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  g_autoptr(GError) error = NULL;
  gboolean ours;

  g_mutex_lock (self->lock);
  /* Another thread may have replaced it while this ran. */
  ours = self->deadline == g_main_current_source ();
  if (ours)
    g_clear_pointer (&self->deadline, g_source_unref);
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

  np_stream_after (self, &after, TRUE);

  return G_SOURCE_REMOVE;
}

/* A handler runs a main loop of its own while a buffer is delivered:
 * the frames left of it are ready now, whether or not the socket is
 * (they may be what the handler waits for). The source is made ready
 * for as long as frames are left after the one being delivered, once a
 * buffer: a prepare function would cost every main loop iteration a call
 * per connection. */
void
np_stream_set_rest_ready (NpStream *self,
                          gboolean  ready)
{
  self->rest_ready = ready;
  g_mutex_lock (self->lock);
  if (self->io_source != NULL)
    g_source_set_ready_time (self->io_source, ready ? 0 : -1);
  g_mutex_unlock (self->lock);
}

/* The socket is readable or writable */
/* Handles what the transport is ready for (@revents): writes, then
 * reads and delivers. Called with the lock held, which it drops; from the
 * I/O source's dispatch (@source), or by a thread that holds the context
 * and waits for a reply itself (NULL). */
static void
np_stream_handle_io_locked (NpStream     *self,
                            GIOCondition  revents,
                            GSource      *source)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  GObject *owner = NULL;
  gpointer held = NULL;

  if (self->owner != NULL)
    owner = g_object_ref (self->owner);
  self->transport_users++;

  if (revents & G_IO_OUT)
    {
      self->want_out = FALSE;
      np_stream_write_some_locked (self);
    }
  else if ((revents & (G_IO_HUP | G_IO_ERR)) && self->state == NP_STREAM_CLOSING)
    np_stream_write_some_locked (self);

  g_mutex_unlock (self->lock);

  if (owner != NULL && self->callbacks->enter != NULL)
    held = self->callbacks->enter (owner);

  if (np_stream_get_state (self) <= NP_STREAM_OPEN &&
      ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) || np_stream_has_rest (self)))
    {
      self->reading++;
      np_stream_read (self, owner, &after);
      self->reading--;
    }

  if (np_stream_get_state (self) > NP_STREAM_OPEN)
    np_stream_clear_partial (self);

  g_mutex_lock (self->lock);
  self->transport_users--;
  if (source != NULL && self->fd_tag == NULL && self->io_source == source)
    self->fd_tag = g_source_add_unix_fd (source, self->transport->fd, self->events);
  if (self->state != NP_STREAM_CLOSED)
    np_stream_settle_locked (self, &after);
  np_stream_release_transport_locked (self);
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, TRUE);

  if (owner != NULL)
    {
      if (self->callbacks->leave != NULL)
        self->callbacks->leave (owner, held);
      g_object_unref (owner);
    }
}

/* The socket is readable or writable */
static gboolean
np_stream_io_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  NpStream *self = ((NpStreamSource *) source)->stream;
  GIOCondition revents;

  g_mutex_lock (self->lock);

  if (self->io_source != source || self->fd_tag == NULL)
    {
      g_mutex_unlock (self->lock);
      return G_SOURCE_CONTINUE;
    }

  revents = g_source_query_unix_fd (source, self->fd_tag);

  /* A handler may run a main loop of its own while messages are
   * delivered: the nested read delivers the rest of the outer one's
   * buffer before reading more (np_stream_read()), so the order holds. */
  np_stream_handle_io_locked (self, revents, source);

  return G_SOURCE_CONTINUE;
}

/* Waits for the transport, at most @timeout_msec (-1: no limit) or until
 * @cancellable is cancelled, then handles what it is ready for, as the
 * I/O source would. For a thread that holds the stream's context and
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
   * they are ready now (see np_stream_io_prepare()). */
  rest = np_stream_has_rest (self) && self->state <= NP_STREAM_OPEN;
  if (rest)
    timeout_msec = 0;
  g_mutex_unlock (self->lock);

  if (g_cancellable_make_pollfd (cancellable, &fds[1]))
    n_fds++;

  do
    res = g_poll (fds, n_fds, timeout_msec);
  while (res < 0 && errno == EINTR);

  if (n_fds > 1)
    g_cancellable_release_fd (cancellable);

  g_mutex_lock (self->lock);
  self->transport_users--;
  if (((res > 0 && fds[0].revents != 0) || rest) && self->state != NP_STREAM_CLOSED)
    np_stream_handle_io_locked (self, res > 0 ? fds[0].revents : 0, NULL);
  else
    {
      np_stream_release_transport_locked (self);
      g_mutex_unlock (self->lock);
    }

  return !g_cancellable_is_cancelled (cancellable);
}

/* Blocking calls of the owner */

/* As a blocking request: a thread that took the stream's context for
 * itself keeps it this long between looks at whether another thread
 * wants it, then leaves it this long to that thread; a context iterated
 * this recently has a thread that runs it, and reads for us. */
#define NP_BLOCK_SLICE_MSEC   50
#define NP_BLOCK_YIELD_MSEC   5
#define NP_BLOCK_RUNNING_MSEC 200

void
np_stream_wait_init (NpStreamWait *wait)
{
  g_mutex_init (&wait->mutex);
  g_cond_init (&wait->cond);
  wait->done = FALSE;
  wait->error = NULL;
}

void
np_stream_wait_clear (NpStreamWait *wait)
{
  /* The thread that ended the wait may still be inside its unlock (the
   * waiter saw done as soon as it let go): taking the mutex once more
   * waits until it is out, before the mutex goes with the waiter's
   * stack. */
  g_mutex_lock (&wait->mutex);
  g_mutex_unlock (&wait->mutex);
  g_mutex_clear (&wait->mutex);
  g_cond_clear (&wait->cond);
  g_clear_error (&wait->error);
}

/* Ends @wait, with @error (NULL: success); once. */
void
np_stream_wait_done (NpStreamWait *wait,
                     const GError *error)
{
  g_mutex_lock (&wait->mutex);
  g_assert (!wait->done);
  wait->error = error != NULL ? g_error_copy (error) : NULL;
  wait->done = TRUE;
  g_cond_broadcast (&wait->cond);
  g_mutex_unlock (&wait->mutex);
}

gboolean
np_stream_wait_is_done (NpStreamWait *wait)
{
  gboolean done;

  g_mutex_lock (&wait->mutex);
  done = wait->done;
  g_mutex_unlock (&wait->mutex);

  return done;
}

static void
np_stream_wait_cancelled (GCancellable *cancellable,
                          gpointer      data)
{
  NpStreamWait *wait = data;

  g_mutex_lock (&wait->mutex);
  g_cond_broadcast (&wait->cond);
  g_mutex_unlock (&wait->mutex);
}

/* Sleeps until @wait is done, @cancellable cancelled, @msec passed or
 * @deadline (-1: none) came. */
static void
np_stream_wait_for (NpStreamWait *wait,
                    GCancellable *cancellable,
                    guint         msec,
                    gint64        deadline)
{
  g_mutex_lock (&wait->mutex);
  if (!wait->done && !g_cancellable_is_cancelled (cancellable))
    {
      gint64 until = g_get_monotonic_time () + msec * G_TIME_SPAN_MILLISECOND;

      if (deadline >= 0)
        until = MIN (until, deadline);
      g_cond_wait_until (&wait->cond, &wait->mutex, until);
    }
  g_mutex_unlock (&wait->mutex);
}

/* Blocks the calling thread until @wait is done (by the owner, from one
 * of its callbacks), @deadline (monotonic, -1: none) passes or
 * @cancellable is cancelled. It never iterates a main context: when no
 * other thread runs the stream's context, this thread reads the
 * transport itself, and reports what arrives as the context would;
 * otherwise it waits for that thread. Returns whether @wait is done. */
gboolean
np_stream_block (NpStream     *self,
                 NpStreamWait *wait,
                 gint64        deadline,
                 GCancellable *cancellable)
{
  gulong cancel_id = 0;

  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (np_stream_wait_cancelled),
                                       wait, NULL);

  while (!np_stream_wait_is_done (wait) && !g_cancellable_is_cancelled (cancellable))
    {
      gint64 left = deadline < 0 ? -1 : deadline - g_get_monotonic_time ();
      gboolean acquired = FALSE;
      gint msec;

      if (deadline >= 0 && left <= 0)
        break;
      msec = left < 0 ? -1 : (gint) MIN ((left + 999) / 1000, G_MAXINT);

      if (g_main_context_is_owner (self->context) ||
          (!np_flusher_context_is_running (self->flusher, NP_BLOCK_RUNNING_MSEC) &&
           (acquired = g_main_context_acquire (self->context))))
        {
          gboolean closed = np_stream_get_state (self) == NP_STREAM_CLOSED;

          /* Closed, its end perhaps not reported: this thread does it. */
          if (closed)
            np_stream_report (self);
          else
            np_stream_poll_once (self, acquired ? (msec < 0 ? NP_BLOCK_SLICE_MSEC
                                                            : MIN (msec, NP_BLOCK_SLICE_MSEC))
                                                : msec,
                                 cancellable);
          if (acquired)
            g_main_context_release (self->context);

          /* Nothing more will come from a closed stream. */
          if (closed)
            break;
          if (acquired)
            np_stream_wait_for (wait, cancellable, NP_BLOCK_YIELD_MSEC, deadline);
        }
      else
        np_stream_wait_for (wait, cancellable, 100, deadline);
    }

  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, cancel_id);

  return np_stream_wait_is_done (wait);
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

static void
np_stream_source_finalize (GSource *source)
{
  np_stream_unref (((NpStreamSource *) source)->stream);
}

static GSourceFuncs np_stream_io_funcs = {
  .dispatch = np_stream_io_dispatch,
  .finalize = np_stream_source_finalize,
};

/* The flusher */

static gboolean
np_stream_flush_prepare (NpFlushLink *link)
{
  NpStream *self = G_STRUCT_MEMBER_P (link, -G_STRUCT_OFFSET (NpStream, flush_link));
  gboolean quiet;

  g_mutex_lock (self->lock);
  self->flush_requested = FALSE;
  /* When the socket is full, the I/O source writes once it is writable. */
  if (self->state != NP_STREAM_CLOSED && !self->want_out)
    np_stream_write_some_locked (self);
  quiet = !np_stream_needs_dispatch_locked (self);
  g_mutex_unlock (self->lock);

  return quiet;
}

static void
np_stream_flush_dispatch (NpFlushLink *link)
{
  NpStream *self = G_STRUCT_MEMBER_P (link, -G_STRUCT_OFFSET (NpStream, flush_link));
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  gboolean drained;
  gboolean report;

  g_mutex_lock (self->lock);
  self->flush_requested = FALSE;
  after.done = self->deferred;
  g_queue_init (&self->deferred);
  if (self->state != NP_STREAM_CLOSED)
    {
      if (!self->want_out)
        np_stream_write_some_locked (self);
      np_stream_settle_locked (self, &after);
    }
  report = self->report_pending;
  drained = self->drained_pending;
  self->drained_pending = FALSE;
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, FALSE);
  if (drained)
    np_stream_report_drained (self);
  if (report)
    np_stream_report (self);
}

static void
np_stream_flush_ref (NpFlushLink *link)
{
  np_stream_ref (G_STRUCT_MEMBER_P (link, -G_STRUCT_OFFSET (NpStream, flush_link)));
}

static void
np_stream_flush_unref (NpFlushLink *link)
{
  np_stream_unref (G_STRUCT_MEMBER_P (link, -G_STRUCT_OFFSET (NpStream, flush_link)));
}

static const NpFlushLinkFuncs np_stream_flush_funcs = {
  .prepare = np_stream_flush_prepare,
  .dispatch = np_stream_flush_dispatch,
  .ref = np_stream_flush_ref,
  .unref = np_stream_flush_unref,
};

/* Life cycle */

/* A lock an owner shares with its streams, so that what it does with
 * them under its own lock costs no second one. */
GMutex *
np_stream_lock_new (void)
{
  GMutex *lock = g_atomic_rc_box_new0 (GMutex);

  g_mutex_init (lock);
  return lock;
}

GMutex *
np_stream_lock_ref (GMutex *lock)
{
  return g_atomic_rc_box_acquire (lock);
}

void
np_stream_lock_unref (GMutex *lock)
{
  g_atomic_rc_box_release_full (lock, (GDestroyNotify) g_mutex_clear);
}

/* A stream of @transport, reporting to @owner in @context. @lock, when
 * given, is the owner's, shared (see np_stream_lock_new()). */
NpStream *
np_stream_new (GObject                 *owner,
               const NpStreamCallbacks *callbacks,
               NpTransport             *transport,
               GMainContext            *context,
               GMutex                  *lock,
               const char              *label,
               guint32                  max_message_size)
{
  NpStream *self = g_new0 (NpStream, 1);
  guint8 hello[NP_HELLO_SIZE];

  g_atomic_ref_count_init (&self->ref_count);
  self->lock = lock != NULL ? np_stream_lock_ref (lock) : np_stream_lock_new ();
  self->owner = owner;
  self->callbacks = callbacks;
  self->transport = transport;
  self->context = g_main_context_ref (context);
  self->label = g_strdup (label);
  self->state = NP_STREAM_HANDSHAKE;
  self->max_message_size = max_message_size;
  self->high_water = G_MAXUINT64;
  self->flusher = np_flusher_acquire (context);
  self->flush_link.funcs = &np_stream_flush_funcs;
  np_out_queue_init (&self->out);
  g_queue_init (&self->writes);
  g_queue_init (&self->pings);
  g_queue_init (&self->closers);
  g_queue_init (&self->deferred);
  g_queue_init (&self->parked);
  g_queue_init (&self->fd_batches);
  self->max_fds = NP_STREAM_MAX_FDS_DEFAULT;
  self->max_pending_requests = NP_STREAM_MAX_PENDING_REQUESTS_DEFAULT;
  self->max_pending_request_bytes = NP_STREAM_MAX_PENDING_REQUEST_BYTES_DEFAULT;
  np_fd_budget_add_stream ();

  self->io_source = g_source_new (&np_stream_io_funcs, sizeof (NpStreamSource));
  ((NpStreamSource *) self->io_source)->stream = np_stream_ref (self);
  g_source_set_static_name (self->io_source, "[np] pipe I/O");
  /* Not blocked while dispatched: GLib would remove and add the socket to
   * the poll set, and wake itself up, for every read. Nested main loops
   * are handled in the dispatch function instead. */
  g_source_set_can_recurse (self->io_source, TRUE);
  self->events = G_IO_IN;
  self->fd_tag = g_source_add_unix_fd (self->io_source, transport->fd, self->events);
  g_source_attach (self->io_source, context);

  np_hello_encode (hello, max_message_size);
  np_out_queue_push_preamble (&self->out, hello, sizeof hello);

  return self;
}

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
  np_stream_lock_unref (self->lock);
  g_free (self);
}

/* Sends the hello and starts the handshake deadline. */
void
np_stream_start (NpStream *self)
{
  g_mutex_lock (self->lock);
  if (self->state == NP_STREAM_HANDSHAKE)
    {
      np_stream_write_some_locked (self);
      np_stream_set_deadline_locked (self, self->handshake_timeout);
      if (!np_out_queue_is_empty (&self->out) || self->write_error != NULL)
        np_stream_request_flush_locked (self);
    }
  g_mutex_unlock (self->lock);
}

/* The owner is going: close without reporting anything, after writing
 * what the socket takes without blocking. */
void
np_stream_detach (NpStream *self)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  self->owner = NULL;
  self->report_pending = FALSE;
  np_out_queue_set_mirror (&self->out, NULL);
  if (self->state != NP_STREAM_CLOSED)
    {
      if (self->abort_error == NULL)
        np_stream_queue_goodbye_locked (self);
      np_stream_write_some_locked (self);
      np_stream_finish_locked (self, NULL, &after);
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, FALSE);
}

void
np_stream_set_handshake_timeout (NpStream *self,
                                 guint     timeout_msec)
{
  g_mutex_lock (self->lock);
  self->handshake_timeout = timeout_msec;
  g_mutex_unlock (self->lock);
}

/* The most descriptors one message of the peer may carry, 1 to
 * NP_FDS_MAX: a peer that sends more is cut off. */
void
np_stream_set_max_fds_locked (NpStream *self,
                              guint     max_fds)
{
  g_assert (max_fds > 0 && max_fds <= NP_FDS_MAX);

  self->max_fds = max_fds;
}

void
np_stream_set_max_fds (NpStream *self,
                       guint     max_fds)
{
  g_mutex_lock (self->lock);
  np_stream_set_max_fds_locked (self, max_fds);
  g_mutex_unlock (self->lock);
}

/* Whether messages with descriptors may be sent: TRUE until the peer's
 * hello tells otherwise. */
gboolean
np_stream_get_supports_fds (NpStream *self)
{
  gboolean ret;

  g_mutex_lock (self->lock);
  ret = !self->peer_known || self->version >= NP_PROTOCOL_FDS;
  g_mutex_unlock (self->lock);

  return ret;
}

void
np_stream_set_close_timeout (NpStream *self,
                             guint     timeout_msec)
{
  g_mutex_lock (self->lock);
  self->close_timeout = timeout_msec;
  g_mutex_unlock (self->lock);
}

/* Half the limit and a quarter of it; with no limit, the queue is never
 * over half. A queue over half when the limit changes still reports
 * once it drains to the new quarter (when the limit is gone: empties). */
static void
np_stream_set_water_marks_locked (NpStream *self)
{
  self->high_water = self->max_queued_bytes > 0 ? self->max_queued_bytes / 2 : G_MAXUINT64;
  self->low_water = self->max_queued_bytes / 4;
}

void
np_stream_configure_locked (NpStream *self,
                            guint64   max_queued_bytes,
                            gboolean  drop_when_full,
                            guint     handshake_timeout,
                            guint     close_timeout,
                            guint     request_timeout)
{
  self->max_queued_bytes = max_queued_bytes;
  self->drop_when_full = !!drop_when_full;
  np_stream_set_water_marks_locked (self);
  self->handshake_timeout = handshake_timeout;
  self->close_timeout = close_timeout;
  self->request_timeout = request_timeout;
}

/* Bounds what may be queued to the peer (0: no bound). Past the bound,
 * send() fails; with @drop_when_full the stream also ends with that
 * error, freeing the queue. */
/* Has the stream keep what is queued in *@mirror (%NULL: nowhere), which
 * the owner then reads without a lock. */
void
np_stream_set_queued_mirror_locked (NpStream *self,
                                    gsize    *mirror)
{
  np_out_queue_set_mirror (&self->out, mirror);
}

void
np_stream_set_queue_limit_locked (NpStream *self,
                                  guint64   max_queued_bytes,
                                  gboolean  drop_when_full)
{
  self->max_queued_bytes = max_queued_bytes;
  self->drop_when_full = !!drop_when_full;
  np_stream_set_water_marks_locked (self);
}

void
np_stream_set_queue_limit (NpStream *self,
                           guint64   max_queued_bytes,
                           gboolean  drop_when_full)
{
  g_mutex_lock (self->lock);
  np_stream_set_queue_limit_locked (self, max_queued_bytes, drop_when_full);
  g_mutex_unlock (self->lock);
}

const char *
np_stream_get_label (NpStream *self)
{
  return self->label;
}

gboolean
np_stream_is_open (NpStream *self)
{
  return np_stream_get_state (self) <= NP_STREAM_OPEN;
}

#ifndef POLLRDHUP
# define POLLRDHUP 0
#endif

/* Counts the @n streams whose peers have closed their side: the end of
 * the stream was read, or waits in the socket unread (found by one poll()
 * for all of them, which reads nothing, so nothing is delivered out of
 * its turn), or the stream is over. Each such stream ends by itself
 * within its close timeout once its context reads on. */
guint
np_stream_count_peers_closed (NpStream * const *streams,
                              guint             n)
{
  g_autofree struct pollfd *fds = g_new (struct pollfd, n);
  g_autofree NpStream **held = g_new (NpStream *, n);
  guint n_held = 0;
  guint n_closed = 0;
  int res = 0;

  for (guint i = 0; i < n; i++)
    {
      NpStream *self = streams[i];

      g_mutex_lock (self->lock);
      if (self->state == NP_STREAM_CLOSED || self->peer_eof || self->transport == NULL)
        n_closed++;
      else
        {
          /* Keeps the descriptor open until the poll is over. */
          self->transport_users++;
          fds[n_held].fd = self->transport->fd;
          fds[n_held].events = POLLRDHUP;
          fds[n_held].revents = 0;
          held[n_held++] = self;
        }
      g_mutex_unlock (self->lock);
    }

  if (n_held > 0)
    {
      do
        res = poll (fds, n_held, 0);
      while (res < 0 && errno == EINTR);
    }

  for (guint i = 0; i < n_held; i++)
    {
      NpStream *self = held[i];

      if (res > 0 && (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
        n_closed++;

      g_mutex_lock (self->lock);
      self->transport_users--;
      np_stream_release_transport_locked (self);
      g_mutex_unlock (self->lock);
    }

  return n_closed;
}

/* Closed, and its end reported: it no longer calls its owner. */
gboolean
np_stream_is_done_locked (NpStream *self)
{
  return self->state == NP_STREAM_CLOSED && !self->report_pending;
}

/* 0 until the peer's hello arrived. */
guint32
np_stream_get_peer_max_message_size (NpStream *self)
{
  guint32 ret;

  g_mutex_lock (self->lock);
  ret = self->peer_known ? self->peer_max_message_size : 0;
  g_mutex_unlock (self->lock);

  return ret;
}

guint64
np_stream_get_queued_bytes_locked (NpStream *self)
{
  return np_out_queue_get_size (&self->out);
}

guint64
np_stream_get_queued_bytes (NpStream *self)
{
  guint64 ret;

  g_mutex_lock (self->lock);
  ret = np_out_queue_get_size (&self->out);
  g_mutex_unlock (self->lock);

  return ret;
}
