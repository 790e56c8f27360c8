/* np-context-private.h: doing things in an object's main context
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

gboolean np_context_acquire_here (GMainContext *context);

void np_context_notify (GMainContext *context,
                        GObject      *object,
                        GParamSpec   *pspec);
void np_context_notify_later (GMainContext *context,
                              GObject      *object,
                              GParamSpec   *pspec);

G_END_DECLS
