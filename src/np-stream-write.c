/* np-stream-write.c: the write side of a stream, and the calls that
 * wait on it: sending, flushing, pinging, closing
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-stream-internal.h"

/* Past this many queued bytes send() writes at once instead of waiting
 * for the flusher. */
#define NP_WRITE_THRESHOLD  (64 * 1024)
#define NP_IOV_MAX          64

/* Every function here may be called from any thread, with the lock held
 * where the name says so. */

/* Ops */

static void
np_op_free (NpOp *op)
{
  g_assert (op->timeout == NULL);

  g_clear_object (&op->task);
  g_clear_error (&op->error);
  g_clear_pointer (&op->message, g_bytes_unref);
  g_clear_object (&op->fds);
  g_clear_pointer (&op->reply, g_bytes_unref);
  g_clear_object (&op->reply_fds);
  g_free (op);
}

NpOp *
np_op_new (NpOpKind  kind,
           GTask    *task)
{
  NpOp *op = g_new0 (NpOp, 1);

  op->kind = kind;
  op->task = task != NULL ? g_object_ref (task) : NULL;

  return op;
}

typedef struct
{
  GCancellable *cancellable;
  gulong        id;
} NpDisconnect;

static gboolean
np_disconnect_cb (gpointer data)
{
  NpDisconnect *disconnect = data;

  g_cancellable_disconnect (disconnect->cancellable, disconnect->id);

  return G_SOURCE_REMOVE;
}

static void
np_disconnect_free (gpointer data)
{
  NpDisconnect *disconnect = data;

  g_object_unref (disconnect->cancellable);
  g_free (disconnect);
}

/* Disconnects handler @id of @cancellable. Once cancelled, the
 * application may be inside the cancellable's emission (one of its
 * handlers closing the pipe, say), where a disconnect would wait for
 * that emission to end, forever: it is left to an idle of @context. */
static void
np_cancellable_disconnect_safely (GCancellable *cancellable,
                                  gulong        id,
                                  GMainContext *context)
{
  NpDisconnect *disconnect;
  g_autoptr(GSource) idle = NULL;

  if (!g_cancellable_is_cancelled (cancellable))
    {
      g_cancellable_disconnect (cancellable, id);
      return;
    }

  disconnect = g_new (NpDisconnect, 1);
  disconnect->cancellable = g_object_ref (cancellable);
  disconnect->id = id;
  idle = g_idle_source_new ();
  g_source_set_static_name (idle, "[np] disconnect a cancellable");
  g_source_set_callback (idle, np_disconnect_cb, disconnect, np_disconnect_free);
  g_source_attach (idle, context);
}

void
np_op_complete (NpOp *op)
{
  GCancellable *cancellable;

  if (op->sync != NULL)
    {
      np_sync_wait_done (op->sync, op);
      np_op_free (op);
      return;
    }

  cancellable = g_task_get_cancellable (op->task);

  if (op->cancel_id != 0)
    np_cancellable_disconnect_safely (cancellable, op->cancel_id, g_task_get_context (op->task));

  if (op->error != NULL)
    g_task_return_error (op->task, g_steal_pointer (&op->error));
  else if (op->kind == NP_OP_PING)
    g_task_return_int (op->task, op->value);
  else if (op->kind == NP_OP_REQUEST)
    {
      /* Held by the task until np_stream_request_finish() takes them,
       * closed with it otherwise. */
      if (op->reply_fds != NULL)
        np_stream_set_reply_fds (op->task, g_steal_pointer (&op->reply_fds));
      g_task_return_pointer (op->task, g_steal_pointer (&op->reply),
                             (GDestroyNotify) g_bytes_unref);
    }
  else
    g_task_return_boolean (op->task, TRUE);

  np_op_free (op);
}

void
np_stream_fail_ops_locked (GQueue        *ops,
                           const GError  *error,
                           NpStreamAfter *after)
{
  NpOp *op;

  while ((op = g_queue_pop_head (ops)) != NULL)
    {
      op->error = g_error_copy (error);
      g_queue_push_tail (&after->done, op);
    }
}

/* Moves the writes that are done (or failed) to @after. */
void
np_stream_collect_writes_locked (NpStream      *self,
                                 NpStreamAfter *after)
{
  NpOp *op;

  while ((op = g_queue_peek_head (&self->writes)) != NULL)
    {
      if (op->end > self->out.written)
        {
          if (self->write_error == NULL)
            break;
          op->error = g_error_copy (self->write_error);
        }

      g_queue_pop_head (&self->writes);
      g_queue_push_tail (&after->done, op);
    }
}

/* Write side */

/* Writes as much as the transport takes, without blocking. A failure
 * drops the queue and stays in write_error; the callers decide when to
 * report it. */
void
np_stream_write_some_locked (NpStream *self)
{
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
              np_out_queue_get_size (&self->out) <= self->low_water)
            {
              self->over_half = FALSE;
              if (self->state <= NP_STREAM_OPEN && self->owner != NULL &&
                  self->callbacks->drained != NULL)
                {
                  self->drained_pending = TRUE;
                  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
                }
            }
          /* A closing stream waits for a peer that reads, however slowly. */
          if (self->state == NP_STREAM_CLOSING && self->close_timeout > 0 && written > 0)
            self->stall_until = g_get_monotonic_time () +
                                self->close_timeout * G_TIME_SPAN_MILLISECOND;
          break;

        case NP_IO_WOULD_BLOCK:
          self->want_out = TRUE;
          np_stream_update_events_locked (self);
          return;

        case NP_IO_FAILED:
          self->write_error = np_stream_error_new (self, error->domain, error->code,
                                                   _("Writing to the socket failed: %s"),
                                                   error->message);
          np_out_queue_clear (&self->out);
          break;

        default:
          g_assert_not_reached ();
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
  if (!self->flush_requested && !self->want_out && self->state != NP_STREAM_CLOSED)
    {
      self->flush_requested = TRUE;
      np_flusher_arm (self->flusher, &self->flush_link, FALSE);
    }
}

/* Moves back by @delta the positions of @op after @end. */
static void
np_op_move (NpOp    *op,
            guint64  end,
            guint64  delta)
{
  if (op->end >= end)
    {
      op->end -= delta;
      if (op->start >= end)
        op->start -= delta;
    }
}

/* Takes the frame [start, end) out of the queue if none of it was
 * written, moving the positions of what follows. */
static void
np_stream_unqueue_locked (NpStream *self,
                          guint64   start,
                          guint64   end)
{
  guint64 delta = end - start;
  GQueue *lists[] = { &self->writes, &self->pings };
  GHashTableIter iter;
  gpointer op;

  if (delta == 0 || !np_out_queue_remove (&self->out, start, end))
    return;

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    for (GList *l = lists[i]->head; l != NULL; l = l->next)
      np_op_move (l->data, end, delta);

  g_hash_table_iter_init (&iter, np_stream_get_requests_locked (self));
  while (g_hash_table_iter_next (&iter, NULL, &op))
    np_op_move (op, end, delta);
}

/* Queues a frame the peer's own frames call for (a pong, a reply): past
 * the queue limit the peer, which sends and does not read, is dropped. */
void
np_stream_queue_peer_frame_locked (NpStream      *self,
                                   const guint8  *header,
                                   gsize          header_len,
                                   GBytes        *payload,
                                   NpStreamAfter *after)
{
  np_stream_queue_peer_frame_with_fds_locked (self, header, header_len, payload, NULL, after);
}

/* The same, for a frame whose first byte carries @fds (nullable). */
void
np_stream_queue_peer_frame_with_fds_locked (NpStream      *self,
                                            const guint8  *header,
                                            gsize          header_len,
                                            GBytes        *payload,
                                            GUnixFDList   *fds,
                                            NpStreamAfter *after)
{
  gsize len = g_bytes_get_size (payload);

  /* After the peer's end of stream, only the answers it waits for. */
  if (self->state > NP_STREAM_OPEN &&
      !(self->state == NP_STREAM_CLOSING && self->awaiting_answers))
    return;

  if (self->max_queued_bytes > 0 &&
      np_out_queue_get_size (&self->out) + header_len + len > self->max_queued_bytes)
    {
      g_autoptr(GError) error = NULL;

      error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                                   _("the peer sends but does not read: %" PRIu64
                                     " bytes are queued to it, the limit is %" PRIu64),
                                   np_out_queue_get_size (&self->out), self->max_queued_bytes);
      np_stream_abort_locked (self, error, after);
      return;
    }

  np_out_queue_push_frame_with_fds (&self->out, header, header_len, payload, fds);
  np_stream_note_queued_locked (self);
  np_stream_request_flush_locked (self);
}

/* Sending */

GError *
np_stream_too_large_error_new (NpStream *self,
                               gsize     len)
{
  return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                              _("message of %zu bytes exceeds the limit of %u "
                                "bytes that the receiving side accepts"),
                              len, self->peer_max_message_size);
}

/* Whether @n_fds descriptors may go in one frame to the peer: never more
 * than the kernel passes in one write, none to a peer too old for them,
 * and from version 4 on, no more than the peer announced it takes. */
gboolean
np_stream_check_fds_locked (NpStream  *self,
                            guint      n_fds,
                            GError   **error)
{
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

gboolean
np_stream_check_send_locked (NpStream       *self,
                             gsize           len,
                             NpStreamAfter  *after,
                             GError        **error)
{
  guint64 queued;

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
  if (self->max_queued_bytes > 0 &&
      queued + NP_FRAME_HEADER_SIZE + len > self->max_queued_bytes)
    {
      GError *full;

      full = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                                  _("the peer does not keep up: %" PRIu64 " bytes are "
                                    "queued to it, and %zu more would pass the "
                                    "limit of %" PRIu64),
                                  queued, len, self->max_queued_bytes);

      /* Reported from the context, never from inside send(). */
      if (self->drop_when_full)
        np_stream_abort_locked (self, full, after);

      g_propagate_error (error, full);
      return FALSE;
    }

  return TRUE;
}

/* Queues @message, for @op (a send_async) when given, which then knows
 * where its frame lies. Behind a request waiting for the peer's hello,
 * it waits too, to keep its place: returns TRUE then, and @op is the
 * waiting message's. */
gboolean
np_stream_queue_message_at_locked (NpStream *self,
                                   GBytes   *message,
                                   NpOp     *op)
{
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint64 start;

  if (np_stream_park_locked (self, message, op, FALSE))
    return TRUE;

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

  return FALSE;
}

/* Leaves what a locked stretch left to do (ops to complete, the end to
 * report) to the context's flusher: for a caller that may be in any
 * thread, or inside a call the application made (a failed send(), a
 * reply), where completing them here would be too early. */
void
np_stream_defer_locked (NpStream      *self,
                        NpStreamAfter *after)
{
  if (after->finished || after->done.length > 0)
    {
      NpOp *op;

      while ((op = g_queue_pop_head (&after->done)) != NULL)
        g_queue_push_tail (&self->deferred, op);
      after->finished = FALSE;
      np_flusher_arm (self->flusher, &self->flush_link, TRUE);
    }
}

gboolean
np_stream_send_locked (NpStream  *self,
                       GBytes    *message,
                       GError   **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  if (!np_stream_check_send_locked (self, g_bytes_get_size (message), &after, error))
    {
      np_stream_defer_locked (self, &after);
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

/* Queues a MESSAGE_FDS frame: the peer is known to take descriptors. */
void
np_stream_queue_message_with_fds_locked (NpStream    *self,
                                         GBytes      *message,
                                         GUnixFDList *fds)
{
  guint8 header[NP_FRAME_HEADER_SIZE];

  np_frame_header_encode_fds (header, g_bytes_get_size (message),
                              g_unix_fd_list_get_length (fds));
  np_out_queue_push_frame_with_fds (&self->out, header, sizeof header, message, fds);

  if (!self->want_out && np_out_queue_get_size (&self->out) >= NP_WRITE_THRESHOLD)
    np_stream_write_some_locked (self);

  np_stream_request_flush_locked (self);
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

  g_assert (n_fds > 0);

  if (!np_stream_check_send_locked (self, g_bytes_get_size (message), &after, error))
    {
      np_stream_defer_locked (self, &after);
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

/* Async calls and their cancellation */

typedef struct
{
  NpStream *stream;
  GTask    *task;
} NpCancelData;

static void
np_cancel_data_free (gpointer data)
{
  NpCancelData *cancel = data;

  np_stream_unref (cancel->stream);
  g_object_unref (cancel->task);
  g_free (cancel);
}

static NpOp *
np_stream_find_op_locked (NpStream *self,
                          GTask    *task,
                          GQueue  **queue)
{
  GQueue *lists[] = { &self->writes, &self->pings, &self->closers };

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    for (GList *l = lists[i]->head; l != NULL; l = l->next)
      if (((NpOp *) l->data)->task == task)
        {
          *queue = lists[i];
          return l->data;
        }

  return NULL;
}

static gboolean
np_op_complete_cb (gpointer data)
{
  np_op_complete (data);
  return G_SOURCE_REMOVE;
}

static void
np_stream_cancelled_cb (GCancellable *cancellable,
                        gpointer      data)
{
  NpCancelData *cancel = data;
  NpStream *self = cancel->stream;
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  GQueue *queue = NULL;
  g_autoptr(GSource) idle = NULL;
  NpOp *op;

  g_mutex_lock (self->lock);
  op = np_stream_find_op_locked (self, cancel->task, &queue);
  if (op != NULL)
    g_queue_remove (queue, op);
  else
    op = np_stream_find_request_op_locked (self, cancel->task, TRUE);
  if (op != NULL)
    {
      if (op->kind == NP_OP_CLOSE && self->state != NP_STREAM_CLOSED)
        {
          g_autoptr(GError) error = NULL;
          guint64 dropped = np_out_queue_get_size (&self->out);

          if (dropped > 0)
            error = np_stream_error_new (self, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                         _("the close was cancelled: %" PRIu64
                                           " queued bytes were dropped"), dropped);
          np_stream_finish_locked (self, error, &after);
        }
      else
        np_stream_unqueue_locked (self, op->start, op->end);

      /* The handler may not disconnect itself: that waits for it. */
      op->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                       _("Operation was cancelled"));
      idle = g_idle_source_new ();
      g_source_set_static_name (idle, "[np] cancelled call");
      g_source_set_callback (idle, np_op_complete_cb, op, NULL);
      g_source_attach (idle, g_task_get_context (op->task));
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, FALSE);
}

/* Watches the cancellable of @task, whose op is queued: from here on
 * the op may complete in any thread. */
void
np_stream_watch_cancellable (NpStream *self,
                             GTask    *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  NpCancelData *cancel;
  GQueue *queue;
  gulong id;
  NpOp *op;

  if (cancellable == NULL)
    return;

  cancel = g_new (NpCancelData, 1);
  cancel->stream = np_stream_ref (self);
  cancel->task = g_object_ref (task);
  /* Runs the handler at once when already cancelled. */
  id = g_cancellable_connect (cancellable, G_CALLBACK (np_stream_cancelled_cb),
                              cancel, np_cancel_data_free);
  if (id == 0)
    return;

  g_mutex_lock (self->lock);
  op = np_stream_find_op_locked (self, task, &queue);
  if (op == NULL)
    op = np_stream_find_request_op_locked (self, task, FALSE);
  if (op != NULL)
    op->cancel_id = id;
  g_mutex_unlock (self->lock);

  /* Done already: whoever completed it did not know the handler. */
  if (op == NULL)
    g_cancellable_disconnect (cancellable, id);
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
      np_stream_after (self, &after, FALSE);
      g_task_return_error (task, error);
      return;
    }

  op = np_op_new (NP_OP_WRITE, task);
  if (!np_stream_queue_message_at_locked (self, message, op))
    g_queue_push_tail (&self->writes, op);
  /* It may be written already: the flusher reports it. */
  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
  g_mutex_unlock (self->lock);

  np_stream_watch_cancellable (self, task);
}

void
np_stream_flush_async (NpStream *self,
                       GTask    *task)
{
  NpOp *op;

  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (self->lock);
  if (self->state == NP_STREAM_CLOSED)
    {
      g_mutex_unlock (self->lock);
      g_task_return_error (task, np_stream_closed_error_new (self));
      return;
    }

  op = np_op_new (NP_OP_WRITE, task);
  /* Behind what waits for the peer's hello, it waits too. */
  if (!np_stream_park_locked (self, NULL, op, FALSE))
    {
      op->start = op->end = self->out.queued;
      g_queue_push_tail (&self->writes, op);
    }
  np_flusher_arm (self->flusher, &self->flush_link, TRUE);
  g_mutex_unlock (self->lock);

  np_stream_watch_cancellable (self, task);
}

/* Sends a ping that the peer's library answers by itself; @task returns
 * the round trip in microseconds. */
void
np_stream_ping_async (NpStream *self,
                      GTask    *task)
{
  g_autoptr(GBytes) payload = NULL;
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 data[8];
  NpOp *op;

  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (self->lock);
  if (self->state > NP_STREAM_OPEN || self->write_error != NULL)
    {
      g_mutex_unlock (self->lock);
      g_task_return_error (task, np_stream_closed_error_new (self));
      return;
    }

  op = np_op_new (NP_OP_PING, task);
  op->ping_id = ++self->last_ping_id;
  for (guint i = 0; i < sizeof data; i++)
    data[i] = op->ping_id >> (56 - 8 * i);
  payload = g_bytes_new (data, sizeof data);

  np_frame_header_encode (header, NP_FRAME_PING, sizeof data);
  op->start = np_out_queue_push_frame (&self->out, header, sizeof header, payload);
  op->end = self->out.queued;
  np_stream_note_queued_locked (self);
  op->sent_at = g_get_monotonic_time ();
  g_queue_push_tail (&self->pings, op);
  np_stream_request_flush_locked (self);
  g_mutex_unlock (self->lock);

  np_stream_watch_cancellable (self, task);
}

/* Blocking */

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

  self->transport_users++;
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
  np_stream_release_transport_locked (self);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  return TRUE;
}

gboolean
np_stream_flush_sync (NpStream      *self,
                      GCancellable  *cancellable,
                      GError       **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  gboolean read_peer = FALSE;
  gboolean ret = FALSE;

  g_mutex_lock (self->lock);
  for (;;)
    {
      if (self->state == NP_STREAM_CLOSED)
        {
          g_propagate_error (error, np_stream_ended_error_new (self));
          break;
        }

      np_stream_write_some_locked (self);

      /* The peer went away: why, it may have said before going. */
      if (self->write_error != NULL && !read_peer && np_stream_write_error_is_hangup (self))
        {
          read_peer = TRUE;
          g_mutex_unlock (self->lock);
          np_stream_read_after_hangup (self);
          g_mutex_lock (self->lock);
          continue;
        }

      if (self->write_error != NULL)
        {
          g_propagate_error (error, g_error_copy (self->write_error));
          break;
        }

      if (np_out_queue_is_empty (&self->out))
        {
          ret = TRUE;
          break;
        }

      /* Blocks this thread only: no main context is iterated. */
      if (!np_stream_wait_writable_locked (self, -1, cancellable, error))
        break;
    }
  np_stream_collect_writes_locked (self, &after);
  /* What this thread wrote may end a close, or fail: the context takes
   * it from there. Its own writer may be waiting for the socket, which
   * this thread just emptied of our bytes. */
  if (np_stream_needs_dispatch_locked (self))
    np_flusher_arm (self->flusher, &self->flush_link, TRUE);
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, FALSE);

  return ret;
}

/* Closing */

static gboolean
np_stream_begin_close_locked (NpStream *self)
{
  /* The application closes: answers it did not give are not awaited. */
  self->awaiting_answers = FALSE;
  if (self->state > NP_STREAM_OPEN)
    return FALSE;

  np_stream_set_state (self, NP_STREAM_CLOSING);
  np_stream_update_events_locked (self);
  np_stream_set_deadline_locked (self, self->close_timeout);

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

  np_stream_after (self, &after, TRUE);
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

  np_stream_after (self, &after, FALSE);
  np_stream_watch_cancellable (self, task);
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
  gboolean cancelled = FALSE;
  gboolean ret;

  g_mutex_lock (self->lock);

  self->stall_until = g_get_monotonic_time () + self->close_timeout * G_TIME_SPAN_MILLISECOND;

  /* What waits for the peer's handshake (requests, messages with
   * descriptors) goes out once it completes: a caller without a main
   * loop (connect, send, close) waits for it here, within the close
   * timeout, when it may read for the context. */
  while (self->state == NP_STREAM_HANDSHAKE && !g_queue_is_empty (&self->parked) &&
         g_main_context_acquire (self->context))
    {
      gint64 left = self->stall_until - g_get_monotonic_time ();

      g_mutex_unlock (self->lock);
      if (self->close_timeout == 0 || left > 0)
        cancelled = !np_stream_poll_once (self, self->close_timeout == 0 ? -1 : (gint) ((left + 999) / 1000),
                                          cancellable);
      g_main_context_release (self->context);
      g_mutex_lock (self->lock);

      if (cancelled)
        break;

      if (self->close_timeout > 0 && left <= 0)
        break;
    }

  self->awaiting_answers = FALSE;
  if (self->state <= NP_STREAM_OPEN)
    {
      np_stream_set_state (self, NP_STREAM_CLOSING);
      np_stream_update_events_locked (self);
      np_stream_destroy_source (&self->deadline);
    }

  self->stall_until = g_get_monotonic_time () + self->close_timeout * G_TIME_SPAN_MILLISECOND;

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
                                           _("the close was cancelled: %" G_GUINT64_FORMAT
                                             " queued bytes were dropped"), size);
          np_stream_finish_locked (self, dropped, &after);
          break;
        }

      if (self->close_timeout > 0)
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

  np_stream_after (self, &after, TRUE);

  return ret;
}

/* Ends the stream because of @error, telling the peer why. */
void
np_stream_abort (NpStream     *self,
                 const GError *error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;

  g_mutex_lock (self->lock);
  np_stream_abort_locked (self, error, &after);
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, TRUE);
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
