/* np-test-util.h: helpers shared by the test programs
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <string.h>

#include <gio/gunixsocketaddress.h>
#include <np/np.h>

/* Iterates the main context until @cond holds: no sleeping, no timing. */
#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    while (!(cond)) \
      g_main_context_iteration (NULL, TRUE); \
  } G_STMT_END

static inline void
np_test_error_free0 (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

/* A raw socket peer, to speak the protocol (or not) by hand. */
static inline GSocket *
np_test_raw_connect (const char *path)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);

  return socket;
}

/* Writes all of @data; when the server runs in this thread and the
 * socket is full, the loop runs until the server has read some. */
static inline void
np_test_raw_write (GSocket      *socket,
                   const guint8 *data,
                   gsize         len)
{
  g_socket_set_blocking (socket, FALSE);
  while (len > 0)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) data, len, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_main_context_iteration (NULL, TRUE);
          continue;
        }

      g_assert_no_error (error);
      data += n;
      len -= n;
    }
}

/* A test message: client id and sequence number, then a pattern that
 * depends on both, so a lost, repeated, reordered or corrupt message
 * shows. */
#define NP_TEST_MESSAGE_MIN 8

static inline guint8
np_test_pattern (guint32 client,
                 guint32 seq,
                 gsize   offset)
{
  return (guint8) (client * 31 + seq * 7 + offset);
}

static inline GBytes *
np_test_message_new (guint32 client,
                     guint32 seq,
                     gsize   size)
{
  guint8 *data;

  g_assert (size >= NP_TEST_MESSAGE_MIN);

  data = g_malloc (size);
  memcpy (data, &client, 4);
  memcpy (data + 4, &seq, 4);
  for (gsize i = NP_TEST_MESSAGE_MIN; i < size; i++)
    data[i] = np_test_pattern (client, seq, i);

  return g_bytes_new_take (data, size);
}

static inline gboolean
np_test_message_parse (GBytes  *message,
                       guint32 *client,
                       guint32 *seq)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (message, &size);

  if (size < NP_TEST_MESSAGE_MIN)
    return FALSE;

  memcpy (client, data, 4);
  memcpy (seq, data + 4, 4);
  for (gsize i = NP_TEST_MESSAGE_MIN; i < size; i++)
    if (data[i] != np_test_pattern (*client, *seq, i))
      return FALSE;

  return TRUE;
}

/* A size in [8, 2048] that looks random but both ends can compute. */
static inline gsize
np_test_random_size (guint32 client,
                     guint32 seq)
{
  guint32 h = client * 2654435761u ^ seq * 2246822519u;

  h ^= h >> 15;
  h *= 2654435761u;
  h ^= h >> 13;

  return NP_TEST_MESSAGE_MIN + h % (2048 - NP_TEST_MESSAGE_MIN + 1);
}

/* Sizes that cross the read chunk and coalescing boundaries. */
static inline gsize
np_test_size_for (guint32 seq)
{
  static const gsize sizes[] = { 8, 64, 4095, 4096, 4097, 65535, 65536, 70000, 300000, 16 };

  return sizes[seq % G_N_ELEMENTS (sizes)];
}

/* Sizes that both ends can compute, mostly small, one in four over the
 * payload size the output queue copies (4 KiB: larger ones are queued by
 * reference) and one in sixteen over 64 KiB (written at once by the
 * sender), in no pattern a queue could line up with. */
static inline gsize
np_test_mixed_size (guint32 client,
                    guint32 seq)
{
  gsize small = np_test_random_size (client, seq);
  guint32 pick = (guint32) np_test_random_size (seq, client) * 2654435761u >> 28;

  if (pick == 0)
    return 65536 + small * 3;
  if (pick % 4 == 1)
    return 4097 + small;
  return small;
}
