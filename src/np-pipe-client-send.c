/* np-pipe-client-send.c: sending, flushing, pinging and requests
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-pipe-client-internal.h"
#include "np-variant.h"

/* Not connected: because the server refused the client, when it did
 * (the refusal is what the caller needs to know), or simply. */
static void
np_pipe_client_set_not_connected_locked (NpPipeClient  *self,
                                         GError       **error)
{
  if (self->refusal != NULL)
    g_propagate_error (error, g_error_copy (self->refusal));
  else
    g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                 _("Pipe “%s” is not connected"), self->name);
}

/* The connection, with a reference, or %NULL when not connected. */
static NpStream *
np_pipe_client_ref_stream (NpPipeClient  *self,
                           GError       **error)
{
  NpStream *stream = NULL;

  g_mutex_lock (self->lock);
  if (self->connected && self->stream != NULL)
    stream = np_stream_ref (self->stream);
  else
    np_pipe_client_set_not_connected_locked (self, error);
  g_mutex_unlock (self->lock);

  return stream;
}

/* Hands @task to the connection, or fails it when the client is not
 * connected. */
static void
np_pipe_client_run_on_stream (NpPipeClient  *self,
                              GTask         *task,
                              void         (*run) (NpStream *stream,
                                                   GTask    *task))
{
  g_autoptr(NpStream) stream = NULL;
  GError *error = NULL;

  stream = np_pipe_client_ref_stream (self, &error);
  if (stream == NULL)
    g_task_return_error (task, error);
  else
    run (stream, task);
}

static void
np_pipe_client_run_request (NpStream *stream,
                            GTask    *task)
{
  np_stream_request_async (stream, g_task_get_task_data (task), NULL, task);
}

/**
 * np_pipe_client_send:
 * @self: a #NpPipeClient
 * @message: the message, 0 bytes or more
 * @error: return location for a #GError
 *
 * Queues @message to the server. This never blocks: the queue is written
 * from the client's main context as one vectored write for everything
 * queued in the meantime, and at once once it grows past a few tens of
 * KiB. [method@Np.PipeClient.flush_sync] and [method@Np.PipeClient.close]
 * write it out without a main loop.
 *
 * Fails with %NP_PIPE_ERROR_CLOSED when the client is not connected, with
 * %NP_PIPE_ERROR_MESSAGE_TOO_LARGE when the server announced a smaller
 * [property@Np.PipeServer:max-message-size], and with
 * %NP_PIPE_ERROR_QUEUE_FULL when the server does not keep up (see
 * [property@Np.PipeClient:max-queued-bytes]).
 *
 * With [property@Np.PipeClient:auto-reconnect], a message sent while the
 * client is disconnected and connecting again (or while
 * [method@Np.PipeClient.connect_async] waits for the server) is held,
 * within [property@Np.PipeClient:max-queued-bytes], and written first,
 * in order, once the server accepted the client. A message sent before
 * the client noticed that its connection was lost may be lost with it:
 * delivery across a reconnect is at most once.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send (NpPipeClient  *self,
                     GBytes        *message,
                     GError       **error)
{
  gboolean ret;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Queueing never calls out: the lock may stay held. */
  g_mutex_lock (self->lock);
  if (self->connected && self->stream != NULL)
    ret = np_stream_send_locked (self->stream, message, error);
  else if (np_pipe_client_may_hold_locked (self))
    ret = np_pipe_client_hold_locked (self, message, error);
  else
    {
      np_pipe_client_set_not_connected_locked (self, error);
      ret = FALSE;
    }
  g_mutex_unlock (self->lock);

  return ret;
}

/**
 * np_pipe_client_send_with_fds:
 * @self: a #NpPipeClient
 * @message: the message, 0 bytes or more
 * @fds: (nullable): the descriptors to pass with it, at most 253
 * @error: return location for a #GError
 *
 * Queues @message to the server with the file descriptors of @fds,
 * which travel with it over the socket (`SCM_RIGHTS`): the server
 * receives duplicates of them, with the message, through
 * [signal@Np.PipeServer::message-with-fds-received]. This never blocks,
 * and fails like [method@Np.PipeClient.send], but for one thing: while
 * the client is disconnected, with
 * [property@Np.PipeClient:auto-reconnect] too, it fails with
 * %NP_PIPE_ERROR_CLOSED rather than hold the message (and its open
 * descriptors) for a server that may never come back.
 *
 * The client keeps a reference to @fds until the message is written
 * (the descriptors stay open until then); when the connection closes
 * first, that reference is dropped. @fds with no descriptors, or %NULL,
 * sends a plain message.
 *
 * Fails with %NP_PIPE_ERROR_NOT_SUPPORTED when the server's library does
 * not take descriptors (it speaks protocol version 2 or earlier), or
 * when @fds holds more than 253. Sent before the server's handshake
 * arrived, the message goes out all the same, as any message does: a
 * server too old to take descriptors then closes the connection with
 * %NP_PIPE_ERROR_PROTOCOL, reported by
 * [signal@Np.PipeClient::disconnected]. (Behind a request that waits for
 * the handshake, it waits too, and such a server closes the connection
 * with %NP_PIPE_ERROR_NOT_SUPPORTED.)
 * A server that takes fewer per message (its
 * [property@Np.PipeServer:max-fds-per-message]) than @fds holds closes
 * the connection with %NP_PIPE_ERROR_PROTOCOL.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send_with_fds (NpPipeClient  *self,
                              GBytes        *message,
                              GUnixFDList   *fds,
                              GError       **error)
{
  gboolean ret;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (fds == NULL || G_IS_UNIX_FD_LIST (fds), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (fds == NULL || g_unix_fd_list_get_length (fds) == 0)
    return np_pipe_client_send (self, message, error);

  g_mutex_lock (self->lock);
  if (self->connected && self->stream != NULL)
    ret = np_stream_send_with_fds_locked (self->stream, message, fds, error);
  else
    {
      np_pipe_client_set_not_connected_locked (self, error);
      ret = FALSE;
    }
  g_mutex_unlock (self->lock);

  return ret;
}

/**
 * np_pipe_client_send_data:
 * @self: a #NpPipeClient
 * @data: (array length=size) (element-type guint8) (nullable): the message
 * @size: the length of @data
 * @error: return location for a #GError
 *
 * Queues a copy of @data as one message, like [method@Np.PipeClient.send].
 * This is the call for bindings that hold a byte string rather than a
 * #GBytes, such as a Python `bytes` object.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send_data (NpPipeClient  *self,
                          const guint8  *data,
                          gsize          size,
                          GError       **error)
{
  g_autoptr(GBytes) message = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (data != NULL || size == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  message = g_bytes_new (data, size);

  return np_pipe_client_send (self, message, error);
}

/**
 * np_pipe_client_send_async:
 * @self: a #NpPipeClient
 * @message: the message, 0 bytes or more
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the message is written to the
 *   socket, or failed
 * @user_data: data for @callback
 *
 * Queues @message like [method@Np.PipeClient.send] and reports when it
 * has been written to the socket. Finish with
 * [method@Np.PipeClient.send_finish].
 *
 * Cancelling before any byte of the message was written takes it out of
 * the queue: the server never sees it. Once writing has begun, the
 * message is delivered whole all the same, and the call still fails with
 * %G_IO_ERROR_CANCELLED.
 *
 * Since: 1.0
 */
void
np_pipe_client_send_async (NpPipeClient        *self,
                           GBytes              *message,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(NpStream) stream = NULL;
  GError *error = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (message != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_send_async);

  stream = np_pipe_client_ref_stream (self, &error);
  if (stream == NULL)
    g_task_return_error (task, error);
  else
    np_stream_send_async (stream, message, task);
}

/**
 * np_pipe_client_send_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.send_async].
 *
 * Returns: %TRUE if the message was written to the socket
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send_finish (NpPipeClient  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * np_pipe_client_flush_sync:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes out everything queued, blocking the calling thread until the
 * socket took it. No main context is iterated; when the server runs in the
 * same thread, queue no more than the socket buffer holds (some hundred
 * KiB) before flushing, or use [method@Np.PipeClient.flush_async].
 *
 * Returns: %TRUE if everything queued was written
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_flush_sync (NpPipeClient  *self,
                           GCancellable  *cancellable,
                           GError       **error)
{
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Completing a send_async may run a callback that drops the last
   * reference. */
  hold = g_object_ref (self);
  stream = np_pipe_client_ref_stream (self, error);

  return stream != NULL && np_stream_flush_sync (stream, cancellable, error);
}

/**
 * np_pipe_client_flush_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything queued so far is
 *   written, or failed
 * @user_data: data for @callback
 *
 * Writes out everything queued from the client's main context. Finish
 * with [method@Np.PipeClient.flush_finish]. Cancelling fails the call at
 * once with %G_IO_ERROR_CANCELLED; what is queued is written all the
 * same.
 *
 * Since: 1.0
 */
void
np_pipe_client_flush_async (NpPipeClient        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_flush_async);
  np_pipe_client_run_on_stream (self, task, np_stream_flush_async);
}

/**
 * np_pipe_client_flush_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.flush_async].
 *
 * Returns: %TRUE if everything queued was written
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_flush_finish (NpPipeClient  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * np_pipe_client_ping_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the server answered, or the
 *   connection ended first
 * @user_data: data for @callback
 *
 * Sends a ping that the server's library answers by itself, whatever the
 * application does, and measures the round trip. Finish with
 * [method@Np.PipeClient.ping_finish].
 *
 * Cancelling fails the call at once with %G_IO_ERROR_CANCELLED; the ping
 * is taken out of the queue if none of it was written, and an answer
 * that comes later is ignored.
 *
 * Since: 1.0
 */
void
np_pipe_client_ping_async (NpPipeClient        *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_ping_async);
  np_pipe_client_run_on_stream (self, task, np_stream_ping_async);
}

/**
 * np_pipe_client_ping_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.ping_async].
 *
 * Returns: the round trip, in microseconds (0 or more), once the server
 *   answered; -1, with @error set, when it did not
 *
 * Since: 1.0
 */
gint64
np_pipe_client_ping_finish (NpPipeClient  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  gssize usec;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), -1);
  g_return_val_if_fail (g_task_is_valid (result, self), -1);

  usec = g_task_propagate_int (G_TASK (result), error);
  g_assert (usec >= -1);

  return usec;
}

/**
 * np_pipe_client_get_queued_bytes:
 * @self: a #NpPipeClient
 *
 * Gets how many bytes are queued to the server and not yet written to the
 * socket, framing included: a measure of progress for a large send, or of
 * a server that does not keep up.
 *
 * Returns: the bytes queued, 0 when not connected (but for messages held
 *   for a reconnect, see [property@Np.PipeClient:auto-reconnect])
 *
 * Since: 1.0
 */
guint64
np_pipe_client_get_queued_bytes (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  /* Called after every send by producers that pace themselves: no lock. */
  return __atomic_load_n (&self->queued_bytes, __ATOMIC_RELAXED);
}

/**
 * np_pipe_client_send_variant:
 * @self: a #NpPipeClient
 * @value: the value; a floating reference is consumed
 * @error: return location for a #GError
 *
 * Queues @value to the server as one message, with its type, as
 * [func@Np.variant_to_message] makes it; the server reads it back with
 * [func@Np.variant_from_message]. Fails like [method@Np.PipeClient.send].
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send_variant (NpPipeClient  *self,
                             GVariant      *value,
                             GError       **error)
{
  g_autoptr(GBytes) message = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  message = np_variant_to_message (value);

  return np_pipe_client_send (self, message, error);
}

/**
 * np_pipe_client_request_async:
 * @self: a #NpPipeClient
 * @request: the request's message
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the server's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the server: sends @request, which the server receives through
 * [signal@Np.PipeServer::request-received], and reports its reply in the
 * thread-default main context of the calling thread. Finish with
 * [method@Np.PipeClient.request_finish].
 *
 * Many requests may be in flight at once; replies are matched whatever
 * order they come in, and requests keep their place among the messages
 * sent. A request unanswered after [property@Np.PipeClient:request-timeout]
 * fails with %NP_PIPE_ERROR_TIMED_OUT; one to a server whose library has
 * no requests fails at once with %NP_PIPE_ERROR_NOT_SUPPORTED; a
 * disconnect fails every pending request with the disconnect's error. An
 * error the server replies with keeps its domain and code. Cancelling
 * fails only this request, with %G_IO_ERROR_CANCELLED; a reply that comes
 * later is dropped, and a request cancelled before any of it was written
 * is never sent.
 *
 * Since: 1.0
 */
void
np_pipe_client_request_async (NpPipeClient        *self,
                              GBytes              *request,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_request_async);
  g_task_set_task_data (task, g_bytes_ref (request), (GDestroyNotify) g_bytes_unref);
  np_pipe_client_run_on_stream (self, task, np_pipe_client_run_request);
}

/**
 * np_pipe_client_request_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.request_async].
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_finish (NpPipeClient  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * np_pipe_client_request_data_async:
 * @self: a #NpPipeClient
 * @data: (array length=size) (element-type guint8) (nullable): the request's
 *   message
 * @size: the length of @data
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the server's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the server with a copy of @data, like
 * [method@Np.PipeClient.request_async]: the call for bindings that hold a
 * byte string rather than a #GBytes, such as a Python `bytes` object.
 * Finish with [method@Np.PipeClient.request_data_finish].
 *
 * Since: 1.0
 */
void
np_pipe_client_request_data_async (NpPipeClient        *self,
                                   const guint8        *data,
                                   gsize                size,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GBytes) request = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (data != NULL || size == 0);

  request = g_bytes_new (data, size);
  np_pipe_client_request_async (self, request, cancellable, callback, user_data);
}

/**
 * np_pipe_client_request_data_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.request_data_async].
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_data_finish (NpPipeClient  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  return np_pipe_client_request_finish (self, result, error);
}

/**
 * np_pipe_client_request_sync:
 * @self: a #NpPipeClient
 * @request: the request's message
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the server, like [method@Np.PipeClient.request_async], and blocks
 * the calling thread until the reply comes, the request times out or
 * @cancellable is cancelled.
 *
 * It blocks on the socket and never iterates the caller's main context:
 * when no other thread runs the client's main context, this thread reads
 * the socket itself (messages and requests that arrive meanwhile are
 * delivered from here, as the context would); otherwise it waits for that
 * thread to read the reply. So the server cannot run in the same thread:
 * it could not answer. Called from a handler of this client's own
 * messages, it delivers the messages that follow, in order, before the
 * handler returns, as a main loop run there would.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_sync (NpPipeClient  *self,
                             GBytes        *request,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* What arrives meanwhile may run handlers that drop the client. */
  hold = g_object_ref (self);
  stream = np_pipe_client_ref_stream (self, error);
  if (stream == NULL)
    return NULL;

  return np_stream_request_sync (stream, request, NULL, NULL, cancellable, error);
}

/**
 * np_pipe_client_request_data_sync:
 * @self: a #NpPipeClient
 * @data: (array length=size) (element-type guint8) (nullable): the request's
 *   message
 * @size: the length of @data
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the server with a copy of @data and blocks until the reply comes,
 * like [method@Np.PipeClient.request_sync]: the call for bindings that
 * hold a byte string, such as a Python `bytes` object.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_data_sync (NpPipeClient  *self,
                                  const guint8  *data,
                                  gsize          size,
                                  GCancellable  *cancellable,
                                  GError       **error)
{
  g_autoptr(GBytes) request = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (data != NULL || size == 0, NULL);

  request = g_bytes_new (data, size);
  return np_pipe_client_request_sync (self, request, cancellable, error);
}

/**
 * np_pipe_client_request_with_fds_async:
 * @self: a #NpPipeClient
 * @request: the request's message
 * @fd_list: (nullable): the descriptors to pass with it, at most 253
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the server's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the server, like [method@Np.PipeClient.request_async], passing the
 * file descriptors of @fd_list with the request (`SCM_RIGHTS`), and
 * taking those the server passes with its reply: finish with
 * [method@Np.PipeClient.request_with_fds_finish]. This is the call for a
 * service that hands out descriptors, as GDBus's
 * g_dbus_connection_call_with_unix_fd_list() does: open a file for the
 * caller, give it a memfd.
 *
 * The server finds the descriptors with
 * [method@Np.PipeRequest.get_fd_list] and answers with
 * [method@Np.PipeRequest.reply_with_fds]. The client keeps a reference
 * to @fd_list until the request is written (or cancelled before it was).
 * @fd_list with no descriptors, or %NULL, sends a plain request, whose
 * reply may still carry descriptors.
 *
 * Requests and replies carry descriptors from protocol version 4 on: to
 * a server whose library speaks an older version, a request with
 * descriptors fails with %NP_PIPE_ERROR_NOT_SUPPORTED and is not sent (at
 * once, or once the server's handshake tells, for a request made before
 * it). More than 253 descriptors fail the same way, and more than the
 * server takes ([property@Np.PipeServer:max-fds-per-message], announced
 * in the handshake) with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE; the
 * connection goes on.
 *
 * Since: 1.0
 */
void
np_pipe_client_request_with_fds_async (NpPipeClient        *self,
                                       GBytes              *request,
                                       GUnixFDList         *fd_list,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(NpStream) stream = NULL;
  GError *error = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_request_with_fds_async);

  stream = np_pipe_client_ref_stream (self, &error);
  if (stream == NULL)
    g_task_return_error (task, error);
  else
    np_stream_request_async (stream, request, fd_list, task);
}

/**
 * np_pipe_client_request_with_fds_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @out_fd_list: (out) (optional) (nullable) (transfer full): where to put
 *   the descriptors of the reply, %NULL when it carried none
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.request_with_fds_async]. The reply's
 * descriptors are the caller's; with @out_fd_list %NULL, they are
 * closed.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_with_fds_finish (NpPipeClient  *self,
                                        GAsyncResult  *result,
                                        GUnixFDList  **out_fd_list,
                                        GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        np_pipe_client_request_with_fds_async, NULL);

  return np_stream_request_finish (G_TASK (result), out_fd_list, error);
}

/**
 * np_pipe_client_request_with_fds_sync:
 * @self: a #NpPipeClient
 * @request: the request's message
 * @fd_list: (nullable): the descriptors to pass with it, at most 253
 * @out_fd_list: (out) (optional) (nullable) (transfer full): where to put
 *   the descriptors of the reply, %NULL when it carried none
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the server with descriptors, like
 * [method@Np.PipeClient.request_with_fds_async], and blocks the calling
 * thread until the reply comes, the request times out or @cancellable is
 * cancelled, as [method@Np.PipeClient.request_sync] does.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_client_request_with_fds_sync (NpPipeClient  *self,
                                      GBytes        *request,
                                      GUnixFDList   *fd_list,
                                      GUnixFDList  **out_fd_list,
                                      GCancellable  *cancellable,
                                      GError       **error)
{
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list), NULL);
  g_return_val_if_fail (out_fd_list == NULL || *out_fd_list == NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* What arrives meanwhile may run handlers that drop the client. */
  hold = g_object_ref (self);
  stream = np_pipe_client_ref_stream (self, error);
  if (stream == NULL)
    return NULL;

  return np_stream_request_sync (stream, request, fd_list, out_fd_list, cancellable, error);
}
