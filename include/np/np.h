/* np.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define NP_INSIDE
# include "np-version.h"
# include "np-version-macros.h"
# include "np-version-check.h"
# include "np-error.h"
# include "np-pipe-connection.h"
# include "np-pipe-connection-list.h"
# include "np-pipe-client.h"
# include "np-pipe-request.h"
# include "np-pipe-server.h"
# include "np-variant.h"
#undef NP_INSIDE

G_END_DECLS
