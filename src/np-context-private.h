/* np-context-private.h: doing things in an object's main context
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

void np_context_notify (GMainContext *context,
                        GObject      *object,
                        GParamSpec   *pspec);

G_END_DECLS
