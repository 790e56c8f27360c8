/* np-poller-gsource.c: a GSource for each watch and timer, for systems
 * without epoll
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gio/gio.h>

#include "np-poller-private.h"

/* Each watch is a GSource polling its descriptor, and each timer a
 * GSource with a ready time: GLib's own poll() and its passes over the
 * sources of a context cost each iteration a little for every watch,
 * idle or not. The sources may recurse: a callback that runs a main loop
 * of its own stops no other watch, nor its own. */

struct _NpPollerWatch
{
  GSource            source;
  GMainContext      *context;     /* until started */
  gpointer           tag;
  NpPollerWatchFunc  func;
  gpointer           data;
  GDestroyNotify     notify;
};

struct _NpPollerTimer
{
  GSource            source;
  NpPollerTimerFunc  func;
  gpointer           data;
  GDestroyNotify     notify;
};

static gboolean
np_poller_watch_dispatch (GSource     *source,
                          GSourceFunc  callback,
                          gpointer     user_data)
{
  NpPollerWatch *watch = (NpPollerWatch *) source;

  watch->func (watch, g_source_query_unix_fd (source, watch->tag), watch->data);

  return G_SOURCE_CONTINUE;
}

static void
np_poller_watch_finalize (GSource *source)
{
  NpPollerWatch *watch = (NpPollerWatch *) source;

  if (watch->notify != NULL)
    watch->notify (watch->data);
}

static GSourceFuncs np_poller_watch_funcs = {
  .dispatch = np_poller_watch_dispatch,
  .finalize = np_poller_watch_finalize,
};

NpPollerWatch *
np_poller_watch_new (GMainContext      *context,
                     int                fd,
                     GIOCondition       events,
                     const char        *name,
                     NpPollerWatchFunc  func,
                     gpointer           data,
                     GDestroyNotify     notify)
{
  NpPollerWatch *watch;

  watch = (NpPollerWatch *) g_source_new (&np_poller_watch_funcs, sizeof (NpPollerWatch));
  watch->context = g_main_context_ref (context);
  watch->func = func;
  watch->data = data;
  watch->notify = notify;
  g_source_set_static_name (&watch->source, name);
  /* Not blocked while dispatched: GLib would remove the descriptor from
   * the poll set and add it back, waking itself up, for every read. */
  g_source_set_can_recurse (&watch->source, TRUE);
  watch->tag = g_source_add_unix_fd (&watch->source, fd, events);

  return watch;
}

gboolean
np_poller_watch_start (NpPollerWatch  *watch,
                       GError        **error)
{
  GMainContext *context = g_atomic_pointer_exchange (&watch->context, NULL);

  if (context != NULL)
    {
      if (!g_source_is_destroyed (&watch->source))
        g_source_attach (&watch->source, context);
      g_main_context_unref (context);
    }

  return TRUE;
}

void
np_poller_watch_set_events (NpPollerWatch *watch,
                            GIOCondition   events)
{
  /* Wakes the context up when another thread runs it. */
  g_source_modify_unix_fd (&watch->source, watch->tag, events);
}

void
np_poller_watch_set_ready (NpPollerWatch *watch,
                           gboolean       ready)
{
  g_source_set_ready_time (&watch->source, ready ? 0 : -1);
}

void
np_poller_watch_destroy (NpPollerWatch *watch)
{
  GMainContext *context = g_atomic_pointer_exchange (&watch->context, NULL);

  g_source_destroy (&watch->source);
  if (context != NULL)
    g_main_context_unref (context);
  g_source_unref (&watch->source);
}

/* Timers */

static gboolean
np_poller_timer_dispatch (GSource     *source,
                          GSourceFunc  callback,
                          gpointer     user_data)
{
  NpPollerTimer *timer = (NpPollerTimer *) source;

  timer->func (timer, timer->data);

  return G_SOURCE_REMOVE;
}

static void
np_poller_timer_finalize (GSource *source)
{
  NpPollerTimer *timer = (NpPollerTimer *) source;

  if (timer->notify != NULL)
    timer->notify (timer->data);
}

static GSourceFuncs np_poller_timer_funcs = {
  .dispatch = np_poller_timer_dispatch,
  .finalize = np_poller_timer_finalize,
};

NpPollerTimer *
np_poller_timer_new (GMainContext      *context,
                     guint              msec,
                     const char        *name,
                     NpPollerTimerFunc  func,
                     gpointer           data,
                     GDestroyNotify     notify)
{
  NpPollerTimer *timer;

  timer = (NpPollerTimer *) g_source_new (&np_poller_timer_funcs, sizeof (NpPollerTimer));
  timer->func = func;
  timer->data = data;
  timer->notify = notify;
  g_source_set_static_name (&timer->source, name);
  g_source_set_can_recurse (&timer->source, TRUE);
  g_source_set_ready_time (&timer->source,
                           g_get_monotonic_time () + (gint64) msec * G_TIME_SPAN_MILLISECOND);
  g_source_attach (&timer->source, context);

  return timer;
}

void
np_poller_timer_destroy (NpPollerTimer *timer)
{
  g_source_destroy (&timer->source);
  g_source_unref (&timer->source);
}
