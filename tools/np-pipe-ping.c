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
  GError       *error;
} Ping;

static void ping_next (Ping *p);

static void
ping_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Ping *p = user_data;
  gint64 usec;

  if (!np_pipe_client_ping_finish (p->client, result, &usec, &p->error))
    {
      np_tool_quit ();
      return;
    }

  g_array_append_val (p->times, usec);
  if (p->count >= 100 && p->times->len % 100 == 0)
    np_tool_show_progress ("ping: %u of %u", p->times->len, p->count);

  if (p->times->len == p->count)
    np_tool_quit ();
  else
    ping_next (p);
}

static void
ping_next (Ping *p)
{
  np_pipe_client_ping_async (p->client, NULL, ping_done_cb, p);
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
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GArray) times = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GError) error = NULL;
  Ping p = { 0 };
  const GOptionEntry entries[] = {
    { "count", 'c', 0, G_OPTION_ARG_INT, &count, "Number of pings (default 5)", "COUNT" },
    { NULL }
  };
  gint64 *t;

  g_option_context_set_summary (context,
                                "Measure the round trip to a server. Its library answers the\n"
                                "pings by itself: any Np server can be pinged.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc != 2)
    return np_tool_usage_error (context, "ping needs the NAME of a pipe");
  if (count < 1)
    return np_tool_usage_error (context, "--count takes a number of pings, 1 or more");

  client = np_pipe_client_new (argv[1]);
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return np_tool_fail ("%s", error->message);

  p.client = client;
  p.times = times;
  p.count = count;
  ping_next (&p);
  np_tool_run_loop ();
  np_tool_end_progress ();

  if (p.error != NULL)
    {
      int status = np_tool_fail ("%s", p.error->message);
      g_error_free (p.error);
      return status;
    }

  np_pipe_client_close (client);

  g_array_sort (times, compare_gint64);
  t = (gint64 *) (gpointer) times->data;
  np_tool_print ("pipe “%s”: %u pings, round trip min/median/max = %" G_GINT64_FORMAT "/%"
                 G_GINT64_FORMAT "/%" G_GINT64_FORMAT " µs\n",
                 argv[1], times->len, t[0], t[times->len / 2], t[times->len - 1]);

  return EXIT_SUCCESS;
}
