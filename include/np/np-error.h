/* np-error.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (NP_INSIDE) && !defined (NP_COMPILATION)
# error "Only <np/np.h> can be included directly."
#endif

#include <glib-object.h>

#include "np-version-macros.h"

G_BEGIN_DECLS

/**
 * NP_PIPE_ERROR:
 *
 * The error domain of Np: errors in it carry a [enum@Np.PipeError] code.
 *
 * Since: 1.0
 */
#define NP_PIPE_ERROR (np_pipe_error_quark ())

#define NP_TYPE_PIPE_ERROR (np_pipe_error_get_type ())

/**
 * NpPipeError:
 * @NP_PIPE_ERROR_FAILED: a failure that no other code describes
 * @NP_PIPE_ERROR_NOT_FOUND: no server listens under that name
 * @NP_PIPE_ERROR_ADDRESS_IN_USE: a live server already has the name, or
 *   the path is taken by something that is not a socket
 * @NP_PIPE_ERROR_INVALID_NAME: the name is neither a valid pipe name nor an
 *   absolute socket path that fits in a Unix socket address
 * @NP_PIPE_ERROR_MESSAGE_TOO_LARGE: a message is larger than the receiving
 *   side accepts
 * @NP_PIPE_ERROR_PROTOCOL: the peer sent a malformed handshake or frame
 * @NP_PIPE_ERROR_CLOSED: the pipe is closed
 * @NP_PIPE_ERROR_PERMISSION_DENIED: the peer was refused, or the socket or
 *   its directory cannot be used safely
 * @NP_PIPE_ERROR_TIMED_OUT: the peer did not complete the handshake in time
 * @NP_PIPE_ERROR_QUEUE_FULL: the peer does not read, and what is queued to
 *   it would pass the limit
 * @NP_PIPE_ERROR_TOO_MANY_CLIENTS: the server has as many clients as it
 *   accepts
 * @NP_PIPE_ERROR_NOT_SUPPORTED: the peer cannot do what was asked of it:
 *   it speaks a protocol version without requests, or nothing handled
 *   the request
 * @NP_PIPE_ERROR_PEER_VANISHED: the peer went away without closing: its
 *   process was killed or crashed, or its end of the connection was lost
 *   (told apart from a clean close from protocol version 4 on)
 * @NP_PIPE_ERROR_TOO_MANY_REQUESTS: the peer holds as many of this side's
 *   requests unanswered as it accepts (`max-pending-requests`,
 *   `max-pending-request-bytes`): the request was not delivered
 *
 * Error codes in the `NP_PIPE_ERROR` domain.
 *
 * Plain I/O failures reported by the operating system keep their
 * `G_IO_ERROR` code.
 *
 * Since: 1.0
 */
typedef enum
{
  NP_PIPE_ERROR_FAILED,
  NP_PIPE_ERROR_NOT_FOUND,
  NP_PIPE_ERROR_ADDRESS_IN_USE,
  NP_PIPE_ERROR_INVALID_NAME,
  NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
  NP_PIPE_ERROR_PROTOCOL,
  NP_PIPE_ERROR_CLOSED,
  NP_PIPE_ERROR_PERMISSION_DENIED,
  NP_PIPE_ERROR_TIMED_OUT,
  NP_PIPE_ERROR_QUEUE_FULL,
  NP_PIPE_ERROR_TOO_MANY_CLIENTS,
  NP_PIPE_ERROR_NOT_SUPPORTED,
  NP_PIPE_ERROR_PEER_VANISHED,
  NP_PIPE_ERROR_TOO_MANY_REQUESTS,
} NpPipeError;

NP_AVAILABLE_IN_ALL
GQuark np_pipe_error_quark    (void);
NP_AVAILABLE_IN_ALL
GType  np_pipe_error_get_type (void) G_GNUC_CONST;

G_END_DECLS
