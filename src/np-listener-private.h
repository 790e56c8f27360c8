/* np-listener-private.h: the accept loop of a server
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _NpListener NpListener;

typedef void (*NpListenerIncoming) (GObject           *owner,
                                    GSocketConnection *connection);

NpListener *np_listener_new    (GSocket            *socket,
                                GMainContext       *context,
                                GObject            *owner,
                                NpListenerIncoming  incoming,
                                const char         *name,
                                GError            **error);
void        np_listener_resume (NpListener         *self);
void        np_listener_close  (NpListener         *self);
char       *np_listener_key_for_port (guint16 port);
GMainContext *np_listener_lookup_context
                               (const char         *path);

G_END_DECLS
