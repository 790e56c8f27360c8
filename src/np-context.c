/* np-context.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <sys/syscall.h>
#include <unistd.h>

#include "np-context-private.h"

typedef struct
{
  GObject    *object;
  GParamSpec *pspec;
} Notify;

static gboolean
np_context_notify_cb (gpointer data)
{
  Notify *notify = data;

  g_object_notify_by_pspec (notify->object, notify->pspec);

  return G_SOURCE_REMOVE;
}

static void
notify_free (gpointer data)
{
  Notify *notify = data;

  g_object_unref (notify->object);
  g_free (notify);
}

/* Whether the calling thread is @context's own: the thread that pushed
 * it as its thread-default context, or, for the global default context,
 * the main thread. A worker that pushed no context is not the global
 * default context's thread, whatever g_main_context_invoke() assumes. */
static gboolean
np_context_is_home (GMainContext *context)
{
  GMainContext *here = g_main_context_get_thread_default ();

  if (here != NULL)
    return here == context;

#ifdef __linux__
  return context == g_main_context_default () && getpid () == (pid_t) syscall (SYS_gettid);
#else
  return FALSE;
#endif
}

/* Takes @context for the calling thread, when it owns it already (it
 * iterates it) or is its own thread and nobody iterates it now: then it
 * may emit the signals of @context's objects, and releases @context
 * afterwards. Returns FALSE otherwise: what is to be emitted goes to
 * @context. */
gboolean
np_context_acquire_here (GMainContext *context)
{
  if (!g_main_context_is_owner (context) && !np_context_is_home (context))
    return FALSE;

  return g_main_context_acquire (context);
}

/* Emits notify::@pspec on @object in @context: at once when this thread
 * may (np_context_acquire_here()), otherwise from an idle there. For the
 * properties that change by themselves; one the application sets is
 * notified where it was set, as GObject does. */
void
np_context_notify (GMainContext *context,
                   GObject      *object,
                   GParamSpec   *pspec)
{
  if (np_context_acquire_here (context))
    {
      g_object_notify_by_pspec (object, pspec);
      g_main_context_release (context);
      return;
    }

  np_context_notify_later (context, object, pspec);
}

/* Emits notify::@pspec on @object from an idle in @context, even in its
 * own thread: for what changes inside a dispose. */
void
np_context_notify_later (GMainContext *context,
                         GObject      *object,
                         GParamSpec   *pspec)
{
  g_autoptr(GSource) idle = NULL;
  Notify *notify;

  notify = g_new (Notify, 1);
  notify->object = g_object_ref (object);
  notify->pspec = pspec;
  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_static_name (idle, "[np] notify");
  g_source_set_callback (idle, np_context_notify_cb, notify, notify_free);
  g_source_attach (idle, context);
}
