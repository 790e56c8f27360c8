/* test-frame.c: the wire format's encoder and decoder, on their own
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <np/np.h>

#include "np-frame-private.h"

static void
test_hello_round_trip (void)
{
  guint8 bytes[NP_HELLO_SIZE];
  const guint8 expected[NP_HELLO_SIZE] = { 'N', 'P', 'I', 'P', 1, 0, 0, 0, 0x01, 0x02, 0x03, 0x04 };
  g_autoptr(GError) error = NULL;
  NpHello hello;

  np_hello_encode (bytes, 0x01020304);
  g_assert_cmpmem (bytes, sizeof bytes, expected, sizeof expected);

  g_assert_true (np_hello_decode (bytes, &hello, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hello.version, ==, NP_PROTOCOL_VERSION);
  g_assert_cmpuint (hello.max_message_size, ==, 0x01020304);
}

static void
test_hello_versions (void)
{
  guint8 bytes[NP_HELLO_SIZE];
  g_autoptr(GError) error = NULL;
  NpHello hello;

  /* A later version is spoken to in ours. */
  np_hello_encode (bytes, 0);
  bytes[4] = 200;
  g_assert_true (np_hello_decode (bytes, &hello, &error));
  g_assert_cmpuint (hello.version, ==, NP_PROTOCOL_VERSION);
  g_assert_cmpuint (hello.max_message_size, ==, 0);

  bytes[4] = 0;
  g_assert_false (np_hello_decode (bytes, &hello, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
}

static void
test_hello_malformed (void)
{
  static const struct {
    guint       offset;
    guint8      value;
    const char *what;
  } cases[] = {
    { 0, 'X', "bad handshake magic" },
    { 3, 'Q', "bad handshake magic" },
    { 5, 1, "reserved handshake bits" },
    { 7, 0x80, "reserved handshake bits" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      guint8 bytes[NP_HELLO_SIZE];
      NpHello hello;

      np_hello_encode (bytes, 1024);
      bytes[cases[i].offset] = cases[i].value;
      g_assert_false (np_hello_decode (bytes, &hello, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
      g_assert_nonnull (strstr (error->message, cases[i].what));
    }
}

static void
test_header_round_trip (void)
{
  static const NpFrameType types[] = {
    NP_FRAME_MESSAGE, NP_FRAME_PING, NP_FRAME_PONG, NP_FRAME_GOODBYE,
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr(GError) error = NULL;
      guint8 bytes[NP_FRAME_HEADER_SIZE];
      NpFrameHeader header;

      np_frame_header_encode (bytes, types[i], 1000);
      g_assert_cmpuint (bytes[0], ==, 0);
      g_assert_cmpuint (bytes[2], ==, 0x03);
      g_assert_cmpuint (bytes[3], ==, 0xe8);
      g_assert_cmpuint (bytes[4], ==, types[i]);
      g_assert_true (np_frame_header_decode (bytes, 4096, &header, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (header.type, ==, types[i]);
      g_assert_cmpuint (header.length, ==, 1000);
    }
}

static void
test_header_limits (void)
{
  g_autoptr(GError) error = NULL;
  guint8 bytes[NP_FRAME_HEADER_SIZE];
  NpFrameHeader header;

  /* A message at the limit is fine, one byte over is refused from the
   * header alone. */
  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 4096);
  g_assert_true (np_frame_header_decode (bytes, 4096, &header, &error));
  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 4097);
  g_assert_false (np_frame_header_decode (bytes, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, G_MAXUINT32);
  g_assert_false (np_frame_header_decode (bytes, G_MAXUINT32 - 1, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  /* Control frames are small whatever the message limit. */
  np_frame_header_encode (bytes, NP_FRAME_PING, NP_CONTROL_PAYLOAD_MAX);
  g_assert_true (np_frame_header_decode (bytes, 0, &header, &error));
  np_frame_header_encode (bytes, NP_FRAME_PING, NP_CONTROL_PAYLOAD_MAX + 1);
  g_assert_false (np_frame_header_decode (bytes, G_MAXUINT32, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* Unknown types and reserved bits. */
  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 1);
  bytes[4] = 4;
  g_assert_false (np_frame_header_decode (bytes, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 1);
  bytes[6] = 1;
  g_assert_false (np_frame_header_decode (bytes, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
}

static void
test_goodbye (void)
{
  g_autoptr(GBytes) payload = np_goodbye_encode (NP_PIPE_ERROR_QUEUE_FULL, "the peer does not read");
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  const guint8 unknown[] = { 0, 0, 0, 77, 'l', 'a', 't', 'e', 'r' };
  const guint8 huge[] = { 0x80, 0, 0, 0 };
  const guint8 invalid_utf8[] = { 0, 0, 0, 5, 0xff, 'x' };

  g_assert_cmpuint (len, ==, 4 + strlen ("the peer does not read"));
  error = np_goodbye_decode (data, len);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_assert_nonnull (strstr (error->message, "the peer does not read"));
  g_clear_error (&error);

  /* A code this version does not know keeps its value. */
  error = np_goodbye_decode (unknown, sizeof unknown);
  g_assert_error (error, NP_PIPE_ERROR, 77);
  g_clear_error (&error);

  error = np_goodbye_decode (huge, sizeof huge);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
  g_clear_error (&error);

  /* Too short for its code. */
  error = np_goodbye_decode (data, 3);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* The reason is made valid UTF-8. */
  error = np_goodbye_decode (invalid_utf8, sizeof invalid_utf8);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
test_goodbye_long_reason (void)
{
  g_autoptr(GString) reason = g_string_new (NULL);
  g_autoptr(GBytes) payload = NULL;
  gsize len;
  const guint8 *data;

  /* Over the control frame limit, in two-byte characters: cut on a
   * character boundary. */
  while (reason->len < 2 * NP_CONTROL_PAYLOAD_MAX)
    g_string_append (reason, "é");

  payload = np_goodbye_encode (NP_PIPE_ERROR_PROTOCOL, reason->str);
  data = g_bytes_get_data (payload, &len);
  g_assert_cmpuint (len, <=, NP_CONTROL_PAYLOAD_MAX);
  g_assert_true (g_utf8_validate ((const char *) data + 4, len - 4, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Frame/hello/round-trip", test_hello_round_trip);
  g_test_add_func ("/Np/Frame/hello/versions", test_hello_versions);
  g_test_add_func ("/Np/Frame/hello/malformed", test_hello_malformed);
  g_test_add_func ("/Np/Frame/header/round-trip", test_header_round_trip);
  g_test_add_func ("/Np/Frame/header/limits", test_header_limits);
  g_test_add_func ("/Np/Frame/goodbye", test_goodbye);
  g_test_add_func ("/Np/Frame/goodbye/long-reason", test_goodbye_long_reason);

  return g_test_run ();
}
