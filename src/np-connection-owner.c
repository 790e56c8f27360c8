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

void
np_connection_owner_close_fds (GUnixFDList *fds)
{
  g_autofree int *taken = g_unix_fd_list_steal_fds (fds, NULL);

  for (gint i = 0; taken[i] != -1; i++)
    close (taken[i]);
}
