/* np-poller-epoll.c: one epoll instance and one GSource per main context
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <gio/gio.h>

#include "np-lock-private.h"
#include "np-poller-private.h"

/* A main loop iteration costs GLib a pass over every source and every
 * polled descriptor of the context: with a GSource per connection, each
 * wake-up paid for every idle peer. Here one GSource serves them all,
 * and dispatches the watches that are ready, those made ready by hand,
 * and the timers whose deadline passed; its ready time is the earliest
 * deadline.
 *
 * The first few watches (NP_POLLER_DIRECT) are descriptors of the source
 * itself, which GLib polls with the rest of the context; every other
 * watch is in an epoll instance (level-triggered), whose one descriptor
 * the source polls too, and which is read with epoll_wait() only when
 * GLib found it ready. A process with a connection or two thus makes
 * the system calls it made with a source of each, and one with thousands
 * pays for a few of them, never for all: the cost of an iteration does
 * not grow with the idle ones.
 *
 * Each dispatch takes the watches that are ready into an array of its
 * own, with a reference on each, and the timers due one at a time
 * (those left stay where a nested dispatch finds them), and calls them
 * with no lock held: a callback that runs a main loop dispatches the
 * source again (it may recurse), and what the inner dispatch handles
 * the outer one finds, at worst, no longer ready, as a GSource may be
 * dispatched for a condition another read already consumed. A watch
 * destroyed meanwhile is skipped.
 *
 * Locks: the pollers' table's and a poller's, never one inside the
 * other. A caller may hold its own lock around any function here; the
 * poller's lock is never held while a callback or a destroy notify runs.
 * GLib's context lock is taken inside it (g_source_add_unix_fd(),
 * g_source_set_ready_time()). */

/* What one dispatch takes at most of each kind; the rest stays ready
 * (the kernel's list is level-triggered and rotates) for the next. */
#define NP_POLLER_BATCH 128

typedef struct _NpPoller NpPoller;

struct _NpPoller
{
  GSource       source;
  GMainContext *context;
  int           epfd;
  gpointer      epfd_tag;
  GMutex        lock;

  /* Guarded by the lock. */
  GQueue        direct;         /* of NpPollerWatch, through direct_link */
  GQueue        ready;          /* of NpPollerWatch, through ready_link */
  GSequence    *timers;         /* of NpPollerTimer, earliest first */
  gint64        ready_time;     /* as last given to the source */
  guint64       n_dispatches;
  guint64       n_timers;       /* orders timers with the same deadline */

  guint         n_users;        /* guarded by the pollers' lock */
};

struct _NpPollerWatch
{
  gatomicrefcount    ref_count;
  NpPoller          *poller;      /* NULL when it could not be made */
  GError            *error;       /* why not */
  int                fd;
  NpPollerWatchFunc  func;
  gpointer           data;
  GDestroyNotify     notify;
  int                destroyed;   /* atomic */

  /* Guarded by the poller's lock. */
  GIOCondition       events;
  GList              ready_link;
  GList              direct_link;
  gpointer           tag;         /* the source's descriptor, when direct */
  guint64            dispatch;    /* the last dispatch that took it */
  guint              index;       /* where in that dispatch's array */
  guint              started : 1;
  guint              made_ready : 1;
};

struct _NpPollerTimer
{
  gatomicrefcount    ref_count;
  NpPoller          *poller;      /* NULL: the timer is a GSource */
  GSource           *source;
  NpPollerTimerFunc  func;
  gpointer           data;
  GDestroyNotify     notify;
  int                destroyed;   /* atomic */

  /* Guarded by the poller's lock. */
  gint64             when;
  guint64            serial;
  GSequenceIter     *iter;        /* NULL once due or destroyed */
};

typedef struct
{
  NpPollerWatch *watch;
  GIOCondition   revents;
} NpPollerReady;

G_LOCK_DEFINE_STATIC (pollers);
static GHashTable *pollers;   /* GMainContext → NpPoller */

static void np_poller_release (NpPoller *self);

/* Watches and timers */

static NpPollerWatch *
np_poller_watch_ref (NpPollerWatch *watch)
{
  g_atomic_ref_count_inc (&watch->ref_count);
  return watch;
}

static void
np_poller_watch_unref (NpPollerWatch *watch)
{
  if (!g_atomic_ref_count_dec (&watch->ref_count))
    return;

  if (watch->notify != NULL)
    watch->notify (watch->data);
  if (watch->poller != NULL)
    np_poller_release (watch->poller);
  g_clear_error (&watch->error);
  g_free (watch);
}

static NpPollerTimer *
np_poller_timer_ref (NpPollerTimer *timer)
{
  g_atomic_ref_count_inc (&timer->ref_count);
  return timer;
}

static void
np_poller_timer_unref (NpPollerTimer *timer)
{
  if (!g_atomic_ref_count_dec (&timer->ref_count))
    return;

  if (timer->notify != NULL)
    timer->notify (timer->data);
  if (timer->poller != NULL)
    np_poller_release (timer->poller);
  g_free (timer);
}

static guint32
np_poller_epoll_events (GIOCondition events)
{
  return ((events & G_IO_IN) ? EPOLLIN : 0) |
         ((events & G_IO_OUT) ? EPOLLOUT : 0) |
         ((events & G_IO_PRI) ? EPOLLPRI : 0);
}

static GIOCondition
np_poller_condition (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) |
         ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLPRI) ? G_IO_PRI : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0) |
         ((events & EPOLLERR) ? G_IO_ERR : 0);
}

/* The source is ready at once while watches were made ready, otherwise
 * at the earliest deadline. GLib takes the context's lock and wakes it
 * up for each change, so only changes are passed on. */
static void
np_poller_update_ready_time_locked (NpPoller *self)
{
  gint64 ready_time = -1;

  NP_ENSURE_LOCKED (&self->lock);

  if (self->ready.length > 0)
    ready_time = 0;
  else if (!g_sequence_is_empty (self->timers))
    ready_time = ((NpPollerTimer *) g_sequence_get (g_sequence_get_begin_iter (self->timers)))->when;

  if (ready_time != self->ready_time)
    {
      self->ready_time = ready_time;
      g_source_set_ready_time (&self->source, ready_time);
    }
}

static int
np_poller_timer_compare (gconstpointer a,
                         gconstpointer b,
                         gpointer      data)
{
  const NpPollerTimer *ta = a;
  const NpPollerTimer *tb = b;

  if (ta->when != tb->when)
    return ta->when < tb->when ? -1 : 1;
  return ta->serial < tb->serial ? -1 : ta->serial > tb->serial;
}

/* The source */

/* Takes @watch into the dispatch's array, or adds @revents to its entry
 * when it is there already (ready and made ready at once). */
static void
np_poller_take_locked (NpPoller      *self,
                       NpPollerReady *ready,
                       guint         *n_ready,
                       NpPollerWatch *watch,
                       GIOCondition   revents)
{
  NP_ENSURE_LOCKED (&self->lock);

  if (watch->dispatch == self->n_dispatches)
    {
      ready[watch->index].revents |= revents;
      return;
    }

  watch->dispatch = self->n_dispatches;
  watch->index = *n_ready;
  ready[*n_ready].watch = np_poller_watch_ref (watch);
  ready[*n_ready].revents = revents;
  (*n_ready)++;
}

static gboolean
np_poller_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  NpPoller *self = (NpPoller *) source;
  struct epoll_event events[NP_POLLER_BATCH];
  /* Those GLib polled, epoll's, and those made ready, each once. */
  NpPollerReady ready[NP_POLLER_DIRECT + 2 * NP_POLLER_BATCH];
  guint n_ready = 0;
  gboolean timers_due;
  gint64 now;
  int n = 0;

  g_mutex_lock (&self->lock);

  self->n_dispatches++;

  /* What GLib polled itself. */
  for (GList *l = self->direct.head; l != NULL; l = l->next)
    {
      NpPollerWatch *watch = l->data;
      GIOCondition revents = g_source_query_unix_fd (source, watch->tag);

      if (revents != 0)
        np_poller_take_locked (self, ready, &n_ready, watch, revents);
    }

  /* What epoll reports is registered, and holds a reference, until the
   * lock is let go. */
  if (g_source_query_unix_fd (source, self->epfd_tag) != 0)
    do
      n = epoll_wait (self->epfd, events, NP_POLLER_BATCH, 0);
    while (n < 0 && errno == EINTR);

  for (int i = 0; i < n; i++)
    np_poller_take_locked (self, ready, &n_ready, events[i].data.ptr,
                           np_poller_condition (events[i].events));

  /* Those made ready stay so until they say otherwise: each dispatch
   * takes them from the front and puts them at the back. */
  for (guint i = MIN (self->ready.length, NP_POLLER_BATCH); i > 0; i--)
    {
      GList *link = g_queue_pop_head_link (&self->ready);

      g_queue_push_tail_link (&self->ready, link);
      np_poller_take_locked (self, ready, &n_ready, link->data, 0);
    }

  now = g_source_get_time (source);
  timers_due = !g_sequence_is_empty (self->timers) &&
               ((NpPollerTimer *) g_sequence_get (g_sequence_get_begin_iter (self->timers)))->when <= now;

  np_poller_update_ready_time_locked (self);

  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < n_ready; i++)
    {
      NpPollerWatch *watch = ready[i].watch;

      if (!g_atomic_int_get (&watch->destroyed))
        watch->func (watch, ready[i].revents, watch->data);
      np_poller_watch_unref (watch);
    }

  /* The timers due are taken one at a time: the others stay in the
   * sequence, the source ready, while a callback runs, so that one that
   * runs a main loop of its own fires them there. */
  for (guint i = 0; timers_due && i < NP_POLLER_BATCH; i++)
    {
      NpPollerTimer *timer = NULL;

      g_mutex_lock (&self->lock);
      if (!g_sequence_is_empty (self->timers))
        {
          GSequenceIter *first = g_sequence_get_begin_iter (self->timers);

          timer = g_sequence_get (first);
          if (timer->when <= now)
            {
              /* The sequence's reference goes to this dispatch. */
              g_sequence_remove (first);
              timer->iter = NULL;
              np_poller_update_ready_time_locked (self);
            }
          else
            timer = NULL;
        }
      g_mutex_unlock (&self->lock);

      if (timer == NULL)
        break;

      if (!g_atomic_int_get (&timer->destroyed))
        timer->func (timer, timer->data);
      np_poller_timer_unref (timer);
    }

  return G_SOURCE_CONTINUE;
}

static void
np_poller_finalize (GSource *source)
{
  NpPoller *self = (NpPoller *) source;

  /* Every watch and timer is gone: each held a use. */
  g_assert (self->ready.length == 0);
  g_assert (self->direct.length == 0);
  g_assert (g_sequence_is_empty (self->timers));

  g_sequence_free (self->timers);
  close (self->epfd);
  g_mutex_clear (&self->lock);
}

static GSourceFuncs np_poller_funcs = {
  .dispatch = np_poller_dispatch,
  .finalize = np_poller_finalize,
};

/* The poller of @context, made on first use. Returns NULL when the
 * process has no descriptor left for the epoll instance. */
static NpPoller *
np_poller_acquire (GMainContext  *context,
                   GError       **error)
{
  NpPoller *self;

  G_LOCK (pollers);

  if (pollers == NULL)
    pollers = g_hash_table_new (NULL, NULL);

  self = g_hash_table_lookup (pollers, context);
  if (self == NULL)
    {
      int epfd = epoll_create1 (EPOLL_CLOEXEC);

      if (epfd < 0)
        {
          int errsv = errno;

          G_UNLOCK (pollers);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot create an epoll instance: %s"), g_strerror (errsv));
          return NULL;
        }

      self = (NpPoller *) g_source_new (&np_poller_funcs, sizeof (NpPoller));
      /* Held while the poller is in the table: a context finalized
       * meanwhile could give its address to another, which would find a
       * poller no context runs. */
      self->context = g_main_context_ref (context);
      self->epfd = epfd;
      g_mutex_init (&self->lock);
      g_queue_init (&self->direct);
      g_queue_init (&self->ready);
      self->timers = g_sequence_new (NULL);
      self->ready_time = -1;
      g_source_set_static_name (&self->source, "[np] pipe poller");
      /* A handler that runs a main loop of its own must not stop every
       * other connection. */
      g_source_set_can_recurse (&self->source, TRUE);
      self->epfd_tag = g_source_add_unix_fd (&self->source, epfd, G_IO_IN);
      g_source_attach (&self->source, context);
      g_hash_table_insert (pollers, context, self);
    }
  self->n_users++;

  G_UNLOCK (pollers);

  return self;
}

static void
np_poller_release (NpPoller *self)
{
  GMainContext *context = NULL;

  G_LOCK (pollers);

  if (--self->n_users == 0)
    {
      context = self->context;
      g_hash_table_remove (pollers, context);
      g_source_destroy (&self->source);
      g_source_unref (&self->source);
    }

  G_UNLOCK (pollers);

  /* Perhaps the context's last reference: it finalizes its sources,
   * which take no lock of ours. */
  if (context != NULL)
    g_main_context_unref (context);
}

/* Watches */

NpPollerWatch *
np_poller_watch_new (GMainContext      *context,
                     int                fd,
                     GIOCondition       events,
                     const char        *name,
                     NpPollerWatchFunc  func,
                     gpointer           data,
                     GDestroyNotify     notify)
{
  NpPollerWatch *watch = g_new0 (NpPollerWatch, 1);

  g_atomic_ref_count_init (&watch->ref_count);
  /* A failure is reported when the watch starts. */
  watch->poller = np_poller_acquire (context, &watch->error);
  watch->fd = fd;
  watch->events = events;
  watch->func = func;
  watch->data = data;
  watch->notify = notify;
  watch->ready_link.data = watch;
  watch->direct_link.data = watch;

  return watch;
}

gboolean
np_poller_watch_start (NpPollerWatch  *watch,
                       GError        **error)
{
  NpPoller *poller = watch->poller;
  struct epoll_event event = { 0 };
  gboolean ret = TRUE;

  if (poller == NULL)
    {
      g_propagate_error (error, g_error_copy (watch->error));
      return FALSE;
    }

  g_mutex_lock (&poller->lock);

  if (!watch->started && !g_atomic_int_get (&watch->destroyed) &&
      poller->direct.length < NP_POLLER_DIRECT)
    {
      watch->tag = g_source_add_unix_fd (&poller->source, watch->fd, watch->events);
      g_queue_push_tail_link (&poller->direct, &watch->direct_link);
      np_poller_watch_ref (watch);
      watch->started = TRUE;
    }
  else if (!watch->started && !g_atomic_int_get (&watch->destroyed))
    {
      event.events = np_poller_epoll_events (watch->events);
      event.data.ptr = watch;
      if (epoll_ctl (poller->epfd, EPOLL_CTL_ADD, watch->fd, &event) < 0)
        {
          int errsv = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot watch a descriptor: %s"), g_strerror (errsv));
          ret = FALSE;
        }
      else
        {
          /* The registration holds a reference, dropped by destroy. */
          np_poller_watch_ref (watch);
          watch->started = TRUE;
        }
    }

  g_mutex_unlock (&poller->lock);

  return ret;
}

void
np_poller_watch_set_events (NpPollerWatch *watch,
                            GIOCondition   events)
{
  NpPoller *poller = watch->poller;

  if (poller == NULL)
    return;

  g_mutex_lock (&poller->lock);

  if (watch->events != events)
    {
      watch->events = events;
      /* A thread asleep on the epoll instance wakes up when the
       * descriptor is ready for the new events: no wake-up of its own.
       * GLib wakes up its own poll. */
      if (watch->tag != NULL)
        g_source_modify_unix_fd (&poller->source, watch->tag, events);
      else if (watch->started && !g_atomic_int_get (&watch->destroyed))
        {
          struct epoll_event event = { 0 };

          event.events = np_poller_epoll_events (events);
          event.data.ptr = watch;
          if (epoll_ctl (poller->epfd, EPOLL_CTL_MOD, watch->fd, &event) < 0)
            g_critical ("Np: changing what a descriptor is watched for failed: %s",
                        g_strerror (errno));
        }
    }

  g_mutex_unlock (&poller->lock);
}

void
np_poller_watch_set_ready (NpPollerWatch *watch,
                           gboolean       ready)
{
  NpPoller *poller = watch->poller;

  if (poller == NULL)
    return;

  g_mutex_lock (&poller->lock);

  if (!g_atomic_int_get (&watch->destroyed) && watch->made_ready != !!ready)
    {
      watch->made_ready = !!ready;
      if (ready)
        g_queue_push_tail_link (&poller->ready, &watch->ready_link);
      else
        g_queue_unlink (&poller->ready, &watch->ready_link);
      np_poller_update_ready_time_locked (poller);
    }

  g_mutex_unlock (&poller->lock);
}

void
np_poller_watch_destroy (NpPollerWatch *watch)
{
  NpPoller *poller = watch->poller;
  gboolean registered = FALSE;

  g_assert (!g_atomic_int_get (&watch->destroyed));
  g_atomic_int_set (&watch->destroyed, TRUE);

  if (poller == NULL)
    {
      np_poller_watch_unref (watch);
      return;
    }

  g_mutex_lock (&poller->lock);

  /* Before its descriptor may be closed, and reused. */
  if (watch->tag != NULL)
    {
      registered = TRUE;
      g_source_remove_unix_fd (&poller->source, watch->tag);
      watch->tag = NULL;
      g_queue_unlink (&poller->direct, &watch->direct_link);
    }
  else if (watch->started)
    {
      registered = TRUE;
      if (epoll_ctl (poller->epfd, EPOLL_CTL_DEL, watch->fd, NULL) < 0)
        g_critical ("Np: removing a descriptor from the poller failed: %s",
                    g_strerror (errno));
    }

  if (watch->made_ready)
    {
      watch->made_ready = FALSE;
      g_queue_unlink (&poller->ready, &watch->ready_link);
      np_poller_update_ready_time_locked (poller);
    }

  g_mutex_unlock (&poller->lock);

  if (registered)
    np_poller_watch_unref (watch);
  np_poller_watch_unref (watch);
}

/* Timers */

/* A timer of a context whose poller could not be made (no descriptor
 * was left for it) waits as a GSource of its own. */
static gboolean
np_poller_timer_source_cb (gpointer data)
{
  NpPollerTimer *timer = data;

  if (!g_atomic_int_get (&timer->destroyed))
    timer->func (timer, timer->data);

  return G_SOURCE_REMOVE;
}

NpPollerTimer *
np_poller_timer_new (GMainContext      *context,
                     guint              msec,
                     const char        *name,
                     NpPollerTimerFunc  func,
                     gpointer           data,
                     GDestroyNotify     notify)
{
  NpPollerTimer *timer = g_new0 (NpPollerTimer, 1);
  NpPoller *poller;

  g_atomic_ref_count_init (&timer->ref_count);
  timer->poller = poller = np_poller_acquire (context, NULL);
  timer->func = func;
  timer->data = data;
  timer->notify = notify;

  if (poller == NULL)
    {
      timer->source = g_timeout_source_new (msec);
      g_source_set_static_name (timer->source, name);
      g_source_set_callback (timer->source, np_poller_timer_source_cb,
                             np_poller_timer_ref (timer),
                             (GDestroyNotify) np_poller_timer_unref);
      g_source_attach (timer->source, context);
      return timer;
    }

  timer->when = g_get_monotonic_time () + (gint64) msec * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&poller->lock);
  timer->serial = poller->n_timers++;
  /* The sequence holds a reference until the timer is due or destroyed. */
  timer->iter = g_sequence_insert_sorted (poller->timers, np_poller_timer_ref (timer),
                                          np_poller_timer_compare, NULL);
  np_poller_update_ready_time_locked (poller);
  g_mutex_unlock (&poller->lock);

  return timer;
}

void
np_poller_timer_destroy (NpPollerTimer *timer)
{
  NpPoller *poller = timer->poller;
  gboolean queued = FALSE;

  g_assert (!g_atomic_int_get (&timer->destroyed));
  g_atomic_int_set (&timer->destroyed, TRUE);

  if (poller == NULL)
    {
      g_source_destroy (timer->source);
      g_clear_pointer (&timer->source, g_source_unref);
      np_poller_timer_unref (timer);
      return;
    }

  g_mutex_lock (&poller->lock);

  if (timer->iter != NULL)
    {
      g_sequence_remove (timer->iter);
      timer->iter = NULL;
      queued = TRUE;
      np_poller_update_ready_time_locked (poller);
    }

  g_mutex_unlock (&poller->lock);

  if (queued)
    np_poller_timer_unref (timer);
  np_poller_timer_unref (timer);
}
