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
  gboolean      variant;
  guint         timeout_msec;
  GCancellable *cancellable;
  guint         timeout_id;
  gboolean      timed_out;
  gboolean      failed;
} Request;

#define DEFAULT_TIMEOUT "10"

/* Says what went wrong, naming the pipe, escaped (np_tool_warn()): the
 * message, and the domain, of an error reply are the server's text. The
 * library's own errors about the connection start with the pipe's name;
 * anything else is the error the server answered with. */
static void
request_report_error (Request      *r,
                      const GError *error)
{
  const char *name = np_pipe_client_get_name (r->client);
  /* The library's label for the client, in the user's language. */
  g_autofree char *pipe = g_strdup_printf (_("Pipe “%s”"), name);
  g_autofree char *label = g_strconcat (pipe, ": ", NULL);

  if (!g_str_has_prefix (error->message, label))
    np_tool_warn (_("pipe “%s” answered the request with an error: %s (%s, %d)"),
                  name, error->message, g_quark_to_string (error->domain), error->code);
  else
    np_tool_warn ("%s", error->message);
}

/* The reply gets what is left of --timeout once connected; the request
 * is cancelled when that runs out. */
static gboolean
request_timeout_cb (gpointer user_data)
{
  Request *r = user_data;

  r->timeout_id = 0;
  r->timed_out = TRUE;
  np_tool_warn (_("pipe “%s”: the reply did not arrive within %g s (--timeout, "
                  "counted from the start of the connect)"),
                np_pipe_client_get_name (r->client), r->timeout_msec / 1000.0);
  g_cancellable_cancel (r->cancellable);

  return G_SOURCE_REMOVE;
}

static void
request_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Request *r = user_data;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  g_clear_handle_id (&r->timeout_id, g_source_remove);
  reply = np_pipe_client_request_finish (r->client, result, &error);
  if (r->timed_out)
    r->failed = TRUE;
  else if (reply != NULL)
    np_tool_print_message (_("reply"), reply,
                           NP_TOOL_SHOW_FULL |
                           (r->hex ? NP_TOOL_SHOW_HEX : 0) |
                           (r->variant ? NP_TOOL_SHOW_VARIANT : 0), 0);
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
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Request r = { 0 };
  gint64 start;
  g_auto(NpToolTls) tls = { 0 };
  int tls_status;
  const GOptionEntry entries[] = {
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout, N_("Give up when connecting and the reply take over SECONDS in all (default 10; 0: no limit)"), N_("SECONDS") },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &r.hex, N_("Print the reply as a hex dump"), NULL },
    { "variant", 0, 0, G_OPTION_ARG_NONE, &r.variant, N_("MESSAGE is the text of a GVariant, such as '(\"uptime\", <\"\">)': send the value, and print a reply that holds one decoded"), NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                N_("Send MESSAGE as a request and print the server's reply. A server\n"
                                   "that answers with an error, or not in time, makes this fail."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_description (context, np_tool_tls_example ());
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  np_tool_tls_add_options (context, &tls, FALSE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc != 3)
    return np_tool_usage_error (context, _("request needs the NAME of a pipe and one MESSAGE"));
  if (!np_tool_parse_timeout (timeout ? timeout : DEFAULT_TIMEOUT, &r.timeout_msec))
    return np_tool_usage_error (context, _("--timeout takes a number of seconds, 0 for no limit"));
  if (r.hex && r.variant)
    return np_tool_usage_error (context, _("--hex and --variant do not go together"));

  if (r.variant)
    message = np_tool_parse_variant (argv[2], strlen (argv[2]), &error);
  else
    message = g_bytes_new (argv[2], strlen (argv[2]));
  if (message == NULL)
    return np_tool_usage_error (context, error->message);

  /* --timeout bounds the whole: the connect gets all of it, the reply
   * what the connect left. */
  client = np_pipe_client_new (argv[1]);
  tls_status = np_tool_tls_setup_client (&tls, context, argv[1], client);
  if (tls_status != EXIT_SUCCESS)
    return tls_status;
  np_pipe_client_set_connect_timeout (client, r.timeout_msec);
  np_pipe_client_set_request_timeout (client, 0);
  start = g_get_monotonic_time ();
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    {
      g_autofree char *pipe = g_strdup_printf (_("Pipe “%s”"), np_pipe_client_get_name (client));
      g_autofree char *label = g_strconcat (pipe, ": ", NULL);

      /* Which wait ran out: this one, not the reply's. */
      if (g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT) &&
          g_str_has_prefix (error->message, label))
        return np_tool_fail (_("pipe “%s”: --timeout (%g s) ran out while connecting: %s"),
                             np_pipe_client_get_name (client), r.timeout_msec / 1000.0,
                             error->message + strlen (label));
      return np_tool_fail ("%s", error->message);
    }

  r.client = client;
  r.cancellable = cancellable;
  if (r.timeout_msec > 0)
    {
      gint64 spent = (g_get_monotonic_time () - start) / G_TIME_SPAN_MILLISECOND;

      r.timeout_id = g_timeout_add (MAX (1, (gint64) r.timeout_msec - spent), request_timeout_cb, &r);
    }

  np_pipe_client_request_async (client, message, cancellable, request_done_cb, &r);
  np_tool_run_loop ();
  g_clear_handle_id (&r.timeout_id, g_source_remove);
  np_pipe_client_close (client, NULL, NULL);

  return r.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
