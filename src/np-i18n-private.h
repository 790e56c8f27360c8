/* np-i18n-private.h: the library's message catalog
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

void np_i18n_init (void);

G_END_DECLS
