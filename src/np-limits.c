/* np-limits.c: the limits and timeouts a server and a client share
 * with their connections
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "np-frame-private.h"
#include "np-limits-private.h"

/* Each setting once: its property's name, range and default, and when a
 * change takes effect, and which types have it. The properties'
 * documentation, which says the same in words, is in np-pipe-server.c
 * and np-pipe-client.c. */
const NpLimitInfo np_limit_info [NP_N_LIMITS] = {
  [NP_LIMIT_MAX_MESSAGE_SIZE] =
    { "max-message-size", 0, G_MAXUINT32, 16 * 1024 * 1024,
      NP_LIMIT_APPLIES_NEXT_CONNECTION, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_MAX_QUEUED_BYTES] =
    { "max-queued-bytes", 0, G_MAXUINT32, 64 * 1024 * 1024,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_CLOSE_TIMEOUT] =
    { "close-timeout", 0, G_MAXUINT, 5000,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_REQUEST_TIMEOUT] =
    { "request-timeout", 0, G_MAXUINT, 25000,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_MAX_FDS_PER_MESSAGE] =
    { "max-fds-per-message", 1, NP_FDS_MAX, 16,
      NP_LIMIT_APPLIES_NEXT_CONNECTION, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_MAX_PENDING_REQUESTS] =
    { "max-pending-requests", 0, G_MAXUINT, 4096,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_MAX_PENDING_REQUEST_BYTES] =
    { "max-pending-request-bytes", 0, G_MAXUINT32, 64 * 1024 * 1024,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_BOTH },
  [NP_LIMIT_MAX_CONNECTIONS] =
    { "max-connections", 0, G_MAXUINT, 1024,
      NP_LIMIT_APPLIES_NEXT_CONNECTION, NP_LIMIT_OF_SERVER },
  [NP_LIMIT_HANDSHAKE_TIMEOUT] =
    { "handshake-timeout", 0, G_MAXUINT, 5000,
      NP_LIMIT_APPLIES_NEXT_CONNECTION, NP_LIMIT_OF_SERVER },
  [NP_LIMIT_CONNECT_TIMEOUT] =
    { "connect-timeout", 0, G_MAXUINT, 5000,
      NP_LIMIT_APPLIES_NEXT_CONNECTION, NP_LIMIT_OF_CLIENT },
  [NP_LIMIT_RECONNECT_INTERVAL] =
    { "reconnect-interval", 1, G_MAXUINT, 100,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_CLIENT },
  [NP_LIMIT_RECONNECT_MAX_INTERVAL] =
    { "reconnect-max-interval", 1, G_MAXUINT, 5000,
      NP_LIMIT_APPLIES_NEXT_USE, NP_LIMIT_OF_CLIENT },
};

NpLimits *
np_limits_new (void)
{
  NpLimits *self = g_atomic_rc_box_new0 (NpLimits);

  for (guint i = 0; i < NP_N_LIMITS; i++)
    self->values[i] = np_limit_info[i].default_value;

  return self;
}

NpLimits *
np_limits_ref (NpLimits *self)
{
  return g_atomic_rc_box_acquire (self);
}

void
np_limits_unref (NpLimits *self)
{
  g_atomic_rc_box_release (self);
}

/* Returns whether @value differs from the one it replaces. */
gboolean
np_limits_set (NpLimits *self,
                 NpLimit   setting,
                 guint       value)
{
  g_return_val_if_fail (value >= np_limit_info[setting].minimum &&
                        value <= np_limit_info[setting].maximum, FALSE);

  return (guint) g_atomic_int_exchange ((gint *) &self->values[setting], (gint) value) != value;
}

/* Installs the properties of the limits @owner has, numbered from
 * @first_prop_id in the order of NpLimit, keeping them in @pspecs
 * (indexed by property id; those of the other type stay NULL). */
void
np_limits_install (GObjectClass   *object_class,
                   guint           first_prop_id,
                   GParamSpec    **pspecs,
                   NpLimitOwners   owner)
{
  for (guint i = 0; i < NP_N_LIMITS; i++)
    {
      const NpLimitInfo *info = &np_limit_info[i];

      if ((info->owners & owner) == 0)
        continue;

      pspecs[first_prop_id + i] =
        g_param_spec_uint (info->name, NULL, NULL,
                           info->minimum, info->maximum, info->default_value,
                           (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                            G_PARAM_STATIC_STRINGS));
      g_object_class_install_property (object_class, first_prop_id + i, pspecs[first_prop_id + i]);
    }
}
