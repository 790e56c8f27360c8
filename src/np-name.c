/* np-name.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-name-private.h"

#define LOCK_SUFFIX ".lock"

static gboolean
np_name_is_valid (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > NP_NAME_MAX)
    return FALSE;

  /* "." and ".." would name a directory, not a socket in it. */
  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return FALSE;

  /* Reserved for the lock file that sits beside each socket. */
  if (g_str_has_suffix (name, LOCK_SUFFIX))
    return FALSE;

  for (const char *p = name; *p; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
        return FALSE;
    }

  return TRUE;
}

char *
np_name_generate (void)
{
  return g_strdup_printf ("np-%d-%08x", (int) getpid (), g_random_int ());
}

/* A name maps to $XDG_RUNTIME_DIR/np/NAME; a name starting with '/' is a
 * socket path used as is. */
char *
np_name_to_path (const char  *name,
                 GError     **error)
{
  struct sockaddr_un addr;
  g_autofree char *path = NULL;

  if (name[0] == '/')
    path = g_strdup (name);
  else if (np_name_is_valid (name))
    path = g_build_filename (g_get_user_runtime_dir (), "np", name, NULL);
  else
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("“%s” is not a valid pipe name: use 1 to %u of the characters "
                     "A-Z a-z 0-9 . _ - (not “.”, “..” or a name ending in “%s”), "
                     "or an absolute socket path"),
                   name, NP_NAME_MAX, LOCK_SUFFIX);
      return NULL;
    }

  /* Never let the kernel see a truncated path: it would be another socket. */
  if (strlen (path) >= sizeof addr.sun_path)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("Socket path “%s” for pipe “%s” is longer than the %u bytes "
                     "a Unix socket address holds"),
                   path, name, (guint) sizeof addr.sun_path - 1);
      return NULL;
    }

  return g_steal_pointer (&path);
}

/* Creates the per-user directory 0700 and refuses one that another user
 * owns or that is not a real directory (a planted symlink, say). */
gboolean
np_name_ensure_dir (const char  *socket_path,
                    GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (socket_path);
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot create the pipe directory “%s”: %s"), dir, g_strerror (errsv));
      return FALSE;
    }

  if (lstat (dir, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot inspect the pipe directory “%s”: %s"), dir, g_strerror (errsv));
      return FALSE;
    }

  if (!S_ISDIR (st.st_mode) || st.st_uid != getuid ())
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   _("The pipe directory “%s” is not a directory owned by uid %u"),
                   dir, (guint) getuid ());
      return FALSE;
    }

  if ((st.st_mode & 0077) != 0 && chmod (dir, 0700) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot restrict the pipe directory “%s” to its owner: %s"),
                   dir, g_strerror (errsv));
      return FALSE;
    }

  return TRUE;
}

/* Takes the lock file beside the socket, the way Wayland compositors do:
 * while a server runs it holds an flock() on SOCKET.lock, so a second
 * server learns the name is taken without connecting to the first, and a
 * crashed server's lock vanishes with its process. The file holds the
 * owner's pid, for tools that list pipes. Returns the locked fd, or -1. */
int
np_name_lock (const char  *name,
              const char  *socket_path,
              GError     **error)
{
  g_autofree char *lock_path = g_strconcat (socket_path, LOCK_SUFFIX, NULL);

  for (guint attempt = 0; attempt < 3; attempt++)
    {
      struct stat fd_st, path_st;
      char pid[32];
      int fd;

      fd = g_open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot open the lock file “%s” of pipe “%s”: %s"),
                       lock_path, name, g_strerror (errsv));
          return -1;
        }

      if (flock (fd, LOCK_EX | LOCK_NB) != 0)
        {
          int errsv = errno;
          close (fd);
          if (errsv == EWOULDBLOCK)
            g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
                         _("A server is already running as pipe “%s”"), name);
          else
            g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                         _("Cannot lock “%s” for pipe “%s”: %s"),
                         lock_path, name, g_strerror (errsv));
          return -1;
        }

      /* A stopping server unlinks its lock file: if we locked an unlinked
       * file, try again with the one now at that path. */
      if (fstat (fd, &fd_st) == 0 && stat (lock_path, &path_st) == 0 &&
          fd_st.st_dev == path_st.st_dev && fd_st.st_ino == path_st.st_ino)
        {
          int len = g_snprintf (pid, sizeof pid, "%d\n", (int) getpid ());

          if (ftruncate (fd, 0) != 0 || write (fd, pid, len) != len)
            g_debug ("Could not record the pid in “%s”", lock_path);

          return fd;
        }

      close (fd);
    }

  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
               _("The lock file of pipe “%s” keeps being replaced"), name);
  return -1;
}

void
np_name_unlock (int         lock_fd,
                const char *socket_path)
{
  g_autofree char *lock_path = g_strconcat (socket_path, LOCK_SUFFIX, NULL);

  if (lock_fd < 0)
    return;

  g_unlink (lock_path);
  close (lock_fd);
}

/* Connects to @socket_path without blocking, to learn whether anything
 * accepts on it. Returns 0 when something does (or would: a full backlog
 * says EAGAIN), otherwise connect()'s errno, ECONNREFUSED when nobody
 * listens; -1 with @error set when no socket could be created. */
static int
np_name_probe (const char  *socket_path,
               GError     **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int errsv = 0;
  int fd;

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot create a socket: %s"), g_strerror (errsv));
      return -1;
    }

  g_strlcpy (addr.sun_path, socket_path, sizeof addr.sun_path);
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0 && errno != EAGAIN)
    errsv = errno;

  close (fd);

  return errsv;
}

static int
np_name_probe_quietly (const char *socket_path)
{
  return np_name_probe (socket_path, NULL);
}

/* Tells a live server from a stale socket by the lock the server holds
 * (docs/protocol.md), reading the owner's pid into @owner_pid (0 when it
 * is not known). A socket whose lock nobody holds, or that has no lock
 * file, is probed: it is stale only when nothing accepts on it.
 *
 * When @stale_lock_fd is given it receives -1, or for a stale pipe with a
 * lock file the locked fd: no server can start there until the caller has
 * removed the socket and released it with np_name_unlock(). */
NpNameState
np_name_get_state (const char *socket_path,
                   int        *owner_pid,
                   int        *stale_lock_fd)
{
  return np_name_get_state_with_probe (socket_path, owner_pid, stale_lock_fd,
                                       np_name_probe_quietly);
}

/* As np_name_get_state(), probing with @probe: a connection that is only
 * opened and closed starts a socket-activated service and leaves it a
 * client that never completed the handshake, which a caller that can
 * speak the protocol avoids. */
NpNameState
np_name_get_state_with_probe (const char      *socket_path,
                              int             *owner_pid,
                              int             *stale_lock_fd,
                              NpNameProbeFunc  probe)
{
  g_autofree char *lock_path = g_strconcat (socket_path, LOCK_SUFFIX, NULL);
  NpNameState state = NP_NAME_STATE_UNKNOWN;
  struct stat st;
  int lock_fd;
  int res;

  g_assert (owner_pid != NULL);

  *owner_pid = 0;
  if (stale_lock_fd != NULL)
    *stale_lock_fd = -1;

  if (lstat (socket_path, &st) != 0)
    return errno == ENOENT ? NP_NAME_STATE_ABSENT : NP_NAME_STATE_UNKNOWN;

  if (!S_ISSOCK (st.st_mode))
    return NP_NAME_STATE_NOT_SOCKET;

  lock_fd = g_open (lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  if (lock_fd >= 0 && flock (lock_fd, LOCK_EX | LOCK_NB) != 0)
    {
      char buf[32] = { 0 };

      if (read (lock_fd, buf, sizeof buf - 1) > 0)
        *owner_pid = (int) CLAMP (g_ascii_strtoll (buf, NULL, 10), 0, G_MAXINT);
      close (lock_fd);

      return NP_NAME_STATE_LIVE;
    }

  res = probe (socket_path);
  if (res == 0)
    state = NP_NAME_STATE_LIVE;
  else if (res == ECONNREFUSED)
    state = NP_NAME_STATE_STALE;

  if (lock_fd >= 0)
    {
      if (state == NP_NAME_STATE_STALE && stale_lock_fd != NULL)
        *stale_lock_fd = lock_fd;
      else
        close (lock_fd);
    }

  return state;
}

/* Makes way for a server that holds the pipe's lock (np_name_lock()):
 * refuses a path that is not a socket or that something still accepts
 * on, and removes a socket left behind by a server that is gone. */
gboolean
np_name_claim_path (const char  *name,
                    const char  *socket_path,
                    GError     **error)
{
  struct stat st;
  int res;

  if (lstat (socket_path, &st) != 0)
    return TRUE;

  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
                   _("Cannot listen as pipe “%s”: “%s” exists and is not a socket"),
                   name, socket_path);
      return FALSE;
    }

  /* We hold the pipe's lock, so no Np server runs there. Something else
   * still might: only a socket nobody answers on is removed. */
  res = np_name_probe (socket_path, error);
  if (res < 0)
    return FALSE;

  if (res == ECONNREFUSED)
    {
      g_debug ("Pipe “%s”: removing the stale socket “%s”", name, socket_path);
      if (g_unlink (socket_path) != 0 && errno != ENOENT)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot remove the stale socket “%s” of pipe “%s”: %s"),
                       socket_path, name, g_strerror (errsv));
          return FALSE;
        }
      return TRUE;
    }

  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
               _("Cannot listen as pipe “%s”: another process listens on “%s”"),
               name, socket_path);
  return FALSE;
}
