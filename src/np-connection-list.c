/* np-connection-list.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-connection-list-private.h"

/* What np_pipe_server_get_connections() hands out: the application may
 * read it, bind it to a list view, but not change it; only the server
 * adds and removes connections, from its main context, which is where
 * items-changed is emitted. Reading is safe from any thread.
 *
 * It also holds, out of the model, the peers still in their handshake:
 * they count against the server's limits, but are no connection of the
 * application's until their handshake is complete (promote()). */
struct _NpConnectionList
{
  GObject    parent_instance;

  GMutex     lock;
  GPtrArray *items;
  GPtrArray *pending;
};

static GType
np_connection_list_get_item_type (GListModel *model)
{
  return NP_TYPE_PIPE_CONNECTION;
}

static guint
np_connection_list_get_n_items (GListModel *model)
{
  NpConnectionList *self = NP_CONNECTION_LIST (model);
  guint n;

  g_mutex_lock (&self->lock);
  n = self->items->len;
  g_mutex_unlock (&self->lock);

  return n;
}

static gpointer
np_connection_list_get_item (GListModel *model,
                             guint       position)
{
  NpConnectionList *self = NP_CONNECTION_LIST (model);
  gpointer item = NULL;

  g_mutex_lock (&self->lock);
  if (position < self->items->len)
    item = g_object_ref (g_ptr_array_index (self->items, position));
  g_mutex_unlock (&self->lock);

  return item;
}

static void
np_connection_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = np_connection_list_get_item_type;
  iface->get_n_items = np_connection_list_get_n_items;
  iface->get_item = np_connection_list_get_item;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (NpConnectionList, np_connection_list, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL,
                                                      np_connection_list_model_init))

static void
np_connection_list_finalize (GObject *object)
{
  NpConnectionList *self = (NpConnectionList *)object;

  g_clear_pointer (&self->items, g_ptr_array_unref);
  g_clear_pointer (&self->pending, g_ptr_array_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (np_connection_list_parent_class)->finalize (object);
}

static void
np_connection_list_class_init (NpConnectionListClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = np_connection_list_finalize;
}

static void
np_connection_list_init (NpConnectionList *self)
{
  g_mutex_init (&self->lock);
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
  self->pending = g_ptr_array_new_with_free_func (g_object_unref);
}

NpConnectionList *
np_connection_list_new (void)
{
  return g_object_new (NP_TYPE_CONNECTION_LIST, NULL);
}

/* Holds @connection, whose handshake is under way, out of the model. */
void
np_connection_list_add_pending (NpConnectionList *self,
                                NpPipeConnection *connection)
{
  g_mutex_lock (&self->lock);
  g_assert (!g_ptr_array_find (self->pending, connection, NULL));
  g_assert (!g_ptr_array_find (self->items, connection, NULL));
  g_ptr_array_add (self->pending, g_object_ref (connection));
  g_mutex_unlock (&self->lock);
}

/* Moves @connection, whose handshake is complete, into the model.
 * Returns FALSE when it was not pending (it ended meanwhile). */
gboolean
np_connection_list_promote (NpConnectionList *self,
                            NpPipeConnection *connection)
{
  gpointer item = NULL;
  guint position = 0;

  g_mutex_lock (&self->lock);
  if (g_ptr_array_find (self->pending, connection, &position))
    {
      item = g_ptr_array_steal_index (self->pending, position);
      position = self->items->len;
      g_ptr_array_add (self->items, item);
    }
  g_mutex_unlock (&self->lock);

  if (item == NULL)
    return FALSE;

  g_list_model_items_changed (G_LIST_MODEL (self), position, 0, 1);
  return TRUE;
}

/* Returns FALSE when @connection was held neither in the model nor
 * pending; @was_listed tells which. */
gboolean
np_connection_list_remove (NpConnectionList *self,
                           NpPipeConnection *connection,
                           gboolean         *was_listed)
{
  g_autoptr(NpPipeConnection) removed = NULL;
  gboolean listed = FALSE;
  guint position;

  g_mutex_lock (&self->lock);
  if (g_ptr_array_find (self->items, connection, &position))
    {
      removed = g_ptr_array_steal_index (self->items, position);
      listed = TRUE;
    }
  else if (g_ptr_array_find (self->pending, connection, &position))
    removed = g_ptr_array_steal_index (self->pending, position);
  g_mutex_unlock (&self->lock);

  *was_listed = listed;
  if (removed == NULL)
    return FALSE;

  if (listed)
    g_list_model_items_changed (G_LIST_MODEL (self), position, 1, 0);
  return TRUE;
}

/* How many connections the server holds: in the model, and pending. */
guint
np_connection_list_get_n_held (NpConnectionList *self)
{
  guint n;

  g_mutex_lock (&self->lock);
  n = self->items->len + self->pending->len;
  g_mutex_unlock (&self->lock);

  return n;
}

/* The connections in the model as they are now, each with a reference;
 * with @pending, those still in their handshake after them. */
GPtrArray *
np_connection_list_snapshot (NpConnectionList *self,
                             gboolean          pending)
{
  GPtrArray *snapshot;

  g_mutex_lock (&self->lock);
  snapshot = g_ptr_array_new_full (self->items->len, g_object_unref);
  for (guint i = 0; i < self->items->len; i++)
    g_ptr_array_add (snapshot, g_object_ref (g_ptr_array_index (self->items, i)));
  for (guint i = 0; pending && i < self->pending->len; i++)
    g_ptr_array_add (snapshot, g_object_ref (g_ptr_array_index (self->pending, i)));
  g_mutex_unlock (&self->lock);

  return snapshot;
}
