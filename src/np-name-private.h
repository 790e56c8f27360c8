/* np-name-private.h: pipe names, socket paths and the per-user directory
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NP_NAME_MAX 64

char     *np_name_generate       (void);
char     *np_name_to_path        (const char  *name,
                                  GError     **error);
gboolean  np_name_ensure_dir     (const char  *socket_path,
                                  GError     **error);
int       np_name_lock           (const char  *name,
                                  const char  *socket_path,
                                  GError     **error);
void      np_name_unlock         (int          lock_fd,
                                  const char  *socket_path);

G_END_DECLS
