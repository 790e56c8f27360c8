/* np-flusher.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-flusher-private.h"
#include "np-lock-private.h"

/* One per main context, shared by its streams: what they queue goes out
 * in the context's next prepare phase, before it polls, so that a burst
 * of sends costs one vectored write and no extra loop iteration. Links
 * whose flush must report something (a completed flush, the end of a
 * close) are dispatched instead.
 *
 * Links may be armed from any thread. The flusher's lock is never held
 * while calling into a link, so a link may take its own lock and arm
 * itself again from there. */
struct _NpFlusher
{
  GSource       source;
  GMainContext *context;
  GMutex        lock;
  /* Of NpFlushLink, each holding a reference. A link being handled is in
   * neither, and may be armed again meanwhile: it then goes back in. */
  GQueue        pending;    /* to write in prepare */
  GQueue        ready;      /* to dispatch */
  guint         n_users;    /* guarded by the flushers lock */
  gint64        last_prepare; /* when a thread last iterated the context; atomic */
  GThread      *last_thread;  /* which thread that was; atomic */
};

static void
np_flusher_push_locked (NpFlusher   *self,
                        NpFlushLink *link,
                        gboolean     dispatch)
{
  NP_ENSURE_LOCKED (&self->lock);

  link->armed = TRUE;
  link->dispatch = dispatch;
  g_queue_push_tail (dispatch ? &self->ready : &self->pending, link);
}

static void
np_flusher_unlink_locked (NpFlusher   *self,
                          NpFlushLink *link)
{
  NP_ENSURE_LOCKED (&self->lock);

  g_assert (link->armed);

  g_queue_remove (link->dispatch ? &self->ready : &self->pending, link);
  link->armed = FALSE;
}

/* Takes every link of @queue, disarmed: arming one again while it is
 * handled queues it anew. */
static GQueue
np_flusher_steal (NpFlusher *self,
                  GQueue    *queue)
{
  GQueue stolen;

  g_mutex_lock (&self->lock);
  stolen = *queue;
  g_queue_init (queue);
  for (GList *l = stolen.head; l != NULL; l = l->next)
    ((NpFlushLink *) l->data)->armed = FALSE;
  g_mutex_unlock (&self->lock);

  return stolen;
}

static gboolean
np_flusher_has_work (NpFlusher *self)
{
  gboolean ret;

  g_mutex_lock (&self->lock);
  ret = self->ready.length > 0 || self->pending.length > 0;
  g_mutex_unlock (&self->lock);

  return ret;
}

static gboolean
np_flusher_prepare (GSource *source,
                    int     *timeout)
{
  NpFlusher *self = (NpFlusher *) source;
  GQueue pending = np_flusher_steal (self, &self->pending);
  NpFlushLink *link;

  *timeout = -1;
  /* The iteration's cached time: no clock read. */
  __atomic_store_n (&self->last_prepare, g_source_get_time (source), __ATOMIC_RELAXED);
  g_atomic_pointer_set (&self->last_thread, g_thread_self ());

  while ((link = g_queue_pop_head (&pending)) != NULL)
    {
      if (!link->funcs->prepare (link))
        np_flusher_arm (self, link, TRUE);
      link->funcs->unref (link);
    }

  return np_flusher_has_work (self);
}

static gboolean
np_flusher_check (GSource *source)
{
  return np_flusher_has_work ((NpFlusher *) source);
}

static gboolean
np_flusher_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  NpFlusher *self = (NpFlusher *) source;
  GQueue ready = np_flusher_steal (self, &self->ready);
  NpFlushLink *link;

  while ((link = g_queue_pop_head (&ready)) != NULL)
    {
      link->funcs->dispatch (link);
      link->funcs->unref (link);
    }

  return G_SOURCE_CONTINUE;
}

static void
np_flusher_finalize (GSource *source)
{
  NpFlusher *self = (NpFlusher *) source;
  NpFlushLink *link;

  /* Links armed after the last user released the flusher. */
  while ((link = g_queue_pop_head (&self->pending)) != NULL ||
         (link = g_queue_pop_head (&self->ready)) != NULL)
    link->funcs->unref (link);

  g_mutex_clear (&self->lock);
}

static GSourceFuncs np_flusher_funcs = {
  .prepare = np_flusher_prepare,
  .check = np_flusher_check,
  .dispatch = np_flusher_dispatch,
  .finalize = np_flusher_finalize,
};

G_LOCK_DEFINE_STATIC (flushers);
static GHashTable *flushers;   /* GMainContext → NpFlusher */

/* Whether another thread than the caller iterated the flusher's
 * context in the last @msec milliseconds: a thread that waits for
 * something the context delivers may then leave it to that thread. The
 * caller's own iterations do not count: a thread that runs its loop
 * between blocking calls, and blocks now, runs nothing meanwhile. */
gboolean
np_flusher_context_is_running (NpFlusher *self,
                               guint      msec)
{
  gint64 last = __atomic_load_n (&self->last_prepare, __ATOMIC_RELAXED);

  return last > 0 && g_atomic_pointer_get (&self->last_thread) != g_thread_self () &&
         g_get_monotonic_time () - last < (gint64) msec * G_TIME_SPAN_MILLISECOND;
}

NpFlusher *
np_flusher_acquire (GMainContext *context)
{
  NpFlusher *self;

  G_LOCK (flushers);

  if (flushers == NULL)
    flushers = g_hash_table_new (NULL, NULL);

  self = g_hash_table_lookup (flushers, context);
  if (self == NULL)
    {
      self = (NpFlusher *) g_source_new (&np_flusher_funcs, sizeof (NpFlusher));
      self->context = context;
      g_mutex_init (&self->lock);
      g_queue_init (&self->pending);
      g_queue_init (&self->ready);
      g_source_set_priority (&self->source, G_PRIORITY_HIGH);
      g_source_set_static_name (&self->source, "[np] pipe flush");
      /* A handler that runs a main loop of its own must not stop every
       * other stream's flushing. */
      g_source_set_can_recurse (&self->source, TRUE);
      g_source_attach (&self->source, context);
      g_hash_table_insert (flushers, context, self);
    }
  self->n_users++;

  G_UNLOCK (flushers);

  return self;
}

void
np_flusher_release (NpFlusher *self)
{
  G_LOCK (flushers);

  if (--self->n_users == 0)
    {
      g_hash_table_remove (flushers, self->context);
      g_source_destroy (&self->source);
      g_source_unref (&self->source);
    }

  G_UNLOCK (flushers);
}

/* Has @link written in the next prepare phase of the flusher's context,
 * or dispatched when @dispatch (the stronger of the two wins). Wakes the
 * context when another thread is running it. */
void
np_flusher_arm (NpFlusher   *self,
                NpFlushLink *link,
                gboolean     dispatch)
{
  gboolean changed = FALSE;

  g_mutex_lock (&self->lock);
  if (!link->armed)
    {
      link->funcs->ref (link);
      np_flusher_push_locked (self, link, dispatch);
      changed = TRUE;
    }
  else if (dispatch && !link->dispatch)
    {
      np_flusher_unlink_locked (self, link);
      np_flusher_push_locked (self, link, TRUE);
      changed = TRUE;
    }
  g_mutex_unlock (&self->lock);

  /* Only a thread that iterates the context owns it, and only such a
   * thread may be asleep in poll() past this link: any later iteration
   * writes it in its prepare phase. A failed acquire is the sign of one;
   * waking the context for nothing costs two system calls. */
  if (changed && !g_main_context_is_owner (self->context))
    {
      if (g_main_context_acquire (self->context))
        g_main_context_release (self->context);
      else
        g_main_context_wakeup (self->context);
    }
}

