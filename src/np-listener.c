/* np-listener.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>

#include "np-listener-private.h"
#include "np-lock-private.h"
#include "np-poller-private.h"

/* Connections taken per dispatch before the other sources get a turn. */
#define NP_ACCEPT_BUDGET     64
/* Out of descriptors: how long to wait before trying again, at most,
 * when no connection closes meanwhile. */
#define NP_PAUSE_FIRST_MSEC  50
#define NP_PAUSE_MAX_MSEC    1000

/* Accepts connections from the server's main context, whose poller
 * watches the socket beside the connections. It stops polling the
 * socket when the process runs out of descriptors (EMFILE, ENFILE),
 * where GSocketService would spin on the error, and starts again when a
 * connection closes or after a back-off.
 *
 * The owner is held only while a connection is handed to it, and may be
 * let go of from any thread by np_listener_close(). */
struct _NpListener
{
  gatomicrefcount     ref_count;
  GMutex              lock;
  GSocket            *socket;
  GMainContext       *context;
  char               *name;
  char               *path;       /* where it listens, NULL when unnamed */
  NpListenerIncoming  incoming;

  /* Guarded by the lock. */
  GObject            *owner;      /* NULL once closed */
  NpPollerWatch      *watch;      /* NULL once closed */
  NpPollerTimer      *resume;     /* while paused */
  guint               pause_msec;
  guint               warned : 1;
};

static void np_listener_accept_cb (NpPollerWatch *watch,
                                   GIOCondition   revents,
                                   gpointer       data);

static NpListener *
np_listener_ref (NpListener *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

static void
np_listener_unref (gpointer data)
{
  NpListener *self = data;

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_assert (self->owner == NULL && self->watch == NULL && self->resume == NULL);

  /* The last user is gone: no dispatch can be using the socket. */
  g_socket_close (self->socket, NULL);
  g_object_unref (self->socket);
  g_main_context_unref (self->context);
  g_free (self->name);
  g_free (self->path);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static void
np_listener_clear_locked (NpListener *self)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (self->watch != NULL)
    np_poller_watch_destroy (g_steal_pointer (&self->watch));
  if (self->resume != NULL)
    np_poller_timer_destroy (g_steal_pointer (&self->resume));
}

/* Polls the socket again, after a pause. */
static void
np_listener_unpause_locked (NpListener *self)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (self->resume == NULL)
    return;

  np_poller_timer_destroy (g_steal_pointer (&self->resume));
  if (self->watch != NULL)
    np_poller_watch_set_events (self->watch, G_IO_IN);
}

static void
np_listener_resume_cb (NpPollerTimer *timer,
                       gpointer       data)
{
  NpListener *self = data;

  g_mutex_lock (&self->lock);
  if (self->resume == timer)
    np_listener_unpause_locked (self);
  g_mutex_unlock (&self->lock);
}

/* No descriptor is left for a new connection: stop polling the socket,
 * which would stay readable, until one comes free. The watch stays,
 * waiting for nothing: the context's poller goes on without a
 * descriptor of its own to make. */
static void
np_listener_pause_locked (NpListener *self,
                          int         errsv)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (!self->warned)
    {
      g_warning ("Pipe “%s” stops accepting connections for a while: %s. It goes on when "
                 "a connection closes; raise the limit (ulimit -n) or lower "
                 "max-connections to keep this from happening.",
                 self->name, g_strerror (errsv));
      self->warned = TRUE;
    }

  np_poller_watch_set_events (self->watch, 0);

  self->pause_msec = self->pause_msec == 0 ? NP_PAUSE_FIRST_MSEC
                                           : MIN (self->pause_msec * 2, NP_PAUSE_MAX_MSEC);
  if (self->resume != NULL)
    np_poller_timer_destroy (g_steal_pointer (&self->resume));
  self->resume = np_poller_timer_new (self->context, self->pause_msec,
                                      "[np] pipe accept back-off", np_listener_resume_cb,
                                      np_listener_ref (self), np_listener_unref);
}

static void
np_listener_accept_cb (NpPollerWatch *watch,
                       GIOCondition   revents,
                       gpointer       data)
{
  NpListener *self = data;
  GObject *owner;

  g_mutex_lock (&self->lock);
  owner = self->owner != NULL && self->watch == watch ? g_object_ref (self->owner) : NULL;
  g_mutex_unlock (&self->lock);

  if (owner == NULL)
    return;

  for (guint i = 0; i < NP_ACCEPT_BUDGET; i++)
    {
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GSocket) peer = NULL;
      int fd;

      fd = accept4 (g_socket_get_fd (self->socket), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0)
        {
          int errsv = errno;

          if (errsv == EINTR || errsv == ECONNABORTED)
            continue;

          if (errsv == EMFILE || errsv == ENFILE || errsv == ENOBUFS || errsv == ENOMEM)
            {
              g_mutex_lock (&self->lock);
              if (self->watch == watch && self->resume == NULL)
                np_listener_pause_locked (self, errsv);
              g_mutex_unlock (&self->lock);
            }
          else if (errsv != EAGAIN && errsv != EWOULDBLOCK)
            g_debug ("Pipe “%s”: accepting a connection failed: %s",
                     self->name, g_strerror (errsv));
          break;
        }

      peer = g_socket_new_from_fd (fd, NULL);
      if (peer == NULL)
        {
          close (fd);
          continue;
        }

      g_mutex_lock (&self->lock);
      self->pause_msec = 0;
      g_mutex_unlock (&self->lock);

      connection = g_socket_connection_factory_create_connection (peer);
      self->incoming (owner, connection);

      g_mutex_lock (&self->lock);
      if (self->owner == NULL)
        i = NP_ACCEPT_BUDGET;
      g_mutex_unlock (&self->lock);
    }

  g_object_unref (owner);
}

/* The servers of this process, by the path they listen on: a client of
 * this process that blocks until its server answers must not wait for a
 * server that only the blocking thread would run. */
G_LOCK_DEFINE_STATIC (listening);
static GHashTable *listening;   /* path → NpListener, not a reference */

static char *
np_listener_socket_path (GSocket *socket)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, NULL);

  if (G_IS_INET_SOCKET_ADDRESS (address))
    return np_listener_key_for_port (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));

  if (!G_IS_UNIX_SOCKET_ADDRESS (address) ||
      g_unix_socket_address_get_address_type (G_UNIX_SOCKET_ADDRESS (address)) != G_UNIX_SOCKET_ADDRESS_PATH)
    return NULL;

  return g_strdup (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address)));
}

/* What a listener on a TCP port is known by, for
 * np_listener_lookup_context(). */
char *
np_listener_key_for_port (guint16 port)
{
  return g_strdup_printf ("tcp:%u", port);
}

/* The main context of the server of this process that listens on @path
 * (or a TCP port: np_listener_key_for_port()),
 * with a reference, or NULL when none does. */
GMainContext *
np_listener_lookup_context (const char *path)
{
  GMainContext *context = NULL;
  NpListener *listener;

  G_LOCK (listening);
  listener = listening != NULL ? g_hash_table_lookup (listening, path) : NULL;
  if (listener != NULL)
    context = g_main_context_ref (listener->context);
  G_UNLOCK (listening);

  return context;
}

/* Accepts on @socket, a listening socket, from @context, handing each
 * connection to @incoming. Fails when the context's poller cannot take
 * the socket. */
NpListener *
np_listener_new (GSocket             *socket,
                 GMainContext        *context,
                 GObject             *owner,
                 NpListenerIncoming   incoming,
                 const char          *name,
                 GError             **error)
{
  NpListener *self = g_new0 (NpListener, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  self->socket = g_object_ref (socket);
  self->context = g_main_context_ref (context);
  self->owner = owner;
  self->incoming = incoming;
  self->name = g_strdup (name);
  self->path = np_listener_socket_path (socket);

  if (self->path != NULL)
    {
      G_LOCK (listening);
      if (listening == NULL)
        listening = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (listening, self->path, self);
      G_UNLOCK (listening);
    }

  /* Fails when the poller cannot take the socket: the process has no
   * descriptor left for the context's epoll instance. */
  self->watch = np_poller_watch_new (self->context, g_socket_get_fd (socket), G_IO_IN,
                                     "[np] pipe accept", np_listener_accept_cb,
                                     np_listener_ref (self), np_listener_unref);
  if (!np_poller_watch_start (self->watch, error))
    {
      np_listener_close (self);
      return NULL;
    }

  return self;
}

/* A descriptor came free: accept again at once if paused. */
void
np_listener_resume (NpListener *self)
{
  g_mutex_lock (&self->lock);
  np_listener_unpause_locked (self);
  g_mutex_unlock (&self->lock);
}

/* Stops accepting, lets go of the owner, and drops the caller's
 * reference; the socket closes once no dispatch uses it. */
void
np_listener_close (NpListener *self)
{
  if (self->path != NULL)
    {
      G_LOCK (listening);
      if (g_hash_table_lookup (listening, self->path) == self)
        g_hash_table_remove (listening, self->path);
      G_UNLOCK (listening);
    }

  g_mutex_lock (&self->lock);
  self->owner = NULL;
  np_listener_clear_locked (self);
  g_mutex_unlock (&self->lock);

  np_listener_unref (self);
}
