/* np-frame-private.h: the wire format, as pure encode/decode functions
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

#include "np-error.h"

G_BEGIN_DECLS

/* See docs/protocol.md for the byte layout. */
#define NP_PROTOCOL_VERSION     4
/* The first version with requests and replies. */
#define NP_PROTOCOL_REQUESTS    2
/* The first version with messages that carry file descriptors. */
#define NP_PROTOCOL_FDS         3
/* The first version with a SETTINGS frame after the hello, a GOODBYE on
 * every normal close (so that an end of stream without one is a peer
 * that vanished), and requests and replies that carry descriptors. */
#define NP_PROTOCOL_SETTINGS    4
/* The most descriptors one sendmsg() may carry (the kernel's
 * SCM_MAX_FD), so the most one frame may. */
#define NP_FDS_MAX              253
#define NP_HELLO_SIZE           12
#define NP_FRAME_HEADER_SIZE    8
#define NP_CONTROL_PAYLOAD_MAX  1024
/* A request or reply frame: the header, then the request id. */
#define NP_REQUEST_HEADER_SIZE  (NP_FRAME_HEADER_SIZE + 4)
/* An error reply: id, code, domain length, then the domain and message. */
#define NP_ERROR_REPLY_MIN      10
#define NP_ERROR_REPLY_MAX      8192
#define NP_ERROR_DOMAIN_MAX     255
/* A SETTINGS payload: flags and the descriptor limit, then room for
 * later versions, up to NP_CONTROL_PAYLOAD_MAX. */
#define NP_SETTINGS_SIZE        8

typedef enum
{
  NP_FRAME_MESSAGE = 0,
  NP_FRAME_PING    = 1,
  NP_FRAME_PONG    = 2,
  NP_FRAME_GOODBYE = 3,
  /* From version 2 on. */
  NP_FRAME_REQUEST = 4,
  NP_FRAME_REPLY   = 5,
  NP_FRAME_ERROR   = 6,
  /* From version 3 on: a message with descriptors, whose number is byte
   * 5 of the header. */
  NP_FRAME_MESSAGE_FDS = 7,
  /* From version 4 on: what the sender takes (its descriptor limit) and
   * is, sent once, after the peer's hello. */
  NP_FRAME_SETTINGS    = 8,
  /* From version 4 on: a request and a reply with descriptors, counted
   * in byte 5 of the header as for NP_FRAME_MESSAGE_FDS. */
  NP_FRAME_REQUEST_FDS = 9,
  NP_FRAME_REPLY_FDS   = 10,
} NpFrameType;

typedef struct
{
  guint8  version;
  guint32 max_message_size;
} NpHello;

/* What a peer of version 4 or later announces after the hello. */
typedef struct
{
  guint32 flags;        /* none defined yet; unknown bits are ignored */
  guint32 max_fds;      /* the most descriptors one frame may carry to it */
} NpSettings;

typedef struct
{
  NpFrameType type;
  guint32     length;
  guint8      n_fds;    /* descriptors the frame carries */
} NpFrameHeader;

void      np_hello_encode         (guint8         out[NP_HELLO_SIZE],
                                   guint32        max_message_size);
gboolean  np_hello_decode         (const guint8   in[NP_HELLO_SIZE],
                                   NpHello       *hello,
                                   GError       **error);
void      np_frame_header_encode  (guint8         out[NP_FRAME_HEADER_SIZE],
                                   NpFrameType    type,
                                   guint32        length);
void      np_frame_header_encode_fds
                                  (guint8         out[NP_FRAME_HEADER_SIZE],
                                   guint32        length,
                                   guint8         n_fds);
gboolean  np_frame_header_decode  (const guint8   in[NP_FRAME_HEADER_SIZE],
                                   guint8         version,
                                   guint32        max_message_size,
                                   NpFrameHeader *header,
                                   GError       **error);
void      np_request_header_encode(guint8         out[NP_REQUEST_HEADER_SIZE],
                                   NpFrameType    type,
                                   guint32        id,
                                   gsize          message_size);
void      np_request_header_encode_fds
                                  (guint8         out[NP_REQUEST_HEADER_SIZE],
                                   NpFrameType    type,
                                   guint32        id,
                                   gsize          message_size,
                                   guint8         n_fds);
guint32   np_request_id_decode    (const guint8  *payload);
GBytes   *np_error_reply_encode   (guint32        id,
                                   const GError  *reply);
gboolean  np_error_reply_decode   (const guint8  *payload,
                                   gsize          length,
                                   guint32       *id,
                                   GError       **reply,
                                   GError       **error);
GBytes   *np_settings_encode      (guint32        max_fds);
gboolean  np_settings_decode      (const guint8  *payload,
                                   gsize          length,
                                   NpSettings    *settings,
                                   GError       **error);
GBytes   *np_goodbye_encode       (NpPipeError    code,
                                   const char    *reason);
GError   *np_goodbye_decode       (const guint8  *payload,
                                   gsize          length);

G_END_DECLS
