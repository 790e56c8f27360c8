/* np-error.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-error.h"
#include "np-i18n-private.h"

/**
 * np_pipe_error_quark:
 *
 * The error domain of Np.
 *
 * Returns: the quark of the `NP_PIPE_ERROR` domain
 *
 * Since: 1.0
 */
/* G_DEFINE_QUARK, which has no room for binding the catalog: every
 * error of the domain passes here. */
GQuark
np_pipe_error_quark (void)
{
  static GQuark quark = 0;

  if (G_UNLIKELY (quark == 0))
    {
      np_i18n_init ();
      quark = g_quark_from_static_string ("np-pipe-error-quark");
    }

  return quark;
}

G_DEFINE_ENUM_TYPE (NpPipeError, np_pipe_error,
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_FAILED, "failed"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_NOT_FOUND, "not-found"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_ADDRESS_IN_USE, "address-in-use"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_INVALID_NAME, "invalid-name"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_MESSAGE_TOO_LARGE, "message-too-large"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_PROTOCOL, "protocol"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_CLOSED, "closed"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_PERMISSION_DENIED, "permission-denied"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_TIMED_OUT, "timed-out"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_QUEUE_FULL, "queue-full"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_TOO_MANY_CLIENTS, "too-many-clients"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_NOT_SUPPORTED, "not-supported"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_PEER_VANISHED, "peer-vanished"),
  G_DEFINE_ENUM_VALUE (NP_PIPE_ERROR_TOO_MANY_REQUESTS, "too-many-requests"))
