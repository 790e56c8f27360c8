/* np-pipe-server.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "np-error.h"
#include "np-marshal.h"
#include "np-name-private.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-server-private.h"

#define DEFAULT_MAX_MESSAGE_SIZE  (16 * 1024 * 1024)
#define DEFAULT_HANDSHAKE_TIMEOUT 5000
#define DEFAULT_MAX_CONNECTIONS   1024
#define DEFAULT_MAX_QUEUED_BYTES  (64 * 1024 * 1024)

/**
 * NpPipeServer:
 *
 * Serves any number of [class@Np.PipeClient]s under one name.
 *
 * Create a server with [ctor@Np.PipeServer.new], connect to its signals,
 * then call [method@Np.PipeServer.start]. Each client that connects gets
 * its own [class@Np.PipeConnection], announced by
 * [signal@Np.PipeServer::client-connected]; every whole message a client
 * sends is reported by [signal@Np.PipeServer::message-received], and its
 * end by [signal@Np.PipeServer::client-disconnected].
 *
 * ```c
 * static void
 * on_message (NpPipeServer     *server,
 *             NpPipeConnection *connection,
 *             GBytes           *message,
 *             gpointer          user_data)
 * {
 *   np_pipe_connection_send (connection, message, NULL);  // echo
 * }
 *
 * g_autoptr(NpPipeServer) server = np_pipe_server_new ("my-app");
 * g_signal_connect (server, "message-received", G_CALLBACK (on_message), NULL);
 * if (!np_pipe_server_start (server, &error))
 *   g_printerr ("%s\n", error->message);
 * ```
 *
 * A name such as `my-app` maps to a Unix socket in the per-user directory
 * `$XDG_RUNTIME_DIR/np/` (created with mode 0700); a name that starts with
 * `/` is used as the socket path itself.
 *
 * By default only processes of the server's own user may connect; the
 * kernel's record of the peer decides, not anything the peer says. See
 * [property@Np.PipeServer:allow-other-users] and
 * [signal@Np.PipeServer::authorize-peer].
 *
 * All clients are served from one main context: the thread-default main
 * context of the thread that created the server. Every signal is emitted
 * there, and the server is not thread-safe: use it from that thread.
 *
 * Since: 1.0
 */

struct _NpPipeServer
{
  GObject          parent_instance;

  char            *name;
  char            *path;
  GMainContext    *context;
  GSocketService  *service;
  GListStore      *connections;
  guint64          last_id;
  int              lock_fd;
  dev_t            socket_dev;
  ino_t            socket_ino;

  guint            max_message_size;
  guint            max_queued_bytes;
  guint            max_connections;
  guint            handshake_timeout;
  guint            allow_other_users : 1;
  guint            running : 1;
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_PATH,
  PROP_RUNNING,
  PROP_N_CONNECTIONS,
  PROP_CONNECTIONS,
  PROP_MAX_MESSAGE_SIZE,
  PROP_MAX_QUEUED_BYTES,
  PROP_MAX_CONNECTIONS,
  PROP_ALLOW_OTHER_USERS,
  PROP_HANDSHAKE_TIMEOUT,
  N_PROPS
};

enum {
  AUTHORIZE_PEER,
  CLIENT_CONNECTED,
  MESSAGE_RECEIVED,
  CLIENT_DISCONNECTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (NpPipeServer, np_pipe_server, G_TYPE_OBJECT)

static GParamSpec *properties [N_PROPS];
static guint signals [N_SIGNALS];

GMainContext *
_np_pipe_server_get_context (NpPipeServer *self)
{
  return self->context;
}

void
_np_pipe_server_message_received (NpPipeServer     *self,
                                  NpPipeConnection *connection,
                                  GBytes           *message)
{
  g_signal_emit (self, signals [MESSAGE_RECEIVED], 0, connection, message);
}

void
_np_pipe_server_client_disconnected (NpPipeServer     *self,
                                     NpPipeConnection *connection,
                                     const GError     *error)
{
  guint position;

  if (!g_list_store_find (self->connections, connection, &position))
    return;

  /* The store held the last reference, perhaps. */
  g_object_ref (self);
  g_object_ref (connection);

  g_list_store_remove (self->connections, position);
  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_N_CONNECTIONS]);
  g_signal_emit (self, signals [CLIENT_DISCONNECTED], 0, connection, error);

  g_object_unref (connection);
  g_object_unref (self);
}

static void
np_pipe_server_accept (NpPipeServer      *self,
                       GSocketConnection *socket_connection)
{
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  gboolean allowed = FALSE;

  connection = _np_pipe_connection_new (self, socket_connection, ++self->last_id, &error);
  if (connection == NULL)
    {
      g_debug ("Pipe “%s”: dropping a peer whose credentials cannot be read: %s",
               self->name, error->message);
      g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
      return;
    }

  if (self->max_connections > 0 &&
      np_pipe_server_get_n_connections (self) >= self->max_connections)
    {
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS,
                   "Pipe “%s” already serves its maximum of %u clients",
                   self->name, self->max_connections);
    }
  else if (!self->allow_other_users &&
           np_pipe_connection_get_peer_uid (connection) != getuid ())
    {
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   "Pipe “%s” only accepts peers of uid %u, not uid %u",
                   self->name, (guint) getuid (),
                   np_pipe_connection_get_peer_uid (connection));
    }
  else
    {
      g_signal_emit (self, signals [AUTHORIZE_PEER], 0, connection, &allowed);

      if (!allowed)
        g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                     "Pipe “%s” refused the peer (pid %d, uid %u)",
                     self->name,
                     np_pipe_connection_get_peer_pid (connection),
                     np_pipe_connection_get_peer_uid (connection));
      else if (!self->running)
        g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                     "Pipe “%s” stopped", self->name);
    }

  if (error != NULL)
    {
      g_debug ("%s", error->message);
      _np_pipe_connection_refuse (connection, error);
      return;
    }

  _np_pipe_connection_accept (connection, self->max_message_size,
                              self->max_queued_bytes, self->handshake_timeout);
  g_list_store_append (self->connections, connection);
  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_N_CONNECTIONS]);

  g_signal_emit (self, signals [CLIENT_CONNECTED], 0, connection);
}

static gboolean
np_pipe_server_incoming_cb (GSocketService    *service,
                            GSocketConnection *socket_connection,
                            GObject           *source_object,
                            gpointer           user_data)
{
  NpPipeServer *self = user_data;

  /* A handler may drop the last reference to the server. */
  g_object_ref (self);
  np_pipe_server_accept (self, socket_connection);
  g_object_unref (self);

  return TRUE;
}

static gboolean
np_pipe_server_authorize_peer_accumulator (GSignalInvocationHint *ihint,
                                           GValue                *return_accu,
                                           const GValue          *handler_return,
                                           gpointer               data)
{
  gboolean allowed = g_value_get_boolean (handler_return);

  g_value_set_boolean (return_accu, allowed);

  /* The first handler that refuses decides. */
  return allowed;
}

static gboolean
np_pipe_server_real_authorize_peer (NpPipeServer     *self,
                                    NpPipeConnection *connection)
{
  return TRUE;
}

/* Closes every connection: gracefully, or (when @force) at once, dropping
 * what is queued. Each one is reported by client-disconnected. */
static void
np_pipe_server_close_connections (NpPipeServer *self,
                                  gboolean      force)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->connections));
  g_autoptr(GPtrArray) connections = g_ptr_array_new_full (n, g_object_unref);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (connections, g_list_model_get_item (G_LIST_MODEL (self->connections), i));

  for (guint i = 0; i < connections->len; i++)
    {
      NpPipeConnection *connection = g_ptr_array_index (connections, i);

      if (!force)
        {
          np_pipe_connection_close (connection);
        }
      else if (g_list_store_find (self->connections, connection, NULL))
        {
          g_autoptr(GError) error = NULL;

          error = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               "Client %" G_GUINT64_FORMAT " of pipe “%s”: the server "
                               "was disposed before queued messages were written",
                               np_pipe_connection_get_id (connection), self->name);
          _np_pipe_server_client_disconnected (self, connection, error);
          _np_pipe_connection_detach (connection);
        }
    }
}

static void
np_pipe_server_dispose (GObject *object)
{
  NpPipeServer *self = (NpPipeServer *)object;

  np_pipe_server_stop (self);
  np_pipe_server_close_connections (self, TRUE);

  G_OBJECT_CLASS (np_pipe_server_parent_class)->dispose (object);
}

static void
np_pipe_server_finalize (GObject *object)
{
  NpPipeServer *self = (NpPipeServer *)object;

  g_clear_object (&self->connections);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);

  G_OBJECT_CLASS (np_pipe_server_parent_class)->finalize (object);
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
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;

    case PROP_RUNNING:
      g_value_set_boolean (value, self->running);
      break;

    case PROP_N_CONNECTIONS:
      g_value_set_uint (value, np_pipe_server_get_n_connections (self));
      break;

    case PROP_CONNECTIONS:
      g_value_set_object (value, self->connections);
      break;

    case PROP_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, self->max_message_size);
      break;

    case PROP_MAX_QUEUED_BYTES:
      g_value_set_uint (value, self->max_queued_bytes);
      break;

    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;

    case PROP_ALLOW_OTHER_USERS:
      g_value_set_boolean (value, self->allow_other_users);
      break;

    case PROP_HANDSHAKE_TIMEOUT:
      g_value_set_uint (value, self->handshake_timeout);
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
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;

    case PROP_MAX_MESSAGE_SIZE:
      np_pipe_server_set_max_message_size (self, g_value_get_uint (value));
      break;

    case PROP_MAX_QUEUED_BYTES:
      np_pipe_server_set_max_queued_bytes (self, g_value_get_uint (value));
      break;

    case PROP_MAX_CONNECTIONS:
      np_pipe_server_set_max_connections (self, g_value_get_uint (value));
      break;

    case PROP_ALLOW_OTHER_USERS:
      np_pipe_server_set_allow_other_users (self, g_value_get_boolean (value));
      break;

    case PROP_HANDSHAKE_TIMEOUT:
      np_pipe_server_set_handshake_timeout (self, g_value_get_uint (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_server_class_init (NpPipeServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = np_pipe_server_dispose;
  object_class->finalize = np_pipe_server_finalize;
  object_class->get_property = np_pipe_server_get_property;
  object_class->set_property = np_pipe_server_set_property;

  /**
   * NpPipeServer:name:
   *
   * The name the server listens under. When the server was created without
   * one, a unique name is generated by [method@Np.PipeServer.start].
   *
   * Since: 1.0
   */
  properties [PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:path:
   *
   * The path of the Unix socket the server listens on, once started.
   *
   * Since: 1.0
   */
  properties [PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:running:
   *
   * Whether the server accepts clients.
   *
   * Since: 1.0
   */
  properties [PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:n-connections:
   *
   * The number of connected clients.
   *
   * Since: 1.0
   */
  properties [PROP_N_CONNECTIONS] =
    g_param_spec_uint ("n-connections", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:connections:
   *
   * The connected clients, as a list model of [class@Np.PipeConnection]
   * that updates as clients come and go.
   *
   * Since: 1.0
   */
  properties [PROP_CONNECTIONS] =
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
   * A change applies to clients that connect afterwards.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_MESSAGE_SIZE] =
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
   * fits. 0 means no limit. A change applies to clients that connect
   * afterwards.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint ("max-queued-bytes", NULL, NULL,
                       0, G_MAXUINT32, DEFAULT_MAX_QUEUED_BYTES,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:max-connections:
   *
   * The most clients served at once. Further peers are refused with
   * %NP_PIPE_ERROR_TOO_MANY_CLIENTS while the connected ones go on.
   * 0 means no limit.
   *
   * Since: 1.0
   */
  properties [PROP_MAX_CONNECTIONS] =
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
  properties [PROP_ALLOW_OTHER_USERS] =
    g_param_spec_boolean ("allow-other-users", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:handshake-timeout:
   *
   * How long, in milliseconds, a client has to complete the handshake
   * after it connects; one that does not is disconnected with
   * %NP_PIPE_ERROR_TIMED_OUT. 0 waits forever.
   *
   * Since: 1.0
   */
  properties [PROP_HANDSHAKE_TIMEOUT] =
    g_param_spec_uint ("handshake-timeout", NULL, NULL,
                       0, G_MAXUINT, DEFAULT_HANDSHAKE_TIMEOUT,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                        G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * NpPipeServer::authorize-peer:
   * @self: a #NpPipeServer
   * @connection: the peer's connection, not yet announced
   *
   * Emitted when a peer connects, before
   * [signal@Np.PipeServer::client-connected], to let the application
   * accept or refuse it by its credentials (see
   * [method@Np.PipeConnection.get_peer_uid]). It is only emitted for peers
   * that [property@Np.PipeServer:allow-other-users] lets in.
   *
   * A refused peer is told %NP_PIPE_ERROR_PERMISSION_DENIED and closed; it
   * never appears in [property@Np.PipeServer:connections] nor in any other
   * signal.
   *
   * Returns: %TRUE to accept the peer, %FALSE to refuse it. The first
   *   handler that returns %FALSE decides.
   *
   * Since: 1.0
   */
  signals [AUTHORIZE_PEER] =
    g_signal_new_class_handler ("authorize-peer",
                                G_TYPE_FROM_CLASS (klass),
                                G_SIGNAL_RUN_LAST,
                                G_CALLBACK (np_pipe_server_real_authorize_peer),
                                np_pipe_server_authorize_peer_accumulator, NULL,
                                _np_marshal_BOOLEAN__OBJECT,
                                G_TYPE_BOOLEAN, 1, NP_TYPE_PIPE_CONNECTION);
  g_signal_set_va_marshaller (signals [AUTHORIZE_PEER], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_BOOLEAN__OBJECTv);

  /**
   * NpPipeServer::client-connected:
   * @self: a #NpPipeServer
   * @connection: the new client's connection
   *
   * Emitted when a client connects, once it is in
   * [property@Np.PipeServer:connections]. The connection may be used to
   * send at once.
   *
   * Since: 1.0
   */
  signals [CLIENT_CONNECTED] =
    g_signal_new ("client-connected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, NP_TYPE_PIPE_CONNECTION);

  /**
   * NpPipeServer::message-received:
   * @self: a #NpPipeServer
   * @connection: the client that sent the message
   * @message: the whole message
   *
   * Emitted for each whole message a client sends, in the order it sent
   * them. Reply with [method@Np.PipeConnection.send].
   *
   * Since: 1.0
   */
  signals [MESSAGE_RECEIVED] =
    g_signal_new ("message-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL,
                  _np_marshal_VOID__OBJECT_BOXED,
                  G_TYPE_NONE, 2, NP_TYPE_PIPE_CONNECTION, G_TYPE_BYTES);
  g_signal_set_va_marshaller (signals [MESSAGE_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__OBJECT_BOXEDv);

  /**
   * NpPipeServer::client-disconnected:
   * @self: a #NpPipeServer
   * @connection: the client's connection
   * @error: (nullable): why the client went, or %NULL after a clean close
   *   by either side
   *
   * Emitted once for each client announced by
   * [signal@Np.PipeServer::client-connected], when its connection ends,
   * after it left [property@Np.PipeServer:connections].
   *
   * @error is set when the client broke the protocol
   * (%NP_PIPE_ERROR_PROTOCOL), sent a message over
   * [property@Np.PipeServer:max-message-size]
   * (%NP_PIPE_ERROR_MESSAGE_TOO_LARGE), did not complete the handshake in
   * time (%NP_PIPE_ERROR_TIMED_OUT), or when reading or writing failed (a
   * `G_IO_ERROR`).
   *
   * Since: 1.0
   */
  signals [CLIENT_DISCONNECTED] =
    g_signal_new ("client-disconnected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL,
                  _np_marshal_VOID__OBJECT_BOXED,
                  G_TYPE_NONE, 2, NP_TYPE_PIPE_CONNECTION, G_TYPE_ERROR);
  g_signal_set_va_marshaller (signals [CLIENT_DISCONNECTED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__OBJECT_BOXEDv);
}

static void
np_pipe_server_init (NpPipeServer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->connections = g_list_store_new (NP_TYPE_PIPE_CONNECTION);
  self->lock_fd = -1;
}

/**
 * np_pipe_server_new:
 * @name: (nullable): the name to listen under, or %NULL for a unique
 *   generated one
 *
 * Creates a server. It listens once [method@Np.PipeServer.start] is called.
 *
 * @name is 1 to 64 of the characters `A-Z a-z 0-9 . _ -` (not `.`, `..`,
 * nor a name ending in `.lock`), or an absolute socket path.
 *
 * Returns: (transfer full): a new #NpPipeServer
 *
 * Since: 1.0
 */
NpPipeServer *
np_pipe_server_new (const char *name)
{
  return g_object_new (NP_TYPE_PIPE_SERVER,
                       "name", name,
                       NULL);
}

/* Takes the socket path: refuses one a live server holds, and removes a
 * socket file left over by a server that died. */
static gboolean
np_pipe_server_claim_path (NpPipeServer  *self,
                           GError       **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct stat st;
  int fd;
  int res;

  if (lstat (self->path, &st) != 0)
    return TRUE;

  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
                   "Cannot listen as pipe “%s”: “%s” exists and is not a socket",
                   self->name, self->path);
      return FALSE;
    }

  /* We hold the pipe's lock, so no Np server runs there. Something else
   * still might: only a socket nobody answers on is removed. */
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot create a socket: %s", g_strerror (errsv));
      return FALSE;
    }

  g_strlcpy (addr.sun_path, self->path, sizeof addr.sun_path);
  res = connect (fd, (struct sockaddr *) &addr, sizeof addr);
  if (res != 0 && errno == ECONNREFUSED)
    {
      close (fd);
      g_debug ("Pipe “%s”: removing the stale socket “%s”", self->name, self->path);
      if (g_unlink (self->path) != 0 && errno != ENOENT)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       "Cannot remove the stale socket “%s” of pipe “%s”: %s",
                       self->path, self->name, g_strerror (errsv));
          return FALSE;
        }
      return TRUE;
    }

  close (fd);
  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
               "Cannot listen as pipe “%s”: another process listens on “%s”",
               self->name, self->path);
  return FALSE;
}

static GSocket *
np_pipe_server_listen (NpPipeServer  *self,
                       GError       **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  struct stat st;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;

  address = g_unix_socket_address_new (self->path);
  if (!g_socket_bind (socket, address, FALSE, error))
    {
      g_prefix_error (error, "Cannot listen as pipe “%s”: ", self->name);
      return NULL;
    }

  if (chmod (self->path, self->allow_other_users ? 0666 : 0600) != 0 ||
      stat (self->path, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot set up the socket “%s” of pipe “%s”: %s",
                   self->path, self->name, g_strerror (errsv));
      g_unlink (self->path);
      return NULL;
    }

  /* Many clients may connect in one burst before the loop gets to them. */
  g_socket_set_listen_backlog (socket, SOMAXCONN);
  if (!g_socket_listen (socket, error))
    {
      g_prefix_error (error, "Cannot listen as pipe “%s”: ", self->name);
      g_unlink (self->path);
      return NULL;
    }

  self->socket_dev = st.st_dev;
  self->socket_ino = st.st_ino;

  return g_steal_pointer (&socket);
}

/* Removes the socket file only if it is still the one we created. */
static void
np_pipe_server_remove_socket_file (NpPipeServer *self)
{
  struct stat st;

  if (lstat (self->path, &st) == 0 &&
      st.st_dev == self->socket_dev && st.st_ino == self->socket_ino)
    g_unlink (self->path);
}

/**
 * np_pipe_server_start:
 * @self: a #NpPipeServer
 * @error: return location for a #GError
 *
 * Starts listening. A server created without a name gets a unique one
 * here (see [property@Np.PipeServer:name]).
 *
 * Fails with %NP_PIPE_ERROR_ADDRESS_IN_USE when a live server already has
 * the name, touching nothing of it. A socket file left over by a server
 * that died is removed and taken over. Fails with
 * %NP_PIPE_ERROR_INVALID_NAME for a name that cannot be a pipe.
 *
 * Starting a running server does nothing.
 *
 * Returns: %TRUE if the server is listening
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_start (NpPipeServer  *self,
                      GError       **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *path = NULL;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->running)
    return TRUE;

  if (self->name == NULL)
    {
      self->name = np_name_generate ();
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_NAME]);
    }

  path = np_name_to_path (self->name, error);
  if (path == NULL)
    return FALSE;

  if (self->name[0] != '/' && !np_name_ensure_dir (path, error))
    return FALSE;

  if (g_strcmp0 (path, self->path) != 0)
    {
      g_free (self->path);
      self->path = g_steal_pointer (&path);
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_PATH]);
    }

  self->lock_fd = np_name_lock (self->name, self->path, error);
  if (self->lock_fd < 0)
    return FALSE;

  if (!np_pipe_server_claim_path (self, error) ||
      !(socket = np_pipe_server_listen (self, error)))
    {
      np_name_unlock (self->lock_fd, self->path);
      self->lock_fd = -1;
      return FALSE;
    }

  /* The accept loop runs in the server's context. */
  g_main_context_push_thread_default (self->context);
  self->service = g_socket_service_new ();
  g_signal_connect (self->service, "incoming",
                    G_CALLBACK (np_pipe_server_incoming_cb), self);
  if (!g_socket_listener_add_socket (G_SOCKET_LISTENER (self->service), socket, NULL, error))
    {
      g_main_context_pop_thread_default (self->context);
      g_clear_object (&self->service);
      np_pipe_server_remove_socket_file (self);
      np_name_unlock (self->lock_fd, self->path);
      self->lock_fd = -1;
      return FALSE;
    }
  g_socket_service_start (self->service);
  g_main_context_pop_thread_default (self->context);

  self->running = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_RUNNING]);

  return TRUE;
}

/**
 * np_pipe_server_stop:
 * @self: a #NpPipeServer
 *
 * Stops listening, removes the socket file and closes every connection.
 * What was queued to a client is still written, from the server's main
 * context; then [signal@Np.PipeServer::client-disconnected] is emitted
 * for it. Connections with nothing queued are reported before this
 * function returns.
 *
 * The server may be started again. Stopping a stopped server does
 * nothing.
 *
 * Since: 1.0
 */
void
np_pipe_server_stop (NpPipeServer *self)
{
  g_autoptr(NpPipeServer) hold = NULL;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  if (!self->running)
    return;

  hold = g_object_ref (self);
  self->running = FALSE;

  g_signal_handlers_disconnect_by_func (self->service, np_pipe_server_incoming_cb, self);
  g_socket_service_stop (self->service);
  g_socket_listener_close (G_SOCKET_LISTENER (self->service));
  g_clear_object (&self->service);

  np_pipe_server_remove_socket_file (self);
  np_name_unlock (self->lock_fd, self->path);
  self->lock_fd = -1;

  np_pipe_server_close_connections (self, FALSE);

  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_RUNNING]);
}

/**
 * np_pipe_server_is_running:
 * @self: a #NpPipeServer
 *
 * Checks whether the server is listening.
 *
 * Returns: %TRUE between a successful [method@Np.PipeServer.start] and
 *   [method@Np.PipeServer.stop]
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_is_running (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  return self->running;
}

/**
 * np_pipe_server_get_name:
 * @self: a #NpPipeServer
 *
 * Gets the name the server listens under.
 *
 * Returns: (nullable): the name, or %NULL before a server created without
 *   one is started
 *
 * Since: 1.0
 */
const char *
np_pipe_server_get_name (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  return self->name;
}

/**
 * np_pipe_server_get_path:
 * @self: a #NpPipeServer
 *
 * Gets the path of the Unix socket the server listens on.
 *
 * Returns: (nullable): the socket path, or %NULL before the server was
 *   started
 *
 * Since: 1.0
 */
const char *
np_pipe_server_get_path (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  return self->path;
}

/**
 * np_pipe_server_get_n_connections:
 * @self: a #NpPipeServer
 *
 * Gets the number of connected clients.
 *
 * Returns: the number of clients
 *
 * Since: 1.0
 */
guint
np_pipe_server_get_n_connections (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), 0);

  return g_list_model_get_n_items (G_LIST_MODEL (self->connections));
}

/**
 * np_pipe_server_get_connections:
 * @self: a #NpPipeServer
 *
 * Gets the connected clients as a list model of [class@Np.PipeConnection],
 * in the order they connected. It updates as clients come and go, so it
 * can be bound to a list view as it is.
 *
 * Returns: (transfer none): the connections
 *
 * Since: 1.0
 */
GListModel *
np_pipe_server_get_connections (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  return G_LIST_MODEL (self->connections);
}

/**
 * np_pipe_server_broadcast:
 * @self: a #NpPipeServer
 * @message: the message
 *
 * Queues @message to every connected client, sharing the one #GBytes. A
 * client that cannot take it (closing, or with a smaller
 * [property@Np.PipeClient:max-message-size]) is skipped.
 *
 * Since: 1.0
 */
void
np_pipe_server_broadcast (NpPipeServer *self,
                          GBytes       *message)
{
  GListModel *model;
  guint n;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));
  g_return_if_fail (message != NULL);

  model = G_LIST_MODEL (self->connections);
  n = g_list_model_get_n_items (model);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(NpPipeConnection) connection = g_list_model_get_item (model, i);
      g_autoptr(GError) error = NULL;

      if (!np_pipe_connection_send (connection, message, &error))
        g_debug ("Broadcast skips a client: %s", error->message);
    }
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

  return self->max_message_size;
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
  g_return_if_fail (max_message_size <= G_MAXUINT32);

  if (self->max_message_size != max_message_size)
    {
      self->max_message_size = max_message_size;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_MAX_MESSAGE_SIZE]);
    }
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

  return self->max_queued_bytes;
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

  if (self->max_queued_bytes != max_queued_bytes)
    {
      self->max_queued_bytes = max_queued_bytes;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_MAX_QUEUED_BYTES]);
    }
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

  return self->max_connections;
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

  if (self->max_connections != max_connections)
    {
      self->max_connections = max_connections;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_MAX_CONNECTIONS]);
    }
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
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  return self->allow_other_users;
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
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  allow_other_users = !!allow_other_users;

  if (self->allow_other_users != allow_other_users)
    {
      self->allow_other_users = allow_other_users;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_ALLOW_OTHER_USERS]);
    }
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

  return self->handshake_timeout;
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

  if (self->handshake_timeout != timeout_msec)
    {
      self->handshake_timeout = timeout_msec;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_HANDSHAKE_TIMEOUT]);
    }
}
