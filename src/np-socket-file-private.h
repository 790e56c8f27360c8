/* np-socket-file-private.h: the listening socket of a server, and its
 * file
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <sys/types.h>

#include <gio/gio.h>

G_BEGIN_DECLS

/* Which file a server created, so that it removes only that one. */
typedef struct
{
  dev_t dev;
  ino_t ino;
} NpSocketFile;

GSocket *np_socket_file_listen (const char    *name,
                                const char    *path,
                                gboolean       allow_other_users,
                                NpSocketFile  *file,
                                GError       **error);
void     np_socket_file_remove (const char    *path,
                                NpSocketFile  *file);

G_END_DECLS
