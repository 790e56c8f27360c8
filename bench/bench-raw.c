/* bench-raw.c: the physical limit, a plain AF_UNIX stream socket carrying
 * length-prefixed messages, with epoll on the receiving side
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The receiver only finds the message boundaries: it neither allocates
 * nor copies a message, which is as little as any receiver can do.
 */

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

#define READ_SIZE (256 * 1024)

static struct sockaddr_un
address_of (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  return addr;
}

static int
listen_on (const char *path)
{
  struct sockaddr_un addr = address_of (path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  unlink (path);
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (fd, SOMAXCONN) != 0)
    g_error ("listen on %s: %s", path, g_strerror (errno));

  return fd;
}

static int
connect_to (const char *path)
{
  struct sockaddr_un addr = address_of (path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    g_error ("connect to %s: %s", path, g_strerror (errno));

  return fd;
}

static void
write_all (int          fd,
           const void  *data,
           gsize        len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n = write (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        g_error ("write: %s", g_strerror (errno));
      p += n;
      len -= n;
    }
}

static void
read_all (int    fd,
          void  *data,
          gsize  len)
{
  guint8 *p = data;

  while (len > 0)
    {
      gssize n = read (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        g_error ("read: %s", n == 0 ? "end of stream" : g_strerror (errno));
      p += n;
      len -= n;
    }
}

/* The receiving side's state for one connection: where it is in a frame. */
typedef struct
{
  int     fd;
  guint8  header[4];
  guint   header_len;
  guint32 payload_left;
  GByteArray *frame;   /* echo only: the frame being reassembled */
} Conn;

typedef void (*FrameFunc) (Conn *conn, gpointer user_data);

/* Runs an epoll loop: accepts connections, finds frame boundaries, calls
 * @on_frame for each frame, until @done says so or stdin closes. */
static void
serve (int         listen_fd,
       gboolean    keep_frames,
       FrameFunc   on_frame,
       gboolean  (*done) (gpointer user_data),
       gpointer    user_data)
{
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN };
  g_autofree guint8 *buf = g_malloc (READ_SIZE);

  ev.data.ptr = NULL;
  epoll_ctl (ep, EPOLL_CTL_ADD, listen_fd, &ev);
  ev.data.ptr = GINT_TO_POINTER (1);
  epoll_ctl (ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev);

  while (done == NULL || !done (user_data))
    {
      struct epoll_event events[64];
      int n = epoll_wait (ep, events, G_N_ELEMENTS (events), -1);

      for (int i = 0; i < n; i++)
        {
          Conn *conn = events[i].data.ptr;

          if (conn == NULL)
            {
              Conn *c = g_new0 (Conn, 1);
              struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };

              c->fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
              if (keep_frames)
                c->frame = g_byte_array_new ();
              epoll_ctl (ep, EPOLL_CTL_ADD, c->fd, &cev);
              continue;
            }

          if (conn == GINT_TO_POINTER (1))
            {
              char b[64];

              if (read (STDIN_FILENO, b, sizeof b) <= 0)
                return;
              continue;
            }

          {
            gssize got = read (conn->fd, buf, READ_SIZE);
            guint8 *p = buf, *end;

            if (got <= 0)
              {
                epoll_ctl (ep, EPOLL_CTL_DEL, conn->fd, NULL);
                close (conn->fd);
                if (conn->frame)
                  g_byte_array_unref (conn->frame);
                g_free (conn);
                continue;
              }

            end = buf + got;
            while (p < end)
              {
                if (conn->header_len < 4)
                  {
                    guint take = MIN (4 - conn->header_len, (guint) (end - p));

                    memcpy (conn->header + conn->header_len, p, take);
                    conn->header_len += take;
                    p += take;
                    if (conn->header_len < 4)
                      break;
                    memcpy (&conn->payload_left, conn->header, 4);
                    if (keep_frames)
                      {
                        g_byte_array_set_size (conn->frame, 0);
                        g_byte_array_append (conn->frame, conn->header, 4);
                      }
                  }

                {
                  guint32 take = MIN (conn->payload_left, (guint32) (end - p));

                  if (keep_frames)
                    g_byte_array_append (conn->frame, p, take);
                  conn->payload_left -= take;
                  p += take;
                }

                if (conn->payload_left == 0)
                  {
                    conn->header_len = 0;
                    on_frame (conn, user_data);
                  }
              }
          }
        }
    }
}

/* sink */

typedef struct
{
  guint64 total;
  guint64 count;
  gint64  first;
  gint64  last;
} Sink;

static void
sink_frame (Conn     *conn,
            gpointer  user_data)
{
  Sink *s = user_data;

  s->last = g_get_monotonic_time ();
  if (s->count++ == 0)
    s->first = s->last;
}

static gboolean
sink_done (gpointer user_data)
{
  Sink *s = user_data;

  return s->count == s->total;
}

static int
raw_sink (const char *address,
          guint64     total,
          gsize       size)
{
  int fd = listen_on (address);
  Sink s = { total };

  bench_ready ();
  serve (fd, FALSE, sink_frame, sink_done, &s);
  bench_report ("rate %f", (total - 1) / ((s.last - s.first) / 1e6));

  return 0;
}

/* source: one write per message, or batched */

static int
source (const char *address,
        guint       conns,
        guint64     per_conn,
        gsize       size,
        gboolean    batched)
{
  g_autofree int *fds = g_new (int, conns);
  g_autofree guint8 *payload = bench_payload (size);
  guint32 len = size;
  gsize batch_size = 64 * 1024;
  g_autofree guint8 **batches = g_new0 (guint8 *, conns);
  g_autofree gsize *filled = g_new0 (gsize, conns);

  for (guint i = 0; i < conns; i++)
    fds[i] = connect_to (address);
  bench_connected_wait_go ();

  for (guint64 n = 0; n < per_conn; n++)
    {
      for (guint i = 0; i < conns; i++)
        {
          if (!batched || size + 4 > batch_size)
            {
              struct iovec iov[2] = { { &len, 4 }, { payload, size } };
              gssize written = writev (fds[i], iov, 2);

              if (written != (gssize) (size + 4))
                {
                  /* The socket took part of it: write the rest. */
                  guint8 *frame = g_malloc (size + 4);

                  if (written < 0)
                    written = 0;
                  memcpy (frame, &len, 4);
                  memcpy (frame + 4, payload, size);
                  write_all (fds[i], frame + written, size + 4 - written);
                  g_free (frame);
                }
              continue;
            }

          if (batches[i] == NULL)
            batches[i] = g_malloc (batch_size);
          if (filled[i] + 4 + size > batch_size)
            {
              write_all (fds[i], batches[i], filled[i]);
              filled[i] = 0;
            }
          memcpy (batches[i] + filled[i], &len, 4);
          memcpy (batches[i] + filled[i] + 4, payload, size);
          filled[i] += 4 + size;
        }
    }

  for (guint i = 0; i < conns; i++)
    {
      if (filled[i] > 0)
        write_all (fds[i], batches[i], filled[i]);
      g_free (batches[i]);
    }

  /* Kept until the receiver counted everything, as Np's are. */
  bench_wait_stdin_closed ();
  for (guint i = 0; i < conns; i++)
    close (fds[i]);

  return 0;
}

static int
raw_source (const char *address,
            guint       conns,
            guint64     per_conn,
            gsize       size)
{
  return source (address, conns, per_conn, size, FALSE);
}

static int
raw_batched_source (const char *address,
                    guint       conns,
                    guint64     per_conn,
                    gsize       size)
{
  return source (address, conns, per_conn, size, TRUE);
}

/* echo */

static void
echo_frame (Conn     *conn,
            gpointer  user_data)
{
  write_all (conn->fd, conn->frame->data, conn->frame->len);
}

static int
raw_echo (const char *address)
{
  int fd = listen_on (address);

  bench_ready ();
  serve (fd, TRUE, echo_frame, NULL, NULL);

  return 0;
}

/* pinger and connector */

static void
round_trip (int           fd,
            const guint8 *frame,
            guint8       *reply,
            gsize         len)
{
  write_all (fd, frame, len);
  read_all (fd, reply, len);
}

static int
raw_pinger (const char *address,
            guint       count,
            gsize       size)
{
  int fd = connect_to (address);
  g_autofree guint8 *frame = g_malloc0 (size + 4);
  g_autofree guint8 *reply = g_malloc (size + 4);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  guint32 len = size;

  memcpy (frame, &len, 4);
  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      round_trip (fd, frame, reply, size + 4);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  close (fd);

  return 0;
}

static int
raw_connector (const char *address,
               guint       count)
{
  static const guint8 frame[5] = { 1, 0, 0, 0, 'x' };
  guint8 reply[5];
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    {
      int fd = connect_to (address);

      round_trip (fd, frame, reply, sizeof frame);
      close (fd);
    }

  bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

/* idler and holder */

static int
raw_idler (const char *address,
           guint       conns)
{
  g_autofree int *fds = g_new (int, conns);

  for (guint i = 0; i < conns; i++)
    fds[i] = connect_to (address);

  bench_report ("connected");
  bench_wait_stdin_closed ();

  return 0;
}

static int
raw_holder (const char *address,
            guint       conns)
{
  int fd = listen_on (address);
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  gint64 before = bench_rss_bytes ();

  bench_ready ();
  for (guint i = 0; i < conns; i++)
    {
      Conn *c = g_new0 (Conn, 1);
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

      c->fd = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
      epoll_ctl (ep, EPOLL_CTL_ADD, c->fd, &ev);
    }

  bench_report ("memory %f", (double) (bench_rss_bytes () - before) / conns);

  return 0;
}

const BenchTransport bench_raw = {
  .name = "raw",
  .title = "raw socket",
  .sink = raw_sink,
  .source = raw_source,
  .echo = raw_echo,
  .pinger = raw_pinger,
  .connector = raw_connector,
  .idler = raw_idler,
  .holder = raw_holder,
};

/* The same receiver; the sender fills 64 KiB before each write. */
const BenchTransport bench_raw_batched = {
  .name = "raw-batched",
  .title = "raw, batched",
  .sink = raw_sink,
  .source = raw_batched_source,
};
