/* np-gthread-pthread.c: GLib's locks as pthread ones, for
 * ThreadSanitizer and Helgrind
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib 2.74 implements GMutex, GRecMutex, GRWLock and GCond with futexes
 * on Linux, which neither tool knows: every field Np guards with a GMutex
 * would be reported as racy, and no lock order could be checked. Loaded
 * with LD_PRELOAD, this library gives pthread locks, which both tools
 * follow, to every caller that reaches these functions through the PLT:
 * libnp, libgio, libgobject and the tests. libglib calls its own copies
 * directly, so the locks inside GLib (its main contexts above all) stay
 * futexes: what they order is left to the suppressions beside this file.
 *
 * It also shows the tools the order that reference counts kept with
 * atomics inside the uninstrumented GLib give: g_atomic_ref_count_*()
 * (NpStream's), g_object_unref() and g_bytes_unref() (the last unref
 * frees after every other thread's last use); and the order of what one
 * thread hands to a main context another thread runs (see Handed).
 *
 * meson builds it next to the tests, and preloads it in the tests of a
 * -Db_sanitize=thread build. For Helgrind, preload it by hand:
 *
 *   LD_PRELOAD=_build/tests/libnp-gthread-pthread.so \
 *     valgrind --tool=helgrind --suppressions=tests/sanitizers/helgrind.supp \
 *     _build/tests/test-threads
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <glib-object.h>

#ifdef HAVE_VALGRIND_HELGRIND_H
# include <valgrind/helgrind.h>
#else
# define ANNOTATE_HAPPENS_BEFORE(obj) do { } while (0)
# define ANNOTATE_HAPPENS_AFTER(obj) do { } while (0)
#endif

#ifdef __SANITIZE_THREAD__
# include <sanitizer/tsan_interface.h>
# define TSAN_RELEASE(obj) __tsan_release (obj)
# define TSAN_ACQUIRE(obj) __tsan_acquire (obj)
#else
# define TSAN_RELEASE(obj) do { } while (0)
# define TSAN_ACQUIRE(obj) do { } while (0)
#endif

#define HAPPENS_BEFORE(obj) G_STMT_START { ANNOTATE_HAPPENS_BEFORE (obj); TSAN_RELEASE (obj); } G_STMT_END
#define HAPPENS_AFTER(obj) G_STMT_START { ANNOTATE_HAPPENS_AFTER (obj); TSAN_ACQUIRE (obj); } G_STMT_END

/* The next definition of @name: the real one. */
#define REAL(name) \
  static __typeof__ (name) *real_##name##_slot; \
  __typeof__ (name) *real_##name = __atomic_load_n (&real_##name##_slot, __ATOMIC_ACQUIRE); \
  if (G_UNLIKELY (real_##name == NULL)) \
    { \
      real_##name = dlsym (RTLD_NEXT, #name); \
      __atomic_store_n (&real_##name##_slot, real_##name, __ATOMIC_RELEASE); \
    }

/* The pthread object lives on the heap, its address in the GLib one's
 * first word: GLib's are zero when statically initialized, so they are
 * made on first use. */
#define LAZY(type, init, destroy) \
  static type * \
  lazy_##type (gpointer *slot) \
  { \
    type *object = __atomic_load_n (slot, __ATOMIC_ACQUIRE); \
    \
    if (object == NULL) \
      { \
        type *fresh = malloc (sizeof (type)); \
        \
        init (fresh); \
        if (__atomic_compare_exchange_n (slot, (gpointer *) &object, fresh, FALSE, \
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) \
          object = fresh; \
        else \
          { \
            destroy (fresh); \
            free (fresh); \
          } \
      } \
    \
    return object; \
  } \
  \
  static void \
  clear_##type (gpointer *slot) \
  { \
    type *object = *slot; \
    \
    if (object != NULL) \
      { \
        destroy (object); \
        free (object); \
      } \
    *slot = NULL; \
  }

static void
mutex_init (pthread_mutex_t *mutex)
{
  pthread_mutex_init (mutex, NULL);
}

static void
rec_mutex_init (pthread_mutex_t *mutex)
{
  pthread_mutexattr_t attr;

  pthread_mutexattr_init (&attr);
  pthread_mutexattr_settype (&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init (mutex, &attr);
  pthread_mutexattr_destroy (&attr);
}

static void
rwlock_init (pthread_rwlock_t *lock)
{
  pthread_rwlock_init (lock, NULL);
}

static void
cond_init (pthread_cond_t *cond)
{
  pthread_condattr_t attr;

  /* g_cond_wait_until() takes a monotonic time. */
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (cond, &attr);
  pthread_condattr_destroy (&attr);
}

typedef pthread_mutex_t rec_mutex_t;

LAZY (pthread_mutex_t, mutex_init, pthread_mutex_destroy)
LAZY (rec_mutex_t, rec_mutex_init, pthread_mutex_destroy)
LAZY (pthread_rwlock_t, rwlock_init, pthread_rwlock_destroy)
LAZY (pthread_cond_t, cond_init, pthread_cond_destroy)

/* GMutex */

void
g_mutex_init (GMutex *mutex)
{
  mutex->p = NULL;
}

void
g_mutex_clear (GMutex *mutex)
{
  clear_pthread_mutex_t (&mutex->p);
}

void
g_mutex_lock (GMutex *mutex)
{
  pthread_mutex_lock (lazy_pthread_mutex_t (&mutex->p));
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  return pthread_mutex_trylock (lazy_pthread_mutex_t (&mutex->p)) == 0;
}

void
g_mutex_unlock (GMutex *mutex)
{
  pthread_mutex_unlock (lazy_pthread_mutex_t (&mutex->p));
}

/* GRecMutex */

void
g_rec_mutex_init (GRecMutex *rec_mutex)
{
  rec_mutex->p = NULL;
}

void
g_rec_mutex_clear (GRecMutex *rec_mutex)
{
  clear_rec_mutex_t (&rec_mutex->p);
}

void
g_rec_mutex_lock (GRecMutex *rec_mutex)
{
  pthread_mutex_lock (lazy_rec_mutex_t (&rec_mutex->p));
}

gboolean
g_rec_mutex_trylock (GRecMutex *rec_mutex)
{
  return pthread_mutex_trylock (lazy_rec_mutex_t (&rec_mutex->p)) == 0;
}

void
g_rec_mutex_unlock (GRecMutex *rec_mutex)
{
  pthread_mutex_unlock (lazy_rec_mutex_t (&rec_mutex->p));
}

/* GRWLock */

void
g_rw_lock_init (GRWLock *rw_lock)
{
  rw_lock->p = NULL;
}

void
g_rw_lock_clear (GRWLock *rw_lock)
{
  clear_pthread_rwlock_t (&rw_lock->p);
}

void
g_rw_lock_writer_lock (GRWLock *rw_lock)
{
  pthread_rwlock_wrlock (lazy_pthread_rwlock_t (&rw_lock->p));
}

gboolean
g_rw_lock_writer_trylock (GRWLock *rw_lock)
{
  return pthread_rwlock_trywrlock (lazy_pthread_rwlock_t (&rw_lock->p)) == 0;
}

void
g_rw_lock_writer_unlock (GRWLock *rw_lock)
{
  pthread_rwlock_unlock (lazy_pthread_rwlock_t (&rw_lock->p));
}

void
g_rw_lock_reader_lock (GRWLock *rw_lock)
{
  pthread_rwlock_rdlock (lazy_pthread_rwlock_t (&rw_lock->p));
}

gboolean
g_rw_lock_reader_trylock (GRWLock *rw_lock)
{
  return pthread_rwlock_tryrdlock (lazy_pthread_rwlock_t (&rw_lock->p)) == 0;
}

void
g_rw_lock_reader_unlock (GRWLock *rw_lock)
{
  pthread_rwlock_unlock (lazy_pthread_rwlock_t (&rw_lock->p));
}

/* GCond */

void
g_cond_init (GCond *cond)
{
  cond->p = NULL;
}

void
g_cond_clear (GCond *cond)
{
  clear_pthread_cond_t (&cond->p);
}

void
g_cond_wait (GCond  *cond,
             GMutex *mutex)
{
  pthread_cond_wait (lazy_pthread_cond_t (&cond->p), lazy_pthread_mutex_t (&mutex->p));
}

gboolean
g_cond_wait_until (GCond  *cond,
                   GMutex *mutex,
                   gint64  end_time)
{
  struct timespec ts = { end_time / G_USEC_PER_SEC, (end_time % G_USEC_PER_SEC) * 1000 };

  return pthread_cond_timedwait (lazy_pthread_cond_t (&cond->p), lazy_pthread_mutex_t (&mutex->p),
                                 &ts) == 0;
}

void
g_cond_signal (GCond *cond)
{
  pthread_cond_signal (lazy_pthread_cond_t (&cond->p));
}

void
g_cond_broadcast (GCond *cond)
{
  pthread_cond_broadcast (lazy_pthread_cond_t (&cond->p));
}

/* Reference counts */

void
g_atomic_ref_count_init (gatomicrefcount *arc)
{
  __atomic_store_n (arc, 1, __ATOMIC_RELEASE);
}

void
g_atomic_ref_count_inc (gatomicrefcount *arc)
{
  __atomic_fetch_add (arc, 1, __ATOMIC_ACQ_REL);
}

gboolean
g_atomic_ref_count_dec (gatomicrefcount *arc)
{
  gboolean last;

  HAPPENS_BEFORE (arc);
  last = __atomic_sub_fetch (arc, 1, __ATOMIC_ACQ_REL) == 0;
  if (last)
    HAPPENS_AFTER (arc);

  return last;
}

gboolean
g_atomic_ref_count_compare (gatomicrefcount *arc,
                            gint             val)
{
  return __atomic_load_n (arc, __ATOMIC_ACQUIRE) == val;
}

/* Whichever unref is the last one comes after all the others: each
 * unref releases, and the one that drops the last reference acquires
 * before the real unref frees. All but the last unref are a decrement,
 * done here with an atomic the tools see, so that two threads that each
 * hold one of the last two references agree on which of them frees. */

/* GObject's: a decrement that leaves a toggle reference as the last one
 * notifies it, which the real unref does. */
#define OBJECT_HAS_TOGGLE_REF_FLAG 0x1

void
g_object_unref (gpointer object)
{
  GObject *self = object;
  guint old;

  REAL (g_object_unref);

  if (object == NULL)
    {
      real_g_object_unref (object);
      return;
    }

  /* Before the decrement: after it, another thread may free. */
  HAPPENS_BEFORE (object);

  old = __atomic_load_n (&self->ref_count, __ATOMIC_ACQUIRE);
  while (old > 2 ||
         (old == 2 && !(g_datalist_get_flags (&self->qdata) & OBJECT_HAS_TOGGLE_REF_FLAG)))
    if (__atomic_compare_exchange_n (&self->ref_count, &old, old - 1, FALSE,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return;

  if (old == 1)
    HAPPENS_AFTER (object);
  real_g_object_unref (object);
}

/* GBytes is opaque: this is gbytes.c's layout in GLib 2.74, the version
 * Np builds against (Debian 12). */
typedef struct
{
  gconstpointer   data;
  gsize           size;
  gatomicrefcount ref_count;
} BytesHead;

void
g_bytes_unref (GBytes *bytes)
{
  gatomicrefcount *count;
  gint old;

  REAL (g_bytes_unref);

  if (bytes == NULL)
    return;

  HAPPENS_BEFORE (bytes);

  count = &((BytesHead *) bytes)->ref_count;
  old = __atomic_load_n (count, __ATOMIC_ACQUIRE);
  while (old > 1)
    if (__atomic_compare_exchange_n (count, &old, old - 1, FALSE,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return;

  HAPPENS_AFTER (bytes);
  real_g_bytes_unref (bytes);
}

/* Main contexts */

/* What one thread hands to a context that another thread runs, through
 * a source's callback, is ordered by the context's lock inside libglib.
 * The callback set through the PLT (by GTask, Np and the tests) runs
 * through a trampoline that acquires what setting it released. Only
 * idle and timeout sources: other kinds call their callback with
 * arguments of their own. */
typedef struct
{
  GSourceFunc    func;
  gpointer       data;
  GDestroyNotify notify;
} Handed;

static gboolean
handed_func (gpointer data)
{
  Handed *handed = data;

  HAPPENS_AFTER (handed);
  return handed->func (handed->data);
}

static void
handed_free (gpointer data)
{
  Handed *handed = data;

  if (handed->notify != NULL)
    handed->notify (handed->data);
  free (handed);
}

static Handed *
handed_new (GSourceFunc    func,
            gpointer       data,
            GDestroyNotify notify)
{
  Handed *handed = malloc (sizeof *handed);

  handed->func = func;
  handed->data = data;
  handed->notify = notify;
  HAPPENS_BEFORE (handed);

  return handed;
}

void
g_source_set_callback (GSource        *source,
                       GSourceFunc     func,
                       gpointer        data,
                       GDestroyNotify  notify)
{
  REAL (g_source_set_callback);

  if (func != NULL &&
      (source->source_funcs == &g_idle_funcs || source->source_funcs == &g_timeout_funcs))
    real_g_source_set_callback (source, handed_func, handed_new (func, data, notify), handed_free);
  else
    real_g_source_set_callback (source, func, data, notify);
}

void
g_main_context_invoke_full (GMainContext   *context,
                            gint            priority,
                            GSourceFunc     function,
                            gpointer        data,
                            GDestroyNotify  notify)
{
  REAL (g_main_context_invoke_full);

  real_g_main_context_invoke_full (context, priority, handed_func,
                                   handed_new (function, data, notify), handed_free);
}
