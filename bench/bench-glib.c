/* bench-glib.c: the floor of any library on the GLib main loop, two bare
 * main loops echoing length-prefixed messages through fd sources, with
 * no framing library, no objects and no signals
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "bench.h"

typedef struct
{
  GMainLoop *loop;
  guint8     buf[64 * 1024];
  gsize      frame_len;
  gsize      got;
  guint      replies;
} Peer;

static int
unix_socket (const char *path,
             gboolean    listen_on)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  if (listen_on)
    {
      unlink (path);
      if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (fd, SOMAXCONN) != 0)
        g_error ("listen: %s", g_strerror (errno));
    }
  else
    {
      int flags = fcntl (fd, F_GETFL);

      /* Connect blocking, then read from the main loop without blocking. */
      fcntl (fd, F_SETFL, flags & ~O_NONBLOCK);
      if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
        g_error ("connect: %s", g_strerror (errno));
      fcntl (fd, F_SETFL, flags);
    }

  return fd;
}

/* Reads what is there; returns TRUE once a whole frame is in buf. */
static gboolean
read_frame (int   fd,
            Peer *peer)
{
  gssize n = read (fd, peer->buf + peer->got, sizeof peer->buf - peer->got);
  guint32 len;

  if (n <= 0)
    return FALSE;
  peer->got += n;
  if (peer->got < 4)
    return FALSE;
  memcpy (&len, peer->buf, 4);
  peer->frame_len = 4 + len;

  return peer->got >= peer->frame_len;
}

static gboolean
echo_readable (int          fd,
               GIOCondition condition,
               gpointer     user_data)
{
  Peer *peer = user_data;

  if (condition & (G_IO_HUP | G_IO_ERR))
    {
      close (fd);
      return G_SOURCE_REMOVE;
    }

  if (read_frame (fd, peer))
    {
      if (write (fd, peer->buf, peer->frame_len) != (gssize) peer->frame_len)
        g_error ("write: %s", g_strerror (errno));
      peer->got = 0;
    }

  return G_SOURCE_CONTINUE;
}

static gboolean
echo_accept (int          fd,
             GIOCondition condition,
             gpointer     user_data)
{
  int conn = accept4 (fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

  if (conn >= 0)
    g_unix_fd_add (conn, G_IO_IN | G_IO_HUP | G_IO_ERR, echo_readable, g_new0 (Peer, 1));

  return G_SOURCE_CONTINUE;
}

static int
glib_echo (const char *address)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  int fd = unix_socket (address, TRUE);

  g_unix_fd_add (fd, G_IO_IN, echo_accept, NULL);
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  bench_ready ();
  g_main_loop_run (loop);

  return 0;
}

static gboolean
reply_readable (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  Peer *peer = user_data;

  if (read_frame (fd, peer))
    {
      peer->got = 0;
      peer->replies++;
    }

  return G_SOURCE_CONTINUE;
}

static int
glib_pinger (const char *address,
             guint       count,
             gsize       size)
{
  int fd = unix_socket (address, FALSE);
  g_autofree guint8 *frame = g_malloc0 (size + 4);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  Peer *peer = g_new0 (Peer, 1);
  guint32 len = size;

  memcpy (frame, &len, 4);
  g_unix_fd_add (fd, G_IO_IN, reply_readable, peer);

  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      if (write (fd, frame, size + 4) != (gssize) (size + 4))
        g_error ("write: %s", g_strerror (errno));
      while (peer->replies == i)
        g_main_context_iteration (NULL, TRUE);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  g_free (peer);

  return 0;
}

const BenchTransport bench_glib = {
  .name = "glib",
  .title = "bare GLib loops",
  .echo = glib_echo,
  .pinger = glib_pinger,
};
