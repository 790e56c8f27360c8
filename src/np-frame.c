/* np-frame.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "np-frame-private.h"

static const guint8 np_magic[4] = { 'N', 'P', 'I', 'P' };

static inline void
put_u32 (guint8  *out,
         guint32  value)
{
  out[0] = value >> 24;
  out[1] = value >> 16;
  out[2] = value >> 8;
  out[3] = value;
}

static inline guint32
get_u32 (const guint8 *in)
{
  return ((guint32) in[0] << 24) | ((guint32) in[1] << 16) |
         ((guint32) in[2] << 8) | (guint32) in[3];
}

void
np_hello_encode (guint8  out[NP_HELLO_SIZE],
                 guint32 max_message_size)
{
  memcpy (out, np_magic, sizeof np_magic);
  out[4] = NP_PROTOCOL_VERSION;
  out[5] = 0;
  out[6] = 0;
  out[7] = 0;
  put_u32 (out + 8, max_message_size);
}

gboolean
np_hello_decode (const guint8   in[NP_HELLO_SIZE],
                 NpHello       *hello,
                 GError       **error)
{
  if (memcmp (in, np_magic, sizeof np_magic) != 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           "The peer does not speak the Np protocol (bad handshake magic)");
      return FALSE;
    }

  if (in[4] == 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           "The peer announced protocol version 0, which does not exist");
      return FALSE;
    }

  if (in[5] != 0 || in[6] != 0 || in[7] != 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           "The peer set reserved handshake bits");
      return FALSE;
    }

  /* Each side announces the highest version it speaks; both then use the
   * lower of the two. Version 1 is the lowest there is, so any peer is
   * compatible with this one. */
  hello->version = MIN (in[4], NP_PROTOCOL_VERSION);
  hello->max_message_size = get_u32 (in + 8);

  return TRUE;
}

void
np_frame_header_encode (guint8      out[NP_FRAME_HEADER_SIZE],
                        NpFrameType type,
                        guint32     length)
{
  put_u32 (out, length);
  out[4] = type;
  out[5] = 0;
  out[6] = 0;
  out[7] = 0;
}

gboolean
np_frame_header_decode (const guint8   in[NP_FRAME_HEADER_SIZE],
                        guint32        max_message_size,
                        NpFrameHeader *header,
                        GError       **error)
{
  guint32 length = get_u32 (in);
  guint8 type = in[4];

  if (in[5] != 0 || in[6] != 0 || in[7] != 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           "Malformed frame: reserved header bytes are not zero");
      return FALSE;
    }

  switch (type)
    {
    case NP_FRAME_MESSAGE:
      if (length > max_message_size)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                       "Message of %u bytes exceeds the limit of %u bytes",
                       length, max_message_size);
          return FALSE;
        }
      break;

    case NP_FRAME_PING:
    case NP_FRAME_PONG:
    case NP_FRAME_GOODBYE:
      if (length > NP_CONTROL_PAYLOAD_MAX)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                       "Malformed frame: control frame of type %u carries %u bytes, more than %u",
                       type, length, NP_CONTROL_PAYLOAD_MAX);
          return FALSE;
        }
      break;

    default:
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   "Malformed frame: unknown frame type %u", type);
      return FALSE;
    }

  header->type = type;
  header->length = length;

  return TRUE;
}

GBytes *
np_goodbye_encode (NpPipeError  code,
                   const char  *reason)
{
  gsize reason_len = strlen (reason);
  guint8 *payload;

  /* Cut the reason on a character boundary to fit a control frame. */
  if (reason_len > NP_CONTROL_PAYLOAD_MAX - 4)
    {
      reason_len = NP_CONTROL_PAYLOAD_MAX - 4;
      while (reason_len > 0 && (reason[reason_len] & 0xC0) == 0x80)
        reason_len--;
    }

  payload = g_malloc (4 + reason_len);
  put_u32 (payload, code);
  memcpy (payload + 4, reason, reason_len);

  return g_bytes_new_take (payload, 4 + reason_len);
}

GError *
np_goodbye_decode (const guint8 *payload,
                   gsize         length)
{
  g_autofree char *reason = NULL;
  guint32 code;

  if (length < 4)
    return g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                        "Malformed goodbye frame of %" G_GSIZE_FORMAT " bytes", length);

  /* Codes this version does not know keep their value: a later version
   * may send them. Only one that is no gint becomes FAILED. */
  code = get_u32 (payload);
  if (code > G_MAXINT)
    code = NP_PIPE_ERROR_FAILED;

  reason = g_utf8_make_valid ((const char *) payload + 4, length - 4);

  return g_error_new (NP_PIPE_ERROR, code, "The peer closed the connection: %s", reason);
}
