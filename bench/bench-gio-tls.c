/* bench-gio-tls.c: the limit of GIO's TLS engine (glib-networking), a
 * bare GTlsConnection over loopback TCP carrying length-prefixed messages,
 * written and read by hand with blocking calls, a thread a connection
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A sender writes a message with one call, or, one way, fills a TLS
 * record (16 KiB) before each write; a receiver reads whatever the
 * connection has into one buffer and finds the message boundaries there.
 */

#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include <gio/gio.h>

#include "bench.h"

#define RECORD_SIZE (16 * 1024)

static void
no_delay (GSocketConnection *connection)
{
  g_autoptr(GError) error = NULL;

  if (!g_socket_set_option (g_socket_connection_get_socket (connection),
                            IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_error ("TCP_NODELAY: %s", error->message);
}

/* Servers */

typedef void (*ServeFunc) (GIOStream *tls, gpointer user_data);

typedef struct
{
  GSocketListener *listener;
  GTlsCertificate *certificate;
  ServeFunc        serve;
  gpointer         user_data;
} Server;

typedef struct
{
  Server            *server;
  GSocketConnection *connection;
} Accepted;

static gpointer
serve_thread (gpointer data)
{
  Accepted *accepted = data;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GError) error = NULL;

  no_delay (accepted->connection);
  /* No database: there are no client certificates to verify. Without
   * one given here, glib-networking (2.74) would load the system's
   * trusted certificates anew for each connection. */
  tls = g_initable_new (g_tls_backend_get_server_connection_type (g_tls_backend_get_default ()),
                        NULL, &error, "base-io-stream", accepted->connection,
                        "certificate", accepted->server->certificate, "database", NULL, NULL);
  if (tls == NULL)
    g_error ("%s", error->message);
  if (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    accepted->server->serve (tls, accepted->server->user_data);
  g_io_stream_close (tls, NULL, NULL);

  g_object_unref (accepted->connection);
  g_free (accepted);

  return NULL;
}

static gpointer
accept_thread (gpointer data)
{
  Server *server = data;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      Accepted *accepted = g_new0 (Accepted, 1);

      accepted->server = server;
      accepted->connection = g_socket_listener_accept (server->listener, NULL, NULL, &error);
      if (accepted->connection == NULL)
        g_error ("accept: %s", error->message);
      g_thread_unref (g_thread_new ("np-bench-tls", serve_thread, accepted));
    }

  return NULL;
}

/* Listens on an ephemeral port of 127.0.0.1 (whatever @address says, it
 * is the orchestrator's "tcp:127.0.0.1:0"), says "ready" with the port,
 * and serves each connection in a thread of its own. */
static void
server_start (Server     *server,
              const char *address,
              ServeFunc   serve,
              gpointer    user_data)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;

  server->certificate = bench_tls_certificate ();
  server->serve = serve;
  server->user_data = user_data;
  server->listener = g_socket_listener_new ();
  g_socket_listener_set_backlog (server->listener, 128);
  if (!g_socket_listener_add_address (server->listener, any_port, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error))
    g_error ("listen: %s", error->message);

  g_thread_unref (g_thread_new ("np-bench-accept", accept_thread, server));
  ready = g_strdup_printf ("tcp:127.0.0.1:%u",
                           g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  bench_ready_at (ready);
}

/* Clients */

static gboolean
accept_own_certificate (GTlsConnection       *tls,
                        GTlsCertificate      *peer,
                        GTlsCertificateFlags  errors,
                        GTlsCertificate      *expected)
{
  return g_tls_certificate_is_same (peer, expected);
}

/* Connects to "tcp:127.0.0.1:PORT" and completes the handshake; the
 * server's certificate is accepted if it is the one the orchestrator
 * made (a pin), self-signed as it is. */
static GIOStream *
client_new (const char *address)
{
  static GTlsCertificate *expected;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketAddress) server = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;
  const char *port = strrchr (address, ':');
  GIOStream *tls;

  if (g_once_init_enter (&expected))
    g_once_init_leave (&expected, bench_tls_certificate ());

  if (!g_str_has_prefix (address, "tcp:127.0.0.1:"))
    g_error ("Not a loopback TCP address: %s", address);
  server = g_inet_socket_address_new_from_string ("127.0.0.1", g_ascii_strtoull (port + 1, NULL, 10));
  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (server), NULL, &error);
  if (connection == NULL)
    g_error ("connect to %s: %s", address, error->message);
  no_delay (connection);

  /* No database either: the certificate is pinned, not verified (see
   * serve_thread()). */
  identity = g_network_address_new ("127.0.0.1", 0);
  tls = g_initable_new (g_tls_backend_get_client_connection_type (g_tls_backend_get_default ()),
                        NULL, &error, "base-io-stream", connection, "server-identity", identity,
                        "database", NULL, NULL);
  if (tls == NULL)
    g_error ("%s", error->message);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_own_certificate), expected);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    g_error ("TLS handshake with %s: %s", address, error->message);

  return tls;
}

/* Reading: whatever the connection has goes into one buffer, which grows
 * to the largest message; a message is given where it lies there. */

typedef struct
{
  GInputStream *in;
  guint8       *buf;
  gsize         size;
  gsize         start;
  gsize         end;
} Reader;

static void
reader_init (Reader    *reader,
             GIOStream *tls)
{
  *reader = (Reader) { .in = g_io_stream_get_input_stream (tls), .size = 256 * 1024 };
  reader->buf = g_malloc (reader->size);
}

static void
reader_clear (Reader *reader)
{
  g_clear_pointer (&reader->buf, g_free);
}

/* What was read and not yet given: 0 when the next message needs a read. */
static gsize
reader_buffered (Reader *reader)
{
  return reader->end - reader->start;
}

/* The next message, valid until the next call; NULL at the end of the
 * stream. */
static const guint8 *
reader_next (Reader  *reader,
             guint32 *len)
{
  for (;;)
    {
      gsize avail = reader->end - reader->start;
      g_autoptr(GError) error = NULL;
      gssize n;

      if (avail >= sizeof *len)
        {
          memcpy (len, reader->buf + reader->start, sizeof *len);
          if (avail >= sizeof *len + *len)
            {
              const guint8 *payload = reader->buf + reader->start + sizeof *len;

              reader->start += sizeof *len + *len;
              return payload;
            }
          if (sizeof *len + *len > reader->size)
            {
              reader->size = sizeof *len + *len;
              reader->buf = g_realloc (reader->buf, reader->size);
            }
        }

      if (reader->start > 0)
        {
          memmove (reader->buf, reader->buf + reader->start, avail);
          reader->start = 0;
          reader->end = avail;
        }
      n = g_input_stream_read (reader->in, reader->buf + reader->end, reader->size - reader->end,
                               NULL, &error);
      if (n < 0)
        g_error ("read: %s", error->message);
      if (n == 0)
        return NULL;
      reader->end += n;
    }
}

static void
write_all (GIOStream    *tls,
           const guint8 *data,
           gsize         len)
{
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all (g_io_stream_get_output_stream (tls), data, len, NULL, NULL, &error))
    g_error ("write: %s", error->message);
}

/* A message of @size bytes with its length before it. */
static guint8 *
frame_new (gsize size)
{
  g_autofree guint8 *payload = bench_payload (size);
  guint8 *frame = g_malloc (sizeof (guint32) + size);
  guint32 len = size;

  memcpy (frame, &len, sizeof len);
  memcpy (frame + sizeof len, payload, size);

  return frame;
}

/* sink: each connection's thread counts what it read, and adds it up
 * whenever it is about to read again */

typedef struct
{
  GMutex  lock;
  GCond   cond;
  guint64 total;
  guint64 count;
  gint64  first;
  gint64  last;
} Sink;

static void
sink_add (Sink    *s,
          guint64  count,
          gint64   first,
          gint64   last)
{
  g_mutex_lock (&s->lock);
  if (s->count == 0 || first < s->first)
    s->first = first;
  s->last = MAX (s->last, last);
  s->count += count;
  if (s->count >= s->total)
    g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
}

static void
sink_serve (GIOStream *tls,
            gpointer   user_data)
{
  Sink *s = user_data;
  Reader reader;
  guint64 count = 0;
  gint64 first = 0, last = 0;
  guint32 len;

  reader_init (&reader, tls);
  while (reader_next (&reader, &len) != NULL)
    {
      last = g_get_monotonic_time ();
      if (count++ == 0)
        first = last;
      if (reader_buffered (&reader) == 0)
        {
          sink_add (s, count, first, last);
          count = 0;
        }
    }
  if (count > 0)
    sink_add (s, count, first, last);
  reader_clear (&reader);
}

static int
gio_tls_sink (const char *address,
              guint64     total,
              gsize       size)
{
  static Server server;
  static Sink s;

  s.total = total;
  server_start (&server, address, sink_serve, &s);

  g_mutex_lock (&s.lock);
  while (s.count < total)
    g_cond_wait (&s.cond, &s.lock);
  g_mutex_unlock (&s.lock);
  bench_report ("rate %f", (total - 1) / ((s.last - s.first) / 1e6));

  /* The connections stay until the sources are done. */
  bench_wait_stdin_closed ();

  return 0;
}

/* source: messages are gathered into records of 16 KiB; one larger than
 * that goes in a write of its own */

static int
gio_tls_source (const char *address,
                guint       conns,
                guint64     per_conn,
                gsize       size)
{
  g_autofree GIOStream **streams = g_new0 (GIOStream *, conns);
  g_autofree GByteArray **batches = g_new0 (GByteArray *, conns);
  g_autofree guint8 *frame = frame_new (size);
  gsize frame_len = sizeof (guint32) + size;

  for (guint i = 0; i < conns; i++)
    {
      streams[i] = client_new (address);
      batches[i] = g_byte_array_sized_new (RECORD_SIZE);
    }
  bench_connected_wait_go ();

  for (guint64 n = 0; n < per_conn; n++)
    for (guint i = 0; i < conns; i++)
      {
        if (frame_len >= RECORD_SIZE)
          {
            write_all (streams[i], frame, frame_len);
            continue;
          }
        if (batches[i]->len + frame_len > RECORD_SIZE)
          {
            write_all (streams[i], batches[i]->data, batches[i]->len);
            g_byte_array_set_size (batches[i], 0);
          }
        g_byte_array_append (batches[i], frame, frame_len);
      }
  for (guint i = 0; i < conns; i++)
    if (batches[i]->len > 0)
      write_all (streams[i], batches[i]->data, batches[i]->len);

  bench_wait_stdin_closed ();
  for (guint i = 0; i < conns; i++)
    {
      g_io_stream_close (streams[i], NULL, NULL);
      g_object_unref (streams[i]);
      g_byte_array_unref (batches[i]);
    }

  return 0;
}

/* echo */

static void
echo_serve (GIOStream *tls,
            gpointer   user_data)
{
  Reader reader;
  const guint8 *payload;
  guint32 len;

  reader_init (&reader, tls);
  while ((payload = reader_next (&reader, &len)) != NULL)
    /* The message with its length, as it came. */
    write_all (tls, payload - sizeof len, sizeof len + len);
  reader_clear (&reader);
}

static int
gio_tls_echo (const char *address)
{
  static Server server;

  server_start (&server, address, echo_serve, NULL);
  bench_wait_stdin_closed ();

  return 0;
}

/* pinger */

static void
round_trip (GIOStream    *tls,
            Reader       *reader,
            const guint8 *frame,
            gsize         size)
{
  guint32 len;

  write_all (tls, frame, sizeof len + size);
  if (reader_next (reader, &len) == NULL)
    g_error ("The server closed the connection");
  bench_check_reply (len, size);
}

static int
gio_tls_pinger (const char *address,
                guint       count,
                gsize       size)
{
  g_autoptr(GIOStream) tls = client_new (address);
  g_autofree guint8 *frame = frame_new (size);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  Reader reader;

  reader_init (&reader, tls);
  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      round_trip (tls, &reader, frame, size);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  reader_clear (&reader);
  g_io_stream_close (tls, NULL, NULL);

  return 0;
}

/* connector: connect, handshake, one round trip of one byte, close */

static int
gio_tls_connector (const char *address,
                   guint       count)
{
  g_autofree guint8 *frame = frame_new (1);
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GIOStream) tls = client_new (address);
      Reader reader;

      reader_init (&reader, tls);
      round_trip (tls, &reader, frame, 1);
      reader_clear (&reader);
      g_io_stream_close (tls, NULL, NULL);
    }

  bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

const BenchTransport bench_gio_tls = {
  .name = "gio-tls",
  .title = "GIO TLS stream",
  .tcp = TRUE,
  .prepare = bench_tls_prepare,
  .sink = gio_tls_sink,
  .source = gio_tls_source,
  .echo = gio_tls_echo,
  .pinger = gio_tls_pinger,
  .connector = gio_tls_connector,
};
