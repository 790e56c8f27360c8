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

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-context-private.h"
#include "np-error.h"
#include "np-i18n-private.h"
#include "np-connection-owner-private.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-request-private.h"
#include "np-stream-private.h"
#include "np-variant.h"

/**
 * NpPipeConnection:
 *
 * One end of an established connection: the server's end of one of its
 * clients, or a client's end of its connection to the server.
 *
 * A [class@Np.PipeServer] makes one for each client that connects, and
 * hands it to the application by
 * [signal@Np.PipeServer::client-connected]; a [class@Np.PipeClient]
 * makes one each time it connects, and gives the current one with
 * [method@Np.PipeClient.get_connection]. Both ends are the same object,
 * with the same methods: send with [method@Np.PipeConnection.send] (or
 * [method@Np.PipeConnection.send_async] to learn when the message was
 * written), ask with [method@Np.PipeConnection.request_async], measure
 * with [method@Np.PipeConnection.ping_async], and end with
 * [method@Np.PipeConnection.close_async]. What the connection receives
 * is reported by its owner's signals
 * ([signal@Np.PipeServer::message-received],
 * [signal@Np.PipeClient::message-received] and their kin), its end by
 * [signal@Np.PipeServer::client-disconnected] or
 * [signal@Np.PipeClient::disconnected]. The connection's own signal,
 * [signal@Np.PipeConnection::queue-drained], paces a sender that
 * streams more than its peer reads at once.
 *
 * A client's methods of the same names act on its current connection,
 * and add what a connection cannot do alone: holding messages while it
 * reconnects ([property@Np.PipeClient:auto-reconnect]).
 *
 * Who the peer is comes from the kernel (`SO_PEERCRED`), not from anything
 * the peer says: see [method@Np.PipeConnection.get_peer_pid] and
 * [method@Np.PipeConnection.get_peer_uid]. At a client's end, the peer
 * is the server's process, or the service manager's for a server whose
 * socket it made (systemd socket activation).
 *
 * The limits and timeouts of a connection are its owner's
 * ([property@Np.PipeServer:request-timeout],
 * [property@Np.PipeClient:close-timeout] and the others), read when
 * they are used: a change applies to open connections from the next
 * call, except for what the handshake announced to the peer
 * (`max-message-size` and `max-fds-per-message`), which applies from the
 * next connection.
 *
 * Every method of a connection may be called from any thread, at any
 * time; messages sent from one thread reach the peer in the order that
 * thread sent them, and messages sent from several threads arrive whole,
 * never mixed. What the connection reports, through its owner's signals
 * and its own, happens in the owner's main context.
 *
 * Since: 1.0
 */

struct _NpPipeConnection
{
  GObject            parent_instance;

  /* Set at creation, or before anyone else sees the connection, and
   * never changed. */
  GObject           *owner;    /* until the stream takes it over */
  GMainContext      *context;
  GSocketConnection *socket_connection;
  GTlsConnection    *tls;      /* over TCP, unless in plain text */
  gboolean           remote;   /* over TCP */
  NpLimits          *limits;
  char              *name;     /* of the pipe */
  NpStream          *stream;   /* its private part, once started or refused */
  GCredentials      *credentials;
  guint64            id;
  gint               peer_pid;
  guint              peer_uid;
  guint              peer_gid;
  gboolean           started;
  gboolean           client_end;
};

enum {
  PROP_0,
  PROP_ID,
  PROP_PEER_PID,
  PROP_PEER_UID,
  PROP_PEER_GID,
  PROP_PEER_MAX_MESSAGE_SIZE,
  PROP_CONNECTED,
  PROP_QUEUED_BYTES,
  PROP_MAX_QUEUED_BYTES,
  N_PROPS
};

enum {
  QUEUE_DRAINED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (NpPipeConnection, np_pipe_connection, G_TYPE_OBJECT)

static GParamSpec *properties [N_PROPS];
static guint signals [N_SIGNALS];

#define UNKNOWN_ID ((guint) -1)

static NpStream *
np_pipe_connection_get_stream (NpPipeConnection *self)
{
  return g_atomic_pointer_get (&self->stream);
}

/* The stream, or %NULL with @error set when the connection was never
 * started. */
static NpStream *
np_pipe_connection_get_started_stream (NpPipeConnection  *self,
                                       GError           **error)
{
  NpStream *stream = np_pipe_connection_get_stream (self);

  if (stream == NULL || !self->started)
    {
      if (self->client_end)
        g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                     _("Pipe “%s” is not connected"), self->name);
      else
        g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                     _("Client %" PRIu64 " of pipe “%s” is not connected"), self->id, self->name);
      return NULL;
    }

  return stream;
}

/* Marks the connection closing, as its owner or the application closes
 * it: notifies once, from the owner's context. Returns whether it was
 * connected. */
static gboolean
np_pipe_connection_set_disconnected (NpPipeConnection *self)
{
  NpStream *stream = np_pipe_connection_get_stream (self);

  if (stream == NULL || !self->started || !np_stream_take_connected (stream))
    return FALSE;

  np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);
  return TRUE;
}

static void
np_pipe_connection_dispose (GObject *object)
{
  NpPipeConnection *self = (NpPipeConnection *)object;
  NpStream *stream = np_pipe_connection_get_stream (self);

  if (stream != NULL)
    np_stream_detach (stream);

  G_OBJECT_CLASS (np_pipe_connection_parent_class)->dispose (object);
}

static void
np_pipe_connection_finalize (GObject *object)
{
  NpPipeConnection *self = (NpPipeConnection *)object;

  g_clear_pointer (&self->stream, np_stream_unref);
  g_clear_object (&self->socket_connection);
  g_clear_object (&self->tls);
  g_clear_object (&self->credentials);
  g_clear_pointer (&self->limits, np_limits_unref);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);

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

    case PROP_PEER_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, np_pipe_connection_get_peer_max_message_size (self));
      break;

    case PROP_CONNECTED:
      g_value_set_boolean (value, np_pipe_connection_get_connected (self));
      break;

    case PROP_QUEUED_BYTES:
      g_value_set_uint64 (value, np_pipe_connection_get_queued_bytes (self));
      break;

    case PROP_MAX_QUEUED_BYTES:
      g_value_set_uint (value, np_pipe_connection_get_max_queued_bytes (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_connection_class_init (NpPipeConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  np_i18n_init ();

  object_class->dispose = np_pipe_connection_dispose;
  object_class->finalize = np_pipe_connection_finalize;
  object_class->get_property = np_pipe_connection_get_property;

  /**
   * NpPipeConnection:id:
   *
   * The identifier of the connection, from 1 (0 for a connection no
   * server or client made). At a server's end it is unique within the
   * server and increases with each peer the server accepts; peers
   * complete their handshakes in any order, so clients are not always
   * announced in the order of their identifiers. At a client's end it
   * counts the client's connections: 1 for its first, one more for each
   * connection a connect or a reconnect makes.
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
   * The process id of the peer, as the kernel recorded it when the
   * connection was made (see [method@Np.PipeConnection.get_peer_pid]);
   * -1 when the platform does not tell, or when the peer runs outside
   * this process's pid namespace (a host client of a server in a
   * sandbox, a host server of a client in one), which has no number for
   * it.
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
   * The user id of the peer, as the kernel recorded it when the
   * connection was made; `(guint) -1` (the C library's "no user") when
   * the platform does not tell.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_UID] =
    g_param_spec_uint ("peer-uid", NULL, NULL,
                       0, G_MAXUINT, UNKNOWN_ID,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:peer-gid:
   *
   * The group id of the peer, as the kernel recorded it when the
   * connection was made; `(guint) -1` when the platform does not tell.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_GID] =
    g_param_spec_uint ("peer-gid", NULL, NULL,
                       0, G_MAXUINT, UNKNOWN_ID,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:peer-max-message-size:
   *
   * The largest message, in bytes, the peer accepts, as it announced in
   * the handshake (a client's [property@Np.PipeClient:max-message-size],
   * a server's [property@Np.PipeServer:max-message-size]), from 0 to
   * `G_MAXUINT32`; 0 until its handshake arrived. A larger message fails
   * to send with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE.
   *
   * Since: 1.0
   */
  properties [PROP_PEER_MAX_MESSAGE_SIZE] =
    g_param_spec_uint ("peer-max-message-size", NULL, NULL,
                       0, G_MAXUINT32, 0,
                       (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:connected:
   *
   * Whether messages can still be sent on the connection: %TRUE from the
   * start of its handshake, so from before its owner hands it out (by
   * [signal@Np.PipeServer::client-connected] or
   * [method@Np.PipeClient.get_connection]); %FALSE before, as in
   * [signal@Np.PipeServer::authorize-peer]. It turns %FALSE once, when
   * the connection starts closing for any reason (either side closing
   * it, a failure, its owner closing or stopping), notified in the
   * owner's main context.
   *
   * Since: 1.0
   */
  properties [PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:queued-bytes:
   *
   * How many bytes are queued to the peer and not yet written to the
   * socket, framing included, as
   * [method@Np.PipeConnection.get_queued_bytes] returns it; 0 once the
   * connection ended.
   *
   * It changes with every message sent and written, and is not notified:
   * read it when needed, and connect to
   * [signal@Np.PipeConnection::queue-drained] to learn, without polling,
   * when a queue that passed half of the limit drained.
   *
   * Since: 1.0
   */
  properties [PROP_QUEUED_BYTES] =
    g_param_spec_uint64 ("queued-bytes", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeConnection:max-queued-bytes:
   *
   * The most bytes that may wait to be written to this peer: its owner's
   * [property@Np.PipeServer:max-queued-bytes] or
   * [property@Np.PipeClient:max-queued-bytes], as it is now. 0 means no
   * limit. It is not notified when the owner's changes: watch the
   * owner's property.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint ("max-queued-bytes", NULL, NULL,
                       0, G_MAXUINT32, 0,
                       (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * NpPipeConnection::queue-drained:
   * @self: a #NpPipeConnection
   *
   * Emitted when what is queued to the peer, having passed half of
   * its owner's max-queued-bytes ([property@Np.PipeServer:max-queued-bytes]
   * or [property@Np.PipeClient:max-queued-bytes]), has been written down
   * to a quarter of it or less: the moment for a sender that paused
   * streaming to this peer to send again. Past the limit, a send fails
   * with %NP_PIPE_ERROR_QUEUE_FULL, and at a server's end the peer that
   * did not read is dropped too (see [method@Np.PipeConnection.send]). A
   * sender that pauses once [method@Np.PipeConnection.get_queued_bytes]
   * passes half the limit, and resumes on this signal, never meets that
   * error, as long as each message, with its 8-byte header, is at most
   * half the limit.
   *
   * It is emitted once per such crossing, from the owner's main context,
   * never from inside a send; at a client's end, just before the client's
   * own [signal@Np.PipeClient::queue-drained]. With no limit (0) it is
   * not emitted. A connection that closes before its queue drained emits
   * nothing: [signal@Np.PipeServer::client-disconnected] or
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
}

static void
np_pipe_connection_init (NpPipeConnection *self)
{
  self->peer_pid = -1;
  self->peer_uid = UNKNOWN_ID;
  self->peer_gid = UNKNOWN_ID;
}

#ifdef __linux__
/* Reads SO_PEERCRED itself rather than through GCredentials, which takes
 * a record with pid 0 for invalid data and then answers uid -1 too: the
 * kernel reports pid 0 for a peer outside the reader's pid namespace (a
 * host client of a server in a sandbox), whose uid is still right. */
static gboolean
np_pipe_connection_read_peer_credentials (NpPipeConnection  *self,
                                          GSocket           *socket,
                                          GError           **error)
{
  struct ucred ucred = { 0 };
  socklen_t len = sizeof ucred;

  if (getsockopt (g_socket_get_fd (socket), SOL_SOCKET, SO_PEERCRED, &ucred, &len) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot read the credentials of a peer of pipe “%s”: %s"),
                   self->name, g_strerror (errsv));
      return FALSE;
    }

  self->credentials = g_credentials_new ();
  g_credentials_set_native (self->credentials, G_CREDENTIALS_TYPE_LINUX_UCRED, &ucred);

  self->peer_pid = ucred.pid > 0 ? ucred.pid : -1;
  self->peer_uid = ucred.uid;
  self->peer_gid = ucred.gid;

  return TRUE;
}
#endif

/* A connection of @socket_connection, through @tls over TCP unless in
 * plain text, reporting to @owner (an NpConnectionOwner) in @context,
 * with the limits and timeouts of @limits: at the client's end of it
 * when @client_end, at the server's otherwise. Nothing happens until it
 * is started or refused. */
NpPipeConnection *
_np_pipe_connection_new (GObject            *owner,
                         GMainContext       *context,
                         GSocketConnection  *socket_connection,
                         GTlsConnection     *tls,
                         const char         *name,
                         NpLimits           *limits,
                         guint64             id,
                         gboolean            client_end,
                         GError            **error)
{
  g_autoptr(NpPipeConnection) self = NULL;
  GSocket *socket = g_socket_connection_get_socket (socket_connection);

  self = g_object_new (NP_TYPE_PIPE_CONNECTION, NULL);
  self->owner = owner;
  self->context = g_main_context_ref (context);
  self->socket_connection = g_object_ref (socket_connection);
  self->name = g_strdup (name);
  self->limits = np_limits_ref (limits);
  self->id = id;
  self->client_end = !!client_end;
  self->tls = tls != NULL ? g_object_ref (tls) : NULL;
  self->remote = g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX;

  /* Over TCP no kernel vouches for the peer: its certificate does. */
  if (self->remote)
    {
      self->peer_pid = -1;
      self->peer_uid = self->peer_gid = UNKNOWN_ID;
      return g_steal_pointer (&self);
    }

#ifdef __linux__
  if (!np_pipe_connection_read_peer_credentials (self, socket, error))
    return NULL;
#else
  self->credentials = g_socket_get_credentials (socket, error);
  if (self->credentials == NULL)
    return NULL;

  self->peer_pid = g_credentials_get_unix_pid (self->credentials, NULL);
  self->peer_uid = g_credentials_get_unix_user (self->credentials, NULL);
#endif

  return g_steal_pointer (&self);
}

static NpStream *
np_pipe_connection_create_stream (NpPipeConnection *self,
                                  GObject          *owner,
                                  guint             max_message_size)
{
  NpStreamFlags flags = NP_STREAM_SERVER_END;
  g_autofree char *label = NULL;
  NpTransport *transport;

  if (self->client_end)
    label = g_strdup_printf (_("Pipe “%s”"), self->name);
  else
    label = g_strdup_printf (_("Client %" PRIu64 " of pipe “%s”"), self->id, self->name);

  if (self->tls != NULL)
    transport = np_transport_tls_new (self->socket_connection, self->tls);
  else
    transport = np_transport_unix_new (self->socket_connection);

  if (self->client_end)
    flags |= NP_STREAM_CLIENT_END;
  if (self->remote)
    flags |= NP_STREAM_REMOTE;

  return np_stream_new (G_OBJECT (self), owner, transport, self->context, label, self->limits,
                        max_message_size, flags);
}

/* Starts the handshake and the message flow; the handshake must be
 * complete within @handshake_timeout ms (0: no limit). */
void
_np_pipe_connection_start (NpPipeConnection *self,
                           guint             handshake_timeout)
{
  NpStream *stream;

  g_assert (self->stream == NULL);

  /* What the handshake announces is fixed for the connection; the rest
   * of the limits are read when they are used. */
  stream = np_pipe_connection_create_stream (self, self->owner,
                                             np_limits_get (self->limits, NP_LIMIT_MAX_MESSAGE_SIZE));
  self->started = TRUE;
  g_atomic_pointer_set (&self->stream, stream);
  np_stream_start (stream, handshake_timeout);
}

/* Tells the peer why it is refused, then closes, reporting nothing: the
 * hello and the goodbye go out in one write, so the peer reads both. */
void
_np_pipe_connection_refuse (NpPipeConnection *self,
                            const GError     *reason)
{
  NpStream *stream;

  g_assert (self->stream == NULL);

  stream = np_pipe_connection_create_stream (self, NULL, 0);
  g_atomic_pointer_set (&self->stream, stream);
  np_stream_abort (stream, reason);
}

/* Counts the started @connections whose peers have closed their side,
 * for the server at its limit: see np_stream_count_peers_closed(). */
guint
_np_pipe_connection_count_peers_closed (GPtrArray *connections)
{
  g_autofree NpStream **streams = g_new (NpStream *, MAX (connections->len, 1));
  guint n = 0;

  for (guint i = 0; i < connections->len; i++)
    {
      NpPipeConnection *self = g_ptr_array_index (connections, i);
      NpStream *stream = np_pipe_connection_get_stream (self);

      if (stream != NULL && self->started)
        streams[n++] = stream;
    }

  return np_stream_count_peers_closed (streams, n);
}

/* The owner is going away: close without reporting to it. */
void
_np_pipe_connection_detach (NpPipeConnection *self)
{
  NpStream *stream = np_pipe_connection_get_stream (self);
  gboolean changed = FALSE;

  if (stream != NULL)
    {
      changed = self->started && np_stream_take_connected (stream);
      np_stream_detach (stream);
    }
  /* From the owner's dispose: notified once that is over. */
  if (changed)
    np_context_notify_later (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);
}

/* Whether the connection has ended, all told. */
gboolean
_np_pipe_connection_is_done (NpPipeConnection *self)
{
  NpStream *stream = np_pipe_connection_get_stream (self);

  return stream == NULL || np_stream_is_done (stream);
}

/* A request of the peer's, to hand to the application. */
NpPipeRequest *
_np_pipe_connection_new_request (NpPipeConnection *self,
                                 guint32           id,
                                 GBytes           *message,
                                 GUnixFDList      *fds)
{
  return _np_pipe_request_new (self->stream, id, message, fds, self);
}

/* Sends @message on a connection its owner knows to be started: the
 * client's send(), without the checks of the public call. */
gboolean
_np_pipe_connection_send (NpPipeConnection  *self,
                          GBytes            *message,
                          GError           **error)
{
  return np_stream_send (self->stream, message, error);
}

/* Publishes what is queued in *@mirror too, until called with NULL: for
 * a client that reads its queued bytes without a lock. */
void
_np_pipe_connection_set_queued_mirror (NpPipeConnection *self,
                                       gsize            *mirror)
{
  np_stream_set_queued_mirror (self->stream, mirror);
}

/* Queues a message its owner held while it had no connection: see
 * np_stream_send_held(). */
gboolean
_np_pipe_connection_send_held (NpPipeConnection  *self,
                               GBytes            *message,
                               GError           **error)
{
  return np_stream_send_held (self->stream, message, error);
}

/* Waits, blocking, for @wait to be done by the owner (which it is, from
 * the owner's report of the handshake or of the end), running the
 * connection's I/O meanwhile when nobody else does; see
 * np_stream_block(). */
gboolean
_np_pipe_connection_block (NpPipeConnection *self,
                           NpStreamWait     *wait,
                           gint64            deadline,
                           GCancellable     *cancellable)
{
  return np_stream_block (self->stream, wait, deadline, cancellable);
}

static NpStream *np_pipe_connection_take_for_close (NpPipeConnection *self);

/* Runs @op on the connection for @task, whose source object is the
 * connection or its owner: the one implementation of each asynchronous
 * call of both. @message is the message of a send or a request, @fds
 * the descriptors of a request. */
void
_np_pipe_connection_run (NpPipeConnection *self,
                         NpConnectionOp    op,
                         GBytes           *message,
                         GUnixFDList      *fds,
                         GTask            *task)
{
  GError *error = NULL;
  g_autoptr(NpStream) stream = NULL;

  /* The task's source object holds the connection, or the client holds
   * it until it is closed; the stream stays until the call ends. */
  stream = np_pipe_connection_get_started_stream (self, &error);
  if (stream == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  np_stream_ref (stream);

  switch (op)
    {
    case NP_CONNECTION_OP_SEND:
      np_stream_send_async (stream, message, task);
      break;

    case NP_CONNECTION_OP_FLUSH:
      np_stream_flush_async (stream, task);
      break;

    case NP_CONNECTION_OP_PING:
      np_stream_ping_async (stream, task);
      break;

    case NP_CONNECTION_OP_REQUEST:
      np_stream_request_async (stream, message, fds, task);
      break;

    case NP_CONNECTION_OP_CLOSE:
      g_clear_pointer (&stream, np_stream_unref);
      stream = np_pipe_connection_take_for_close (self);
      if (stream == NULL)
        g_task_return_boolean (task, TRUE);
      else
        np_stream_close_async (stream, task);
      break;

    default:
      g_assert_not_reached ();
    }
}

/* Finishes a request run by _np_pipe_connection_run(). */
GBytes *
_np_pipe_connection_request_finish (GTask        *task,
                                    GUnixFDList **out_fds,
                                    GError      **error)
{
  return np_stream_request_finish (task, out_fds, error);
}

/**
 * np_pipe_connection_get_id:
 * @self: a #NpPipeConnection
 *
 * Gets [property@Np.PipeConnection:id]: at a server's end, unique within
 * the server and increasing in the order it accepted the peers; at a
 * client's end, the number of the client's connection, from 1.
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
 * connected (`SO_PEERCRED`). At a client's end, the kernel records the
 * process that made the server's listening socket: the server's, or the
 * service manager's for a server started on demand by a systemd socket
 * unit.
 *
 * A process in a pid namespace of its own (a sandbox made with
 * `bwrap --unshare-pid`, say) cannot see a peer outside it: the kernel
 * reports no pid for it, and this returns -1, for a host client at a
 * sandboxed server's end as for a host server at a sandboxed client's.
 * Its user and group ids are still right.
 *
 * Returns: the peer's process id, or -1 if the platform does not tell or
 *   the peer is outside this process's pid namespace
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
 * Returns: the peer's user id, or `(guint) -1` if the platform does not
 *   tell
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_peer_uid (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), UNKNOWN_ID);

  return self->peer_uid;
}

/**
 * np_pipe_connection_get_peer_gid:
 * @self: a #NpPipeConnection
 *
 * Gets the group id of the peer, from the kernel's record of who
 * connected (`SO_PEERCRED`).
 *
 * Returns: the peer's group id, or `(guint) -1` if the platform does not
 *   tell
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_peer_gid (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), UNKNOWN_ID);

  return self->peer_gid;
}

/**
 * np_pipe_connection_get_peer_credentials:
 * @self: a #NpPipeConnection
 *
 * Gets the credentials the kernel recorded for the peer when it connected.
 *
 * For a peer outside this process's pid namespace the kernel records pid 0,
 * which GLib's [method@Gio.Credentials.get_unix_user] and
 * [method@Gio.Credentials.get_unix_pid] take for invalid data and answer
 * -1 for both: read the peer's ids with
 * [method@Np.PipeConnection.get_peer_uid] and its siblings instead.
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
 * np_pipe_connection_get_peer_certificate:
 * @self: a #NpPipeConnection
 *
 * Gets the certificate the peer presented in the TLS handshake of a
 * connection over TCP: the server's, at a client's end; the client's, at
 * a server's end, when the server asked for one
 * ([property@Np.PipeServer:tls-authentication-mode]) and the client had
 * one. Set before [signal@Np.PipeServer::authorize-peer] is emitted, so
 * that a handler can decide by it.
 *
 * Returns: (transfer none) (nullable): the peer's certificate, or %NULL
 *   for a local pipe, a peer that presented none, or a connection in
 *   plain text
 *
 * Since: 1.0
 */
GTlsCertificate *
np_pipe_connection_get_peer_certificate (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);

  return self->tls != NULL ? g_tls_connection_get_peer_certificate (self->tls) : NULL;
}

/**
 * np_pipe_connection_get_peer_certificate_errors:
 * @self: a #NpPipeConnection
 *
 * Gets what the validation of the peer's certificate found wrong with
 * it (see [method@Gio.TlsConnection.get_peer_certificate_errors]). A
 * client connects only to a server whose certificate validated, was
 * pinned ([property@Np.PipeClient:tls-pin]) or was accepted by
 * [signal@Np.PipeClient::accept-certificate]; a server gets clients
 * whose certificate did not validate when it only requested one, and may
 * refuse them in [signal@Np.PipeServer::authorize-peer].
 *
 * Returns: the errors found, or 0
 *
 * Since: 1.0
 */
GTlsCertificateFlags
np_pipe_connection_get_peer_certificate_errors (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return self->tls != NULL ? g_tls_connection_get_peer_certificate_errors (self->tls) : 0;
}

/**
 * np_pipe_connection_get_remote_address:
 * @self: a #NpPipeConnection
 *
 * Gets the address of the peer of a connection over TCP.
 *
 * Returns: (transfer full) (nullable): the peer's address, or %NULL for
 *   a local pipe, or when it cannot be told
 *
 * Since: 1.0
 */
GSocketAddress *
np_pipe_connection_get_remote_address (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);

  if (!self->remote)
    return NULL;

  return g_socket_connection_get_remote_address (self->socket_connection, NULL);
}

/**
 * np_pipe_connection_get_peer_max_message_size:
 * @self: a #NpPipeConnection
 *
 * Gets [property@Np.PipeConnection:peer-max-message-size].
 *
 * Returns: the largest message the peer accepts, in bytes, or 0 until
 *   its handshake arrived
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_peer_max_message_size (NpPipeConnection *self)
{
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  stream = np_pipe_connection_get_stream (self);
  return stream != NULL ? np_stream_get_peer_max_message_size (stream) : 0;
}

/**
 * np_pipe_connection_get_max_queued_bytes:
 * @self: a #NpPipeConnection
 *
 * Gets [property@Np.PipeConnection:max-queued-bytes]: how many bytes may
 * wait to be written to this peer before a send fails with
 * %NP_PIPE_ERROR_QUEUE_FULL, which at a server's end drops the peer too
 * (see [method@Np.PipeConnection.send]). Compare it with
 * [method@Np.PipeConnection.get_queued_bytes] to pause before a peer
 * that does not keep up meets it.
 *
 * Returns: the limit, in bytes; 0 for no limit
 *
 * Since: 1.0
 */
guint
np_pipe_connection_get_max_queued_bytes (NpPipeConnection *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  return np_limits_get (self->limits, NP_LIMIT_MAX_QUEUED_BYTES);
}

/**
 * np_pipe_connection_send:
 * @self: a #NpPipeConnection
 * @message: the message, 0 bytes or more
 * @error: return location for a #GError
 *
 * Queues @message to the peer, which receives it through its owner's
 * [signal@Np.PipeServer::message-received] or
 * [signal@Np.PipeClient::message-received]. This never blocks: the
 * queue is written from the owner's main context, as one vectored write
 * for everything queued in the meantime, and at once, as far as the
 * socket takes it, once it grows past a few tens of KiB.
 * [method@Np.PipeConnection.flush_sync] and
 * [method@Np.PipeConnection.close] write it out without a main loop.
 *
 * Fails with %NP_PIPE_ERROR_CLOSED once the connection is closing, and
 * with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE when @message is larger than the
 * peer accepts ([property@Np.PipeConnection:peer-max-message-size]). A
 * message sent before the peer's handshake arrived cannot be checked: it
 * goes out, and a peer that does not take it closes the connection with
 * that error; behind a request that waits for the handshake, it waits
 * too, and is dropped with a warning if it is too large.
 *
 * When the peer does not read and @message would make what is queued
 * to it pass its owner's max-queued-bytes
 * ([property@Np.PipeConnection:max-queued-bytes]), this fails with
 * %NP_PIPE_ERROR_QUEUE_FULL, and nothing is queued. At a server's end,
 * the server then drops the peer:
 * [signal@Np.PipeServer::client-disconnected] follows, from the
 * server's main context, with that error. At a client's end, the
 * connection stays: send again once a flush completed, or pace the
 * sends with [signal@Np.PipeConnection::queue-drained].
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
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stream = np_pipe_connection_get_started_stream (self, error);
  if (stream == NULL)
    return FALSE;

  return np_stream_send (stream, message, error);
}

/**
 * np_pipe_connection_send_with_fds:
 * @self: a #NpPipeConnection
 * @message: the message, 0 bytes or more
 * @fds: (nullable): the descriptors to pass with it, at most 253
 * @error: return location for a #GError
 *
 * Queues @message to the peer with the file descriptors of @fds,
 * which travel with it over the socket (`SCM_RIGHTS`): the peer
 * receives duplicates of them, with the message, through its owner's
 * [signal@Np.PipeServer::message-with-fds-received] or
 * [signal@Np.PipeClient::message-with-fds-received]. This never blocks,
 * and fails like [method@Np.PipeConnection.send].
 *
 * The connection keeps a reference to @fds until the message is written
 * (the descriptors stay open until then); when the connection closes
 * first, that reference is dropped. @fds with no descriptors, or %NULL,
 * sends a plain message.
 *
 * Fails with %NP_PIPE_ERROR_NOT_SUPPORTED when the peer's library does
 * not take descriptors (it speaks protocol version 2 or earlier) or when
 * @fds holds more than 253, and with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE
 * when it holds more than the peer announced it takes per message (its
 * owner's [property@Np.PipeServer:max-fds-per-message] or
 * [property@Np.PipeClient:max-fds-per-message], from protocol version 4
 * on); nothing is sent, and the connection goes on. A peer of version 3,
 * which announces no limit, closes the connection with
 * %NP_PIPE_ERROR_PROTOCOL when it gets more than it takes.
 *
 * Sent before the peer's handshake arrived, the message waits for it, in
 * its place among the others, and is checked then: past what the peer
 * takes, it is dropped with a warning (its call has returned), and the
 * connection goes on; to a peer too old for descriptors, the connection
 * closes with %NP_PIPE_ERROR_NOT_SUPPORTED.
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_send_with_fds (NpPipeConnection  *self,
                                  GBytes            *message,
                                  GUnixFDList       *fds,
                                  GError           **error)
{
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (fds == NULL || G_IS_UNIX_FD_LIST (fds), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (fds == NULL || g_unix_fd_list_get_length (fds) == 0)
    return np_pipe_connection_send (self, message, error);

  stream = np_pipe_connection_get_started_stream (self, error);
  if (stream == NULL)
    return FALSE;

  return np_stream_send_with_fds (stream, message, fds, error);
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
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  message = g_bytes_new (data, size);

  return np_pipe_connection_send (self, message, error);
}

/**
 * np_pipe_connection_send_variant:
 * @self: a #NpPipeConnection
 * @value: the value; a floating reference is consumed
 * @error: return location for a #GError
 *
 * Queues @value to the peer as one message, with its type, as
 * [func@Np.variant_to_message] makes it; the peer reads it back with
 * [func@Np.variant_from_message]. Fails like
 * [method@Np.PipeConnection.send].
 *
 * Returns: %TRUE if the message was queued
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_send_variant (NpPipeConnection  *self,
                                 GVariant          *value,
                                 GError           **error)
{
  g_autoptr(GBytes) message = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  message = np_variant_to_message (value);

  return np_pipe_connection_send (self, message, error);
}

/**
 * np_pipe_connection_send_async:
 * @self: a #NpPipeConnection
 * @message: the message, 0 bytes or more
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the message is written to the
 *   socket, or failed
 * @user_data: data for @callback
 *
 * Queues @message like [method@Np.PipeConnection.send] and reports when
 * it has been written to the socket, in the thread-default main context
 * of the calling thread. Finish with
 * [method@Np.PipeConnection.send_finish]. It fails as
 * [method@Np.PipeConnection.send] does: past max-queued-bytes with
 * %NP_PIPE_ERROR_QUEUE_FULL, which at a server's end drops the peer too.
 *
 * Cancelling before any byte of the message was written takes it out of
 * the queue: the peer never sees it. Once writing has begun, the
 * message is delivered whole all the same, and the call still fails with
 * %G_IO_ERROR_CANCELLED.
 *
 * Since: 1.0
 */
void
np_pipe_connection_send_async (NpPipeConnection    *self,
                               GBytes              *message,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (message != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_send_async);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_SEND, message, NULL, task);
}

/**
 * np_pipe_connection_send_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.send_async].
 *
 * Returns: %TRUE if the message was written to the socket
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_send_finish (NpPipeConnection  *self,
                                GAsyncResult      *result,
                                GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * np_pipe_connection_flush_sync:
 * @self: a #NpPipeConnection
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes out everything queued to the peer, blocking the calling
 * thread until the socket took it. No main context is iterated: when the
 * peer runs in the same thread (a server and its client sharing one main
 * loop), queue no more than the socket buffer holds (some hundred KiB)
 * before flushing, or use [method@Np.PipeConnection.flush_async]: the
 * peer cannot read while the thread is blocked.
 *
 * Returns: %TRUE if everything queued was written
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_flush_sync (NpPipeConnection  *self,
                               GCancellable      *cancellable,
                               GError           **error)
{
  g_autoptr(NpPipeConnection) hold = NULL;
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Completing a send_async may run a callback that drops the last
   * reference; the connection holds the stream. */
  hold = g_object_ref (self);
  stream = np_pipe_connection_get_started_stream (self, error);

  return stream != NULL && np_stream_flush_sync (stream, cancellable, error);
}

/**
 * np_pipe_connection_flush_async:
 * @self: a #NpPipeConnection
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything queued so far is
 *   written, or failed
 * @user_data: data for @callback
 *
 * Writes out everything queued to the peer from the owner's main
 * context, and reports in the thread-default main context of the calling
 * thread. Finish with [method@Np.PipeConnection.flush_finish].
 * Cancelling fails the call at once with %G_IO_ERROR_CANCELLED; what is
 * queued is written all the same.
 *
 * Since: 1.0
 */
void
np_pipe_connection_flush_async (NpPipeConnection    *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_flush_async);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_FLUSH, NULL, NULL, task);
}

/**
 * np_pipe_connection_flush_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.flush_async].
 *
 * Returns: %TRUE if everything queued was written
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_flush_finish (NpPipeConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * np_pipe_connection_request_async:
 * @self: a #NpPipeConnection
 * @request: the request's message
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the peer's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the peer: sends @request, which the peer receives through its
 * owner's [signal@Np.PipeServer::request-received] or
 * [signal@Np.PipeClient::request-received], and reports its reply in
 * the thread-default main context of the calling thread. Finish with
 * [method@Np.PipeConnection.request_finish].
 *
 * Many requests may be in flight at once, in both directions; replies are
 * matched whatever order they come in, and requests keep their place
 * among the messages sent. An error the peer replies with keeps its
 * domain and code. A request unanswered after its owner's request-timeout
 * ([property@Np.PipeServer:request-timeout] or
 * [property@Np.PipeClient:request-timeout], as it is when the request is
 * sent) fails with %NP_PIPE_ERROR_TIMED_OUT. One fails with
 * %NP_PIPE_ERROR_NOT_SUPPORTED when the peer's library has no requests
 * (at once, or once the peer's handshake tells, for a request made
 * before it) or nothing on the peer handles it, and with
 * %NP_PIPE_ERROR_TOO_MANY_REQUESTS when the peer already holds as many
 * unanswered as it takes (its owner's max-pending-requests and
 * max-pending-request-bytes), the connection going on. A disconnect
 * fails every pending request with the disconnect's error. Cancelling
 * fails only this request (with %G_IO_ERROR_CANCELLED); a reply that
 * comes later is dropped, and a request cancelled before any of it was
 * written is never sent.
 *
 * Since: 1.0
 */
void
np_pipe_connection_request_async (NpPipeConnection    *self,
                                  GBytes              *request,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_request_async);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_REQUEST, request, NULL, task);
}

/**
 * np_pipe_connection_request_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.request_async]. An error the peer
 * replied with keeps its domain and code.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_finish (NpPipeConnection  *self,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * np_pipe_connection_request_data_async:
 * @self: a #NpPipeConnection
 * @data: (array length=size) (element-type guint8) (nullable): the request's
 *   message
 * @size: the length of @data
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the peer's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the peer with a copy of @data, like
 * [method@Np.PipeConnection.request_async]: the call for bindings that
 * hold a byte string rather than a #GBytes, such as a Python `bytes`
 * object. Finish with [method@Np.PipeConnection.request_data_finish].
 *
 * Since: 1.0
 */
void
np_pipe_connection_request_data_async (NpPipeConnection    *self,
                                       const guint8        *data,
                                       gsize                size,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GBytes) request = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (data != NULL || size == 0);

  request = g_bytes_new (data, size);
  np_pipe_connection_request_async (self, request, cancellable, callback, user_data);
}

/**
 * np_pipe_connection_request_data_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.request_data_async]. An error the
 * peer replied with keeps its domain and code.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_data_finish (NpPipeConnection  *self,
                                        GAsyncResult      *result,
                                        GError           **error)
{
  return np_pipe_connection_request_finish (self, result, error);
}

/**
 * np_pipe_connection_request_with_fds_async:
 * @self: a #NpPipeConnection
 * @request: the request's message
 * @fd_list: (nullable): the descriptors to pass with it, at most 253
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the peer's reply, or the failure
 * @user_data: data for @callback
 *
 * Asks the peer, like [method@Np.PipeConnection.request_async],
 * passing the file descriptors of @fd_list with the request
 * (`SCM_RIGHTS`), and taking those the peer passes with its reply:
 * finish with [method@Np.PipeConnection.request_with_fds_finish]. This
 * is the call for a service that hands out descriptors, as GDBus's
 * g_dbus_connection_call_with_unix_fd_list() does: open a file for the
 * caller, give it a memfd.
 *
 * The peer finds the descriptors with
 * [method@Np.PipeRequest.get_fd_list] and answers with
 * [method@Np.PipeRequest.reply_with_fds]. The connection keeps a
 * reference to @fd_list until the request is written (or cancelled
 * before it was). @fd_list with no descriptors, or %NULL, sends a plain
 * request, whose reply may still carry descriptors.
 *
 * Requests and replies carry descriptors from protocol version 4 on: to
 * a peer whose library speaks an older version, a request with
 * descriptors fails with %NP_PIPE_ERROR_NOT_SUPPORTED and is not sent
 * (at once, or once the peer's handshake tells, for a request made
 * before it). More than 253 descriptors fail the same way, and more than
 * the peer takes (its owner's [property@Np.PipeServer:max-fds-per-message]
 * or [property@Np.PipeClient:max-fds-per-message], announced in the
 * handshake) with %NP_PIPE_ERROR_MESSAGE_TOO_LARGE; the connection goes
 * on.
 *
 * Since: 1.0
 */
void
np_pipe_connection_request_with_fds_async (NpPipeConnection    *self,
                                           GBytes              *request,
                                           GUnixFDList         *fd_list,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_request_with_fds_async);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_REQUEST, request, fd_list, task);
}

/**
 * np_pipe_connection_request_with_fds_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @out_fd_list: (out) (optional) (nullable) (transfer full): where to put
 *   the descriptors of the reply, %NULL when it carried none
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.request_with_fds_async]. The
 * reply's descriptors are the caller's; with @out_fd_list %NULL, they
 * are closed. An error the peer replied with keeps its domain and
 * code.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_with_fds_finish (NpPipeConnection  *self,
                                            GAsyncResult      *result,
                                            GUnixFDList      **out_fd_list,
                                            GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        np_pipe_connection_request_with_fds_async, NULL);

  return _np_pipe_connection_request_finish (G_TASK (result), out_fd_list, error);
}

/**
 * np_pipe_connection_request_with_fds_sync:
 * @self: a #NpPipeConnection
 * @request: the request's message
 * @fd_list: (nullable): the descriptors to pass with it, at most 253
 * @out_fd_list: (out) (optional) (nullable) (transfer full): where to put
 *   the descriptors of the reply, %NULL when it carried none
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the peer with descriptors, like
 * [method@Np.PipeConnection.request_with_fds_async], and blocks the
 * calling thread until the reply comes, the request times out or
 * @cancellable is cancelled, as [method@Np.PipeConnection.request_sync]
 * does.
 *
 * Returns: (transfer full): the reply
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_with_fds_sync (NpPipeConnection  *self,
                                          GBytes            *request,
                                          GUnixFDList       *fd_list,
                                          GUnixFDList      **out_fd_list,
                                          GCancellable      *cancellable,
                                          GError           **error)
{
  g_autoptr(NpPipeConnection) hold = NULL;
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list), NULL);
  g_return_val_if_fail (out_fd_list == NULL || *out_fd_list == NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* What arrives meanwhile may run handlers that drop the connection. */
  hold = g_object_ref (self);
  stream = np_pipe_connection_get_started_stream (self, error);
  if (stream == NULL)
    return NULL;
  np_stream_ref (stream);

  return np_stream_request_sync (stream, request, fd_list, out_fd_list, cancellable, error);
}

/**
 * np_pipe_connection_request_sync:
 * @self: a #NpPipeConnection
 * @request: the request's message
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the peer, like [method@Np.PipeConnection.request_async], and
 * blocks the calling thread until the reply comes, the request times out
 * or @cancellable is cancelled.
 *
 * It blocks on the socket and never iterates the caller's main context:
 * when no other thread runs the owner's main context, this thread reads
 * the connection itself (messages and requests that arrive meanwhile are
 * delivered from here, by its owner's signals, as the context would);
 * otherwise it waits for that thread to read the reply. So it may be
 * called from any thread, the owner's main context's included, but the
 * peer cannot run in the same thread: it could not answer. Called from a
 * handler of what this connection received, it delivers what follows, in
 * order, before the handler returns, as a main loop run there would.
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_sync (NpPipeConnection  *self,
                                 GBytes            *request,
                                 GCancellable      *cancellable,
                                 GError           **error)
{
  return np_pipe_connection_request_with_fds_sync (self, request, NULL, NULL, cancellable, error);
}

/**
 * np_pipe_connection_request_data_sync:
 * @self: a #NpPipeConnection
 * @data: (array length=size) (element-type guint8) (nullable): the request's
 *   message
 * @size: the length of @data
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the peer with a copy of @data, like
 * [method@Np.PipeConnection.request_sync]: the call for bindings that
 * hold a byte string rather than a #GBytes.
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GBytes *
np_pipe_connection_request_data_sync (NpPipeConnection  *self,
                                      const guint8      *data,
                                      gsize              size,
                                      GCancellable      *cancellable,
                                      GError           **error)
{
  g_autoptr(GBytes) request = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), NULL);
  g_return_val_if_fail (data != NULL || size == 0, NULL);

  request = g_bytes_new (data, size);
  return np_pipe_connection_request_sync (self, request, cancellable, error);
}

/**
 * np_pipe_connection_ping_async:
 * @self: a #NpPipeConnection
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the round trip, or the failure
 * @user_data: data for @callback
 *
 * Sends a ping to the peer, whose library answers it at once, whatever
 * its application does, and reports how long the answer took, in the
 * thread-default main context of the calling thread: it tells that the
 * peer is alive and responsive. Finish with
 * [method@Np.PipeConnection.ping_finish]. A connection that closes first
 * fails the ping with the reason it closed.
 *
 * Cancelling fails the call at once with %G_IO_ERROR_CANCELLED; the ping
 * is taken out of the queue if none of it was written, and an answer
 * that comes later is ignored.
 *
 * Since: 1.0
 */
void
np_pipe_connection_ping_async (NpPipeConnection    *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_ping_async);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_PING, NULL, NULL, task);
}

/**
 * np_pipe_connection_ping_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.ping_async].
 *
 * Returns: the round trip, in microseconds (0 or more), once the peer
 *   answered; -1, with @error set, when it did not
 *
 * Since: 1.0
 */
gint64
np_pipe_connection_ping_finish (NpPipeConnection  *self,
                                GAsyncResult      *result,
                                GError           **error)
{
  gssize usec;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), -1);
  g_return_val_if_fail (g_task_is_valid (result, self), -1);

  usec = g_task_propagate_int (G_TASK (result), error);
  g_assert (usec >= -1);

  return usec;
}

/**
 * np_pipe_connection_get_queued_bytes:
 * @self: a #NpPipeConnection
 *
 * Gets how many bytes are queued to the peer and not yet written to the
 * socket, framing included: a measure of progress for a large send, or
 * of a peer that does not keep up. This is
 * [property@Np.PipeConnection:queued-bytes]; pace a stream of messages
 * with [signal@Np.PipeConnection::queue-drained].
 *
 * Returns: the bytes queued, 0 once the connection ended
 *
 * Since: 1.0
 */
guint64
np_pipe_connection_get_queued_bytes (NpPipeConnection *self)
{
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), 0);

  stream = np_pipe_connection_get_stream (self);
  return stream != NULL ? np_stream_get_queued_bytes (stream) : 0;
}

/* Starts closing without waiting: what is queued is written from the
 * server's main context, within the close timeout. For the server,
 * whose stop() must not block on a client. */
void
_np_pipe_connection_begin_close (NpPipeConnection *self)
{
  g_autoptr(NpPipeConnection) hold = NULL;
  NpStream *stream;

  stream = np_pipe_connection_get_stream (self);
  if (stream == NULL || !self->started)
    return;

  hold = g_object_ref (self);
  np_pipe_connection_set_disconnected (self);
  np_stream_close (stream);
}

/* The stream to close, or NULL when there is nothing to close: not
 * accepted, or closing already. Marks the connection closing. */
static NpStream *
np_pipe_connection_take_for_close (NpPipeConnection *self)
{
  if (!np_pipe_connection_set_disconnected (self))
    return NULL;

  return np_stream_ref (self->stream);
}

/**
 * np_pipe_connection_close:
 * @self: a #NpPipeConnection
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes out everything queued to the peer, blocking for at most its
 * owner's close-timeout ([property@Np.PipeServer:close-timeout] or
 * [property@Np.PipeClient:close-timeout], as it is when the close
 * begins), then a goodbye that tells the peer the connection was
 * closed, and closes the connection: past the timeout, what is still
 * queued is dropped, so a peer that does not read cannot make this
 * hang. The owner then reports the end, with the same error this
 * returns (none when everything was written), by
 * [signal@Np.PipeServer::client-disconnected] or
 * [signal@Np.PipeClient::disconnected]: before this returns when called
 * from the thread of the owner's main context (the thread that iterates
 * it; or, while no thread does, the thread that pushed it as its
 * thread-default context, the main thread for the global default one),
 * otherwise from that context once it runs.
 *
 * At a client's end this closes the current connection only: the client
 * reports it as lost, and with [property@Np.PipeClient:auto-reconnect]
 * connects again. [method@Np.PipeClient.close] closes the client.
 *
 * Like g_io_stream_close(), it fails when something queued was dropped.
 * Cancelling closes at once, dropping what is still queued, and fails it
 * with %G_IO_ERROR_CANCELLED. Whether it fails or not, the connection is
 * closed when this returns; in Python the failure is an exception, as
 * from a file whose `close()` cannot write out what it buffered. Closing
 * a connection that is closed or closing already does nothing and
 * succeeds.
 *
 * Called from the owner's main context, it blocks that context
 * meanwhile (a server serves none of its other clients), and a peer
 * that reads in the same thread could not read what it waits for: with
 * a main loop, prefer [method@Np.PipeConnection.close_async], which does
 * not block.
 *
 * Returns: %TRUE if everything queued was written before the connection
 *   closed; %FALSE, with the reason, when something was dropped
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_close (NpPipeConnection  *self,
                          GCancellable      *cancellable,
                          GError           **error)
{
  g_autoptr(NpPipeConnection) hold = NULL;
  g_autoptr(NpStream) stream = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The client-disconnected handler may drop the last reference. */
  hold = g_object_ref (self);
  stream = np_pipe_connection_take_for_close (self);
  if (stream == NULL)
    return TRUE;

  return np_stream_close_sync (stream, cancellable, error);
}

/**
 * np_pipe_connection_close_async:
 * @self: a #NpPipeConnection
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the connection is closed
 * @user_data: data for @callback
 *
 * Closes the connection without blocking, like
 * [method@Np.PipeConnection.close], and fails when it does: what is
 * queued is written from the owner's main context for at most its
 * owner's close-timeout, then the connection closes and the owner
 * reports it ([signal@Np.PipeServer::client-disconnected] or
 * [signal@Np.PipeClient::disconnected]).
 *
 * Cancelling closes at once, dropping what is still queued; the call
 * then fails with %G_IO_ERROR_CANCELLED, but the connection is closed all
 * the same, as with g_io_stream_close_async(). Finish with
 * [method@Np.PipeConnection.close_finish].
 *
 * Since: 1.0
 */
void
np_pipe_connection_close_async (NpPipeConnection    *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (NP_IS_PIPE_CONNECTION (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_connection_close_async);
  /* Cancelled or not, the connection is closed: say what was lost. */
  g_task_set_check_cancellable (task, FALSE);
  _np_pipe_connection_run (self, NP_CONNECTION_OP_CLOSE, NULL, NULL, task);
}

/**
 * np_pipe_connection_close_finish:
 * @self: a #NpPipeConnection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeConnection.close_async].
 *
 * Returns: %TRUE if everything queued was written before the connection
 *   closed; %FALSE, with the reason, when something was dropped
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_close_finish (NpPipeConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * np_pipe_connection_get_connected:
 * @self: a #NpPipeConnection
 *
 * Gets [property@Np.PipeConnection:connected]: whether messages can
 * still be sent to the peer.
 *
 * Returns: %TRUE until the connection starts closing
 *
 * Since: 1.0
 */
gboolean
np_pipe_connection_get_connected (NpPipeConnection *self)
{
  NpStream *stream;

  g_return_val_if_fail (NP_IS_PIPE_CONNECTION (self), FALSE);

  stream = np_pipe_connection_get_stream (self);

  return stream != NULL && self->started && np_stream_is_connected (stream);
}
