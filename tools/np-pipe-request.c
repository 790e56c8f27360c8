/* np-pipe-request.c: "np-pipe request", one request and its reply
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <np/np.h>

#include "np-pipe-tool.h"

typedef struct
{
  NpPipeClient *client;
  gboolean      hex;
  guint         timeout_msec;
  gboolean      failed;
} Request;

#define DEFAULT_TIMEOUT "10"

/* Says what went wrong, naming the pipe. The library's own errors about
 * the connection start with the pipe's name; anything else is the
 * error the server answered with. */
static void
request_report_error (Request      *r,
                      const GError *error)
{
  const char *name = np_pipe_client_get_name (r->client);
  g_autofree char *label = g_strdup_printf ("Pipe “%s”: ", name);

  if (!g_str_has_prefix (error->message, label))
    g_printerr ("np-pipe: pipe “%s” answered the request with an error: %s (%s, %d)\n",
                name, error->message, g_quark_to_string (error->domain), error->code);
  else if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT))
    g_printerr ("np-pipe: pipe “%s”: the reply did not arrive within %g s\n",
                name, r->timeout_msec / 1000.0);
  else
    g_printerr ("np-pipe: %s\n", error->message);
}

static void
request_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Request *r = user_data;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = np_pipe_client_request_finish (r->client, result, &error);
  if (reply != NULL)
    np_tool_print_message ("reply", reply, r->hex);
  else
    {
      request_report_error (r, error);
      r->failed = TRUE;
    }

  np_tool_quit ();
}

int
np_tool_run_request (int    argc,
                     char **argv)
{
  g_autofree char *timeout = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME MESSAGE");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GBytes) message = NULL;
  g_autoptr(GError) error = NULL;
  Request r = { 0 };
  const GOptionEntry entries[] = {
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout, "Give up when the reply takes over SECONDS (default " DEFAULT_TIMEOUT "; 0: no limit)", "SECONDS" },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &r.hex, "Print the reply as a hex dump", NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Send MESSAGE as a request and print the server's reply. A server\n"
                                "that answers with an error, or not in time, makes this fail.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc != 3)
    return np_tool_usage_error (context, "request needs the NAME of a pipe and one MESSAGE");
  if (!np_tool_parse_timeout (timeout ? timeout : DEFAULT_TIMEOUT, &r.timeout_msec))
    return np_tool_usage_error (context, "--timeout takes a number of seconds, 0 for no limit");

  /* The request timeout applies from the connect on. */
  client = np_pipe_client_new (argv[1]);
  np_pipe_client_set_request_timeout (client, r.timeout_msec);
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return np_tool_fail ("%s", error->message);

  r.client = client;
  message = g_bytes_new (argv[2], strlen (argv[2]));
  np_pipe_client_request_async (client, message, NULL, request_done_cb, &r);
  np_tool_run_loop ();
  np_pipe_client_close (client, NULL, NULL);

  return r.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
