/* np-pipe-tool.h: what the parts of np-pipe share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The running program, for starting more of itself. */
extern char *np_tool_self_path;

gboolean np_tool_write         (const void *data,
                                gsize       len);
gboolean np_tool_print         (const char *format,
                                ...) G_GNUC_PRINTF (1, 2);
void     np_tool_print_message (const char *prefix,
                                GBytes     *message,
                                gboolean    hex);
int      np_tool_run_demo      (int         argc,
                                char      **argv);

G_END_DECLS
