/* np-poller-private.h: waiting on many descriptors and deadlines of one
 * main context, at a cost that does not grow with the idle ones
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A watch is a descriptor and what to call when it is ready; a timer is
 * a deadline and what to call when it passes. Both are dispatched by
 * their main context, like a GSource, and behave like one: created
 * unstarted, destroyed once by their creator (which drops the creator's
 * reference), and never called again once np_poller_*_destroy() has
 * returned, except by a dispatch that had begun already, as a GSource
 * destroyed from another thread may still be in its dispatch function.
 * A callback therefore checks, under its own lock, that the watch or
 * timer is still the one it keeps.
 *
 * Two implementations, chosen at build time (meson option "poller"):
 * np-poller-epoll.c gives each main context one GSource, which polls an
 * epoll instance holding every watch but the first few, so that an idle
 * watch costs a main loop iteration nothing, and keeps every deadline of
 * the context in one ordered sequence, armed as one ready time;
 * np-poller-gsource.c makes each watch and timer a GSource of its own,
 * for systems without epoll.
 *
 * Both are re-entrant: a callback may run a main loop of its own, in
 * which every other watch and timer of the context goes on being
 * dispatched, and may destroy any watch or timer, its own included.
 * Every function may be called from any thread. No lock of the poller is
 * held while a callback runs. */

/* With epoll, the watches that GLib polls itself, with a descriptor
 * each of the poller's source (the first started, while they last): a
 * listener and a few connections, whose wake-ups then cost no
 * epoll_wait(). Every other watch costs an iteration nothing. */
#define NP_POLLER_DIRECT 4

typedef struct _NpPollerWatch NpPollerWatch;
typedef struct _NpPollerTimer NpPollerTimer;

/* @revents: what the descriptor is ready for; 0 when the watch was only
 * made ready (np_poller_watch_set_ready()). */
typedef void (*NpPollerWatchFunc) (NpPollerWatch *watch,
                                   GIOCondition   revents,
                                   gpointer       data);
typedef void (*NpPollerTimerFunc) (NpPollerTimer *timer,
                                   gpointer       data);

/* @name must be a static string. @notify frees @data once the last
 * reference, the creator's or a dispatch's, is gone. */
NpPollerWatch *np_poller_watch_new        (GMainContext      *context,
                                           int                fd,
                                           GIOCondition       events,
                                           const char        *name,
                                           NpPollerWatchFunc  func,
                                           gpointer           data,
                                           GDestroyNotify     notify);
gboolean       np_poller_watch_start      (NpPollerWatch     *watch,
                                           GError           **error);
void           np_poller_watch_set_events (NpPollerWatch     *watch,
                                           GIOCondition       events);
void           np_poller_watch_set_ready  (NpPollerWatch     *watch,
                                           gboolean           ready);
void           np_poller_watch_destroy    (NpPollerWatch     *watch);

/* Started at once: calls @func once, @msec milliseconds from now. */
NpPollerTimer *np_poller_timer_new        (GMainContext      *context,
                                           guint              msec,
                                           const char        *name,
                                           NpPollerTimerFunc  func,
                                           gpointer           data,
                                           GDestroyNotify     notify);
void           np_poller_timer_destroy    (NpPollerTimer     *timer);

G_END_DECLS
