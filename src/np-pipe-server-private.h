/* np-pipe-server-private.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gunixfdlist.h>

#include "np-pipe-connection.h"
#include "np-pipe-request.h"
#include "np-pipe-server.h"

G_BEGIN_DECLS

GMainContext *_np_pipe_server_get_context (NpPipeServer *self);
void _np_pipe_server_message_received    (NpPipeServer     *self,
                                          NpPipeConnection *connection,
                                          GBytes           *message);
void _np_pipe_server_message_with_fds_received
                                         (NpPipeServer     *self,
                                          NpPipeConnection *connection,
                                          GBytes           *message,
                                          GUnixFDList      *fds);
gboolean _np_pipe_server_request_received (NpPipeServer     *self,
                                           NpPipeConnection *connection,
                                           NpPipeRequest    *request);
void _np_pipe_server_client_opened      (NpPipeServer     *self,
                                          NpPipeConnection *connection);
void _np_pipe_server_client_disconnected (NpPipeServer     *self,
                                          NpPipeConnection *connection,
                                          const GError     *error);

G_END_DECLS
