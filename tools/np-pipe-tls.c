/* np-pipe-tls.c: the options of TCP addresses and TLS, which listen, send,
 * request and ping share, and the SHA-256 fingerprint of a certificate
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

gboolean
np_tool_is_tcp (const char *name)
{
  return name != NULL && g_str_has_prefix (name, "tcp:");
}

/* For the --help of np-pipe and of its commands that take tcp: */
const char *
np_tool_tls_example (void)
{
  return _("Over TCP, with a self-signed certificate, pinned by the client:\n"
           "  openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj /CN=my-host \\\n"
           "      -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem\n"
           "  np-pipe listen --tls-certificate cert.pem --tls-key key.pem \\\n"
           "      --allow-anonymous --echo tcp:127.0.0.1:7000 &\n"
           "  np-pipe send --tls-pin \"$(np-pipe fingerprint cert.pem)\" --wait 1 \\\n"
           "      tcp:127.0.0.1:7000 hello\n"
           "Instead of the pin: --tls-ca cert.pem (it names 127.0.0.1), --tls-ca\n"
           "CA.pem for a certificate a CA signed, or nothing for a CA the system trusts.\n");
}

/* Adds the options that go with a tcp: address to the main entries, so
 * that --help shows them: a server's set, or a client's. */
void
np_tool_tls_add_options (GOptionContext *context,
                         NpToolTls      *tls,
                         gboolean        server)
{
  const GOptionEntry server_entries[] = {
    { "tls-certificate", 0, 0, G_OPTION_ARG_FILENAME, &tls->certificate, N_("tcp: the server's certificate, PEM (with its key, unless --tls-key)"), N_("FILE") },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls->key, N_("tcp: the private key of --tls-certificate, PEM"), N_("FILE") },
    { "tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &tls->ca, N_("tcp: ask clients for a certificate, and verify it against the CA certificates in FILE"), N_("FILE") },
    { "require-client-certificate", 0, 0, G_OPTION_ARG_NONE, &tls->require_client_certificate, N_("tcp: refuse clients without a certificate that --tls-ca verifies"), NULL },
    { "allow-anonymous", 0, 0, G_OPTION_ARG_NONE, &tls->allow_anonymous, N_("tcp: serve clients without a client certificate (anyone who can reach the port)"), NULL },
    { "insecure-plaintext", 0, 0, G_OPTION_ARG_NONE, &tls->insecure_plaintext, N_("tcp: no TLS, on a loopback address only (to measure what TLS costs)"), NULL },
    { NULL }
  };
  const GOptionEntry client_entries[] = {
    { "tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &tls->ca, N_("tcp: trust the CA certificates in FILE instead of the system's"), N_("FILE") },
    { "tls-pin", 0, 0, G_OPTION_ARG_STRING, &tls->pin, N_("tcp: accept the server's certificate by its SHA-256 fingerprint (as “np-pipe fingerprint” prints it), and no other"), N_("SHA256") },
    { "tls-certificate", 0, 0, G_OPTION_ARG_FILENAME, &tls->certificate, N_("tcp: a client certificate to show the server, PEM (with its key, unless --tls-key)"), N_("FILE") },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls->key, N_("tcp: the private key of --tls-certificate, PEM"), N_("FILE") },
    { "insecure-plaintext", 0, 0, G_OPTION_ARG_NONE, &tls->insecure_plaintext, N_("tcp: no TLS, to a loopback address only (to measure what TLS costs)"), NULL },
    { NULL }
  };

  g_option_context_add_main_entries (context, server ? server_entries : client_entries,
                                     GETTEXT_PACKAGE);
}

/* Options that make no sense together, or without a tcp: NAME, are usage
 * errors; files that cannot be read, runtime failures. */
static char *
tls_check_usage (NpToolTls  *tls,
                 const char *name)
{
  gboolean any = tls->certificate || tls->key || tls->ca || tls->pin ||
                 tls->require_client_certificate || tls->allow_anonymous ||
                 tls->insecure_plaintext;

  if (any && !np_tool_is_tcp (name))
    return g_strdup (_("the --tls-… options, --require-client-certificate, --allow-anonymous "
                       "and --insecure-plaintext go with a tcp:HOST:PORT address only"));
  if (tls->key != NULL && tls->certificate == NULL)
    return g_strdup (_("--tls-key is the key of --tls-certificate: it needs --tls-certificate"));
  if (tls->require_client_certificate && tls->ca == NULL)
    return g_strdup (_("--require-client-certificate needs --tls-ca, the CA that client "
                       "certificates are verified against"));
  if (tls->insecure_plaintext &&
      (tls->certificate || tls->ca || tls->pin || tls->require_client_certificate))
    return g_strdup (_("--insecure-plaintext goes with no --tls-… option"));

  return NULL;
}

/* Without a TLS backend, GIO reads no certificate: say what to install,
 * as the library does. */
static gboolean
tls_check_backend (const char  *what,
                   GError     **error)
{
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                   _("“%s” needs TLS, which GIO cannot do here: install the "
                     "glib-networking package"), what);
      return FALSE;
    }

  return TRUE;
}

static gboolean
tls_load (NpToolTls          *tls,
          const char         *name,
          GTlsCertificate   **certificate,
          GTlsDatabase      **database,
          GError            **error)
{
  if ((tls->certificate != NULL || tls->ca != NULL) && !tls_check_backend (name, error))
    return FALSE;

  if (tls->certificate != NULL)
    {
      if (tls->key != NULL)
        *certificate = g_tls_certificate_new_from_files (tls->certificate, tls->key, error);
      else
        *certificate = g_tls_certificate_new_from_file (tls->certificate, error);
      if (*certificate == NULL)
        {
          g_prefix_error (error, "%s: ", tls->certificate);
          return FALSE;
        }
    }

  if (tls->ca != NULL)
    {
      /* GLib's TLS backend wants the file's absolute path. */
      g_autofree char *ca = g_canonicalize_filename (tls->ca, NULL);

      *database = g_tls_file_database_new (ca, error);
      if (*database == NULL)
        {
          g_clear_object (certificate);
          g_prefix_error (error, "%s: ", tls->ca);
          return FALSE;
        }
    }

  return TRUE;
}

/* Sets up @server as the options say. Returns an exit status other than
 * EXIT_SUCCESS when it cannot be, having said why. */
int
np_tool_tls_setup_server (NpToolTls      *tls,
                          GOptionContext *context,
                          const char     *name,
                          NpPipeServer   *server)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *usage = tls_check_usage (tls, name);

  if (usage != NULL)
    return np_tool_usage_error (context, usage);
  if (!np_tool_is_tcp (name))
    return EXIT_SUCCESS;

  if (!tls_load (tls, name, &certificate, &database, &error))
    return np_tool_fail ("%s", error->message);

  if (certificate != NULL)
    np_pipe_server_set_tls_certificate (server, certificate);
  if (database != NULL)
    {
      np_pipe_server_set_tls_database (server, database);
      np_pipe_server_set_tls_authentication_mode (server, tls->require_client_certificate
                                                          ? G_TLS_AUTHENTICATION_REQUIRED
                                                          : G_TLS_AUTHENTICATION_REQUESTED);
    }
  np_pipe_server_set_allow_anonymous (server, tls->allow_anonymous);
  np_pipe_server_set_insecure_plaintext (server, tls->insecure_plaintext);

  return EXIT_SUCCESS;
}

int
np_tool_tls_setup_client (NpToolTls      *tls,
                          GOptionContext *context,
                          const char     *name,
                          NpPipeClient   *client)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *usage = tls_check_usage (tls, name);

  if (usage != NULL)
    return np_tool_usage_error (context, usage);
  if (!np_tool_is_tcp (name))
    return EXIT_SUCCESS;

  if (!tls_load (tls, name, &certificate, &database, &error))
    return np_tool_fail ("%s", error->message);

  if (certificate != NULL)
    np_pipe_client_set_tls_certificate (client, certificate);
  if (database != NULL)
    np_pipe_client_set_tls_database (client, database);
  if (tls->pin != NULL)
    np_pipe_client_set_tls_pin (client, tls->pin);
  np_pipe_client_set_insecure_plaintext (client, tls->insecure_plaintext);

  return EXIT_SUCCESS;
}

void
np_tool_tls_clear (NpToolTls *tls)
{
  g_clear_pointer (&tls->certificate, g_free);
  g_clear_pointer (&tls->key, g_free);
  g_clear_pointer (&tls->ca, g_free);
  g_clear_pointer (&tls->pin, g_free);
}

/* The SHA-256 of the certificate's DER, in lower-case hex without
 * colons: what the client's tls-pin takes. */
char *
np_tool_certificate_fingerprint (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;

  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
}

int
np_tool_run_fingerprint (int    argc,
                         char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("FILE…");
  g_autoptr(GError) error = NULL;
  int status = EXIT_SUCCESS;

  g_option_context_set_summary (context,
                                N_("Print the SHA-256 fingerprint of the certificate in each\n"
                                   "PEM FILE, as “send --tls-pin” and the others take it: the\n"
                                   "first certificate of the file, the one a server shows."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc < 2)
    return np_tool_usage_error (context, _("fingerprint needs a certificate FILE"));
  if (!tls_check_backend (argv[1], &error))
    return np_tool_fail ("%s", error->message);

  for (int i = 1; i < argc; i++)
    {
      g_autoptr(GTlsCertificate) certificate = NULL;
      g_autoptr(GError) load_error = NULL;
      g_autofree char *fingerprint = NULL;

      /* The file may hold the key too, or only the certificate. */
      certificate = g_tls_certificate_new_from_file (argv[i], &load_error);
      if (certificate == NULL)
        {
          np_tool_warn ("%s: %s", argv[i], load_error->message);
          status = EXIT_FAILURE;
          continue;
        }

      fingerprint = np_tool_certificate_fingerprint (certificate);
      if (fingerprint == NULL)
        {
          np_tool_warn (_("%s: the certificate has no DER encoding to take the fingerprint of"),
                        argv[i]);
          status = EXIT_FAILURE;
        }
      else if (argc > 2)
        np_tool_print ("%s  %s\n", fingerprint, argv[i]);
      else
        np_tool_print ("%s\n", fingerprint);
    }

  return status;
}
