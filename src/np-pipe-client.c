/* np-pipe-client.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "np-error.h"
#include "np-name-private.h"
#include "np-pipe-client.h"
#include "np-stream-private.h"

#define DEFAULT_MAX_MESSAGE_SIZE (16 * 1024 * 1024)
#define DEFAULT_MAX_QUEUED_BYTES (64 * 1024 * 1024)

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
 * np_pipe_client_close (client);  // writes out what is queued
 * ```
 *
 * [method@Np.PipeClient.send] only queues: the queue is written from the
 * client's main context, or by [method@Np.PipeClient.flush_sync] and
 * [method@Np.PipeClient.close], so a program that never runs a main loop
 * loses nothing either. Messages from the server arrive through
 * [signal@Np.PipeClient::message-received] while the main context runs.
 *
 * Connecting does not wait for the server to answer, so a server and its
 * clients may share one thread. Should the server then refuse the client,
 * [signal@Np.PipeClient::disconnected] reports why.
 *
 * Signals are emitted in the thread-default main context of the thread
 * that created the client; the client is not thread-safe: use it from that
 * thread.
 *
 * Since: 1.0
 */

struct _NpPipeClient
{
  GObject       parent_instance;

  char         *name;
  char         *path;
  GMainContext *context;
  NpStream     *stream;
  guint         max_message_size;
  guint         max_queued_bytes;
  guint         connected : 1;
  guint         connecting : 1;
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_PATH,
  PROP_CONNECTED,
  PROP_MAX_MESSAGE_SIZE,
  PROP_MAX_QUEUED_BYTES,
  N_PROPS
};

enum {
  MESSAGE_RECEIVED,
  DISCONNECTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (NpPipeClient, np_pipe_client, G_TYPE_OBJECT)

static GParamSpec *properties [N_PROPS];
static guint signals [N_SIGNALS];

static void
np_pipe_client_stream_message (GObject *owner,
                               GBytes  *message)
{
  g_signal_emit (owner, signals [MESSAGE_RECEIVED], 0, message);
}

static void
np_pipe_client_stream_closed (GObject      *owner,
                              const GError *error)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);

  self->connected = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CONNECTED]);
  g_signal_emit (self, signals [DISCONNECTED], 0, error);
}

static const NpStreamCallbacks np_pipe_client_stream_callbacks = {
  .message = np_pipe_client_stream_message,
  .closed = np_pipe_client_stream_closed,
};

static void
np_pipe_client_dispose (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  /* What the socket takes without blocking still goes out; call
   * np_pipe_client_close() to be sure everything does. */
  g_clear_pointer (&self->stream, np_stream_free);
  self->connected = FALSE;

  G_OBJECT_CLASS (np_pipe_client_parent_class)->dispose (object);
}

static void
np_pipe_client_finalize (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (np_pipe_client_parent_class)->finalize (object);
}

static void
np_pipe_client_constructed (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  G_OBJECT_CLASS (np_pipe_client_parent_class)->constructed (object);

  /* An invalid name leaves the path unset; connecting then says why. */
  if (self->name != NULL)
    self->path = np_name_to_path (self->name, NULL);
}

static void
np_pipe_client_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  NpPipeClient *self = NP_PIPE_CLIENT (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;

    case PROP_CONNECTED:
      g_value_set_boolean (value, self->connected);
      break;

    case PROP_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, self->max_message_size);
      break;

    case PROP_MAX_QUEUED_BYTES:
      g_value_set_uint (value, self->max_queued_bytes);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_client_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  NpPipeClient *self = NP_PIPE_CLIENT (object);

  switch (prop_id)
    {
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;

    case PROP_MAX_MESSAGE_SIZE:
      np_pipe_client_set_max_message_size (self, g_value_get_uint (value));
      break;

    case PROP_MAX_QUEUED_BYTES:
      np_pipe_client_set_max_queued_bytes (self, g_value_get_uint (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_client_class_init (NpPipeClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = np_pipe_client_constructed;
  object_class->dispose = np_pipe_client_dispose;
  object_class->finalize = np_pipe_client_finalize;
  object_class->get_property = np_pipe_client_get_property;
  object_class->set_property = np_pipe_client_set_property;

  /**
   * NpPipeClient:name:
   *
   * The name of the server to connect to: a pipe name or an absolute
   * socket path, as given to [ctor@Np.PipeServer.new].
   *
   * Since: 1.0
   */
  properties [PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:path:
   *
   * The socket path [property@Np.PipeClient:name] maps to, or %NULL when
   * the name is not valid.
   *
   * Since: 1.0
   */
  properties [PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:connected:
   *
   * Whether the client is connected: from a successful connect until
   * [signal@Np.PipeClient::disconnected].
   *
   * Since: 1.0
   */
  properties [PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-message-size:
   *
   * The largest message, in bytes, the client accepts from the server; the
   * server learns it in the handshake and refuses to send larger ones. A
   * change applies from the next connect.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_MESSAGE_SIZE] =
    g_param_spec_uint ("max-message-size", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_MESSAGE_SIZE,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-queued-bytes:
   *
   * The most bytes that may wait to be written to the server. When the
   * server does not keep up, [method@Np.PipeClient.send] fails with
   * %NP_PIPE_ERROR_QUEUE_FULL rather than let the queue grow; the
   * connection stays, and [method@Np.PipeClient.flush_sync] or
   * [method@Np.PipeClient.flush_async] make room. 0 means no limit.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint ("max-queued-bytes", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_QUEUED_BYTES,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);

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
   * NpPipeClient::disconnected:
   * @self: a #NpPipeClient
   * @error: (nullable): why the connection ended, or %NULL after a clean
   *   close by either side
   *
   * Emitted once per connection when it ends: after
   * [method@Np.PipeClient.close], when the server stops, or on a failure.
   * @error is %NP_PIPE_ERROR_PERMISSION_DENIED when the server refused the
   * client, and carries the server's reason when the server closed the
   * connection over an error of the client's.
   *
   * Since: 1.0
   */
  signals [DISCONNECTED] =
    g_signal_new ("disconnected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
np_pipe_client_init (NpPipeClient *self)
{
  self->context = g_main_context_ref_thread_default ();
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

static gboolean
np_pipe_client_check_connect (NpPipeClient  *self,
                              GError       **error)
{
  if (self->connecting)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   "Pipe “%s”: a connect is already under way", self->name);
      return FALSE;
    }

  if (self->path == NULL)
    {
      g_autofree char *path = np_name_to_path (self->name, error);
      g_assert (path == NULL);
      return FALSE;
    }

  return TRUE;
}

static GSocketClient *
np_pipe_client_socket_client_new (void)
{
  GSocketClient *client = g_socket_client_new ();

  g_socket_client_set_family (client, G_SOCKET_FAMILY_UNIX);
  g_socket_client_set_enable_proxy (client, FALSE);

  return client;
}

static void
np_pipe_client_set_connect_error (NpPipeClient  *self,
                                  GError        *io_error,
                                  GError       **error)
{
  if (g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
      g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND,
                   "No server is running as pipe “%s” (%s)", self->name, self->path);
      g_error_free (io_error);
    }
  else if (g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   "Not allowed to connect to pipe “%s” (%s)", self->name, self->path);
      g_error_free (io_error);
    }
  else
    {
      g_propagate_prefixed_error (error, io_error, "Cannot connect to pipe “%s”: ", self->name);
    }
}

static void
np_pipe_client_attach (NpPipeClient      *self,
                       GSocketConnection *connection)
{
  g_autofree char *label = g_strdup_printf ("Pipe “%s”", self->name);

  /* A stream from an earlier connection may still be in its last dispatch. */
  g_clear_pointer (&self->stream, np_stream_free);

  self->stream = np_stream_new (G_OBJECT (self), &np_pipe_client_stream_callbacks,
                                connection, self->context, label, self->max_message_size);
  np_stream_set_queue_limit (self->stream, self->max_queued_bytes, FALSE);
  self->connected = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CONNECTED]);
}

/**
 * np_pipe_client_connect_sync:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the server and sends the handshake. This does not wait for
 * anything only the server's main loop can provide, so the server may run
 * in the same thread: a refusal the server decides afterwards arrives as
 * [signal@Np.PipeClient::disconnected].
 *
 * Fails with %NP_PIPE_ERROR_NOT_FOUND when no server runs under the name,
 * and %NP_PIPE_ERROR_INVALID_NAME when the name cannot be a pipe.
 * Connecting a connected client does nothing.
 *
 * Returns: %TRUE if the client is connected
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_connect_sync (NpPipeClient  *self,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  GError *io_error = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->connected)
    return TRUE;

  if (!np_pipe_client_check_connect (self, error))
    return FALSE;

  client = np_pipe_client_socket_client_new ();
  address = g_unix_socket_address_new (self->path);
  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address),
                                        cancellable, &io_error);
  if (connection == NULL)
    {
      np_pipe_client_set_connect_error (self, io_error, error);
      return FALSE;
    }

  np_pipe_client_attach (self, connection);

  return TRUE;
}

static void
np_pipe_client_connect_cb (GObject      *object,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  NpPipeClient *self = g_task_get_source_object (task);
  g_autoptr(GSocketConnection) connection = NULL;
  GError *io_error = NULL;
  GError *error = NULL;

  self->connecting = FALSE;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (object), result, &io_error);
  if (connection == NULL)
    {
      if (g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, io_error);
      else
        {
          np_pipe_client_set_connect_error (self, io_error, &error);
          g_task_return_error (task, error);
        }
      return;
    }

  np_pipe_client_attach (self, connection);
  g_task_return_boolean (task, TRUE);
}

/**
 * np_pipe_client_connect_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the client is connected or failed
 * @user_data: data for @callback
 *
 * Connects to the server without blocking; see
 * [method@Np.PipeClient.connect_sync]. Finish with
 * [method@Np.PipeClient.connect_finish].
 *
 * Since: 1.0
 */
void
np_pipe_client_connect_async (NpPipeClient        *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  GError *error = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_connect_async);

  if (self->connected)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  if (!np_pipe_client_check_connect (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  self->connecting = TRUE;
  client = np_pipe_client_socket_client_new ();
  address = g_unix_socket_address_new (self->path);
  g_socket_client_connect_async (client, G_SOCKET_CONNECTABLE (address), cancellable,
                                 np_pipe_client_connect_cb, g_steal_pointer (&task));
}

/**
 * np_pipe_client_connect_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.connect_async].
 *
 * Returns: %TRUE if the client is connected
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_connect_finish (NpPipeClient  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
np_pipe_client_check_connected (NpPipeClient  *self,
                                GError       **error)
{
  if (!self->connected)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                   "Pipe “%s” is not connected", self->name);
      return FALSE;
    }

  return TRUE;
}

/* Hands @task to the stream, or fails it when the client is not
 * connected. */
static void
np_pipe_client_run_on_stream (NpPipeClient  *self,
                              GTask         *task,
                              void         (*run) (NpStream *stream,
                                                   GTask    *task))
{
  GError *error = NULL;

  if (!np_pipe_client_check_connected (self, &error))
    g_task_return_error (task, error);
  else
    run (self->stream, task);
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
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_send (NpPipeClient  *self,
                     GBytes        *message,
                     GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return np_pipe_client_check_connected (self, error) &&
         np_stream_send (self->stream, message, error);
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
  GError *error = NULL;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (message != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_send_async);

  if (!np_pipe_client_send (self, message, &error))
    g_task_return_error (task, error);
  else
    np_stream_flush_async (self->stream, task);
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
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return np_pipe_client_check_connected (self, error) &&
         np_stream_flush_sync (self->stream, cancellable, error);
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
 * with [method@Np.PipeClient.flush_finish].
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
 * @round_trip_usec: (out) (optional): the round trip, in microseconds
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.ping_async].
 *
 * Returns: %TRUE if the server answered
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_ping_finish (NpPipeClient  *self,
                            GAsyncResult  *result,
                            gint64        *round_trip_usec,
                            GError       **error)
{
  gssize usec;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  usec = g_task_propagate_int (G_TASK (result), error);
  if (usec < 0)
    return FALSE;

  if (round_trip_usec != NULL)
    *round_trip_usec = usec;

  return TRUE;
}

/**
 * np_pipe_client_get_queued_bytes:
 * @self: a #NpPipeClient
 *
 * Gets how many bytes are queued to the server and not yet written to the
 * socket, framing included: a measure of progress for a large send, or of
 * a server that does not keep up.
 *
 * Returns: the bytes queued, 0 when not connected
 *
 * Since: 1.0
 */
guint64
np_pipe_client_get_queued_bytes (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return self->connected ? np_stream_get_queued_bytes (self->stream) : 0;
}

/**
 * np_pipe_client_close:
 * @self: a #NpPipeClient
 *
 * Writes out everything queued, blocking like
 * [method@Np.PipeClient.flush_sync], then closes the connection and emits
 * [signal@Np.PipeClient::disconnected]. Closing a closed client does
 * nothing; the client may connect again.
 *
 * Since: 1.0
 */
void
np_pipe_client_close (NpPipeClient *self)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  if (self->connected)
    np_stream_close_sync (self->stream);
}

/**
 * np_pipe_client_get_name:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:name].
 *
 * Returns: the name of the server
 *
 * Since: 1.0
 */
const char *
np_pipe_client_get_name (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return self->name;
}

/**
 * np_pipe_client_get_path:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:path].
 *
 * Returns: (nullable): the socket path, or %NULL when the name is invalid
 *
 * Since: 1.0
 */
const char *
np_pipe_client_get_path (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return self->path;
}

/**
 * np_pipe_client_get_connected:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:connected].
 *
 * Returns: %TRUE if the client is connected
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_get_connected (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);

  return self->connected;
}

/**
 * np_pipe_client_get_max_message_size:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:max-message-size].
 *
 * Returns: the largest message accepted from the server, in bytes
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_max_message_size (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return self->max_message_size;
}

/**
 * np_pipe_client_set_max_message_size:
 * @self: a #NpPipeClient
 * @max_message_size: the largest message accepted from the server, in bytes
 *
 * Sets [property@Np.PipeClient:max-message-size].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_max_message_size (NpPipeClient *self,
                                     guint         max_message_size)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (max_message_size <= G_MAXUINT32);

  if (self->max_message_size != max_message_size)
    {
      self->max_message_size = max_message_size;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_MAX_MESSAGE_SIZE]);
    }
}

/**
 * np_pipe_client_get_max_queued_bytes:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:max-queued-bytes].
 *
 * Returns: the most bytes that may wait to be written to the server
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_max_queued_bytes (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return self->max_queued_bytes;
}

/**
 * np_pipe_client_set_max_queued_bytes:
 * @self: a #NpPipeClient
 * @max_queued_bytes: the most bytes that may wait to be written to the
 *   server, 0 for no limit
 *
 * Sets [property@Np.PipeClient:max-queued-bytes]. It applies at once.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_max_queued_bytes (NpPipeClient *self,
                                     guint         max_queued_bytes)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  if (self->max_queued_bytes != max_queued_bytes)
    {
      self->max_queued_bytes = max_queued_bytes;
      if (self->stream != NULL)
        np_stream_set_queue_limit (self->stream, max_queued_bytes, FALSE);
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_MAX_QUEUED_BYTES]);
    }
}
