/* np-pipe-client-internal.h: what the files of NpPipeClient share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-pipe-client.h"
#include "np-server-watch-private.h"
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
  NP_PIPE_CLIENT_PROP_QUEUED_BYTES,
  NP_PIPE_CLIENT_PROP_AUTO_RECONNECT,
  NP_PIPE_CLIENT_PROP_RECONNECT_INTERVAL,
  NP_PIPE_CLIENT_PROP_RECONNECT_MAX_INTERVAL,
  NP_PIPE_CLIENT_PROP_MAX_FDS_PER_MESSAGE,
  NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUESTS,
  NP_PIPE_CLIENT_PROP_MAX_PENDING_REQUEST_BYTES,
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
  NpStreamWait *connect_wait;    /* or a connect_sync */
  NpStream     *connect_stream;  /* the stream either waits on */
  GCancellable *attempt;         /* cancels the connect under way */
  GCancellable *reconnect_attempt;  /* attempt, when the reconnect loop made it */
  gulong        attempt_id;      /* handler of connect_task on attempt */
  guint         max_message_size;
  guint         max_queued_bytes;
  guint         connect_timeout;
  guint         close_timeout;
  guint         request_timeout;
  guint         reconnect_interval;
  guint         reconnect_max_interval;
  /* Reconnecting: the next back-off, before jitter, and what waits for
   * the server to come back. */
  guint         reconnect_delay;
  NpServerWatch *reconnect_watch;
  /* Attempts made before the current wait ran out. */
  guint         reconnect_early;
  /* When the client last became connected (monotonic, µs). */
  gint64        connected_since;
  /* Messages sent while disconnected with auto-reconnect, to write
   * first once connected again; their size, framing included. */
  GQueue        held;
  gsize         held_bytes;
  /* Why the server refused the last connection (or the last message),
   * until the next connect or close(): what calls made meanwhile fail
   * with. */
  GError       *refusal;
  /* The largest message the last server accepted, 0 when none said. */
  guint32       last_peer_max_message_size;
  guint         max_fds_per_message;
  guint         max_pending_requests;
  guint         max_pending_request_bytes;
  guint         connected : 1;
  guint         auto_reconnect : 1;
  guint         reconnecting : 1;    /* lost its connection, tries again until close() */
  guint         reconnect_soon : 1;  /* the server showed up since the last wait */
  guint         reconnect_early_attempt : 1; /* the attempt under way was an early one */
  guint         reconnect_timer_full : 1;  /* the timer is a whole back-off */

  /* What the connected stream has queued, published by it for
   * np_pipe_client_get_queued_bytes(), which takes no lock. */
  gsize         queued_bytes;
};

extern const NpStreamCallbacks np_pipe_client_stream_callbacks;

void  np_pipe_client_install_properties (GObjectClass *object_class);
void  np_pipe_client_note_refusal_locked(NpPipeClient *self,
                                         const GError *error);
void  np_pipe_client_set_connected_locked
                                        (NpPipeClient *self,
                                         gboolean      connected);
void  np_pipe_client_connected          (NpPipeClient *self,
                                         GTask        *task,
                                         const GError *error);
gboolean np_pipe_client_connected_sync  (NpPipeClient *self,
                                         NpStream     *stream,
                                         const GError *error);
guint np_pipe_client_get_uint           (NpPipeClient *self,
                                         const guint  *field);
void  np_pipe_client_connect_internal   (NpPipeClient        *self,
                                         GCancellable        *cancellable,
                                         gboolean             wait_for_server,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data);
gboolean np_pipe_client_may_hold_locked (NpPipeClient *self);
gboolean np_pipe_client_hold_locked     (NpPipeClient  *self,
                                         GBytes        *message,
                                         GError       **error);
guint np_pipe_client_drop_held_locked   (NpPipeClient *self);
void  np_pipe_client_release_held_locked(NpPipeClient *self);
NpServerWatch *np_pipe_client_stop_reconnecting_locked
                                        (NpPipeClient *self);
void  np_pipe_client_reconnect_later    (NpPipeClient *self);
void  np_pipe_client_stop_auto_reconnect(NpPipeClient *self);

G_END_DECLS
