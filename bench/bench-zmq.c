/* bench-zmq.c: ZeroMQ over ipc://, what a systems developer would
 * otherwise use: PUSH/PULL one way (a PUSH socket per sending thread),
 * REQ/REP for round trips, DEALER/ROUTER for requests in flight; over
 * loopback TCP the same, in plaintext (tcp://) or encrypted with CURVE
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "bench.h"

#define CURVE_PUBLIC_ENV "NP_BENCH_CURVE_PUBLIC"
#define CURVE_SECRET_ENV "NP_BENCH_CURVE_SECRET"

/* A path for ipc://, or over TCP "tcp:127.0.0.1:PORT", where a server is
 * given port 0 and binds an ephemeral port. */
static char *
endpoint_of (const char *address)
{
  if (g_str_has_prefix (address, "tcp:"))
    return g_str_has_suffix (address, ":0")
             ? g_strdup_printf ("tcp://%.*s:*", (int) (strlen (address) - strlen ("tcp:") - 2),
                                address + strlen ("tcp:"))
             : g_strdup_printf ("tcp://%s", address + strlen ("tcp:"));

  return g_strdup_printf ("ipc://%s", address);
}

static void
unlink_ipc (const char *address)
{
  if (!g_str_has_prefix (address, "tcp:"))
    unlink (address);
}

/* The server's keys come from the orchestrator (zmq_curve_prepare()),
 * each client process makes its own. */
static void
curve_setup (void     *socket,
             gboolean  server)
{
  static char public_key[41], secret_key[41];
  const char *server_public = g_getenv (CURVE_PUBLIC_ENV);
  const char *server_secret = g_getenv (CURVE_SECRET_ENV);
  int yes = 1;

  if (server_public == NULL || server_secret == NULL)
    g_error ("No CURVE keys: %s and %s are not set", CURVE_PUBLIC_ENV, CURVE_SECRET_ENV);

  if (server)
    {
      if (zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &yes, sizeof yes) != 0 ||
          zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, server_secret, 40) != 0)
        g_error ("CURVE: %s", zmq_strerror (zmq_errno ()));
      return;
    }

  if (public_key[0] == '\0' && zmq_curve_keypair (public_key, secret_key) != 0)
    g_error ("zmq_curve_keypair: %s", zmq_strerror (zmq_errno ()));
  if (zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, server_public, 40) != 0 ||
      zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
      zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0)
    g_error ("CURVE: %s", zmq_strerror (zmq_errno ()));
}

static void *
socket_new (void       *context,
            int         type,
            const char *address,
            gboolean    bind)
{
  g_autofree char *endpoint = endpoint_of (address);
  void *socket = zmq_socket (context, type);
  int hwm = 0;   /* no high-water mark: nothing dropped, nothing blocks early */

  zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
  if (bench_role_transport == &bench_zmq_curve)
    curve_setup (socket, bind);
  if ((bind ? zmq_bind (socket, endpoint) : zmq_connect (socket, endpoint)) != 0)
    g_error ("%s %s: %s", bind ? "bind" : "connect", endpoint, zmq_strerror (zmq_errno ()));

  return socket;
}

/* A server's "ready"; over TCP with the port it was given. */
static void
socket_ready (void *socket)
{
  char endpoint[256];
  size_t len = sizeof endpoint;

  if (zmq_getsockopt (socket, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
    g_error ("ZMQ_LAST_ENDPOINT: %s", zmq_strerror (zmq_errno ()));
  if (g_str_has_prefix (endpoint, "tcp://"))
    {
      g_autofree char *address = g_strdup_printf ("tcp:%s", endpoint + strlen ("tcp://"));

      bench_ready_at (address);
    }
  else
    bench_ready ();
}

/* A context for @sockets sockets, past the default of 1023 when need be. */
static void *
context_new (guint sockets)
{
  void *context = zmq_ctx_new ();

  if (sockets + 16 > 1023 && zmq_ctx_set (context, ZMQ_MAX_SOCKETS, sockets + 16) != 0)
    g_error ("ZMQ_MAX_SOCKETS: %s", zmq_strerror (zmq_errno ()));

  return context;
}

static int
zmq_sink (const char *address,
          guint64     total,
          gsize       size)
{
  void *context = zmq_ctx_new ();
  void *pull;
  zmq_msg_t msg;
  gint64 first = 0, last = 0;

  unlink_ipc (address);
  pull = socket_new (context, ZMQ_PULL, address, TRUE);
  socket_ready (pull);

  zmq_msg_init (&msg);
  for (guint64 n = 0; n < total; n++)
    {
      if (zmq_msg_recv (&msg, pull, 0) < 0)
        g_error ("recv: %s", zmq_strerror (zmq_errno ()));
      last = g_get_monotonic_time ();
      if (n == 0)
        first = last;
    }
  zmq_msg_close (&msg);

  bench_report ("rate %f", (total - 1) / ((last - first) / 1e6));
  zmq_close (pull);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_source (const char *address,
            guint       conns,
            guint64     per_conn,
            gsize       size)
{
  void *context = context_new (conns);
  g_autofree void **pushes = g_new (void *, conns);
  g_autofree guint8 *payload = bench_payload (size);

  for (guint i = 0; i < conns; i++)
    pushes[i] = socket_new (context, ZMQ_PUSH, address, FALSE);
  bench_connected_wait_go ();

  for (guint64 n = 0; n < per_conn; n++)
    for (guint i = 0; i < conns; i++)
      if (zmq_send (pushes[i], payload, size, 0) < 0)
        g_error ("send: %s", zmq_strerror (zmq_errno ()));

  /* The sockets are kept until the receiver counted everything (ZeroMQ's
   * thread sends meanwhile), as Np's sources keep their connections;
   * the default linger would deliver it all anyway. */
  bench_wait_stdin_closed ();
  for (guint i = 0; i < conns; i++)
    zmq_close (pushes[i]);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_echo (const char *address)
{
  void *context = zmq_ctx_new ();
  void *rep;
  zmq_msg_t msg;

  unlink_ipc (address);
  rep = socket_new (context, ZMQ_REP, address, TRUE);
  socket_ready (rep);

  zmq_msg_init (&msg);
  for (;;)
    {
      zmq_pollitem_t items[2] = {
        { rep, 0, ZMQ_POLLIN, 0 },
        { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 },
      };
      char buf[64];

      zmq_poll (items, 2, -1);
      if (items[1].revents && read (STDIN_FILENO, buf, sizeof buf) <= 0)
        break;
      if (items[0].revents & ZMQ_POLLIN)
        {
          zmq_msg_recv (&msg, rep, 0);
          zmq_msg_send (&msg, rep, 0);
        }
    }
  zmq_msg_close (&msg);

  zmq_close (rep);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_pinger (const char *address,
            guint       count,
            gsize       size)
{
  void *context = zmq_ctx_new ();
  void *req = socket_new (context, ZMQ_REQ, address, FALSE);
  g_autofree guint8 *payload = bench_payload (size);
  g_autofree guint8 *reply = g_malloc (size);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      zmq_send (req, payload, size, 0);
      zmq_recv (req, reply, size, 0);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);
  zmq_close (req);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_connector (const char *address,
               guint       count)
{
  void *context = zmq_ctx_new ();
  gint64 start = g_get_monotonic_time ();
  int linger = 0;
  char reply[1];

  for (guint i = 0; i < count; i++)
    {
      void *req = socket_new (context, ZMQ_REQ, address, FALSE);

      zmq_send (req, "x", 1, 0);
      zmq_recv (req, reply, sizeof reply, 0);
      zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
      zmq_close (req);
    }

  bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_idler (const char *address,
           guint       conns)
{
  void *context = context_new (conns);
  g_autofree void **pushes = g_new (void *, conns);
  int linger = 0;

  for (guint i = 0; i < conns; i++)
    pushes[i] = socket_new (context, ZMQ_PUSH, address, FALSE);

  bench_report ("connected");
  bench_wait_stdin_closed ();

  for (guint i = 0; i < conns; i++)
    {
      zmq_setsockopt (pushes[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close (pushes[i]);
    }
  zmq_ctx_term (context);

  return 0;
}

/* Counts accepted connections through the socket monitor. */
static int
zmq_holder (const char *address,
            guint       conns)
{
  void *context = zmq_ctx_new ();
  void *pull, *monitor;
  gint64 before;
  guint accepted = 0;

  unlink_ipc (address);
  pull = socket_new (context, ZMQ_PULL, address, TRUE);
  zmq_socket_monitor (pull, "inproc://np-bench-monitor", ZMQ_EVENT_ACCEPTED);
  monitor = zmq_socket (context, ZMQ_PAIR);
  zmq_connect (monitor, "inproc://np-bench-monitor");
  before = bench_rss_bytes ();
  socket_ready (pull);

  /* Each event is two frames: the event id and value, then the endpoint. */
  while (accepted < conns)
    {
      zmq_msg_t event, endpoint;
      guint16 id = 0;

      zmq_msg_init (&event);
      zmq_msg_init (&endpoint);
      zmq_msg_recv (&event, monitor, 0);
      zmq_msg_recv (&endpoint, monitor, 0);
      if (zmq_msg_size (&event) >= sizeof id)
        memcpy (&id, zmq_msg_data (&event), sizeof id);
      if (id == ZMQ_EVENT_ACCEPTED)
        accepted++;
      zmq_msg_close (&event);
      zmq_msg_close (&endpoint);
    }

  bench_report ("memory %f", (double) (bench_rss_bytes () - before) / conns);
  _exit (0);
}

/* tagged sink and thread source: a PUSH socket per thread */

static int
zmq_tagged_sink (const char *address,
                 guint       threads,
                 guint64     per_thread,
                 gsize       size)
{
  void *context = zmq_ctx_new ();
  void *pull;
  zmq_msg_t msg;
  BenchTags tags;

  unlink_ipc (address);
  pull = socket_new (context, ZMQ_PULL, address, TRUE);
  bench_tags_init (&tags, threads, per_thread, size);
  socket_ready (pull);

  zmq_msg_init (&msg);
  while (!bench_tags_done (&tags))
    {
      if (zmq_msg_recv (&msg, pull, 0) < 0)
        g_error ("recv: %s", zmq_strerror (zmq_errno ()));
      bench_tags_check (&tags, zmq_msg_data (&msg), zmq_msg_size (&msg));
    }
  zmq_msg_close (&msg);

  bench_tags_report (&tags);
  bench_tags_clear (&tags);
  zmq_close (pull);
  zmq_ctx_term (context);

  return 0;
}

typedef struct
{
  void       *context;
  const char *address;
  guint32     index;
  guint64     count;
  gsize       size;
} Sender;

static gpointer
zmq_sender_thread (gpointer data)
{
  Sender *sender = data;
  void *push = socket_new (sender->context, ZMQ_PUSH, sender->address, FALSE);
  g_autofree guint8 *payload = bench_payload (sender->size);

  for (guint64 n = 0; n < sender->count; n++)
    {
      bench_tags_write (payload, sender->index, n);
      if (zmq_send (push, payload, sender->size, 0) < 0)
        g_error ("send: %s", zmq_strerror (zmq_errno ()));
    }
  if (zmq_send (push, &sender->index, BENCH_TAG_END_SIZE, 0) < 0)
    g_error ("send: %s", zmq_strerror (zmq_errno ()));

  zmq_close (push);

  return NULL;
}

static int
zmq_thread_source (const char *address,
                   guint       threads,
                   guint64     per_thread,
                   gsize       size)
{
  void *context = zmq_ctx_new ();
  g_autofree Sender *senders = g_new0 (Sender, threads);
  g_autofree GThread **handles = g_new0 (GThread *, threads);

  for (guint i = 0; i < threads; i++)
    {
      senders[i] = (Sender) { context, address, i, per_thread, size };
      handles[i] = g_thread_new ("np-bench-sender", zmq_sender_thread, &senders[i]);
    }
  for (guint i = 0; i < threads; i++)
    g_thread_join (handles[i]);

  /* The default linger delivers everything before the context ends. */
  zmq_ctx_term (context);

  return 0;
}

/* replier and requester: REQ/REP for one request at a time, DEALER/ROUTER
 * for more in flight */

static int
zmq_replier (const char *address,
             guint       window)
{
  void *context;
  void *router;
  zmq_msg_t identity, msg;

  if (window == 1)
    return zmq_echo (address);

  context = zmq_ctx_new ();
  unlink_ipc (address);
  router = socket_new (context, ZMQ_ROUTER, address, TRUE);
  socket_ready (router);

  zmq_msg_init (&identity);
  zmq_msg_init (&msg);
  for (;;)
    {
      zmq_pollitem_t items[2] = {
        { router, 0, ZMQ_POLLIN, 0 },
        { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 },
      };
      char buf[64];

      zmq_poll (items, 2, -1);
      if (items[1].revents && read (STDIN_FILENO, buf, sizeof buf) <= 0)
        break;
      /* Every request waiting is answered before polling again. */
      while (zmq_msg_recv (&identity, router, ZMQ_DONTWAIT) >= 0)
        {
          if (zmq_msg_recv (&msg, router, 0) < 0)
            g_error ("recv: %s", zmq_strerror (zmq_errno ()));
          if (zmq_msg_send (&identity, router, ZMQ_SNDMORE) < 0 ||
              zmq_msg_send (&msg, router, 0) < 0)
            g_error ("send: %s", zmq_strerror (zmq_errno ()));
        }
    }
  zmq_msg_close (&identity);
  zmq_msg_close (&msg);

  zmq_close (router);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_requester (const char *address,
               guint64     count,
               gsize       size,
               guint       window)
{
  void *context = zmq_ctx_new ();
  void *socket = socket_new (context, window == 1 ? ZMQ_REQ : ZMQ_DEALER, address, FALSE);
  g_autofree guint8 *payload = bench_payload (size);
  g_autofree guint8 *reply = g_malloc (size + 1);
  guint64 sent = 0;
  gint64 start;
  int n;

  if (window == 1)
    {
      g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

      for (guint64 i = 0; i < count; i++)
        {
          double usec;

          start = g_get_monotonic_time ();
          if (zmq_send (socket, payload, size, 0) < 0 ||
              (n = zmq_recv (socket, reply, size + 1, 0)) < 0)
            g_error ("%s", zmq_strerror (zmq_errno ()));
          usec = g_get_monotonic_time () - start;
          bench_check_reply (n, size);
          g_array_append_val (usecs, usec);
        }
      bench_print_rtts (usecs);
    }
  else
    {
      start = g_get_monotonic_time ();
      for (; sent < window && sent < count; sent++)
        if (zmq_send (socket, payload, size, 0) < 0)
          g_error ("send: %s", zmq_strerror (zmq_errno ()));
      for (guint64 replies = 0; replies < count; replies++)
        {
          if ((n = zmq_recv (socket, reply, size + 1, 0)) < 0)
            g_error ("recv: %s", zmq_strerror (zmq_errno ()));
          bench_check_reply (n, size);
          if (sent < count)
            {
              if (zmq_send (socket, payload, size, 0) < 0)
                g_error ("send: %s", zmq_strerror (zmq_errno ()));
              sent++;
            }
        }
      bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));
    }

  zmq_close (socket);
  zmq_ctx_term (context);

  return 0;
}

/* held echo and idle client: a ROUTER that first takes one hello from
 * each of @idle DEALERs, then echoes every message to its sender (a REQ
 * pinger's, delimiter and all) */

static int
zmq_held_echo (const char *address,
               guint       idle)
{
  void *context = zmq_ctx_new ();
  void *router;
  zmq_msg_t part;
  int more;

  unlink_ipc (address);
  router = socket_new (context, ZMQ_ROUTER, address, TRUE);
  socket_ready (router);

  zmq_msg_init (&part);
  for (guint n = 0; n < idle; n++)
    do
      {
        if (zmq_msg_recv (&part, router, 0) < 0)
          g_error ("recv: %s", zmq_strerror (zmq_errno ()));
      }
    while (zmq_msg_more (&part));
  bench_report ("held");

  for (;;)
    {
      zmq_pollitem_t items[2] = {
        { router, 0, ZMQ_POLLIN, 0 },
        { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 },
      };
      char buf[64];

      zmq_poll (items, 2, -1);
      if (items[1].revents && read (STDIN_FILENO, buf, sizeof buf) <= 0)
        break;
      while (zmq_msg_recv (&part, router, ZMQ_DONTWAIT) >= 0)
        for (;;)
          {
            /* The identity frame first: the ROUTER sends to it. */
            more = zmq_msg_more (&part);
            if (zmq_msg_send (&part, router, more ? ZMQ_SNDMORE : 0) < 0)
              g_error ("send: %s", zmq_strerror (zmq_errno ()));
            if (!more)
              break;
            if (zmq_msg_recv (&part, router, 0) < 0)
              g_error ("recv: %s", zmq_strerror (zmq_errno ()));
          }
    }
  zmq_msg_close (&part);

  zmq_close (router);
  zmq_ctx_term (context);

  return 0;
}

static int
zmq_idle_client (const char *address,
                 guint       conns)
{
  void *context = context_new (conns);
  g_autofree void **dealers = g_new (void *, conns);
  int linger = 0;

  /* Each hello goes once its socket has connected. */
  for (guint i = 0; i < conns; i++)
    {
      dealers[i] = socket_new (context, ZMQ_DEALER, address, FALSE);
      if (zmq_send (dealers[i], "hello", 5, 0) < 0)
        g_error ("send: %s", zmq_strerror (zmq_errno ()));
    }

  bench_report ("connected");
  bench_wait_stdin_closed ();

  for (guint i = 0; i < conns; i++)
    {
      zmq_setsockopt (dealers[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close (dealers[i]);
    }
  zmq_ctx_term (context);

  return 0;
}

/* thread connector: a REQ socket a connection, in one context */

typedef struct
{
  void       *context;
  const char *address;
  guint       count;
  gsize       size;
} Connector;

static gpointer
zmq_connector_thread (gpointer data)
{
  Connector *c = data;
  g_autofree guint8 *payload = bench_payload (c->size);
  g_autofree guint8 *reply = g_malloc (c->size + 1);
  int linger = 0;
  int n;

  for (guint i = 0; i < c->count; i++)
    {
      void *req = socket_new (c->context, ZMQ_REQ, c->address, FALSE);

      if (zmq_send (req, payload, c->size, 0) < 0 ||
          (n = zmq_recv (req, reply, c->size + 1, 0)) < 0)
        g_error ("%s", zmq_strerror (zmq_errno ()));
      bench_check_reply (n, c->size);
      zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
      zmq_close (req);
    }

  return NULL;
}

static int
zmq_thread_connector (const char *address,
                      guint       threads,
                      guint       per_thread,
                      gsize       size)
{
  g_autofree GThread **handles = g_new0 (GThread *, threads);
  Connector c = { zmq_ctx_new (), address, per_thread, size };
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < threads; i++)
    handles[i] = g_thread_new ("np-bench-connector", zmq_connector_thread, &c);
  for (guint i = 0; i < threads; i++)
    g_thread_join (handles[i]);

  bench_report ("rate %f", threads * per_thread / ((g_get_monotonic_time () - start) / 1e6));
  zmq_ctx_term (c.context);

  return 0;
}

const BenchTransport bench_zmq = {
  .name = "zmq",
  .title = "ZeroMQ ipc",
  .sink = zmq_sink,
  .source = zmq_source,
  .echo = zmq_echo,
  .pinger = zmq_pinger,
  .connector = zmq_connector,
  .idler = zmq_idler,
  .holder = zmq_holder,
  .tagged_sink = zmq_tagged_sink,
  .thread_source = zmq_thread_source,
  .replier = zmq_replier,
  .requester = zmq_requester,
  .held_echo = zmq_held_echo,
  .idle_client = zmq_idle_client,
  .thread_connector = zmq_thread_connector,
};

/* Over loopback TCP */

/* The server's CURVE keys, for every process of the run. */
static gboolean
zmq_curve_prepare (char **why)
{
  char public_key[41], secret_key[41];

  if (!zmq_has ("curve"))
    {
      *why = g_strdup ("this libzmq has no CURVE");
      return FALSE;
    }
  if (zmq_curve_keypair (public_key, secret_key) != 0)
    {
      *why = g_strdup_printf ("zmq_curve_keypair: %s", zmq_strerror (zmq_errno ()));
      return FALSE;
    }
  g_setenv (CURVE_PUBLIC_ENV, public_key, TRUE);
  g_setenv (CURVE_SECRET_ENV, secret_key, TRUE);

  return TRUE;
}

const BenchTransport bench_zmq_curve = {
  .name = "zmq-curve",
  .title = "ZeroMQ CURVE",
  .tcp = TRUE,
  .prepare = zmq_curve_prepare,
  .sink = zmq_sink,
  .source = zmq_source,
  .echo = zmq_echo,
  .pinger = zmq_pinger,
  .connector = zmq_connector,
};

const BenchTransport bench_zmq_tcp = {
  .name = "zmq-tcp",
  .title = "ZeroMQ tcp",
  .tcp = TRUE,
  .sink = zmq_sink,
  .source = zmq_source,
  .echo = zmq_echo,
  .pinger = zmq_pinger,
  .connector = zmq_connector,
};
