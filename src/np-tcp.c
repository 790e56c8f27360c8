/* np-tcp.c: TCP addresses, listening and connecting
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-tcp-private.h"

/* Keepalive: the first probe after this long without traffic, then one
 * every interval; a peer that answers none of them, or leaves what we
 * wrote unacknowledged for the user timeout, is gone. */
#define NP_TCP_KEEPALIVE_IDLE_SEC      30
#define NP_TCP_KEEPALIVE_INTERVAL_SEC  10
#define NP_TCP_KEEPALIVE_COUNT         3
#define NP_TCP_USER_TIMEOUT_MSEC       60000

gboolean
np_tcp_is_address (const char *name)
{
  return name != NULL && g_str_has_prefix (name, NP_TCP_PREFIX);
}

/* Splits `tcp:HOST:PORT`; @host is without brackets. */
static gboolean
np_tcp_split (const char  *name,
              char       **host,
              guint16     *port,
              GError     **error)
{
  const char *rest = name + strlen (NP_TCP_PREFIX);
  g_autoptr(GSocketConnectable) parsed = NULL;
  g_autoptr(GError) local_error = NULL;

  g_assert (np_tcp_is_address (name));

  /* A port is required: there is no default one. */
  if (strrchr (rest, ':') == NULL || g_str_has_suffix (rest, ":") || g_str_has_suffix (rest, "]"))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("“%s” is not a TCP address: write tcp:HOST:PORT, as tcp:127.0.0.1:7000 "
                     "or tcp:[::1]:7000"), name);
      return FALSE;
    }

  parsed = g_network_address_parse (rest, 0, &local_error);
  if (parsed == NULL)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("“%s” is not a TCP address: %s"), name, local_error->message);
      return FALSE;
    }

  *host = g_strdup (g_network_address_get_hostname (G_NETWORK_ADDRESS (parsed)));
  *port = g_network_address_get_port (G_NETWORK_ADDRESS (parsed));

  return TRUE;
}

GInetSocketAddress *
np_tcp_parse_address (const char  *name,
                      GError     **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  g_autofree char *host = NULL;
  guint16 port;

  if (!np_tcp_split (name, &host, &port, error))
    return NULL;

  inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("“%s”: a server listens on a numeric address (tcp:127.0.0.1:PORT, "
                     "tcp:[::1]:PORT, tcp:0.0.0.0:PORT), not on the host name “%s”"),
                   name, host);
      return NULL;
    }

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (inet, port));
}

GSocketConnectable *
np_tcp_parse_connectable (const char  *name,
                          GError     **error)
{
  g_autofree char *host = NULL;
  guint16 port;

  if (!np_tcp_split (name, &host, &port, error))
    return NULL;

  if (port == 0)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                   _("“%s” is not a TCP address to connect to: its port is 0"), name);
      return NULL;
    }

  return g_network_address_new (host, port);
}

char *
np_tcp_format_address (GSocketAddress *address)
{
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
  g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
  guint16 port = g_inet_socket_address_get_port (inet);

  if (g_socket_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf (NP_TCP_PREFIX "[%s]:%u", host, port);

  return g_strdup_printf (NP_TCP_PREFIX "%s:%u", host, port);
}

char *
np_tcp_format_connectable (GSocketConnectable *connectable)
{
  if (G_IS_NETWORK_ADDRESS (connectable))
    {
      GNetworkAddress *address = G_NETWORK_ADDRESS (connectable);
      const char *host = g_network_address_get_hostname (address);

      if (strchr (host, ':') != NULL)
        return g_strdup_printf (NP_TCP_PREFIX "[%s]:%u", host, g_network_address_get_port (address));
      return g_strdup_printf (NP_TCP_PREFIX "%s:%u", host, g_network_address_get_port (address));
    }

  if (G_IS_INET_SOCKET_ADDRESS (connectable))
    return np_tcp_format_address (G_SOCKET_ADDRESS (connectable));

  return g_strconcat (NP_TCP_PREFIX, g_socket_connectable_to_string (connectable), NULL);
}

gboolean
np_tcp_is_loopback (GSocketAddress *address)
{
  return G_IS_INET_SOCKET_ADDRESS (address) &&
         g_inet_address_get_is_loopback (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
}

GSocket *
np_tcp_listen (GInetSocketAddress  *address,
               GError             **error)
{
  g_autofree char *text = np_tcp_format_address (G_SOCKET_ADDRESS (address));
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) local_error = NULL;

  socket = g_socket_new (g_socket_address_get_family (G_SOCKET_ADDRESS (address)),
                         G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &local_error);
  if (socket == NULL)
    {
      g_set_error (error, local_error->domain, local_error->code,
                   _("Cannot listen on “%s”: %s"), text, local_error->message);
      return NULL;
    }

  /* A server restarted on its port takes it again at once; an address
   * in use by a live server still fails. */
  if (!g_socket_bind (socket, G_SOCKET_ADDRESS (address), TRUE, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE,
                     _("Cannot listen on “%s”: another server listens there"), text);
      else
        g_set_error (error, local_error->domain, local_error->code,
                     _("Cannot listen on “%s”: %s"), text, local_error->message);
      return NULL;
    }

  g_socket_set_listen_backlog (socket, SOMAXCONN);
  if (!g_socket_listen (socket, &local_error))
    {
      g_set_error (error, local_error->domain, local_error->code,
                   _("Cannot listen on “%s”: %s"), text, local_error->message);
      return NULL;
    }

  return g_steal_pointer (&socket);
}

void
np_tcp_configure (GSocket *socket)
{
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_socket_set_keepalive (socket, TRUE);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPIDLE, NP_TCP_KEEPALIVE_IDLE_SEC, NULL);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPINTVL, NP_TCP_KEEPALIVE_INTERVAL_SEC, NULL);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPCNT, NP_TCP_KEEPALIVE_COUNT, NULL);
#ifdef TCP_USER_TIMEOUT
  g_socket_set_option (socket, IPPROTO_TCP, TCP_USER_TIMEOUT, NP_TCP_USER_TIMEOUT_MSEC, NULL);
#endif
}

/* Connecting */

static void
tcp_connect_done (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  const char *address = g_task_get_task_data (task);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (object), result, &error);
  if (connection == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        /* As for a pipe with no server: what waits and reconnects
         * tells it by this code. */
        g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND,
                                 _("No server listens at “%s”: %s"),
                                 address, error->message);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_new_error (task, error->domain, error->code,
                                 _("Cannot connect to “%s”: %s"),
                                 address, error->message);
      return;
    }

  np_tcp_configure (g_socket_connection_get_socket (connection));
  g_task_return_pointer (task, g_steal_pointer (&connection), g_object_unref);
}

/* Connects to @connectable, directly; the caller bounds it in time
 * through @cancellable. */
void
np_tcp_connect_async (GSocketConnectable  *connectable,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, np_tcp_connect_async);
  g_task_set_name (task, "[np] TCP connect");
  g_task_set_task_data (task, np_tcp_format_connectable (connectable), g_free);

  /* A direct connection: no proxy is asked about (libproxy, in a thread,
   * for each connect) for a peer that speaks Np, not HTTP. */
  g_socket_client_set_enable_proxy (client, FALSE);

  g_socket_client_connect_async (client, connectable, cancellable, tcp_connect_done, task);
}

GSocketConnection *
np_tcp_connect_finish (GAsyncResult  *result,
                       GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
