/* test-out-queue.c: the output queue on its own: coalescing, writing
 * from the caller's bytes, partial writes, taking frames out and cutting
 * after the frame being written
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <np/np.h>

#include "np-out-queue-private.h"

/* Frames of the test: an 8-byte header holding the payload's length and
 * an index, then a payload that depends on both. */
static GBytes *
payload_new (guint index,
             gsize size)
{
  guint8 *data = g_malloc (MAX (size, 1));

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (index * 31 + i);

  return g_bytes_new_take (data, size);
}

static guint64
push (NpOutQueue *queue,
      guint       index,
      gsize       size)
{
  g_autoptr(GBytes) payload = payload_new (index, size);
  guint8 header[8];

  memcpy (header, &index, 4);
  memcpy (header + 4, &(guint32) { size }, 4);

  return np_out_queue_push_frame (queue, header, sizeof header, payload);
}

/* Writes the queue out in pieces of at most @step bytes, as a socket
 * that takes a little at a time would, into @out. */
static void
drain (NpOutQueue *queue,
       GByteArray *out,
       gsize       step)
{
  while (!np_out_queue_is_empty (queue))
    {
      GOutputVector vectors[8];
      guint n = np_out_queue_peek (queue, vectors, G_N_ELEMENTS (vectors));
      gsize taken = 0;

      g_assert_cmpuint (n, >, 0);
      for (guint i = 0; i < n && taken < step; i++)
        {
          gsize len = MIN (vectors[i].size, step - taken);

          g_byte_array_append (out, vectors[i].buffer, len);
          taken += len;
        }
      np_out_queue_consume (queue, taken);
    }
}

/* Checks @out is exactly the frames @indices, whole and in order. */
static void
assert_frames (GByteArray   *out,
               const guint  *indices,
               const gsize  *sizes,
               guint         n)
{
  gsize offset = 0;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) expected = payload_new (indices[i], sizes[i]);
      guint32 index, size;

      g_assert_cmpuint (offset + 8, <=, out->len);
      memcpy (&index, out->data + offset, 4);
      memcpy (&size, out->data + offset + 4, 4);
      g_assert_cmpuint (index, ==, indices[i]);
      g_assert_cmpuint (size, ==, sizes[i]);
      offset += 8;
      g_assert_cmpmem (out->data + offset, size, g_bytes_get_data (expected, NULL), size);
      offset += size;
    }

  g_assert_cmpuint (offset, ==, out->len);
}

static void
test_coalesce_and_reference (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) big = payload_new (9, 100000);
  const guint indices[] = { 0, 1, 2, 9, 3 };
  const gsize sizes[] = { 10, 0, NP_OUT_QUEUE_COALESCE_MAX, 100000, 5 };
  GOutputVector vectors[8];
  NpOutQueue queue;
  guint8 header[8];
  guint n;

  np_out_queue_init (&queue);
  push (&queue, 0, 10);
  push (&queue, 1, 0);
  push (&queue, 2, NP_OUT_QUEUE_COALESCE_MAX);

  /* Small frames share one chunk of copied bytes. */
  n = np_out_queue_peek (&queue, vectors, G_N_ELEMENTS (vectors));
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (np_out_queue_get_size (&queue), ==, 3 * 8 + 10 + NP_OUT_QUEUE_COALESCE_MAX);

  /* A large payload is written from the caller's bytes, not copied. */
  memcpy (header, &(guint32) { 9 }, 4);
  memcpy (header + 4, &(guint32) { 100000 }, 4);
  g_assert_cmpuint (np_out_queue_push_frame (&queue, header, sizeof header, big),
                    ==, 3 * 8 + 10 + NP_OUT_QUEUE_COALESCE_MAX);
  push (&queue, 3, 5);
  n = np_out_queue_peek (&queue, vectors, G_N_ELEMENTS (vectors));
  g_assert_cmpuint (n, ==, 3);
  g_assert_true (vectors[1].buffer == g_bytes_get_data (big, NULL));

  drain (&queue, out, 7);
  assert_frames (out, indices, sizes, G_N_ELEMENTS (indices));
  g_assert_cmpuint (queue.written, ==, queue.queued);
  g_assert_cmpuint (queue.queued, ==, out->len);
  np_out_queue_clear (&queue);
}

static void
test_remove (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  const guint indices[] = { 0, 2, 4, 6 };
  const gsize sizes[] = { 300, 20, 70000, 9 };
  guint64 start1, start3, start5, end5;
  NpOutQueue queue;

  np_out_queue_init (&queue);
  push (&queue, 0, 300);
  start1 = push (&queue, 1, 40);                /* copied, in the first chunk */
  push (&queue, 2, 20);
  start3 = push (&queue, 3, 50000);             /* by reference */
  push (&queue, 4, 70000);
  start5 = push (&queue, 5, 3);                 /* copied, after a payload */
  end5 = queue.queued;
  push (&queue, 6, 9);

  /* Start writing: the first frame is begun. */
  {
    GOutputVector vector;

    np_out_queue_peek (&queue, &vector, 1);
    g_byte_array_append (out, vector.buffer, 100);
    np_out_queue_consume (&queue, 100);
  }
  g_assert_false (np_out_queue_remove (&queue, 0, 308));

  /* Taking frames out moves what follows. */
  g_assert_true (np_out_queue_remove (&queue, start5, end5));
  g_assert_true (np_out_queue_remove (&queue, start3, start3 + 8 + 50000));
  g_assert_true (np_out_queue_remove (&queue, start1, start1 + 8 + 40));
  g_assert_cmpuint (queue.queued, ==, (8 + 300) + (8 + 20) + (8 + 70000) + (8 + 9));

  drain (&queue, out, 4096);
  assert_frames (out, indices, sizes, G_N_ELEMENTS (indices));
  np_out_queue_clear (&queue);
}

static void
test_remove_everything_left (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  const guint indices[] = { 0, 3 };
  const gsize sizes[] = { 10, 4 };
  guint64 start;
  NpOutQueue queue;

  np_out_queue_init (&queue);
  push (&queue, 0, 10);
  drain (&queue, out, 1000);
  start = push (&queue, 1, 5000);
  push (&queue, 2, 6);
  g_assert_true (np_out_queue_remove (&queue, start, queue.queued));
  g_assert_true (np_out_queue_is_empty (&queue));

  /* The queue works on after being emptied that way. */
  push (&queue, 3, 4);
  drain (&queue, out, 1);
  assert_frames (out, indices, sizes, G_N_ELEMENTS (indices));
  np_out_queue_clear (&queue);
}

/* A frame with descriptors taken out takes them along: the small frames
 * queued after it, in the same chunk, go without them. */
static void
test_remove_with_fds (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) payload = payload_new (1, 30);
  const guint indices[] = { 0, 2 };
  const gsize sizes[] = { 10, 12 };
  guint8 header[8];
  guint64 start;
  NpOutQueue queue;

  np_out_queue_init (&queue);
  push (&queue, 0, 10);
  memcpy (header, &(guint32) { 1 }, 4);
  memcpy (header + 4, &(guint32) { 30 }, 4);
  start = np_out_queue_push_frame_with_fds (&queue, header, sizeof header, payload, fds);
  push (&queue, 2, 12);

  g_assert_true (np_out_queue_remove (&queue, start, start + 8 + 30));
  g_assert_null (np_out_queue_peek_fds (&queue));
  drain (&queue, out, 4096);
  assert_frames (out, indices, sizes, G_N_ELEMENTS (indices));

  /* And when it is the first frame queued. */
  start = np_out_queue_push_frame_with_fds (&queue, header, sizeof header, payload, fds);
  push (&queue, 2, 12);
  g_assert_nonnull (np_out_queue_peek_fds (&queue));
  g_assert_true (np_out_queue_remove (&queue, start, start + 8 + 30));
  g_assert_null (np_out_queue_peek_fds (&queue));
  np_out_queue_clear (&queue);
}

/* Cutting keeps the frame being written whole, and whatever whole frames
 * share its chunk, and nothing after. */
static void
test_cut (void)
{
  /* What comes before the frames stays, whatever happens to them. */
  {
    const guint8 preamble[12] = { 'N', 'P', 'I', 'P', 1 };
    NpOutQueue queue;

    np_out_queue_init (&queue);
    np_out_queue_push_preamble (&queue, preamble, sizeof preamble);
    push (&queue, 0, 10);
    push (&queue, 1, 90000);
    np_out_queue_cut (&queue);
    g_assert_cmpuint (np_out_queue_get_size (&queue), ==, sizeof preamble);
    np_out_queue_clear (&queue);
  }

  const gsize steps[] = { 0, 3, 8, 308, 400, 8 + 300 + 8 + 50000 + 4 };

  for (guint s = 0; s < G_N_ELEMENTS (steps); s++)
    {
      g_autoptr(GByteArray) out = g_byte_array_new ();
      NpOutQueue queue;
      gsize offset = 0;

      np_out_queue_init (&queue);
      push (&queue, 0, 300);
      push (&queue, 1, 50000);
      push (&queue, 2, 20);
      push (&queue, 3, 70000);

      while (offset < steps[s])
        {
          GOutputVector vector;
          gsize len;

          np_out_queue_peek (&queue, &vector, 1);
          len = MIN (vector.size, steps[s] - offset);
          g_byte_array_append (out, vector.buffer, len);
          np_out_queue_consume (&queue, len);
          offset += len;
        }

      np_out_queue_cut (&queue);
      drain (&queue, out, 999);

      /* What went out is whole frames, a prefix of what was pushed. */
      {
        const guint indices[] = { 0, 1, 2, 3 };
        const gsize sizes[] = { 300, 50000, 20, 70000 };
        gsize end = 0;
        guint n = 0;

        while (end < out->len)
          end += 8 + sizes[n++];
        assert_frames (out, indices, sizes, n);
        g_assert_cmpuint (out->len, >=, steps[s]);
        /* A frame not begun when cut is gone, unless it shared the
         * chunk of the one that was. */
        if (steps[s] == 0)
          g_assert_cmpuint (n, ==, 0);
        if (steps[s] == 400)
          g_assert_cmpuint (n, ==, 2);
      }
      np_out_queue_clear (&queue);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/OutQueue/coalesce-and-reference", test_coalesce_and_reference);
  g_test_add_func ("/Np/OutQueue/remove", test_remove);
  g_test_add_func ("/Np/OutQueue/remove-everything-left", test_remove_everything_left);
  g_test_add_func ("/Np/OutQueue/remove-with-fds", test_remove_with_fds);
  g_test_add_func ("/Np/OutQueue/cut", test_cut);

  return g_test_run ();
}
