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
#include "np-pipe-connection-list.h"

G_BEGIN_DECLS

NpPipeConnectionList *np_pipe_connection_list_new         (void);
void                  np_pipe_connection_list_add_pending (NpPipeConnectionList *self,
                                                           NpPipeConnection     *connection);
gboolean              np_pipe_connection_list_promote     (NpPipeConnectionList *self,
                                                           NpPipeConnection     *connection);
gboolean              np_pipe_connection_list_remove      (NpPipeConnectionList *self,
                                                           NpPipeConnection     *connection,
                                                           gboolean             *was_listed);
guint                 np_pipe_connection_list_get_n_held  (NpPipeConnectionList *self);
GPtrArray            *np_pipe_connection_list_snapshot    (NpPipeConnectionList *self,
                                                           gboolean              pending);
void                  np_pipe_connection_list_clear       (NpPipeConnectionList *self,
                                                           GMainContext         *context);

G_END_DECLS
