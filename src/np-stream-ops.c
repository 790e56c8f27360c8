/* np-stream-ops.c: the calls in flight on a stream: their completion,
 * their cancellation, the order they keep while the peer's hello is
 * awaited, and the one way work leaves a locked stretch
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include <glib/gi18n-lib.h>

#include "np-context-private.h"
#include "np-error.h"
#include "np-stream-internal.h"

/* Above np-stream-io.c, below everything else. Every function may be
 * called from any thread, with the lock held where the name says so. */

typedef struct
{
  GCancellable *cancellable;
  gulong        id;
} NpDisconnect;

/* As a blocking request: a thread that took the stream's context for
 * itself keeps it this long between looks at whether another thread
 * wants it, then leaves it this long to that thread; a context iterated
 * this recently has a thread that runs it, and reads for us. */
#define NP_BLOCK_SLICE_MSEC   50
#define NP_BLOCK_YIELD_MSEC   5
#define NP_BLOCK_RUNNING_MSEC 200

static G_DEFINE_QUARK (np-stream-reply-fds, np_stream_reply_fds)

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

/* Gives the blocked caller the result of @op, its request. */
static void
np_sync_wait_done (NpSyncWait *wait,
                   NpOp       *op)
{
  g_autoptr(GError) error = g_steal_pointer (&op->error);

  g_mutex_lock (&wait->base.mutex);
  wait->reply = g_steal_pointer (&op->reply);
  wait->reply_fds = g_steal_pointer (&op->reply_fds);
  g_mutex_unlock (&wait->base.mutex);

  np_stream_wait_done (&wait->base, error);
}

/* Gives @task, a request's, the reply's descriptors, before it returns
 * the reply: they stay with the task until np_stream_request_finish()
 * takes them, and are closed with it otherwise. */
static void
np_stream_set_reply_fds (GTask       *task,
                         GUnixFDList *fds)
{
  g_object_set_qdata_full (G_OBJECT (task), np_stream_reply_fds_quark (), fds, g_object_unref);
}

/* Takes the descriptors np_stream_set_reply_fds() gave @task, if any. */
GUnixFDList *
np_stream_take_reply_fds (GTask *task)
{
  return g_object_steal_qdata (G_OBJECT (task), np_stream_reply_fds_quark ());
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

  NP_STREAM_ENSURE_LOCKED (self);

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

void
np_parked_free (NpParked *parked)
{
  g_clear_pointer (&parked->message, g_bytes_unref);
  g_clear_object (&parked->fds);
  g_free (parked);
}

/* The stream ended: every request waiting for its reply, or for the
 * hello, fails with @error; messages behind them are dropped. */
void
np_stream_fail_requests_locked (NpStream      *self,
                                const GError  *error,
                                NpStreamAfter *after)
{
  GHashTableIter iter;
  NpParked *parked;
  NpOp *op;

  NP_STREAM_ENSURE_LOCKED (self);

  g_hash_table_iter_init (&iter, np_stream_get_requests_locked (self));
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &op))
    {
      g_hash_table_iter_steal (&iter);
      if (op->timeout != NULL)
        np_poller_timer_destroy (g_steal_pointer (&op->timeout));
      op->error = g_error_copy (error);
      g_queue_push_tail (&after->done, op);
    }

  while ((parked = g_queue_pop_head (&self->parked)) != NULL)
    {
      if (parked->op != NULL)
        {
          parked->op->error = g_error_copy (error);
          g_queue_push_tail (&after->done, g_steal_pointer (&parked->op));
        }
      np_parked_free (parked);
    }
  self->parked_bytes = 0;
}

/* Parks @message and its @fds until the peer's handshake tells how
 * many descriptors it takes (its settings, from version 4 on), or
 * behind what waits for it, to keep its place. Returns FALSE when
 * nothing needs to wait. */
gboolean
np_stream_park_fds_locked (NpStream    *self,
                           GBytes      *message,
                           GUnixFDList *fds)
{
  NpParked *parked;

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->peer_ready)
    return FALSE;

  /* Parked before the hello, or behind what was; never once closed. */
  NP_STREAM_ASSERT_STATE (self, NP_STREAM_IN (NP_STREAM_HANDSHAKE) | NP_STREAM_IN (NP_STREAM_OPEN) |
                                NP_STREAM_IN (NP_STREAM_CLOSING));

  parked = g_new0 (NpParked, 1);
  parked->message = g_bytes_ref (message);
  parked->fds = g_object_ref (fds);
  g_queue_push_tail (&self->parked, parked);
  self->parked_bytes += NP_REQUEST_HEADER_SIZE + g_bytes_get_size (message);

  return TRUE;
}

/* Parks @message (and @op) when it must wait for the peer's hello: a
 * request before the hello, or anything behind a parked request. */
gboolean
np_stream_park_locked (NpStream *self,
                       GBytes   *message,
                       NpOp     *op,
                       gboolean  request)
{
  NpParked *parked;

  NP_STREAM_ENSURE_LOCKED (self);

  if (self->peer_ready || (!request && g_queue_is_empty (&self->parked)))
    return FALSE;

  /* Parked before the hello, or behind what was; never once closed. */
  NP_STREAM_ASSERT_STATE (self, NP_STREAM_IN (NP_STREAM_HANDSHAKE) | NP_STREAM_IN (NP_STREAM_OPEN) |
                                NP_STREAM_IN (NP_STREAM_CLOSING));

  parked = g_new0 (NpParked, 1);
  parked->message = message != NULL ? g_bytes_ref (message) : NULL;
  parked->op = op;
  parked->request = request;
  g_queue_push_tail (&self->parked, parked);
  if (message != NULL)
    self->parked_bytes += NP_REQUEST_HEADER_SIZE + g_bytes_get_size (message);

  return TRUE;
}

/* How many plain messages wait for the peer's hello behind a request. */
guint
np_stream_count_parked_messages_locked (NpStream *self)
{
  guint n = 0;

  NP_STREAM_ENSURE_LOCKED (self);

  for (GList *l = self->parked.head; l != NULL; l = l->next)
    {
      NpParked *parked = l->data;

      if (!parked->request && parked->message != NULL)
        n++;
    }

  return n;
}

/* A message that waited for the peer's handshake and cannot go: its
 * call returned long ago, so only a warning can tell. The connection is
 * unharmed: what follows still goes out. */
static void
np_stream_drop_parked (NpStream     *self,
                       const GError *error)
{
  g_warning ("%s; the message was dropped", error->message);
}

/* The peer's handshake is complete: what waited for it goes out, in
 * order, checked against what the peer announced (its version, its
 * message size, its descriptor limit); what does not fit fails on its
 * own, and the rest goes out. Stops at a request that may go, and
 * returns its op, its message back in it, for the caller to send before
 * it calls again (np_stream_send_parked_locked()); NULL once all is
 * out, or on an @error for which the caller ends the stream. */
NpOp *
np_stream_unpark_locked (NpStream      *self,
                         NpStreamAfter *after,
                         GError       **error)
{
  NpParked *parked;

  NP_STREAM_ENSURE_LOCKED (self);
  /* Only as the stream opens. */
  NP_STREAM_ASSERT_STATE (self, NP_STREAM_IN (NP_STREAM_OPEN));

  while ((parked = g_queue_pop_head (&self->parked)) != NULL)
    {
      NpOp *op = g_steal_pointer (&parked->op);
      g_autoptr(GError) unfit = NULL;

      if (parked->message != NULL)
        {
          gsize len = g_bytes_get_size (parked->message);

          self->parked_bytes -= NP_REQUEST_HEADER_SIZE + len;
          if (len > self->peer_max_message_size)
            unfit = np_stream_too_large_error_new (self, len);
        }

      if (unfit == NULL && parked->fds != NULL && self->version >= NP_PROTOCOL_FDS)
        np_stream_check_fds_locked (self, g_unix_fd_list_get_length (parked->fds), &unfit);

      if (unfit != NULL && parked->message != NULL)
        {
          if (op != NULL)
            {
              op->error = g_steal_pointer (&unfit);
              g_queue_push_tail (&after->done, op);
            }
          else
            np_stream_drop_parked (self, unfit);
        }
      else if (parked->request)
        {
          if (self->version < NP_PROTOCOL_REQUESTS)
            {
              op->error = np_stream_not_supported_error_new (self);
              g_queue_push_tail (&after->done, op);
            }
          else if (op->fds != NULL &&
                   !np_stream_check_request_fds_locked (self, g_unix_fd_list_get_length (op->fds),
                                                        &op->error))
            g_queue_push_tail (&after->done, op);
          else
            {
              op->message = g_steal_pointer (&parked->message);
              np_parked_free (parked);
              return op;
            }
        }
      else if (parked->fds != NULL)
        {
          if (self->version < NP_PROTOCOL_FDS)
            {
              /* The call that queued it returned long ago: the message
               * cannot go, and dropping it silently would lose it. */
              g_propagate_error (error,
                                 np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                                                      _("a message with descriptors was sent before the "
                                                        "peer's handshake, and the peer speaks protocol "
                                                        "version %u, which carries no descriptors"),
                                                      self->version));
              np_parked_free (parked);
              self->parked_bytes = 0;
              return NULL;
            }
          np_stream_queue_message_with_fds_locked (self, parked->message, parked->fds);
        }
      else if (parked->message != NULL)
        {
          np_stream_queue_message_locked (self, parked->message, op);
          if (op != NULL)
            g_queue_push_tail (&self->writes, op);
        }
      else
        {
          /* A flush: of everything before it. */
          op->start = op->end = self->out.queued;
          g_queue_push_tail (&self->writes, op);
        }

      np_parked_free (parked);
    }

  g_assert (self->parked_bytes == 0);

  return NULL;
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

  NP_STREAM_ENSURE_LOCKED (self);

  if (delta == 0 || !np_out_queue_remove (&self->out, start, end))
    return;

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    for (GList *l = lists[i]->head; l != NULL; l = l->next)
      np_op_move (l->data, end, delta);

  g_hash_table_iter_init (&iter, np_stream_get_requests_locked (self));
  while (g_hash_table_iter_next (&iter, NULL, &op))
    np_op_move (op, end, delta);
}

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

  NP_STREAM_ENSURE_LOCKED (self);

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    for (GList *l = lists[i]->head; l != NULL; l = l->next)
      if (((NpOp *) l->data)->task == task)
        {
          *queue = lists[i];
          return l->data;
        }

  return NULL;
}

/* Finds the op of @task among the requests and the parked; with @take,
 * takes it out, for a cancellation. NULL when it is in neither. */
static NpOp *
np_stream_find_request_op_locked (NpStream *self,
                                  GTask    *task,
                                  gboolean  take)
{
  GHashTableIter iter;
  NpOp *op;

  NP_STREAM_ENSURE_LOCKED (self);

  g_hash_table_iter_init (&iter, np_stream_get_requests_locked (self));
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &op))
    if (op->task == task)
      {
        if (!take)
          return op;
        g_hash_table_iter_steal (&iter);
        if (op->timeout != NULL)
          np_poller_timer_destroy (g_steal_pointer (&op->timeout));
        return op;
      }

  for (GList *l = self->parked.head; l != NULL; l = l->next)
    {
      NpParked *parked = l->data;

      if (parked->op != NULL && parked->op->task == task)
        {
          if (!take)
            return parked->op;
          op = g_steal_pointer (&parked->op);
          if (parked->message != NULL)
            self->parked_bytes -= NP_REQUEST_HEADER_SIZE + g_bytes_get_size (parked->message);
          g_queue_delete_link (&self->parked, l);
          np_parked_free (parked);
          /* Nothing of it was queued: there is nothing to take back. */
          op->start = op->end = 0;
          return op;
        }
    }

  return NULL;
}

static gboolean
np_op_complete_cb (gpointer data)
{
  np_op_complete (data);
  return G_SOURCE_REMOVE;
}

/* Takes the op of @task out of the stream, for a cancellation: from the
 * writes, pings and closes, or the requests and the parked. NULL when it
 * is in none (done already). */
NpOp *
np_stream_take_op_locked (NpStream *self,
                          GTask    *task)
{
  GQueue *queue = NULL;
  NpOp *op;

  NP_STREAM_ENSURE_LOCKED (self);

  op = np_stream_find_op_locked (self, task, &queue);
  if (op != NULL)
    g_queue_remove (queue, op);
  else
    op = np_stream_find_request_op_locked (self, task, TRUE);

  return op;
}

/* Completes @op, taken out of the stream, as cancelled, from an idle of
 * its task's context: the cancellable's handler, where this is called,
 * may not disconnect itself (that waits for it). */
void
np_op_cancel_soon (NpOp *op)
{
  g_autoptr(GSource) idle = NULL;

  op->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   _("Operation was cancelled"));
  idle = g_idle_source_new ();
  g_source_set_static_name (idle, "[np] cancelled call");
  g_source_set_callback (idle, np_op_complete_cb, op, NULL);
  g_source_attach (idle, g_task_get_context (op->task));
}

/* A write, ping or request cancelled: its frame is taken back when none
 * of it was written. (A close's cancellation is np-stream-life.c's.) */
static void
np_stream_cancelled_cb (GCancellable *cancellable,
                        gpointer      data)
{
  NpCancelData *cancel = data;
  NpStream *self = cancel->stream;
  NpOp *op;

  g_mutex_lock (self->lock);
  op = np_stream_take_op_locked (self, cancel->task);
  if (op != NULL)
    {
      g_assert (op->kind != NP_OP_CLOSE);
      np_stream_unqueue_locked (self, op->start, op->end);
      np_op_cancel_soon (op);
    }
  g_mutex_unlock (self->lock);
}

/* Watches the cancellable of @task, whose op is queued: from here on
 * the op may complete in any thread. @cancelled (NULL: the handler of
 * writes, pings and requests) is given an NpCancelData. */
void
np_stream_watch_cancellable (NpStream  *self,
                             GTask     *task,
                             GCallback  cancelled)
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
  id = g_cancellable_connect (cancellable,
                              cancelled != NULL ? cancelled : G_CALLBACK (np_stream_cancelled_cb),
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

  np_stream_watch_cancellable (self, task, NULL);
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

  np_stream_watch_cancellable (self, task, NULL);
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

      if (np_stream_all_written_locked (self))
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

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);

  return ret;
}

static void
np_stream_report (NpStream *self)
{
  g_autoptr(GError) error = NULL;
  NpStreamTarget target = { NULL, NULL };
  gboolean was_connected = FALSE;

  g_mutex_lock (self->lock);
  if (self->report_pending && self->owner != NULL)
    {
      self->report_pending = FALSE;
      np_stream_target_take_locked (self, &target);
      error = self->error != NULL ? g_error_copy (self->error) : NULL;
      was_connected = self->connected;
      self->connected = FALSE;
    }
  g_mutex_unlock (self->lock);

  if (target.owner == NULL)
    {
      np_stream_target_release (&target);
      return;
    }

  /* The end is reported from the context, where the read side lives:
   * descriptors received and not delivered go now, not when the last
   * reference does. */
  if (self->reading == 0)
    np_stream_clear_partial (self);

  if (was_connected)
    g_object_notify (target.connection, "connected");
  self->owner_iface->closed ((NpConnectionOwner *) target.owner,
                             (NpPipeConnection *) target.connection, error);

  /* Out of its owner's hands, the connection may outlive it. */
  g_mutex_lock (self->lock);
  self->owner = NULL;
  g_mutex_unlock (self->lock);

  np_stream_target_release (&target);
}

/* Tells the connection and its owner that the queue drained, unless the
 * stream closed meanwhile. From the context's dispatch. */
static void
np_stream_report_drained (NpStream *self)
{
  NpStreamTarget target = { NULL, NULL };

  g_mutex_lock (self->lock);
  if (self->state != NP_STREAM_CLOSED)
    np_stream_target_take_locked (self, &target);
  g_mutex_unlock (self->lock);

  if (target.connection != NULL)
    g_signal_emit_by_name (target.connection, "queue-drained");
  if (target.owner != NULL && self->owner_iface->drained != NULL)
    self->owner_iface->drained ((NpConnectionOwner *) target.owner,
                                (NpPipeConnection *) target.connection);

  np_stream_target_release (&target);
}

/* Whether this thread may report now: it owns the stream's context (it
 * iterates it), or is that context's own thread and nobody iterates it
 * now (np_context_acquire_here()); then it holds it until
 * np_stream_leave_context(). A worker that pushed no context must not
 * run the owner's handlers because it could take the global default
 * one. */
static gboolean
np_stream_enter_context (NpStream *self,
                         gboolean *acquired)
{
  *acquired = FALSE;
  if (g_main_context_is_owner (self->context))
    return TRUE;

  return (*acquired = np_context_acquire_here (self->context));
}

/* Runs what a locked stretch left to do (@after), where @where says:
 * the one place that completes ops and reports to the owner, and that
 * leaves them to the context's flusher when they may not run here. */
void
np_stream_after (NpStream           *self,
                 NpStreamAfter      *after,
                 NpStreamAfterWhere  where)
{
  gboolean acquired;
  NpOp *op;

  if (where == NP_STREAM_AFTER_DEFER)
    {
      /* The flusher's dispatch runs them (np-stream.c). */
      if (after->finished || after->drained || after->done.length > 0)
        {
          NP_STREAM_ENSURE_LOCKED (self);
          while ((op = g_queue_pop_head (&after->done)) != NULL)
            g_queue_push_tail (&self->deferred, op);
          g_assert (!after->drained);
          after->finished = FALSE;
          np_flusher_arm (self->flusher, &self->flush_link, TRUE);
        }
      return;
    }

  while ((op = g_queue_pop_head (&after->done)) != NULL)
    np_op_complete (op);

  if (after->drained)
    {
      g_assert (where == NP_STREAM_AFTER_DISPATCH);
      after->drained = FALSE;
      np_stream_report_drained (self);
    }

  if (!after->finished)
    return;
  after->finished = FALSE;

  if (where == NP_STREAM_AFTER_DISPATCH)
    np_stream_report (self);
  else if (where == NP_STREAM_AFTER_HERE && np_stream_enter_context (self, &acquired))
    {
      np_stream_report (self);
      if (acquired)
        g_main_context_release (self->context);
    }
  else
    np_flusher_arm (self->flusher, &self->flush_link, TRUE);
}

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
          /* Read only by the thread that holds the context. */
          guint64 received = self->received;

          /* Closed, its end perhaps not reported: this thread does it. */
          if (closed)
            {
              NpStreamAfter after = NP_STREAM_AFTER_INIT;

              after.finished = TRUE;
              np_stream_after (self, &after, NP_STREAM_AFTER_DISPATCH);
            }
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
          /* A slice that brought nothing: another thread may want the
           * context. One that brought part of what is awaited (a
           * hello without its settings yet) goes on reading at once. */
          if (acquired && self->received == received)
            np_stream_wait_for (wait, cancellable, NP_BLOCK_YIELD_MSEC, deadline);
        }
      else
        np_stream_wait_for (wait, cancellable, 100, deadline);
    }

  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, cancel_id);

  return np_stream_wait_is_done (wait);
}
