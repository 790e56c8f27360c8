/* np-stream-request.c: requests and replies on a stream
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-stream-internal.h"

/* A request goes out as a REQUEST frame with an id of the sender's; the
 * peer answers it once, with a REPLY or an ERROR frame of that id, in any
 * order. Only a peer of protocol version 2 or later knows these frames:
 * until the peer's hello tells its version, requests (and what is sent
 * after them, to keep the order) wait here; a peer of version 1 fails
 * them at once. Every function may be called from any thread.
 *
 * From version 4 on, a request or reply may carry descriptors: a
 * REQUEST_FDS or REPLY_FDS frame, whose first byte they go with, as
 * for a MESSAGE_FDS frame. */

static void np_stream_request_timeout_cb (NpPollerTimer *timer,
                                          gpointer       data);

typedef struct
{
  NpStream *stream;
  guint32   id;
  guint     msec;
} NpTimeoutData;

static void
np_timeout_data_free (gpointer data)
{
  NpTimeoutData *timeout = data;

  np_stream_unref (timeout->stream);
  g_free (timeout);
}

/* Sends the request of @op: queues its frame, and starts its deadline. */
static void
np_stream_send_request_locked (NpStream *self,
                               NpOp     *op)
{
  guint8 header[NP_REQUEST_HEADER_SIZE];
  g_autoptr(GBytes) message = g_steal_pointer (&op->message);
  guint timeout_msec;

  NP_STREAM_ENSURE_LOCKED (self);

  /* Made for the first request: most pipes never send one. */
  if (self->requests == NULL)
    self->requests = g_hash_table_new (NULL, NULL);

  /* 0 is never an id: a wrapped counter skips it. */
  do
    op->request_id = ++self->last_request_id;
  while (op->request_id == 0 || g_hash_table_contains (self->requests, GUINT_TO_POINTER (op->request_id)));

  if (op->fds != NULL)
    {
      g_autoptr(GUnixFDList) fds = g_steal_pointer (&op->fds);

      np_request_header_encode_fds (header, NP_FRAME_REQUEST_FDS, op->request_id,
                                    g_bytes_get_size (message), g_unix_fd_list_get_length (fds));
      op->start = np_out_queue_push_frame_with_fds (&self->out, header, sizeof header, message,
                                                    fds);
    }
  else
    {
      np_request_header_encode (header, NP_FRAME_REQUEST, op->request_id, g_bytes_get_size (message));
      op->start = np_out_queue_push_frame (&self->out, header, sizeof header, message);
    }
  op->end = self->out.queued;
  np_stream_note_queued_locked (self);
  g_hash_table_insert (self->requests, GUINT_TO_POINTER (op->request_id), op);

  /* The request-timeout of now, on an open connection too. */
  timeout_msec = np_stream_limit (self, NP_LIMIT_REQUEST_TIMEOUT);
  if (timeout_msec > 0)
    {
      NpTimeoutData *data = g_new (NpTimeoutData, 1);

      data->stream = np_stream_ref (self);
      data->id = op->request_id;
      data->msec = timeout_msec;
      op->timeout = np_poller_timer_new (self->context, timeout_msec, "[np] request deadline",
                                         np_stream_request_timeout_cb, data,
                                         np_timeout_data_free);
    }

  if (!self->want_out && np_out_queue_get_size (&self->out) >= 64 * 1024)
    np_stream_write_some_locked (self);
  np_stream_request_flush_locked (self);
}

/* The stream opened: what waited for the peer's hello goes out, in
 * order (np_stream_unpark_locked()), requests sent here. */
void
np_stream_send_parked_locked (NpStream      *self,
                              NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;
  NpOp *op;

  NP_STREAM_ENSURE_LOCKED (self);

  while ((op = np_stream_unpark_locked (self, after, &error)) != NULL)
    np_stream_send_request_locked (self, op);

  if (error != NULL)
    np_stream_abort_locked (self, error, after);
}

/* Whether a reply may carry @n_fds descriptors. A requester of version
 * 4 that asked before its settings came (which a peer of the library
 * never does) has not said how many it takes, perhaps none: unlike a
 * request, a reply does not wait for them. */
static gboolean
np_stream_check_reply_fds_locked (NpStream  *self,
                                  guint      n_fds,
                                  GError   **error)
{
  NP_STREAM_ENSURE_LOCKED (self);

  if (self->version >= NP_PROTOCOL_SETTINGS && !self->settings_received)
    {
      g_propagate_error (error,
                         np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                                              _("the peer asked before its settings came, "
                                                "which say how many descriptors it takes")));
      return FALSE;
    }

  return np_stream_check_request_fds_locked (self, n_fds, error);
}

static void
np_stream_request_timeout_cb (NpPollerTimer *timer,
                              gpointer       data)
{
  NpTimeoutData *timeout = data;
  NpStream *self = timeout->stream;
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  NpOp *op;

  g_mutex_lock (self->lock);
  op = g_hash_table_lookup (np_stream_get_requests_locked (self), GUINT_TO_POINTER (timeout->id));
  if (op != NULL && op->timeout == timer)
    {
      g_hash_table_steal (self->requests, GUINT_TO_POINTER (timeout->id));
      np_poller_timer_destroy (g_steal_pointer (&op->timeout));
      op->error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                       _("the peer did not answer the request within %u ms"),
                                       timeout->msec);
      g_queue_push_tail (&after.done, op);
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);
}

/* A REPLY, REPLY_FDS or ERROR frame arrived: it ends the request of its
 * id, the reply's @fds (or NULL) going with it; one of an id we do not
 * wait for (timed out, cancelled) is dropped, its descriptors closed. A
 * malformed error reply ends the stream. */
void
np_stream_handle_reply (NpStream      *self,
                        NpFrameType    type,
                        GBytes        *payload,
                        GUnixFDList   *fds,
                        NpStreamAfter *after)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  g_autoptr(GError) error = NULL;
  guint32 id;
  NpOp *op;

  /* The id first: an error's domain is learnt (a quark, never freed, of
   * a budget the whole process shares) only for a request that waits. */
  if (type == NP_FRAME_ERROR)
    {
      if (!np_error_reply_decode (data, len, &id, NULL, &error))
        {
          g_prefix_error (&error, "%s: ", self->label);
          g_mutex_lock (self->lock);
          if (self->state != NP_STREAM_CLOSED)
            np_stream_abort_locked (self, error, after);
          g_mutex_unlock (self->lock);
          return;
        }
    }
  else
    id = np_request_id_decode (data);

  g_mutex_lock (self->lock);
  op = g_hash_table_lookup (np_stream_get_requests_locked (self), GUINT_TO_POINTER (id));
  if (op != NULL)
    {
      g_hash_table_steal (self->requests, GUINT_TO_POINTER (id));
      if (op->timeout != NULL)
        np_poller_timer_destroy (g_steal_pointer (&op->timeout));
    }
  g_mutex_unlock (self->lock);

  if (op == NULL)
    return;

  /* Taken out of the table, the op is ours alone. The payload was
   * checked above. */
  if (type == NP_FRAME_ERROR)
    {
      if (!np_error_reply_decode (data, len, &id, &op->error, NULL))
        g_assert_not_reached ();
    }
  else
    {
      op->reply = g_bytes_new_from_bytes (payload, 4, len - 4);
      op->reply_fds = fds != NULL ? g_object_ref (fds) : NULL;
    }
  g_queue_push_tail (&after->done, op);
}

/* Queues an ERROR frame that answers request @id with @reply_error. */
static void
np_stream_queue_error_reply_locked (NpStream      *self,
                                    guint32        id,
                                    const GError  *reply_error,
                                    NpStreamAfter *after)
{
  g_autoptr(GBytes) payload = np_error_reply_encode (id, reply_error);
  guint8 header[NP_FRAME_HEADER_SIZE];

  NP_STREAM_ENSURE_LOCKED (self);

  g_autoptr(GError) full = NULL;

  np_frame_header_encode (header, NP_FRAME_ERROR, g_bytes_get_size (payload));
  if (!np_stream_queue_peer_frame_locked (self, header, sizeof header, payload, &full))
    np_stream_abort_locked (self, full, after);
}

/* Why a request of @size bytes may not be held with those that wait for
 * an answer, or NULL when it may. */
static GError *
np_stream_check_pending_locked (NpStream *self,
                                gsize     size)
{
  guint max_requests = np_stream_limit (self, NP_LIMIT_MAX_PENDING_REQUESTS);
  guint max_bytes = np_stream_limit (self, NP_LIMIT_MAX_PENDING_REQUEST_BYTES);

  NP_STREAM_ENSURE_LOCKED (self);

  if (max_requests > 0 && self->n_unanswered >= max_requests)
    return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS,
                                _("the request was refused: %u requests already wait for "
                                  "an answer on this connection, the most it holds "
                                  "(max-pending-requests)"),
                                self->n_unanswered);

  if (max_bytes > 0 && self->unanswered_bytes + size > max_bytes)
    return np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS,
                                _("the request of %u bytes was refused: with the %u bytes "
                                  "of the requests that already wait for an answer on this "
                                  "connection, it would pass the %u bytes it holds "
                                  "(max-pending-request-bytes)"),
                                (guint) MIN (size, G_MAXUINT),
                                (guint) MIN (self->unanswered_bytes, G_MAXUINT),
                                max_bytes);

  return NULL;
}

/* A request of @size bytes came from the peer, as request @id, with
 * @n_fds descriptors: returns TRUE to deliver it, counted among those
 * that wait for an answer until np_stream_reply(), its descriptors in
 * the budget until then (the application keeps them while it works on
 * the answer; the library bounds the requests it keeps, and so these). One past the bounds is answered at once with
 * TOO_MANY_REQUESTS (its bytes go with the frame); one of id 0, which
 * no request has, or of an id that waits already, whose answers could
 * not be told apart, ends the stream. From the read side. */
gboolean
np_stream_take_request (NpStream      *self,
                        guint32        id,
                        gsize          size,
                        guint          n_fds,
                        NpStreamAfter *after)
{
  g_autoptr(GError) error = NULL;
  gboolean take = FALSE;

  g_mutex_lock (self->lock);
  if (id == 0)
    {
      error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                   _("the peer sent a request of id 0, which no request has"));
      np_stream_abort_locked (self, error, after);
    }
  else if (self->unanswered != NULL &&
           g_hash_table_contains (self->unanswered, GUINT_TO_POINTER (id)))
    {
      error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                   _("the peer sent a request of id %u while its request of "
                                     "that id still waits for an answer"), id);
      np_stream_abort_locked (self, error, after);
    }
  else if ((error = np_stream_check_pending_locked (self, size)) != NULL)
    np_stream_queue_error_reply_locked (self, id, error, after);
  else
    {
      /* Made for the first request: most pipes never receive one. */
      if (self->unanswered == NULL)
        self->unanswered = g_hash_table_new (NULL, NULL);
      g_hash_table_insert (self->unanswered, GUINT_TO_POINTER (id), GSIZE_TO_POINTER (size));
      if (n_fds > 0)
        {
          if (self->unanswered_fds == NULL)
            self->unanswered_fds = g_hash_table_new (NULL, NULL);
          g_hash_table_insert (self->unanswered_fds, GUINT_TO_POINTER (id), GUINT_TO_POINTER (n_fds));
        }
      self->n_unanswered++;
      self->unanswered_bytes += size;
      take = TRUE;
    }
  g_mutex_unlock (self->lock);

  return take;
}

/* Sends @message as a request, with @fds (NULL or empty: none); @task
 * returns the reply as a #GBytes, or the peer's error: finish it with
 * np_stream_request_finish(). */
void
np_stream_request_async (NpStream    *self,
                         GBytes      *message,
                         GUnixFDList *fds,
                         GTask       *task)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  guint n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;
  GError *error = NULL;
  NpOp *op;

  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (self->lock);
  if (self->peer_known && self->version < NP_PROTOCOL_REQUESTS)
    error = np_stream_not_supported_error_new (self);
  else if (n_fds > 0 && !np_stream_check_request_fds_locked (self, n_fds, &error))
    ;
  else if (np_stream_check_send_locked (self, g_bytes_get_size (message), &after, &error))
    {
      op = np_op_new (NP_OP_REQUEST, task);
      op->fds = n_fds > 0 ? g_object_ref (fds) : NULL;
      if (!np_stream_park_locked (self, message, op, TRUE))
        {
          op->message = g_bytes_ref (message);
          np_stream_send_request_locked (self, op);
        }
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    np_stream_watch_cancellable (self, task, NULL);
}

/* Answers request @id with @reply and its @fds (NULL or empty: none), or
 * with @reply_error. An answer to a stream that closed goes nowhere. */
void
np_stream_reply (NpStream     *self,
                 guint32       id,
                 GBytes       *reply,
                 GUnixFDList  *fds,
                 const GError *reply_error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  guint n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;
  g_autoptr(GError) refused = NULL;
  g_autoptr(GError) not_sent = NULL;
  g_autoptr(GError) full = NULL;
  gpointer size;
  gpointer held_fds;

  g_mutex_lock (self->lock);
  /* Each request is answered once (NpPipeRequest sees to it): its id
   * may come again. */
  if (self->unanswered != NULL &&
      g_hash_table_steal_extended (self->unanswered, GUINT_TO_POINTER (id), NULL, &size))
    {
      self->n_unanswered--;
      self->unanswered_bytes -= GPOINTER_TO_SIZE (size);
    }
  if (self->unanswered_fds != NULL &&
      g_hash_table_steal_extended (self->unanswered_fds, GUINT_TO_POINTER (id), NULL, &held_fds))
    np_fd_budget_release (GPOINTER_TO_UINT (held_fds));
  /* Descriptors the requester cannot take: it is told, as of a reply too
   * large, rather than given the reply without them. */
  if (reply_error == NULL && n_fds > 0 &&
      !np_stream_check_reply_fds_locked (self, n_fds, &refused))
    {
      not_sent = g_error_new (refused->domain, refused->code,
                              _("The reply could not be sent with its %u descriptors: %s"),
                              n_fds, refused->message);
      reply_error = not_sent;
    }
  if (reply_error != NULL)
    np_stream_queue_error_reply_locked (self, id, reply_error, &after);
  else
    {
      guint8 header[NP_REQUEST_HEADER_SIZE];

      if (self->peer_known && g_bytes_get_size (reply) > self->peer_max_message_size)
        {
          g_autoptr(GError) too_large = NULL;
          g_autoptr(GBytes) payload = NULL;
          guint8 error_header[NP_FRAME_HEADER_SIZE];

          /* The requester is told, instead of waiting for a reply that
           * would cost it its connection. */
          too_large = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                                           _("the reply of %zu bytes exceeds the limit of "
                                             "%u bytes that the requesting side accepts"),
                                           g_bytes_get_size (reply), self->peer_max_message_size);
          payload = np_error_reply_encode (id, too_large);
          np_frame_header_encode (error_header, NP_FRAME_ERROR, g_bytes_get_size (payload));
          if (!np_stream_queue_peer_frame_locked (self, error_header, sizeof error_header, payload,
                                                  &full))
            np_stream_abort_locked (self, full, &after);
        }
      else if (n_fds > 0)
        {
          np_request_header_encode_fds (header, NP_FRAME_REPLY_FDS, id, g_bytes_get_size (reply),
                                        n_fds);
          if (!np_stream_queue_peer_frame_with_fds_locked (self, header, sizeof header, reply, fds,
                                                           &full))
            np_stream_abort_locked (self, full, &after);
        }
      else
        {
          np_request_header_encode (header, NP_FRAME_REPLY, id, g_bytes_get_size (reply));
          if (!np_stream_queue_peer_frame_locked (self, header, sizeof header, reply, &full))
            np_stream_abort_locked (self, full, &after);
        }
    }

  /* Reported from the context: a reply may come from any thread. */
  np_stream_after (self, &after, NP_STREAM_AFTER_DEFER);
  g_mutex_unlock (self->lock);
}

/* Blocking requests */

/* Takes @op, a request no longer waited for, out of the stream. */
static void
np_stream_drop_sync_request (NpStream *self,
                             NpOp     *op)
{
  gboolean found = FALSE;

  g_mutex_lock (self->lock);
  if (g_hash_table_lookup (np_stream_get_requests_locked (self), GUINT_TO_POINTER (op->request_id)) == op)
    {
      g_hash_table_steal (self->requests, GUINT_TO_POINTER (op->request_id));
      found = TRUE;
    }
  else
    for (GList *l = self->parked.head; l != NULL; l = l->next)
      {
        NpParked *parked = l->data;

        if (parked->op == op)
          {
            self->parked_bytes -= NP_REQUEST_HEADER_SIZE + g_bytes_get_size (parked->message);
            g_queue_delete_link (&self->parked, l);
            np_parked_free (parked);
            found = TRUE;
            break;
          }
      }
  if (found && op->timeout != NULL)
    np_poller_timer_destroy (g_steal_pointer (&op->timeout));
  g_mutex_unlock (self->lock);

  /* Found, it is ours to complete; otherwise another thread is
   * completing it: either way, wait for that. */
  if (found)
    np_op_complete (op);
}

static void
np_stream_abandon_sync_request (NpStream   *self,
                                NpOp       *op,
                                NpSyncWait *wait)
{
  np_stream_drop_sync_request (self, op);

  g_mutex_lock (&wait->base.mutex);
  while (!wait->base.done)
    g_cond_wait (&wait->base.cond, &wait->base.mutex);
  g_mutex_unlock (&wait->base.mutex);
}

/* Sends @message as a request, with @fds (NULL or empty: none), and
 * blocks the calling thread until the reply comes, the request timeout
 * passes or @cancellable is cancelled; the reply's descriptors go to
 * @out_fds (NULL when it had none), or are closed when it is NULL.
 * When no other thread runs the stream's context, this thread reads the
 * transport itself (delivering what else arrives meanwhile, as the
 * context would); otherwise it waits for that thread to read the reply.
 * It never iterates a main context. */
GBytes *
np_stream_request_sync (NpStream      *self,
                        GBytes        *message,
                        GUnixFDList   *fds,
                        GUnixFDList  **out_fds,
                        GCancellable  *cancellable,
                        GError       **error)
{
  NpStreamAfter after = NP_STREAM_AFTER_INIT;
  guint n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;
  NpSyncWait wait = { 0 };
  GError *local_error = NULL;
  gint64 deadline = -1;
  guint timeout = 0;
  NpOp *op = NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  np_stream_wait_init (&wait.base);

  /* A peer that went away may have said why: that is the error. */
  np_stream_read_after_hangup (self);

  g_mutex_lock (self->lock);
  if (self->peer_known && self->version < NP_PROTOCOL_REQUESTS)
    local_error = np_stream_not_supported_error_new (self);
  else if (n_fds > 0 && !np_stream_check_request_fds_locked (self, n_fds, &local_error))
    ;
  else if (np_stream_check_send_locked (self, g_bytes_get_size (message), &after, &local_error))
    {
      op = np_op_new (NP_OP_REQUEST, NULL);
      op->sync = &wait;
      op->fds = n_fds > 0 ? g_object_ref (fds) : NULL;
      if (!np_stream_park_locked (self, message, op, TRUE))
        {
          op->message = g_bytes_ref (message);
          np_stream_send_request_locked (self, op);
        }
      timeout = np_stream_limit (self, NP_LIMIT_REQUEST_TIMEOUT);
      if (timeout > 0)
        deadline = g_get_monotonic_time () + timeout * G_TIME_SPAN_MILLISECOND;
    }
  g_mutex_unlock (self->lock);

  np_stream_after (self, &after, NP_STREAM_AFTER_COMPLETE);

  if (op == NULL)
    {
      np_stream_wait_clear (&wait.base);
      g_propagate_error (error, local_error);
      return NULL;
    }

  /* Given up (cancelled, or past the timeout): once the request is
   * taken out, or completed by another thread meanwhile, it is done. */
  if (!np_stream_block (self, &wait.base, deadline, cancellable))
    {
      np_stream_abandon_sync_request (self, op, &wait);
      if (wait.reply == NULL && wait.base.error == NULL)
        {
          if (g_cancellable_is_cancelled (cancellable))
            wait.base.error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                   _("Operation was cancelled"));
          else
            wait.base.error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                                   _("the peer did not answer the request "
                                                     "within %u ms"),
                                                   timeout);
        }
    }

  local_error = g_steal_pointer (&wait.base.error);
  np_stream_wait_clear (&wait.base);

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      g_clear_pointer (&wait.reply, g_bytes_unref);
      g_clear_object (&wait.reply_fds);
      return NULL;
    }

  if (out_fds != NULL)
    *out_fds = g_steal_pointer (&wait.reply_fds);
  else
    g_clear_object (&wait.reply_fds);

  return wait.reply;
}

/* Finishes the @task of np_stream_request_async(): the reply, and its
 * descriptors in @out_fds (NULL when it had none), or closed when
 * @out_fds is NULL. */
GBytes *
np_stream_request_finish (GTask         *task,
                          GUnixFDList  **out_fds,
                          GError       **error)
{
  GBytes *reply = g_task_propagate_pointer (task, error);

  if (out_fds != NULL)
    *out_fds = reply != NULL
               ? np_stream_take_reply_fds (task)
               : NULL;

  return reply;
}
