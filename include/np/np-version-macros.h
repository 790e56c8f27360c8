/* np-version-macros.h
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

#include "np-version.h"

#ifndef _NP_EXTERN
# define _NP_EXTERN __attribute__((visibility("default"))) extern
#endif

#define NP_VERSION_1_0 (NP_ENCODE_VERSION (1, 0, 0))

#ifndef NP_VERSION_MIN_REQUIRED
# define NP_VERSION_MIN_REQUIRED NP_VERSION_1_0
#endif

#ifndef NP_VERSION_MAX_ALLOWED
# define NP_VERSION_MAX_ALLOWED NP_VERSION_1_0
#endif

#ifdef NP_DISABLE_DEPRECATION_WARNINGS
# define NP_DEPRECATED _NP_EXTERN
# define NP_DEPRECATED_FOR(f) _NP_EXTERN
# define NP_UNAVAILABLE(maj,min) _NP_EXTERN
#else
# define NP_DEPRECATED G_DEPRECATED _NP_EXTERN
# define NP_DEPRECATED_FOR(f) G_DEPRECATED_FOR (f) _NP_EXTERN
# define NP_UNAVAILABLE(maj,min) G_UNAVAILABLE (maj, min) _NP_EXTERN
#endif

#define NP_AVAILABLE_IN_ALL _NP_EXTERN
#define NP_AVAILABLE_IN_1_0 _NP_EXTERN
