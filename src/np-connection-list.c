/* np-connection-list.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-connection-list-private.h"

/**
 * NpPipeConnectionList:
 *
 * The connected clients of a [class@Np.PipeServer], as a read-only
 * [iface@Gio.ListModel] of [class@Np.PipeConnection]: what
 * [method@Np.PipeServer.get_connections] returns.
 *
 * The application may read it and bind it to a list view, but not change
 * it: only the server adds and removes connections, from its main
 * context, which is where [signal@Gio.ListModel::items-changed] is
 * emitted. Reading it is safe from any thread.
 *
 * It is a type of its own so that language bindings can name it; it has
 * no methods beyond those of [iface@Gio.ListModel].
 *
 * Since: 1.0
 */
struct _NpPipeConnectionList
{
  GObject    parent_instance;

  GMutex     lock;
  GPtrArray *items;
};

static GType
np_pipe_connection_list_get_item_type (GListModel *model)
{
  return NP_TYPE_PIPE_CONNECTION;
}

static guint
np_pipe_connection_list_get_n_items (GListModel *model)
{
  NpPipeConnectionList *self = NP_PIPE_CONNECTION_LIST (model);
  guint n;

  g_mutex_lock (&self->lock);
  n = self->items->len;
  g_mutex_unlock (&self->lock);

  return n;
}

static gpointer
np_pipe_connection_list_get_item (GListModel *model,
                                  guint       position)
{
  NpPipeConnectionList *self = NP_PIPE_CONNECTION_LIST (model);
  gpointer item = NULL;

  g_mutex_lock (&self->lock);
  if (position < self->items->len)
    item = g_object_ref (g_ptr_array_index (self->items, position));
  g_mutex_unlock (&self->lock);

  return item;
}

static void
np_pipe_connection_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = np_pipe_connection_list_get_item_type;
  iface->get_n_items = np_pipe_connection_list_get_n_items;
  iface->get_item = np_pipe_connection_list_get_item;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (NpPipeConnectionList, np_pipe_connection_list, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL,
                                                      np_pipe_connection_list_model_init))

static void
np_pipe_connection_list_finalize (GObject *object)
{
  NpPipeConnectionList *self = (NpPipeConnectionList *)object;

  g_clear_pointer (&self->items, g_ptr_array_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (np_pipe_connection_list_parent_class)->finalize (object);
}

static void
np_pipe_connection_list_class_init (NpPipeConnectionListClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = np_pipe_connection_list_finalize;
}

static void
np_pipe_connection_list_init (NpPipeConnectionList *self)
{
  g_mutex_init (&self->lock);
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
}

NpPipeConnectionList *
np_pipe_connection_list_new (void)
{
  return g_object_new (NP_TYPE_PIPE_CONNECTION_LIST, NULL);
}

void
np_pipe_connection_list_append (NpPipeConnectionList *self,
                                NpPipeConnection     *connection)
{
  guint position;

  g_mutex_lock (&self->lock);
  position = self->items->len;
  g_ptr_array_add (self->items, g_object_ref (connection));
  g_mutex_unlock (&self->lock);

  g_list_model_items_changed (G_LIST_MODEL (self), position, 0, 1);
}

/* Returns FALSE when @connection was not in the list. */
gboolean
np_pipe_connection_list_remove (NpPipeConnectionList *self,
                                NpPipeConnection     *connection)
{
  g_autoptr(NpPipeConnection) removed = NULL;
  guint position;

  g_mutex_lock (&self->lock);
  if (g_ptr_array_find (self->items, connection, &position))
    removed = g_ptr_array_steal_index (self->items, position);
  g_mutex_unlock (&self->lock);

  if (removed == NULL)
    return FALSE;

  g_list_model_items_changed (G_LIST_MODEL (self), position, 1, 0);
  return TRUE;
}

/* The connections as they are now, each with a reference. */
GPtrArray *
np_pipe_connection_list_snapshot (NpPipeConnectionList *self)
{
  GPtrArray *snapshot;

  g_mutex_lock (&self->lock);
  snapshot = g_ptr_array_new_full (self->items->len, g_object_unref);
  for (guint i = 0; i < self->items->len; i++)
    g_ptr_array_add (snapshot, g_object_ref (g_ptr_array_index (self->items, i)));
  g_mutex_unlock (&self->lock);

  return snapshot;
}
