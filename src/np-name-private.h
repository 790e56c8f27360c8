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

/* What is at a socket path, as np_name_get_state() sees it. */
typedef enum
{
  NP_NAME_STATE_ABSENT,      /* nothing there */
  NP_NAME_STATE_LIVE,        /* a server holds the lock, or something accepts */
  NP_NAME_STATE_STALE,       /* a socket left behind: unlocked, refusing */
  NP_NAME_STATE_NOT_SOCKET,  /* a file of another kind */
  NP_NAME_STATE_UNKNOWN,     /* cannot be told (no access, say) */
} NpNameState;

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

/* Whether something accepts on a socket nobody holds the lock of: 0 when
 * something does, ECONNREFUSED when nothing listens, another errno when
 * it cannot be told. */
typedef int (*NpNameProbeFunc) (const char *socket_path);

NpNameState np_name_get_state    (const char  *socket_path,
                                  int         *owner_pid,
                                  int         *stale_lock_fd);
NpNameState np_name_get_state_with_probe (const char      *socket_path,
                                          int             *owner_pid,
                                          int             *stale_lock_fd,
                                          NpNameProbeFunc  probe);
gboolean    np_name_claim_path   (const char  *name,
                                  const char  *socket_path,
                                  GError     **error);

G_END_DECLS
