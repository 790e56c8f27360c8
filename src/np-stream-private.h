/* np-stream-private.h: one framed, non-blocking socket, shared by
 * NpPipeConnection (server side) and NpPipeClient
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "np-frame-private.h"

G_BEGIN_DECLS

typedef struct _NpStream NpStream;

typedef struct
{
  /* A whole message arrived. */
  void (*message) (GObject      *owner,
                   GBytes       *message);
  /* The stream ended: @error is NULL after a clean close by either side.
   * Called once; the stream must not be used for I/O afterwards. */
  void (*closed)  (GObject      *owner,
                   const GError *error);
} NpStreamCallbacks;

NpStream *np_stream_new                   (GObject                 *owner,
                                           const NpStreamCallbacks *callbacks,
                                           GSocketConnection       *connection,
                                           GMainContext            *context,
                                           const char              *label,
                                           guint32                  max_message_size);
void      np_stream_free                  (NpStream                *self);
void      np_stream_set_handshake_timeout (NpStream                *self,
                                           guint                    timeout_msec);
void      np_stream_set_queue_limit       (NpStream                *self,
                                           guint64                  max_queued_bytes,
                                           gboolean                 drop_when_full);
gboolean  np_stream_is_open               (NpStream                *self);
gboolean  np_stream_send                  (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
gboolean  np_stream_flush_sync            (NpStream                *self,
                                           GCancellable            *cancellable,
                                           GError                 **error);
void      np_stream_flush_async           (NpStream                *self,
                                           GTask                   *task);
void      np_stream_ping_async            (NpStream                *self,
                                           GTask                   *task);
guint64   np_stream_get_queued_bytes      (NpStream                *self);
void      np_stream_close                 (NpStream                *self);
void      np_stream_close_sync            (NpStream                *self);
void      np_stream_abort                 (NpStream                *self,
                                           const GError            *error);

G_END_DECLS
