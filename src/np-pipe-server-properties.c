/* np-pipe-server-properties.c: the settings of NpPipeServer
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-error.h"
#include "np-frame-private.h"
#include "np-pipe-server-internal.h"
#include "np-stream-private.h"

#define DEFAULT_MAX_MESSAGE_SIZE  (16 * 1024 * 1024)
#define DEFAULT_HANDSHAKE_TIMEOUT 5000
#define DEFAULT_CLOSE_TIMEOUT     5000
#define DEFAULT_REQUEST_TIMEOUT   25000
#define DEFAULT_MAX_CONNECTIONS   1024
#define DEFAULT_MAX_QUEUED_BYTES  (64 * 1024 * 1024)

GParamSpec *np_pipe_server_properties [NP_PIPE_SERVER_N_PROPS];

#define properties np_pipe_server_properties

void np_pipe_server_install_properties (GObjectClass *object_class);

guint
np_pipe_server_get_uint (NpPipeServer *self,
                         const guint  *field)
{
  guint value;

  g_mutex_lock (&self->lock);
  value = *field;
  g_mutex_unlock (&self->lock);

  return value;
}

void
np_pipe_server_set_uint (NpPipeServer *self,
                         guint        *field,
                         guint         value,
                         guint         prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [prop_id]);
}

static void
np_pipe_server_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  NpPipeServer *self = NP_PIPE_SERVER (object);

  switch (prop_id)
    {
    case NP_PIPE_SERVER_PROP_NAME:
      g_value_set_string (value, np_pipe_server_get_name (self));
      break;

    case NP_PIPE_SERVER_PROP_PATH:
      g_value_set_string (value, np_pipe_server_get_path (self));
      break;

    case NP_PIPE_SERVER_PROP_RUNNING:
      g_value_set_boolean (value, np_pipe_server_is_running (self));
      break;

    case NP_PIPE_SERVER_PROP_N_CONNECTIONS:
      g_value_set_uint (value, np_pipe_server_get_n_connections (self));
      break;

    case NP_PIPE_SERVER_PROP_CONNECTIONS:
      g_value_set_object (value, np_pipe_server_get_connections (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, np_pipe_server_get_max_message_size (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_QUEUED_BYTES:
      g_value_set_uint (value, np_pipe_server_get_max_queued_bytes (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, np_pipe_server_get_max_connections (self));
      break;

    case NP_PIPE_SERVER_PROP_ALLOW_OTHER_USERS:
      g_value_set_boolean (value, np_pipe_server_get_allow_other_users (self));
      break;

    case NP_PIPE_SERVER_PROP_HANDSHAKE_TIMEOUT:
      g_value_set_uint (value, np_pipe_server_get_handshake_timeout (self));
      break;

    case NP_PIPE_SERVER_PROP_CLOSE_TIMEOUT:
      g_value_set_uint (value, np_pipe_server_get_close_timeout (self));
      break;

    case NP_PIPE_SERVER_PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, np_pipe_server_get_request_timeout (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_FDS_PER_MESSAGE:
      g_value_set_uint (value, np_pipe_server_get_max_fds_per_message (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_PENDING_REQUESTS:
      g_value_set_uint (value, np_pipe_server_get_max_pending_requests (self));
      break;

    case NP_PIPE_SERVER_PROP_MAX_PENDING_REQUEST_BYTES:
      g_value_set_uint (value, np_pipe_server_get_max_pending_request_bytes (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_server_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  NpPipeServer *self = NP_PIPE_SERVER (object);

  switch (prop_id)
    {
    case NP_PIPE_SERVER_PROP_NAME:
      /* Construct-only: nothing else sees the server yet. */
      self->name = g_value_dup_string (value);
      break;

    case NP_PIPE_SERVER_PROP_MAX_MESSAGE_SIZE:
      np_pipe_server_set_max_message_size (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_MAX_QUEUED_BYTES:
      np_pipe_server_set_max_queued_bytes (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_MAX_CONNECTIONS:
      np_pipe_server_set_max_connections (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_ALLOW_OTHER_USERS:
      np_pipe_server_set_allow_other_users (self, g_value_get_boolean (value));
      break;

    case NP_PIPE_SERVER_PROP_HANDSHAKE_TIMEOUT:
      np_pipe_server_set_handshake_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_CLOSE_TIMEOUT:
      np_pipe_server_set_close_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_REQUEST_TIMEOUT:
      np_pipe_server_set_request_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_MAX_FDS_PER_MESSAGE:
      np_pipe_server_set_max_fds_per_message (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_MAX_PENDING_REQUESTS:
      np_pipe_server_set_max_pending_requests (self, g_value_get_uint (value));
      break;

    case NP_PIPE_SERVER_PROP_MAX_PENDING_REQUEST_BYTES:
      np_pipe_server_set_max_pending_request_bytes (self, g_value_get_uint (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

void
np_pipe_server_install_properties (GObjectClass *object_class)
{
  object_class->get_property = np_pipe_server_get_property;
  object_class->set_property = np_pipe_server_set_property;

  /**
   * NpPipeServer:name:
   *
   * The name the server listens under. When the server was created without
   * one (the default, %NULL), a unique name is generated by
   * [method@Np.PipeServer.start]. Set at construction only.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:path:
   *
   * The path of the Unix socket the server listens on, once started;
   * %NULL before.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:running:
   *
   * Whether the server accepts clients; %FALSE until
   * [method@Np.PipeServer.start]. It changes in the server's main
   * context.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:n-connections:
   *
   * The number of connected clients, 0 at first: those whose handshake
   * is complete, not the peers still in it. It changes in the server's
   * main context.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_N_CONNECTIONS] =
    g_param_spec_uint ("n-connections", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:connections:
   *
   * The connected clients, as a read-only list model of
   * [class@Np.PipeConnection] that updates, in the server's main context,
   * as clients come and go. A peer is added once its handshake is
   * complete, as [signal@Np.PipeServer::client-connected] is emitted.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_CONNECTIONS] =
    g_param_spec_object ("connections", NULL, NULL,
                         G_TYPE_LIST_MODEL,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-message-size:
   *
   * The largest message, in bytes, the server accepts from a client. A
   * client that sends a larger one is disconnected with
   * %NP_PIPE_ERROR_MESSAGE_TOO_LARGE; no memory is ever allocated for
   * more than this per message. Clients learn the limit in the handshake.
   * From 0 to 4294967295 (`G_MAXUINT32`); the default is 16777216 (16
   * MiB). A change applies to clients that connect afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_MESSAGE_SIZE] =
    g_param_spec_uint ("max-message-size", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_MESSAGE_SIZE,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-queued-bytes:
   *
   * The most bytes that may wait to be written to one client. A client
   * that does not read until a message would pass this is dropped, with
   * %NP_PIPE_ERROR_QUEUE_FULL, so that no client can grow the server's
   * memory without bound. Keep it above
   * [property@Np.PipeClient:max-message-size] so that the largest message
   * fits. From 0 (no limit) to `G_MAXUINT32`; the default is 67108864
   * (64 MiB). Frames
   * the server queues because of what a client sent (the answers to its
   * pings) count too. A change applies to clients that connect
   * afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint ("max-queued-bytes", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_QUEUED_BYTES,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-connections:
   *
   * The most clients served at once. Further peers are refused with
   * %NP_PIPE_ERROR_TOO_MANY_CLIENTS while the connected ones go on.
   * Peers still in their handshake count, though they are not in
   * [property@Np.PipeServer:n-connections] yet: peers that connect and
   * never complete it take the server no further.
   * 0 means no limit; at most `G_MAXUINT`; the default is 1024.
   *
   * A connection whose client has already closed its side does not
   * count, even while its end is still unread or what is queued to it
   * still goes out: a client that closes and connects again at once is
   * served. At most as many such connections again are held while they
   * end (each within [property@Np.PipeServer:close-timeout]), so
   * [property@Np.PipeServer:n-connections] may pass this limit, up to
   * twice it.
   *
   * Whatever it says, a server never serves more clients than the
   * process has descriptors for: `RLIMIT_NOFILE` (`ulimit -n`) less an
   * eighth of it, and at least 32, left to the application. Should the
   * process run out of descriptors all the same, the server stops
   * accepting until a connection closes, instead of spinning on the
   * error.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_MAX_CONNECTIONS,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:allow-other-users:
   *
   * Whether peers running as another user than the server may connect.
   * Off by default: only the server's own user gets in. Turning it on also
   * makes the socket file world-writable at [method@Np.PipeServer.start],
   * which matters only for a socket path outside the per-user directory
   * (a name starting with `/`).
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_ALLOW_OTHER_USERS] =
    g_param_spec_boolean ("allow-other-users", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:handshake-timeout:
   *
   * How long, in milliseconds, a peer has to complete the handshake
   * after it connects; one that does not is told
   * %NP_PIPE_ERROR_TIMED_OUT and dropped, without any signal: it never
   * was a client (see [signal@Np.PipeServer::client-connected]). 0 waits
   * forever; at most `G_MAXUINT`. The
   * default is 5000 (5 seconds). A change applies to clients that connect
   * afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_HANDSHAKE_TIMEOUT] =
    g_param_spec_uint ("handshake-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_HANDSHAKE_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:close-timeout:
   *
   * How long, in milliseconds, a closing connection waits for a client
   * that reads nothing of what is still queued to it: after
   * [method@Np.PipeConnection.close] or [method@Np.PipeServer.stop], and
   * after the client ended its side of the connection while still
   * reading. A client that reads, however slowly, gets everything; one
   * that stops reading for this long is disconnected with
   * %NP_PIPE_ERROR_TIMED_OUT, and what is left is dropped. 0 waits for as
   * long as it takes; at most `G_MAXUINT`. The default is 5000 (5
   * seconds). A change applies to clients that connect afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_CLOSE_TIMEOUT] =
    g_param_spec_uint ("close-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_CLOSE_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:request-timeout:
   *
   * How long, in milliseconds, a request the server sends to a client
   * ([method@Np.PipeConnection.request_async]) waits for its reply; past
   * it, the request fails with %NP_PIPE_ERROR_TIMED_OUT and a reply that
   * comes later is dropped. 0 waits for as long as it takes; at most
   * `G_MAXUINT`. The default is 25000 (25 seconds, as GDBus). A change
   * applies to clients that connect afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_REQUEST_TIMEOUT] =
    g_param_spec_uint ("request-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_REQUEST_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-fds-per-message:
   *
   * The most file descriptors one message, request or reply of a client
   * may carry ([method@Np.PipeClient.send_with_fds],
   * [method@Np.PipeClient.request_with_fds_async]), from 1 to 253 (the kernel's
   * cap on one `sendmsg()`); the default is 16. A client that sends more
   * is disconnected with %NP_PIPE_ERROR_PROTOCOL, and every descriptor
   * it sent is closed. A change applies to clients that connect
   * afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_FDS_PER_MESSAGE] =
    g_param_spec_uint ("max-fds-per-message", NULL, NULL,
                       1, NP_FDS_MAX, NP_STREAM_MAX_FDS_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-pending-requests:
   *
   * The most requests of one client the server holds unanswered at once:
   * those [signal@Np.PipeServer::request-received] delivered and the
   * application has not answered yet, such as the [class@Np.PipeRequest]s
   * it keeps to answer later. A request past it is not delivered: it is
   * answered at once with %NP_PIPE_ERROR_TOO_MANY_REQUESTS, which the
   * client can tell from any other answer, and its bytes are freed; once
   * some are answered, requests are taken again. With
   * [property@Np.PipeServer:max-pending-request-bytes], it keeps a client
   * that asks faster than the application answers from growing the
   * server's memory without bound.
   *
   * The default, 4096, is far more than an application keeps in flight
   * (a request waits only while the application works on it), and keeps
   * what the library holds for them, a few hundred bytes each besides
   * their messages, to about a megabyte per client. 0 means no limit; at
   * most `G_MAXUINT`. A change applies to clients that connect
   * afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_PENDING_REQUESTS] =
    g_param_spec_uint ("max-pending-requests", NULL, NULL,
                       0, G_MAXUINT, NP_STREAM_MAX_PENDING_REQUESTS_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-pending-request-bytes:
   *
   * The most bytes of requests of one client the server holds unanswered
   * at once: the sizes of their messages, summed. A request that would
   * take them past it is answered at once with
   * %NP_PIPE_ERROR_TOO_MANY_REQUESTS and not delivered, as past
   * [property@Np.PipeServer:max-pending-requests]; one larger than this
   * on its own is always refused. A request may be as large as
   * [property@Np.PipeServer:max-message-size], so that a number of
   * requests alone would bound little.
   *
   * The default, 67108864 (64 MiB), holds four requests of the largest
   * size a server takes by default (16 MiB), and is the default of
   * [property@Np.PipeServer:max-queued-bytes], the bound on what waits to
   * be written to a client: no ordinary application meets it. 0 means no
   * limit; at most `G_MAXUINT32`. A change applies to clients that
   * connect afterwards.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_SERVER_PROP_MAX_PENDING_REQUEST_BYTES] =
    g_param_spec_uint ("max-pending-request-bytes", NULL, NULL,
                       0, G_MAXUINT32, NP_STREAM_MAX_PENDING_REQUEST_BYTES_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, NP_PIPE_SERVER_N_PROPS, properties);
}

/**
 * np_pipe_server_get_max_message_size:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-message-size].
 *
 * Returns: the largest message accepted from a client, in bytes
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_message_size (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_message_size);
}

/**
 * np_pipe_server_set_max_message_size:
 * @self: a #NpPipeServer
 * @max_message_size: the largest message accepted from a client, in bytes
 *
 * Sets [property@Np.PipeServer:max-message-size].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_message_size (NpPipeServer *self,
                                     guint         max_message_size)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->max_message_size, max_message_size,
                           NP_PIPE_SERVER_PROP_MAX_MESSAGE_SIZE);
}

/**
 * np_pipe_server_get_max_queued_bytes:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-queued-bytes].
 *
 * Returns: the most bytes that may wait to be written to one client
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_queued_bytes (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_queued_bytes);
}

/**
 * np_pipe_server_set_max_queued_bytes:
 * @self: a #NpPipeServer
 * @max_queued_bytes: the most bytes that may wait to be written to one
 *   client, 0 for no limit
 *
 * Sets [property@Np.PipeServer:max-queued-bytes].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_queued_bytes (NpPipeServer *self,
                                     guint         max_queued_bytes)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->max_queued_bytes, max_queued_bytes,
                           NP_PIPE_SERVER_PROP_MAX_QUEUED_BYTES);
}

/**
 * np_pipe_server_get_max_connections:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-connections].
 *
 * Returns: the most clients served at once, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_connections (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_connections);
}

/**
 * np_pipe_server_set_max_connections:
 * @self: a #NpPipeServer
 * @max_connections: the most clients served at once, 0 for no limit
 *
 * Sets [property@Np.PipeServer:max-connections].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_connections (NpPipeServer *self,
                                    guint         max_connections)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->max_connections, max_connections,
                           NP_PIPE_SERVER_PROP_MAX_CONNECTIONS);
}

/**
 * np_pipe_server_get_allow_other_users:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:allow-other-users].
 *
 * Returns: whether peers of other users may connect
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_get_allow_other_users (NpPipeServer *self)
{
  gboolean allow;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  g_mutex_lock (&self->lock);
  allow = self->allow_other_users;
  g_mutex_unlock (&self->lock);

  return allow;
}

/**
 * np_pipe_server_set_allow_other_users:
 * @self: a #NpPipeServer
 * @allow_other_users: whether peers of other users may connect
 *
 * Sets [property@Np.PipeServer:allow-other-users].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_allow_other_users (NpPipeServer *self,
                                      gboolean      allow_other_users)
{
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  allow_other_users = !!allow_other_users;

  g_mutex_lock (&self->lock);
  changed = self->allow_other_users != allow_other_users;
  self->allow_other_users = allow_other_users;
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self),
                              properties [NP_PIPE_SERVER_PROP_ALLOW_OTHER_USERS]);
}

/**
 * np_pipe_server_get_handshake_timeout:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:handshake-timeout].
 *
 * Returns: the handshake deadline in milliseconds, 0 for none
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_handshake_timeout (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->handshake_timeout);
}

/**
 * np_pipe_server_set_handshake_timeout:
 * @self: a #NpPipeServer
 * @timeout_msec: the handshake deadline in milliseconds, 0 for none
 *
 * Sets [property@Np.PipeServer:handshake-timeout].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_handshake_timeout (NpPipeServer *self,
                                      guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->handshake_timeout, timeout_msec,
                           NP_PIPE_SERVER_PROP_HANDSHAKE_TIMEOUT);
}

/**
 * np_pipe_server_get_close_timeout:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:close-timeout].
 *
 * Returns: how long a closing connection may take to write what is
 *   queued, in milliseconds, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_close_timeout (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->close_timeout);
}

/**
 * np_pipe_server_set_close_timeout:
 * @self: a #NpPipeServer
 * @timeout_msec: how long a closing connection may take to write what is
 *   queued, in milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeServer:close-timeout].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_close_timeout (NpPipeServer *self,
                                  guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->close_timeout, timeout_msec,
                           NP_PIPE_SERVER_PROP_CLOSE_TIMEOUT);
}

/**
 * np_pipe_server_get_request_timeout:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:request-timeout].
 *
 * Returns: how long a request to a client waits for its reply, in
 *   milliseconds, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_request_timeout (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->request_timeout);
}

/**
 * np_pipe_server_set_request_timeout:
 * @self: a #NpPipeServer
 * @timeout_msec: how long a request to a client waits for its reply, in
 *   milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeServer:request-timeout].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_request_timeout (NpPipeServer *self,
                                    guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->request_timeout, timeout_msec,
                           NP_PIPE_SERVER_PROP_REQUEST_TIMEOUT);
}

/**
 * np_pipe_server_get_max_fds_per_message:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-fds-per-message].
 *
 * Returns: the most descriptors one message of a client may carry
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_fds_per_message (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_fds_per_message);
}

/**
 * np_pipe_server_set_max_fds_per_message:
 * @self: a #NpPipeServer
 * @max_fds: the most descriptors one message of a client may carry, 1
 *   to 253
 *
 * Sets [property@Np.PipeServer:max-fds-per-message].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_fds_per_message (NpPipeServer *self,
                                        guint         max_fds)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));
  g_return_if_fail (max_fds >= 1 && max_fds <= NP_FDS_MAX);

  np_pipe_server_set_uint (self, &self->max_fds_per_message, max_fds,
                           NP_PIPE_SERVER_PROP_MAX_FDS_PER_MESSAGE);
}

/**
 * np_pipe_server_get_max_pending_requests:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-pending-requests].
 *
 * Returns: the most requests of one client held unanswered at once, 0
 *   for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_pending_requests (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_pending_requests);
}

/**
 * np_pipe_server_set_max_pending_requests:
 * @self: a #NpPipeServer
 * @max_pending_requests: the most requests of one client held unanswered
 *   at once, 0 for no limit
 *
 * Sets [property@Np.PipeServer:max-pending-requests].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_pending_requests (NpPipeServer *self,
                                         guint         max_pending_requests)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->max_pending_requests, max_pending_requests,
                           NP_PIPE_SERVER_PROP_MAX_PENDING_REQUESTS);
}

/**
 * np_pipe_server_get_max_pending_request_bytes:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:max-pending-request-bytes].
 *
 * Returns: the most bytes of requests of one client held unanswered at
 *   once, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_max_pending_request_bytes (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return np_pipe_server_get_uint (self, &self->max_pending_request_bytes);
}

/**
 * np_pipe_server_set_max_pending_request_bytes:
 * @self: a #NpPipeServer
 * @max_pending_request_bytes: the most bytes of requests of one client
 *   held unanswered at once, 0 for no limit
 *
 * Sets [property@Np.PipeServer:max-pending-request-bytes].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_max_pending_request_bytes (NpPipeServer *self,
                                              guint         max_pending_request_bytes)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_uint (self, &self->max_pending_request_bytes, max_pending_request_bytes,
                           NP_PIPE_SERVER_PROP_MAX_PENDING_REQUEST_BYTES);
}
