/* bench-gdbus.c: GDBus peer-to-peer (GDBusServer, no bus daemon), what a
 * GNOME developer would otherwise use: signals one way, method calls for
 * round trips and requests, with a descriptor in a GUnixFDList for
 * round trips that pass one; over loopback TCP too, where D-Bus has no
 * encryption and the server lets clients in anonymously
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "bench.h"

#define OBJECT_PATH "/org/np/Bench"
#define INTERFACE   "org.np.Bench"

static const char introspection_xml[] =
  "<node>"
  "  <interface name='" INTERFACE "'>"
  "    <method name='Echo'>"
  "      <arg type='ay' name='data' direction='in'/>"
  "      <arg type='ay' name='data' direction='out'/>"
  "    </method>"
  "    <method name='EchoFd'>"
  "      <arg type='ay' name='data' direction='in'/>"
  "      <arg type='h' name='fd' direction='in'/>"
  "      <arg type='ay' name='data' direction='out'/>"
  "      <arg type='h' name='fd' direction='out'/>"
  "    </method>"
  "  </interface>"
  "</node>";

typedef struct
{
  GPtrArray *connections;
  void     (*setup) (GDBusConnection *connection, gpointer user_data);
  gpointer   user_data;
} Server;

static gboolean
new_connection (GDBusServer     *dbus_server,
                GDBusConnection *connection,
                Server          *server)
{
  g_ptr_array_add (server->connections, g_object_ref (connection));
  if (server->setup != NULL)
    server->setup (connection, server->user_data);
  return TRUE;
}

/* Over TCP, @address is "tcp:127.0.0.1:0": the server takes an
 * ephemeral port of 127.0.0.1, and says which in its "ready". */
static gboolean
is_tcp (const char *address)
{
  return g_str_has_prefix (address, "tcp:");
}

static GDBusServer *
server_new (const char *address,
            Server     *server)
{
  g_autofree char *guid = g_dbus_generate_guid ();
  g_autofree char *dbus_address = NULL;
  g_autoptr(GError) error = NULL;
  GDBusServerFlags flags = G_DBUS_SERVER_FLAGS_NONE;
  GDBusServer *dbus_server;

  if (is_tcp (address))
    {
      dbus_address = g_strdup ("tcp:host=127.0.0.1");
      flags = G_DBUS_SERVER_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS;
    }
  else
    {
      dbus_address = g_strdup_printf ("unix:path=%s", address);
      unlink (address);
    }
  server->connections = g_ptr_array_new_with_free_func (g_object_unref);
  dbus_server = g_dbus_server_new_sync (dbus_address, flags, guid, NULL, NULL, &error);
  if (dbus_server == NULL)
    g_error ("%s", error->message);

  g_signal_connect (dbus_server, "new-connection", G_CALLBACK (new_connection), server);
  g_dbus_server_start (dbus_server);

  return dbus_server;
}

static void
server_ready (GDBusServer *dbus_server)
{
  const char *client_address = g_dbus_server_get_client_address (dbus_server);

  if (is_tcp (client_address))
    bench_ready_at (client_address);
  else
    bench_ready ();
}

/* @address: a path, or over TCP the server's D-Bus address. */
static GDBusConnection *
client_new (const char *address)
{
  g_autofree char *dbus_address = is_tcp (address) ? g_strdup (address)
                                                   : g_strdup_printf ("unix:path=%s", address);
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (dbus_address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                                       NULL, NULL, &error);
  if (connection == NULL)
    g_error ("%s", error->message);

  return connection;
}

static GVariant *
payload_variant (gsize size)
{
  g_autofree guint8 *payload = bench_payload (size);

  return g_variant_ref_sink (g_variant_new ("(@ay)",
                                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                       payload, size, 1)));
}

/* sink: signals */

typedef struct
{
  guint64 count;
  gint64  first;
  gint64  last;
} Sink;

static void
on_signal (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *interface,
           const char      *name,
           GVariant        *parameters,
           gpointer         user_data)
{
  Sink *s = user_data;

  s->last = g_get_monotonic_time ();
  if (s->count++ == 0)
    s->first = s->last;
}

static void
subscribe (GDBusConnection *connection,
           gpointer         user_data)
{
  g_dbus_connection_signal_subscribe (connection, NULL, INTERFACE, "Message", OBJECT_PATH,
                                      NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, user_data, NULL);
}

static int
gdbus_sink (const char *address,
            guint64     total,
            gsize       size)
{
  Sink s = { 0 };
  Server server = { NULL, subscribe, &s };
  g_autoptr(GDBusServer) dbus_server = server_new (address, &server);

  server_ready (dbus_server);
  WAIT_UNTIL (s.count == total);
  bench_report ("rate %f", (total - 1) / ((s.last - s.first) / 1e6));
  /* The sources may still be in g_dbus_connection_flush_sync(), which
   * fails when the connection closes under it: the connections stay
   * until the sources are gone. */
  bench_wait_stdin_closed ();
  g_ptr_array_unref (server.connections);

  return 0;
}

static int
gdbus_source (const char *address,
              guint       conns,
              guint64     per_conn,
              gsize       size)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GVariant) parameters = payload_variant (size);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < conns; i++)
    g_ptr_array_add (connections, client_new (address));
  bench_connected_wait_go ();

  for (guint64 n = 0; n < per_conn; n++)
    for (guint i = 0; i < conns; i++)
      if (!g_dbus_connection_emit_signal (g_ptr_array_index (connections, i), NULL,
                                          OBJECT_PATH, INTERFACE, "Message", parameters, &error))
        g_error ("%s", error->message);

  for (guint i = 0; i < conns; i++)
    if (!g_dbus_connection_flush_sync (g_ptr_array_index (connections, i), NULL, &error))
      g_error ("%s", error->message);
  /* Kept until the receiver counted everything, as Np's are. */
  bench_wait_stdin_closed ();

  return 0;
}

/* A message's descriptor: fails unless exactly one came, with the handle
 * that names it; checks and closes it. */
static void
fd_list_check_close (GUnixFDList *fds,
                     gint32       handle)
{
  g_autofree int *taken = NULL;

  if (fds == NULL || g_unix_fd_list_get_length (fds) != 1 || handle != 0)
    g_error ("A message arrived with %d descriptors (handle %d), not 1",
             fds != NULL ? g_unix_fd_list_get_length (fds) : 0, handle);
  taken = g_unix_fd_list_steal_fds (fds, NULL);
  bench_fd_check_close (taken[0]);
}

static GUnixFDList *
fd_list_new (void)
{
  int fd = bench_fd_new ();

  return g_unix_fd_list_new_from_array (&fd, 1);
}

/* The fd echo's own descriptor, sent back with every reply. */
static GUnixFDList *echo_fds;

/* echo: a method that returns its argument; EchoFd also checks the
 * descriptor that came and answers with its own */

static void
echo_method (GDBusConnection       *connection,
             const char            *sender,
             const char            *path,
             const char            *interface,
             const char            *method,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  if (g_str_equal (method, "EchoFd"))
    {
      GDBusMessage *message = g_dbus_method_invocation_get_message (invocation);
      g_autoptr(GVariant) data = g_variant_get_child_value (parameters, 0);
      gint32 handle;

      g_variant_get_child (parameters, 1, "h", &handle);
      fd_list_check_close (g_dbus_message_get_unix_fd_list (message), handle);
      g_dbus_method_invocation_return_value_with_unix_fd_list (invocation,
                                                               g_variant_new ("(@ayh)", data, 0),
                                                               echo_fds);
      return;
    }

  g_dbus_method_invocation_return_value (invocation, parameters);
}

static const GDBusInterfaceVTable echo_vtable = { echo_method, NULL, NULL, { 0 } };

static void
export_echo (GDBusConnection *connection,
             gpointer         user_data)
{
  GDBusNodeInfo *info = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_register_object (connection, OBJECT_PATH, info->interfaces[0],
                                          &echo_vtable, NULL, NULL, &error))
    g_error ("%s", error->message);
}

static int
gdbus_echo (const char *address)
{
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (introspection_xml, NULL);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Server server = { NULL, export_echo, info };
  g_autoptr(GDBusServer) dbus_server = server_new (address, &server);

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  server_ready (dbus_server);
  g_main_loop_run (loop);
  g_dbus_server_stop (dbus_server);
  g_ptr_array_unref (server.connections);

  return 0;
}

static int
gdbus_pinger (const char *address,
              guint       count,
              gsize       size)
{
  g_autoptr(GDBusConnection) connection = client_new (address);
  g_autoptr(GVariant) parameters = payload_variant (size);
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = NULL;
      gint64 start = g_get_monotonic_time ();
      double usec;

      reply = g_dbus_connection_call_sync (connection, NULL, OBJECT_PATH, INTERFACE, "Echo",
                                           parameters, G_VARIANT_TYPE ("(ay)"),
                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      if (reply == NULL)
        g_error ("%s", error->message);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);

  return 0;
}

static int
gdbus_connector (const char *address,
                 guint       count)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GDBusConnection) connection = client_new (address);
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;

      /* Every GDBus peer answers org.freedesktop.DBus.Peer.Ping itself. */
      reply = g_dbus_connection_call_sync (connection, NULL, OBJECT_PATH,
                                           "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      if (reply == NULL)
        g_error ("%s", error->message);
      g_dbus_connection_close_sync (connection, NULL, NULL);
    }

  bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

static int
gdbus_idler (const char *address,
             guint       conns)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < conns; i++)
    g_ptr_array_add (connections, client_new (address));

  bench_report ("connected");
  bench_wait_stdin_closed ();

  return 0;
}

static int
gdbus_holder (const char *address,
              guint       conns)
{
  Server server = { 0 };
  g_autoptr(GDBusServer) dbus_server = server_new (address, &server);
  gint64 before = bench_rss_bytes ();

  server_ready (dbus_server);
  WAIT_UNTIL (server.connections->len == conns);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  bench_report ("memory %f", (double) (bench_rss_bytes () - before) / conns);
  g_ptr_array_unref (server.connections);

  return 0;
}

/* replier and requester: asynchronous method calls */

static int
gdbus_replier (const char *address,
               guint       window)
{
  return gdbus_echo (address);
}

typedef struct
{
  GDBusConnection *connection;
  GVariant        *parameters;
  gsize            size;
  guint64          count;
  guint64          sent;
  guint64          replies;
  gboolean         refill;   /* each reply sends the next request */
} Requester;

static void call_done (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data);

static void
call_next (Requester *r)
{
  r->sent++;
  g_dbus_connection_call (r->connection, NULL, OBJECT_PATH, INTERFACE, "Echo",
                          r->parameters, G_VARIANT_TYPE ("(ay)"), G_DBUS_CALL_FLAGS_NONE,
                          -1, NULL, call_done, r);
}

static void
call_done (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Requester *r = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (object), result, &error);
  if (reply == NULL)
    g_error ("%s", error->message);
  data = g_variant_get_child_value (reply, 0);
  bench_check_reply (g_variant_get_size (data), r->size);

  r->replies++;
  if (r->refill && r->sent < r->count)
    call_next (r);
}

static int
gdbus_requester (const char *address,
                 guint64     count,
                 gsize       size,
                 guint       window)
{
  g_autoptr(GDBusConnection) connection = client_new (address);
  g_autoptr(GVariant) parameters = payload_variant (size);
  Requester r = { connection, parameters, size, count, 0, 0, window > 1 };
  gint64 start;

  if (window == 1)
    {
      g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

      for (guint64 i = 0; i < count; i++)
        {
          double usec;

          start = g_get_monotonic_time ();
          call_next (&r);
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
        call_next (&r);
      WAIT_UNTIL (r.replies == count);
      bench_report ("rate %f", count / ((g_get_monotonic_time () - start) / 1e6));
    }

  return 0;
}

/* fd echo and fd pinger: EchoFd, one call at a time, each way a memfd in a
 * GUnixFDList */

static int
gdbus_fd_echo (const char *address)
{
  int ret;

  echo_fds = fd_list_new ();
  ret = gdbus_echo (address);
  g_clear_object (&echo_fds);

  return ret;
}

typedef struct
{
  guint64 replies;
  gsize   size;
} FdPinger;

static void
fd_call_done (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  FdPinger *p = user_data;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;
  gint32 handle;

  reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (object), &fds,
                                                           result, &error);
  if (reply == NULL)
    g_error ("%s", error->message);
  data = g_variant_get_child_value (reply, 0);
  bench_check_reply (g_variant_get_size (data), p->size);
  g_variant_get_child (reply, 1, "h", &handle);
  fd_list_check_close (fds, handle);

  p->replies++;
}

static int
gdbus_fd_pinger (const char *address,
                 guint       count,
                 gsize       size)
{
  g_autoptr(GDBusConnection) connection = client_new (address);
  g_autofree guint8 *payload = bench_payload (size);
  g_autoptr(GVariant) parameters = NULL;
  g_autoptr(GUnixFDList) fds = fd_list_new ();
  g_autoptr(GArray) usecs = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  FdPinger p = { 0, size };

  if (!(g_dbus_connection_get_capabilities (connection) & G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING))
    g_error ("This GDBus connection cannot pass descriptors");
  parameters = g_variant_ref_sink (g_variant_new ("(@ayh)",
                                                  g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                             payload, size, 1),
                                                  0));

  for (guint i = 0; i < count; i++)
    {
      gint64 start = g_get_monotonic_time ();
      double usec;

      g_dbus_connection_call_with_unix_fd_list (connection, NULL, OBJECT_PATH, INTERFACE, "EchoFd",
                                                parameters, G_VARIANT_TYPE ("(ayh)"),
                                                G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL,
                                                fd_call_done, &p);
      WAIT_UNTIL (p.replies == i + 1);
      usec = g_get_monotonic_time () - start;
      g_array_append_val (usecs, usec);
    }

  bench_print_rtts (usecs);

  return 0;
}

/* held echo: the idle clients are gdbus_idler()'s */

static int
gdbus_held_echo (const char *address,
                 guint       idle)
{
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (introspection_xml, NULL);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Server server = { NULL, export_echo, info };
  g_autoptr(GDBusServer) dbus_server = server_new (address, &server);

  server_ready (dbus_server);
  /* A connection is new once it is authenticated. */
  WAIT_UNTIL (server.connections->len == idle);
  bench_report ("held");

  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, bench_stdin_closed_cb, loop);
  g_main_loop_run (loop);
  g_dbus_server_stop (dbus_server);
  g_ptr_array_unref (server.connections);

  return 0;
}

/* thread connector: synchronous calls, which any thread may make */

typedef struct
{
  const char *address;
  guint       count;
  gsize       size;
} Connector;

static gpointer
gdbus_connector_thread (gpointer data)
{
  Connector *c = data;
  g_autoptr(GVariant) parameters = payload_variant (c->size);

  for (guint i = 0; i < c->count; i++)
    {
      g_autoptr(GDBusConnection) connection = client_new (c->address);
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;

      reply = g_dbus_connection_call_sync (connection, NULL, OBJECT_PATH, INTERFACE, "Echo",
                                           parameters, G_VARIANT_TYPE ("(ay)"),
                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      if (reply == NULL)
        g_error ("%s", error->message);
      g_dbus_connection_close_sync (connection, NULL, NULL);
    }

  return NULL;
}

static int
gdbus_thread_connector (const char *address,
                        guint       threads,
                        guint       per_thread,
                        gsize       size)
{
  g_autofree GThread **handles = g_new0 (GThread *, threads);
  Connector c = { address, per_thread, size };
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < threads; i++)
    handles[i] = g_thread_new ("np-bench-connector", gdbus_connector_thread, &c);
  for (guint i = 0; i < threads; i++)
    g_thread_join (handles[i]);

  bench_report ("rate %f", threads * per_thread / ((g_get_monotonic_time () - start) / 1e6));

  return 0;
}

const BenchTransport bench_gdbus = {
  .name = "gdbus",
  .title = "GDBus p2p",
  .sink = gdbus_sink,
  .source = gdbus_source,
  .echo = gdbus_echo,
  .pinger = gdbus_pinger,
  .connector = gdbus_connector,
  .idler = gdbus_idler,
  .holder = gdbus_holder,
  .replier = gdbus_replier,
  .requester = gdbus_requester,
  .fd_echo = gdbus_fd_echo,
  .fd_pinger = gdbus_fd_pinger,
  .held_echo = gdbus_held_echo,
  .idle_client = gdbus_idler,
  .thread_connector = gdbus_thread_connector,
};

const BenchTransport bench_gdbus_tcp = {
  .name = "gdbus-tcp",
  .title = "GDBus p2p tcp",
  .tcp = TRUE,
  .sink = gdbus_sink,
  .source = gdbus_source,
  .echo = gdbus_echo,
  .pinger = gdbus_pinger,
  .connector = gdbus_connector,
};
