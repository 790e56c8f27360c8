/* np-pipe-connection-private.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-pipe-connection.h"
#include "np-pipe-server.h"

G_BEGIN_DECLS

typedef struct
{
  guint max_message_size;
  guint max_queued_bytes;
  guint handshake_timeout;
  guint close_timeout;
  guint request_timeout;
  guint max_fds_per_message;
  guint max_pending_requests;
  guint max_pending_request_bytes;
} NpConnectionLimits;

NpPipeConnection *_np_pipe_connection_new    (NpPipeServer             *server,
                                              GSocketConnection        *connection,
                                              guint64                   id,
                                              GError                  **error);
void              _np_pipe_connection_accept (NpPipeConnection         *self,
                                              const NpConnectionLimits *limits);
void              _np_pipe_connection_refuse (NpPipeConnection         *self,
                                              const GError             *reason);
void              _np_pipe_connection_detach (NpPipeConnection         *self);
void              _np_pipe_connection_begin_close
                                             (NpPipeConnection         *self);
guint             _np_pipe_connection_count_peers_closed
                                             (GPtrArray                *connections);

G_END_DECLS
