/* bench-np.c: the Np side of np-bench, through the public API only
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <np/np.h>

#include "bench.h"

/* Over TCP: np-tcp's connections are plaintext (loopback only), np-tls's
 * use the certificate the orchestrator made; the clients pin it. */
static gboolean
is_tcp (const char *address)
{
  return g_str_has_prefix (address, "tcp:");
}

static gboolean
is_plaintext (void)
{
  return bench_role_transport == &bench_np_tcp;
}

/* The SHA-256 of the server's certificate (DER), in hex. */
static const char *
tls_pin (void)
{
  static char *pin;

  if (pin == NULL)
    {
      g_autoptr(GTlsCertificate) certificate = bench_tls_certificate ();
      g_autoptr(GByteArray) der = NULL;

      g_object_get (certificate, "certificate", &der, NULL);
      pin = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
    }

  return pin;
}

static NpPipeServer *
server_new (const char *address,
            guint       max_connections)
{
  NpPipeServer *server = np_pipe_server_new (address);
  g_autoptr(GError) error = NULL;

  if (is_tcp (address) && is_plaintext ())
    g_object_set (server, "insecure-plaintext", TRUE, "allow-anonymous", TRUE, NULL);
  else if (is_tcp (address))
    {
      g_autoptr(GTlsCertificate) certificate = bench_tls_certificate ();

      g_object_set (server, "tls-certificate", certificate, "allow-anonymous", TRUE, NULL);
    }
  np_pipe_server_set_max_connections (server, max_connections);
  np_pipe_server_set_max_queued_bytes (server, 0);
  np_pipe_server_set_request_timeout (server, 0);
  if (!np_pipe_server_start (server, &error))
    g_error ("%s", error->message);

  return server;
}

/* Over TCP, the server's name gives the port it was given. */
static void
server_ready (NpPipeServer *server)
{
  const char *name = np_pipe_server_get_name (server);

  if (is_tcp (name))
    bench_ready_at (name);
  else
    bench_ready ();
}

static NpPipeClient *
client_new (const char *address)
{
  NpPipeClient *client = np_pipe_client_new (address);
  g_autoptr(GError) error = NULL;

  if (is_tcp (address) && is_plaintext ())
    g_object_set (client, "insecure-plaintext", TRUE, NULL);
  else if (is_tcp (address))
    g_object_set (client, "tls-pin", tls_pin (), NULL);
  np_pipe_client_set_max_queued_bytes (client, 0);
  np_pipe_client_set_request_timeout (client, 0);
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    g_error ("%s", error->message);

  return client;
}

/* sink */

typedef struct
{
  guint64 count;
  gint64  first;
  gint64  last;
} Sink;

static void
sink_message (NpPipeServer     *server,
              NpPipeConnection *connection,
              GBytes           *message,
              Sink             *s)
{
  s->last = g_get_monotonic_time ();
  if (s->count++ == 0)
    s->first = s->last;
}

static int
np_sink (const char *address,
         guint64     total,
         gsize       size)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  Sink s = { 0 };

  g_signal_connect (server, "message-received", G_CALLBACK (sink_message), &s);
  server_ready (server);
  WAIT_UNTIL (s.count == total);
  bench_report ("rate %f", (total - 1) / ((s.last - s.first) / 1e6));

  return 0;
}

/* source */

static int
np_source (const char *address,
           guint       conns,
           guint64     per_conn,
           gsize       size)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GBytes) message = g_bytes_new_take (bench_payload (size), size);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < conns; i++)
    g_ptr_array_add (clients, client_new (address));
  bench_connected_wait_go ();

  for (guint64 n = 0; n < per_conn; n++)
    {
      for (guint i = 0; i < conns; i++)
        {
          NpPipeClient *client = g_ptr_array_index (clients, i);

          if (!np_pipe_client_send (client, message, &error))
            g_error ("%s", error->message);

          /* Let the loop write when the receiver is slower than we are. */
          if (np_pipe_client_get_queued_bytes (client) > 8 * 1024 * 1024)
            WAIT_UNTIL (np_pipe_client_get_queued_bytes (client) < 1024 * 1024);
        }
    }

  /* Everything out, and the connections kept until the receiver counted
   * it all: its rate is the messages', not also the goodbyes of
   * thousands of connections that another source ended first. */
  for (guint i = 0; i < conns; i++)
    WAIT_UNTIL (np_pipe_client_get_queued_bytes (g_ptr_array_index (clients, i)) == 0);
  bench_wait_stdin_closed ();

  for (guint i = 0; i < conns; i++)
    np_pipe_client_close (g_ptr_array_index (clients, i), NULL, NULL);

  return 0;
}

/* echo */

static void
echo_message (NpPipeServer     *server,
              NpPipeConnection *connection,
              GBytes           *message,
              gpointer          user_data)
{
  np_pipe_connection_send (connection, message, NULL);
}

static int
np_echo (const char *address)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  g_signal_connect (server, "message-received", G_CALLBACK (echo_message), NULL);
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  server_ready (server);
  g_main_loop_run (loop);

  return 0;
}

/* pinger */

static void
count_message (NpPipeClient *client,
               GBytes       *message,
               guint        *received)
{
  (*received)++;
}

static int
np_pinger (const char *address,
           guint       count,
           gsize       size)
{
  g_autoptr(NpPipeClient) client = client_new (address);
  g_autoptr(GBytes) message = g_bytes_new_take (bench_payload (size), size);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  guint received = 0;

  g_signal_connect (client, "message-received", G_CALLBACK (count_message), &received);

  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      np_pipe_client_send (client, message, NULL);
      WAIT_UNTIL (received == i + 1);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

/* connector */

static void
ping_done (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  if (np_pipe_client_ping_finish (NP_PIPE_CLIENT (object), result, &error) < 0)
    g_error ("%s", error->message);
  *done = TRUE;
}

static int
np_connector (const char *address,
              guint       count)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(NpPipeClient) client = client_new (address);
      gboolean done = FALSE;

      /* The server's library answers the ping after the handshake. */
      np_pipe_client_ping_async (client, NULL, ping_done, &done);
      WAIT_UNTIL (done);
      np_pipe_client_close (client, NULL, NULL);
    }

  bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

/* idler and holder */

static int
np_idler (const char *address,
          guint       conns)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < conns; i++)
    g_ptr_array_add (clients, client_new (address));

  bench_report ("connected");
  bench_wait_stdin_closed ();

  return 0;
}

static int
np_holder (const char *address,
           guint       conns)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  g_autoptr(NpPipeClient) warm = NULL;
  gint64 before;

  /* One connection first, so that what only the first one costs (types,
   * the read buffer) is not counted per connection. */
  warm = client_new (address);
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == 1);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  before = bench_rss_bytes ();
  server_ready (server);
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == conns + 1);
  /* Let every handshake complete. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  bench_report ("memory %f", (double) (bench_rss_bytes () - before) / conns);

  /* The idler's connects complete with the server's handshake: serve
   * until it is done. */
  {
    g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

    g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
    g_main_loop_run (loop);
  }

  return 0;
}

/* tagged sink and thread source */

static void
tagged_message (NpPipeServer     *server,
                NpPipeConnection *connection,
                GBytes           *message,
                BenchTags        *tags)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);

  bench_tags_check (tags, data, len);
}

static int
np_tagged_sink (const char *address,
                guint       threads,
                guint64     per_thread,
                gsize       size)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  BenchTags tags;

  bench_tags_init (&tags, threads, per_thread, size);
  g_signal_connect (server, "message-received", G_CALLBACK (tagged_message), &tags);
  server_ready (server);
  WAIT_UNTIL (bench_tags_done (&tags));
  bench_tags_report (&tags);
  bench_tags_clear (&tags);

  return 0;
}

typedef struct
{
  NpPipeClient *client;   /* shared by every thread */
  guint32       index;
  guint64       count;
  gsize         size;
  gint         *running;
} Sender;

static gpointer
np_sender_thread (gpointer data)
{
  Sender *sender = data;
  g_autofree guint8 *payload = bench_payload (sender->size);
  g_autoptr(GError) error = NULL;

  for (guint64 n = 0; n < sender->count; n++)
    {
      /* Each message is copied into a GBytes of its own, as zmq_send()
       * copies it. */
      bench_tags_write (payload, sender->index, n);
      if (!np_pipe_client_send_data (sender->client, payload, sender->size, &error))
        g_error ("%s", error->message);

      /* Write from this thread when the receiver is slower than we are. */
      if (np_pipe_client_get_queued_bytes (sender->client) > 8 * 1024 * 1024 &&
          !np_pipe_client_flush_sync (sender->client, NULL, &error))
        g_error ("%s", error->message);
    }

  if (!np_pipe_client_send_data (sender->client, (guint8 *) &sender->index,
                                 BENCH_TAG_END_SIZE, &error))
    g_error ("%s", error->message);

  if (g_atomic_int_dec_and_test (sender->running))
    g_main_context_wakeup (NULL);

  return NULL;
}

/* The threads share one client, whose main context this thread runs. */
static int
np_thread_source (const char *address,
                  guint       threads,
                  guint64     per_thread,
                  gsize       size)
{
  g_autoptr(NpPipeClient) client = client_new (address);
  g_autofree Sender *senders = g_new0 (Sender, threads);
  g_autofree GThread **handles = g_new0 (GThread *, threads);
  gint running = threads;

  for (guint i = 0; i < threads; i++)
    {
      senders[i] = (Sender) { client, i, per_thread, size, &running };
      handles[i] = g_thread_new ("np-bench-sender", np_sender_thread, &senders[i]);
    }

  WAIT_UNTIL (g_atomic_int_get (&running) == 0);
  for (guint i = 0; i < threads; i++)
    g_thread_join (handles[i]);

  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

/* replier and requester */

static gboolean
reply_request (NpPipeServer     *server,
               NpPipeConnection *connection,
               NpPipeRequest    *request,
               gpointer          user_data)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));

  return TRUE;
}

static int
np_replier (const char *address,
            guint       window)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  g_signal_connect (server, "request-received", G_CALLBACK (reply_request), NULL);
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  server_ready (server);
  g_main_loop_run (loop);

  return 0;
}

typedef struct
{
  NpPipeClient *client;
  GBytes       *message;
  guint64       count;
  guint64       sent;
  guint64       replies;
  gboolean      refill;   /* each reply sends the next request */
} Requester;

static void request_done (GObject      *object,
                          GAsyncResult *result,
                          gpointer      user_data);

static void
request_next (Requester *r)
{
  r->sent++;
  np_pipe_client_request_async (r->client, r->message, NULL, request_done, r);
}

static void
request_done (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Requester *r = user_data;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = np_pipe_client_request_finish (NP_PIPE_CLIENT (object), result, &error);
  if (reply == NULL)
    g_error ("%s", error->message);
  bench_check_reply (g_bytes_get_size (reply), g_bytes_get_size (r->message));

  r->replies++;
  if (r->refill && r->sent < r->count)
    request_next (r);
}

static int
np_requester (const char *address,
              guint64     count,
              gsize       size,
              guint       window)
{
  g_autoptr(NpPipeClient) client = client_new (address);
  g_autoptr(GBytes) message = g_bytes_new_take (bench_payload (size), size);
  Requester r = { client, message, count, 0, 0, window > 1 };
  gint64 start;

  if (window == 1)
    {
      g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

      /* Sent from here, as the echo round trip sends. */
      for (guint64 i = 0; i < count; i++)
        {
          double usec;

          start = g_get_monotonic_time ();
          request_next (&r);
          WAIT_UNTIL (r.replies == i + 1);
          usec = g_get_monotonic_time () - start;
          g_array_append_val (usecs, usec);
        }
      bench_print_rtts (usecs);
    }
  else
    {
      start = g_get_monotonic_time ();
      for (guint i = 0; i < window && r.sent < count; i++)
        request_next (&r);
      WAIT_UNTIL (r.replies == count);
      bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));
    }

  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

/* fd echo and fd pinger: each message carries a memfd, made once by each
 * side and sent every time; the receiver checks and closes the one that
 * arrives. */

static GUnixFDList *
fd_list_new (void)
{
  int fd = bench_fd_new ();

  return g_unix_fd_list_new_from_array (&fd, 1);
}

static void
fd_list_check_close (GUnixFDList *fds)
{
  g_autofree int *taken = NULL;
  gint n;

  if (fds == NULL || g_unix_fd_list_get_length (fds) != 1)
    g_error ("A message arrived with %d descriptors, not 1",
             fds != NULL ? g_unix_fd_list_get_length (fds) : 0);
  taken = g_unix_fd_list_steal_fds (fds, &n);
  bench_fd_check_close (taken[0]);
}

static void
server_message_without_fd (NpPipeServer     *server,
                           NpPipeConnection *connection,
                           GBytes           *message,
                           gpointer          user_data)
{
  g_error ("A message arrived without a descriptor");
}

static void
client_message_without_fd (NpPipeClient *client,
                           GBytes       *message,
                           gpointer      user_data)
{
  g_error ("A message arrived without a descriptor");
}

static void
fd_echo_message (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 GBytes           *message,
                 GUnixFDList      *fds,
                 GUnixFDList      *own)
{
  g_autoptr(GError) error = NULL;

  fd_list_check_close (fds);
  if (!np_pipe_connection_send_with_fds (connection, message, own, &error))
    g_error ("%s", error->message);
}

static int
np_fd_echo (const char *address)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GUnixFDList) own = fd_list_new ();

  g_signal_connect (server, "message-with-fds-received", G_CALLBACK (fd_echo_message), own);
  g_signal_connect (server, "message-received", G_CALLBACK (server_message_without_fd), NULL);
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  server_ready (server);
  g_main_loop_run (loop);

  return 0;
}

static void
count_fd_message (NpPipeClient *client,
                  GBytes       *message,
                  GUnixFDList  *fds,
                  guint        *received)
{
  fd_list_check_close (fds);
  (*received)++;
}

static int
np_fd_pinger (const char *address,
              guint       count,
              gsize       size)
{
  g_autoptr(NpPipeClient) client = client_new (address);
  g_autoptr(GBytes) message = g_bytes_new_take (bench_payload (size), size);
  g_autoptr(GUnixFDList) fds = fd_list_new ();
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  guint received = 0;

  g_signal_connect (client, "message-with-fds-received", G_CALLBACK (count_fd_message), &received);
  g_signal_connect (client, "message-received", G_CALLBACK (client_message_without_fd), NULL);

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 start = g_get_monotonic_time ();
      double usec;

      if (!np_pipe_client_send_with_fds (client, message, fds, &error))
        g_error ("%s", error->message);
      WAIT_UNTIL (received == i + 1);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  np_pipe_client_close (client, NULL, NULL);

  return 0;
}

/* held echo: the idle clients are np_idler()'s */

static int
np_held_echo (const char *address,
              guint       idle)
{
  g_autoptr(NpPipeServer) server = server_new (address, 0);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  g_signal_connect (server, "message-received", G_CALLBACK (echo_message), NULL);
  server_ready (server);
  /* Counts the connections whose handshake is complete. */
  WAIT_UNTIL (np_pipe_server_get_n_connections (server) == idle);
  bench_report ("held");

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  g_main_loop_run (loop);

  return 0;
}

/* thread connector: each thread runs a main context of its own, the
 * thread-default one of the clients it makes */

typedef struct
{
  const char *address;
  guint       count;
  gsize       size;
} Connector;

static gpointer
np_connector_thread (gpointer data)
{
  Connector *c = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GBytes) message = g_bytes_new_take (bench_payload (c->size), c->size);

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < c->count; i++)
    {
      g_autoptr(NpPipeClient) client = client_new (c->address);
      g_autoptr(GError) error = NULL;
      guint received = 0;

      g_signal_connect (client, "message-received", G_CALLBACK (count_message), &received);
      if (!np_pipe_client_send (client, message, &error))
        g_error ("%s", error->message);
      while (received == 0)
        g_main_context_iteration (context, TRUE);
      np_pipe_client_close (client, NULL, NULL);
    }
  g_main_context_pop_thread_default (context);

  return NULL;
}

static int
np_thread_connector (const char *address,
                     guint       threads,
                     guint       per_thread,
                     gsize       size)
{
  g_autofree GThread **handles = g_new0 (GThread *, threads);
  Connector c = { address, per_thread, size };
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < threads; i++)
    handles[i] = g_thread_new ("np-bench-connector", np_connector_thread, &c);
  for (guint i = 0; i < threads; i++)
    g_thread_join (handles[i]);

  bench_report ("rate %f", threads * per_thread / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

const BenchTransport bench_np = {
  .name = "np",
  .title = "Np",
  .sink = np_sink,
  .source = np_source,
  .echo = np_echo,
  .pinger = np_pinger,
  .connector = np_connector,
  .idler = np_idler,
  .holder = np_holder,
  .tagged_sink = np_tagged_sink,
  .thread_source = np_thread_source,
  .replier = np_replier,
  .requester = np_requester,
  .fd_echo = np_fd_echo,
  .fd_pinger = np_fd_pinger,
  .held_echo = np_held_echo,
  .idle_client = np_idler,
  .thread_connector = np_thread_connector,
};

/* Over loopback TCP: with TLS, and in plaintext to show what TLS costs */

static gboolean
np_tcp_prepare (char **why)
{
  g_autoptr(GTypeClass) klass = g_type_class_ref (NP_TYPE_PIPE_SERVER);

  if (g_object_class_find_property (G_OBJECT_CLASS (klass), "insecure-plaintext") == NULL)
    {
      *why = g_strdup ("this build of Np has no TCP transport");
      return FALSE;
    }

  return TRUE;
}

static gboolean
np_tls_prepare (char **why)
{
  return np_tcp_prepare (why) && bench_tls_prepare (why);
}

const BenchTransport bench_np_tls = {
  .name = "np-tls",
  .title = "Np TLS",
  .tcp = TRUE,
  .prepare = np_tls_prepare,
  .sink = np_sink,
  .source = np_source,
  .echo = np_echo,
  .pinger = np_pinger,
  .connector = np_connector,
};

const BenchTransport bench_np_tcp = {
  .name = "np-tcp",
  .title = "Np plain TCP",
  .tcp = TRUE,
  .prepare = np_tcp_prepare,
  .sink = np_sink,
  .source = np_source,
  .echo = np_echo,
  .pinger = np_pinger,
  .connector = np_connector,
};
