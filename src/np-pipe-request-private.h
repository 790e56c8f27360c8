/* np-pipe-request-private.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-pipe-request.h"
#include "np-stream-private.h"

G_BEGIN_DECLS

NpPipeRequest *_np_pipe_request_new             (NpStream         *stream,
                                                 guint32           id,
                                                 GBytes           *message,
                                                 GUnixFDList      *fds,
                                                 NpPipeConnection *connection);
void           _np_pipe_request_reply_unhandled (NpPipeRequest    *self);

G_END_DECLS
