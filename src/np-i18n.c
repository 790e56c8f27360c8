/* np-i18n.c: binds the library's gettext domain to its catalogs
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-i18n-private.h"

/* Called before the first message that may be translated: from each
 * class_init, the error quark and the functions that report errors
 * without an object. Messages are translated in GETTEXT_PACKAGE, whose
 * catalogs live under LOCALEDIR, or under $NP_LOCALEDIR when it is set:
 * for the tests, which build their own catalog, and for an installation
 * moved away from its prefix. The variable is read once, here. */
void
np_i18n_init (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      const char *dir = g_getenv ("NP_LOCALEDIR");

      if (dir == NULL || dir[0] == '\0')
        dir = LOCALEDIR;

      bindtextdomain (GETTEXT_PACKAGE, dir);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

      g_once_init_leave (&initialized, 1);
    }
}
