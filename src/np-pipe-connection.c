/* np-pipe-connection.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#ifdef __linux__
# include <sys/socket.h>
#endif

#include "np-error.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-server-private.h"
#include "np-stream-private.h"

/**
 * NpPipeConnection:
 *
 * The server's end of one client of a [class@Np.PipeServer].
 *
 * A connection is created by the server when a client connects, and handed
 * to the application by [signal@Np.PipeServer::client-connected]. The
 * messages it receives are reported by
 * [signal@Np.PipeServer::message-received], its end by
 * [signal@Np.PipeServer::client-disconnected]; the connection has no
 * signals of its own. Reply to the client with
 * [method@Np.PipeConnection.send].
 *
 * Who the peer is comes from the kernel (`SO_PEERCRED`), not from anything
 * the peer says: see [method@Np.PipeConnection.get_peer_pid] and
 * [method@Np.PipeConnection.get_peer_uid].
 *
 * A connection belongs to the thread and main context of its server and is
 * not thread-safe.
 *
 * Since: 1.0
 */

struct _NpPipeConnection
{
  GObject            parent_instance;

  NpPipeServer      *server;   /* unowned: the server detaches us first */
  GSocketConnection *socket_connection;
  NpStream          *stream;
  GCredentials      *credentials;
  guint64            id;
  gint               peer_pid;
  guint              peer_uid;
  guint              peer_gid;
  guint              accepted : 1;
  guint              connected : 1;
};

enum {
  PROP_0,
  PROP_ID,
  PROP_PEER_PID,
  PROP_PEER_UID,
  PROP_PEER_GID,
  PROP_CONNECTED,
  N_PROPS
};

G_DEFINE_FINAL_TYPE (NpPipeConnection, np_pipe_connection, G_TYPE_OBJECT)

static GParamSpec *properties [N_PROPS];

static void
np_pipe_connection_set_disconnected (NpPipeConnection *self)
{
  if (self->connected)
    {
      self->connected = FALSE;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CONNECTED]);
    }
}

static void
np_pipe_connection_stream_message (GObject *owner,
                                   GBytes  *message)
{
  NpPipeConnection *self = NP_PIPE_CONNECTION (owner);

  if (self->server != NULL)
    _np_pipe_server_message_received (self->server, self, message);
}

static void
np_pipe_connection_stream_closed (GObject      *owner,
                                  const GError *error)
{
  NpPipeConnection *self = NP_PIPE_CONNECTION (owner);

  if (!self->accepted)
    return;

  np_pipe_connection_set_disconnected (self);

  if (self->server != NULL)
    _np_pipe_server_client_disconnected (self->server, self, error);
}

static const NpStreamCallbacks np_pipe_connection_stream_callbacks = {
  .message = np_pipe_connection_stream_message,
  .closed = np_pipe_connection_stream_closed,
};

static void
np_pipe_connection_finalize (GObject *object)
{
  NpPipeConnection *self = (NpPipeConnection *)object;

  g_clear_pointer (&self->stream, np_stream_free);
  g_clear_object (&self->socket_connection);
  g_clear_object (&self->credentials);

  G_OBJECT_CLASS (np_pipe_connection_parent_class)->finalize (object);
}

static void
np_pipe_connection_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  NpPipeConnection *self = NP_PIPE_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_uint64 (value, self->id);
      break;

    case PROP_PEER_PID:
      g_value_set_int (value, self->peer_pid);
      break;

    case PROP_PEER_UID:
      g_value_set_uint (value, self->peer_uid);
      break;

    case PROP_PEER_GID:
      g_value_set_uint (value, self->peer_gid);
      break;

    case PROP_CONNECTED:
      g_value_set_boolean (value, np_pipe_connection_is_connected (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_connection_class_init (NpPipeConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = np_pipe_connection_finalize;
  object_class->get_property = np_pipe_connection_get_property;

  /**
   * NpPipeConnection:id:
   *
   * The identifier of the connection, unique within its server and
   * increasing with each client that connects.
   *
   * Since: 1.0
   */
  properties [PROP_ID] =
    g_param_spec_uint64 ("id", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:peer-pid:
   *
   * The process id of the peer, as the kernel reported it when it
   * connected.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_PID] =
    g_param_spec_int ("peer-pid", NULL, NULL,
                      -1, G_MAXINT, -1,
                      (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:peer-uid:
   *
   * The user id of the peer, as the kernel reported it when it connected.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_UID] =
    g_param_spec_uint ("peer-uid", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:peer-gid:
   *
   * The group id of the peer, as the kernel reported it when it connected.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_GID] =
    g_param_spec_uint ("peer-gid", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:connected:
   *
   * Whether messages can still be sent on the connection. It turns false
   * once, when the connection starts closing for any reason.
   *
   * Since: 1.0
   */
  properties [PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
np_pipe_connection_init (NpPipeConnection *self)
{
  self->peer_pid = -1;
}

NpPipeConnection *
_np_pipe_connection_new (NpPipeServer       *server,
                         GSocketConnection  *socket_connection,
                         guint64             id,
                         GError            **error)
{
  g_autoptr(NpPipeConnection) self = NULL;
  GSocket *socket = g_socket_connection_get_socket (socket_connection);

  self = g_object_new (NP_TYPE_PIPE_CONNECTION, NULL);
  self->server = server;
  self->socket_connection = g_object_ref (socket_connection);
  self->id = id;

  self->credentials = g_socket_get_credentials (socket, error);
  if (self->credentials == NULL)
    return NULL;

  self->peer_pid = g_credentials_get_unix_pid (self->credentials, NULL);
  self->peer_uid = g_credentials_get_unix_user (self->credentials, NULL);
#ifdef __linux__
  {
    const struct ucred *ucred = g_credentials_get_native (self->credentials,
                                                          G_CREDENTIALS_TYPE_LINUX_UCRED);
    self->peer_gid = ucred->gid;
  }
#endif

  return g_steal_pointer (&self);
}

static NpStream *
np_pipe_connection_create_stream (NpPipeConnection *self,
                                  guint             max_message_size)
{
  g_autofree char *label = NULL;
  GMainContext *context = _np_pipe_server_get_context (self->server);

  label = g_strdup_printf ("Client %" G_GUINT64_FORMAT " of pipe “%s”",
                           self->id, np_pipe_server_get_name (self->server));

  return np_stream_new (G_OBJECT (self), &np_pipe_connection_stream_callbacks,
                        self->socket_connection, context, label, max_message_size);
}

/* Starts the handshake and the message flow. */
void
_np_pipe_connection_accept (NpPipeConnection *self,
                            guint             max_message_size,
                            guint             max_queued_bytes,
                            guint             handshake_timeout_msec)
{
  g_assert (self->stream == NULL);

  self->accepted = TRUE;
  self->connected = TRUE;
  self->stream = np_pipe_connection_create_stream (self, max_message_size);
  np_stream_set_handshake_timeout (self->stream, handshake_timeout_msec);
  /* A client that does not read is dropped rather than let grow the
   * server's memory. */
  np_stream_set_queue_limit (self->stream, max_queued_bytes, TRUE);
}

/* Tells the peer why it is refused, then closes, reporting nothing. */
void
_np_pipe_connection_refuse (NpPipeConnection *self,
                            const GError     *reason)
{
  g_assert (self->stream == NULL);

  self->stream = np_pipe_connection_create_stream (self, 0);
  np_stream_abort (self->stream, reason);
}

/* The server is going away: close without reporting to it. */
void
_np_pipe_connection_detach (NpPipeConnection *self)
{
  self->server = NULL;
  g_clear_pointer (&self->stream, np_stream_free);
  np_pipe_connection_set_disconnected (self);
}

/**
 * np_pipe_connection_get_id:
 * @self: a #NpPipeConnection
 *
 * Gets the identifier of the connection: unique within its server, and
 * increasing in the order clients connected.
 *
 * Returns: the identifier, 1 or more
 *
 * Since: 1.0
 */
guint64
np_pipe_connection_get_id (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return self->id;
}

/**
 * np_pipe_connection_get_peer_pid:
 * @self: a #NpPipeConnection
 *
 * Gets the process id of the peer, from the kernel's record of who
 * connected (`SO_PEERCRED`).
 *
 * Returns: the peer's process id, or -1 if the platform does not tell
 *
 * Since: 1.0
 */
gint
np_pipe_connection_get_peer_pid (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), -1);

  return self->peer_pid;
}

/**
 * np_pipe_connection_get_peer_uid:
 * @self: a #NpPipeConnection
 *
 * Gets the user id of the peer, from the kernel's record of who connected
 * (`SO_PEERCRED`).
 *
 * Returns: the peer's user id
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_peer_uid (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return self->peer_uid;
}

/**
 * np_pipe_connection_get_peer_gid:
 * @self: a #NpPipeConnection
 *
 * Gets the group id of the peer, from the kernel's record of who
 * connected (`SO_PEERCRED`).
 *
 * Returns: the peer's group id
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_peer_gid (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return self->peer_gid;
}

/**
 * np_pipe_connection_get_peer_credentials:
 * @self: a #NpPipeConnection
 *
 * Gets the credentials the kernel recorded for the peer when it connected.
 *
 * Returns: (transfer none): the peer's credentials
 *
 * Since: 1.0
 */
GCredentials *
np_pipe_connection_get_peer_credentials (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);

  return self->credentials;
}

/**
 * np_pipe_connection_send:
 * @self: a #NpPipeConnection
 * @message: the message, 0 bytes or more
 * @error: return location for a #GError
 *
 * Queues @message to the client. This never blocks: the queue is written
 * from the server's main context, as one vectored write for everything
 * queued in the meantime.
 *
 * Fails with %NP_PIPE_ERROR_CLOSED once the connection is closing, and
 * with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE when @message is larger than the
 * client accepts. When the client does not read and @message would make
 * what is queued to it pass [property@Np.PipeServer:max-queued-bytes],
 * this fails with %NP_PIPE_ERROR_QUEUE_FULL and the server drops the
 * client: [signal@Np.PipeServer::client-disconnected] follows, from the
 * main loop, with that error.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_send (NpPipeConnection  *self,
                         GBytes            *message,
                         GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!self->connected)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                   "Client %" G_GUINT64_FORMAT " is not connected", self->id);
      return FALSE;
    }

  return np_stream_send (self->stream, message, error);
}

/**
 * np_pipe_connection_send_data:
 * @self: a #NpPipeConnection
 * @data: (array length=size) (element-type guint8) (nullable): the message
 * @size: the length of @data
 * @error: return location for a #GError
 *
 * Queues a copy of @data as one message, like
 * [method@Np.PipeConnection.send]. This is the call for bindings that hold
 * a byte string rather than a #GBytes, such as a Python `bytes` object.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_send_data (NpPipeConnection  *self,
                              const guint8      *data,
                              gsize              size,
                              GError           **error)
{
  g_autoptr(GBytes) message = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (data != NULL || size == 0, FALSE);

  message = g_bytes_new (data, size);

  return np_pipe_connection_send (self, message, error);
}

/**
 * np_pipe_connection_get_queued_bytes:
 * @self: a #NpPipeConnection
 *
 * Gets how many bytes are queued to the client and not yet written to the
 * socket, framing included: a client that does not read makes it grow.
 *
 * Returns: the bytes queued, 0 once the connection ended
 *
 * Since: 1.0
 */
guint64
np_pipe_connection_get_queued_bytes (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return self->stream != NULL ? np_stream_get_queued_bytes (self->stream) : 0;
}

/**
 * np_pipe_connection_close:
 * @self: a #NpPipeConnection
 *
 * Closes the connection. Messages already queued are still written, from
 * the server's main context; then the server emits
 * [signal@Np.PipeServer::client-disconnected] with no error. When nothing
 * is queued that happens before this function returns.
 *
 * Closing a closed connection does nothing.
 *
 * Since: 1.0
 */
void
np_pipe_connection_close (NpPipeConnection *self)
{
  g_autoptr(NpPipeConnection) hold = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));

  if (!self->connected)
    return;

  hold = g_object_ref (self);
  np_pipe_connection_set_disconnected (self);
  np_stream_close (self->stream);
}

/**
 * np_pipe_connection_is_connected:
 * @self: a #NpPipeConnection
 *
 * Checks whether messages can still be sent to the client.
 *
 * Returns: %TRUE until the connection starts closing
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_is_connected (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);

  return self->connected && np_stream_is_open (self->stream);
}
