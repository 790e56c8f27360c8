/* np-socket-activation.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-socket-activation-private.h"

/* systemd's socket activation, without libsystemd: the protocol is three
 * environment variables (sd_listen_fds(3)). LISTEN_PID names the process
 * they are for, LISTEN_FDS how many descriptors it got, from 3 on, and
 * LISTEN_FDNAMES their names, separated by colons. The first server that
 * starts reads and clears them, so that children do not inherit them; the
 * descriptors wait here, close-on-exec, for the server of their name. */

#define NP_LISTEN_FDS_START 3

typedef struct
{
  int   fd;
  char *name;
} Passed;

G_LOCK_DEFINE_STATIC (passed);
static GArray *passed;      /* of Passed; NULL until the variables are read */

static void
np_socket_activation_read_locked (void)
{
  const char *pid_str = g_getenv ("LISTEN_PID");
  const char *fds_str = g_getenv ("LISTEN_FDS");
  g_auto(GStrv) names = NULL;
  guint64 pid = 0, n_fds = 0;

  passed = g_array_new (FALSE, FALSE, sizeof (Passed));

  if (pid_str == NULL || fds_str == NULL ||
      !g_ascii_string_to_unsigned (pid_str, 10, 1, G_MAXINT, &pid, NULL) ||
      !g_ascii_string_to_unsigned (fds_str, 10, 1, 1024, &n_fds, NULL) ||
      (pid_t) pid != getpid ())
    return;

  if (g_getenv ("LISTEN_FDNAMES") != NULL)
    names = g_strsplit (g_getenv ("LISTEN_FDNAMES"), ":", -1);

  for (guint i = 0; i < n_fds; i++)
    {
      Passed p = { NP_LISTEN_FDS_START + i, NULL };

      if (fcntl (p.fd, F_SETFD, FD_CLOEXEC) != 0)
        continue;
      if (names != NULL && i < g_strv_length (names))
        p.name = g_strdup (names[i]);
      g_array_append_val (passed, p);
    }

  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
}

/* The passed descriptor for pipe @name: the one of that name (or of that
 * name with ".socket", systemd's default), or the only one. */
static int
np_socket_activation_find_locked (const char *name)
{
  g_autofree char *unit_name = g_strconcat (name, ".socket", NULL);
  int found = -1;

  for (guint i = 0; i < passed->len; i++)
    {
      Passed *p = &g_array_index (passed, Passed, i);

      if (p->fd >= 0 && (g_strcmp0 (p->name, name) == 0 || g_strcmp0 (p->name, unit_name) == 0))
        {
          found = i;
          break;
        }
    }

  if (found < 0 && passed->len == 1 && g_array_index (passed, Passed, 0).fd >= 0)
    found = 0;

  if (found < 0)
    return -1;

  {
    Passed *p = &g_array_index (passed, Passed, found);
    int fd = p->fd;

    p->fd = -1;
    return fd;
  }
}

static gboolean
np_socket_activation_check (const char  *name,
                            int          fd,
                            GError     **error)
{
  int type = 0, domain = 0, listening = 0;
  socklen_t len = sizeof (int);

  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      (len = sizeof (int), getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) != 0 ||
      (len = sizeof (int), getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) != 0 ||
      type != SOCK_STREAM || domain != AF_UNIX || !listening)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED,
                   _("Cannot listen as pipe “%s”: descriptor %d, passed by the service "
                     "manager, is not a listening Unix stream socket"), name, fd);
      return FALSE;
    }

  return TRUE;
}

/* Takes the listening socket systemd passed for pipe @name, if any:
 * returns %NULL without an error when there is none. */
GSocket *
np_socket_activation_take (const char  *name,
                           GError     **error)
{
  GSocket *socket;
  int fd;

  G_LOCK (passed);
  if (passed == NULL)
    np_socket_activation_read_locked ();
  fd = np_socket_activation_find_locked (name);
  G_UNLOCK (passed);

  if (fd < 0)
    return NULL;

  if (!np_socket_activation_check (name, fd, error))
    {
      close (fd);
      return NULL;
    }

  socket = g_socket_new_from_fd (fd, error);
  if (socket == NULL)
    close (fd);

  return socket;
}

/* The file a passed socket is bound to, or %NULL when it has none (an
 * abstract or unnamed socket). */
char *
np_socket_activation_get_path (GSocket *socket)
{
  struct sockaddr_un addr = { 0 };
  socklen_t len = sizeof addr;

  if (getsockname (g_socket_get_fd (socket), (struct sockaddr *) &addr, &len) != 0 ||
      len <= offsetof (struct sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
    return NULL;

  return g_strndup (addr.sun_path, len - offsetof (struct sockaddr_un, sun_path));
}
