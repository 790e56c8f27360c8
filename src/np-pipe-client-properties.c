/* np-pipe-client-properties.c: the settings of NpPipeClient
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-error.h"
#include "np-frame-private.h"
#include "np-pipe-client-internal.h"

#define DEFAULT_MAX_MESSAGE_SIZE (16 * 1024 * 1024)
#define DEFAULT_MAX_QUEUED_BYTES (64 * 1024 * 1024)
#define DEFAULT_CONNECT_TIMEOUT  5000
#define DEFAULT_CLOSE_TIMEOUT    5000
#define DEFAULT_REQUEST_TIMEOUT  25000
#define DEFAULT_RECONNECT_INTERVAL      100
#define DEFAULT_RECONNECT_MAX_INTERVAL  5000

GParamSpec *np_pipe_client_properties [NP_PIPE_CLIENT_N_PROPS];

#define properties np_pipe_client_properties

guint
np_pipe_client_get_uint (NpPipeClient *self,
                         const guint  *field)
{
  guint value;

  g_mutex_lock (self->lock);
  value = *field;
  g_mutex_unlock (self->lock);

  return value;
}

static void
np_pipe_client_set_uint (NpPipeClient *self,
                         guint        *field,
                         guint         value,
                         guint         prop_id)
{
  gboolean changed;

  g_mutex_lock (self->lock);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [prop_id]);
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
    case NP_PIPE_CLIENT_PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case NP_PIPE_CLIENT_PROP_PATH:
      g_value_set_string (value, self->path);
      break;

    case NP_PIPE_CLIENT_PROP_CONNECTED:
      g_value_set_boolean (value, np_pipe_client_get_connected (self));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, np_pipe_client_get_max_message_size (self));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_QUEUED_BYTES:
      g_value_set_uint (value, np_pipe_client_get_max_queued_bytes (self));
      break;

    case NP_PIPE_CLIENT_PROP_PEER_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, np_pipe_client_get_peer_max_message_size (self));
      break;

    case NP_PIPE_CLIENT_PROP_CONNECT_TIMEOUT:
      g_value_set_uint (value, np_pipe_client_get_connect_timeout (self));
      break;

    case NP_PIPE_CLIENT_PROP_CLOSE_TIMEOUT:
      g_value_set_uint (value, np_pipe_client_get_close_timeout (self));
      break;

    case NP_PIPE_CLIENT_PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, np_pipe_client_get_request_timeout (self));
      break;

    case NP_PIPE_CLIENT_PROP_QUEUED_BYTES:
      g_value_set_uint64 (value, np_pipe_client_get_queued_bytes (self));
      break;

    case NP_PIPE_CLIENT_PROP_AUTO_RECONNECT:
      g_value_set_boolean (value, np_pipe_client_get_auto_reconnect (self));
      break;

    case NP_PIPE_CLIENT_PROP_RECONNECT_INTERVAL:
      g_value_set_uint (value, np_pipe_client_get_reconnect_interval (self));
      break;

    case NP_PIPE_CLIENT_PROP_RECONNECT_MAX_INTERVAL:
      g_value_set_uint (value, np_pipe_client_get_reconnect_max_interval (self));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE:
      g_value_set_uint (value, np_pipe_client_get_max_fds_per_message (self));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUESTS:
      g_value_set_uint (value, np_pipe_client_get_max_pending_requests (self));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUEST_BYTES:
      g_value_set_uint (value, np_pipe_client_get_max_pending_request_bytes (self));
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
    case NP_PIPE_CLIENT_PROP_NAME:
      /* Construct-only: nothing else sees the client yet. */
      self->name = g_value_dup_string (value);
      break;

    case NP_PIPE_CLIENT_PROP_MAX_MESSAGE_SIZE:
      np_pipe_client_set_max_message_size (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_QUEUED_BYTES:
      np_pipe_client_set_max_queued_bytes (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_CONNECT_TIMEOUT:
      np_pipe_client_set_connect_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_CLOSE_TIMEOUT:
      np_pipe_client_set_close_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_REQUEST_TIMEOUT:
      np_pipe_client_set_request_timeout (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_AUTO_RECONNECT:
      np_pipe_client_set_auto_reconnect (self, g_value_get_boolean (value));
      break;

    case NP_PIPE_CLIENT_PROP_RECONNECT_INTERVAL:
      np_pipe_client_set_reconnect_interval (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_RECONNECT_MAX_INTERVAL:
      np_pipe_client_set_reconnect_max_interval (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE:
      np_pipe_client_set_max_fds_per_message (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUESTS:
      np_pipe_client_set_max_pending_requests (self, g_value_get_uint (value));
      break;

    case NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUEST_BYTES:
      np_pipe_client_set_max_pending_request_bytes (self, g_value_get_uint (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

void
np_pipe_client_install_properties (GObjectClass *object_class)
{
  object_class->get_property = np_pipe_client_get_property;
  object_class->set_property = np_pipe_client_set_property;

  /**
   * NpPipeClient:name:
   *
   * The name of the server to connect to: a pipe name or an absolute
   * socket path, as given to [ctor@Np.PipeServer.new]. A client created
   * without one cannot connect: connecting fails with
   * %NP_PIPE_ERROR_INVALID_NAME. %NULL by default; set at construction
   * only.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:path:
   *
   * The socket path [property@Np.PipeClient:name] maps to, or %NULL when
   * the name is not valid or not set.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:connected:
   *
   * Whether the client is connected: from a successful connect until
   * [method@Np.PipeClient.close], or until the server goes
   * ([signal@Np.PipeClient::disconnected]); %FALSE before. Its
   * notifications are emitted in the client's main context.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-message-size:
   *
   * The largest message, in bytes, the client accepts from the server; the
   * server learns it in the handshake and refuses to send larger ones.
   * From 0 to 4294967295 (`G_MAXUINT32`); the default is 16777216 (16
   * MiB). A change applies from the next connect.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_MAX_MESSAGE_SIZE] =
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
   * [method@Np.PipeClient.flush_async] make room. From 0 (no limit) to
   * `G_MAXUINT32`; the default is 67108864 (64 MiB). Frames the client queues because of
   * what the server sent (the answers to its pings) count too: a server
   * that sends them and does not read is disconnected with that error.
   *
   * Rather than meet that error, a producer pauses once
   * [property@Np.PipeClient:queued-bytes] passes half this limit, and
   * sends again on [signal@Np.PipeClient::queue-drained], emitted once
   * the queue is down to a quarter of it. A change applies at once, to
   * those marks too.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint ("max-queued-bytes", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_QUEUED_BYTES,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:peer-max-message-size:
   *
   * The largest message, in bytes, the server accepts, as it announced in
   * the handshake, from 0 to `G_MAXUINT32`; 0 until the server's
   * handshake arrived. A larger
   * message fails to send with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE. It
   * changes in the client's main context.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_PEER_MAX_MESSAGE_SIZE] =
    g_param_spec_uint ("peer-max-message-size", NULL, NULL,
                       0, G_MAXUINT32, 0,
                       (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:connect-timeout:
   *
   * How long, in milliseconds, connecting may take: waiting for room in a
   * busy server's queue of new connections, and waiting for the server to
   * accept the client. A server that has not answered the handshake by
   * then is given up with %NP_PIPE_ERROR_TIMED_OUT (after a
   * [method@Np.PipeClient.connect_sync] that did not wait for a server in
   * its own thread, through [signal@Np.PipeClient::disconnected]). 0
   * waits for as long as it takes; at most `G_MAXUINT`. The default is
   * 5000 (5 seconds).
   *
   * With [property@Np.PipeClient:auto-reconnect],
   * [method@Np.PipeClient.connect_async] also waits this long for a
   * server that does not run yet, and then fails with
   * %NP_PIPE_ERROR_TIMED_OUT; each attempt of a reconnect is bounded by
   * it as a connect is, but the reconnect itself goes on until
   * [method@Np.PipeClient.close].
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_CONNECT_TIMEOUT] =
    g_param_spec_uint ("connect-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_CONNECT_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:close-timeout:
   *
   * How long, in milliseconds, a closing connection waits for a server
   * that reads nothing of what is still queued: in
   * [method@Np.PipeClient.close] and [method@Np.PipeClient.close_async],
   * and after the server ended its side of the connection. A server that
   * reads, however slowly, gets everything; one that stops reading for
   * this long is given up: what is still queued is dropped and
   * [signal@Np.PipeClient::disconnected] reports
   * %NP_PIPE_ERROR_TIMED_OUT, saying how many bytes were lost. 0 waits
   * for as long as it takes; at most `G_MAXUINT`. The default is 5000 (5
   * seconds).
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_CLOSE_TIMEOUT] =
    g_param_spec_uint ("close-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_CLOSE_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:request-timeout:
   *
   * How long, in milliseconds, a request waits for its reply
   * ([method@Np.PipeClient.request_async],
   * [method@Np.PipeClient.request_sync]); past it, the request fails with
   * %NP_PIPE_ERROR_TIMED_OUT and a reply that comes later is dropped. 0
   * waits for as long as it takes; at most `G_MAXUINT`. The default is
   * 25000 (25 seconds, as GDBus). It applies from the next connect.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_REQUEST_TIMEOUT] =
    g_param_spec_uint ("request-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_REQUEST_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:queued-bytes:
   *
   * How many bytes are queued to the server and not yet written to the
   * socket, framing included, as [method@Np.PipeClient.get_queued_bytes]
   * returns it; 0 when not connected.
   *
   * It changes with every message sent and written, and is not notified:
   * read it when needed, and connect to
   * [signal@Np.PipeClient::queue-drained] to learn, without polling, when
   * a queue that passed half of [property@Np.PipeClient:max-queued-bytes]
   * drained.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_QUEUED_BYTES] =
    g_param_spec_uint64 ("queued-bytes", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:auto-reconnect:
   *
   * Whether the client connects again by itself when its connection ends
   * other than by [method@Np.PipeClient.close]: the server stopped, was
   * killed, or dropped the client. It tries after
   * [property@Np.PipeClient:reconnect-interval], then after a back-off
   * that doubles up to [property@Np.PipeClient:reconnect-max-interval],
   * each jittered by ±20 % so that many clients do not come back in
   * lock-step, and at once when the server's socket appears in its
   * directory. The back-off starts again from
   * [property@Np.PipeClient:reconnect-interval] only after a connection
   * that lasted longer than the next wait would be: a server that
   * accepts the client and drops it at once is met with ever longer
   * waits, not with a connect every interval. Each connection lost is reported by
   * [signal@Np.PipeClient::disconnected], each one made by
   * [signal@Np.PipeClient::accepted].
   *
   * While the client is disconnected and comes back,
   * [method@Np.PipeClient.send] holds messages (within
   * [property@Np.PipeClient:max-queued-bytes]) and writes them first, in
   * order, on the next connection; calls that report back (send_async,
   * flush, ping, requests) fail at once with %NP_PIPE_ERROR_CLOSED.
   * Delivery across a reconnect is at most once: what the lost
   * connection had queued or was writing is never sent again. It also
   * makes [method@Np.PipeClient.connect_async] wait for a server that
   * does not run yet, for at most [property@Np.PipeClient:connect-timeout].
   *
   * %FALSE by default. Setting it to %FALSE stops a reconnect under way
   * at once, giving up an attempt in progress; the messages held for it
   * are dropped, and a [signal@Np.PipeClient::disconnected] of its own,
   * with %NP_PIPE_ERROR_CLOSED, says how many.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_AUTO_RECONNECT] =
    g_param_spec_boolean ("auto-reconnect", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                           G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:reconnect-interval:
   *
   * The first back-off, in milliseconds, of
   * [property@Np.PipeClient:auto-reconnect]: the wait before the first
   * attempt after a connection is lost, and after the server's socket
   * appeared but refused. From 1 to `G_MAXUINT`; the default is 100.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_RECONNECT_INTERVAL] =
    g_param_spec_uint ("reconnect-interval", NULL, NULL,
                       1, G_MAXUINT, DEFAULT_RECONNECT_INTERVAL,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:reconnect-max-interval:
   *
   * The longest back-off, in milliseconds, of
   * [property@Np.PipeClient:auto-reconnect]: the wait doubles after each
   * failed attempt up to this. From 1 to `G_MAXUINT`; the default is
   * 5000 (5 seconds). A value below
   * [property@Np.PipeClient:reconnect-interval] acts as that interval:
   * the two may be set in any order.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_RECONNECT_MAX_INTERVAL] =
    g_param_spec_uint ("reconnect-max-interval", NULL, NULL,
                       1, G_MAXUINT, DEFAULT_RECONNECT_MAX_INTERVAL,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-fds-per-message:
   *
   * The most file descriptors one message, request or reply of the
   * server may carry ([method@Np.PipeConnection.send_with_fds],
   * [method@Np.PipeRequest.reply_with_fds]), from 1 to 253 (the
   * kernel's cap on one `sendmsg()`); the default is 16. A server that
   * sends more is disconnected with %NP_PIPE_ERROR_PROTOCOL, and every
   * descriptor it sent is closed. It applies from the next connect.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE] =
    g_param_spec_uint ("max-fds-per-message", NULL, NULL,
                       1, NP_FDS_MAX, NP_STREAM_MAX_FDS_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-pending-requests:
   *
   * The most requests of the server the client holds unanswered at once:
   * those [signal@Np.PipeClient::request-received] delivered and the
   * application has not answered yet, such as the [class@Np.PipeRequest]s
   * it keeps to answer later. A request past it is not delivered: it is
   * answered at once with %NP_PIPE_ERROR_TOO_MANY_REQUESTS, which the
   * server can tell from any other answer, and its bytes are freed; once
   * some are answered, requests are taken again. With
   * [property@Np.PipeClient:max-pending-request-bytes], it keeps a server
   * that asks faster than the application answers from growing the
   * client's memory without bound.
   *
   * The default, 4096, is far more than an application keeps in flight
   * (a request waits only while the application works on it), and keeps
   * what the library holds for them, a few hundred bytes each besides
   * their messages, to about a megabyte. 0 means no limit; at most
   * `G_MAXUINT`. A change applies at once, from the next request of the
   * server.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUESTS] =
    g_param_spec_uint ("max-pending-requests", NULL, NULL,
                       0, G_MAXUINT, NP_STREAM_MAX_PENDING_REQUESTS_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:max-pending-request-bytes:
   *
   * The most bytes of requests of the server the client holds unanswered
   * at once: the sizes of their messages, summed. A request that would
   * take them past it is answered at once with
   * %NP_PIPE_ERROR_TOO_MANY_REQUESTS and not delivered, as past
   * [property@Np.PipeClient:max-pending-requests]; one larger than this
   * on its own is always refused. A request may be as large as
   * [property@Np.PipeClient:max-message-size], so that a number of
   * requests alone would bound little.
   *
   * The default, 67108864 (64 MiB), holds four requests of the largest
   * size a client takes by default (16 MiB), and is the default of
   * [property@Np.PipeClient:max-queued-bytes], the bound on what waits to
   * be written to the server: no ordinary application meets it. 0 means
   * no limit; at most `G_MAXUINT32`. A change applies at once, from the
   * next request of the server.
   *
   * Since: 1.0
   */
  properties [NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUEST_BYTES] =
    g_param_spec_uint ("max-pending-request-bytes", NULL, NULL,
                       0, G_MAXUINT32, NP_STREAM_MAX_PENDING_REQUEST_BYTES_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));


  g_object_class_install_properties (object_class, NP_PIPE_CLIENT_N_PROPS, properties);
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
  gboolean connected;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);

  g_mutex_lock (self->lock);
  connected = self->connected;
  g_mutex_unlock (self->lock);

  return connected;
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

  return np_pipe_client_get_uint (self, &self->max_message_size);
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

  np_pipe_client_set_uint (self, &self->max_message_size, max_message_size,
                           NP_PIPE_CLIENT_PROP_MAX_MESSAGE_SIZE);
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

  return np_pipe_client_get_uint (self, &self->max_queued_bytes);
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
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  g_mutex_lock (self->lock);
  changed = self->max_queued_bytes != max_queued_bytes;
  self->max_queued_bytes = max_queued_bytes;
  if (self->stream != NULL)
    np_stream_set_queue_limit_locked (self->stream, max_queued_bytes, FALSE);
  g_mutex_unlock (self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self),
                              properties [NP_PIPE_CLIENT_PROP_MAX_QUEUED_BYTES]);
}

/**
 * np_pipe_client_get_peer_max_message_size:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:peer-max-message-size].
 *
 * Returns: the largest message the server accepts, in bytes, or 0 until
 *   its handshake arrived
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_peer_max_message_size (NpPipeClient *self)
{
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  g_mutex_lock (self->lock);
  if (self->stream != NULL)
    stream = np_stream_ref (self->stream);
  g_mutex_unlock (self->lock);

  return stream != NULL ? np_stream_get_peer_max_message_size (stream) : 0;
}

/**
 * np_pipe_client_get_connect_timeout:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:connect-timeout].
 *
 * Returns: how long connecting may take, in milliseconds, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_connect_timeout (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->connect_timeout);
}

/**
 * np_pipe_client_set_connect_timeout:
 * @self: a #NpPipeClient
 * @timeout_msec: how long connecting may take, in milliseconds, 0 for no
 *   limit
 *
 * Sets [property@Np.PipeClient:connect-timeout]. It applies from the next
 * connect.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_connect_timeout (NpPipeClient *self,
                                    guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_uint (self, &self->connect_timeout, timeout_msec,
                           NP_PIPE_CLIENT_PROP_CONNECT_TIMEOUT);
}

/**
 * np_pipe_client_get_close_timeout:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:close-timeout].
 *
 * Returns: how long closing may take to write what is queued, in
 *   milliseconds, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_close_timeout (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->close_timeout);
}

/**
 * np_pipe_client_set_close_timeout:
 * @self: a #NpPipeClient
 * @timeout_msec: how long closing may take to write what is queued, in
 *   milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeClient:close-timeout]. It applies from the next
 * connect.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_close_timeout (NpPipeClient *self,
                                  guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_uint (self, &self->close_timeout, timeout_msec,
                           NP_PIPE_CLIENT_PROP_CLOSE_TIMEOUT);
}

/**
 * np_pipe_client_get_request_timeout:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:request-timeout].
 *
 * Returns: how long a request waits for its reply, in milliseconds, 0
 *   for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_request_timeout (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->request_timeout);
}

/**
 * np_pipe_client_set_request_timeout:
 * @self: a #NpPipeClient
 * @timeout_msec: how long a request waits for its reply, in
 *   milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeClient:request-timeout]. It applies from the
 * next connect.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_request_timeout (NpPipeClient *self,
                                    guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_uint (self, &self->request_timeout, timeout_msec,
                           NP_PIPE_CLIENT_PROP_REQUEST_TIMEOUT);
}

/**
 * np_pipe_client_get_auto_reconnect:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:auto-reconnect].
 *
 * Returns: %TRUE if the client connects again by itself
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_get_auto_reconnect (NpPipeClient *self)
{
  gboolean auto_reconnect;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);

  g_mutex_lock (self->lock);
  auto_reconnect = self->auto_reconnect;
  g_mutex_unlock (self->lock);

  return auto_reconnect;
}

/**
 * np_pipe_client_set_auto_reconnect:
 * @self: a #NpPipeClient
 * @auto_reconnect: whether to connect again by itself
 *
 * Sets [property@Np.PipeClient:auto-reconnect].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_auto_reconnect (NpPipeClient *self,
                                   gboolean      auto_reconnect)
{
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  g_mutex_lock (self->lock);
  changed = self->auto_reconnect != !!auto_reconnect;
  self->auto_reconnect = !!auto_reconnect;
  g_mutex_unlock (self->lock);

  if (!auto_reconnect)
    np_pipe_client_stop_auto_reconnect (self);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_AUTO_RECONNECT]);
}

/**
 * np_pipe_client_get_reconnect_interval:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:reconnect-interval].
 *
 * Returns: the first back-off of a reconnect, in milliseconds
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_reconnect_interval (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->reconnect_interval);
}

/**
 * np_pipe_client_set_reconnect_interval:
 * @self: a #NpPipeClient
 * @interval_msec: the first back-off of a reconnect, in milliseconds, at
 *   least 1
 *
 * Sets [property@Np.PipeClient:reconnect-interval]. It applies from the
 * next connection lost.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_reconnect_interval (NpPipeClient *self,
                                       guint         interval_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (interval_msec > 0);

  np_pipe_client_set_uint (self, &self->reconnect_interval, interval_msec,
                           NP_PIPE_CLIENT_PROP_RECONNECT_INTERVAL);
}

/**
 * np_pipe_client_get_reconnect_max_interval:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:reconnect-max-interval].
 *
 * Returns: the longest back-off of a reconnect, in milliseconds
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_reconnect_max_interval (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->reconnect_max_interval);
}

/**
 * np_pipe_client_set_reconnect_max_interval:
 * @self: a #NpPipeClient
 * @interval_msec: the longest back-off of a reconnect, in milliseconds,
 *   at least 1
 *
 * Sets [property@Np.PipeClient:reconnect-max-interval]. It applies from
 * the next back-off.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_reconnect_max_interval (NpPipeClient *self,
                                           guint         interval_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (interval_msec > 0);

  np_pipe_client_set_uint (self, &self->reconnect_max_interval, interval_msec,
                           NP_PIPE_CLIENT_PROP_RECONNECT_MAX_INTERVAL);
}

/**
 * np_pipe_client_get_max_fds_per_message:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:max-fds-per-message].
 *
 * Returns: the most descriptors one message of the server may carry
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_max_fds_per_message (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->max_fds_per_message);
}

/**
 * np_pipe_client_set_max_fds_per_message:
 * @self: a #NpPipeClient
 * @max_fds: the most descriptors one message of the server may carry, 1
 *   to 253
 *
 * Sets [property@Np.PipeClient:max-fds-per-message]. It applies from
 * the next connect.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_max_fds_per_message (NpPipeClient *self,
                                        guint         max_fds)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (max_fds >= 1 && max_fds <= NP_FDS_MAX);

  np_pipe_client_set_uint (self, &self->max_fds_per_message, max_fds,
                           NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE);
}

/* Sets one of the bounds on the server's requests held unanswered, on
 * the connection too. */
static void
np_pipe_client_set_pending_limit (NpPipeClient *self,
                                  guint        *field,
                                  guint         value,
                                  guint         prop_id)
{
  gboolean changed;

  g_mutex_lock (self->lock);
  changed = *field != value;
  *field = value;
  if (self->stream != NULL)
    np_stream_set_pending_limits_locked (self->stream, self->max_pending_requests,
                                         self->max_pending_request_bytes);
  g_mutex_unlock (self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [prop_id]);
}

/**
 * np_pipe_client_get_max_pending_requests:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:max-pending-requests].
 *
 * Returns: the most requests of the server held unanswered at once, 0
 *   for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_max_pending_requests (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->max_pending_requests);
}

/**
 * np_pipe_client_set_max_pending_requests:
 * @self: a #NpPipeClient
 * @max_pending_requests: the most requests of the server held unanswered
 *   at once, 0 for no limit
 *
 * Sets [property@Np.PipeClient:max-pending-requests]. It applies at once.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_max_pending_requests (NpPipeClient *self,
                                         guint         max_pending_requests)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_pending_limit (self, &self->max_pending_requests, max_pending_requests,
                                    NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUESTS);
}

/**
 * np_pipe_client_get_max_pending_request_bytes:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:max-pending-request-bytes].
 *
 * Returns: the most bytes of requests of the server held unanswered at
 *   once, 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_client_get_max_pending_request_bytes (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  return np_pipe_client_get_uint (self, &self->max_pending_request_bytes);
}

/**
 * np_pipe_client_set_max_pending_request_bytes:
 * @self: a #NpPipeClient
 * @max_pending_request_bytes: the most bytes of requests of the server
 *   held unanswered at once, 0 for no limit
 *
 * Sets [property@Np.PipeClient:max-pending-request-bytes]. It applies at
 * once.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_max_pending_request_bytes (NpPipeClient *self,
                                              guint         max_pending_request_bytes)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_pending_limit (self, &self->max_pending_request_bytes,
                                    max_pending_request_bytes,
                                    NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUEST_BYTES);
}
