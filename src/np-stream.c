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

#include "np-connection-owner-private.h"
#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* The top of the stream (src/README.md, "The stream"): it may call every
 * other file of it, and none calls it. Threads: every function here may
 * be called from any thread. The lock guards the stream's state; it is
 * never held while calling the owner or completing a task, so those may
 * call back in. */

static const NpFlushLinkFuncs np_stream_flush_funcs;

/* The socket is readable or writable */

/* Handles what the transport is ready for (@revents): writes, then
 * reads and delivers. Called with the lock held, which it drops; from the
 * I/O watch's dispatch, or by a thread that holds the context and waits
 * for a reply itself. */
static void
np_stream_handle_io_locked (NpStream     *self,
                            GIOCondition  revents)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  NpStreamTarget target;

  NP_STREAM_ENSURE_LOCKED (self);

  /* The application may drop its last reference to either, from any
   * thread, while this runs. */
  np_stream_target_take_locked (self, &target);
  self->transport_users++;

  if (revents & G_IO_OUT)
    {
      self->want_out = FALSE;
      np_stream_write_some_locked (self);
    }
  else if ((revents & (G_IO_HUP | G_IO_ERR)) && self->state == NP_STREAM_CLOSING)
    np_stream_write_some_locked (self);

  g_mutex_unlock (self->lock);

  if (np_stream_get_state (self) <= NP_STREAM_OPEN &&
      ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) || np_stream_read_pending (self)))
    {
      self->reading++;
      np_stream_read (self, &target, &after);
      self->reading--;
    }

  if (np_stream_get_state (self) > NP_STREAM_OPEN)
    {
      np_stream_clear_partial (self);
      /* The frames left of a buffer whose handler runs a main loop are
       * never delivered now: the watch is no longer ready for them. */
      if (self->rest_ready)
        np_stream_set_rest_ready (self, FALSE);
      if (self->transport_ready)
        np_stream_set_transport_ready (self, FALSE);
    }

  g_mutex_lock (self->lock);
  self->transport_users--;
  /* What reading made the transport write (np-transport-tls.c). */
  if (G_UNLIKELY (self->transport != NULL && self->transport->wants_out) && !self->want_out)
    np_stream_write_some_locked (self);
  if (self->state != NP_STREAM_CLOSED)
    np_stream_settle_locked (self, &after);
  np_stream_release_transport_locked (self);
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);

  np_stream_target_release (&target);
}

/* The socket is readable or writable */
static void
np_stream_io_cb (NpPollerWatch *watch,
                 GIOCondition   revents,
                 gpointer       data)
{
  NpStream *self = data;

  g_mutex_lock (self->lock);

  /* Closed by another thread as the dispatch began. */
  if (self->io_watch != watch)
    {
      g_mutex_unlock (self->lock);
      return;
    }

  /* A handler may run a main loop of its own while messages are
   * delivered: the nested read delivers the rest of the outer one's
   * buffer before reading more (np_stream_read()), so the order holds. */
  np_stream_handle_io_locked (self, revents);
}

/* The flusher */

static gboolean
np_stream_flush_prepare (NpFlushLink *link)
{
  NpStream *self = G_STRUCT_MEMBER_P (link, -G_STRUCT_OFFSET (NpStream, flush_link));
  gboolean quiet;

  g_mutex_lock (self->lock);
  self->flush_requested = FALSE;
  /* When the socket is full, the I/O watch writes once it is writable. */
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

/* The private part of @connection (an NpPipeConnection), over
 * @transport, reporting to @owner (an NpConnectionOwner: the server or
 * client of @connection; %NULL for a stream that reports nothing) in
 * @context, with the limits and timeouts of @limits, which it reads
 * when it uses them. */
NpStream *
np_stream_new (GObject       *connection,
               GObject       *owner,
               NpTransport   *transport,
               GMainContext  *context,
               const char    *label,
               NpLimits      *limits,
               guint32        max_message_size,
               NpStreamFlags  flags)
{
  NpStream *self = g_new0 (NpStream, 1);
  guint8 hello[NP_HELLO_SIZE];

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (self->lock);
  self->connection = connection;
  self->owner = owner;
  self->owner_iface = owner != NULL ? NP_CONNECTION_OWNER_GET_IFACE (owner) : NULL;
  self->transport = transport;
  self->context = g_main_context_ref (context);
  self->label = g_strdup (label);
  self->limits = np_limits_ref (limits);
  self->state = NP_STREAM_HANDSHAKE;
  self->max_message_size = max_message_size;
  self->client_end = (flags & NP_STREAM_CLIENT_END) != 0;
  self->remote = (flags & NP_STREAM_REMOTE) != 0;
  self->max_fds = self->remote ? 0 : np_limits_get (limits, NP_LIMIT_MAX_FDS_PER_MESSAGE);
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
  np_fd_budget_add_stream ();

  self->events = G_IO_IN;
  self->io_watch = np_poller_watch_new (context, transport->fd, self->events,
                                        "[np] pipe I/O", np_stream_io_cb,
                                        np_stream_ref (self),
                                        (GDestroyNotify) np_stream_unref);
  /* Started once the stream is (or aborts): from then on the context's
   * thread reads, and the stream must be whole, and its connection's. */

  np_hello_encode (hello, max_message_size);
  np_out_queue_push_preamble (&self->out, hello, sizeof hello);
  /* What is queued, published for np_stream_get_queued_bytes(), which
   * takes no lock. */
  np_out_queue_set_mirror (&self->out, 0, &self->queued_bytes);

  return self;
}

/* Sends the hello and starts the handshake deadline: the peer's hello
 * and settings must arrive within @handshake_timeout ms (0: no
 * limit). */
void
np_stream_start (NpStream *self,
                 guint     handshake_timeout)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  g_autoptr(GError) error = NULL;
  gboolean watched;

  g_mutex_lock (self->lock);
  watched = np_stream_start_watch_locked (self, &error);
  /* What the TLS handshake left read and decrypted, if anything, shows
   * on no socket: read once whatever the socket says. */
  if (watched && self->transport != NULL && self->transport->buffers_reads && self->io_watch != NULL)
    {
      self->transport_ready = TRUE;
      np_poller_watch_set_ready (self->io_watch, TRUE);
    }
  if (self->state == NP_STREAM_HANDSHAKE)
    {
      self->connected = TRUE;
      if (!watched)
        np_stream_abort_locked (self, error, &after);
      else
        {
          np_stream_write_some_locked (self);
          np_stream_set_deadline_locked (self, handshake_timeout);
          if (!np_stream_all_written_locked (self) || self->write_error != NULL)
            np_stream_request_flush_locked (self);
        }
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_HERE);
}

/* Publishes what is queued in *@mirror too (NULL: no longer), for an
 * owner that reads it without a lock: the owner's own memory, so that
 * the reader needs no reference on the stream. */
void
np_stream_set_queued_mirror (NpStream *self,
                             gsize    *mirror)
{
  g_mutex_lock (self->lock);
  np_out_queue_set_mirror (&self->out, 1, mirror);
  g_mutex_unlock (self->lock);
}

/* Marks the stream no longer connected, as its owner closes it: returns
 * whether it was, so that whoever calls it notifies the change once. */
gboolean
np_stream_take_connected (NpStream *self)
{
  gboolean was;

  g_mutex_lock (self->lock);
  was = self->connected;
  self->connected = FALSE;
  g_mutex_unlock (self->lock);

  return was;
}

/* Whether messages can still be sent: started, and neither closing nor
 * closed. */
gboolean
np_stream_is_connected (NpStream *self)
{
  gboolean connected;

  g_mutex_lock (self->lock);
  connected = self->connected && self->state <= NP_STREAM_OPEN;
  g_mutex_unlock (self->lock);

  return connected;
}

/* The owner is going: close without reporting anything, after writing
 * what the socket takes without blocking. */
void
np_stream_detach (NpStream *self)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  self->owner = NULL;
  self->connection = NULL;
  self->connected = FALSE;
  self->report_pending = FALSE;
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

const char *
np_stream_get_label (NpStream *self)
{
  return self->label;
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

/* Called after every send by producers that pace themselves: takes no
 * lock. */
guint64
np_stream_get_queued_bytes (NpStream *self)
{
  if (np_stream_get_state (self) == NP_STREAM_CLOSED)
    return 0;

  return __atomic_load_n (&self->queued_bytes, __ATOMIC_RELAXED);
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

static gboolean
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
static gboolean
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
static gboolean
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
