/* np-connection-list-private.h: a server's connections, as a read-only
 * list model
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "np-pipe-connection.h"

G_BEGIN_DECLS

#define NP_TYPE_CONNECTION_LIST (np_connection_list_get_type ())

G_DECLARE_FINAL_TYPE (NpConnectionList, np_connection_list, NP, CONNECTION_LIST, GObject)

NpConnectionList *np_connection_list_new         (void);
void              np_connection_list_add_pending (NpConnectionList *self,
                                                  NpPipeConnection *connection);
gboolean          np_connection_list_promote     (NpConnectionList *self,
                                                  NpPipeConnection *connection);
gboolean          np_connection_list_remove      (NpConnectionList *self,
                                                  NpPipeConnection *connection,
                                                  gboolean         *was_listed);
guint             np_connection_list_get_n_held  (NpConnectionList *self);
GPtrArray        *np_connection_list_snapshot    (NpConnectionList *self,
                                                  gboolean          pending);

G_END_DECLS
