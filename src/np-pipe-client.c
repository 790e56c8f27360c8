/* np-pipe-client.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-context-private.h"
#include "np-error.h"
#include "np-i18n-private.h"
#include "np-marshal.h"
#include "np-name-private.h"
#include "np-pipe-client-internal.h"
#include "np-pipe-request-private.h"

/**
 * NpPipeClient:
 *
 * A connection to the [class@Np.PipeServer] running under a name.
 *
 * ```c
 * g_autoptr(NpPipeClient) client = np_pipe_client_new ("my-app");
 * g_autoptr(GBytes) message = g_bytes_new_static ("hello", 5);
 *
 * if (!np_pipe_client_connect_sync (client, NULL, &error) ||
 *     !np_pipe_client_send (client, message, &error))
 *   g_printerr ("%s\n", error->message);
 * np_pipe_client_close (client, NULL, NULL);  // writes out what is queued
 * ```
 *
 * [method@Np.PipeClient.send] only queues: the queue is written from the
 * client's main context, or by [method@Np.PipeClient.flush_sync] and
 * [method@Np.PipeClient.close], so a program that never runs a main loop
 * loses nothing either. Messages from the server arrive through
 * [signal@Np.PipeClient::message-received] while the main context runs.
 *
 * [method@Np.PipeClient.connect_async] and
 * [method@Np.PipeClient.connect_sync] complete once the server has
 * accepted the client, so a refusal is their error. connect_sync does not
 * wait for a server of this process that only the calling thread would
 * run, so that a server and its clients may share one thread: a refusal
 * then arrives as [signal@Np.PipeClient::disconnected].
 *
 * ## Threads and main contexts
 *
 * Every method of a client may be called from any thread, at any time,
 * as with a `GDBusConnection`. Its signals, and the notifications of the
 * properties that change by themselves, are emitted in the main context
 * that was the thread-default one when the client was created. The
 * callback of an `_async` call runs in the thread-default main context of
 * the thread that made the call, as everywhere in GIO.
 *
 * A client used only through its blocking calls
 * ([method@Np.PipeClient.connect_sync], [method@Np.PipeClient.send],
 * [method@Np.PipeClient.flush_sync], [method@Np.PipeClient.close]) works
 * in a thread that never runs a main loop. Messages sent from one thread
 * reach the server in the order that thread sent them; messages sent
 * from several threads arrive whole, never mixed.
 *
 * Since: 1.0
 */

enum {
  ACCEPTED,
  MESSAGE_RECEIVED,
  REQUEST_RECEIVED,
  DISCONNECTED,
  QUEUE_DRAINED,
  MESSAGE_WITH_FDS_RECEIVED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (NpPipeClient, np_pipe_client, G_TYPE_OBJECT)

static guint signals [N_SIGNALS];

#define properties np_pipe_client_properties


/* Marks the client connected (to self->stream) or not; what the stream
 * queues is then published for np_pipe_client_get_queued_bytes(), or 0. */
void
np_pipe_client_set_connected_locked (NpPipeClient *self,
                                     gboolean      connected)
{
  self->connected = !!connected;
  if (connected)
    self->connected_since = g_get_monotonic_time ();

  if (self->stream != NULL)
    np_stream_set_queued_mirror_locked (self->stream, connected ? &self->queued_bytes : NULL);
  if (connected)
    np_pipe_client_release_held_locked (self);
  else
    __atomic_store_n (&self->queued_bytes, self->held_bytes, __ATOMIC_RELAXED);
}

/* Keeps why the server refused the client, or a message of it, for the
 * calls made until the next connect or close() (@error NULL: forgets). */
void
np_pipe_client_note_refusal_locked (NpPipeClient *self,
                                    const GError *error)
{
  if (error != NULL &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED) &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS) &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE))
    return;

  g_clear_error (&self->refusal);
  if (error != NULL)
    self->refusal = g_error_copy (error);
}

static void
np_pipe_client_stream_opened (GObject  *owner,
                              NpStream *stream)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  guint32 peer_max_message_size = np_stream_get_peer_max_message_size (stream);
  GTask *task = NULL;
  gboolean accepted;

  g_mutex_lock (self->lock);
  if (stream == self->connect_stream && self->connect_task != NULL)
    task = g_object_ref (self->connect_task);
  if (stream == self->stream)
    self->last_peer_max_message_size = peer_max_message_size;
  g_mutex_unlock (self->lock);

  g_object_notify_by_pspec (owner, properties [NP_PIPE_CLIENT_PROP_PEER_MAX_MESSAGE_SIZE]);

  np_pipe_client_connected_sync (self, stream, NULL);

  if (task != NULL)
    {
      np_pipe_client_connected (self, task, NULL);
      g_object_unref (task);
    }

  /* Whatever connected it, connect_sync(), connect_async() or a
   * reconnect, unless it was closed meanwhile. */
  g_mutex_lock (self->lock);
  accepted = stream == self->stream && self->connected;
  g_mutex_unlock (self->lock);

  if (accepted)
    g_signal_emit (self, signals [ACCEPTED], 0);
}

static void
np_pipe_client_stream_message (GObject *owner,
                               GBytes  *message)
{
  g_signal_emit (owner, signals [MESSAGE_RECEIVED], 0, message);
}

/* When nothing handles message-with-fds-received, the descriptors are
 * closed and the message goes to message-received. */
static void
np_pipe_client_stream_message_with_fds (GObject     *owner,
                                        GBytes      *message,
                                        GUnixFDList *fds)
{
  if (g_signal_has_handler_pending (owner, signals [MESSAGE_WITH_FDS_RECEIVED], 0, FALSE))
    g_signal_emit (owner, signals [MESSAGE_WITH_FDS_RECEIVED], 0, message, fds);
  else
    {
      g_autofree int *taken = g_unix_fd_list_steal_fds (fds, NULL);

      for (gint i = 0; taken[i] != -1; i++)
        close (taken[i]);
      g_signal_emit (owner, signals [MESSAGE_RECEIVED], 0, message);
    }
}

static void
np_pipe_client_stream_request (GObject     *owner,
                               NpStream    *stream,
                               guint32      id,
                               GBytes      *message,
                               GUnixFDList *fds)
{
  g_autoptr(NpPipeRequest) request = _np_pipe_request_new (stream, id, message, fds, NULL);
  gboolean handled = FALSE;

  g_signal_emit (owner, signals [REQUEST_RECEIVED], 0, request, &handled);
  if (!handled)
    _np_pipe_request_reply_unhandled (request);
}

static void
np_pipe_client_stream_drained (GObject  *owner,
                               NpStream *stream)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  gboolean current;

  g_mutex_lock (self->lock);
  current = stream == self->stream && self->connected;
  g_mutex_unlock (self->lock);

  if (current)
    g_signal_emit (self, signals [QUEUE_DRAINED], 0);
}

static void
np_pipe_client_stream_closed (GObject      *owner,
                              NpStream     *stream,
                              const GError *error)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  NpStream *retired = NULL;
  gboolean notify = FALSE;
  gboolean reconnect = FALSE;
  gboolean sync = FALSE;
  GTask *task = NULL;
  guint index;

  g_mutex_lock (self->lock);
  if (stream == self->connect_stream || stream == self->stream)
    np_pipe_client_note_refusal_locked (self, error);
  if (stream == self->connect_stream && self->connect_task != NULL)
    task = g_object_ref (self->connect_task);
  else if (stream == self->connect_stream)
    sync = TRUE;
  else if (stream == self->stream && self->connected)
    {
      /* Not closed by close(): the server went, or dropped the client. */
      np_pipe_client_set_connected_locked (self, FALSE);
      notify = TRUE;
      reconnect = self->auto_reconnect;
      if (reconnect)
        {
          gint64 lasted_msec = (g_get_monotonic_time () - self->connected_since) / 1000;

          /* The back-off starts afresh after a connection that lasted
           * longer than the wait it would go on with; a server that
           * accepts and drops the client at once keeps it backing off
           * instead of being called on every reconnect-interval. */
          self->reconnecting = TRUE;
          self->reconnect_early = 0;
          self->reconnect_timer_full = FALSE;
          if (self->reconnect_delay == 0 || lasted_msec >= self->reconnect_delay)
            self->reconnect_delay = self->reconnect_interval;
        }
    }
  else if (g_ptr_array_find (self->retired, stream, &index))
    retired = g_ptr_array_steal_index_fast (self->retired, index);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&retired, np_stream_unref);

  /* A connection the server never accepted fails its connect. */
  if (sync)
    {
      g_autoptr(GError) refused = NULL;

      if (error == NULL)
        refused = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               _("Pipe “%s” closed the connection before accepting it"),
                               self->name);
      np_pipe_client_connected_sync (self, stream, error != NULL ? error : refused);
      return;
    }

  if (task != NULL)
    {
      g_autoptr(GError) refused = NULL;

      if (error == NULL)
        refused = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               _("Pipe “%s” closed the connection before accepting it"),
                               self->name);
      np_pipe_client_connected (self, task, error != NULL ? error : refused);
      g_object_unref (task);
      return;
    }

  if (notify)
    g_object_notify_by_pspec (owner, properties [NP_PIPE_CLIENT_PROP_CONNECTED]);
  g_signal_emit (self, signals [DISCONNECTED], 0, error);

  /* Unless a handler closed the client meanwhile. */
  if (reconnect)
    np_pipe_client_reconnect_later (self);
}

const NpStreamCallbacks np_pipe_client_stream_callbacks = {
  .peer_may_refuse = TRUE,
  .opened = np_pipe_client_stream_opened,
  .message = np_pipe_client_stream_message,
  .message_with_fds = np_pipe_client_stream_message_with_fds,
  .request = np_pipe_client_stream_request,
  .drained = np_pipe_client_stream_drained,
  .closed = np_pipe_client_stream_closed,
};

static void
np_pipe_client_dispose (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;
  g_autoptr(GPtrArray) retired = NULL;
  NpServerWatch *watch;
  NpStream *stream;

  g_mutex_lock (self->lock);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  np_pipe_client_drop_held_locked (self);
  np_pipe_client_set_connected_locked (self, FALSE);
  stream = g_steal_pointer (&self->stream);
  if (stream != NULL)
    g_ptr_array_add (self->retired, stream);
  retired = g_steal_pointer (&self->retired);
  self->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) np_stream_unref);
  if (self->attempt != NULL)
    g_cancellable_cancel (self->attempt);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&watch, np_server_watch_free);

  /* What the socket takes without blocking still goes out; call
   * np_pipe_client_close() to be sure everything does. */
  for (guint i = 0; i < retired->len; i++)
    np_stream_detach (g_ptr_array_index (retired, i));

  G_OBJECT_CLASS (np_pipe_client_parent_class)->dispose (object);
}

static void
np_pipe_client_finalize (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  /* A pending connect_async holds a reference on the client. */
  g_assert (self->connect_task == NULL && self->connect_wait == NULL &&
            self->connect_stream == NULL);
  g_assert (self->reconnect_watch == NULL && g_queue_is_empty (&self->held));

  g_clear_object (&self->attempt);
  g_clear_object (&self->reconnect_attempt);
  g_clear_error (&self->refusal);
  g_clear_pointer (&self->retired, g_ptr_array_unref);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  np_stream_lock_unref (self->lock);

  G_OBJECT_CLASS (np_pipe_client_parent_class)->finalize (object);
}

static void
np_pipe_client_constructed (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  G_OBJECT_CLASS (np_pipe_client_parent_class)->constructed (object);

  /* An invalid or missing name leaves the path unset; connecting then
   * says why. */
  if (self->name != NULL)
    self->path = np_name_to_path (self->name, NULL);
}

static void
np_pipe_client_class_init (NpPipeClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  np_i18n_init ();

  object_class->constructed = np_pipe_client_constructed;
  object_class->dispose = np_pipe_client_dispose;
  object_class->finalize = np_pipe_client_finalize;

  np_pipe_client_install_properties (object_class);

  /**
   * NpPipeClient::accepted:
   * @self: a #NpPipeClient
   *
   * Emitted each time the server accepts the client (its handshake
   * arrived): after [method@Np.PipeClient.connect_sync] or
   * [method@Np.PipeClient.connect_async], and after each reconnect with
   * [property@Np.PipeClient:auto-reconnect]. It comes when
   * [method@Np.PipeClient.connect_async] would complete, in the client's
   * main context; [property@Np.PipeClient:connected] is %TRUE then, and
   * the messages sent while disconnected are already queued, first.
   *
   * Since: 1.0
   */
  signals [ACCEPTED] =
    g_signal_new ("accepted",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * NpPipeClient::message-received:
   * @self: a #NpPipeClient
   * @message: the whole message
   *
   * Emitted for each whole message the server sends, in order.
   *
   * Since: 1.0
   */
  signals [MESSAGE_RECEIVED] =
    g_signal_new ("message-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_BYTES);

  /**
   * NpPipeClient::request-received:
   * @self: a #NpPipeClient
   * @request: the request, to answer once
   *
   * Emitted for each request the server sends
   * ([method@Np.PipeConnection.request_async]), in its place among the
   * messages. Answer it with [method@Np.PipeRequest.reply] or
   * [method@Np.PipeRequest.reply_error], in the handler or later by
   * keeping a reference, and return %TRUE. When no handler returns %TRUE,
   * the server gets %NP_PIPE_ERROR_NOT_SUPPORTED at once.
   *
   * Returns: %TRUE when the request was taken care of
   *
   * Since: 1.0
   */
  signals [REQUEST_RECEIVED] =
    g_signal_new ("request-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, g_signal_accumulator_true_handled, NULL,
                  _np_marshal_BOOLEAN__OBJECT,
                  G_TYPE_BOOLEAN, 1, NP_TYPE_PIPE_REQUEST);
  g_signal_set_va_marshaller (signals [REQUEST_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_BOOLEAN__OBJECTv);

  /**
   * NpPipeClient::disconnected:
   * @self: a #NpPipeClient
   * @error: (nullable): why the connection ended, or %NULL after a clean
   *   close by either side
   *
   * Emitted once per connection when it ends: after
   * [method@Np.PipeClient.close], when the server stops, or on a failure.
   * @error is %NP_PIPE_ERROR_PERMISSION_DENIED or
   * %NP_PIPE_ERROR_TOO_MANY_CLIENTS when the server refused a client
   * that [method@Np.PipeClient.connect_sync] did not wait for (a server
   * in the same thread), carries the
   * server's reason when the server closed the connection over an error
   * of the client's, and is %NP_PIPE_ERROR_TIMED_OUT when a close had to
   * drop what was queued. A connection that
   * [method@Np.PipeClient.connect_async] reported as failed is not
   * reported again here. Setting [property@Np.PipeClient:auto-reconnect]
   * to %FALSE while messages wait for a reconnect drops them, and emits
   * this once more, with %NP_PIPE_ERROR_CLOSED saying how many.
   *
   * Since: 1.0
   */
  signals [DISCONNECTED] =
    g_signal_new ("disconnected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_ERROR);

  /**
   * NpPipeClient::queue-drained:
   * @self: a #NpPipeClient
   *
   * Emitted when what is queued to the server, having passed half of
   * [property@Np.PipeClient:max-queued-bytes], has been written down to
   * a quarter of it or less: the moment for a producer that paused to
   * send again. A producer that pauses once
   * [method@Np.PipeClient.get_queued_bytes] passes half the limit, and
   * resumes on this signal, never meets %NP_PIPE_ERROR_QUEUE_FULL as
   * long as each message, with its 8-byte header, is at most half the
   * limit.
   *
   * It is emitted once per such crossing, from the client's main
   * context, never from inside a send. With no limit
   * ([property@Np.PipeClient:max-queued-bytes] 0) it is not emitted. A
   * connection that closes before its queue drained emits nothing:
   * [signal@Np.PipeClient::disconnected] tells.
   *
   * Since: 1.0
   */
  signals [QUEUE_DRAINED] =
    g_signal_new ("queue-drained",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * NpPipeClient::message-with-fds-received:
   * @self: a #NpPipeClient
   * @message: the whole message
   * @fds: the descriptors that came with it, in the order they were sent
   *
   * Emitted for each whole message the server sends with descriptors
   * ([method@Np.PipeConnection.send_with_fds]), in its place among the
   * other messages. The descriptors are close-on-exec, and belong to
   * the list: keep a reference to it, or take them with
   * g_unix_fd_list_steal_fds(), or they are closed when the handler
   * returns.
   *
   * When no handler is connected, the descriptors are closed and the
   * message is emitted by [signal@Np.PipeClient::message-received]
   * instead, so that an application that never asked for descriptors
   * holds none.
   *
   * Since: 1.0
   */
  signals [MESSAGE_WITH_FDS_RECEIVED] =
    g_signal_new ("message-with-fds-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL,
                  _np_marshal_VOID__BOXED_OBJECT,
                  G_TYPE_NONE, 2, G_TYPE_BYTES, G_TYPE_UNIX_FD_LIST);
  g_signal_set_va_marshaller (signals [MESSAGE_WITH_FDS_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__BOXED_OBJECTv);
}

static void
np_pipe_client_init (NpPipeClient *self)
{
  self->lock = np_stream_lock_new ();
  self->context = g_main_context_ref_thread_default ();
  self->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) np_stream_unref);
  g_queue_init (&self->held);
}

/**
 * np_pipe_client_new:
 * @name: the name of the server: a pipe name or an absolute socket path
 *
 * Creates a client for the server running under @name. Connect it with
 * [method@Np.PipeClient.connect_sync] or
 * [method@Np.PipeClient.connect_async].
 *
 * Returns: (transfer full): a new #NpPipeClient
 *
 * Since: 1.0
 */
NpPipeClient *
np_pipe_client_new (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);

  return g_object_new (NP_TYPE_PIPE_CLIENT,
                       "name", name,
                       NULL);
}

/* Closing */

/* Stops a connect or a reconnect under way and takes the connection for
 * closing, if there is one; the client is no longer connected
 * afterwards. What was held for a reconnect is dropped: *@n_dropped
 * messages. */
static NpStream *
np_pipe_client_take_for_close (NpPipeClient *self,
                               guint        *n_dropped)
{
  NpServerWatch *watch;
  NpStream *stream = NULL;
  gboolean notify;

  g_mutex_lock (self->lock);
  if (self->attempt != NULL)
    g_cancellable_cancel (self->attempt);
  np_pipe_client_note_refusal_locked (self, NULL);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  *n_dropped = np_pipe_client_drop_held_locked (self);
  notify = self->connected;
  if (self->connected && self->stream != NULL)
    stream = np_stream_ref (self->stream);
  np_pipe_client_set_connected_locked (self, FALSE);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&watch, np_server_watch_free);

  if (notify)
    np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);

  return stream;
}

/**
 * np_pipe_client_close:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes out everything queued, blocking like
 * [method@Np.PipeClient.flush_sync] for at most
 * [property@Np.PipeClient:close-timeout], then closes the connection.
 * Past the timeout, what is still queued is dropped (a server that does
 * not read cannot make this hang). A connect under way is cancelled.
 *
 * [signal@Np.PipeClient::disconnected] follows: before this returns when
 * called from the thread of the client's main context (the thread that
 * iterates it; or, while no thread does, the thread that pushed it as
 * its thread-default context, the main thread for the global default
 * one), otherwise from that context once it runs. Its error is %NULL
 * when everything was written. Closing a closed client does nothing;
 * the client may connect again.
 *
 * Like g_io_stream_close(), it fails when something queued was dropped:
 * past the close timeout (the error is that of the
 * [signal@Np.PipeClient::disconnected] it emits), or messages held while
 * disconnected (see [property@Np.PipeClient:auto-reconnect]), which
 * fail it with %NP_PIPE_ERROR_CLOSED. Cancelling closes at once,
 * dropping what is still queued, and fails it with
 * %G_IO_ERROR_CANCELLED. Whether it fails or not, the client is closed
 * when this returns; in Python the failure is an exception, as from a
 * file whose `close()` cannot write out what it buffered.
 *
 * A program with a main loop may prefer [method@Np.PipeClient.close_async],
 * which does not block and reports the same.
 *
 * Returns: %TRUE if everything queued was written before the connection
 *   closed; %FALSE, with the reason, when something was dropped
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_close (NpPipeClient  *self,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(NpStream) stream = NULL;
  guint n_dropped;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The disconnected handler may drop the last reference. */
  hold = g_object_ref (self);
  stream = np_pipe_client_take_for_close (self, &n_dropped);
  if (stream != NULL)
    return np_stream_close_sync (stream, cancellable, error);

  if (n_dropped > 0)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                   _("Pipe “%s”: %u messages sent while disconnected were dropped: "
                     "the client closed before it could connect again"),
                   self->name, n_dropped);
      return FALSE;
    }

  return TRUE;
}

/**
 * np_pipe_client_close_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the connection is closed
 * @user_data: data for @callback
 *
 * Closes the connection without blocking, like
 * [method@Np.PipeClient.close], and fails when it does: what is queued
 * is written from the client's main context for at most
 * [property@Np.PipeClient:close-timeout], then the connection closes and
 * [signal@Np.PipeClient::disconnected] is emitted. A connect under way is
 * cancelled.
 *
 * Cancelling closes at once, dropping what is still queued; the call
 * then fails with %G_IO_ERROR_CANCELLED, but the client is closed all the
 * same, as with g_io_stream_close_async(). Finish with
 * [method@Np.PipeClient.close_finish].
 *
 * Since: 1.0
 */
void
np_pipe_client_close_async (NpPipeClient        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(NpStream) stream = NULL;
  guint n_dropped;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_close_async);
  /* Cancelled or not, the client is closed: say what was lost. */
  g_task_set_check_cancellable (task, FALSE);

  stream = np_pipe_client_take_for_close (self, &n_dropped);
  if (stream == NULL && n_dropped > 0)
    g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                             _("Pipe “%s”: %u messages sent while disconnected were dropped: "
                               "the client closed before it could connect again"),
                             self->name, n_dropped);
  else if (stream == NULL)
    g_task_return_boolean (task, TRUE);
  else
    np_stream_close_async (stream, task);
}

/**
 * np_pipe_client_close_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.close_async].
 *
 * Returns: %TRUE if everything queued was written before the connection
 *   closed; %FALSE, with the reason, when something was dropped
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_close_finish (NpPipeClient  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
