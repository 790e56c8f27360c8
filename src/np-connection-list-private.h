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

NpPipeConnectionList *np_pipe_connection_list_new      (void);
void                  np_pipe_connection_list_append   (NpPipeConnectionList *self,
                                                        NpPipeConnection     *connection);
gboolean              np_pipe_connection_list_remove   (NpPipeConnectionList *self,
                                                        NpPipeConnection     *connection);
GPtrArray            *np_pipe_connection_list_snapshot (NpPipeConnectionList *self);

G_END_DECLS
