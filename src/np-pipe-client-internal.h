/* np-pipe-client-internal.h: what the files of NpPipeClient share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-pipe-client.h"
#include "np-stream-private.h"

G_BEGIN_DECLS

enum {
  NP_PIPE_CLIENT_PROP_0,
  NP_PIPE_CLIENT_PROP_NAME,
  NP_PIPE_CLIENT_PROP_PATH,
  NP_PIPE_CLIENT_PROP_CONNECTED,
  NP_PIPE_CLIENT_PROP_MAX_MESSAGE_SIZE,
  NP_PIPE_CLIENT_PROP_MAX_QUEUED_BYTES,
  NP_PIPE_CLIENT_PROP_PEER_MAX_MESSAGE_SIZE,
  NP_PIPE_CLIENT_PROP_CONNECT_TIMEOUT,
  NP_PIPE_CLIENT_PROP_CLOSE_TIMEOUT,
  NP_PIPE_CLIENT_PROP_REQUEST_TIMEOUT,
  NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE,
  NP_PIPE_CLIENT_N_PROPS
};

extern GParamSpec *np_pipe_client_properties [NP_PIPE_CLIENT_N_PROPS];

struct _NpPipeClient
{
  GObject       parent_instance;

  /* Constant once constructed. */
  char         *name;
  char         *path;
  GMainContext *context;

  /* Shared with the client's streams: sending takes one lock. */
  GMutex       *lock;
  /* Guarded by the lock. */
  NpStream     *stream;          /* the latest connection, perhaps closed */
  GPtrArray    *retired;         /* earlier connections, still closing */
  GTask        *connect_task;    /* a connect_async waiting for the hello */
  NpStream     *connect_stream;  /* the stream it waits on */
  GCancellable *attempt;         /* cancels the connect under way */
  gulong        attempt_id;      /* handler of connect_task on attempt */
  guint         max_message_size;
  guint         max_queued_bytes;
  guint         connect_timeout;
  guint         close_timeout;
  guint         request_timeout;
  guint         max_fds_per_message;
  guint         connected : 1;

  /* What the connected stream has queued, published by it for
   * np_pipe_client_get_queued_bytes(), which takes no lock. */
  gsize         queued_bytes;
};

extern const NpStreamCallbacks np_pipe_client_stream_callbacks;

void  np_pipe_client_install_properties (GObjectClass *object_class);
void  np_pipe_client_set_connected_locked
                                        (NpPipeClient *self,
                                         gboolean      connected);
void  np_pipe_client_connected          (NpPipeClient *self,
                                         GTask        *task,
                                         const GError *error);
guint np_pipe_client_get_uint           (NpPipeClient *self,
                                         const guint  *field);

G_END_DECLS
