/* np-fd-budget-private.h: the descriptors the library holds, counted
 * against the process's limit
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint    np_fd_budget_limit      (void);
guint    np_fd_budget_held       (void);
guint64  np_fd_budget_used       (void);
gboolean np_fd_budget_hold       (guint n);
void     np_fd_budget_release    (guint n);
void     np_fd_budget_add_stream (void);
void     np_fd_budget_remove_stream
                                 (void);

G_END_DECLS
