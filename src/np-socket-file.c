/* np-socket-file.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "np-error.h"
#include "np-socket-file-private.h"

/* Takes the socket path: refuses one a live server holds, and removes a
 * socket file left over by a server that died. */
static gboolean
np_socket_file_claim (const char  *name,
                      const char  *path,
                      GError     **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct stat st;
  int fd;
  int res;

  if (lstat (path, &st) != 0)
    return TRUE;

  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
                   "Cannot listen as pipe “%s”: “%s” exists and is not a socket",
                   name, path);
      return FALSE;
    }

  /* We hold the pipe's lock, so no Np server runs there. Something else
   * still might: only a socket nobody answers on is removed. */
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot create a socket: %s", g_strerror (errsv));
      return FALSE;
    }

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  res = connect (fd, (struct sockaddr *) &addr, sizeof addr);
  if (res != 0 && errno == ECONNREFUSED)
    {
      close (fd);
      g_debug ("Pipe “%s”: removing the stale socket “%s”", name, path);
      if (g_unlink (path) != 0 && errno != ENOENT)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       "Cannot remove the stale socket “%s” of pipe “%s”: %s",
                       path, name, g_strerror (errsv));
          return FALSE;
        }
      return TRUE;
    }

  close (fd);
  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
               "Cannot listen as pipe “%s”: another process listens on “%s”",
               name, path);
  return FALSE;
}

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

  if (!np_socket_file_claim (name, path, error))
    return NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;

  address = g_unix_socket_address_new (path);
  if (!g_socket_bind (socket, address, FALSE, error))
    {
      g_prefix_error (error, "Cannot listen as pipe “%s”: ", name);
      return NULL;
    }

  if (chmod (path, allow_other_users ? 0666 : 0600) != 0 ||
      stat (path, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot set up the socket “%s” of pipe “%s”: %s",
                   path, name, g_strerror (errsv));
      g_unlink (path);
      return NULL;
    }

  /* Many clients may connect in one burst before the loop gets to them. */
  g_socket_set_listen_backlog (socket, SOMAXCONN);
  if (!g_socket_listen (socket, error))
    {
      g_prefix_error (error, "Cannot listen as pipe “%s”: ", name);
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
