/* np-pipe-listen.c: "np-pipe listen", a server that prints what happens
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <glib-unix.h>
#include <np/np.h>

#include "np-pipe-tool.h"

typedef struct
{
  gboolean        echo;
  gboolean        broadcast;
  gboolean        hex;
  gboolean        raw;
  gboolean        full;
  gboolean        variant;
  gboolean        tcp;
  NpToolShowFlags show;
} ListenOptions;

/* An event line: on stdout, or with --raw on stderr (where it is a
 * blocking write, as any message on stderr is). */
static void
listen_event (ListenOptions *options,
              const char    *line)
{
  if (options->raw)
    g_printerr ("%s", line);
  else
    np_tool_write (line, strlen (line));
}

/* Over TCP: the client's address, and the certificate it showed. */
static char *
listen_describe_tcp_peer (NpPipeConnection *connection)
{
  g_autoptr(GSocketAddress) address = np_pipe_connection_get_remote_address (connection);
  GTlsCertificate *certificate = np_pipe_connection_get_peer_certificate (connection);
  GString *out = g_string_new (NULL);

  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
      g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (inet));

      g_string_append_printf (out, g_socket_address_get_family (address) == G_SOCKET_FAMILY_IPV6
                                   ? "from [%s]:%u" : "from %s:%u",
                              host, g_inet_socket_address_get_port (inet));
    }
  else
    g_string_append (out, "from ?");

  if (certificate != NULL)
    {
      g_autofree char *subject = NULL;
      g_autofree char *escaped = NULL;

      /* A name the client's certificate chose: peer text. */
      g_object_get (certificate, "subject-name", &subject, NULL);
      escaped = np_tool_escape (subject ? subject : "?", -1);
      g_string_append_printf (out, ", certificate “%s”%s", escaped,
                              np_pipe_connection_get_peer_certificate_errors (connection) == 0
                              ? "" : " (not verified)");
    }

  return g_string_free (out, FALSE);
}

static void
listen_client_connected (NpPipeServer     *server,
                         NpPipeConnection *connection,
                         ListenOptions    *options)
{
  g_autofree char *line = NULL;

  if (options->tcp)
    {
      g_autofree char *peer = listen_describe_tcp_peer (connection);

      line = g_strdup_printf ("client %" G_GUINT64_FORMAT " connected (%s)\n",
                              np_pipe_connection_get_id (connection), peer);
    }
  else
    line = g_strdup_printf ("client %" G_GUINT64_FORMAT " connected (pid %d, uid %u)\n",
                            np_pipe_connection_get_id (connection),
                            np_pipe_connection_get_peer_pid (connection),
                            np_pipe_connection_get_peer_uid (connection));

  listen_event (options, line);
}

/* Shows a message or request (and how many descriptors came with it,
 * which are closed by now). */
static void
listen_show_message (NpPipeConnection *sender,
                     GBytes           *message,
                     gboolean          request,
                     guint             n_fds,
                     ListenOptions    *options)
{
  guint64 id = np_pipe_connection_get_id (sender);

  if (options->raw)
    {
      np_tool_write_bytes (message);
      if (n_fds > 0)
        {
          g_autofree char *line = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                                "client %llu sent %u descriptor; it was closed\n",
                                                                "client %llu sent %u descriptors; they were closed\n",
                                                                n_fds),
                                                   (unsigned long long) id, n_fds);
          listen_event (options, line);
        }
    }
  else
    {
      g_autofree char *prefix = g_strdup_printf (request ? "client %" G_GUINT64_FORMAT " request"
                                                         : "client %" G_GUINT64_FORMAT, id);

      np_tool_print_message (prefix, message, options->show, n_fds);
    }
}

static void
listen_relay (NpPipeServer     *server,
              NpPipeConnection *sender,
              GBytes           *message,
              ListenOptions    *options)
{
  g_autoptr(GError) error = NULL;

  if (options->echo && !np_pipe_connection_send (sender, message, &error))
    np_tool_warn ("%s", error->message);

  if (options->broadcast)
    {
      GListModel *connections = np_pipe_server_get_connections (server);

      for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
        {
          g_autoptr(NpPipeConnection) other = g_list_model_get_item (connections, i);
          g_autoptr(GError) relay_error = NULL;

          if (other != sender && !np_pipe_connection_send (other, message, &relay_error))
            np_tool_warn ("%s", relay_error->message);
        }
    }
}

static void
listen_message_received (NpPipeServer     *server,
                         NpPipeConnection *sender,
                         GBytes           *message,
                         ListenOptions    *options)
{
  listen_show_message (sender, message, FALSE, 0, options);
  listen_relay (server, sender, message, options);
}

/* Descriptors are only counted: they are closed here, before anything
 * is relayed. */
static void
listen_message_with_fds_received (NpPipeServer     *server,
                                  NpPipeConnection *sender,
                                  GBytes           *message,
                                  GUnixFDList      *fds,
                                  ListenOptions    *options)
{
  guint n_fds = np_tool_close_fds (fds);

  listen_show_message (sender, message, FALSE, n_fds, options);
  listen_relay (server, sender, message, options);
}

/* Printed like a message; only --echo answers. Left unanswered, the
 * library tells the client that nothing handles requests here. */
static gboolean
listen_request_received (NpPipeServer     *server,
                         NpPipeConnection *sender,
                         NpPipeRequest    *request,
                         ListenOptions    *options)
{
  GBytes *message = np_pipe_request_get_message (request);
  guint n_fds = np_tool_close_fds (np_pipe_request_get_fd_list (request));

  listen_show_message (sender, message, TRUE, n_fds, options);

  if (!options->echo)
    return FALSE;

  np_pipe_request_reply (request, message);
  return TRUE;
}

static void
listen_client_disconnected (NpPipeServer     *server,
                            NpPipeConnection *connection,
                            GError           *error,
                            ListenOptions    *options)
{
  g_autofree char *line = NULL;

  /* The error may carry the client's goodbye reason: peer text. */
  if (error != NULL)
    {
      g_autofree char *escaped = np_tool_escape (error->message, -1);

      line = g_strdup_printf ("client %" G_GUINT64_FORMAT " disconnected: %s\n",
                              np_pipe_connection_get_id (connection), escaped);
    }
  else
    line = g_strdup_printf ("client %" G_GUINT64_FORMAT " disconnected\n",
                            np_pipe_connection_get_id (connection));

  listen_event (options, line);
}

static gboolean
quit_cb (gpointer user_data)
{
  np_tool_quit ();
  return G_SOURCE_CONTINUE;
}

int
np_tool_run_listen (int    argc,
                    char **argv)
{
  ListenOptions options = { 0 };
  guint max_message_size = 0;
  gint max_clients = G_MININT;   /* not given */
  g_autoptr(GOptionContext) context = g_option_context_new ("[NAME]");
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(NpToolTls) tls = { 0 };
  const char *name;
  int status;
  const GOptionEntry entries[] = {
    { "echo", 'e', 0, G_OPTION_ARG_NONE, &options.echo, N_("Send each message back to its sender, and answer each request with its message"), NULL },
    { "broadcast", 'b', 0, G_OPTION_ARG_NONE, &options.broadcast, N_("Relay each message to all other clients"), NULL },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &options.hex, N_("Print every message and request as a hex dump"), NULL },
    { "full", 0, 0, G_OPTION_ARG_NONE, &options.full, N_("Print all of each message, not only its first 256 bytes"), NULL },
    { "variant", 0, 0, G_OPTION_ARG_NONE, &options.variant, N_("Print the messages and requests that hold a GVariant decoded"), NULL },
    { "raw", 'r', 0, G_OPTION_ARG_NONE, &options.raw, N_("Write the bytes of messages and requests, unframed, to stdout; events go to stderr"), NULL },
    { "max-message-size", 'm', 0, G_OPTION_ARG_INT, &max_message_size, N_("Largest message accepted, in bytes (default 16 MiB)"), N_("BYTES") },
    { "max-clients", 0, 0, G_OPTION_ARG_INT, &max_clients, N_("Most clients served at once, 0 for no limit (default 1024)"), N_("N") },
    { NULL }
  };

  g_option_context_set_summary (context,
                                N_("Start a server (under a generated name when none is given)\n"
                                   "and print one line per event, with the first 256 bytes of\n"
                                   "each message (--full: all of it). Without --echo, requests\n"
                                   "are printed and not answered: the client gets an error.\n"
                                   "NAME may be tcp:HOST:PORT (port 0: one the system picks), with\n"
                                   "TLS: --tls-certificate, and --allow-anonymous or\n"
                                   "--require-client-certificate."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_description (context, np_tool_tls_example ());
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  np_tool_tls_add_options (context, &tls, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc > 2)
    return np_tool_usage_error (context, _("listen takes at most one NAME"));
  if (options.raw && (options.hex || options.full || options.variant))
    return np_tool_usage_error (context, _("--raw goes with none of --hex, --full and --variant"));
  if (options.hex && options.variant)
    return np_tool_usage_error (context, _("--hex and --variant do not go together"));
  if (max_clients < 0 && max_clients != G_MININT)
    return np_tool_usage_error (context, _("--max-clients takes 0 or more"));

  options.show = (options.hex ? NP_TOOL_SHOW_HEX : 0) |
                 (options.full ? NP_TOOL_SHOW_FULL : 0) |
                 (options.variant ? NP_TOOL_SHOW_VARIANT : 0);

  name = argc == 2 ? argv[1] : NULL;
  options.tcp = np_tool_is_tcp (name);
  server = np_pipe_server_new (name);
  status = np_tool_tls_setup_server (&tls, context, name, server);
  if (status != EXIT_SUCCESS)
    return status;
  if (max_message_size > 0)
    np_pipe_server_set_max_message_size (server, max_message_size);
  if (max_clients >= 0)
    {
      struct rlimit limit;

      /* The library keeps its clients within the descriptors the process
       * may open: as many as the hard limit allows. */
      if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
        {
          limit.rlim_cur = limit.rlim_max;
          setrlimit (RLIMIT_NOFILE, &limit);
        }
      np_pipe_server_set_max_connections (server, max_clients);
    }

  g_signal_connect (server, "client-connected", G_CALLBACK (listen_client_connected), &options);
  g_signal_connect (server, "message-received", G_CALLBACK (listen_message_received), &options);
  g_signal_connect (server, "message-with-fds-received", G_CALLBACK (listen_message_with_fds_received), &options);
  g_signal_connect (server, "request-received", G_CALLBACK (listen_request_received), &options);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (listen_client_disconnected), &options);

  if (!np_pipe_server_start (server, &error))
    {
      status = np_tool_fail ("%s", error->message);
      /* The library's own refusal of a server anyone could use. */
      if (options.tcp && g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED) &&
          !tls.allow_anonymous && !tls.require_client_certificate)
        g_printerr ("%s\n", _("np-pipe: give --allow-anonymous to serve anyone who can reach "
                              "the port, or --require-client-certificate with --tls-ca"));
      return status;
    }

  /* From here, printing never holds up serving. */
  np_tool_output_start_async (options.raw);

  {
    g_autofree char *line = NULL;

    /* With the port the system picked, and the pin clients need. */
    if (options.tcp)
      {
        g_autoptr(GTlsCertificate) certificate = np_pipe_server_dup_tls_certificate (server);
        g_autofree char *fingerprint = NULL;

        if (certificate != NULL && !np_pipe_server_get_insecure_plaintext (server))
          fingerprint = np_tool_certificate_fingerprint (certificate);
        if (fingerprint != NULL)
          line = g_strdup_printf ("Listening on %s with TLS (certificate SHA-256 %s)\n",
                                  np_pipe_server_get_name (server), fingerprint);
        else
          line = g_strdup_printf ("Listening on %s without TLS\n",
                                  np_pipe_server_get_name (server));
      }
    else
      line = g_strdup_printf ("Listening as pipe “%s” on %s\n",
                              np_pipe_server_get_name (server),
                              np_pipe_server_get_path (server));
    listen_event (&options, line);
  }

  g_unix_signal_add (SIGINT, quit_cb, NULL);
  g_unix_signal_add (SIGTERM, quit_cb, NULL);
  np_tool_quit_on_stdout_hangup ();
  np_tool_run_loop ();

  /* Reports each client it disconnects; removes the socket file. */
  np_pipe_server_stop (server);
  np_tool_output_finish ();

  return EXIT_SUCCESS;
}
