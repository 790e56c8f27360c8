/* np-pipe-connection-list.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (NP_INSIDE) && !defined (NP_COMPILATION)
# error "Only <np/np.h> can be included directly."
#endif

#include <gio/gio.h>

#include "np-version-macros.h"

G_BEGIN_DECLS

#define NP_TYPE_PIPE_CONNECTION_LIST (np_pipe_connection_list_get_type ())

NP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (NpPipeConnectionList, np_pipe_connection_list, NP, PIPE_CONNECTION_LIST, GObject)

G_END_DECLS
