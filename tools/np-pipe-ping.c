/* np-pipe-ping.c: "np-pipe ping", the round trip to a server
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>

#include <np/np.h>

#include "np-pipe-tool.h"

typedef struct
{
  NpPipeClient *client;
  GArray       *times;
  guint         count;
  guint         timeout_msec;
  guint         timeout_id;
  GCancellable *cancellable;
  gboolean      done;
  GError       *error;
} Ping;

#define DEFAULT_TIMEOUT "10"

static void ping_next (Ping *p);

static void
ping_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Ping *p = user_data;
  gint64 usec;

  /* A ping given up on, completed after all. */
  if (p->done)
    {
      np_pipe_client_ping_finish (p->client, result, NULL);
      return;
    }

  g_clear_handle_id (&p->timeout_id, g_source_remove);

  usec = np_pipe_client_ping_finish (p->client, result, &p->error);
  if (usec < 0)
    {
      p->done = TRUE;
      np_tool_quit ();
      return;
    }

  g_array_append_val (p->times, usec);
  if (p->count >= 100 && p->times->len % 100 == 0)
    np_tool_show_progress ("ping: %u of %u", p->times->len, p->count);

  if (p->times->len == p->count)
    {
      p->done = TRUE;
      np_tool_quit ();
    }
  else
    ping_next (p);
}

/* The program ends on its own timer: the cancelled ping may complete
 * late, or never, and nothing waits for it. */
static gboolean
ping_timeout_cb (gpointer user_data)
{
  Ping *p = user_data;

  p->timeout_id = 0;
  p->done = TRUE;
  g_set_error (&p->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
               _("pipe “%s”: ping %u of %u was not answered within %g s"),
               np_pipe_client_get_name (p->client), p->times->len + 1, p->count,
               p->timeout_msec / 1000.0);
  g_cancellable_cancel (p->cancellable);
  np_tool_quit ();

  return G_SOURCE_REMOVE;
}

static void
ping_next (Ping *p)
{
  g_clear_object (&p->cancellable);
  p->cancellable = g_cancellable_new ();

  if (p->timeout_msec > 0)
    p->timeout_id = g_timeout_add (p->timeout_msec, ping_timeout_cb, p);

  np_pipe_client_ping_async (p->client, p->cancellable, ping_done_cb, p);
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a;
  gint64 y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

int
np_tool_run_ping (int    argc,
                  char **argv)
{
  int count = 5;
  g_autofree char *timeout = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GArray) times = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GError) error = NULL;
  Ping p = { 0 };
  g_auto(NpToolTls) tls = { 0 };
  int tls_status;
  const GOptionEntry entries[] = {
    { "count", 'c', 0, G_OPTION_ARG_INT, &count, N_("Number of pings (default 5)"), N_("COUNT") },
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout, N_("Give up when a ping is not answered within SECONDS (default 10; 0: no limit)"), N_("SECONDS") },
    { NULL }
  };
  gint64 *t;

  g_option_context_set_summary (context,
                                _("Measure the round trip to a server. Its library answers the\n"
                                  "pings by itself: any Np server can be pinged."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_description (context, np_tool_tls_example ());
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  np_tool_tls_add_options (context, &tls, FALSE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc != 2)
    return np_tool_usage_error (context, _("ping needs the NAME of a pipe"));
  if (count < 1)
    return np_tool_usage_error (context, _("--count takes a number of pings, 1 or more"));
  if (!np_tool_parse_timeout (timeout ? timeout : DEFAULT_TIMEOUT, &p.timeout_msec))
    return np_tool_usage_error (context, _("--timeout takes a number of seconds, 0 for no limit"));

  client = np_pipe_client_new (argv[1]);
  tls_status = np_tool_tls_setup_client (&tls, context, argv[1], client);
  if (tls_status != EXIT_SUCCESS)
    return tls_status;
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return np_tool_fail ("%s", error->message);

  p.client = client;
  p.times = times;
  p.count = count;
  ping_next (&p);
  np_tool_run_loop ();
  np_tool_end_progress ();
  g_clear_handle_id (&p.timeout_id, g_source_remove);
  g_clear_object (&p.cancellable);

  if (p.error != NULL)
    {
      int status = np_tool_fail ("%s", p.error->message);
      g_error_free (p.error);
      return status;
    }

  np_pipe_client_close (client, NULL, NULL);

  g_array_sort (times, compare_gint64);
  t = (gint64 *) (gpointer) times->data;
  np_tool_print ("pipe “%s”: %u pings, round trip min/median/max = %" G_GINT64_FORMAT "/%"
                 G_GINT64_FORMAT "/%" G_GINT64_FORMAT " µs\n",
                 argv[1], times->len, t[0], t[times->len / 2], t[times->len - 1]);

  return EXIT_SUCCESS;
}
