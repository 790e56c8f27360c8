/* np-socket-connect-private.h: connecting a Unix socket to a pipe
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GSocketConnection *np_socket_connect_sync   (const char           *name,
                                             const char           *path,
                                             guint                 timeout_msec,
                                             GCancellable         *cancellable,
                                             GError              **error);
void               np_socket_connect_async  (const char           *name,
                                             const char           *path,
                                             guint                 timeout_msec,
                                             GCancellable         *cancellable,
                                             GAsyncReadyCallback   callback,
                                             gpointer              user_data);
GSocketConnection *np_socket_connect_finish (GAsyncResult         *result,
                                             GError              **error);

G_END_DECLS
