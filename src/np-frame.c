/* np-frame.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

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
                           _("The peer does not speak the Np protocol (bad handshake magic)"));
      return FALSE;
    }

  if (in[4] == 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           _("The peer announced protocol version 0, which does not exist"));
      return FALSE;
    }

  if (in[5] != 0 || in[6] != 0 || in[7] != 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           _("The peer set reserved handshake bits"));
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

/* The header of a MESSAGE_FDS frame: @n_fds (1 to NP_FDS_MAX) go with
 * the write that holds its first byte. */
void
np_frame_header_encode_fds (guint8  out[NP_FRAME_HEADER_SIZE],
                            guint32 length,
                            guint8  n_fds)
{
  g_assert (n_fds > 0 && n_fds <= NP_FDS_MAX);

  np_frame_header_encode (out, NP_FRAME_MESSAGE_FDS, length);
  out[5] = n_fds;
}

/* A frame that carries descriptors counts at least one. */
static gboolean
check_fds (guint8   n_fds,
           GError **error)
{
  if (n_fds > 0)
    return TRUE;

  g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                       _("Malformed frame: a frame with descriptors carries none"));
  return FALSE;
}

/* A payload of @length: the @id_len bytes of a request id, if any, then
 * a message of at most @max_message_size. */
static gboolean
check_body (guint32   length,
            guint32   id_len,
            guint32   max_message_size,
            GError  **error)
{
  if (length < id_len)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("Malformed frame: a request or reply of %u bytes has no id"), length);
      return FALSE;
    }

  if (length - id_len > max_message_size)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                   _("Message of %u bytes exceeds the limit of %u bytes"),
                   length - id_len, max_message_size);
      return FALSE;
    }

  return TRUE;
}

/* Decodes a frame header, checking it against what the peer may send:
 * the frame types of @version, a message no larger than
 * @max_message_size. */
gboolean
np_frame_header_decode (const guint8   in[NP_FRAME_HEADER_SIZE],
                        guint8         version,
                        guint32        max_message_size,
                        NpFrameHeader *header,
                        GError       **error)
{
  guint32 length = get_u32 (in);
  guint8 type = in[4];

  guint8 n_fds = 0;

  /* Byte 5 counts the descriptors of a frame that carries them. */
  if ((type == NP_FRAME_MESSAGE_FDS && version >= NP_PROTOCOL_FDS) ||
      ((type == NP_FRAME_REQUEST_FDS || type == NP_FRAME_REPLY_FDS) &&
       version >= NP_PROTOCOL_SETTINGS))
    n_fds = in[5];

  if (in[5] != n_fds || in[6] != 0 || in[7] != 0)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                           _("Malformed frame: reserved header bytes are not zero"));
      return FALSE;
    }

  switch (type)
    {
    case NP_FRAME_MESSAGE:
      if (!check_body (length, 0, max_message_size, error))
        return FALSE;
      break;

    case NP_FRAME_MESSAGE_FDS:
      if (version < NP_PROTOCOL_FDS)
        goto unknown;
      if (!check_fds (n_fds, error) || !check_body (length, 0, max_message_size, error))
        return FALSE;
      break;

    case NP_FRAME_PING:
    case NP_FRAME_PONG:
    case NP_FRAME_GOODBYE:
      if (length > NP_CONTROL_PAYLOAD_MAX)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                       _("Malformed frame: control frame of type %u carries %u bytes, more than %u"),
                       type, length, NP_CONTROL_PAYLOAD_MAX);
          return FALSE;
        }
      break;

    case NP_FRAME_REQUEST:
    case NP_FRAME_REPLY:
      if (version < NP_PROTOCOL_REQUESTS)
        goto unknown;
      if (!check_body (length, 4, max_message_size, error))
        return FALSE;
      break;

    case NP_FRAME_REQUEST_FDS:
    case NP_FRAME_REPLY_FDS:
      if (version < NP_PROTOCOL_SETTINGS)
        goto unknown;
      if (!check_fds (n_fds, error) || !check_body (length, 4, max_message_size, error))
        return FALSE;
      break;

    case NP_FRAME_SETTINGS:
      if (version < NP_PROTOCOL_SETTINGS)
        goto unknown;
      if (length < NP_SETTINGS_SIZE || length > NP_CONTROL_PAYLOAD_MAX)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                       _("Malformed frame: settings of %u bytes (%u to %u are allowed)"),
                       length, NP_SETTINGS_SIZE, NP_CONTROL_PAYLOAD_MAX);
          return FALSE;
        }
      break;

    case NP_FRAME_ERROR:
      if (version < NP_PROTOCOL_REQUESTS)
        goto unknown;
      if (length < NP_ERROR_REPLY_MIN || length > NP_ERROR_REPLY_MAX)
        {
          g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                       _("Malformed frame: an error reply of %u bytes (%u to %u are allowed)"),
                       length, NP_ERROR_REPLY_MIN, NP_ERROR_REPLY_MAX);
          return FALSE;
        }
      break;

    default:
    unknown:
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("Malformed frame: unknown frame type %u in protocol version %u"),
                   type, version);
      return FALSE;
    }

  header->type = type;
  header->length = length;
  header->n_fds = n_fds;

  return TRUE;
}

/* The payload of a SETTINGS frame. */
GBytes *
np_settings_encode (guint32 max_fds)
{
  guint8 payload[NP_SETTINGS_SIZE];

  put_u32 (payload, 0);
  put_u32 (payload + 4, max_fds);

  return g_bytes_new (payload, sizeof payload);
}

/* Reads a SETTINGS payload (its length checked by the header): flags
 * this version does not know, and bytes past the fields it knows, are
 * for later versions and ignored. */
gboolean
np_settings_decode (const guint8  *payload,
                    gsize          length,
                    NpSettings    *settings,
                    GError       **error)
{
  g_assert (length >= NP_SETTINGS_SIZE);

  settings->flags = get_u32 (payload);
  settings->max_fds = get_u32 (payload + 4);
  if (settings->max_fds > NP_FDS_MAX)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                   _("Malformed settings: a limit of %u descriptors per message, more "
                     "than the %u one message can carry"),
                   settings->max_fds, NP_FDS_MAX);
      return FALSE;
    }

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
                        _("Malformed goodbye frame of %zu bytes"), length);

  /* Codes this version does not know keep their value: a later version
   * may send them. Only one that is no gint becomes FAILED. */
  code = get_u32 (payload);
  if (code > G_MAXINT)
    code = NP_PIPE_ERROR_FAILED;

  reason = g_utf8_make_valid ((const char *) payload + 4, length - 4);

  return g_error_new (NP_PIPE_ERROR, code, _("The peer closed the connection: %s"), reason);
}

/* The header of a request or reply frame whose message is
 * @message_size bytes: frame header, then the request id. */
void
np_request_header_encode (guint8      out[NP_REQUEST_HEADER_SIZE],
                          NpFrameType type,
                          guint32     id,
                          gsize       message_size)
{
  np_frame_header_encode (out, type, 4 + message_size);
  put_u32 (out + NP_FRAME_HEADER_SIZE, id);
}

/* The header of a REQUEST_FDS or REPLY_FDS frame: @n_fds (1 to
 * NP_FDS_MAX) go with the write that holds its first byte, as for a
 * MESSAGE_FDS frame. */
void
np_request_header_encode_fds (guint8      out[NP_REQUEST_HEADER_SIZE],
                              NpFrameType type,
                              guint32     id,
                              gsize       message_size,
                              guint8      n_fds)
{
  g_assert (type == NP_FRAME_REQUEST_FDS || type == NP_FRAME_REPLY_FDS);
  g_assert (n_fds > 0 && n_fds <= NP_FDS_MAX);

  np_request_header_encode (out, type, id, message_size);
  out[5] = n_fds;
}

guint32
np_request_id_decode (const guint8 *payload)
{
  return get_u32 (payload);
}

/* Cuts @len bytes of @text back to a character boundary. */
static gsize
utf8_cut (const char *text,
          gsize       len)
{
  while (len > 0 && (text[len] & 0xC0) == 0x80)
    len--;
  return len;
}

/* An error reply's payload: the id, then @reply's code, domain and
 * message; a message too long for the frame is cut. */
GBytes *
np_error_reply_encode (guint32       id,
                       const GError *reply)
{
  g_autoptr(GError) substitute = NULL;
  const char *domain = g_quark_to_string (reply->domain);
  gsize domain_len = strlen (domain);
  gsize message_len;
  gsize room;
  guint8 *payload;

  /* A domain name too long for the frame is not cut, which would name
   * another domain: the error goes as a failure that names its domain,
   * as the receiving side does with a domain it cannot take. */
  if (domain_len > NP_ERROR_DOMAIN_MAX)
    {
      substitute = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED, _("%s (error %d of “%s”)"),
                                reply->message, reply->code, domain);
      reply = substitute;
      domain = g_quark_to_string (reply->domain);
      domain_len = strlen (domain);
    }

  message_len = strlen (reply->message);
  room = NP_ERROR_REPLY_MAX - NP_ERROR_REPLY_MIN - domain_len;

  if (message_len > room)
    message_len = utf8_cut (reply->message, room);

  payload = g_malloc (NP_ERROR_REPLY_MIN + domain_len + message_len);
  put_u32 (payload, id);
  put_u32 (payload + 4, (guint32) reply->code);
  payload[8] = domain_len >> 8;
  payload[9] = domain_len & 0xFF;
  memcpy (payload + NP_ERROR_REPLY_MIN, domain, domain_len);
  memcpy (payload + NP_ERROR_REPLY_MIN + domain_len, reply->message, message_len);

  return g_bytes_new_take (payload, NP_ERROR_REPLY_MIN + domain_len + message_len);
}

/* Error domains learnt from peers: a domain is a quark, and quarks are
 * never freed, so a peer could otherwise make us intern any number of
 * made-up names. Known domains are always taken; new ones up to this. */
#define NP_PEER_DOMAINS_MAX 256
static guint n_peer_domains;
G_LOCK_DEFINE_STATIC (peer_domains);

static gboolean
np_error_domain_is_valid (const char *domain,
                          gsize       len)
{
  if (len == 0)
    return FALSE;

  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (domain[i]) && domain[i] != '-' && domain[i] != '_' && domain[i] != '.')
      return FALSE;

  return TRUE;
}

static GQuark
np_error_domain_from_peer (const char *domain)
{
  GQuark quark = g_quark_try_string (domain);

  if (quark != 0)
    return quark;

  G_LOCK (peer_domains);
  if (n_peer_domains < NP_PEER_DOMAINS_MAX)
    {
      n_peer_domains++;
      quark = g_quark_from_string (domain);
    }
  G_UNLOCK (peer_domains);

  return quark;
}

/* Decodes an error reply into @id and the error it carries, in its own
 * domain when that is a plausible domain name. Fails, with @error, on a
 * malformed payload. With @reply NULL it only checks the payload and
 * reads the id: the domain, which may cost a quark, is learnt only for
 * a request that waits for it. */
gboolean
np_error_reply_decode (const guint8  *payload,
                       gsize          length,
                       guint32       *id,
                       GError       **reply,
                       GError       **error)
{
  g_autofree char *domain = NULL;
  g_autofree char *message = NULL;
  gsize domain_len;
  GQuark quark = 0;
  gint code;

  if (length < NP_ERROR_REPLY_MIN)
    goto malformed;

  domain_len = ((gsize) payload[8] << 8) | payload[9];
  if (domain_len > NP_ERROR_DOMAIN_MAX || NP_ERROR_REPLY_MIN + domain_len > length)
    goto malformed;

  *id = get_u32 (payload);
  if (reply == NULL)
    return TRUE;

  code = (gint) get_u32 (payload + 4);
  domain = g_strndup ((const char *) payload + NP_ERROR_REPLY_MIN, domain_len);
  message = g_utf8_make_valid ((const char *) payload + NP_ERROR_REPLY_MIN + domain_len,
                               length - NP_ERROR_REPLY_MIN - domain_len);

  if (strlen (domain) == domain_len && np_error_domain_is_valid (domain, domain_len))
    quark = np_error_domain_from_peer (domain);

  if (quark != 0)
    *reply = g_error_new_literal (quark, code, message);
  else
    {
      g_autofree char *escaped = g_strescape (domain, NULL);

      *reply = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED, _("%s (error %d of “%s”)"),
                            message, code, escaped);
    }
  return TRUE;

malformed:
  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
               _("Malformed error reply of %zu bytes"), length);
  return FALSE;
}
