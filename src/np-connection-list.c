/* np-connection-list.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-connection-list-private.h"
#include "np-lock-private.h"

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
/* Inside, it also holds, out of the model, the peers still in their
 * handshake: they count against the server's limits, but are no
 * connection of the application's until their handshake is complete
 * (np_pipe_connection_list_promote()). */
struct _NpPipeConnectionList
{
  GObject    parent_instance;

  GMutex      lock;
  GPtrArray  *items;
  GHashTable *pending;   /* a set: each key holds a reference */
};

static GHashTable *
np_pending_new (void)
{
  return g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
}

/* Where @connection is in the model: a scan of pointers, which a server
 * of 10,000 clients does in microseconds, where g_ptr_array_find() made
 * a call for each. */
static gboolean
np_pipe_connection_list_find_locked (NpPipeConnectionList *self,
                                     NpPipeConnection     *connection,
                                     guint                *position)
{
  gpointer *items = self->items->pdata;
  guint len = self->items->len;

  NP_ENSURE_LOCKED (&self->lock);

  for (guint i = 0; i < len; i++)
    if (items[i] == connection)
      {
        *position = i;
        return TRUE;
      }

  return FALSE;
}

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
  g_clear_pointer (&self->pending, g_hash_table_unref);
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
  self->pending = np_pending_new ();
}

NpPipeConnectionList *
np_pipe_connection_list_new (void)
{
  return g_object_new (NP_TYPE_PIPE_CONNECTION_LIST, NULL);
}

/* Holds @connection, whose handshake is under way, out of the model. */
void
np_pipe_connection_list_add_pending (NpPipeConnectionList *self,
                                     NpPipeConnection     *connection)
{
  g_mutex_lock (&self->lock);
  g_assert (!g_hash_table_contains (self->pending, connection));
  g_hash_table_add (self->pending, g_object_ref (connection));
  g_mutex_unlock (&self->lock);
}

/* Moves @connection, whose handshake is complete, into the model.
 * Returns FALSE when it was not pending (it ended meanwhile). */
gboolean
np_pipe_connection_list_promote (NpPipeConnectionList *self,
                                 NpPipeConnection     *connection)
{
  gpointer item = NULL;
  guint position = 0;

  g_mutex_lock (&self->lock);
  /* The set's reference goes to the model. */
  if (g_hash_table_steal (self->pending, connection))
    {
      item = connection;
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
np_pipe_connection_list_remove (NpPipeConnectionList *self,
                                NpPipeConnection     *connection,
                                gboolean             *was_listed)
{
  g_autoptr(NpPipeConnection) removed = NULL;
  gboolean listed = FALSE;
  guint position;

  g_mutex_lock (&self->lock);
  if (g_hash_table_steal (self->pending, connection))
    removed = connection;
  else if (np_pipe_connection_list_find_locked (self, connection, &position))
    {
      removed = g_ptr_array_steal_index (self->items, position);
      listed = TRUE;
    }
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
np_pipe_connection_list_get_n_held (NpPipeConnectionList *self)
{
  guint n;

  g_mutex_lock (&self->lock);
  n = self->items->len + g_hash_table_size (self->pending);
  g_mutex_unlock (&self->lock);

  return n;
}

/* The connections in the model as they are now, each with a reference;
 * with @pending, those still in their handshake after them. */
GPtrArray *
np_pipe_connection_list_snapshot (NpPipeConnectionList *self,
                                  gboolean              pending)
{
  GPtrArray *snapshot;

  g_mutex_lock (&self->lock);
  snapshot = g_ptr_array_new_full (self->items->len, g_object_unref);
  for (guint i = 0; i < self->items->len; i++)
    g_ptr_array_add (snapshot, g_object_ref (g_ptr_array_index (self->items, i)));
  if (pending)
    {
      GHashTableIter iter;
      gpointer connection;

      g_hash_table_iter_init (&iter, self->pending);
      while (g_hash_table_iter_next (&iter, &connection, NULL))
        g_ptr_array_add (snapshot, g_object_ref (connection));
    }
  g_mutex_unlock (&self->lock);

  return snapshot;
}

/* Takes everything out; returns how many were in the model. */
static guint
np_pipe_connection_list_take_all (NpPipeConnectionList *self)
{
  g_autoptr(GPtrArray) items = NULL;
  g_autoptr(GHashTable) pending = NULL;

  g_mutex_lock (&self->lock);
  items = g_steal_pointer (&self->items);
  pending = g_steal_pointer (&self->pending);
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
  self->pending = np_pending_new ();
  g_mutex_unlock (&self->lock);

  return items->len;
}

static gboolean
np_pipe_connection_list_clear_cb (gpointer data)
{
  NpPipeConnectionList *self = data;
  guint removed = np_pipe_connection_list_take_all (self);

  if (removed > 0)
    g_list_model_items_changed (G_LIST_MODEL (self), 0, removed, 0);

  return G_SOURCE_REMOVE;
}

/* Empties the list of a server that is going away. When the server
 * holds the only reference, nobody can see it: at once, without a word.
 * Otherwise from @context, the server's, where items-changed belongs. */
void
np_pipe_connection_list_clear (NpPipeConnectionList *self,
                               GMainContext         *context)
{
  g_autoptr(GSource) idle = NULL;

  if (g_atomic_int_get (&G_OBJECT (self)->ref_count) == 1)
    {
      np_pipe_connection_list_take_all (self);
      return;
    }

  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_static_name (idle, "[np] connections of a disposed server");
  g_source_set_callback (idle, np_pipe_connection_list_clear_cb,
                         g_object_ref (self), g_object_unref);
  g_source_attach (idle, context);
}
