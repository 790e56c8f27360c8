/* np-variant.h
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
GBytes   *np_variant_to_message   (GVariant  *value);
NP_AVAILABLE_IN_ALL
GVariant *np_variant_from_message (GBytes    *message,
                                   GError   **error);

G_END_DECLS
