/* np-version-check.h: the version of the library running
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (NP_INSIDE) && !defined (NP_COMPILATION)
# error "Only <np/np.h> can be included directly."
#endif

#include <glib.h>

#include "np-version-macros.h"

G_BEGIN_DECLS

NP_AVAILABLE_IN_ALL
guint        np_get_major_version (void) G_GNUC_CONST;
NP_AVAILABLE_IN_ALL
guint        np_get_minor_version (void) G_GNUC_CONST;
NP_AVAILABLE_IN_ALL
guint        np_get_micro_version (void) G_GNUC_CONST;
NP_AVAILABLE_IN_ALL
const char  *np_check_version     (guint required_major,
                                   guint required_minor,
                                   guint required_micro);

G_END_DECLS
