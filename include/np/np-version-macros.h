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

/**
 * NP_VERSION_1_0:
 *
 * The version 1.0 of Np, for [const@Np.VERSION_MIN_REQUIRED] and
 * [const@Np.VERSION_MAX_ALLOWED].
 *
 * Since: 1.0
 */
#define NP_VERSION_1_0 (NP_ENCODE_VERSION (1, 0, 0))

/**
 * NP_VERSION_CUR_STABLE:
 *
 * The current stable version of Np, as an encoded version.
 *
 * Since: 1.0
 */
#define NP_VERSION_CUR_STABLE (NP_ENCODE_VERSION (NP_MAJOR_VERSION, NP_MINOR_VERSION, 0))

/**
 * NP_VERSION_MIN_REQUIRED:
 *
 * Define it, before including `<np/np.h>`, to the oldest version of Np
 * the program supports (such as `NP_VERSION_1_0`): API deprecated in that
 * version or earlier then warns. It defaults to
 * [const@Np.VERSION_CUR_STABLE].
 *
 * Since: 1.0
 */
#ifndef NP_VERSION_MIN_REQUIRED
# define NP_VERSION_MIN_REQUIRED (NP_VERSION_CUR_STABLE)
#endif

/**
 * NP_VERSION_MAX_ALLOWED:
 *
 * Define it, before including `<np/np.h>`, to the newest version of Np
 * whose API the program may use: using API added later then warns. It
 * defaults to [const@Np.VERSION_MIN_REQUIRED] when that is newer than the
 * current stable version, to [const@Np.VERSION_CUR_STABLE] otherwise.
 *
 * Since: 1.0
 */
#ifndef NP_VERSION_MAX_ALLOWED
# if NP_VERSION_MIN_REQUIRED > NP_VERSION_CUR_STABLE
#  define NP_VERSION_MAX_ALLOWED (NP_VERSION_MIN_REQUIRED)
# else
#  define NP_VERSION_MAX_ALLOWED (NP_VERSION_CUR_STABLE)
# endif
#endif

#if NP_VERSION_MAX_ALLOWED < NP_VERSION_MIN_REQUIRED
# error "NP_VERSION_MAX_ALLOWED must be >= NP_VERSION_MIN_REQUIRED"
#endif
#if NP_VERSION_MIN_REQUIRED < NP_VERSION_1_0
# error "NP_VERSION_MIN_REQUIRED must be >= NP_VERSION_1_0"
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

#if NP_VERSION_MIN_REQUIRED >= NP_VERSION_1_0
# define NP_DEPRECATED_IN_1_0 NP_DEPRECATED
# define NP_DEPRECATED_IN_1_0_FOR(f) NP_DEPRECATED_FOR (f)
#else
# define NP_DEPRECATED_IN_1_0 _NP_EXTERN
# define NP_DEPRECATED_IN_1_0_FOR(f) _NP_EXTERN
#endif

#if NP_VERSION_MAX_ALLOWED < NP_VERSION_1_0
# define NP_AVAILABLE_IN_1_0 NP_UNAVAILABLE (1, 0)
#else
# define NP_AVAILABLE_IN_1_0 _NP_EXTERN
#endif
