/* np-socket-file.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-name-private.h"
#include "np-socket-file-private.h"

/* Binds and listens at @path, claimed first. */
GSocket *
np_socket_file_listen (const char    *name,
                       const char    *path,
                       gboolean       allow_other_users,
                       NpSocketFile  *file,
                       GError       **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  struct stat st;

  if (!np_name_claim_path (name, path, error))
    return NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;

  address = g_unix_socket_address_new (path);
  if (!g_socket_bind (socket, address, FALSE, error))
    {
      g_prefix_error (error, _("Cannot listen as pipe “%s”: "), name);
      return NULL;
    }

  if (chmod (path, allow_other_users ? 0666 : 0600) != 0 ||
      stat (path, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot set up the socket “%s” of pipe “%s”: %s"),
                   path, name, g_strerror (errsv));
      g_unlink (path);
      return NULL;
    }

  /* Many clients may connect in one burst before the loop gets to them. */
  g_socket_set_listen_backlog (socket, SOMAXCONN);
  if (!g_socket_listen (socket, error))
    {
      g_prefix_error (error, _("Cannot listen as pipe “%s”: "), name);
      g_unlink (path);
      return NULL;
    }

  file->dev = st.st_dev;
  file->ino = st.st_ino;

  return g_steal_pointer (&socket);
}

/* Removes the socket file only if it is still the one we created. */
void
np_socket_file_remove (const char   *path,
                       NpSocketFile *file)
{
  struct stat st;

  if (lstat (path, &st) == 0 && st.st_dev == file->dev && st.st_ino == file->ino)
    g_unlink (path);
}
