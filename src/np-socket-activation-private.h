/* np-socket-activation-private.h: listening sockets passed by systemd
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GSocket *np_socket_activation_take     (const char  *name,
                                        GError     **error);
char    *np_socket_activation_get_path (GSocket     *socket);

G_END_DECLS
