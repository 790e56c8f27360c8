/* np-pipe-client-reconnect.c: a client that comes back after its server
 * went, and holds what is sent meanwhile
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-frame-private.h"
#include "np-pipe-client-internal.h"

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
gboolean
np_pipe_client_may_hold_locked (NpPipeClient *self)
{
  return self->auto_reconnect && !self->connected &&
         (self->reconnecting || self->attempt != NULL);
}

gboolean
np_pipe_client_hold_locked (NpPipeClient  *self,
                            GBytes        *message,
                            GError       **error)
{
  gsize len = g_bytes_get_size (message);
  gsize framed = NP_FRAME_HEADER_SIZE + len;

  if (self->last_peer_max_message_size > 0 && len > self->last_peer_max_message_size)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                   _("Pipe “%s”: message of %zu bytes exceeds the limit of "
                     "%u bytes that the server accepts"),
                   self->name, len, self->last_peer_max_message_size);
      return FALSE;
    }

  if (self->max_queued_bytes > 0 && self->held_bytes + framed > self->max_queued_bytes)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                   _("Pipe “%s” is not connected: %zu bytes wait for the "
                     "reconnect, and %zu more would pass the limit of %u"),
                   self->name, self->held_bytes, len, self->max_queued_bytes);
      return FALSE;
    }

  g_queue_push_tail (&self->held, g_bytes_ref (message));
  self->held_bytes += framed;
  __atomic_store_n (&self->queued_bytes, self->held_bytes, __ATOMIC_RELAXED);

  return TRUE;
}

/* Drops what is held; returns how many messages. */
guint
np_pipe_client_drop_held_locked (NpPipeClient *self)
{
  guint n_dropped = self->held.length;

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

/* The client just became connected to self->stream: what was held goes
 * out first. */
void
np_pipe_client_release_held_locked (NpPipeClient *self)
{
  g_autoptr(GError) first_error = NULL;
  guint n_dropped = 0;
  GBytes *message;

  g_assert (self->connected && self->stream != NULL);

  while ((message = g_queue_pop_head (&self->held)) != NULL)
    {
      g_autoptr(GError) error = NULL;

      /* Only a server that came back with a smaller limit refuses. */
      if (!np_stream_send_held_locked (self->stream, message, &error))
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
NpServerWatch *
np_pipe_client_stop_reconnecting_locked (NpPipeClient *self)
{
  self->reconnecting = FALSE;
  self->reconnect_soon = FALSE;
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

  /* As for a connect (np_pipe_client_retry_connect()): an early attempt
   * that found no server does not count against the few a wait allows. */
  g_mutex_lock (self->lock);
  if (self->reconnect_early_attempt && self->reconnect_early > 0 &&
      g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
    self->reconnect_early--;
  self->reconnect_early_attempt = FALSE;
  g_mutex_unlock (self->lock);

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
  gboolean early;
  gboolean go;

  if (self == NULL)
    return;

  g_mutex_lock (self->lock);
  if (self->reconnecting && !self->auto_reconnect)
    {
      stopped = np_pipe_client_stop_reconnecting_locked (self);
      np_pipe_client_drop_held_locked (self);
    }
  /* A whole back-off passed: hints may cut the next one short again. */
  if (!from_monitor && self->reconnect_timer_full)
    self->reconnect_early = 0;
  early = from_monitor || !self->reconnect_timer_full;
  go = self->reconnecting && !self->connected && self->attempt == NULL &&
       (!early || self->reconnect_early < NP_EARLY_ATTEMPTS_PER_WAIT);
  if (from_monitor && self->reconnect_early < NP_EARLY_ATTEMPTS_PER_WAIT)
    self->reconnect_soon = TRUE;
  if (go && early)
    self->reconnect_early++;
  if (go)
    self->reconnect_early_attempt = early;
  g_mutex_unlock (self->lock);

  g_clear_pointer (&stopped, np_server_watch_free);

  if (!go)
    return;

  /* The attempt, and its end, belong to the client's context. */
  g_main_context_push_thread_default (self->context);
  np_pipe_client_connect_internal (self, NULL, FALSE, np_pipe_client_reconnected, NULL);
  g_main_context_pop_thread_default (self->context);

  /* Known, so that turning auto-reconnect off gives it up. */
  g_mutex_lock (self->lock);
  if (self->reconnecting)
    g_set_object (&self->reconnect_attempt, self->attempt);
  g_mutex_unlock (self->lock);
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
void
np_pipe_client_stop_auto_reconnect (NpPipeClient *self)
{
  g_autoptr(GCancellable) attempt = NULL;
  NpServerWatch *watch = NULL;
  guint n_dropped = 0;

  g_mutex_lock (self->lock);
  if (self->auto_reconnect || !self->reconnecting)
    {
      g_mutex_unlock (self->lock);
      return;
    }
  if (self->attempt != NULL && self->attempt == self->reconnect_attempt)
    attempt = g_object_ref (self->attempt);
  watch = np_pipe_client_stop_reconnecting_locked (self);
  n_dropped = np_pipe_client_drop_held_locked (self);
  g_mutex_unlock (self->lock);

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
void
np_pipe_client_reconnect_later (NpPipeClient *self)
{
  NpServerWatch *watch = NULL;

  g_mutex_lock (self->lock);
  if (self->reconnecting && self->reconnect_watch == NULL)
    {
      g_mutex_unlock (self->lock);
      /* The server just went, or refused us: a socket there now is no
       * news, and the back-off decides when to try it. */
      watch = np_server_watch_new (self->path, FALSE, self->context, np_pipe_client_reconnect_fire,
                                   np_weak_ref_new (self), np_weak_ref_free);
      g_mutex_lock (self->lock);
      if (self->reconnecting && self->reconnect_watch == NULL)
        self->reconnect_watch = g_steal_pointer (&watch);
    }

  if (self->reconnecting && self->reconnect_watch != NULL)
    {
      guint max = MAX (self->reconnect_interval, self->reconnect_max_interval);
      guint delay;

      /* The server showed up: it may be about to listen. That does not
       * start the back-off afresh: only a connection that lasted does. */
      if (self->reconnect_soon && self->reconnect_early < NP_EARLY_ATTEMPTS_PER_WAIT)
        {
          delay = np_backoff_jitter (MIN (self->reconnect_interval, NP_RETRY_SOON_MSEC));
          self->reconnect_timer_full = FALSE;
        }
      else
        {
          delay = np_backoff_jitter (self->reconnect_delay);
          self->reconnect_delay = MIN ((guint64) self->reconnect_delay * 2, max);
          self->reconnect_timer_full = TRUE;
        }
      self->reconnect_soon = FALSE;
      np_server_watch_set_timer (self->reconnect_watch, delay);
    }
  g_mutex_unlock (self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
}
