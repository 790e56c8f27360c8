/* np-pipe-server.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "np-connection-list-private.h"
#include "np-connection-owner-private.h"
#include "np-context-private.h"
#include "np-error.h"
#include "np-fd-budget-private.h"
#include "np-frame-private.h"
#include "np-i18n-private.h"
#include "np-listener-private.h"
#include "np-lock-private.h"
#include "np-marshal.h"
#include "np-name-private.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-request-private.h"
#include "np-pipe-server.h"
#include "np-limits-private.h"
#include "np-socket-activation-private.h"
#include "np-socket-file-private.h"
#include "np-tcp-private.h"
#include "np-tls-private.h"

/**
 * NpPipeServer:
 *
 * Serves any number of [class@Np.PipeClient]s under one name.
 *
 * Create a server with [ctor@Np.PipeServer.new], connect to its signals,
 * then call [method@Np.PipeServer.start]. Each client that connects gets
 * its own [class@Np.PipeConnection], announced by
 * [signal@Np.PipeServer::client-connected] once its handshake is
 * complete; every whole message a client
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
 * A name `tcp:HOST:PORT` listens on TCP instead, with TLS: the server
 * needs a certificate ([property@Np.PipeServer:tls-certificate]), and
 * starts only when it can tell its peers apart (client certificates
 * required, or an [signal@Np.PipeServer::authorize-peer] handler) or is
 * told that anonymous peers are welcome
 * ([property@Np.PipeServer:allow-anonymous]). Peers over TCP have no
 * pid or uid: [method@Np.PipeConnection.get_peer_certificate] says who
 * they are. Descriptors do not travel over TCP.
 *
 * By default only processes of the server's own user may connect; the
 * kernel's record of the peer decides, not anything the peer says. See
 * [property@Np.PipeServer:allow-other-users] and
 * [signal@Np.PipeServer::authorize-peer].
 *
 * ## Threads and main contexts
 *
 * All clients are served from one main context: the thread-default main
 * context of the thread that created the server. Every signal is emitted
 * there, and so are the notifications of the properties that change by
 * themselves (such as [property@Np.PipeServer:n-connections]).
 *
 * [method@Np.PipeServer.start], [method@Np.PipeServer.stop],
 * [method@Np.PipeServer.broadcast], the getters and the setters may be
 * called from any thread; so may every method of its
 * [class@Np.PipeConnection]s. The list model of
 * [method@Np.PipeServer.get_connections] changes in the server's context:
 * read it from there.
 *
 * ## Dropping the server
 *
 * Dropping the last reference to a server stops it and closes its
 * connections at once, dropping what is still queued to them, in
 * whichever thread dropped it. The server is going away, so it emits
 * nothing more: no [signal@Np.PipeServer::client-disconnected] for those
 * connections, and no notification. Its clients see the end of their
 * connection. A [class@Np.PipeConnection] the application still holds is
 * no longer connected (its [property@Np.PipeConnection:connected] is
 * notified in the server's context), and a list of
 * [method@Np.PipeServer.get_connections] it still holds empties in the
 * server's context, with [signal@Gio.ListModel::items-changed] there. To
 * see every client off with its signal, call [method@Np.PipeServer.stop]
 * and let the server's context run before dropping the server.
 *
 * Since: 1.0
 */

enum {
  AUTHORIZE_PEER,
  CLIENT_CONNECTED,
  MESSAGE_RECEIVED,
  REQUEST_RECEIVED,
  CLIENT_DISCONNECTED,
  MESSAGE_WITH_FDS_RECEIVED,
  N_SIGNALS
};

struct _NpPipeServer
{
  GObject           parent_instance;

  GMainContext     *context;
  NpPipeConnectionList *connections;

  /* Guarded by the lock; the limits are read by the accept loop. */
  GMutex            lock;
  char             *name;     /* set once, at construction or start */
  char             *path;     /* set once, at the first start */
  NpListener       *listener;
  NpSocketFile      socket_file;
  int               lock_fd;
  NpLimits         *limits;    /* shared with the connections */
  guint64           last_id;
  guint             fd_limit;
  /* Over TCP: the address asked for, and the one bound at the first
   * start (its port, when 0 was asked, kept for later starts), with the
   * name that says it. */
  GInetSocketAddress *address;
  GSocketAddress   *bound_address;
  char             *bound_name;
  NpTlsAcceptor    *acceptor;   /* while running with TLS */
  GTlsCertificate  *tls_certificate;
  GTlsDatabase     *tls_database;
  GTlsAuthenticationMode tls_authentication_mode;
  guint             tcp : 1;
  guint             allow_anonymous : 1;
  guint             insecure_plaintext : 1;
  guint             allow_other_users : 1;
  guint             running : 1;
  guint             disposing : 1;
  guint             activated : 1;  /* the socket is the service manager's */
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_PATH,
  PROP_RUNNING,
  PROP_N_CONNECTIONS,
  PROP_CONNECTIONS,
  PROP_ALLOW_OTHER_USERS,
  PROP_ADDRESS,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_AUTHENTICATION_MODE,
  PROP_TLS_DATABASE,
  PROP_ALLOW_ANONYMOUS,
  PROP_INSECURE_PLAINTEXT,
  /* Then those of NpLimit, in its order. */
  PROP_FIRST_LIMIT,
  N_PROPS = PROP_FIRST_LIMIT + NP_N_LIMITS
};

static void np_pipe_server_owner_init (NpConnectionOwnerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (NpPipeServer, np_pipe_server, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (NP_TYPE_CONNECTION_OWNER,
                                                      np_pipe_server_owner_init))

static GParamSpec *properties [N_PROPS];
static guint signals [N_SIGNALS];

static void np_pipe_server_install_properties (GObjectClass *object_class);

/* What its connections report */

static void
np_pipe_server_connection_message (NpConnectionOwner *owner,
                                   NpPipeConnection  *connection,
                                   GBytes            *message,
                                   GUnixFDList       *fds)
{
  NpPipeServer *self = NP_PIPE_SERVER (owner);

  if (np_connection_owner_takes_fds (self, signals [MESSAGE_WITH_FDS_RECEIVED], fds))
    g_signal_emit (self, signals [MESSAGE_WITH_FDS_RECEIVED], 0, connection, message, fds);
  else
    g_signal_emit (self, signals [MESSAGE_RECEIVED], 0, connection, message);
}

static void
np_pipe_server_connection_request (NpConnectionOwner *owner,
                                   NpPipeConnection  *connection,
                                   guint32            id,
                                   GBytes            *message,
                                   GUnixFDList       *fds)
{
  g_autoptr(NpPipeRequest) request = _np_pipe_connection_new_request (connection, id, message, fds);
  gboolean handled = FALSE;

  g_signal_emit (owner, signals [REQUEST_RECEIVED], 0, connection, request, &handled);
  if (!handled)
    _np_pipe_request_reply_unhandled (request);
}

/* The peer's handshake is complete: it becomes a connection. */
static void
np_pipe_server_connection_opened (NpConnectionOwner *owner,
                                  NpPipeConnection  *connection)
{
  NpPipeServer *self = NP_PIPE_SERVER (owner);
  g_autoptr(NpPipeServer) hold = g_object_ref (self);
  g_autoptr(NpPipeConnection) hold_connection = g_object_ref (connection);

  if (!np_pipe_connection_list_promote (self->connections, connection))
    return;

  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_N_CONNECTIONS]);
  g_signal_emit (self, signals [CLIENT_CONNECTED], 0, connection);

  /* stop() from another thread may have missed it: it sets running
   * first, then closes what the server holds. */
  if (!np_pipe_server_is_running (self))
    _np_pipe_connection_begin_close (connection);
}

static void
np_pipe_server_connection_closed (NpConnectionOwner *owner,
                                  NpPipeConnection  *connection,
                                  const GError      *error)
{
  NpPipeServer *self = NP_PIPE_SERVER (owner);
  gboolean listed;
  gboolean disposing;

  /* Going away: dispose drops the connections without a word. */
  g_mutex_lock (&self->lock);
  disposing = self->disposing;
  g_mutex_unlock (&self->lock);
  if (disposing)
    return;

  /* The list may have held the last reference to the connection; a
   * handler may drop the last one to the server. */
  g_object_ref (self);
  g_object_ref (connection);

  if (np_pipe_connection_list_remove (self->connections, connection, &listed))
    {
      /* A descriptor came free. */
      g_mutex_lock (&self->lock);
      if (self->listener != NULL)
        np_listener_resume (self->listener);
      g_mutex_unlock (&self->lock);

      if (listed)
        {
          g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_N_CONNECTIONS]);
          g_signal_emit (self, signals [CLIENT_DISCONNECTED], 0, connection, error);
        }
      else
        {
          /* Never announced, so not reported either. */
          g_debug ("Pipe “%s”: dropping peer %" G_GUINT64_FORMAT " (pid %d) before its "
                   "handshake was complete: %s",
                   self->name, np_pipe_connection_get_id (connection),
                   np_pipe_connection_get_peer_pid (connection),
                   error != NULL ? error->message : "it closed");
        }
    }

  g_object_unref (connection);
  g_object_unref (self);
}

static void
np_pipe_server_owner_init (NpConnectionOwnerInterface *iface)
{
  iface->opened = np_pipe_server_connection_opened;
  iface->message = np_pipe_server_connection_message;
  iface->request = np_pipe_server_connection_request;
  iface->closed = np_pipe_server_connection_closed;
}

/* Decides on a peer that connected, from the server's context: over
 * TLS, once its TLS handshake is done, with what is left of the
 * handshake timeout (@handshake_left, or 0 to take the server's). */
static void
np_pipe_server_admit (NpPipeServer      *self,
                      GSocketConnection *socket_connection,
                      GTlsConnection    *tls,
                      guint              handshake_left)
{
  g_autoptr(NpPipeConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  guint handshake_timeout;
  gboolean allow_other_users;
  gboolean allowed = FALSE;
  guint max_connections;
  guint n_connections;
  guint n_closed = 0;
  guint fd_limit;
  guint64 id;

  g_mutex_lock (&self->lock);
  name = g_strdup (self->bound_name != NULL ? self->bound_name : self->name);
  id = ++self->last_id;
  handshake_timeout = np_limits_get (self->limits, NP_LIMIT_HANDSHAKE_TIMEOUT);
  if (handshake_left > 0)
    handshake_timeout = handshake_left;
  max_connections = np_limits_get (self->limits, NP_LIMIT_MAX_CONNECTIONS);
  max_connections = MIN (max_connections > 0 ? max_connections : G_MAXUINT, self->fd_limit);
  allow_other_users = self->allow_other_users;
  fd_limit = self->fd_limit;
  g_mutex_unlock (&self->lock);

  connection = _np_pipe_connection_new (G_OBJECT (self), self->context, socket_connection, tls, name,
                                        self->limits, id, FALSE, &error);
  if (connection == NULL)
    {
      g_debug ("Pipe “%s”: dropping a peer whose credentials cannot be read: %s",
               name, error->message);
      g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
      return;
    }

  /* Peers still in their handshake count, as they hold a descriptor and
   * memory: a crowd of peers that never complete it cannot crowd the
   * server out of either. */
  n_connections = np_pipe_connection_list_get_n_held (self->connections);
  if (n_connections >= max_connections)
    {
      g_autoptr(GPtrArray) connections = np_pipe_connection_list_snapshot (self->connections, TRUE);

      /* Only at the limit: a client that closed and connects again at
       * once must not find its old connection in its way, its end of
       * stream unread. Such connections end by themselves within
       * close-timeout; no more than max-connections of them are let
       * aside, so what the server holds stays bounded. */
      n_closed = _np_pipe_connection_count_peers_closed (connections);
    }

  if (n_connections - MIN (n_closed, n_connections) >= max_connections)
    {
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS,
                   _("Pipe “%s” already serves its maximum of %u clients"),
                   name, max_connections);
    }
  else if ((guint64) n_connections >= 2 * (guint64) max_connections)
    {
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS,
                   _("Pipe “%s” already holds twice its maximum of %u clients: %u of "
                     "them have closed and are still ending"),
                   name, max_connections, n_closed);
    }
  else if (np_fd_budget_used () >= fd_limit)
    {
      /* Said apart: max-connections is not what to raise. The count is
       * the process's, as when a peer's descriptors are received: the
       * connections of every pipe (this client's stream is not made
       * yet) and the descriptors received from peers and not yet
       * delivered. */
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS,
                   _("Pipe “%s” has no descriptors left for another client: the %u "
                     "descriptors received from peers and not yet delivered, and the "
                     "connections of this process (%u to this pipe), reach the %u it may use "
                     "(RLIMIT_NOFILE less a reserve for the application)"),
                   name, np_fd_budget_held (), n_connections, fd_limit);
    }
  else if (!allow_other_users && !self->tcp &&
           np_pipe_connection_get_peer_uid (connection) != getuid ())
    {
      g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   _("Pipe “%s” only accepts peers of uid %u, not uid %u"),
                   name, (guint) getuid (),
                   np_pipe_connection_get_peer_uid (connection));
    }
  else
    {
      g_signal_emit (self, signals [AUTHORIZE_PEER], 0, connection, &allowed);

      if (!allowed && self->tcp)
        g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                     _("Pipe “%s” refused the peer"), name);
      else if (!allowed)
        g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                     _("Pipe “%s” refused the peer (pid %d, uid %u)"),
                     name,
                     np_pipe_connection_get_peer_pid (connection),
                     np_pipe_connection_get_peer_uid (connection));
      else if (!np_pipe_server_is_running (self))
        g_set_error (&error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                     _("Pipe “%s” stopped"), name);
    }

  if (error != NULL)
    {
      g_debug ("%s", error->message);
      _np_pipe_connection_refuse (connection, error);
      return;
    }

  /* Held before the stream starts, which may report it opened or
   * closed; it becomes a connection once its handshake is complete
   * (np_pipe_server_connection_opened()). */
  np_pipe_connection_list_add_pending (self->connections, connection);
  _np_pipe_connection_start (connection, handshake_timeout);

  /* stop() from another thread may have missed it: it sets running
   * first, then closes what the server holds. */
  if (!np_pipe_server_is_running (self))
    _np_pipe_connection_begin_close (connection);
}

static void
np_pipe_server_tls_accepted (GObject           *owner,
                             GSocketConnection *socket_connection,
                             GTlsConnection    *tls,
                             guint              handshake_left)
{
  np_pipe_server_admit (NP_PIPE_SERVER (owner), socket_connection, tls, handshake_left);
}

/* A peer connected, from the server's context. */
static void
np_pipe_server_incoming (GObject           *owner,
                         GSocketConnection *socket_connection)
{
  NpPipeServer *self = NP_PIPE_SERVER (owner);
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  GTlsAuthenticationMode mode;
  NpTlsAcceptor *acceptor = NULL;
  guint handshake_timeout;
  guint max_connections;
  guint held;

  if (!self->tcp)
    {
      np_pipe_server_admit (self, socket_connection, NULL, 0);
      return;
    }

  np_tcp_configure (g_socket_connection_get_socket (socket_connection));

  g_mutex_lock (&self->lock);
  if (self->acceptor != NULL)
    acceptor = np_tls_acceptor_ref (self->acceptor);
  certificate = self->tls_certificate != NULL ? g_object_ref (self->tls_certificate) : NULL;
  database = self->tls_database != NULL ? g_object_ref (self->tls_database) : NULL;
  mode = self->tls_authentication_mode;
  handshake_timeout = np_limits_get (self->limits, NP_LIMIT_HANDSHAKE_TIMEOUT);
  max_connections = np_limits_get (self->limits, NP_LIMIT_MAX_CONNECTIONS);
  max_connections = MIN (max_connections > 0 ? max_connections : G_MAXUINT, self->fd_limit);
  g_mutex_unlock (&self->lock);

  if (acceptor == NULL)
    {
      np_pipe_server_admit (self, socket_connection, NULL, 0);
      return;
    }

  /* Peers in their TLS handshake hold a descriptor, memory and perhaps
   * a thread: past twice the limit, those that come are dropped
   * unheard, as the admission would refuse them anyway. */
  held = np_pipe_connection_list_get_n_held (self->connections) + np_tls_acceptor_get_n_pending (acceptor);
  if ((guint64) held >= 2 * (guint64) max_connections)
    {
      g_debug ("Pipe “%s”: dropping a peer: %u peers are connected or in their TLS handshake, "
               "twice the maximum of clients", self->bound_name, held);
      g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
    }
  else
    np_tls_acceptor_accept (acceptor, socket_connection, certificate, mode, database,
                            handshake_timeout);

  np_tls_acceptor_unref (acceptor);
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

/* Drops every connection at once, without writing what is queued, and
 * without a word: the server is going away, from whichever thread let
 * go of it last. A list of them the application still holds empties in
 * the server's context. */
static void
np_pipe_server_drop_connections (NpPipeServer *self)
{
  g_autoptr(GPtrArray) connections = np_pipe_connection_list_snapshot (self->connections, TRUE);

  for (guint i = 0; i < connections->len; i++)
    _np_pipe_connection_detach (g_ptr_array_index (connections, i));

  np_pipe_connection_list_clear (self->connections, self->context);
}

static void
np_pipe_server_dispose (GObject *object)
{
  NpPipeServer *self = (NpPipeServer *)object;

  /* Handlers that run from here on see a server that cannot start. */
  g_mutex_lock (&self->lock);
  self->disposing = TRUE;
  g_mutex_unlock (&self->lock);

  /* Connections first: stop() would close them with a word each. */
  np_pipe_server_drop_connections (self);
  np_pipe_server_stop (self);

  G_OBJECT_CLASS (np_pipe_server_parent_class)->dispose (object);
}

static void
np_pipe_server_finalize (GObject *object)
{
  NpPipeServer *self = (NpPipeServer *)object;

  g_assert (self->listener == NULL);

  g_clear_object (&self->connections);
  g_clear_pointer (&self->limits, np_limits_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->bound_name, g_free);
  g_clear_object (&self->address);
  g_clear_object (&self->bound_address);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_database);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (np_pipe_server_parent_class)->finalize (object);
}

static void
np_pipe_server_class_init (NpPipeServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  np_i18n_init ();

  object_class->dispose = np_pipe_server_dispose;
  object_class->finalize = np_pipe_server_finalize;

  np_pipe_server_install_properties (object_class);

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
   * Emitted when a client's handshake is complete (its hello arrived
   * and, from a client of protocol version 4, its settings), once it is
   * in [property@Np.PipeServer:connections]. The connection may be used
   * to send at once; the server's own settings go out first.
   *
   * A peer that connects is not a client yet: one that never completes
   * the handshake, or fails it, is dropped at
   * [property@Np.PipeServer:handshake-timeout] or at once, and appears in
   * no signal but [signal@Np.PipeServer::authorize-peer], nor in
   * [property@Np.PipeServer:connections]. It still counts against
   * [property@Np.PipeServer:max-connections] meanwhile.
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
  /* The emitter holds the message for the length of the emission: it
   * is passed as it is, without a reference taken and dropped around
   * each (G_SIGNAL_TYPE_STATIC_SCOPE), as for every message below. */
  signals [MESSAGE_RECEIVED] =
    g_signal_new ("message-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL,
                  _np_marshal_VOID__OBJECT_BOXED,
                  G_TYPE_NONE, 2, NP_TYPE_PIPE_CONNECTION,
                  G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);
  g_signal_set_va_marshaller (signals [MESSAGE_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__OBJECT_BOXEDv);

  /**
   * NpPipeServer::request-received:
   * @self: a #NpPipeServer
   * @connection: the client that sent the request
   * @request: the request, to answer once
   *
   * Emitted for each request a client sends
   * ([method@Np.PipeClient.request_async]), in its place among the
   * messages. Answer it with [method@Np.PipeRequest.reply] or
   * [method@Np.PipeRequest.reply_error], in the handler or later by
   * keeping a reference, and return %TRUE. When no handler returns %TRUE,
   * the client gets %NP_PIPE_ERROR_NOT_SUPPORTED at once; a request
   * dropped unanswered gets %NP_PIPE_ERROR_FAILED.
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
                  _np_marshal_BOOLEAN__OBJECT_OBJECT,
                  G_TYPE_BOOLEAN, 2, NP_TYPE_PIPE_CONNECTION, NP_TYPE_PIPE_REQUEST);
  g_signal_set_va_marshaller (signals [REQUEST_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_BOOLEAN__OBJECT_OBJECTv);

  /**
   * NpPipeServer::client-disconnected:
   * @self: a #NpPipeServer
   * @connection: the client's connection
   * @error: (nullable): why the client went, or %NULL after a clean close
   *   by either side
   *
   * Emitted once for each client announced by
   * [signal@Np.PipeServer::client-connected], when its connection ends,
   * after it left [property@Np.PipeServer:connections]; not for the
   * connections a server closes because its last reference went (see
   * [class@Np.PipeServer]).
   *
   * @error is set when the client broke the protocol
   * (%NP_PIPE_ERROR_PROTOCOL), sent a message over
   * [property@Np.PipeServer:max-message-size]
   * (%NP_PIPE_ERROR_MESSAGE_TOO_LARGE), did not read what was queued to it
   * (%NP_PIPE_ERROR_QUEUE_FULL, or %NP_PIPE_ERROR_TIMED_OUT when closing),
   * or when reading or writing failed (a `G_IO_ERROR`).
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

  /**
   * NpPipeServer::message-with-fds-received:
   * @self: a #NpPipeServer
   * @connection: the client that sent the message
   * @message: the whole message
   * @fds: the descriptors that came with it, in the order they were sent
   *
   * Emitted for each whole message a client sends with descriptors
   * ([method@Np.PipeClient.send_with_fds]), in its place among the other
   * messages. The descriptors are close-on-exec, and belong to the
   * list: keep a reference to it, or take them with
   * g_unix_fd_list_steal_fds(), or they are closed when the handler
   * returns.
   *
   * When no handler is connected, the descriptors are closed and the
   * message is emitted by [signal@Np.PipeServer::message-received]
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
                  _np_marshal_VOID__OBJECT_BOXED_OBJECT,
                  G_TYPE_NONE, 3, NP_TYPE_PIPE_CONNECTION,
                  G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE, G_TYPE_UNIX_FD_LIST);
  g_signal_set_va_marshaller (signals [MESSAGE_WITH_FDS_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__OBJECT_BOXED_OBJECTv);
}

static void
np_pipe_server_init (NpPipeServer *self)
{
  g_mutex_init (&self->lock);
  self->context = g_main_context_ref_thread_default ();
  self->connections = np_pipe_connection_list_new ();
  self->limits = np_limits_new ();
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
 * nor a name ending in `.lock`), or an absolute socket path, or a TCP
 * address `tcp:HOST:PORT` with a numeric host (`tcp:127.0.0.1:0` for any
 * free port, `tcp:[::]:7000`): see [property@Np.PipeServer:address].
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

/* Over TCP: the checks that keep anyone on the network out by
 * default, then the listening socket. */
static gboolean
np_pipe_server_start_tcp_locked (NpPipeServer  *self,
                                 gboolean      *name_changed,
                                 GError       **error)
{
  g_autoptr(GSocket) socket = NULL;
  GInetSocketAddress *address;
  const char *name;

  NP_ENSURE_LOCKED (&self->lock);

  if (self->address == NULL)
    {
      self->address = np_tcp_parse_address (self->name, error);
      if (self->address == NULL)
        return FALSE;
    }
  address = self->bound_address != NULL ? G_INET_SOCKET_ADDRESS (self->bound_address) : self->address;
  name = self->bound_name != NULL ? self->bound_name : self->name;

  if (self->insecure_plaintext)
    {
      if (!np_tcp_is_loopback (G_SOCKET_ADDRESS (address)))
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                       _("Pipe “%s” cannot start: plain text (insecure-plaintext) is only "
                         "allowed on a loopback address, for measuring what TLS costs"),
                       name);
          return FALSE;
        }
    }
  else
    {
      if (!np_tls_check_available (name, error))
        return FALSE;

      if (self->tls_certificate == NULL)
        {
          g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED,
                       _("Pipe “%s” cannot start: a server over TCP needs a certificate "
                         "and its key (tls-certificate)"), name);
          return FALSE;
        }

      /* Without its key, every handshake would fail, and only the
       * peers would tell. */
      if (!np_tls_certificate_has_key (self->tls_certificate))
        {
          g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED,
                       _("Pipe “%s” cannot start: its certificate (tls-certificate) has "
                         "no private key; load it with its key, as "
                         "g_tls_certificate_new_from_files() does"), name);
          return FALSE;
        }

      if (self->tls_authentication_mode == G_TLS_AUTHENTICATION_REQUIRED && self->tls_database == NULL)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                       _("Pipe “%s” cannot start: requiring client certificates needs the "
                         "authorities that issue them (tls-database); the system’s would "
                         "admit any publicly issued certificate"), name);
          return FALSE;
        }
    }

  /* Anyone on the network must not get in by default, as no other user
   * gets in locally by default. */
  if (self->tls_authentication_mode != G_TLS_AUTHENTICATION_REQUIRED && !self->allow_anonymous &&
      !g_signal_has_handler_pending (self, signals [AUTHORIZE_PEER], 0, TRUE))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   _("Pipe “%s” cannot start: over TCP anyone who reaches the address could "
                     "connect. Require client certificates (tls-authentication-mode and "
                     "tls-database), or decide on each peer in an authorize-peer handler, or "
                     "set allow-anonymous to welcome anonymous peers"), name);
      return FALSE;
    }

  socket = np_tcp_listen (address, error);
  if (socket == NULL)
    return FALSE;

  if (self->bound_address == NULL)
    {
      self->bound_address = g_socket_get_local_address (socket, error);
      if (self->bound_address == NULL)
        return FALSE;
      self->bound_name = np_tcp_format_address (self->bound_address);
      *name_changed = g_strcmp0 (self->bound_name, self->name) != 0;
    }

  self->fd_limit = np_fd_budget_limit ();
  self->listener = np_listener_new (socket, self->context, G_OBJECT (self),
                                    np_pipe_server_incoming, self->bound_name, error);
  if (self->listener == NULL)
    return FALSE;

  if (!self->insecure_plaintext)
    self->acceptor = np_tls_acceptor_new (self->context, G_OBJECT (self),
                                          np_pipe_server_tls_accepted, self->bound_name);
  self->running = TRUE;

  return TRUE;
}

static gboolean
np_pipe_server_start_locked (NpPipeServer  *self,
                             gboolean      *name_changed,
                             gboolean      *path_changed,
                             GError       **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *path = NULL;

  NP_ENSURE_LOCKED (&self->lock);

  if (self->tcp)
    return np_pipe_server_start_tcp_locked (self, name_changed, error);

  if (self->name == NULL)
    {
      self->name = np_name_generate ();
      *name_changed = TRUE;
    }

  path = np_name_to_path (self->name, error);
  if (path == NULL)
    return FALSE;

  /* Started on demand by systemd, the socket is waiting for us; the lock
   * goes beside it, wherever the unit put it. */
  socket = np_socket_activation_take (self->name, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  self->activated = socket != NULL;
  if (self->activated)
    {
      g_autofree char *bound = np_socket_activation_get_path (socket);

      if (bound != NULL && g_strcmp0 (bound, path) != 0)
        {
          g_debug ("Pipe “%s”: the socket passed for it is “%s”, not “%s”",
                   self->name, bound, path);
          g_free (path);
          path = g_steal_pointer (&bound);
        }
    }
  else if (self->name[0] != '/' && !np_name_ensure_dir (path, error))
    return FALSE;

  /* The path never changes once set: getters hand it out as it is. */
  if (self->path == NULL)
    {
      self->path = g_steal_pointer (&path);
      *path_changed = TRUE;
    }

  self->lock_fd = np_name_lock (self->name, self->path, error);
  if (self->lock_fd < 0)
    return FALSE;

  if (socket == NULL)
    socket = np_socket_file_listen (self->name, self->path, self->allow_other_users,
                                    &self->socket_file, error);
  if (socket == NULL)
    {
      np_name_unlock (self->lock_fd, self->path);
      self->lock_fd = -1;
      return FALSE;
    }

  self->fd_limit = np_fd_budget_limit ();
  self->listener = np_listener_new (socket, self->context, G_OBJECT (self),
                                    np_pipe_server_incoming, self->name, error);
  if (self->listener == NULL)
    {
      if (!self->activated)
        np_socket_file_remove (self->path, &self->socket_file);
      np_name_unlock (self->lock_fd, self->path);
      self->lock_fd = -1;
      return FALSE;
    }
  self->running = TRUE;

  return TRUE;
}

/**
 * np_pipe_server_start:
 * @self: a #NpPipeServer
 * @error: return location for a #GError
 *
 * Starts listening. A server created without a name gets a unique one
 * here (see [property@Np.PipeServer:name]).
 *
 * When the process was started by systemd's socket activation
 * (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`: a `.socket` unit with
 * `ListenStream=%t/np/NAME`), the server adopts the listening socket it
 * was passed (the one named like the pipe, or the only one) instead of
 * binding one, and [method@Np.PipeServer.stop] leaves the socket to
 * systemd. Everything else holds as for a socket of its own: the peer
 * checks, the limits, the lock that tells a live server.
 *
 * Fails with %NP_PIPE_ERROR_ADDRESS_IN_USE when a live server already has
 * the name, touching nothing of it. A socket file left over by a server
 * that died is removed and taken over. Fails with
 * %NP_PIPE_ERROR_INVALID_NAME for a name that cannot be a pipe, and with
 * %NP_PIPE_ERROR_CLOSED while the server is being disposed.
 *
 * Starting a running server does nothing. This may be called from any
 * thread; clients are served from the server's main context.
 *
 * Returns: %TRUE if the server is listening
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_start (NpPipeServer  *self,
                      GError       **error)
{
  g_autoptr(NpPipeServer) hold = NULL;
  gboolean name_changed = FALSE;
  gboolean path_changed = FALSE;
  gboolean started = FALSE;
  gboolean ret;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* A notify handler may drop the last reference. */
  hold = g_object_ref (self);

  g_mutex_lock (&self->lock);
  if (self->disposing)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                   _("Pipe “%s” cannot start: the server is being disposed"),
                   self->name != NULL ? self->name : "");
      ret = FALSE;
    }
  else if (self->running)
    ret = TRUE;
  else
    ret = started = np_pipe_server_start_locked (self, &name_changed, &path_changed, error);
  g_mutex_unlock (&self->lock);

  if (name_changed)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_NAME]);
  if (path_changed)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_PATH]);
  if (started)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_RUNNING]);

  return ret;
}

/**
 * np_pipe_server_stop:
 * @self: a #NpPipeServer
 *
 * Stops listening, removes the socket file and closes every connection.
 * What was queued to a client is still written, from the server's main
 * context, for at most [property@Np.PipeServer:close-timeout]; then
 * [signal@Np.PipeServer::client-disconnected] is emitted for it. When
 * this is called from the server's main context, connections with
 * nothing queued are reported before it returns.
 *
 * The server may be started again. Stopping a stopped server does
 * nothing. This may be called from any thread.
 *
 * Since: 1.0
 */
void
np_pipe_server_stop (NpPipeServer *self)
{
  g_autoptr(NpPipeServer) hold = NULL;
  g_autoptr(GPtrArray) connections = NULL;
  NpTlsAcceptor *acceptor;
  NpListener *listener;
  gboolean disposing;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  hold = g_object_ref (self);

  g_mutex_lock (&self->lock);
  if (!self->running)
    {
      g_mutex_unlock (&self->lock);
      return;
    }

  self->running = FALSE;
  disposing = self->disposing;
  listener = g_steal_pointer (&self->listener);
  acceptor = g_steal_pointer (&self->acceptor);
  /* A socket systemd passed stays: it starts us again on demand. */
  if (!self->activated && !self->tcp)
    np_socket_file_remove (self->path, &self->socket_file);
  if (!self->tcp)
    np_name_unlock (self->lock_fd, self->path);
  self->lock_fd = -1;
  g_mutex_unlock (&self->lock);

  np_listener_close (listener);
  /* Peers in their TLS handshake end without a word. */
  if (acceptor != NULL)
    {
      np_tls_acceptor_close (acceptor);
      np_tls_acceptor_unref (acceptor);
    }

  /* Peers still in their handshake too: they end without a word. */
  connections = np_pipe_connection_list_snapshot (self->connections, TRUE);
  for (guint i = 0; i < connections->len; i++)
    _np_pipe_connection_begin_close (g_ptr_array_index (connections, i));

  /* A server going away says nothing more. */
  if (!disposing)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_RUNNING]);
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
  gboolean running;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  g_mutex_lock (&self->lock);
  running = self->running;
  g_mutex_unlock (&self->lock);

  return running;
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
  const char *name;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  /* Set once, never freed before the server is. */
  g_mutex_lock (&self->lock);
  name = self->bound_name != NULL ? self->bound_name : self->name;
  g_mutex_unlock (&self->lock);

  return name;
}

/**
 * np_pipe_server_get_path:
 * @self: a #NpPipeServer
 *
 * Gets the path of the Unix socket the server listens on.
 *
 * Returns: (nullable): the socket path, or %NULL before the server was
 *   started, and for a server over TCP
 *
 * Since: 1.0
 */
const char *
np_pipe_server_get_path (NpPipeServer *self)
{
  const char *path;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  g_mutex_lock (&self->lock);
  path = self->path;
  g_mutex_unlock (&self->lock);

  return path;
}

/**
 * np_pipe_server_get_n_connections:
 * @self: a #NpPipeServer
 *
 * Gets the number of connected clients: those whose handshake is
 * complete.
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
 * Gets the connected clients as a read-only list model of
 * [class@Np.PipeConnection], in the order their handshakes completed. It
 * updates as clients come and go, in the server's main context, so it
 * can be bound to a list view as it is: a peer that connects and never
 * completes its handshake has no row.
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
  g_autoptr(GPtrArray) connections = NULL;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));
  g_return_if_fail (message != NULL);

  connections = np_pipe_connection_list_snapshot (self->connections, FALSE);
  for (guint i = 0; i < connections->len; i++)
    {
      g_autoptr(GError) error = NULL;

      if (!np_pipe_connection_send (g_ptr_array_index (connections, i), message, &error))
        g_debug ("Broadcast skips a client: %s", error->message);
    }
}

/* Properties */

static void
np_pipe_server_set_limit (NpPipeServer *self,
                            NpLimit       limit,
                            guint         value)
{
  if (np_limits_set (self->limits, limit, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_FIRST_LIMIT + limit]);
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
      g_value_set_string (value, np_pipe_server_get_name (self));
      break;

    case PROP_PATH:
      g_value_set_string (value, np_pipe_server_get_path (self));
      break;

    case PROP_RUNNING:
      g_value_set_boolean (value, np_pipe_server_is_running (self));
      break;

    case PROP_N_CONNECTIONS:
      g_value_set_uint (value, np_pipe_server_get_n_connections (self));
      break;

    case PROP_CONNECTIONS:
      g_value_set_object (value, np_pipe_server_get_connections (self));
      break;




    case PROP_ALLOW_OTHER_USERS:
      g_value_set_boolean (value, np_pipe_server_get_allow_other_users (self));
      break;

    case PROP_ADDRESS:
      g_value_take_object (value, np_pipe_server_get_address (self));
      break;

    case PROP_TLS_CERTIFICATE:
      g_value_take_object (value, np_pipe_server_dup_tls_certificate (self));
      break;

    case PROP_TLS_AUTHENTICATION_MODE:
      g_value_set_enum (value, np_pipe_server_get_tls_authentication_mode (self));
      break;

    case PROP_TLS_DATABASE:
      g_value_take_object (value, np_pipe_server_dup_tls_database (self));
      break;

    case PROP_ALLOW_ANONYMOUS:
      g_value_set_boolean (value, np_pipe_server_get_allow_anonymous (self));
      break;

    case PROP_INSECURE_PLAINTEXT:
      g_value_set_boolean (value, np_pipe_server_get_insecure_plaintext (self));
      break;







    default:
      if (prop_id >= PROP_FIRST_LIMIT && prop_id < N_PROPS)
        g_value_set_uint (value, np_limits_get (self->limits, prop_id - PROP_FIRST_LIMIT));
      else
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
      /* Construct-only: nothing else sees the server yet. */
      if (g_value_get_string (value) != NULL)
        {
          g_free (self->name);
          self->name = g_value_dup_string (value);
          self->tcp = np_tcp_is_address (self->name);
        }
      break;

    case PROP_ADDRESS:
      /* Construct-only, and wins over a name. */
      if (g_value_get_object (value) != NULL)
        {
          self->address = g_value_dup_object (value);
          g_free (self->name);
          self->name = np_tcp_format_address (G_SOCKET_ADDRESS (self->address));
          self->tcp = TRUE;
        }
      break;

    case PROP_TLS_CERTIFICATE:
      np_pipe_server_set_tls_certificate (self, g_value_get_object (value));
      break;

    case PROP_TLS_AUTHENTICATION_MODE:
      np_pipe_server_set_tls_authentication_mode (self, g_value_get_enum (value));
      break;

    case PROP_TLS_DATABASE:
      np_pipe_server_set_tls_database (self, g_value_get_object (value));
      break;

    case PROP_ALLOW_ANONYMOUS:
      np_pipe_server_set_allow_anonymous (self, g_value_get_boolean (value));
      break;

    case PROP_INSECURE_PLAINTEXT:
      np_pipe_server_set_insecure_plaintext (self, g_value_get_boolean (value));
      break;




    case PROP_ALLOW_OTHER_USERS:
      np_pipe_server_set_allow_other_users (self, g_value_get_boolean (value));
      break;







    default:
      if (prop_id >= PROP_FIRST_LIMIT && prop_id < N_PROPS)
        np_pipe_server_set_limit (self, prop_id - PROP_FIRST_LIMIT, g_value_get_uint (value));
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
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
  properties [PROP_NAME] =
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
  properties [PROP_PATH] =
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
  properties [PROP_RUNNING] =
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
  properties [PROP_N_CONNECTIONS] =
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
   * From 0 to 4294967295 (`G_MAXUINT32`); the default is 16777216 (16
   * MiB). A change applies to clients that connect afterwards.
   *
   * Since: 1.0
   */

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
   * pings) count too. A change applies at once, to the clients connected
   * too.
   *
   * Since: 1.0
   */

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
   * NpPipeServer:address:
   *
   * The TCP address the server listens on, for a server over TCP
   * ([ctor@Np.PipeServer.new_for_address], or a name `tcp:HOST:PORT`):
   * once started, with the port it got when it asked for port 0. %NULL
   * for a local pipe. Set at construction only.
   *
   * Since: 1.0
   */
  properties [PROP_ADDRESS] =
    g_param_spec_object ("address", NULL, NULL,
                         G_TYPE_INET_SOCKET_ADDRESS,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:tls-certificate:
   *
   * The certificate, with its private key, a server over TCP presents
   * to its clients (see [ctor@Gio.TlsCertificate.new_from_files]).
   * Required to start one, unless
   * [property@Np.PipeServer:insecure-plaintext] is set. A change applies
   * to the peers that connect afterwards.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL,
                         G_TYPE_TLS_CERTIFICATE,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:tls-authentication-mode:
   *
   * Whether a server over TCP asks its clients for a certificate:
   * %G_TLS_AUTHENTICATION_NONE (the default), %G_TLS_AUTHENTICATION_REQUESTED
   * (a client without one, or with one that does not validate, still
   * gets to [signal@Np.PipeServer::authorize-peer]) or
   * %G_TLS_AUTHENTICATION_REQUIRED (only clients with a certificate
   * that [property@Np.PipeServer:tls-database] validates get in).
   *
   * Since: 1.0
   */
  properties [PROP_TLS_AUTHENTICATION_MODE] =
    g_param_spec_enum ("tls-authentication-mode", NULL, NULL,
                       G_TYPE_TLS_AUTHENTICATION_MODE, G_TLS_AUTHENTICATION_NONE,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:tls-database:
   *
   * The authorities whose client certificates a server over TCP
   * accepts (see [func@Gio.TlsFileDatabase.new]). Required with
   * %G_TLS_AUTHENTICATION_REQUIRED: the system's trust store would admit
   * any publicly issued certificate. With
   * %G_TLS_AUTHENTICATION_REQUESTED and no database, client certificates
   * are not validated (their errors include
   * %G_TLS_CERTIFICATE_UNKNOWN_CA): an
   * [signal@Np.PipeServer::authorize-peer] handler then decides by the
   * certificate itself, its fingerprint say.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL,
                         G_TYPE_TLS_DATABASE,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:allow-anonymous:
   *
   * Whether a server over TCP may start without a way to tell its peers
   * apart: neither client certificates required nor an
   * [signal@Np.PipeServer::authorize-peer] handler. Off by default, and
   * [method@Np.PipeServer.start] then fails with
   * %NP_PIPE_ERROR_PERMISSION_DENIED: anyone who reaches the address
   * must not get in by default, as no other user gets in to a local pipe
   * by default.
   *
   * Since: 1.0
   */
  properties [PROP_ALLOW_ANONYMOUS] =
    g_param_spec_boolean ("allow-anonymous", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeServer:insecure-plaintext:
   *
   * Whether a server over TCP speaks without TLS: no encryption, no
   * certificates. It exists to measure what TLS costs, and
   * [method@Np.PipeServer.start] refuses it on any address but a loopback
   * one. Off by default.
   *
   * Since: 1.0
   */
  properties [PROP_INSECURE_PLAINTEXT] =
    g_param_spec_boolean ("insecure-plaintext", NULL, NULL,
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
   * default is 5000 (5 seconds). A change applies to the peers that
   * connect afterwards.
   *
   * Since: 1.0
   */

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
   * seconds). A change applies to the next close, of the clients
   * connected too.
   *
   * Since: 1.0
   */

  /**
   * NpPipeServer:request-timeout:
   *
   * How long, in milliseconds, a request the server sends to a client
   * ([method@Np.PipeConnection.request_async]) waits for its reply; past
   * it, the request fails with %NP_PIPE_ERROR_TIMED_OUT and a reply that
   * comes later is dropped. 0 waits for as long as it takes; at most
   * `G_MAXUINT`. The default is 25000 (25 seconds, as GDBus). A change
   * applies to the next request, to the clients connected too.
   *
   * Since: 1.0
   */

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
   * most `G_MAXUINT`. A change applies at once, from the next request of
   * the clients connected too.
   *
   * Since: 1.0
   */

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
   * limit; at most `G_MAXUINT32`. A change applies at once, from the next
   * request of the clients connected too.
   *
   * Since: 1.0
   */

  g_object_class_install_properties (object_class, PROP_FIRST_LIMIT, properties);
  np_limits_install (object_class, PROP_FIRST_LIMIT, properties, NP_LIMIT_OF_SERVER);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_MESSAGE_SIZE);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_MESSAGE_SIZE, max_message_size);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_QUEUED_BYTES);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_QUEUED_BYTES, max_queued_bytes);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_CONNECTIONS);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_CONNECTIONS, max_connections);
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
                              properties [PROP_ALLOW_OTHER_USERS]);
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

  return np_limits_get (self->limits, NP_LIMIT_HANDSHAKE_TIMEOUT);
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

  np_pipe_server_set_limit (self, NP_LIMIT_HANDSHAKE_TIMEOUT, timeout_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_CLOSE_TIMEOUT);
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

  np_pipe_server_set_limit (self, NP_LIMIT_CLOSE_TIMEOUT, timeout_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_REQUEST_TIMEOUT);
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

  np_pipe_server_set_limit (self, NP_LIMIT_REQUEST_TIMEOUT, timeout_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_FDS_PER_MESSAGE);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_FDS_PER_MESSAGE, max_fds);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_PENDING_REQUESTS);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_PENDING_REQUESTS, max_pending_requests);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_PENDING_REQUEST_BYTES);
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

  np_pipe_server_set_limit (self, NP_LIMIT_MAX_PENDING_REQUEST_BYTES, max_pending_request_bytes);
}

/**
 * np_pipe_server_new_for_address:
 * @address: the TCP address to listen on; port 0 for any free one
 *
 * Creates a server over TCP, with TLS: see [property@Np.PipeServer:address]
 * and [property@Np.PipeServer:tls-certificate]. The same as
 * [ctor@Np.PipeServer.new] with a name `tcp:HOST:PORT`.
 *
 * Returns: (transfer full): a new #NpPipeServer
 *
 * Since: 1.0
 */
NpPipeServer *
np_pipe_server_new_for_address (GInetSocketAddress *address)
{
  g_return_val_if_fail (G_IS_INET_SOCKET_ADDRESS (address), NULL);

  return g_object_new (NP_TYPE_PIPE_SERVER,
                       "address", address,
                       NULL);
}

/**
 * np_pipe_server_get_address:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:address]: for a server over TCP, once
 * started, the address it listens on, with its port.
 *
 * Returns: (transfer full) (nullable): the address, or %NULL for a local
 *   pipe, or before a server over TCP was started
 *
 * Since: 1.0
 */
GInetSocketAddress *
np_pipe_server_get_address (NpPipeServer *self)
{
  GInetSocketAddress *address = NULL;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  g_mutex_lock (&self->lock);
  if (self->bound_address != NULL)
    address = g_object_ref (G_INET_SOCKET_ADDRESS (self->bound_address));
  else if (self->address != NULL)
    address = g_object_ref (self->address);
  g_mutex_unlock (&self->lock);

  return address;
}

/* Sets a field of an object type, notifying when it changed. */
static void
np_pipe_server_set_object (NpPipeServer *self,
                           gpointer     *field,
                           gpointer      value,
                           guint         prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = g_set_object ((GObject **) field, value);
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [prop_id]);
}

static gpointer
np_pipe_server_dup_object (NpPipeServer *self,
                           gpointer     *field)
{
  gpointer value;

  g_mutex_lock (&self->lock);
  value = *field != NULL ? g_object_ref (*field) : NULL;
  g_mutex_unlock (&self->lock);

  return value;
}

static void
np_pipe_server_set_flag (NpPipeServer *self,
                         guint         prop_id,
                         gboolean      value)
{
  gboolean changed = FALSE;

  value = !!value;
  g_mutex_lock (&self->lock);
  switch (prop_id)
    {
    case PROP_ALLOW_ANONYMOUS:
      changed = self->allow_anonymous != value;
      self->allow_anonymous = value;
      break;
    case PROP_INSECURE_PLAINTEXT:
      changed = self->insecure_plaintext != value;
      self->insecure_plaintext = value;
      break;
    default:
      g_assert_not_reached ();
    }
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [prop_id]);
}

/**
 * np_pipe_server_dup_tls_certificate:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:tls-certificate].
 *
 * Returns: (transfer full) (nullable): the certificate
 *
 * Since: 1.0
 */
GTlsCertificate *
np_pipe_server_dup_tls_certificate (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  return np_pipe_server_dup_object (self, (gpointer *) &self->tls_certificate);
}

/**
 * np_pipe_server_set_tls_certificate:
 * @self: a #NpPipeServer
 * @certificate: (nullable): the certificate, with its private key
 *
 * Sets [property@Np.PipeServer:tls-certificate].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_tls_certificate (NpPipeServer    *self,
                                    GTlsCertificate *certificate)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  np_pipe_server_set_object (self, (gpointer *) &self->tls_certificate, certificate,
                             PROP_TLS_CERTIFICATE);
}

/**
 * np_pipe_server_get_tls_authentication_mode:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:tls-authentication-mode].
 *
 * Returns: whether clients are asked for a certificate
 *
 * Since: 1.0
 */
GTlsAuthenticationMode
np_pipe_server_get_tls_authentication_mode (NpPipeServer *self)
{
  GTlsAuthenticationMode mode;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), G_TLS_AUTHENTICATION_NONE);

  g_mutex_lock (&self->lock);
  mode = self->tls_authentication_mode;
  g_mutex_unlock (&self->lock);

  return mode;
}

/**
 * np_pipe_server_set_tls_authentication_mode:
 * @self: a #NpPipeServer
 * @mode: whether clients are asked for a certificate
 *
 * Sets [property@Np.PipeServer:tls-authentication-mode].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_tls_authentication_mode (NpPipeServer           *self,
                                            GTlsAuthenticationMode  mode)
{
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  g_mutex_lock (&self->lock);
  changed = self->tls_authentication_mode != mode;
  self->tls_authentication_mode = mode;
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_TLS_AUTHENTICATION_MODE]);
}

/**
 * np_pipe_server_dup_tls_database:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:tls-database].
 *
 * Returns: (transfer full) (nullable): the database
 *
 * Since: 1.0
 */
GTlsDatabase *
np_pipe_server_dup_tls_database (NpPipeServer *self)
{
  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), NULL);

  return np_pipe_server_dup_object (self, (gpointer *) &self->tls_database);
}

/**
 * np_pipe_server_set_tls_database:
 * @self: a #NpPipeServer
 * @database: (nullable): the authorities of client certificates
 *
 * Sets [property@Np.PipeServer:tls-database].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_tls_database (NpPipeServer *self,
                                 GTlsDatabase *database)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));
  g_return_if_fail (database == NULL || G_IS_TLS_DATABASE (database));

  np_pipe_server_set_object (self, (gpointer *) &self->tls_database, database,
                             PROP_TLS_DATABASE);
}

/**
 * np_pipe_server_get_allow_anonymous:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:allow-anonymous].
 *
 * Returns: whether a server over TCP may start with anonymous peers
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_get_allow_anonymous (NpPipeServer *self)
{
  gboolean value;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  g_mutex_lock (&self->lock);
  value = self->allow_anonymous;
  g_mutex_unlock (&self->lock);

  return value;
}

/**
 * np_pipe_server_set_allow_anonymous:
 * @self: a #NpPipeServer
 * @allow_anonymous: whether anonymous peers are welcome
 *
 * Sets [property@Np.PipeServer:allow-anonymous].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_allow_anonymous (NpPipeServer *self,
                                    gboolean      allow_anonymous)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_flag (self, PROP_ALLOW_ANONYMOUS, allow_anonymous);
}

/**
 * np_pipe_server_get_insecure_plaintext:
 * @self: a #NpPipeServer
 *
 * Gets [property@Np.PipeServer:insecure-plaintext].
 *
 * Returns: whether a server over TCP speaks without TLS
 *
 * Since: 1.0
 */
gboolean
np_pipe_server_get_insecure_plaintext (NpPipeServer *self)
{
  gboolean value;

  g_return_val_if_fail (NP_IS_PIPE_SERVER (self), FALSE);

  g_mutex_lock (&self->lock);
  value = self->insecure_plaintext;
  g_mutex_unlock (&self->lock);

  return value;
}

/**
 * np_pipe_server_set_insecure_plaintext:
 * @self: a #NpPipeServer
 * @insecure_plaintext: whether to speak without TLS, on loopback only
 *
 * Sets [property@Np.PipeServer:insecure-plaintext]. It takes effect at
 * the next [method@Np.PipeServer.start].
 *
 * Since: 1.0
 */
void
np_pipe_server_set_insecure_plaintext (NpPipeServer *self,
                                       gboolean      insecure_plaintext)
{
  g_return_if_fail (NP_IS_PIPE_SERVER (self));

  np_pipe_server_set_flag (self, PROP_INSECURE_PLAINTEXT, insecure_plaintext);
}
