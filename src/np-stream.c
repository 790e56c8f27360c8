/* np-stream.c: a stream as its owner holds it: creation, settings,
 * sending, and what runs when the transport is ready
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

#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* The top of the stream (src/README.md, "The stream"): it may call every
 * other file of it, and none calls it. Threads: every function here may
 * be called from any thread. The lock guards the stream's state; it is
 * never held while calling the owner or completing a task, so those may
 * call back in. */

typedef struct
{
  GSource   source;
  NpStream *stream;
} NpStreamSource;

static const NpFlushLinkFuncs np_stream_flush_funcs;
static GSourceFuncs np_stream_io_funcs;

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

  NP_STREAM_ENSURE_LOCKED (self);

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

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);

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
  after.finished = self->report_pending;
  after.drained = self->drained_pending;
  self->drained_pending = FALSE;
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_DISPATCH);
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
  self->handle_io = np_stream_handle_io_locked;
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

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);
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
  NP_STREAM_ENSURE_LOCKED (self);

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
  NP_STREAM_ENSURE_LOCKED (self);

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
  NP_STREAM_ENSURE_LOCKED (self);

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
  NP_STREAM_ENSURE_LOCKED (self);

  np_out_queue_set_mirror (&self->out, mirror);
}

void
np_stream_set_queue_limit_locked (NpStream *self,
                                  guint64   max_queued_bytes,
                                  gboolean  drop_when_full)
{
  NP_STREAM_ENSURE_LOCKED (self);

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
  NP_STREAM_ENSURE_LOCKED (self);

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
/* Queues @message, for @op (a send_async) when given, which then knows
 * where its frame lies. Behind a request waiting for the peer's hello,
 * it waits too, to keep its place: returns TRUE then, and @op is the
 * waiting message's. */
static gboolean
np_stream_queue_message_at_locked (NpStream *self,
                                   GBytes   *message,
                                   NpOp     *op)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (np_stream_park_locked (self, message, op, FALSE))
    return TRUE;

  np_stream_queue_message_locked (self, message, op);
  return FALSE;
}

gboolean
np_stream_send_locked (NpStream  *self,
                       GBytes    *message,
                       GError   **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  NP_STREAM_ENSURE_LOCKED (self);

  if (!np_stream_check_send_locked (self, g_bytes_get_size (message), &after, error))
    {
      np_stream_after (self, &after, NP_STREAM_AFTER_DEFER);
      return FALSE;
    }

  np_stream_queue_message_at_locked (self, message, NULL);
  return TRUE;
}

/* Queues a message the owner held while it had no connection: that
 * queue had the same bound, so this one's is not checked again. */
gboolean
np_stream_send_held_locked (NpStream  *self,
                            GBytes    *message,
                            GError   **error)
{
  gsize len = g_bytes_get_size (message);

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->state > NP_STREAM_OPEN || self->write_error != NULL)
    {
      g_propagate_error (error, np_stream_closed_error_new (self));
      return FALSE;
    }

  if (self->peer_known && len > self->peer_max_message_size)
    {
      g_propagate_error (error, np_stream_too_large_error_new (self, len));
      return FALSE;
    }

  np_stream_queue_message_at_locked (self, message, NULL);
  return TRUE;
}

/* Queues @message with @fds (1 to NP_FDS_MAX descriptors), which go
 * with it over SCM_RIGHTS; a reference to @fds is kept until they are
 * written. Until the peer's handshake is complete, it waits, as a
 * request does: only then is it known whether the peer takes
 * descriptors, and how many (its settings, from version 4 on). */
gboolean
np_stream_send_with_fds_locked (NpStream     *self,
                                GBytes       *message,
                                GUnixFDList  *fds,
                                GError      **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  guint n_fds = g_unix_fd_list_get_length (fds);

  NP_STREAM_ENSURE_LOCKED (self);

  g_assert (n_fds > 0);

  if (!np_stream_check_send_locked (self, g_bytes_get_size (message), &after, error))
    {
      np_stream_after (self, &after, NP_STREAM_AFTER_DEFER);
      return FALSE;
    }

  if (!np_stream_check_fds_locked (self, n_fds, error))
    return FALSE;

  if (!np_stream_park_fds_locked (self, message, fds))
    np_stream_queue_message_with_fds_locked (self, message, fds);

  return TRUE;
}

gboolean
np_stream_send_with_fds (NpStream     *self,
                         GBytes       *message,
                         GUnixFDList  *fds,
                         GError      **error)
{
  gboolean ret;

  g_mutex_lock (self->lock);
  ret = np_stream_send_with_fds_locked (self, message, fds, error);
  g_mutex_unlock (self->lock);

  return ret;
}

gboolean
np_stream_send (NpStream  *self,
                GBytes    *message,
                GError   **error)
{
  gboolean ret;

  g_mutex_lock (self->lock);
  ret = np_stream_send_locked (self, message, error);
  g_mutex_unlock (self->lock);

  return ret;
}

/* Queues @message and reports through @task once it is written. */
void
np_stream_send_async (NpStream *self,
                      GBytes   *message,
                      GTask    *task)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  GError *error = NULL;
  NpOp *op;

  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (self->lock);
  if (!np_stream_check_send_locked (self, g_bytes_get_size (message), &after, &error))
    {
      g_mutex_unlock (self->lock);
      np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);
      g_task_return_error (task, error);
      return;
    }

  op = np_op_new (NP_OP_WRITE, task);
  if (!np_stream_queue_message_at_locked (self, message, op))
    g_queue_push_tail (&self->writes, op);
  /* It may be written already: the flusher reports it. */
  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
  g_mutex_unlock (self->lock);

  np_stream_watch_cancellable (self, task, NULL);
}

gboolean
np_stream_send_held (NpStream  *self,
                     GBytes    *message,
                     GError   **error)
{
  gboolean ret;

  g_mutex_lock (self->lock);
  ret = np_stream_send_held_locked (self, message, error);
  g_mutex_unlock (self->lock);

  return ret;
}

gboolean
np_stream_is_done (NpStream *self)
{
  gboolean ret;

  g_mutex_lock (self->lock);
  ret = np_stream_is_done_locked (self);
  g_mutex_unlock (self->lock);

  return ret;
}
