/* np-pipe-server-internal.h: what the files of NpPipeServer share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-connection-list-private.h"
#include "np-listener-private.h"
#include "np-pipe-server-private.h"
#include "np-socket-file-private.h"

G_BEGIN_DECLS

enum {
  NP_PIPE_SERVER_PROP_0,
  NP_PIPE_SERVER_PROP_NAME,
  NP_PIPE_SERVER_PROP_PATH,
  NP_PIPE_SERVER_PROP_RUNNING,
  NP_PIPE_SERVER_PROP_N_CONNECTIONS,
  NP_PIPE_SERVER_PROP_CONNECTIONS,
  NP_PIPE_SERVER_PROP_MAX_MESSAGE_SIZE,
  NP_PIPE_SERVER_PROP_MAX_QUEUED_BYTES,
  NP_PIPE_SERVER_PROP_MAX_CONNECTIONS,
  NP_PIPE_SERVER_PROP_ALLOW_OTHER_USERS,
  NP_PIPE_SERVER_PROP_HANDSHAKE_TIMEOUT,
  NP_PIPE_SERVER_PROP_CLOSE_TIMEOUT,
  NP_PIPE_SERVER_PROP_REQUEST_TIMEOUT,
  NP_PIPE_SERVER_PROP_MAX_FDS_PER_MESSAGE,
  NP_PIPE_SERVER_PROP_MAX_PENDING_REQUESTS,
  NP_PIPE_SERVER_PROP_MAX_PENDING_REQUEST_BYTES,
  NP_PIPE_SERVER_N_PROPS
};

extern GParamSpec *np_pipe_server_properties [NP_PIPE_SERVER_N_PROPS];

struct _NpPipeServer
{
  GObject           parent_instance;

  GMainContext     *context;
  NpPipeConnectionList *connections;

  /* Guarded by the lock; the limits are read by the accept loop. */
  GMutex            lock;
  char             *name;     /* set once, at construction or start */
  char             *path;     /* set once, at the first start */
  NpListener       *listener;
  NpSocketFile      socket_file;
  int               lock_fd;
  guint64           last_id;
  guint             fd_limit;
  guint             max_message_size;
  guint             max_queued_bytes;
  guint             max_connections;
  guint             handshake_timeout;
  guint             close_timeout;
  guint             request_timeout;
  guint             max_fds_per_message;
  guint             max_pending_requests;
  guint             max_pending_request_bytes;
  guint             allow_other_users : 1;
  guint             running : 1;
  guint             disposing : 1;
  guint             activated : 1;  /* the socket is the service manager's */
};

/* Sets a guint field under the lock, and notifies when it changed. */
void np_pipe_server_set_uint (NpPipeServer *self,
                              guint        *field,
                              guint         value,
                              guint         prop_id);
guint np_pipe_server_get_uint (NpPipeServer *self,
                               const guint  *field);

G_END_DECLS
