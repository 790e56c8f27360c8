/* np-server-watch-private.h: waiting for a server to appear under a name
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _NpServerWatch NpServerWatch;

/* The wait after an attempt that the server's socket appearing set off
 * and that failed all the same: a server binds its socket a moment
 * before it listens. */
#define NP_RETRY_SOON_MSEC 50

/* How many attempts a wait of the back-off may see before its end: set
 * off by the socket or lock file appearing, or retrying soon after one
 * of those. A starting server takes its lock, binds, then listens; a
 * server that makes its socket again and again without ever accepting
 * must not make its clients connect as often, so past these the hints
 * wait for the back-off, which goes on growing. */
#define NP_EARLY_ATTEMPTS_PER_WAIT 3

/* @from_monitor: the socket or its lock file changed (or, with
 * @catch_up, the socket was there once the watch began), rather than the
 * timer firing. */
typedef void (*NpServerWatchFunc) (gpointer data,
                                   gboolean from_monitor);

NpServerWatch *np_server_watch_new       (const char        *socket_path,
                                          gboolean           catch_up,
                                          GMainContext      *context,
                                          NpServerWatchFunc  func,
                                          gpointer           data,
                                          GDestroyNotify     destroy);
void           np_server_watch_set_timer (NpServerWatch     *self,
                                          guint              delay_msec);
void           np_server_watch_free      (NpServerWatch     *self);

guint          np_backoff_jitter         (guint              delay_msec);

/* The waits between attempts to reach a server: a back-off that doubles
 * up to a bound, cut short by a few early attempts per wait when the
 * server's socket shows up (NP_EARLY_ATTEMPTS_PER_WAIT). */
typedef struct
{
  guint delay;               /* the next whole wait, before jitter */
  guint early;               /* attempts made before the current wait ran out */
  guint soon : 1;            /* the server showed up since the last wait */
  guint timer_full : 1;      /* the timer runs a whole wait */
  guint early_attempt : 1;   /* the attempt under way is an early one */
} NpBackoff;

gboolean       np_backoff_fire           (NpBackoff         *self,
                                          gboolean           from_monitor);
void           np_backoff_attempt        (NpBackoff         *self,
                                          gboolean           from_monitor);
void           np_backoff_refund         (NpBackoff         *self,
                                          const GError      *error);
guint          np_backoff_next           (NpBackoff         *self,
                                          guint              interval,
                                          guint              max_delay);

G_END_DECLS
