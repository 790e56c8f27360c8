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
  const guint8 expected[NP_HELLO_SIZE] = { 'N', 'P', 'I', 'P', 4, 0, 0, 0, 0x01, 0x02, 0x03, 0x04 };
  g_autoptr(GError) error = NULL;
  NpHello hello;

  np_hello_encode (bytes, 0x01020304);
  g_assert_cmpmem (bytes, sizeof bytes, expected, sizeof expected);

  g_assert_true (np_hello_decode (bytes, &hello, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hello.version, ==, NP_PROTOCOL_VERSION);
  g_assert_cmpuint (hello.max_message_size, ==, 0x01020304);

  /* A version 1 peer is spoken to in version 1. */
  bytes[4] = 1;
  g_assert_true (np_hello_decode (bytes, &hello, &error));
  g_assert_cmpuint (hello.version, ==, 1);
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
      g_assert_true (np_frame_header_decode (bytes, 1, 4096, &header, &error));
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
  g_assert_true (np_frame_header_decode (bytes, 1, 4096, &header, &error));
  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 4097);
  g_assert_false (np_frame_header_decode (bytes, 1, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, G_MAXUINT32);
  g_assert_false (np_frame_header_decode (bytes, 1, G_MAXUINT32 - 1, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  /* Control frames are small whatever the message limit. */
  np_frame_header_encode (bytes, NP_FRAME_PING, NP_CONTROL_PAYLOAD_MAX);
  g_assert_true (np_frame_header_decode (bytes, 1, 0, &header, &error));
  np_frame_header_encode (bytes, NP_FRAME_PING, NP_CONTROL_PAYLOAD_MAX + 1);
  g_assert_false (np_frame_header_decode (bytes, 1, G_MAXUINT32, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* Unknown types and reserved bits. */
  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 1);
  bytes[4] = 4;
  g_assert_false (np_frame_header_decode (bytes, 1, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  np_frame_header_encode (bytes, NP_FRAME_MESSAGE, 1);
  bytes[6] = 1;
  g_assert_false (np_frame_header_decode (bytes, 1, 4096, &header, &error));
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
  g_clear_error (&error);

  /* Each byte that is not part of a valid UTF-8 character, a NUL too,
   * becomes U+FFFD. */
  {
    const guint8 bad[] = { 0, 0, 0, 8, 'a', 0xff, 'b', 0, 'c', 0xe2, 0x82, 'd', 0xc3, 0xa9 };

    error = np_goodbye_decode (bad, sizeof bad);
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
    g_assert_cmpstr (error->message, ==,
                     "The peer closed the connection: a\uFFFDb\uFFFDc\uFFFD\uFFFDdé");
  }
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

static void
test_requests (void)
{
  g_autoptr(GError) error = NULL;
  guint8 bytes[NP_REQUEST_HEADER_SIZE];
  NpFrameHeader header;

  np_request_header_encode (bytes, NP_FRAME_REQUEST, 0x01020304, 100);
  g_assert_true (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (header.type, ==, NP_FRAME_REQUEST);
  g_assert_cmpuint (header.length, ==, 104);
  g_assert_cmpuint (np_request_id_decode (bytes + NP_FRAME_HEADER_SIZE), ==, 0x01020304);

  /* Version 1 has no such frames. */
  g_assert_false (np_frame_header_decode (bytes, 1, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  /* The message is held to the limit, the id aside. */
  np_request_header_encode (bytes, NP_FRAME_REPLY, 1, 4096);
  g_assert_true (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  np_request_header_encode (bytes, NP_FRAME_REPLY, 1, 4097);
  g_assert_false (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);
  np_request_header_encode (bytes, NP_FRAME_REQUEST, 1, G_MAXUINT32 - 4);
  g_assert_true (np_frame_header_decode (bytes, 2, G_MAXUINT32, &header, &error));

  /* Too short for an id. */
  np_frame_header_encode (bytes, NP_FRAME_REQUEST, 3);
  g_assert_false (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  np_frame_header_encode (bytes, NP_FRAME_ERROR, NP_ERROR_REPLY_MAX + 1);
  g_assert_false (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_clear_error (&error);

  np_frame_header_encode (bytes, 7, 0);
  g_assert_false (np_frame_header_decode (bytes, 2, 4096, &header, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
}

/* Requests and replies with descriptors: their count in byte 5, only
 * from version 4 on. */
static void
test_requests_with_fds (void)
{
  static const NpFrameType types[] = { NP_FRAME_REQUEST_FDS, NP_FRAME_REPLY_FDS };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr(GError) error = NULL;
      guint8 bytes[NP_REQUEST_HEADER_SIZE];
      NpFrameHeader header;

      np_request_header_encode_fds (bytes, types[i], 0x0a0b0c0d, 100, 3);
      g_assert_cmpuint (bytes[4], ==, types[i]);
      g_assert_cmpuint (bytes[5], ==, 3);
      g_assert_true (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (header.type, ==, types[i]);
      g_assert_cmpuint (header.length, ==, 104);
      g_assert_cmpuint (header.n_fds, ==, 3);
      g_assert_cmpuint (np_request_id_decode (bytes + NP_FRAME_HEADER_SIZE), ==, 0x0a0b0c0d);

      /* Version 3 has no such frames. */
      g_assert_false (np_frame_header_decode (bytes, NP_PROTOCOL_FDS, 4096, &header, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
      g_clear_error (&error);

      /* The message is held to the limit, the id aside. */
      np_request_header_encode_fds (bytes, types[i], 1, 4097, 1);
      g_assert_false (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
      g_clear_error (&error);

      /* One that carries none, or has no id, is malformed. */
      bytes[5] = 0;
      g_assert_false (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
      g_clear_error (&error);
      np_frame_header_encode (bytes, types[i], 3);
      bytes[5] = 1;
      g_assert_false (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
      g_clear_error (&error);
    }

  /* A plain request counts no descriptors, in version 4 too. */
  {
    g_autoptr(GError) error = NULL;
    guint8 bytes[NP_REQUEST_HEADER_SIZE];
    NpFrameHeader header;

    np_request_header_encode (bytes, NP_FRAME_REQUEST, 1, 10);
    g_assert_true (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
    g_assert_cmpuint (header.n_fds, ==, 0);
    bytes[5] = 1;
    g_assert_false (np_frame_header_decode (bytes, NP_PROTOCOL_SETTINGS, 4096, &header, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  }
}

static void
test_error_replies (void)
{
  g_autoptr(GError) sent = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No such thing: %s", "x");
  g_autoptr(GError) received = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) payload = np_error_reply_encode (77, sent);
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  guint32 id = 0;

  g_assert_true (np_error_reply_decode (data, len, &id, &received, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (id, ==, 77);
  g_assert_error (received, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (received->message, ==, "No such thing: x");
  g_clear_error (&received);

  /* Negative codes survive. */
  {
    g_autoptr(GError) negative = g_error_new_literal (NP_PIPE_ERROR, -5, "negative");
    g_autoptr(GBytes) p = np_error_reply_encode (1, negative);

    data = g_bytes_get_data (p, &len);
    g_assert_true (np_error_reply_decode (data, len, &id, &received, &error));
    g_assert_error (received, NP_PIPE_ERROR, -5);
    g_clear_error (&received);
  }

  /* A long message is cut to fit, on a character boundary. */
  {
    g_autoptr(GString) text = g_string_new (NULL);
    g_autoptr(GError) long_error = NULL;
    g_autoptr(GBytes) p = NULL;

    while (text->len < 2 * NP_ERROR_REPLY_MAX)
      g_string_append (text, "ü");
    long_error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, text->str);
    p = np_error_reply_encode (2, long_error);
    data = g_bytes_get_data (p, &len);
    g_assert_cmpuint (len, <=, NP_ERROR_REPLY_MAX);
    g_assert_true (np_error_reply_decode (data, len, &id, &received, &error));
    g_assert_true (g_utf8_validate (received->message, -1, NULL));
    g_clear_error (&received);
  }

  /* A domain name too long for the frame is not cut into another
   * name: it arrives as FAILED, naming the domain and the code. */
  {
    g_autofree char *name = g_strnfill (NP_ERROR_DOMAIN_MAX + 10, 'd');
    g_autoptr(GError) long_domain = g_error_new_literal (g_quark_from_string (name), 7, "deep");
    g_autoptr(GBytes) p = np_error_reply_encode (4, long_domain);

    data = g_bytes_get_data (p, &len);
    g_assert_true (np_error_reply_decode (data, len, &id, &received, &error));
    g_assert_cmpuint (id, ==, 4);
    g_assert_error (received, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
    g_assert_true (g_str_has_prefix (received->message, "deep (error 7 of “ddd"));
    g_clear_error (&received);
  }

  /* A domain that is no domain name arrives as FAILED, saying which. */
  {
    const guint8 odd[] = { 0, 0, 0, 3, 0, 0, 0, 9, 0, 4, 'a', ' ', 'b', '!', 'h', 'i' };

    g_assert_true (np_error_reply_decode (odd, sizeof odd, &id, &received, &error));
    g_assert_error (received, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
    g_assert_nonnull (strstr (received->message, "hi"));
    g_clear_error (&received);
  }

  /* Malformed: shorter than its header, or its domain. */
  {
    const guint8 short_payload[] = { 0, 0, 0, 3, 0, 0, 0, 9, 0 };
    const guint8 long_domain[] = { 0, 0, 0, 3, 0, 0, 0, 9, 0, 40, 'a' };

    g_assert_false (np_error_reply_decode (short_payload, sizeof short_payload, &id, &received, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
    g_clear_error (&error);
    g_assert_false (np_error_reply_decode (long_domain, sizeof long_domain, &id, &received, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
    g_clear_error (&error);
  }

  /* A domain over 255 bytes is a protocol error, even when the payload
   * holds all of it. */
  {
    g_autoptr(GByteArray) over = g_byte_array_new ();
    const guint8 head[] = { 0, 0, 0, 3, 0, 0, 0, 9, 1, 0 };  /* D = 256 */
    g_autofree char *name = g_strnfill (256, 'd');

    g_byte_array_append (over, head, sizeof head);
    g_byte_array_append (over, (const guint8 *) name, 256);
    g_byte_array_append (over, (const guint8 *) "hi", 2);
    g_assert_false (np_error_reply_decode (over->data, over->len, &id, &received, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
    g_assert_null (received);
    g_clear_error (&error);
  }

  /* An empty domain is no domain: FAILED, naming the code. */
  {
    const guint8 empty[] = { 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 'h', 'i' };

    g_assert_true (np_error_reply_decode (empty, sizeof empty, &id, &received, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (id, ==, 5);
    g_assert_error (received, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
    g_assert_cmpstr (received->message, ==, "hi (error 9 of “”)");
    g_clear_error (&received);
  }

  /* Each byte of the message that is not part of a valid UTF-8
   * character, a NUL too, becomes U+FFFD. */
  {
    const guint8 bad[] = { 0, 0, 0, 6, 0, 0, 0, 1, 0, 16,
                           'g', '-', 'i', 'o', '-', 'e', 'r', 'r', 'o', 'r', '-', 'q', 'u', 'a', 'r', 'k',
                           'a', 0xff, 'b', 0, 'c', 0xe2, 0x82, 'd', 0xc3, 0xa9 };

    g_assert_true (np_error_reply_decode (bad, sizeof bad, &id, &received, &error));
    g_assert_error (received, G_IO_ERROR, 1);
    g_assert_cmpstr (received->message, ==, "a\uFFFDb\uFFFDc\uFFFD\uFFFDdé");
    g_clear_error (&received);
  }
}

/* A peer cannot make the process intern error domains without bound. */
static void
test_error_domains_bounded (void)
{
  guint n_own = 0;

  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *domain = g_strdup_printf ("made-up-domain-%u-quark", i);
      g_autoptr(GError) sent = g_error_new_literal (G_IO_ERROR, 1, "x");
      g_autoptr(GError) received = NULL;
      g_autoptr(GByteArray) payload = g_byte_array_new ();
      guint8 header[NP_ERROR_REPLY_MIN] = { 0, 0, 0, 1, 0, 0, 0, 1, 0, 0 };
      guint32 id;

      header[9] = strlen (domain);
      g_byte_array_append (payload, header, sizeof header);
      g_byte_array_append (payload, (const guint8 *) domain, strlen (domain));
      g_assert_true (np_error_reply_decode (payload->data, payload->len, &id, &received, NULL));
      if (received->domain != NP_PIPE_ERROR)
        n_own++;
    }

  g_assert_cmpuint (n_own, >, 0);
  g_assert_cmpuint (n_own, <=, 256);
}

/* Read for its id alone, an error reply learns nothing of its domain. */
static void
test_error_reply_id_only (void)
{
  const char *domain = "np-test-id-only-domain-quark";
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  guint8 header[NP_ERROR_REPLY_MIN] = { 0, 0, 0, 42, 0, 0, 0, 1, 0, 0 };
  guint32 id = 0;

  header[9] = strlen (domain);
  g_byte_array_append (payload, header, sizeof header);
  g_byte_array_append (payload, (const guint8 *) domain, strlen (domain));

  g_assert_true (np_error_reply_decode (payload->data, payload->len, &id, NULL, NULL));
  g_assert_cmpuint (id, ==, 42);
  g_assert_cmpuint (g_quark_try_string (domain), ==, 0);
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
  g_test_add_func ("/Np/Frame/requests", test_requests);
  g_test_add_func ("/Np/Frame/requests-with-fds", test_requests_with_fds);
  g_test_add_func ("/Np/Frame/error-replies", test_error_replies);
  g_test_add_func ("/Np/Frame/error-domains-bounded", test_error_domains_bounded);
  g_test_add_func ("/Np/Frame/error-reply-id-only", test_error_reply_id_only);

  return g_test_run ();
}
