/* np-limits-private.h: the limits and timeouts a server and a client
 * share with their connections
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The limits and timeouts of NpPipeServer and NpPipeClient, each a
 * property of the same name, in this order: each type numbers its
 * properties so that these come last, from its own first one (see
 * np_limits_install()), and has those of them that are its own. */
typedef enum
{
  /* Both types' */
  NP_LIMIT_MAX_MESSAGE_SIZE,
  NP_LIMIT_MAX_QUEUED_BYTES,
  NP_LIMIT_CLOSE_TIMEOUT,
  NP_LIMIT_REQUEST_TIMEOUT,
  NP_LIMIT_MAX_FDS_PER_MESSAGE,
  NP_LIMIT_MAX_PENDING_REQUESTS,
  NP_LIMIT_MAX_PENDING_REQUEST_BYTES,
  /* The server's */
  NP_LIMIT_MAX_CONNECTIONS,
  NP_LIMIT_HANDSHAKE_TIMEOUT,
  /* The client's */
  NP_LIMIT_CONNECT_TIMEOUT,
  NP_LIMIT_RECONNECT_INTERVAL,
  NP_LIMIT_RECONNECT_MAX_INTERVAL,
  NP_N_LIMITS
} NpLimit;

/* Which types have a limit. */
typedef enum
{
  NP_LIMIT_OF_SERVER = 1 << 0,
  NP_LIMIT_OF_CLIENT = 1 << 1,
  NP_LIMIT_OF_BOTH   = NP_LIMIT_OF_SERVER | NP_LIMIT_OF_CLIENT,
} NpLimitOwners;

/* When a change to a setting takes effect. */
typedef enum
{
  /* From the next connection: the handshake announced it to the peer. */
  NP_LIMIT_APPLIES_NEXT_CONNECTION,
  /* At its next use, on open connections too. */
  NP_LIMIT_APPLIES_NEXT_USE,
} NpLimitApplies;

typedef struct
{
  const char       *name;
  guint             minimum;
  guint             maximum;
  guint             default_value;
  NpLimitApplies    applies;
  NpLimitOwners     owners;
} NpLimitInfo;

extern const NpLimitInfo np_limit_info [NP_N_LIMITS];

/* The values of one server or client, shared with each of its
 * connections, which read them when they use them: any thread may read
 * or write them, one value at a time. */
typedef struct
{
  guint values [NP_N_LIMITS];
} NpLimits;

NpLimits *np_limits_new     (void);
NpLimits *np_limits_ref     (NpLimits   *self);
void        np_limits_unref   (NpLimits   *self);
gboolean    np_limits_set     (NpLimits   *self,
                                 NpLimit     setting,
                                 guint         value);
void        np_limits_install (GObjectClass  *object_class,
                                 guint          first_prop_id,
                                 GParamSpec   **pspecs,
                                 NpLimitOwners  owner);

static inline guint
np_limits_get (const NpLimits *self,
                 NpLimit         setting)
{
  return (guint) g_atomic_int_get ((const gint *) &self->values[setting]);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NpLimits, np_limits_unref)

G_END_DECLS
