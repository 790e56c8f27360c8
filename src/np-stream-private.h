/* np-stream-private.h: one framed, non-blocking connection, shared by
 * NpPipeConnection (server side) and NpPipeClient
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "np-frame-private.h"
#include "np-limits-private.h"
#include "np-transport-private.h"

G_BEGIN_DECLS

typedef struct _NpStream NpStream;

typedef enum
{
  NP_STREAM_SERVER_END = 0,
  /* The client's end: the peer may refuse it (before version 4, with a
   * hello and a goodbye in one write, so that its hello alone does not
   * tell that it accepted), and a send that would pass max-queued-bytes
   * fails instead of dropping the peer. */
  NP_STREAM_CLIENT_END = 1 << 0,
  /* Over TCP: no descriptors either way. */
  NP_STREAM_REMOTE     = 1 << 1,
} NpStreamFlags;

/* What a blocking call of the owner waits for, done from the owner's
 * callbacks (np_stream_block()). */
typedef struct
{
  GMutex    mutex;
  GCond     cond;
  gboolean  done;
  GError   *error;
} NpStreamWait;

void      np_stream_wait_init             (NpStreamWait            *wait);
void      np_stream_wait_clear            (NpStreamWait            *wait);
void      np_stream_wait_done             (NpStreamWait            *wait,
                                           const GError            *error);
gboolean  np_stream_wait_is_done          (NpStreamWait            *wait);

NpStream *np_stream_new                   (GObject                 *connection,
                                           GObject                 *owner,
                                           NpTransport             *transport,
                                           GMainContext            *context,
                                           const char              *label,
                                           NpLimits                *limits,
                                           guint32                  max_message_size,
                                           NpStreamFlags            flags);
NpStream *np_stream_ref                   (NpStream                *self);
void      np_stream_unref                 (NpStream                *self);
void      np_stream_start                 (NpStream                *self,
                                           guint                    handshake_timeout);
gboolean  np_stream_take_connected        (NpStream                *self);
void      np_stream_set_queued_mirror     (NpStream                *self,
                                           gsize                   *mirror);
gboolean  np_stream_is_connected          (NpStream                *self);
void      np_stream_detach                (NpStream                *self);
const char *np_stream_get_label           (NpStream                *self);
guint     np_stream_count_peers_closed    (NpStream * const        *streams,
                                           guint                    n);
gboolean  np_stream_is_done               (NpStream                *self);
guint32   np_stream_get_peer_max_message_size
                                          (NpStream                *self);
guint64   np_stream_get_queued_bytes      (NpStream                *self);
gboolean  np_stream_send                  (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
gboolean  np_stream_send_with_fds         (NpStream                *self,
                                           GBytes                  *message,
                                           GUnixFDList             *fds,
                                           GError                 **error);
gboolean  np_stream_send_held             (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
void      np_stream_send_async            (NpStream                *self,
                                           GBytes                  *message,
                                           GTask                   *task);
gboolean  np_stream_flush_sync            (NpStream                *self,
                                           GCancellable            *cancellable,
                                           GError                 **error);
void      np_stream_flush_async           (NpStream                *self,
                                           GTask                   *task);
void      np_stream_ping_async            (NpStream                *self,
                                           GTask                   *task);
void      np_stream_close                 (NpStream                *self);
gboolean  np_stream_close_sync            (NpStream                *self,
                                           GCancellable            *cancellable,
                                           GError                 **error);
void      np_stream_close_async           (NpStream                *self,
                                           GTask                   *task);
void      np_stream_abort                 (NpStream                *self,
                                           const GError            *error);
void      np_stream_request_async         (NpStream                *self,
                                           GBytes                  *message,
                                           GUnixFDList             *fds,
                                           GTask                   *task);
GBytes   *np_stream_request_finish        (GTask                   *task,
                                           GUnixFDList            **out_fds,
                                           GError                 **error);
void      np_stream_reply                 (NpStream                *self,
                                           guint32                  id,
                                           GBytes                  *reply,
                                           GUnixFDList             *fds,
                                           const GError            *reply_error);
GBytes   *np_stream_request_sync          (NpStream                *self,
                                           GBytes                  *message,
                                           GUnixFDList             *fds,
                                           GUnixFDList            **out_fds,
                                           GCancellable            *cancellable,
                                           GError                 **error);
gboolean  np_stream_block                 (NpStream                *self,
                                           NpStreamWait            *wait,
                                           gint64                   deadline,
                                           GCancellable            *cancellable);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NpStream, np_stream_unref)


G_END_DECLS
