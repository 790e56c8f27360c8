/* np-tcp-private.h: TCP addresses, listening and connecting
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define NP_TCP_PREFIX "tcp:"

/* Whether @name is a TCP address (`tcp:HOST:PORT`) rather than a pipe
 * name or path. */
gboolean            np_tcp_is_address          (const char          *name);

/* A server's address: a numeric host, the port 0 for any free one. */
GInetSocketAddress *np_tcp_parse_address       (const char          *name,
                                                GError             **error);
/* A client's: a host name or a numeric one, and a port. */
GSocketConnectable *np_tcp_parse_connectable   (const char          *name,
                                                GError             **error);

char               *np_tcp_format_address      (GSocketAddress      *address);
char               *np_tcp_format_connectable  (GSocketConnectable  *connectable);
gboolean            np_tcp_is_loopback         (GSocketAddress      *address);

GSocket            *np_tcp_listen              (GInetSocketAddress  *address,
                                                GError             **error);
/* Sets what every TCP connection of Np has: no delay for small writes,
 * and keepalive with a user timeout, so that a host that vanished is
 * noticed. */
void                np_tcp_configure           (GSocket             *socket);

void                np_tcp_connect_async       (GSocketConnectable  *connectable,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
GSocketConnection  *np_tcp_connect_finish      (GAsyncResult        *result,
                                                GError             **error);

G_END_DECLS
