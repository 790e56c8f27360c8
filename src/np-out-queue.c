/* np-out-queue.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "np-out-queue-private.h"

/* Copied bytes go into chunks of at least this size, so that a burst of
 * small frames is one allocation and one vector. */
#define NP_OUT_CHUNK_SIZE (16 * 1024)
/* Written chunks a busy queue keeps to copy into again, instead of
 * handing them back to malloc, which may return them to the system and
 * fault them in anew on every cycle of a producer that fills the queue
 * and waits for it to drain. An empty queue keeps none. */
#define NP_OUT_SPARE_MAX 32

#define NO_FRAME G_MAXUINT64

struct _NpOutChunk
{
  NpOutChunk   *next;
  GBytes       *bytes;      /* NULL for a chunk of copied bytes */
  const guint8 *data;
  gsize         len;
  gsize         offset;     /* bytes of it already written */
  gsize         cap;
  /* Where the first frame that starts in this chunk starts (NO_FRAME if
   * none does) and where the last one that ends in it ends (0 if none
   * does): what np_out_queue_cut() needs to keep frames whole. */
  guint64       frame_start;
  guint64       frame_end;
  /* Descriptors that go with the first byte of the chunk, the first of
   * a frame: until that byte is written. */
  GUnixFDList  *fds;
  guint8        inline_data[];
};

void
np_out_queue_init (NpOutQueue *queue)
{
  memset (queue, 0, sizeof *queue);
}

/* Keeps the queue's size in each *mirror set, for readers that take no
 * lock: relaxed stores, as cheap as plain ones. */
static inline void
np_out_queue_publish (NpOutQueue *queue)
{
  gsize size = (gsize) np_out_queue_get_size (queue);

  if (queue->mirrors[0] != NULL)
    __atomic_store_n (queue->mirrors[0], size, __ATOMIC_RELAXED);
  if (queue->mirrors[1] != NULL)
    __atomic_store_n (queue->mirrors[1], size, __ATOMIC_RELAXED);
}

/* Publishes the queue's size in *@mirror (or no longer, with %NULL):
 * one of two places, by @index. */
void
np_out_queue_set_mirror (NpOutQueue *queue,
                         guint       index,
                         gsize      *mirror)
{
  g_assert (index < G_N_ELEMENTS (queue->mirrors));

  queue->mirrors[index] = mirror;
  np_out_queue_publish (queue);
}

static void
np_out_chunk_free (NpOutChunk *chunk)
{
  g_clear_pointer (&chunk->bytes, g_bytes_unref);
  g_clear_object (&chunk->fds);
  g_free (chunk);
}

static void
np_out_queue_free_spares (NpOutQueue *queue)
{
  while (queue->spare != NULL)
    {
      NpOutChunk *next = queue->spare->next;

      g_free (queue->spare);
      queue->spare = next;
    }
  queue->n_spare = 0;
}

/* Keeps @chunk, written, for np_out_queue_append_copy_full(). */
static void
np_out_queue_recycle (NpOutQueue *queue,
                      NpOutChunk *chunk)
{
  if (chunk->bytes != NULL || chunk->cap != NP_OUT_CHUNK_SIZE || queue->n_spare >= NP_OUT_SPARE_MAX)
    {
      np_out_chunk_free (chunk);
      return;
    }

  g_clear_object (&chunk->fds);
  chunk->next = queue->spare;
  queue->spare = chunk;
  queue->n_spare++;
}

static void
np_out_queue_free_from (NpOutChunk *chunk)
{
  while (chunk != NULL)
    {
      NpOutChunk *next = chunk->next;

      np_out_chunk_free (chunk);
      chunk = next;
    }
}

/* Drops everything queued: it will never be written. */
void
np_out_queue_clear (NpOutQueue *queue)
{
  np_out_queue_free_from (queue->head);
  np_out_queue_free_spares (queue);
  queue->head = queue->tail = NULL;
  queue->written = queue->queued;
  np_out_queue_publish (queue);
}

static void
np_out_queue_append_chunk (NpOutQueue *queue,
                           NpOutChunk *chunk)
{
  if (queue->tail != NULL)
    queue->tail->next = chunk;
  else
    queue->head = chunk;
  queue->tail = chunk;
}

static void
np_out_queue_append_copy_full (NpOutQueue   *queue,
                               const guint8 *data,
                               gsize         len,
                               gboolean      new_chunk)
{
  NpOutChunk *tail = queue->tail;

  if (len == 0)
    return;

  if (new_chunk || tail == NULL || tail->bytes != NULL || tail->cap - tail->len < len)
    {
      gsize cap = MAX (NP_OUT_CHUNK_SIZE, len);

      if (cap == NP_OUT_CHUNK_SIZE && queue->spare != NULL)
        {
          tail = queue->spare;
          queue->spare = tail->next;
          queue->n_spare--;
        }
      else
        tail = g_malloc (sizeof (NpOutChunk) + cap);
      tail->next = NULL;
      tail->bytes = NULL;
      tail->data = tail->inline_data;
      tail->len = 0;
      tail->offset = 0;
      tail->cap = cap;
      tail->frame_start = NO_FRAME;
      tail->frame_end = 0;
      tail->fds = NULL;
      np_out_queue_append_chunk (queue, tail);
    }

  memcpy (tail->inline_data + tail->len, data, len);
  tail->len += len;
}

static inline void
np_out_queue_append_copy (NpOutQueue   *queue,
                          const guint8 *data,
                          gsize         len)
{
  np_out_queue_append_copy_full (queue, data, len, FALSE);
}

static void
np_out_queue_append_bytes (NpOutQueue *queue,
                           GBytes     *bytes)
{
  NpOutChunk *chunk = g_new0 (NpOutChunk, 1);
  gsize len;

  chunk->data = g_bytes_get_data (bytes, &len);
  chunk->len = len;
  chunk->bytes = g_bytes_ref (bytes);
  chunk->frame_start = NO_FRAME;
  np_out_queue_append_chunk (queue, chunk);
}

/* Queues one frame, @header then @payload (which may be %NULL). Small
 * payloads are copied; larger ones are written from @payload itself.
 * Returns the position where the frame starts; it ends at @queued. */
guint64
np_out_queue_push_frame (NpOutQueue   *queue,
                         const guint8 *header,
                         gsize         header_len,
                         GBytes       *payload)
{
  return np_out_queue_push_frame_with_fds (queue, header, header_len, payload, NULL);
}

/* Queues one frame whose first byte carries @fds (nullable): the frame
 * starts a chunk of its own, so that no write carries both the bytes of
 * an earlier frame and these descriptors, which go with the first byte
 * of the write that has them. A reference to @fds is kept until then. */
guint64
np_out_queue_push_frame_with_fds (NpOutQueue   *queue,
                                  const guint8 *header,
                                  gsize         header_len,
                                  GBytes       *payload,
                                  GUnixFDList  *fds)
{
  guint64 start = queue->queued;
  gsize len = payload != NULL ? g_bytes_get_size (payload) : 0;

  g_assert (header_len > 0);

  np_out_queue_append_copy_full (queue, header, header_len, fds != NULL);
  if (fds != NULL)
    queue->tail->fds = g_object_ref (fds);
  /* A header is never split across chunks. */
  if (queue->tail->frame_start == NO_FRAME)
    queue->tail->frame_start = start;

  if (len == 0)
    ;
  else if (len <= NP_OUT_QUEUE_COALESCE_MAX)
    np_out_queue_append_copy (queue, g_bytes_get_data (payload, NULL), len);
  else
    np_out_queue_append_bytes (queue, payload);

  queue->queued += header_len + len;
  queue->tail->frame_end = queue->queued;
  np_out_queue_publish (queue);

  return start;
}

/* Queues the bytes that come before any frame (the hello): unlike a
 * frame, np_out_queue_cut() never drops them. */
void
np_out_queue_push_preamble (NpOutQueue   *queue,
                            const guint8 *data,
                            gsize         len)
{
  g_assert (len > 0);

  np_out_queue_append_copy (queue, data, len);
  queue->queued += len;
  queue->tail->frame_end = queue->queued;
  np_out_queue_publish (queue);
}

/* The descriptors to send with what np_out_queue_peek() gives, if any. */
GUnixFDList *
np_out_queue_peek_fds (const NpOutQueue *queue)
{
  return queue->head != NULL ? queue->head->fds : NULL;
}

/* Fills @vectors with what is queued, oldest first, up to the next chunk
 * that carries descriptors (which must start a write of its own).
 * Returns how many. */
guint
np_out_queue_peek (const NpOutQueue *queue,
                   GOutputVector    *vectors,
                   guint             max_vectors)
{
  guint n = 0;

  for (NpOutChunk *c = queue->head; c != NULL && n < max_vectors; c = c->next)
    {
      if (n > 0 && c->fds != NULL)
        break;

      vectors[n].buffer = c->data + c->offset;
      vectors[n].size = c->len - c->offset;
      n++;
    }

  return n;
}

/* Forgets the first @written bytes: the peer has them. */
void
np_out_queue_consume (NpOutQueue *queue,
                      gsize       written)
{
  g_assert (written <= np_out_queue_get_size (queue));

  queue->written += written;

  /* The descriptors went with the first byte. */
  if (written > 0)
    g_clear_object (&queue->head->fds);

  while (written > 0)
    {
      NpOutChunk *chunk = queue->head;
      gsize left = chunk->len - chunk->offset;

      if (written < left)
        {
          chunk->offset += written;
          break;
        }


      written -= left;
      queue->head = chunk->next;
      if (queue->head == NULL)
        queue->tail = NULL;
      np_out_queue_recycle (queue, chunk);
    }

  if (queue->head == NULL)
    np_out_queue_free_spares (queue);

  np_out_queue_publish (queue);
}

/* The absolute position of the first byte in the head chunk's storage. */
static inline guint64
np_out_queue_head_start (const NpOutQueue *queue)
{
  return queue->head != NULL ? queue->written - queue->head->offset : queue->written;
}

/* Takes the frames in [@start, @end) out of the queue, as if they had
 * never been pushed: positions after @end move back by their size. The
 * range must be whole frames none of whose bytes were written; returns
 * %FALSE, changing nothing, when writing them has begun. */
gboolean
np_out_queue_remove (NpOutQueue *queue,
                     guint64     start,
                     guint64     end)
{
  guint64 delta = end - start;
  guint64 chunk_start = np_out_queue_head_start (queue);
  NpOutChunk *prev = NULL;
  NpOutChunk *chunk;

  g_assert (start <= end && end <= queue->queued);

  if (start < queue->written)
    return FALSE;
  if (delta == 0)
    return TRUE;

  chunk = queue->head;
  while (chunk != NULL)
    {
      NpOutChunk *next = chunk->next;
      guint64 chunk_end;
      guint64 cut_start, cut_end;

      chunk_end = chunk_start + chunk->len;
      cut_start = MAX (start, chunk_start);
      cut_end = MIN (end, chunk_end);

      if (cut_start >= cut_end)
        {
          /* Not in the range: only its positions may move. */
          if (chunk->frame_end >= end)
            chunk->frame_end -= delta;
          if (chunk->frame_start != NO_FRAME && chunk->frame_start >= end)
            chunk->frame_start -= delta;
        }
      else if (cut_start == chunk_start && cut_end == chunk_end && chunk->offset == 0)
        {
          /* All of it goes. */
          if (prev != NULL)
            prev->next = next;
          else
            queue->head = next;
          np_out_chunk_free (chunk);
          chunk_start = chunk_end;
          chunk = next;
          continue;
        }
      else
        {
          /* Part of a chunk of copied bytes: a payload chunk always lies
           * whole inside its frame. */
          guint8 *data = chunk->inline_data;

          g_assert (chunk->bytes == NULL);

          /* They went with the first byte, which goes: the frames that
           * follow it in the chunk carry none. */
          if (cut_start == chunk_start)
            g_clear_object (&chunk->fds);

          memmove (data + (cut_start - chunk_start), data + (cut_end - chunk_start),
                   chunk_end - cut_end);
          chunk->len -= cut_end - cut_start;

          if (chunk->frame_end >= end)
            chunk->frame_end -= delta;
          else if (chunk->frame_end > start)
            /* The last frame that ended here was removed: the one before
             * it ended at @start, if that is in this chunk at all. */
            chunk->frame_end = start > chunk_start ? start : 0;

          if (chunk->frame_start == NO_FRAME || chunk->frame_start < start)
            ;
          else if (chunk->frame_start >= end)
            chunk->frame_start -= delta;
          else
            /* The first frame that started here was removed: what follows
             * it starts at @start, if any of it is in this chunk. */
            chunk->frame_start = cut_end < chunk_end ? start : NO_FRAME;
        }

      prev = chunk;
      chunk_start = chunk_end;
      chunk = next;
    }

  queue->tail = prev;
  queue->queued -= delta;
  np_out_queue_publish (queue);

  return TRUE;
}

/* Drops every frame not yet begun, keeping the rest of the one being
 * written (and perhaps a few whole frames after it, up to the end of its
 * chunk), so that what the peer receives still ends on a frame boundary.
 * Used before a last frame is queued on an error. */
void
np_out_queue_cut (NpOutQueue *queue)
{
  guint64 chunk_start = np_out_queue_head_start (queue);
  NpOutChunk *prev = NULL;

  for (NpOutChunk *chunk = queue->head; chunk != NULL;
       prev = chunk, chunk_start += chunk->len, chunk = chunk->next)
    {
      guint64 cut;

      /* The first frame boundary at or after what was written. */
      if (chunk->frame_start != NO_FRAME && chunk->frame_start >= queue->written)
        cut = chunk->frame_start;
      else if (chunk->frame_end != 0 && chunk->frame_end >= queue->written)
        cut = chunk->frame_end;
      else
        continue;

      np_out_queue_free_from (chunk->next);
      chunk->next = NULL;
      queue->queued = cut;

      if (cut == chunk_start)
        {
          /* Nothing of this chunk stays. */
          np_out_chunk_free (chunk);
          if (prev != NULL)
            prev->next = NULL;
          else
            queue->head = NULL;
          queue->tail = prev;
        }
      else
        {
          chunk->len = cut - chunk_start;
          chunk->frame_end = cut;
          if (chunk->frame_start != NO_FRAME && chunk->frame_start >= cut)
            chunk->frame_start = NO_FRAME;
          queue->tail = chunk;
        }

      /* It may end exactly where writing stopped. */
      if (queue->head == NULL || cut == queue->written)
        np_out_queue_clear (queue);
      np_out_queue_publish (queue);
      return;
    }

  /* Every frame ends in some chunk, so only an empty queue gets here. */
  g_assert (queue->head == NULL);
}
