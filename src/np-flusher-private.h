/* np-flusher-private.h: writes what streams queued, once per main loop
 * iteration, for every stream of a main context
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _NpFlusher NpFlusher;
typedef struct _NpFlushLink NpFlushLink;

typedef struct
{
  /* Writes without reporting anything to anyone, from the context's
   * prepare phase. Returns %FALSE when the item needs a dispatch. */
  gboolean (*prepare)  (NpFlushLink *link);
  /* Called from the context's dispatch phase, where reporting is safe. */
  void     (*dispatch) (NpFlushLink *link);
  /* An armed link holds a reference on what embeds it. */
  void     (*ref)      (NpFlushLink *link);
  void     (*unref)    (NpFlushLink *link);
} NpFlushLinkFuncs;

/* Embedded in what the flusher serves; the fields are the flusher's,
 * guarded by its lock. */
struct _NpFlushLink
{
  const NpFlushLinkFuncs *funcs;
  guint                   armed : 1;
  guint                   dispatch : 1;
};

NpFlusher *np_flusher_acquire (GMainContext *context);
void       np_flusher_release (NpFlusher    *flusher);
gboolean   np_flusher_context_is_running
                              (NpFlusher    *flusher,
                               guint         msec);
void       np_flusher_arm     (NpFlusher    *flusher,
                               NpFlushLink  *link,
                               gboolean      dispatch);

G_END_DECLS
