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
#include "np-transport-private.h"

G_BEGIN_DECLS

typedef struct _NpStream NpStream;

/* The default of max-fds-per-message. */
#define NP_STREAM_MAX_FDS_DEFAULT 16
/* The defaults of max-pending-requests and max-pending-request-bytes
 * (their property docs say why these). */
#define NP_STREAM_MAX_PENDING_REQUESTS_DEFAULT      4096
#define NP_STREAM_MAX_PENDING_REQUEST_BYTES_DEFAULT (64 * 1024 * 1024)

/* What a stream reports to its owner. Every call is made in the stream's
 * main context, with no lock held and a reference on the owner (and on
 * what enter() returned) until the dispatch ends. */
typedef struct
{
  /* Optional: takes a reference on something else the callbacks use, for
   * the length of one dispatch; leave() drops it. */
  gpointer (*enter)   (GObject      *owner);
  void     (*leave)   (GObject      *owner,
                       gpointer      held);
  /* The peer's handshake is complete: the peer accepted us. */
  void     (*opened)  (GObject      *owner,
                       NpStream     *stream);
  /* A whole message arrived. */
  void     (*message) (GObject      *owner,
                       GBytes       *message);
  /* A whole message with descriptors arrived: they are the owner's
   * (closed with @fds unless it keeps a reference). */
  void     (*message_with_fds)
                      (GObject      *owner,
                       GBytes       *message,
                       GUnixFDList  *fds);
  /* A request arrived, with @fds when it carried descriptors (NULL
   * otherwise; closed with @fds unless the owner keeps a reference):
   * answer it, once, with np_stream_reply(). */
  void     (*request) (GObject      *owner,
                       NpStream     *stream,
                       guint32       id,
                       GBytes       *message,
                       GUnixFDList  *fds);
  /* Optional: what is queued, having passed half the queue limit,
   * drained to a quarter of it. Not called once the stream is closed. */
  void     (*drained) (GObject      *owner,
                       NpStream     *stream);
  /* The stream ended: @error is NULL after a clean close by either side.
   * Called once. */
  void     (*closed)  (GObject      *owner,
                       NpStream     *stream,
                       const GError *error);
  /* The peer is a server, which may refuse us: before version 4, with
   * a hello and a goodbye in one write, so that its hello alone does
   * not tell that it accepted; opened() then waits for what follows it
   * in the same read. */
  gboolean peer_may_refuse;
} NpStreamCallbacks;

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

GMutex   *np_stream_lock_new              (void);
GMutex   *np_stream_lock_ref              (GMutex                  *lock);
void      np_stream_lock_unref            (GMutex                  *lock);
NpStream *np_stream_new                   (GObject                 *owner,
                                           const NpStreamCallbacks *callbacks,
                                           NpTransport             *transport,
                                           GMainContext            *context,
                                           GMutex                  *lock,
                                           const char              *label,
                                           guint32                  max_message_size);
NpStream *np_stream_ref                   (NpStream                *self);
void      np_stream_unref                 (NpStream                *self);
void      np_stream_start                 (NpStream                *self);
void      np_stream_detach                (NpStream                *self);
void      np_stream_set_handshake_timeout (NpStream                *self,
                                           guint                    timeout_msec);
void      np_stream_set_close_timeout     (NpStream                *self,
                                           guint                    timeout_msec);
void      np_stream_set_queue_limit       (NpStream                *self,
                                           guint64                  max_queued_bytes,
                                           gboolean                 drop_when_full);
void      np_stream_set_queued_mirror_locked
                                          (NpStream                *self,
                                           gsize                   *mirror);
void      np_stream_set_queue_limit_locked(NpStream                *self,
                                           guint64                  max_queued_bytes,
                                           gboolean                 drop_when_full);
void      np_stream_configure_locked      (NpStream                *self,
                                           guint64                  max_queued_bytes,
                                           gboolean                 drop_when_full,
                                           guint                    handshake_timeout,
                                           guint                    close_timeout,
                                           guint                    request_timeout);
const char *np_stream_get_label           (NpStream                *self);
gboolean  np_stream_is_open               (NpStream                *self);
guint     np_stream_count_peers_closed    (NpStream * const        *streams,
                                           guint                    n);
gboolean  np_stream_is_done_locked        (NpStream                *self);
gboolean  np_stream_is_done               (NpStream                *self);
guint32   np_stream_get_peer_max_message_size
                                          (NpStream                *self);
guint64   np_stream_get_queued_bytes      (NpStream                *self);
guint64   np_stream_get_queued_bytes_locked
                                          (NpStream                *self);
gboolean  np_stream_send                  (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
gboolean  np_stream_send_with_fds         (NpStream                *self,
                                           GBytes                  *message,
                                           GUnixFDList             *fds,
                                           GError                 **error);
gboolean  np_stream_send_with_fds_locked  (NpStream                *self,
                                           GBytes                  *message,
                                           GUnixFDList             *fds,
                                           GError                 **error);
void      np_stream_set_max_fds           (NpStream                *self,
                                           guint                    max_fds);
void      np_stream_set_max_fds_locked    (NpStream                *self,
                                           guint                    max_fds);
gboolean  np_stream_get_supports_fds      (NpStream                *self);
gboolean  np_stream_send_locked           (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
gboolean  np_stream_send_held             (NpStream                *self,
                                           GBytes                  *message,
                                           GError                 **error);
gboolean  np_stream_send_held_locked      (NpStream                *self,
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
void      np_stream_set_request_timeout   (NpStream                *self,
                                           guint                    timeout_msec);
void      np_stream_set_pending_limits    (NpStream                *self,
                                           guint                    max_requests,
                                           guint                    max_bytes);
void      np_stream_set_pending_limits_locked
                                          (NpStream                *self,
                                           guint                    max_requests,
                                           guint                    max_bytes);
gboolean  np_stream_get_supports_requests (NpStream                *self);
gboolean  np_stream_block                 (NpStream                *self,
                                           NpStreamWait            *wait,
                                           gint64                   deadline,
                                           GCancellable            *cancellable);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NpStream, np_stream_unref)

/* The functions ending in _locked are for an owner that shares the
 * stream's lock (np_stream_new() with its own), to call with it held. */

G_END_DECLS
