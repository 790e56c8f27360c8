/* np-out-queue-private.h: the bytes queued to a peer, as whole frames
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

G_BEGIN_DECLS

/* Payloads up to this size are copied into the queue; larger ones are
 * queued by reference and written straight from the caller's GBytes. */
#define NP_OUT_QUEUE_COALESCE_MAX 4096

typedef struct _NpOutChunk NpOutChunk;

/* Positions are absolute byte counts since the queue was created: a
 * frame pushed when @queued was P occupies [P, P + its size), so callers
 * can wait for "everything up to P" whatever happens to the chunks. */
typedef struct
{
  NpOutChunk *head;
  NpOutChunk *tail;
  guint64     queued;    /* position of the end of the last frame */
  guint64     written;   /* position of the next byte to write */
  gsize      *mirrors[2]; /* where the size is published, if anywhere */
  NpOutChunk *spare;     /* written chunks kept for reuse while busy */
  guint       n_spare;
} NpOutQueue;

void     np_out_queue_init       (NpOutQueue       *queue);
void     np_out_queue_clear      (NpOutQueue       *queue);
void     np_out_queue_push_preamble
                                 (NpOutQueue       *queue,
                                  const guint8     *data,
                                  gsize             len);
guint64  np_out_queue_push_frame (NpOutQueue       *queue,
                                  const guint8     *header,
                                  gsize             header_len,
                                  GBytes           *payload);
guint64  np_out_queue_push_frame_with_fds
                                 (NpOutQueue       *queue,
                                  const guint8     *header,
                                  gsize             header_len,
                                  GBytes           *payload,
                                  GUnixFDList      *fds);
GUnixFDList *np_out_queue_peek_fds
                                 (const NpOutQueue *queue);
guint    np_out_queue_peek       (const NpOutQueue *queue,
                                  GOutputVector    *vectors,
                                  guint             max_vectors);
void     np_out_queue_consume    (NpOutQueue       *queue,
                                  gsize             written);
gboolean np_out_queue_remove     (NpOutQueue       *queue,
                                  guint64           start,
                                  guint64           end);
void     np_out_queue_cut        (NpOutQueue       *queue);
void     np_out_queue_set_mirror (NpOutQueue       *queue,
                                  guint             index,
                                  gsize            *mirror);

static inline guint64
np_out_queue_get_size (const NpOutQueue *queue)
{
  return queue->queued - queue->written;
}

static inline gboolean
np_out_queue_is_empty (const NpOutQueue *queue)
{
  return queue->queued == queue->written;
}

G_END_DECLS
