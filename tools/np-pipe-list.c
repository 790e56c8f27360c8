/* np-pipe-list.c: "np-pipe list", the pipes of this user, live or stale
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <np/np.h>

#include "np-name-private.h"
#include "np-pipe-tool.h"

/* How long a probe gives a socket nobody holds the lock of to complete
 * the handshake: a service that systemd starts on demand needs time. */
#define PROBE_TIMEOUT_MSEC 3000

/* Probes a socket whose lock nobody holds as a client does: the
 * handshake, then a normal close (GOODBYE CLOSED), so that a service
 * started by the probe (socket activation) sees a client come and go
 * cleanly, not one that vanished before the handshake. */
static int
list_probe (const char *socket_path)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (socket_path);
  g_autoptr(GError) error = NULL;

  np_pipe_client_set_connect_timeout (client, PROBE_TIMEOUT_MSEC);
  if (np_pipe_client_connect_sync (client, NULL, &error))
    {
      np_pipe_client_close (client, NULL, NULL);
      return 0;
    }

  if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
    return ECONNREFUSED;
  if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME) ||
      error->domain == G_IO_ERROR)
    return EIO;

  /* It accepted the connection, then refused us, answered with
   * something else than Np, or kept quiet: something is there. */
  return 0;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

int
np_tool_run_list (int    argc,
                  char **argv)
{
  gboolean clean = FALSE;
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir_path = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  const char *entry;
  const GOptionEntry entries[] = {
    { "clean", 0, 0, G_OPTION_ARG_NONE, &clean, N_("Remove the stale socket files"), NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                N_("List the local pipes in the user's runtime directory, live or\n"
                                   "stale; servers on tcp: addresses are not listed (nothing on this\n"
                                   "machine records them). A socket whose server holds no lock is\n"
                                   "probed: a connection and a handshake, which starts a service\n"
                                   "that waits for one (socket activation)."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc != 1)
    return np_tool_usage_error (context, _("list takes no arguments"));

  dir = g_dir_open (dir_path, 0, &error);
  if (dir == NULL)
    {
      if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return EXIT_SUCCESS;
      return np_tool_fail ("%s", error->message);
    }

  while ((entry = g_dir_read_name (dir)) != NULL)
    if (!g_str_has_suffix (entry, ".lock"))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_names);

  np_tool_print ("%-32s %-6s %8s  %s\n", "NAME", "STATE", "PID", "PATH");

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *pid_text = NULL;
      int lock_fd = -1;
      NpNameState state;
      int pid;

      state = np_name_get_state_with_probe (path, &pid, clean ? &lock_fd : NULL, list_probe);
      if (state == NP_NAME_STATE_ABSENT || state == NP_NAME_STATE_NOT_SOCKET)
        continue;

      pid_text = pid > 0 ? g_strdup_printf ("%d", pid) : g_strdup ("-");
      np_tool_print ("%-32s %-6s %8s  %s\n", name,
                     state == NP_NAME_STATE_LIVE ? "live" :
                     state == NP_NAME_STATE_STALE ? "stale" : "?",
                     pid_text, path);

      if (clean && state == NP_NAME_STATE_STALE)
        {
          if (g_unlink (path) != 0)
            g_printerr (_("np-pipe: cannot remove %s: %s\n"), path, g_strerror (errno));
          else
            g_printerr (_("removed stale %s\n"), path);

          /* Removes the lock file, then lets servers have the name. */
          np_name_unlock (lock_fd, path);
        }
    }

  return EXIT_SUCCESS;
}
