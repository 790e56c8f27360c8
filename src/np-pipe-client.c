/* np-pipe-client.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <gio/gunixsocketaddress.h>

#include "np-connection-owner-private.h"
#include "np-context-private.h"
#include "np-error.h"
#include "np-frame-private.h"
#include "np-i18n-private.h"
#include "np-limits-private.h"
#include "np-listener-private.h"
#include "np-lock-private.h"
#include "np-marshal.h"
#include "np-name-private.h"
#include "np-pipe-client.h"
#include "np-pipe-connection-private.h"
#include "np-pipe-request-private.h"
#include "np-server-watch-private.h"
#include "np-socket-connect-private.h"
#include "np-tcp-private.h"
#include "np-tls-private.h"
#include "np-variant.h"

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
 * ## The connection
 *
 * Each connect makes a [class@Np.PipeConnection], the object a server
 * holds for each of its clients too, and
 * [method@Np.PipeClient.get_connection] gives the current one. What is
 * done on a connection is done by it: the client's methods of the same
 * names (send, send_async, flush, ping, the requests) act on the
 * current connection, as the connection's methods do, and their
 * documentation says only what the client adds. The limits they meet
 * are the client's properties, read when they are used.
 *
 * While the client is not connected, those methods fail with
 * %NP_PIPE_ERROR_CLOSED; after the server refused the client
 * (%NP_PIPE_ERROR_PERMISSION_DENIED, %NP_PIPE_ERROR_TOO_MANY_CLIENTS) or
 * closed the connection over a message too large for it
 * (%NP_PIPE_ERROR_MESSAGE_TOO_LARGE), they fail with the server's reason
 * instead, until the next connect or [method@Np.PipeClient.close]. With
 * [property@Np.PipeClient:auto-reconnect], the plain sends
 * ([method@Np.PipeClient.send], [method@Np.PipeClient.send_data],
 * [method@Np.PipeClient.send_variant]) hold messages for the next
 * connection instead.
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
  PROP_0,
  PROP_NAME,
  PROP_PATH,
  PROP_CONNECTED,
  PROP_PEER_MAX_MESSAGE_SIZE,
  PROP_QUEUED_BYTES,
  PROP_AUTO_RECONNECT,
  PROP_CONNECTABLE,
  PROP_TLS_DATABASE,
  PROP_TLS_INTERACTION,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_PIN,
  PROP_INSECURE_PLAINTEXT,
  /* Then those of NpLimit, in its order. */
  PROP_FIRST_LIMIT,
  N_PROPS = PROP_FIRST_LIMIT + NP_N_LIMITS
};


struct _NpPipeClient
{
  GObject       parent_instance;

  /* Constant once constructed. */
  char         *name;
  char         *path;
  GSocketConnectable *connectable;  /* over TCP */
  GMainContext *context;

  NpLimits     *limits;          /* shared with its connections */

  GMutex        lock;
  /* Guarded by the lock. */
  NpPipeConnection *connection;  /* the latest connection, perhaps closed */
  GPtrArray    *retired;         /* earlier connections, still closing */
  GTask        *connect_task;    /* a connect_async waiting for the hello */
  NpStreamWait *connect_wait;    /* or a connect_sync */
  NpPipeConnection *connect_connection;  /* the connection either waits on */
  GCancellable *attempt;         /* cancels the connect under way */
  GCancellable *reconnect_attempt;  /* attempt, when the reconnect loop made it */
  gulong        attempt_id;      /* handler of connect_task on attempt */
  /* Reconnecting: the waits between attempts, and what waits for the
   * server to come back. */
  NpBackoff     reconnect_backoff;
  NpServerWatch *reconnect_watch;
  /* When the client last became connected (monotonic, µs). */
  gint64        connected_since;
  /* Messages sent while disconnected with auto-reconnect, to write
   * first once connected again; their size, framing included. */
  GQueue        held;
  gsize         held_bytes;
  /* What the connection has queued, or what is held: published for
   * np_pipe_client_get_queued_bytes(), which takes no lock. */
  gsize         queued_bytes;
  /* Why the server refused the last connection (or the last message),
   * until the next connect or close(): what calls made meanwhile fail
   * with. */
  GError       *refusal;
  /* The largest message the last server accepted, 0 when none said. */
  guint32       last_peer_max_message_size;
  guint         connected : 1;
  guint         connection_accepted : 1;  /* connection was connected once */
  guint         auto_reconnect : 1;
  guint         reconnecting : 1;    /* lost its connection, tries again until close() */
  guint         insecure_plaintext : 1;
  /* What a connection over TCP asks of the server's certificate. */
  GTlsDatabase *tls_database;
  GTlsInteraction *tls_interaction;
  GTlsCertificate *tls_certificate;
  char         *tls_pin;             /* as given */
  /* Connections made, all told: the next one's id. */
  guint64       n_connections;
};

enum {
  ACCEPT_CERTIFICATE,
  ACCEPTED,
  MESSAGE_RECEIVED,
  REQUEST_RECEIVED,
  DISCONNECTED,
  QUEUE_DRAINED,
  MESSAGE_WITH_FDS_RECEIVED,
  N_SIGNALS
};

static void np_pipe_client_owner_init (NpConnectionOwnerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (NpPipeClient, np_pipe_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (NP_TYPE_CONNECTION_OWNER,
                                                      np_pipe_client_owner_init))

static GParamSpec *properties [N_PROPS];
static guint signals [N_SIGNALS];

static void np_pipe_client_install_properties (GObjectClass *object_class);
static void np_pipe_client_release_held_locked (NpPipeClient *self);
static guint np_pipe_client_drop_held_locked (NpPipeClient *self);
static NpServerWatch *np_pipe_client_stop_reconnecting_locked (NpPipeClient *self);
static void np_pipe_client_reconnect_later (NpPipeClient *self);
static void np_pipe_client_connected (NpPipeClient *self, GTask *task, const GError *error);
static gboolean np_pipe_client_connected_sync (NpPipeClient *self, NpPipeConnection *connection,
                                               const GError *error);
static void np_pipe_client_connect_internal (NpPipeClient *self, GCancellable *cancellable,
                                             gboolean wait_for_server, GAsyncReadyCallback callback,
                                             gpointer user_data);
static gboolean np_pipe_client_may_hold_locked (NpPipeClient *self);
static gboolean np_pipe_client_hold_locked (NpPipeClient *self, GBytes *message, GError **error);
static void np_pipe_client_stop_auto_reconnect (NpPipeClient *self);


/* Marks the client connected (to self->connection) or not: what was
 * held goes out first. What the connection queues is published for
 * np_pipe_client_get_queued_bytes() while connected; what is held, while
 * not. */
static void
np_pipe_client_set_connected_locked (NpPipeClient *self,
                                     gboolean      connected)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (self->connected && self->connection != NULL)
    _np_pipe_connection_set_queued_mirror (self->connection, NULL);

  self->connected = !!connected;
  if (connected)
    {
      self->connection_accepted = TRUE;
      self->connected_since = g_get_monotonic_time ();
      _np_pipe_connection_set_queued_mirror (self->connection, &self->queued_bytes);
      np_pipe_client_release_held_locked (self);
    }
  else
    __atomic_store_n (&self->queued_bytes, self->held_bytes, __ATOMIC_RELAXED);
}

/* Keeps why the server refused the client, or a message of it, for the
 * calls made until the next connect or close() (@error NULL: forgets). */
static void
np_pipe_client_note_refusal_locked (NpPipeClient *self,
                                    const GError *error)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (error != NULL &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED) &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_CLIENTS) &&
      !g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE))
    return;

  g_clear_error (&self->refusal);
  if (error != NULL)
    self->refusal = g_error_copy (error);
}

/* What its connections report */

static void
np_pipe_client_connection_opened (NpConnectionOwner *owner,
                                  NpPipeConnection  *connection)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  guint32 peer_max_message_size = np_pipe_connection_get_peer_max_message_size (connection);
  GTask *task = NULL;
  gboolean accepted;

  g_mutex_lock (&self->lock);
  if (connection == self->connect_connection && self->connect_task != NULL)
    task = g_object_ref (self->connect_task);
  if (connection == self->connection)
    self->last_peer_max_message_size = peer_max_message_size;
  g_mutex_unlock (&self->lock);

  g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_PEER_MAX_MESSAGE_SIZE]);

  np_pipe_client_connected_sync (self, connection, NULL);

  if (task != NULL)
    {
      np_pipe_client_connected (self, task, NULL);
      g_object_unref (task);
    }

  /* Whatever connected it, connect_sync(), connect_async() or a
   * reconnect, unless it was closed meanwhile. */
  g_mutex_lock (&self->lock);
  accepted = connection == self->connection && self->connected;
  g_mutex_unlock (&self->lock);

  if (accepted)
    g_signal_emit (self, signals [ACCEPTED], 0);
}

/* When nothing handles message-with-fds-received, the descriptors are
 * closed and the message goes to message-received: an application that
 * never asked for descriptors holds none. */
static void
np_pipe_client_connection_message (NpConnectionOwner *owner,
                                   NpPipeConnection  *connection,
                                   GBytes            *message,
                                   GUnixFDList       *fds)
{
  if (np_connection_owner_takes_fds (owner, signals [MESSAGE_WITH_FDS_RECEIVED], fds))
    g_signal_emit (owner, signals [MESSAGE_WITH_FDS_RECEIVED], 0, message, fds);
  else
    g_signal_emit (owner, signals [MESSAGE_RECEIVED], 0, message);
}

static void
np_pipe_client_connection_request (NpConnectionOwner *owner,
                                   NpPipeConnection  *connection,
                                   guint32            id,
                                   GBytes            *message,
                                   GUnixFDList       *fds)
{
  g_autoptr(NpPipeRequest) request = _np_pipe_connection_new_request (connection, id, message, fds);
  gboolean handled = FALSE;

  g_signal_emit (owner, signals [REQUEST_RECEIVED], 0, request, &handled);
  if (!handled)
    _np_pipe_request_reply_unhandled (request);
}

static void
np_pipe_client_connection_drained (NpConnectionOwner *owner,
                                   NpPipeConnection  *connection)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  gboolean current;

  g_mutex_lock (&self->lock);
  current = connection == self->connection && self->connected;
  g_mutex_unlock (&self->lock);

  if (current)
    g_signal_emit (self, signals [QUEUE_DRAINED], 0);
}

static void
np_pipe_client_connection_closed (NpConnectionOwner *owner,
                                  NpPipeConnection  *connection,
                                  const GError      *error)
{
  NpPipeClient *self = NP_PIPE_CLIENT (owner);
  NpPipeConnection *retired = NULL;
  gboolean notify = FALSE;
  gboolean reconnect = FALSE;
  gboolean sync = FALSE;
  GTask *task = NULL;
  guint index;

  g_mutex_lock (&self->lock);
  if (connection == self->connect_connection || connection == self->connection)
    np_pipe_client_note_refusal_locked (self, error);
  if (connection == self->connect_connection && self->connect_task != NULL)
    task = g_object_ref (self->connect_task);
  else if (connection == self->connect_connection)
    sync = TRUE;
  else if (connection == self->connection && self->connected)
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
          self->reconnect_backoff.early = 0;
          self->reconnect_backoff.timer_full = FALSE;
          if (self->reconnect_backoff.delay == 0 || lasted_msec >= self->reconnect_backoff.delay)
            self->reconnect_backoff.delay = np_limits_get (self->limits, NP_LIMIT_RECONNECT_INTERVAL);
        }
    }
  else if (g_ptr_array_find (self->retired, connection, &index))
    retired = g_ptr_array_steal_index_fast (self->retired, index);
  g_mutex_unlock (&self->lock);

  g_clear_object (&retired);

  /* A connection the server never accepted fails its connect. */
  if (sync || task != NULL)
    {
      g_autoptr(GError) refused = NULL;

      if (error == NULL)
        refused = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               _("Pipe “%s” closed the connection before accepting it"),
                               self->name);
      if (sync)
        np_pipe_client_connected_sync (self, connection, error != NULL ? error : refused);
      else
        np_pipe_client_connected (self, task, error != NULL ? error : refused);
      g_clear_object (&task);
      return;
    }

  if (notify)
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CONNECTED]);
  g_signal_emit (self, signals [DISCONNECTED], 0, error);

  /* Unless a handler closed the client meanwhile. */
  if (reconnect)
    np_pipe_client_reconnect_later (self);
}

static void
np_pipe_client_owner_init (NpConnectionOwnerInterface *iface)
{
  iface->opened = np_pipe_client_connection_opened;
  iface->message = np_pipe_client_connection_message;
  iface->request = np_pipe_client_connection_request;
  iface->drained = np_pipe_client_connection_drained;
  iface->closed = np_pipe_client_connection_closed;
}

static void
np_pipe_client_dispose (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;
  g_autoptr(GPtrArray) retired = NULL;
  NpServerWatch *watch;
  NpPipeConnection *connection;

  g_mutex_lock (&self->lock);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  np_pipe_client_drop_held_locked (self);
  np_pipe_client_set_connected_locked (self, FALSE);
  connection = g_steal_pointer (&self->connection);
  if (connection != NULL)
    g_ptr_array_add (self->retired, connection);
  retired = g_steal_pointer (&self->retired);
  self->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) g_object_unref);
  if (self->attempt != NULL)
    g_cancellable_cancel (self->attempt);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);

  /* What the socket takes without blocking still goes out; call
   * np_pipe_client_close() to be sure everything does. */
  for (guint i = 0; i < retired->len; i++)
    _np_pipe_connection_detach (g_ptr_array_index (retired, i));

  G_OBJECT_CLASS (np_pipe_client_parent_class)->dispose (object);
}

static void
np_pipe_client_finalize (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  /* A pending connect_async holds a reference on the client. */
  g_assert (self->connect_task == NULL && self->connect_wait == NULL &&
            self->connect_connection == NULL);
  g_assert (self->reconnect_watch == NULL && g_queue_is_empty (&self->held));

  g_clear_object (&self->attempt);
  g_clear_object (&self->reconnect_attempt);
  g_clear_error (&self->refusal);
  g_clear_pointer (&self->retired, g_ptr_array_unref);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);
  g_clear_object (&self->connectable);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->tls_interaction);
  g_clear_object (&self->tls_certificate);
  g_clear_pointer (&self->tls_pin, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->limits, np_limits_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (np_pipe_client_parent_class)->finalize (object);
}

static void
np_pipe_client_constructed (GObject *object)
{
  NpPipeClient *self = (NpPipeClient *)object;

  G_OBJECT_CLASS (np_pipe_client_parent_class)->constructed (object);

  /* An invalid or missing name leaves the path unset; connecting then
   * says why. A TCP address has none. */
  if (self->connectable != NULL)
    {
      g_free (self->name);
      self->name = np_tcp_format_connectable (self->connectable);
    }
  else if (np_tcp_is_address (self->name))
    self->connectable = np_tcp_parse_connectable (self->name, NULL);
  else if (self->name != NULL)
    self->path = np_name_to_path (self->name, NULL);
}

static gboolean
np_pipe_client_accept_certificate_accumulator (GSignalInvocationHint *ihint,
                                               GValue                *return_accu,
                                               const GValue          *handler_return,
                                               gpointer               data)
{
  gboolean accepted = g_value_get_boolean (handler_return);

  g_value_set_boolean (return_accu, accepted);

  /* The first handler that accepts decides. */
  return !accepted;
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
   * NpPipeClient::accept-certificate:
   * @self: a #NpPipeClient
   * @peer_cert: the server's certificate
   * @errors: what validating it found wrong
   *
   * Emitted during the TLS handshake of a connection over TCP when the
   * server's certificate does not validate against
   * [property@Np.PipeClient:tls-database] (or the system's trust store),
   * as [signal@Gio.TlsConnection::accept-certificate] is: for a
   * self-signed server, say. It is not emitted for a certificate that
   * matches [property@Np.PipeClient:tls-pin], which gets in, nor when the
   * pin is set and does not match, which is refused. It is emitted in the
   * thread-default main context of the thread that connects (the client's
   * own context for a reconnect).
   *
   * Returns: %TRUE to accept the certificate, %FALSE (the default) to
   *   refuse it and fail the connect
   *
   * Since: 1.0
   */
  signals [ACCEPT_CERTIFICATE] =
    g_signal_new ("accept-certificate",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, np_pipe_client_accept_certificate_accumulator, NULL, NULL,
                  G_TYPE_BOOLEAN, 2, G_TYPE_TLS_CERTIFICATE, G_TYPE_TLS_CERTIFICATE_FLAGS);

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
  /* The emitter holds the message for the length of the emission: it
   * is passed as it is, without a reference taken and dropped around
   * each (G_SIGNAL_TYPE_STATIC_SCOPE), as for every message below. */
  signals [MESSAGE_RECEIVED] =
    g_signal_new ("message-received",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);

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
   * send again. It follows the current connection's
   * [signal@Np.PipeConnection::queue-drained], which says when it comes
   * and how a producer that pauses on
   * [method@Np.PipeClient.get_queued_bytes] never meets
   * %NP_PIPE_ERROR_QUEUE_FULL; unlike it, this signal carries over from
   * one connection of the client to the next.
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
                  G_TYPE_NONE, 2, G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE, G_TYPE_UNIX_FD_LIST);
  g_signal_set_va_marshaller (signals [MESSAGE_WITH_FDS_RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _np_marshal_VOID__BOXED_OBJECTv);
}

static void
np_pipe_client_init (NpPipeClient *self)
{
  g_mutex_init (&self->lock);
  self->limits = np_limits_new ();
  self->context = g_main_context_ref_thread_default ();
  self->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) g_object_unref);
  g_queue_init (&self->held);
}

/**
 * np_pipe_client_new:
 * @name: the name of the server: a pipe name, an absolute socket path,
 *   or a TCP address `tcp:HOST:PORT` (see
 *   [ctor@Np.PipeClient.new_for_connectable])
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

/**
 * np_pipe_client_new_for_connectable:
 * @connectable: the server's host and port, as a #GNetworkAddress or a
 *   #GInetSocketAddress, say
 *
 * Creates a client for a server over TCP, with TLS: the same as
 * [ctor@Np.PipeClient.new] with a name `tcp:HOST:PORT`, for an
 * application that has its own #GSocketConnectable. The server's
 * certificate is checked against the host name of @connectable.
 *
 * Returns: (transfer full): a new #NpPipeClient
 *
 * Since: 1.0
 */
NpPipeClient *
np_pipe_client_new_for_connectable (GSocketConnectable *connectable)
{
  g_return_val_if_fail (G_IS_SOCKET_CONNECTABLE (connectable), NULL);

  return g_object_new (NP_TYPE_PIPE_CLIENT,
                       "connectable", connectable,
                       NULL);
}

/* Closing */

/* Stops a connect or a reconnect under way and takes the connection for
 * closing, if there is one; the client is no longer connected
 * afterwards. What was held for a reconnect is dropped: *@n_dropped
 * messages. */
static NpPipeConnection *
np_pipe_client_take_for_close (NpPipeClient *self,
                               guint        *n_dropped)
{
  NpServerWatch *watch;
  NpPipeConnection *connection = NULL;
  gboolean notify;

  g_mutex_lock (&self->lock);
  if (self->attempt != NULL)
    g_cancellable_cancel (self->attempt);
  np_pipe_client_note_refusal_locked (self, NULL);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  *n_dropped = np_pipe_client_drop_held_locked (self);
  notify = self->connected;
  if (self->connected && self->connection != NULL)
    connection = g_object_ref (self->connection);
  np_pipe_client_set_connected_locked (self, FALSE);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);

  if (notify)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);

  return connection;
}

/**
 * np_pipe_client_close:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Closes the client: cancels a connect under way, stops reconnecting
 * ([property@Np.PipeClient:auto-reconnect]), and closes the current
 * connection as [method@Np.PipeConnection.close] does, writing out what
 * is queued for at most [property@Np.PipeClient:close-timeout], blocking,
 * then emitting [signal@Np.PipeClient::disconnected] (with no error when
 * everything was written). Closing a closed client does nothing; the
 * client may connect again.
 *
 * Like g_io_stream_close(), it fails when something queued was dropped:
 * past the close timeout, or when cancelled, as the connection's close
 * does, or messages held while disconnected (see
 * [property@Np.PipeClient:auto-reconnect]), which fail it with
 * %NP_PIPE_ERROR_CLOSED. Whether it fails or not, the client is closed
 * when this returns.
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
  g_autoptr(NpPipeConnection) connection = NULL;
  guint n_dropped;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The disconnected handler may drop the last reference. */
  hold = g_object_ref (self);
  connection = np_pipe_client_take_for_close (self, &n_dropped);
  if (connection != NULL)
    return np_pipe_connection_close (connection, cancellable, error);

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
 * Closes the client without blocking, like [method@Np.PipeClient.close],
 * and fails when it does: the current connection closes as
 * [method@Np.PipeConnection.close_async] does, from the client's main
 * context, then [signal@Np.PipeClient::disconnected] is emitted. Finish
 * with [method@Np.PipeClient.close_finish].
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
  g_autoptr(NpPipeConnection) connection = NULL;
  guint n_dropped;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_close_async);
  /* Cancelled or not, the client is closed: say what was lost. */
  g_task_set_check_cancellable (task, FALSE);

  connection = np_pipe_client_take_for_close (self, &n_dropped);
  if (connection == NULL && n_dropped > 0)
    g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                             _("Pipe “%s”: %u messages sent while disconnected were dropped: "
                               "the client closed before it could connect again"),
                             self->name, n_dropped);
  else if (connection == NULL)
    g_task_return_boolean (task, TRUE);
  else
    _np_pipe_connection_run (connection, NP_CONNECTION_OP_CLOSE, NULL, NULL, task);
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

/* Sending, flushing, pinging and requests */

/* Not connected: because the server refused the client, when it did
 * (the refusal is kept until the next connect or close()). */
static void
np_pipe_client_set_not_connected_locked (NpPipeClient  *self,
                                         GError       **error)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (self->refusal != NULL)
    g_propagate_error (error, g_error_copy (self->refusal));
  else
    g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                 _("Pipe “%s” is not connected"), self->name);
}

/* The connection, with a reference, or %NULL when not connected. */
static NpPipeConnection *
np_pipe_client_ref_connection (NpPipeClient  *self,
                               GError       **error)
{
  NpPipeConnection *connection = NULL;

  g_mutex_lock (&self->lock);
  if (self->connected && self->connection != NULL)
    connection = g_object_ref (self->connection);
  else
    np_pipe_client_set_not_connected_locked (self, error);
  g_mutex_unlock (&self->lock);

  return connection;
}

/* Runs @op for @task on the connection, or fails it when the client is
 * not connected. */
static void
np_pipe_client_run (NpPipeClient   *self,
                    NpConnectionOp  op,
                    GBytes         *message,
                    GUnixFDList    *fds,
                    GTask          *task)
{
  g_autoptr(NpPipeConnection) connection = NULL;
  GError *error = NULL;

  connection = np_pipe_client_ref_connection (self, &error);
  if (connection == NULL)
    g_task_return_error (task, error);
  else
    _np_pipe_connection_run (connection, op, message, fds, task);
}

/**
 * np_pipe_client_send:
 * @self: a #NpPipeClient
 * @message: the message, 0 bytes or more
 * @error: return location for a #GError
 *
 * Queues @message to the server on the client's current connection, as
 * [method@Np.PipeConnection.send] does: it never blocks, and fails the
 * same way, with %NP_PIPE_ERROR_QUEUE_FULL past
 * [property@Np.PipeClient:max-queued-bytes] (the client staying
 * connected); while the client is not connected, it fails as
 * [class@Np.PipeClient] says. The server receives it through
 * [signal@Np.PipeServer::message-received].
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

  /* Under the lock, so that nothing overtakes what was held for a
   * reconnect: sending never calls out. */
  g_mutex_lock (&self->lock);
  if (self->connected && self->connection != NULL)
    ret = _np_pipe_connection_send (self->connection, message, error);
  else if (np_pipe_client_may_hold_locked (self))
    ret = np_pipe_client_hold_locked (self, message, error);
  else
    {
      np_pipe_client_set_not_connected_locked (self, error);
      ret = FALSE;
    }
  g_mutex_unlock (&self->lock);

  return ret;
}

/**
 * np_pipe_client_send_with_fds:
 * @self: a #NpPipeClient
 * @message: the message, 0 bytes or more
 * @fds: (nullable): the descriptors to pass with it, at most 253
 * @error: return location for a #GError
 *
 * Queues @message with the file descriptors of @fds on the client's
 * current connection, as [method@Np.PipeConnection.send_with_fds] does;
 * the server receives them with the message through
 * [signal@Np.PipeServer::message-with-fds-received]. Unlike
 * [method@Np.PipeClient.send], it never holds a message: while the
 * client is disconnected, with [property@Np.PipeClient:auto-reconnect]
 * too, it fails rather than keep the descriptors open for a server that
 * may never come back. @fds with no descriptors, or %NULL, sends a plain
 * message, as [method@Np.PipeClient.send] does.
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
  g_autoptr(NpPipeConnection) connection = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (fds == NULL || G_IS_UNIX_FD_LIST (fds), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (fds == NULL || g_unix_fd_list_get_length (fds) == 0)
    return np_pipe_client_send (self, message, error);

  connection = np_pipe_client_ref_connection (self, error);

  return connection != NULL && np_pipe_connection_send_with_fds (connection, message, fds, error);
}

/**
 * np_pipe_client_send_data:
 * @self: a #NpPipeClient
 * @data: (array length=size) (element-type guint8) (nullable): the message
 * @size: the length of @data
 * @error: return location for a #GError
 *
 * Queues a copy of @data as one message, like [method@Np.PipeClient.send]
 * (held the same way while the client reconnects). This is the call for
 * bindings that hold a byte string rather than a #GBytes, such as a
 * Python `bytes` object.
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
 * Queues @message on the client's current connection and reports when
 * it has been written to the socket, as
 * [method@Np.PipeConnection.send_async] does, cancelling included.
 * Finish with [method@Np.PipeClient.send_finish]. While the client is
 * disconnected it fails at once, even with
 * [property@Np.PipeClient:auto-reconnect]: nothing says when it could
 * complete.
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

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (message != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_send_async);
  np_pipe_client_run (self, NP_CONNECTION_OP_SEND, message, NULL, task);
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
 * Writes out everything queued on the client's current connection,
 * blocking the calling thread without iterating any main context, as
 * [method@Np.PipeConnection.flush_sync] does (which says how much to
 * queue when the server runs in the same thread).
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
  g_autoptr(NpPipeConnection) connection = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  connection = np_pipe_client_ref_connection (self, error);

  return connection != NULL && np_pipe_connection_flush_sync (connection, cancellable, error);
}

/**
 * np_pipe_client_flush_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything queued so far is
 *   written, or failed
 * @user_data: data for @callback
 *
 * Writes out everything queued on the client's current connection from
 * the client's main context, as [method@Np.PipeConnection.flush_async]
 * does. Finish with [method@Np.PipeClient.flush_finish].
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
  np_pipe_client_run (self, NP_CONNECTION_OP_FLUSH, NULL, NULL, task);
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
 * Sends a ping on the client's current connection, which the server's
 * library answers by itself, whatever the application does, and
 * measures the round trip, as [method@Np.PipeConnection.ping_async]
 * does. Finish with [method@Np.PipeClient.ping_finish].
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
  np_pipe_client_run (self, NP_CONNECTION_OP_PING, NULL, NULL, task);
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
 * Gets how many bytes are queued to the server: those of the current
 * connection, as [method@Np.PipeConnection.get_queued_bytes] counts
 * them, or, while the client is disconnected, those of the messages held
 * for a reconnect (see [property@Np.PipeClient:auto-reconnect]).
 *
 * Returns: the bytes queued, 0 when not connected and holding nothing
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
 * Asks the server on the client's current connection, as
 * [method@Np.PipeConnection.request_async] does: the server receives
 * @request through [signal@Np.PipeServer::request-received], and its
 * reply, or the failure, is reported in the thread-default main context
 * of the calling thread. The request times out after
 * [property@Np.PipeClient:request-timeout]. While the client is
 * disconnected it fails at once, even with
 * [property@Np.PipeClient:auto-reconnect]. Finish with
 * [method@Np.PipeClient.request_finish].
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
  np_pipe_client_run (self, NP_CONNECTION_OP_REQUEST, request, NULL, task);
}

/**
 * np_pipe_client_request_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.request_async]. An error the server
 * replied with keeps its domain and code.
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
 * Asks the server on the client's current connection, like
 * [method@Np.PipeClient.request_async], and blocks the calling thread
 * until the reply comes, the request times out or @cancellable is
 * cancelled, as [method@Np.PipeConnection.request_sync] does: it never
 * iterates a main context, so the server cannot run in the same thread.
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
  return np_pipe_client_request_with_fds_sync (self, request, NULL, NULL, cancellable, error);
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
 * Asks the server on the client's current connection, like
 * [method@Np.PipeClient.request_async], passing the file descriptors of
 * @fd_list with the request and taking those the server passes with its
 * reply, as [method@Np.PipeConnection.request_with_fds_async] does: the
 * server finds them with [method@Np.PipeRequest.get_fd_list] in its
 * [signal@Np.PipeServer::request-received] handler, and answers with
 * [method@Np.PipeRequest.reply_with_fds]. Finish with
 * [method@Np.PipeClient.request_with_fds_finish].
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

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_request_with_fds_async);
  np_pipe_client_run (self, NP_CONNECTION_OP_REQUEST, request, fd_list, task);
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

  return _np_pipe_connection_request_finish (G_TASK (result), out_fd_list, error);
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
 * thread until the reply comes, as
 * [method@Np.PipeConnection.request_with_fds_sync] does.
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
  g_autoptr(NpPipeConnection) connection = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  connection = np_pipe_client_ref_connection (self, error);
  if (connection == NULL)
    return NULL;

  return np_pipe_connection_request_with_fds_sync (connection, request, fd_list, out_fd_list,
                                                   cancellable, error);
}

/* Connecting */

/* Checks that a connect may begin, and marks it begun. */
static gboolean
np_pipe_client_begin_connect_locked (NpPipeClient  *self,
                                     gboolean      *already,
                                     GError       **error)
{
  NP_ENSURE_LOCKED (&self->lock);

  *already = self->connected && self->connection != NULL &&
             np_pipe_connection_get_connected (self->connection);
  if (*already)
    return TRUE;

  if (self->attempt != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   _("Pipe “%s”: a connect is already under way"), self->name);
      return FALSE;
    }

  if (self->name == NULL)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                           _("The client has no pipe name to connect to"));
      return FALSE;
    }

  if (np_tcp_is_address (self->name) && self->connectable == NULL)
    {
      g_autoptr(GSocketConnectable) connectable = np_tcp_parse_connectable (self->name, error);
      g_assert (connectable == NULL);
      return FALSE;
    }

  if (self->path == NULL && self->connectable == NULL)
    {
      g_autofree char *path = np_name_to_path (self->name, error);
      g_assert (path == NULL);
      return FALSE;
    }

  self->attempt = g_cancellable_new ();
  np_pipe_client_note_refusal_locked (self, NULL);
  return TRUE;
}

static void
np_pipe_client_forward_cancel (GCancellable *cancellable,
                               gpointer      data)
{
  g_cancellable_cancel (data);
}

/* Makes the caller's @cancellable cancel @attempt too. */
static gulong
np_pipe_client_chain_cancellable (GCancellable *cancellable,
                                  GCancellable *attempt)
{
  if (cancellable == NULL)
    return 0;

  return g_cancellable_connect (cancellable, G_CALLBACK (np_pipe_client_forward_cancel),
                                g_object_ref (attempt), g_object_unref);
}

/* Dialing: a Unix socket, or TCP and TLS */

static gboolean
np_pipe_client_accept_certificate_cb (GTlsCertificate      *certificate,
                                      GTlsCertificateFlags  errors,
                                      gpointer              data)
{
  NpPipeClient *self = data;
  gboolean accepted = FALSE;

  g_signal_emit (self, signals [ACCEPT_CERTIFICATE], 0, certificate, errors, &accepted);

  return accepted;
}

/* Connects to the server, in the thread-default context of the caller:
 * the TCP connection and its TLS handshake take at most @timeout ms. */
static void
np_pipe_client_dial_async (NpPipeClient        *self,
                           guint                timeout,
                           GCancellable        *attempt,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  NpTlsClientConfig config = { NULL, };
  gboolean plaintext;

  if (self->connectable == NULL)
    {
      np_socket_connect_async (self->name, self->path, timeout, attempt, callback, user_data);
      return;
    }

  g_mutex_lock (&self->lock);
  g_set_object (&config.database, self->tls_database);
  g_set_object (&config.interaction, self->tls_interaction);
  g_set_object (&config.certificate, self->tls_certificate);
  config.pin = g_strdup (self->tls_pin);
  plaintext = self->insecure_plaintext;
  g_mutex_unlock (&self->lock);

  /* The dial holds the client while it runs: it is the source of the
   * caller's task. */
  config.accept = np_pipe_client_accept_certificate_cb;
  config.accept_data = self;
  np_tls_dial_async (self->connectable, plaintext, &config, timeout, attempt, callback, user_data);

  g_clear_object (&config.database);
  g_clear_object (&config.interaction);
  g_clear_object (&config.certificate);
  g_free (config.pin);
}

static GSocketConnection *
np_pipe_client_dial_finish (NpPipeClient    *self,
                            GAsyncResult    *result,
                            GTlsConnection **tls,
                            GError         **error)
{
  if (self->connectable == NULL)
    {
      *tls = NULL;
      return np_socket_connect_finish (result, error);
    }

  return np_tls_dial_finish (result, tls, error);
}

static void
np_pipe_client_dial_sync_cb (GObject      *object,
                             GAsyncResult *result,
                             gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Whether only the calling thread would run @context: it owns it, or it
 * is this thread's own and no other thread runs it. */
static gboolean
np_pipe_client_context_only_here (GMainContext *context)
{
  GMainContext *here;

  if (g_main_context_is_owner (context))
    return TRUE;

  here = g_main_context_get_thread_default ();
  if (here == NULL)
    here = g_main_context_default ();
  if (context == here && g_main_context_acquire (context))
    {
      g_main_context_release (context);
      return TRUE;
    }

  return FALSE;
}

/* A server over TCP of this process whose context only this thread
 * would run: its context, which the TLS handshake must iterate. */
static GMainContext *
np_pipe_client_server_context_here (NpPipeClient *self)
{
  g_autoptr(GMainContext) context = NULL;
  g_autofree char *key = NULL;
  const char *host;

  if (!G_IS_NETWORK_ADDRESS (self->connectable))
    return NULL;

  host = g_network_address_get_hostname (G_NETWORK_ADDRESS (self->connectable));
  if (!g_str_equal (host, "127.0.0.1") && !g_str_equal (host, "::1") && !g_str_equal (host, "localhost"))
    return NULL;

  key = np_listener_key_for_port (g_network_address_get_port (G_NETWORK_ADDRESS (self->connectable)));
  context = np_listener_lookup_context (key);
  if (context == NULL || !np_pipe_client_context_only_here (context))
    return NULL;

  return g_steal_pointer (&context);
}

/* Connects as np_pipe_client_dial_async() does, blocking. Over TCP, the
 * TLS handshake runs in a context of its own, or in that of a server of
 * this process that only this thread would run. */
static GSocketConnection *
np_pipe_client_dial_sync (NpPipeClient    *self,
                          guint            timeout,
                          GCancellable    *attempt,
                          GTlsConnection **tls,
                          GError         **error)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  *tls = NULL;
  if (self->connectable == NULL)
    return np_socket_connect_sync (self->name, self->path, timeout, attempt, error);

  context = np_pipe_client_server_context_here (self);
  if (context == NULL)
    context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  np_pipe_client_dial_async (self, timeout, attempt, np_pipe_client_dial_sync_cb, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return np_pipe_client_dial_finish (self, result, tls, error);
}

/* Makes a connection of @socket_connection (through @tls, over TCP) the
 * client's, to start with no lock held; returns the one it replaces, to
 * unref with no lock held, or %NULL (with @error set when the connection
 * could not be made). */
static NpPipeConnection *
np_pipe_client_attach_locked (NpPipeClient       *self,
                              GSocketConnection  *socket_connection,
                              GTlsConnection     *tls,
                              NpPipeConnection  **connection_out,
                              gboolean           *was_connected,
                              GError            **error)
{
  NpPipeConnection *old = self->connection;
  NpPipeConnection *connection;

  NP_ENSURE_LOCKED (&self->lock);

  *was_connected = self->connected;
  *connection_out = NULL;
  connection = _np_pipe_connection_new (G_OBJECT (self), self->context, socket_connection, tls,
                                        self->name, self->limits, ++self->n_connections,
                                        TRUE, error);
  if (connection == NULL)
    return NULL;

  np_pipe_client_set_connected_locked (self, FALSE);
  if (old != NULL && !_np_pipe_connection_is_done (old))
    {
      g_ptr_array_add (self->retired, old);
      old = NULL;
    }

  self->connection = connection;
  self->connection_accepted = FALSE;
  *connection_out = connection;

  return old;
}

/* The main context of the server of @connection when it is a listener of
 * this process, with a reference, or %NULL; @here tells whether the
 * server is this process at all (the kernel's word over a Unix socket;
 * over TCP, a listener of this process on that loopback port). */
static GMainContext *
np_pipe_client_lookup_server_context (GSocketConnection *connection,
                                      gboolean          *here)
{
  g_autoptr(GSocketAddress) address = g_socket_connection_get_remote_address (connection, NULL);
  g_autoptr(GCredentials) credentials = NULL;
  GMainContext *context = NULL;

  *here = FALSE;

  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      g_autofree char *key = NULL;

      if (np_tcp_is_loopback (address))
        {
          key = np_listener_key_for_port (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
          context = np_listener_lookup_context (key);
        }
      *here = context != NULL;
      return context;
    }

  /* Another process answers whatever this thread does. */
  credentials = g_socket_get_credentials (g_socket_connection_get_socket (connection), NULL);
  if (credentials == NULL || g_credentials_get_unix_pid (credentials, NULL) != getpid ())
    return NULL;

  *here = TRUE;
  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    context = np_listener_lookup_context (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address)));

  return context;
}

/* Whether connect_sync() may wait for the server's hello on
 * @connection: not when the server is one of this process that only the
 * calling thread would run, which would wait for itself, nor when it is
 * a listener of this process whose context is unknown. */
static gboolean
np_pipe_client_server_answers (GSocketConnection *connection)
{
  gboolean here;
  g_autoptr(GMainContext) context = np_pipe_client_lookup_server_context (connection, &here);

  if (context == NULL)
    return !here;

  return !np_pipe_client_context_only_here (context);
}

/* Ends the wait of connect_sync() on @connection, once, with success when
 * @error is %NULL: the server's hello arrived, or the connection ended
 * first. Returns FALSE when no connect_sync() waits on @stream. Called
 * from the stream's callbacks, in whatever thread reads it. */
static gboolean
np_pipe_client_connected_sync (NpPipeClient     *self,
                               NpPipeConnection *connection,
                               const GError     *error)
{
  g_autoptr(GError) cancelled = NULL;
  NpServerWatch *reconnect = NULL;
  NpStreamWait *wait = NULL;
  NpPipeConnection *waited = NULL;

  g_mutex_lock (&self->lock);
  if (self->connect_wait != NULL && self->connect_connection == connection)
    {
      /* The attempt is connect_sync()'s until it ends; close() cancels
       * it under the lock, and a hello that comes after must not
       * connect the client it closed. */
      if (error == NULL && self->attempt != NULL && g_cancellable_is_cancelled (self->attempt))
        error = cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("Operation was cancelled"));
      wait = g_steal_pointer (&self->connect_wait);
      waited = g_steal_pointer (&self->connect_connection);
      if (error == NULL)
        {
          reconnect = np_pipe_client_stop_reconnecting_locked (self);
          np_pipe_client_set_connected_locked (self, TRUE);
        }
    }
  g_mutex_unlock (&self->lock);

  if (wait == NULL)
    return FALSE;

  g_clear_pointer (&reconnect, np_server_watch_free);
  g_clear_pointer (&waited, g_object_unref);
  np_stream_wait_done (wait, error);

  return TRUE;
}

/**
 * np_pipe_client_connect_sync:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the server and waits until the server has accepted the
 * client (its handshake arrived), as [method@Np.PipeClient.connect_async]
 * does, blocking the calling thread for at most
 * [property@Np.PipeClient:connect-timeout] in all. A refusal is the error
 * of this call: %NP_PIPE_ERROR_PERMISSION_DENIED or
 * %NP_PIPE_ERROR_TOO_MANY_CLIENTS, with the server's reason. No main
 * context is iterated: when no other thread runs the client's main
 * context, this thread reads the socket itself, and
 * [signal@Np.PipeClient::accepted] (and any message that arrives with the
 * handshake) is emitted from here, as the context would.
 *
 * One server is not waited for: a [class@Np.PipeServer] of this same
 * process whose main context only the calling thread would run (this
 * thread owns that context, or it is this thread's thread-default one and
 * no other thread runs it), which could not answer while this thread
 * waits; nor a listening socket of this process that is no
 * [class@Np.PipeServer]. Then this returns as soon as the connection is
 * made, without waiting for anything only that main loop can provide, so
 * that a server and its clients may share one thread: once the loop runs,
 * the connection works, and a refusal arrives as
 * [signal@Np.PipeClient::disconnected].
 *
 * Fails with %NP_PIPE_ERROR_NOT_FOUND when no server runs under the name,
 * %NP_PIPE_ERROR_INVALID_NAME when the name cannot be a pipe,
 * %NP_PIPE_ERROR_TIMED_OUT when the server did not take the connection or
 * did not answer the handshake in time, and %G_IO_ERROR_CANCELLED when
 * @cancellable is cancelled or [method@Np.PipeClient.close] is called
 * meanwhile. Connecting a connected client does nothing.
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
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(GSocketConnection) socket_connection = NULL;
  g_autoptr(GTlsConnection) tls = NULL;
  g_autoptr(GCancellable) attempt = NULL;
  g_autoptr(GError) failure = NULL;
  NpServerWatch *watch = NULL;
  NpPipeConnection *old = NULL;
  NpPipeConnection *connection = NULL;
  NpStreamWait wait;
  gboolean already;
  gboolean was_connected = FALSE;
  gboolean wait_for_server = FALSE;
  gboolean ret = TRUE;
  gint64 deadline = -1;
  gulong chain_id;
  guint timeout;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  hold = g_object_ref (self);

  g_mutex_lock (&self->lock);
  if (!np_pipe_client_begin_connect_locked (self, &already, error))
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (already)
    {
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
  attempt = g_object_ref (self->attempt);
  timeout = np_limits_get (self->limits, NP_LIMIT_CONNECT_TIMEOUT);
  g_mutex_unlock (&self->lock);

  if (timeout > 0)
    deadline = g_get_monotonic_time () + timeout * G_TIME_SPAN_MILLISECOND;

  chain_id = np_pipe_client_chain_cancellable (cancellable, attempt);
  socket_connection = np_pipe_client_dial_sync (self, timeout, attempt, &tls, error);
  if (socket_connection != NULL)
    wait_for_server = np_pipe_client_server_answers (socket_connection);

  np_stream_wait_init (&wait);

  g_mutex_lock (&self->lock);
  /* close() or a cancel while the socket connected: the attempt is over,
   * and its socket is not the client's. */
  if (socket_connection != NULL &&
      (self->attempt != attempt || g_cancellable_is_cancelled (attempt)))
    {
      g_clear_object (&socket_connection);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Operation was cancelled"));
    }
  if (socket_connection != NULL)
    {
      old = np_pipe_client_attach_locked (self, socket_connection, tls, &connection, &was_connected, error);
      if (connection != NULL && wait_for_server)
        {
          /* Until the server answers, a connect is under way. */
          self->connect_wait = &wait;
          self->connect_connection = g_object_ref (connection);
        }
      else if (connection != NULL)
        {
          watch = np_pipe_client_stop_reconnecting_locked (self);
          /* Started before the client is connected to it: what was held
           * for a reconnect goes out on it at once, and what other
           * threads send next follows. */
          _np_pipe_connection_start (connection, deadline < 0 ? 0 :
                                     MAX (1, (deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND));
          np_pipe_client_set_connected_locked (self, TRUE);
        }
    }
  if ((connection == NULL || !wait_for_server) && self->attempt == attempt)
    g_clear_object (&self->attempt);
  if (connection != NULL)
    g_object_ref (connection);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
  g_clear_object (&old);
  if (connection == NULL)
    {
      if (socket_connection != NULL)
        g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
      g_cancellable_disconnect (cancellable, chain_id);
      np_stream_wait_clear (&wait);
      return FALSE;
    }

  if (wait_for_server)
    {
      /* What is left of the connect timeout bounds the handshake. */
      _np_pipe_connection_start (connection, deadline < 0 ? 0 :
                                 MAX (1, (deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND));

      if (was_connected)
        np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);

      _np_pipe_connection_block (connection, &wait, deadline, attempt);

      g_mutex_lock (&self->lock);
      if (self->connect_wait == &wait)
        {
          /* Given up: cancelled, or the server did not answer in time. */
          self->connect_wait = NULL;
          g_clear_object (&self->connect_connection);
          if (g_cancellable_is_cancelled (attempt))
            failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           _("Operation was cancelled"));
          else
            failure = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                   _("Pipe “%s”: the server did not complete the handshake "
                                     "within %u ms"),
                                   self->name, timeout);
        }
      if (self->attempt == attempt)
        g_clear_object (&self->attempt);
      g_mutex_unlock (&self->lock);

      /* Otherwise whoever took the wait ends it, if not yet. */
      g_mutex_lock (&wait.mutex);
      while (failure == NULL && !wait.done)
        g_cond_wait (&wait.cond, &wait.mutex);
      g_mutex_unlock (&wait.mutex);

      if (failure == NULL && wait.error != NULL)
        failure = g_error_copy (wait.error);

      /* A connection that failed is closed without a report. */
      if (failure != NULL)
        {
          _np_pipe_connection_detach (connection);
          g_propagate_error (error, g_steal_pointer (&failure));
          ret = FALSE;
        }
      else
        np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);
    }
  else if (!was_connected)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);

  g_cancellable_disconnect (cancellable, chain_id);
  g_object_unref (connection);
  np_stream_wait_clear (&wait);

  return ret;
}

typedef struct
{
  GCancellable  *caller;      /* the caller's, chained to cancel attempt */
  gulong         chain_id;
  GCancellable  *attempt;
  gint64         deadline;
  guint          timeout;
  /* Waiting for a server that does not run yet (auto-reconnect). Only
   * the task's context touches these, but watch, under the lock. */
  NpServerWatch *watch;
  NpBackoff      backoff;
  guint          max_delay;
  guint          interval;
  guint          wait : 1;
  guint          dialing : 1;      /* a socket connect is under way, or made */
  guint          attempt_watched : 1;
} ConnectData;

static void
connect_data_free (gpointer data)
{
  ConnectData *connect = data;

  /* The watch holds a reference on the task. */
  g_assert (connect->watch == NULL);

  if (connect->caller != NULL)
    g_cancellable_disconnect (connect->caller, connect->chain_id);
  g_clear_object (&connect->caller);
  g_clear_object (&connect->attempt);
  g_free (connect);
}

/* Ends the connect_async of @task, once: with success when @error is
 * %NULL. Called from the client's context or the task's, by a caller
 * that holds a reference on @task. */
static void
np_pipe_client_connected (NpPipeClient *self,
                          GTask        *task,
                          const GError *error)
{
  ConnectData *connect = g_task_get_task_data (task);
  g_autoptr(GError) cancelled = NULL;
  NpServerWatch *waiting = NULL;
  NpServerWatch *reconnect = NULL;
  NpPipeConnection *connection = NULL;
  GCancellable *attempt = NULL;
  gulong attempt_id = 0;

  g_mutex_lock (&self->lock);
  if (self->connect_task != task)
    {
      g_mutex_unlock (&self->lock);
      return;
    }

  /* close() cancels the attempt under the lock; a hello read before
   * the cancel was handled must not connect the client it closed. */
  if (error == NULL && self->attempt != NULL && g_cancellable_is_cancelled (self->attempt))
    error = cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                             _("Operation was cancelled"));

  g_clear_object (&self->connect_task);
  connection = g_steal_pointer (&self->connect_connection);
  attempt = g_steal_pointer (&self->attempt);
  attempt_id = self->attempt_id;
  self->attempt_id = 0;
  waiting = g_steal_pointer (&connect->watch);
  if (error == NULL)
    {
      reconnect = np_pipe_client_stop_reconnecting_locked (self);
      np_pipe_client_set_connected_locked (self, TRUE);
    }
  else if (!self->reconnecting)
    /* Nothing will connect to send them. */
    np_pipe_client_drop_held_locked (self);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&waiting, np_server_watch_free);
  g_clear_pointer (&reconnect, np_server_watch_free);

  if (attempt != NULL)
    {
      g_cancellable_disconnect (attempt, attempt_id);
      g_object_unref (attempt);
    }

  /* A connection that failed half-way is closed without a report. */
  if (error != NULL && connection != NULL)
    _np_pipe_connection_detach (connection);
  g_clear_object (&connection);

  if (error == NULL)
    {
      np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_error (task, g_error_copy (error));
}

static gboolean
np_pipe_client_attempt_cancelled_cb (gpointer data)
{
  GTask *task = data;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("Operation was cancelled"));

  np_pipe_client_connected (g_task_get_source_object (task), task, error);

  return G_SOURCE_REMOVE;
}

static void
np_pipe_client_attempt_cancelled (GCancellable *attempt,
                                  gpointer      data)
{
  GTask *task = data;
  g_autoptr(GSource) idle = g_idle_source_new ();

  /* Never from inside the cancel call. */
  g_source_set_static_name (idle, "[np] cancelled connect");
  g_source_set_callback (idle, np_pipe_client_attempt_cancelled_cb,
                         g_object_ref (task), g_object_unref);
  g_source_attach (idle, g_task_get_context (task));
}

/* Has a cancel of the attempt end the connect at once, from the task's
 * context: while it waits for the server's hello, or for the server to
 * start. np_socket_connect_async() watches it while it dials. */
static void
np_pipe_client_watch_attempt (NpPipeClient *self,
                              GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  gulong id;

  if (connect->attempt_watched)
    return;
  connect->attempt_watched = TRUE;

  id = g_cancellable_connect (connect->attempt, G_CALLBACK (np_pipe_client_attempt_cancelled),
                              g_object_ref (task), g_object_unref);
  g_mutex_lock (&self->lock);
  if (self->connect_task == task)
    {
      self->attempt_id = id;
      id = 0;
    }
  g_mutex_unlock (&self->lock);

  /* Done already: whoever finished it did not know the handler. */
  if (id != 0)
    g_cancellable_disconnect (connect->attempt, id);
}

static void np_pipe_client_socket_connected (GObject      *object,
                                             GAsyncResult *result,
                                             gpointer      user_data);

static GError *
np_pipe_client_no_server_error_new (NpPipeClient *self,
                                    ConnectData  *connect)
{
  if (self->connectable != NULL)
    return g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                        _("No server listened at “%s” within %u ms"),
                        self->name, connect->timeout);

  return g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                      _("No server started as pipe “%s” (%s) within %u ms"),
                      self->name, self->path, connect->timeout);
}

/* Dials the server once more, in the task's context, with what is left
 * of the connect timeout to wait for a busy one. */
static void
np_pipe_client_dial (NpPipeClient *self,
                     GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  guint timeout = 0;

  if (connect->deadline > 0)
    timeout = MAX (1, (connect->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);

  connect->dialing = TRUE;
  g_main_context_push_thread_default (g_task_get_context (task));
  np_pipe_client_dial_async (self, timeout, connect->attempt,
                           np_pipe_client_socket_connected, g_object_ref (task));
  g_main_context_pop_thread_default (g_task_get_context (task));
}

/* The back-off passed, or the server's socket showed up. */
static void
np_pipe_client_retry_connect (gpointer data,
                              gboolean from_monitor)
{
  GTask *task = data;
  NpPipeClient *self = g_task_get_source_object (task);
  ConnectData *connect = g_task_get_task_data (task);
  gboolean pending;

  g_mutex_lock (&self->lock);
  pending = self->connect_task == task;
  g_mutex_unlock (&self->lock);

  if (!pending)
    return;

  /* The last wait ends at the deadline: no server came. */
  if (!from_monitor && !connect->dialing && connect->deadline > 0 &&
      g_get_monotonic_time () >= connect->deadline)
    {
      g_autoptr(GError) error = np_pipe_client_no_server_error_new (self, connect);

      np_pipe_client_connected (self, task, error);
      return;
    }

  /* As the reconnect loop: a few hints per wait, then the back-off. */
  if (!np_backoff_fire (&connect->backoff, from_monitor))
    return;
  if (!connect->dialing)
    {
      np_backoff_attempt (&connect->backoff, from_monitor);
      np_pipe_client_dial (self, task);
    }
}

/* No server runs under the name: waits for one to start, until the
 * connect timeout. Returns FALSE when that has passed. */
static gboolean
np_pipe_client_wait_for_server (NpPipeClient *self,
                                GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  NpServerWatch *watch = NULL;
  gint64 now = g_get_monotonic_time ();
  guint delay;

  if (connect->deadline > 0 && now >= connect->deadline)
    return FALSE;

  delay = np_backoff_next (&connect->backoff, connect->interval, connect->max_delay);
  if (connect->deadline > 0)
    delay = MIN ((gint64) delay, (connect->deadline - now + 999) / G_TIME_SPAN_MILLISECOND);

  if (connect->watch == NULL)
    /* The dial found no server: one that came since is news. */
    watch = np_server_watch_new (self->path, TRUE, g_task_get_context (task),
                                 np_pipe_client_retry_connect, g_object_ref (task), g_object_unref);

  g_mutex_lock (&self->lock);
  if (self->connect_task == task)
    {
      if (watch != NULL)
        connect->watch = g_steal_pointer (&watch);
      np_server_watch_set_timer (connect->watch, delay);
    }
  g_mutex_unlock (&self->lock);

  /* Ended meanwhile (cancelled). */
  g_clear_pointer (&watch, np_server_watch_free);

  np_pipe_client_watch_attempt (self, task);

  return TRUE;
}

static void
np_pipe_client_socket_connected (GObject      *object,
                                 GAsyncResult *result,
                                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  NpPipeClient *self = g_task_get_source_object (task);
  ConnectData *connect = g_task_get_task_data (task);
  g_autoptr(GSocketConnection) socket_connection = NULL;
  g_autoptr(GTlsConnection) tls = NULL;
  g_autoptr(GError) error = NULL;
  NpServerWatch *watch = NULL;
  NpPipeConnection *old = NULL;
  NpPipeConnection *connection = NULL;
  gboolean was_connected;
  guint timeout = 0;

  socket_connection = np_pipe_client_dial_finish (self, result, &tls, &error);
  if (socket_connection == NULL)
    {
      connect->dialing = FALSE;
      np_backoff_refund (&connect->backoff, error);
      if (connect->wait && g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND) &&
          np_pipe_client_wait_for_server (self, task))
        return;
      if (connect->wait && g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
        {
          g_clear_error (&error);
          error = np_pipe_client_no_server_error_new (self, connect);
        }
      np_pipe_client_connected (self, task, error);
      return;
    }

  /* What is left of the connect timeout bounds the handshake. */
  if (connect->deadline > 0)
    timeout = MAX (1, (connect->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);

  g_mutex_lock (&self->lock);
  if (self->connect_task != task)
    {
      /* Cancelled meanwhile, and reported. */
      g_mutex_unlock (&self->lock);
      return;
    }
  old = np_pipe_client_attach_locked (self, socket_connection, tls, &connection, &was_connected, &error);
  if (connection != NULL)
    {
      self->connect_connection = g_object_ref (connection);
      g_object_ref (connection);
    }
  /* No more waiting for the server. */
  watch = g_steal_pointer (&connect->watch);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
  g_clear_object (&old);
  if (connection == NULL)
    {
      np_pipe_client_connected (self, task, error);
      return;
    }
  if (was_connected)
    np_context_notify (self->context, G_OBJECT (self), properties [PROP_CONNECTED]);

  /* From here, the server's hello or goodbye ends the connect; so does a
   * cancel, at once. */
  np_pipe_client_watch_attempt (self, task);

  _np_pipe_connection_start (connection, timeout);
  g_object_unref (connection);
}

/**
 * np_pipe_client_connect_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server accepted the client,
 *   or the connect failed
 * @user_data: data for @callback
 *
 * Connects to the server and completes once the server has accepted the
 * client (its handshake arrived), so that a refusal
 * (%NP_PIPE_ERROR_PERMISSION_DENIED, %NP_PIPE_ERROR_TOO_MANY_CLIENTS) is
 * the error of [method@Np.PipeClient.connect_finish]. The whole takes at
 * most [property@Np.PipeClient:connect-timeout]; past it, the connect
 * fails with %NP_PIPE_ERROR_TIMED_OUT. Cancelling, or calling
 * [method@Np.PipeClient.close] meanwhile, fails it with
 * %G_IO_ERROR_CANCELLED and leaves the client unconnected.
 *
 * Both the caller's thread-default main context and the client's must
 * run for it to complete.
 *
 * Since: 1.0
 */
void
np_pipe_client_connect_async (NpPipeClient        *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  np_pipe_client_connect_internal (self, cancellable, TRUE, callback, user_data);
}

/* Connects as connect_async() does, in the thread-default context of the
 * caller; with @wait_for_server and auto-reconnect on, waits for a server
 * that does not run yet. */
static void
np_pipe_client_connect_internal (NpPipeClient        *self,
                                 GCancellable        *cancellable,
                                 gboolean             wait_for_server,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ConnectData *connect;
  GError *error = NULL;
  gboolean already;
  guint timeout;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_connect_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  connect = g_new0 (ConnectData, 1);
  g_task_set_task_data (task, connect, connect_data_free);

  g_mutex_lock (&self->lock);
  if (!np_pipe_client_begin_connect_locked (self, &already, &error))
    {
      g_mutex_unlock (&self->lock);
      g_task_return_error (task, error);
      return;
    }
  if (already)
    {
      g_mutex_unlock (&self->lock);
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->connect_task = g_object_ref (task);
  connect->attempt = g_object_ref (self->attempt);
  timeout = np_limits_get (self->limits, NP_LIMIT_CONNECT_TIMEOUT);
  connect->wait = wait_for_server && self->auto_reconnect;
  connect->interval = np_limits_get (self->limits, NP_LIMIT_RECONNECT_INTERVAL);
  connect->max_delay = MAX (connect->interval,
                            np_limits_get (self->limits, NP_LIMIT_RECONNECT_MAX_INTERVAL));
  g_mutex_unlock (&self->lock);

  connect->timeout = timeout;
  connect->backoff.delay = connect->interval;
  if (timeout > 0)
    connect->deadline = g_get_monotonic_time () + timeout * G_TIME_SPAN_MILLISECOND;
  if (cancellable != NULL)
    connect->caller = g_object_ref (cancellable);
  connect->chain_id = np_pipe_client_chain_cancellable (cancellable, connect->attempt);

  connect->dialing = TRUE;
  np_pipe_client_dial_async (self, timeout, connect->attempt,
                           np_pipe_client_socket_connected, g_steal_pointer (&task));
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



/* With auto-reconnect, a client whose connection ends (other than by
 * close()) waits a back-off, or for the server's socket to show up in
 * its directory, and connects again, in its own main context, until it
 * is back in or closed. The loop holds only a weak reference while it
 * waits: a client the application lets go is disposed, which stops it.
 * An attempt under way holds a strong one, for at most connect-timeout.
 *
 * Messages sent meanwhile wait in the client (held), bounded by
 * max-queued-bytes, and go first on the next connection, in the locked
 * stretch that makes it the client's, so nothing sent later overtakes
 * them. What the lost connection had queued is not carried over: the
 * client cannot know what of it the dead server read. */

/* Holding */

/* Whether a message sent now would go out after a reconnect. */
static gboolean
np_pipe_client_may_hold_locked (NpPipeClient *self)
{
  NP_ENSURE_LOCKED (&self->lock);

  return self->auto_reconnect && !self->connected &&
         (self->reconnecting || self->attempt != NULL);
}

static gboolean
np_pipe_client_hold_locked (NpPipeClient  *self,
                            GBytes        *message,
                            GError       **error)
{
  gsize len = g_bytes_get_size (message);
  gsize framed = NP_FRAME_HEADER_SIZE + len;
  guint max_queued_bytes;

  NP_ENSURE_LOCKED (&self->lock);

  if (self->last_peer_max_message_size > 0 && len > self->last_peer_max_message_size)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                   _("Pipe “%s”: message of %zu bytes exceeds the limit of "
                     "%u bytes that the server accepts"),
                   self->name, len, self->last_peer_max_message_size);
      return FALSE;
    }

  max_queued_bytes = np_limits_get (self->limits, NP_LIMIT_MAX_QUEUED_BYTES);
  if (max_queued_bytes > 0 && self->held_bytes + framed > max_queued_bytes)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                   _("Pipe “%s” is not connected: %zu bytes wait for the "
                     "reconnect, and %zu more would pass the limit of %u"),
                   self->name, self->held_bytes, len, max_queued_bytes);
      return FALSE;
    }

  g_queue_push_tail (&self->held, g_bytes_ref (message));
  self->held_bytes += framed;
  __atomic_store_n (&self->queued_bytes, self->held_bytes, __ATOMIC_RELAXED);

  return TRUE;
}

/* Drops what is held; returns how many messages. */
static guint
np_pipe_client_drop_held_locked (NpPipeClient *self)
{
  guint n_dropped = self->held.length;

  NP_ENSURE_LOCKED (&self->lock);

  g_queue_clear_full (&self->held, (GDestroyNotify) g_bytes_unref);
  self->held_bytes = 0;
  if (!self->connected)
    __atomic_store_n (&self->queued_bytes, 0, __ATOMIC_RELAXED);

  return n_dropped;
}

static gboolean
np_pipe_client_warn_cb (gpointer data)
{
  g_warning ("%s", (const char *) data);

  return G_SOURCE_REMOVE;
}

/* The client just became connected to self->connection: what was held goes
 * out first. */
static void
np_pipe_client_release_held_locked (NpPipeClient *self)
{
  g_autoptr(GError) first_error = NULL;
  guint n_dropped = 0;
  GBytes *message;

  NP_ENSURE_LOCKED (&self->lock);

  g_assert (self->connected && self->connection != NULL);

  while ((message = g_queue_pop_head (&self->held)) != NULL)
    {
      g_autoptr(GError) error = NULL;

      /* Only a server that came back with a smaller limit refuses. */
      if (!_np_pipe_connection_send_held (self->connection, message, &error))
        {
          n_dropped++;
          if (first_error == NULL)
            first_error = g_steal_pointer (&error);
        }
      g_bytes_unref (message);
    }
  self->held_bytes = 0;

  /* Logged from the client's context: a log handler may call the
   * client, whose lock is held here. */
  if (n_dropped > 0)
    {
      g_autoptr(GSource) idle = g_idle_source_new ();

      g_source_set_static_name (idle, "[np] warn of held messages dropped");
      g_source_set_callback (idle, np_pipe_client_warn_cb,
                             g_strdup_printf ("Pipe “%s”: %u messages sent while disconnected "
                                              "were dropped: %s",
                                              self->name, n_dropped, first_error->message),
                             g_free);
      g_source_attach (idle, self->context);
    }
}

/* Reconnecting */

/* Ends the reconnect loop; returns its watch, to free with no lock held. */
static NpServerWatch *
np_pipe_client_stop_reconnecting_locked (NpPipeClient *self)
{
  NP_ENSURE_LOCKED (&self->lock);

  self->reconnecting = FALSE;
  self->reconnect_backoff.soon = FALSE;
  g_clear_object (&self->reconnect_attempt);

  return g_steal_pointer (&self->reconnect_watch);
}

static GWeakRef *
np_weak_ref_new (gpointer object)
{
  GWeakRef *ref = g_new (GWeakRef, 1);

  g_weak_ref_init (ref, object);
  return ref;
}

static void
np_weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

static void
np_pipe_client_reconnected (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  NpPipeClient *self = NP_PIPE_CLIENT (source);
  g_autoptr(GError) error = NULL;

  /* Success ended the loop, and emitted `accepted`. */
  if (np_pipe_client_connect_finish (self, result, &error))
    return;

  g_debug ("Pipe “%s”: reconnecting failed: %s", self->name, error->message);

  g_mutex_lock (&self->lock);
  np_backoff_refund (&self->reconnect_backoff, error);
  g_mutex_unlock (&self->lock);

  np_pipe_client_reconnect_later (self);
}

/* The back-off passed, or the server's socket showed up. Called in the
 * client's context. */
static void
np_pipe_client_reconnect_fire (gpointer data,
                               gboolean from_monitor)
{
  g_autoptr(NpPipeClient) self = g_weak_ref_get (data);
  NpServerWatch *stopped = NULL;
  gboolean go;

  if (self == NULL)
    return;

  g_mutex_lock (&self->lock);
  if (self->reconnecting && !self->auto_reconnect)
    {
      stopped = np_pipe_client_stop_reconnecting_locked (self);
      np_pipe_client_drop_held_locked (self);
    }
  go = np_backoff_fire (&self->reconnect_backoff, from_monitor) &&
       self->reconnecting && !self->connected && self->attempt == NULL;
  if (go)
    np_backoff_attempt (&self->reconnect_backoff, from_monitor);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&stopped, np_server_watch_free);

  if (!go)
    return;

  /* The attempt, and its end, belong to the client's context. */
  g_main_context_push_thread_default (self->context);
  np_pipe_client_connect_internal (self, NULL, FALSE, np_pipe_client_reconnected, NULL);
  g_main_context_pop_thread_default (self->context);

  /* Known, so that turning auto-reconnect off gives it up. */
  g_mutex_lock (&self->lock);
  if (self->reconnecting)
    g_set_object (&self->reconnect_attempt, self->attempt);
  g_mutex_unlock (&self->lock);
}

typedef struct
{
  NpPipeClient *client;
  GError       *error;
} Dropped;

static gboolean
np_pipe_client_report_dropped_cb (gpointer data)
{
  Dropped *dropped = data;

  g_signal_emit_by_name (dropped->client, "disconnected", dropped->error);

  return G_SOURCE_REMOVE;
}

static void
dropped_free (gpointer data)
{
  Dropped *dropped = data;

  g_object_unref (dropped->client);
  g_error_free (dropped->error);
  g_free (dropped);
}

/* auto-reconnect was turned off: a reconnect under way stops at once,
 * its attempt (if any) is given up, and what was held is dropped and
 * reported by a `disconnected` of its own, from the client's context,
 * never from inside the setter. */
static void
np_pipe_client_stop_auto_reconnect (NpPipeClient *self)
{
  g_autoptr(GCancellable) attempt = NULL;
  NpServerWatch *watch = NULL;
  guint n_dropped = 0;

  g_mutex_lock (&self->lock);
  if (self->auto_reconnect || !self->reconnecting)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  if (self->attempt != NULL && self->attempt == self->reconnect_attempt)
    attempt = g_object_ref (self->attempt);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  n_dropped = np_pipe_client_drop_held_locked (self);
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
  if (attempt != NULL)
    g_cancellable_cancel (attempt);

  if (n_dropped > 0)
    {
      Dropped *dropped = g_new0 (Dropped, 1);
      g_autoptr(GSource) idle = g_idle_source_new ();

      dropped->client = g_object_ref (self);
      dropped->error = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                    _("Pipe “%s”: %u messages sent while disconnected were "
                                      "dropped: auto-reconnect was turned off"),
                                    self->name, n_dropped);
      g_source_set_static_name (idle, "[np] report held messages dropped");
      g_source_set_callback (idle, np_pipe_client_report_dropped_cb, dropped, dropped_free);
      g_source_attach (idle, self->context);
    }
}

/* Arms the next attempt of the reconnect loop, if it still runs: after a
 * jittered back-off that doubles up to reconnect-max-interval, or as
 * soon as the server's socket or lock file changes. Called in the
 * client's context, with no lock held. */
static void
np_pipe_client_reconnect_later (NpPipeClient *self)
{
  NpServerWatch *watch = NULL;

  g_mutex_lock (&self->lock);
  if (self->reconnecting && self->reconnect_watch == NULL)
    {
      g_mutex_unlock (&self->lock);
      /* The server just went, or refused us: a socket there now is no
       * news, and the back-off decides when to try it. */
      watch = np_server_watch_new (self->path, FALSE, self->context, np_pipe_client_reconnect_fire,
                                   np_weak_ref_new (self), np_weak_ref_free);
      g_mutex_lock (&self->lock);
      if (self->reconnecting && self->reconnect_watch == NULL)
        self->reconnect_watch = g_steal_pointer (&watch);
    }

  if (self->reconnecting && self->reconnect_watch != NULL)
    {
      guint interval = np_limits_get (self->limits, NP_LIMIT_RECONNECT_INTERVAL);
      guint max = MAX (interval, np_limits_get (self->limits, NP_LIMIT_RECONNECT_MAX_INTERVAL));

      /* Only a connection that lasted starts the back-off afresh. */
      np_server_watch_set_timer (self->reconnect_watch,
                                 np_backoff_next (&self->reconnect_backoff, interval, max));
    }
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
}

/* Properties */

static void
np_pipe_client_set_limit (NpPipeClient *self,
                          NpLimit       limit,
                          guint         value)
{
  if (np_limits_set (self->limits, limit, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_FIRST_LIMIT + limit]);
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
      g_value_set_boolean (value, np_pipe_client_get_connected (self));
      break;



    case PROP_PEER_MAX_MESSAGE_SIZE:
      g_value_set_uint (value, np_pipe_client_get_peer_max_message_size (self));
      break;




    case PROP_QUEUED_BYTES:
      g_value_set_uint64 (value, np_pipe_client_get_queued_bytes (self));
      break;

    case PROP_AUTO_RECONNECT:
      g_value_set_boolean (value, np_pipe_client_get_auto_reconnect (self));
      break;

    case PROP_CONNECTABLE:
      g_value_set_object (value, self->connectable);
      break;

    case PROP_TLS_DATABASE:
      g_value_take_object (value, np_pipe_client_dup_tls_database (self));
      break;

    case PROP_TLS_INTERACTION:
      g_value_take_object (value, np_pipe_client_dup_tls_interaction (self));
      break;

    case PROP_TLS_CERTIFICATE:
      g_value_take_object (value, np_pipe_client_dup_tls_certificate (self));
      break;

    case PROP_TLS_PIN:
      g_value_take_string (value, np_pipe_client_dup_tls_pin (self));
      break;

    case PROP_INSECURE_PLAINTEXT:
      g_value_set_boolean (value, np_pipe_client_get_insecure_plaintext (self));
      break;






    default:
      if (prop_id >= PROP_FIRST_LIMIT && prop_id < N_PROPS)
        g_value_set_uint (value, np_limits_get (self->limits, prop_id - PROP_FIRST_LIMIT));
      else
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
      /* Construct-only: nothing else sees the client yet. */
      self->name = g_value_dup_string (value);
      break;






    case PROP_AUTO_RECONNECT:
      np_pipe_client_set_auto_reconnect (self, g_value_get_boolean (value));
      break;

    case PROP_CONNECTABLE:
      /* Construct-only, and wins over a name. */
      self->connectable = g_value_dup_object (value);
      break;

    case PROP_TLS_DATABASE:
      np_pipe_client_set_tls_database (self, g_value_get_object (value));
      break;

    case PROP_TLS_INTERACTION:
      np_pipe_client_set_tls_interaction (self, g_value_get_object (value));
      break;

    case PROP_TLS_CERTIFICATE:
      np_pipe_client_set_tls_certificate (self, g_value_get_object (value));
      break;

    case PROP_TLS_PIN:
      np_pipe_client_set_tls_pin (self, g_value_get_string (value));
      break;

    case PROP_INSECURE_PLAINTEXT:
      np_pipe_client_set_insecure_plaintext (self, g_value_get_boolean (value));
      break;






    default:
      if (prop_id >= PROP_FIRST_LIMIT && prop_id < N_PROPS)
        np_pipe_client_set_limit (self, prop_id - PROP_FIRST_LIMIT, g_value_get_uint (value));
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
np_pipe_client_install_properties (GObjectClass *object_class)
{
  object_class->get_property = np_pipe_client_get_property;
  object_class->set_property = np_pipe_client_set_property;

  /**
   * NpPipeClient:connectable:
   *
   * The host and port of a server over TCP, when the client was made
   * with [ctor@Np.PipeClient.new_for_connectable] or a name
   * `tcp:HOST:PORT`; %NULL for a local pipe. Set at construction only.
   *
   * Since: 1.0
   */
  properties [PROP_CONNECTABLE] =
    g_param_spec_object ("connectable", NULL, NULL,
                         G_TYPE_SOCKET_CONNECTABLE,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:tls-database:
   *
   * The authorities a server's certificate is validated against over
   * TCP (see [func@Gio.TlsFileDatabase.new]); %NULL, the default, for the
   * system's trust store. Applies to the connections made afterwards.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL,
                         G_TYPE_TLS_DATABASE,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:tls-interaction:
   *
   * What asks the user during a TLS handshake over TCP (a password for
   * the client's key, say), or %NULL.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_INTERACTION] =
    g_param_spec_object ("tls-interaction", NULL, NULL,
                         G_TYPE_TLS_INTERACTION,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:tls-certificate:
   *
   * The client's own certificate, with its key, for a server over TCP
   * that asks for one ([property@Np.PipeServer:tls-authentication-mode]),
   * or %NULL.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL,
                         G_TYPE_TLS_CERTIFICATE,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:tls-pin:
   *
   * The SHA-256 fingerprint of the server's certificate, in hexadecimal
   * (colons between the bytes allowed, as `np-pipe fingerprint` prints
   * it), or %NULL. When set, the server's certificate must be that one:
   * it gets in even when it does not validate (a self-signed server),
   * and any other is refused with %NP_PIPE_ERROR_PERMISSION_DENIED even
   * when it validates. A value that is no fingerprint fails the connect
   * with %G_IO_ERROR_INVALID_ARGUMENT.
   *
   * Since: 1.0
   */
  properties [PROP_TLS_PIN] =
    g_param_spec_string ("tls-pin", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * NpPipeClient:insecure-plaintext:
   *
   * Whether to connect to a server over TCP without TLS, as one with
   * [property@Np.PipeServer:insecure-plaintext] speaks: no encryption,
   * no certificates, to measure what TLS costs. Connecting refuses it
   * with %NP_PIPE_ERROR_PERMISSION_DENIED unless the server's address is
   * a loopback one. Off by default.
   *
   * Since: 1.0
   */
  properties [PROP_INSECURE_PLAINTEXT] =
    g_param_spec_boolean ("insecure-plaintext", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

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
  properties [PROP_NAME] =
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
  properties [PROP_PATH] =
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
  properties [PROP_CONNECTED] =
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
  properties [PROP_PEER_MAX_MESSAGE_SIZE] =
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
   * seconds). A change applies to the next close, on an open connection
   * too.
   *
   * Since: 1.0
   */

  /**
   * NpPipeClient:request-timeout:
   *
   * How long, in milliseconds, a request waits for its reply
   * ([method@Np.PipeClient.request_async],
   * [method@Np.PipeClient.request_sync]); past it, the request fails with
   * %NP_PIPE_ERROR_TIMED_OUT and a reply that comes later is dropped. 0
   * waits for as long as it takes; at most `G_MAXUINT`. The default is
   * 25000 (25 seconds, as GDBus). A change applies to the next request,
   * on an open connection too.
   *
   * Since: 1.0
   */

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
  properties [PROP_QUEUED_BYTES] =
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
  properties [PROP_AUTO_RECONNECT] =
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


  g_object_class_install_properties (object_class, PROP_FIRST_LIMIT, properties);
  np_limits_install (object_class, PROP_FIRST_LIMIT, properties, NP_LIMIT_OF_CLIENT);
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
 * Returns: (nullable): the socket path, or %NULL when the name is invalid,
 *   and for a server over TCP
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
 * np_pipe_client_get_connection:
 * @self: a #NpPipeClient
 *
 * Gets the client's current connection: the [class@Np.PipeConnection]
 * the client sends through and receives from, the same object a server
 * hands out for each of its clients. Everything the client does on a
 * connection, it does through this one: its methods may be called
 * directly, and its own signals and properties (such as
 * [signal@Np.PipeConnection::queue-drained] and the server's
 * [method@Np.PipeConnection.get_peer_pid]) describe this connection
 * alone, where the client's describe whichever connection is current.
 *
 * Each connect, and each reconnect with
 * [property@Np.PipeClient:auto-reconnect], makes a new connection. Once
 * it has closed, the connection stays the client's current one until
 * the next connect, so that what it knew can still be read.
 *
 * Returns: (transfer full) (nullable): the connection, or %NULL before
 *   a connect succeeded, and while a connect is under way
 *
 * Since: 1.0
 */
NpPipeConnection *
np_pipe_client_get_connection (NpPipeClient *self)
{
  NpPipeConnection *connection = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  g_mutex_lock (&self->lock);
  /* Not one the server never accepted: a connect under way, or one
   * that failed. */
  if (self->connection != NULL && self->connection_accepted)
    connection = g_object_ref (self->connection);
  g_mutex_unlock (&self->lock);

  return connection;
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

  g_mutex_lock (&self->lock);
  connected = self->connected;
  g_mutex_unlock (&self->lock);

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

  return np_limits_get (self->limits, NP_LIMIT_MAX_MESSAGE_SIZE);
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

  np_pipe_client_set_limit (self, NP_LIMIT_MAX_MESSAGE_SIZE, max_message_size);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_QUEUED_BYTES);
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

  np_pipe_client_set_limit (self, NP_LIMIT_MAX_QUEUED_BYTES, max_queued_bytes);
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
  g_autoptr(NpPipeConnection) connection = NULL;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), 0);

  g_mutex_lock (&self->lock);
  if (self->connection != NULL)
    connection = g_object_ref (self->connection);
  g_mutex_unlock (&self->lock);

  return connection != NULL ? np_pipe_connection_get_peer_max_message_size (connection) : 0;
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

  return np_limits_get (self->limits, NP_LIMIT_CONNECT_TIMEOUT);
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

  np_pipe_client_set_limit (self, NP_LIMIT_CONNECT_TIMEOUT, timeout_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_CLOSE_TIMEOUT);
}

/**
 * np_pipe_client_set_close_timeout:
 * @self: a #NpPipeClient
 * @timeout_msec: how long closing may take to write what is queued, in
 *   milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeClient:close-timeout]. It applies to the next
 * close, on an open connection too.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_close_timeout (NpPipeClient *self,
                                  guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_limit (self, NP_LIMIT_CLOSE_TIMEOUT, timeout_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_REQUEST_TIMEOUT);
}

/**
 * np_pipe_client_set_request_timeout:
 * @self: a #NpPipeClient
 * @timeout_msec: how long a request waits for its reply, in
 *   milliseconds, 0 for no limit
 *
 * Sets [property@Np.PipeClient:request-timeout]. It applies to the
 * next request, on an open connection too.
 *
 * Since: 1.0
 */
void
np_pipe_client_set_request_timeout (NpPipeClient *self,
                                    guint         timeout_msec)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  np_pipe_client_set_limit (self, NP_LIMIT_REQUEST_TIMEOUT, timeout_msec);
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

  g_mutex_lock (&self->lock);
  auto_reconnect = self->auto_reconnect;
  g_mutex_unlock (&self->lock);

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

  g_mutex_lock (&self->lock);
  changed = self->auto_reconnect != !!auto_reconnect;
  self->auto_reconnect = !!auto_reconnect;
  g_mutex_unlock (&self->lock);

  if (!auto_reconnect)
    np_pipe_client_stop_auto_reconnect (self);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_AUTO_RECONNECT]);
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

  return np_limits_get (self->limits, NP_LIMIT_RECONNECT_INTERVAL);
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

  np_pipe_client_set_limit (self, NP_LIMIT_RECONNECT_INTERVAL, interval_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_RECONNECT_MAX_INTERVAL);
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

  np_pipe_client_set_limit (self, NP_LIMIT_RECONNECT_MAX_INTERVAL, interval_msec);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_FDS_PER_MESSAGE);
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

  np_pipe_client_set_limit (self, NP_LIMIT_MAX_FDS_PER_MESSAGE, max_fds);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_PENDING_REQUESTS);
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

  np_pipe_client_set_limit (self, NP_LIMIT_MAX_PENDING_REQUESTS, max_pending_requests);
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

  return np_limits_get (self->limits, NP_LIMIT_MAX_PENDING_REQUEST_BYTES);
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

  np_pipe_client_set_limit (self, NP_LIMIT_MAX_PENDING_REQUEST_BYTES, max_pending_request_bytes);
}

/**
 * np_pipe_client_get_connectable:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:connectable].
 *
 * Returns: (transfer none) (nullable): the server's host and port, or
 *   %NULL for a local pipe
 *
 * Since: 1.0
 */
GSocketConnectable *
np_pipe_client_get_connectable (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return self->connectable;
}

static gpointer
np_pipe_client_dup_object (NpPipeClient *self,
                           gpointer     *field)
{
  gpointer value;

  g_mutex_lock (&self->lock);
  value = *field != NULL ? g_object_ref (*field) : NULL;
  g_mutex_unlock (&self->lock);

  return value;
}

static void
np_pipe_client_set_object (NpPipeClient *self,
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

/**
 * np_pipe_client_dup_tls_database:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:tls-database].
 *
 * Returns: (transfer full) (nullable): the database, or %NULL for the
 *   system's
 *
 * Since: 1.0
 */
GTlsDatabase *
np_pipe_client_dup_tls_database (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return np_pipe_client_dup_object (self, (gpointer *) &self->tls_database);
}

/**
 * np_pipe_client_set_tls_database:
 * @self: a #NpPipeClient
 * @database: (nullable): the authorities to trust, or %NULL for the
 *   system's
 *
 * Sets [property@Np.PipeClient:tls-database].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_tls_database (NpPipeClient *self,
                                 GTlsDatabase *database)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (database == NULL || G_IS_TLS_DATABASE (database));

  np_pipe_client_set_object (self, (gpointer *) &self->tls_database, database, PROP_TLS_DATABASE);
}

/**
 * np_pipe_client_dup_tls_interaction:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:tls-interaction].
 *
 * Returns: (transfer full) (nullable): the interaction
 *
 * Since: 1.0
 */
GTlsInteraction *
np_pipe_client_dup_tls_interaction (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return np_pipe_client_dup_object (self, (gpointer *) &self->tls_interaction);
}

/**
 * np_pipe_client_set_tls_interaction:
 * @self: a #NpPipeClient
 * @interaction: (nullable): what asks the user, or %NULL
 *
 * Sets [property@Np.PipeClient:tls-interaction].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_tls_interaction (NpPipeClient    *self,
                                    GTlsInteraction *interaction)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (interaction == NULL || G_IS_TLS_INTERACTION (interaction));

  np_pipe_client_set_object (self, (gpointer *) &self->tls_interaction, interaction,
                             PROP_TLS_INTERACTION);
}

/**
 * np_pipe_client_dup_tls_certificate:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:tls-certificate].
 *
 * Returns: (transfer full) (nullable): the client's certificate
 *
 * Since: 1.0
 */
GTlsCertificate *
np_pipe_client_dup_tls_certificate (NpPipeClient *self)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  return np_pipe_client_dup_object (self, (gpointer *) &self->tls_certificate);
}

/**
 * np_pipe_client_set_tls_certificate:
 * @self: a #NpPipeClient
 * @certificate: (nullable): the client's certificate, with its key
 *
 * Sets [property@Np.PipeClient:tls-certificate].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_tls_certificate (NpPipeClient    *self,
                                    GTlsCertificate *certificate)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  np_pipe_client_set_object (self, (gpointer *) &self->tls_certificate, certificate,
                             PROP_TLS_CERTIFICATE);
}

/**
 * np_pipe_client_dup_tls_pin:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:tls-pin].
 *
 * Returns: (transfer full) (nullable): the pinned fingerprint, as it was
 *   set
 *
 * Since: 1.0
 */
char *
np_pipe_client_dup_tls_pin (NpPipeClient *self)
{
  char *pin;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), NULL);

  g_mutex_lock (&self->lock);
  pin = g_strdup (self->tls_pin);
  g_mutex_unlock (&self->lock);

  return pin;
}

/**
 * np_pipe_client_set_tls_pin:
 * @self: a #NpPipeClient
 * @pin: (nullable): the SHA-256 fingerprint of the server's certificate
 *
 * Sets [property@Np.PipeClient:tls-pin].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_tls_pin (NpPipeClient *self,
                            const char   *pin)
{
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  g_mutex_lock (&self->lock);
  changed = g_strcmp0 (self->tls_pin, pin) != 0;
  if (changed)
    {
      g_free (self->tls_pin);
      self->tls_pin = g_strdup (pin);
    }
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_TLS_PIN]);
}

/**
 * np_pipe_client_get_insecure_plaintext:
 * @self: a #NpPipeClient
 *
 * Gets [property@Np.PipeClient:insecure-plaintext].
 *
 * Returns: whether to connect over TCP without TLS
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_get_insecure_plaintext (NpPipeClient *self)
{
  gboolean value;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);

  g_mutex_lock (&self->lock);
  value = self->insecure_plaintext;
  g_mutex_unlock (&self->lock);

  return value;
}

/**
 * np_pipe_client_set_insecure_plaintext:
 * @self: a #NpPipeClient
 * @insecure_plaintext: whether to connect without TLS, over loopback only
 *
 * Sets [property@Np.PipeClient:insecure-plaintext].
 *
 * Since: 1.0
 */
void
np_pipe_client_set_insecure_plaintext (NpPipeClient *self,
                                       gboolean      insecure_plaintext)
{
  gboolean changed;

  g_return_if_fail (NP_IS_PIPE_CLIENT (self));

  g_mutex_lock (&self->lock);
  changed = self->insecure_plaintext != !!insecure_plaintext;
  self->insecure_plaintext = !!insecure_plaintext;
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_INSECURE_PLAINTEXT]);
}
