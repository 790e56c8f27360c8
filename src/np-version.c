/* np-version.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-version-check.h"

/* The version of the library running, which the NP_*_VERSION macros of
 * the headers an application was compiled against need not match. */

/**
 * np_get_major_version:
 *
 * Gets the major version of the Np library running, which may differ
 * from [const@Np.MAJOR_VERSION], the version the program was compiled
 * against.
 *
 * Returns: the major version number of the library
 *
 * Since: 1.0
 */
guint
np_get_major_version (void)
{
  return NP_MAJOR_VERSION;
}

/**
 * np_get_minor_version:
 *
 * Gets the minor version of the Np library running.
 *
 * Returns: the minor version number of the library
 *
 * Since: 1.0
 */
guint
np_get_minor_version (void)
{
  return NP_MINOR_VERSION;
}

/**
 * np_get_micro_version:
 *
 * Gets the micro version of the Np library running.
 *
 * Returns: the micro version number of the library
 *
 * Since: 1.0
 */
guint
np_get_micro_version (void)
{
  return NP_MICRO_VERSION;
}

/**
 * np_check_version:
 * @required_major: the required major version
 * @required_minor: the required minor version
 * @required_micro: the required micro version
 *
 * Checks that the Np library running is compatible with the given
 * version: of the same major version, and at least as new. This is the
 * check at run time, for code that loads the library dynamically (a
 * language binding, for one); `NP_CHECK_VERSION` checks the headers at
 * compile time.
 *
 * Returns: (nullable): %NULL when the library is compatible, otherwise a
 *   string saying why not, owned by Np and not to be freed or changed
 *
 * Since: 1.0
 */
const char *
np_check_version (guint required_major,
                  guint required_minor,
                  guint required_micro)
{
  if (required_major > NP_MAJOR_VERSION)
    return _("Np version too old (major mismatch)");
  if (required_major < NP_MAJOR_VERSION)
    return _("Np version too new (major mismatch)");
  if (required_minor > NP_MINOR_VERSION)
    return _("Np version too old (minor mismatch)");
  if (required_minor == NP_MINOR_VERSION && required_micro > NP_MICRO_VERSION)
    return _("Np version too old (micro mismatch)");

  return NULL;
}
