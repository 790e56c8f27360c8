/* np-server-watch.c: waiting for a server to appear under a name
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-error.h"
#include "np-server-watch-private.h"

/* A server that starts takes its lock file, then binds its socket: both
 * show in the socket directory. A monitor of that directory says when to
 * try again, so that a client waiting for a server neither polls in a
 * tight loop nor sleeps past its start; the timer is the back-off, and
 * the only way where no monitor can be had (no inotify, a directory that
 * does not exist yet and cannot be watched). While the directory does
 * not exist (no server ever ran), its parent is watched for it to be
 * created, and the directory from then on; a directory removed while
 * watched is waited for again the same way. A socket that appears is
 * only a hint: whoever is called tries to connect, and a stale socket
 * (no server holds its lock) refuses the connection.
 *
 * Threads: the watch lives in @context, where it calls @func. It is
 * created, and its timer set, from that context; it may be freed from
 * any thread, which stops it at once and releases it in the context. */

struct _NpServerWatch
{
  GMainContext      *context;
  char              *dir_path;
  char              *dir_name;
  char              *socket_name;
  char              *lock_name;
  GFileMonitor      *monitor;
  gboolean           on_parent;  /* watching for the directory to appear */
  GSource           *timer;
  GSource           *look;       /* a look for what came before the watch */
  NpServerWatchFunc  func;
  gpointer           data;
  GDestroyNotify     destroy;
  gint               stopped;    /* atomic */
  /* Only the context's owner reads these. */
  gboolean           calling;
  gboolean           release_pending;
};

static gboolean np_server_watch_release (gpointer data);

/* The function may free the watch: that waits until it returns. */
static void
np_server_watch_call (NpServerWatch *self,
                      gboolean       from_monitor)
{
  if (g_atomic_int_get (&self->stopped))
    return;

  self->calling = TRUE;
  self->func (self->data, from_monitor);
  self->calling = FALSE;

  if (self->release_pending)
    np_server_watch_release (self);
}

guint
np_backoff_jitter (guint delay_msec)
{
  /* ±20 %: many clients of one server do not come back in lock-step. */
  return MAX (1, (guint) (delay_msec * g_random_double_range (0.8, 1.2)));
}

/* The watch fired: a whole wait ran out, or the server's socket showed
 * up (@from_monitor). Returns whether an attempt may be made now: not
 * when the early attempts of this wait are used up. */
gboolean
np_backoff_fire (NpBackoff *self,
                 gboolean   from_monitor)
{
  /* A whole wait passed: hints may cut the next one short again. */
  if (!from_monitor && self->timer_full)
    self->early = 0;
  if ((from_monitor || !self->timer_full) && self->early >= NP_EARLY_ATTEMPTS_PER_WAIT)
    return FALSE;

  self->soon = self->soon || from_monitor;
  return TRUE;
}

/* An attempt goes, as np_backoff_fire() allowed. */
void
np_backoff_attempt (NpBackoff *self,
                    gboolean   from_monitor)
{
  self->early_attempt = from_monitor || !self->timer_full;
  if (self->early_attempt)
    self->early++;
}

/* The attempt failed with @error: one that found no server (a hint from
 * the directory before the socket listened: its lock file, the directory
 * made anew) reached nobody, and does not use up the early attempts the
 * socket's own appearance needs. */
void
np_backoff_refund (NpBackoff    *self,
                   const GError *error)
{
  if (self->early_attempt && self->early > 0 &&
      g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
    self->early--;
  self->early_attempt = FALSE;
}

/* The next wait, in ms: short when the server showed up, as it may be
 * about to listen (which does not start the back-off afresh); otherwise
 * the back-off, which doubles up to @max_delay. */
guint
np_backoff_next (NpBackoff *self,
                 guint      interval,
                 guint      max_delay)
{
  guint delay;

  if (self->soon && self->early < NP_EARLY_ATTEMPTS_PER_WAIT)
    {
      delay = np_backoff_jitter (MIN (interval, NP_RETRY_SOON_MSEC));
      self->timer_full = FALSE;
    }
  else
    {
      delay = np_backoff_jitter (self->delay);
      self->delay = MIN ((guint64) self->delay * 2, max_delay);
      self->timer_full = TRUE;
    }
  self->soon = FALSE;

  return delay;
}

static void np_server_watch_monitor (NpServerWatch *self);

static void
np_server_watch_changed (GFileMonitor      *monitor,
                         GFile             *file,
                         GFile             *other_file,
                         GFileMonitorEvent  event,
                         gpointer           data)
{
  NpServerWatch *self = data;
  g_autofree char *basename = NULL;

  if (g_atomic_int_get (&self->stopped))
    return;

  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_CHANGED:
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_RENAMED:
      break;

    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
    case G_FILE_MONITOR_EVENT_UNMOUNTED:
      {
        g_autofree char *path = g_file_get_path (file);

        /* The directory itself went: a monitor of it would never report
         * again, not even once a directory of that name is made anew.
         * It may be there again already (made anew before this event
         * came): then watch the new one, and look once, for what it got
         * before the watch did. */
        if (self->on_parent || g_strcmp0 (path, self->dir_path) != 0)
          return;

        np_server_watch_monitor (self);
        if (!self->on_parent)
          np_server_watch_call (self, TRUE);
      }
      return;

    default:
      return;
    }

  /* A rename names its new file second. */
  if (event == G_FILE_MONITOR_EVENT_RENAMED && other_file != NULL)
    file = other_file;
  basename = g_file_get_basename (file);

  if (self->on_parent)
    {
      if (g_strcmp0 (basename, self->dir_name) != 0)
        return;

      /* The directory appeared: watch it instead, and look once, for
       * what it got before the watch did. */
      np_server_watch_monitor (self);
      np_server_watch_call (self, TRUE);
      return;
    }

  if (g_strcmp0 (basename, self->socket_name) != 0 && g_strcmp0 (basename, self->lock_name) != 0)
    return;

  np_server_watch_call (self, TRUE);
}

static gboolean
np_server_watch_look_cb (gpointer data)
{
  NpServerWatch *self = data;

  g_clear_pointer (&self->look, g_source_unref);
  np_server_watch_call (self, TRUE);

  return G_SOURCE_REMOVE;
}

/* What came between the last look and the watch, the watch never hears
 * of: a directory made before it watched the parent for it, a server
 * that made its socket before it watched the directory. Once watching,
 * it looks for them, reporting from the context as a change would. */
static void
np_server_watch_catch_up (NpServerWatch *self)
{
  g_autofree char *socket_path = NULL;

  if (self->on_parent && g_file_test (self->dir_path, G_FILE_TEST_IS_DIR))
    np_server_watch_monitor (self);

  socket_path = g_build_filename (self->dir_path, self->socket_name, NULL);
  if (self->on_parent || self->look != NULL || !g_file_test (socket_path, G_FILE_TEST_EXISTS))
    return;

  self->look = g_idle_source_new ();
  g_source_set_static_name (self->look, "[np] look for a server");
  g_source_set_callback (self->look, np_server_watch_look_cb, self, NULL);
  g_source_attach (self->look, self->context);
}

static gboolean
np_server_watch_timer_cb (gpointer data)
{
  NpServerWatch *self = data;

  g_clear_pointer (&self->timer, g_source_unref);
  np_server_watch_call (self, FALSE);

  return G_SOURCE_REMOVE;
}

static void
np_server_watch_drop_monitor (NpServerWatch *self)
{
  if (self->monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      g_file_monitor_cancel (self->monitor);
      g_clear_object (&self->monitor);
    }
}

/* Watches the socket directory, or its parent while it does not exist. */
static void
np_server_watch_monitor (NpServerWatch *self)
{
  g_autofree char *watched = NULL;
  g_autoptr(GFile) dir = NULL;
  g_autoptr(GError) error = NULL;

  np_server_watch_drop_monitor (self);

  self->on_parent = !g_file_test (self->dir_path, G_FILE_TEST_IS_DIR);
  watched = self->on_parent ? g_path_get_dirname (self->dir_path) : g_strdup (self->dir_path);
  dir = g_file_new_for_path (watched);

  /* The monitor reports in the thread-default context of its creator. */
  if (g_main_context_acquire (self->context))
    {
      g_main_context_push_thread_default (self->context);
      self->monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
      g_main_context_pop_thread_default (self->context);
      g_main_context_release (self->context);
    }

  if (self->monitor != NULL)
    g_signal_connect (self->monitor, "changed", G_CALLBACK (np_server_watch_changed), self);
  else if (error != NULL)
    g_debug ("Cannot watch “%s”, waiting with a back-off only: %s", watched, error->message);
}

NpServerWatch *
np_server_watch_new (const char        *socket_path,
                     gboolean           catch_up,
                     GMainContext      *context,
                     NpServerWatchFunc  func,
                     gpointer           data,
                     GDestroyNotify     destroy)
{
  NpServerWatch *self = g_new0 (NpServerWatch, 1);

  self->context = g_main_context_ref (context);
  self->func = func;
  self->data = data;
  self->destroy = destroy;

  /* A server over TCP has no socket file to watch for: only the timer
   * tells when to try again. */
  if (socket_path == NULL)
    return self;

  self->dir_path = g_path_get_dirname (socket_path);
  self->dir_name = g_path_get_basename (self->dir_path);
  self->socket_name = g_path_get_basename (socket_path);
  self->lock_name = g_strconcat (self->socket_name, ".lock", NULL);

  np_server_watch_monitor (self);
  if (catch_up)
    np_server_watch_catch_up (self);

  return self;
}

/* Calls the function once @delay_msec have passed, unless the watch is
 * set again or freed before. */
void
np_server_watch_set_timer (NpServerWatch *self,
                           guint          delay_msec)
{
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }

  self->timer = g_timeout_source_new (delay_msec);
  g_source_set_static_name (self->timer, "[np] wait for a server");
  g_source_set_callback (self->timer, np_server_watch_timer_cb, self, NULL);
  g_source_attach (self->timer, self->context);
}

static gboolean
np_server_watch_release (gpointer data)
{
  NpServerWatch *self = data;

  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (self->look != NULL)
    {
      g_source_destroy (self->look);
      g_clear_pointer (&self->look, g_source_unref);
    }
  np_server_watch_drop_monitor (self);
  if (self->destroy != NULL)
    self->destroy (self->data);

  g_main_context_unref (self->context);
  g_free (self->dir_path);
  g_free (self->dir_name);
  g_free (self->socket_name);
  g_free (self->lock_name);
  g_free (self);

  return G_SOURCE_REMOVE;
}

void
np_server_watch_free (NpServerWatch *self)
{
  g_atomic_int_set (&self->stopped, TRUE);

  if (g_main_context_is_owner (self->context) && self->calling)
    {
      self->release_pending = TRUE;
      return;
    }

  /* What the watch owns is used only in its context: released there, at
   * once when this thread runs it. */
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, np_server_watch_release,
                              self, NULL);
}
