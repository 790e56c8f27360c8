/* np-context.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

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

/* Emits notify::@pspec on @object in @context: at once when this thread
 * runs @context (or may, as g_main_context_invoke() decides), otherwise
 * from an idle there. For the properties that change by themselves; one
 * the application sets is notified where it was set, as GObject does. */
void
np_context_notify (GMainContext *context,
                   GObject      *object,
                   GParamSpec   *pspec)
{
  Notify *notify = g_new (Notify, 1);

  notify->object = g_object_ref (object);
  notify->pspec = pspec;
  g_main_context_invoke_full (context, G_PRIORITY_DEFAULT,
                              np_context_notify_cb, notify, notify_free);
}
