/* np-pipe-connection-private.h: what the server and the client do with
 * their connections
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "np-connection-owner-private.h"
#include "np-pipe-connection.h"
#include "np-pipe-request.h"
#include "np-limits-private.h"
#include "np-stream-private.h"

G_BEGIN_DECLS

/* What _np_pipe_connection_run() runs. */
typedef enum
{
  NP_CONNECTION_OP_SEND,
  NP_CONNECTION_OP_FLUSH,
  NP_CONNECTION_OP_PING,
  NP_CONNECTION_OP_REQUEST,
  NP_CONNECTION_OP_CLOSE,
} NpConnectionOp;

NpPipeConnection *_np_pipe_connection_new    (GObject            *owner,
                                              GMainContext       *context,
                                              GSocketConnection  *socket_connection,
                                              GTlsConnection     *tls,
                                              const char         *name,
                                              NpLimits         *limits,
                                              guint64             id,
                                              gboolean            client_end,
                                              GError            **error);
void              _np_pipe_connection_start  (NpPipeConnection   *self,
                                              guint               handshake_timeout);
void              _np_pipe_connection_refuse (NpPipeConnection   *self,
                                              const GError       *reason);
void              _np_pipe_connection_detach (NpPipeConnection   *self);
void              _np_pipe_connection_begin_close
                                             (NpPipeConnection   *self);
gboolean          _np_pipe_connection_is_done(NpPipeConnection   *self);
guint             _np_pipe_connection_count_peers_closed
                                             (GPtrArray          *connections);
NpPipeRequest    *_np_pipe_connection_new_request
                                             (NpPipeConnection   *self,
                                              guint32             id,
                                              GBytes             *message,
                                              GUnixFDList        *fds);
gboolean          _np_pipe_connection_send   (NpPipeConnection   *self,
                                              GBytes             *message,
                                              GError            **error);
void              _np_pipe_connection_set_queued_mirror
                                             (NpPipeConnection   *self,
                                              gsize              *mirror);
gboolean          _np_pipe_connection_send_held
                                             (NpPipeConnection   *self,
                                              GBytes             *message,
                                              GError            **error);
gboolean          _np_pipe_connection_block  (NpPipeConnection   *self,
                                              NpStreamWait       *wait,
                                              gint64              deadline,
                                              GCancellable       *cancellable);
void              _np_pipe_connection_run    (NpPipeConnection   *self,
                                              NpConnectionOp      op,
                                              GBytes             *message,
                                              GUnixFDList        *fds,
                                              GTask              *task);
GBytes           *_np_pipe_connection_request_finish
                                             (GTask              *task,
                                              GUnixFDList       **out_fds,
                                              GError            **error);

G_END_DECLS
