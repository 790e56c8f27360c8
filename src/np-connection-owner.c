/* np-connection-owner.c: what a connection reports to the server or
 * client it belongs to
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "np-connection-owner-private.h"

G_DEFINE_INTERFACE (NpConnectionOwner, np_connection_owner, G_TYPE_OBJECT)

static void
np_connection_owner_default_init (NpConnectionOwnerInterface *iface)
{
}

/* Whether a message with @fds (NULL: none) goes to @owner's signal
 * @signal_id, the one that hands descriptors over: when something
 * handles it. Otherwise the descriptors are closed here, and the message
 * goes to the plain signal: an application that never asked for
 * descriptors holds none. */
gboolean
np_connection_owner_takes_fds (gpointer     owner,
                               guint        signal_id,
                               GUnixFDList *fds)
{
  g_autofree int *taken = NULL;

  if (fds == NULL)
    return FALSE;

  if (g_signal_has_handler_pending (owner, signal_id, 0, FALSE))
    return TRUE;

  taken = g_unix_fd_list_steal_fds (fds, NULL);
  for (gint i = 0; taken[i] != -1; i++)
    close (taken[i]);

  return FALSE;
}
