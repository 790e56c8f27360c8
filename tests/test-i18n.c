/* test-i18n.c: the library's messages come out in the user's language
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Run with LANGUAGE=de LC_ALL=C.UTF-8 (the one locale besides C that a
 * minimal system has, under which gettext honours LANGUAGE) and MSGFMT
 * naming msgfmt: the test compiles a small German catalog of its own
 * into a temporary directory and points the library at it with
 * NP_LOCALEDIR, before the library first binds its domain.
 */

#include <locale.h>

#include "np-test-util.h"

/* The msgids are the library's own: a change to one of them must come
 * with a change here, as it would leave real translations behind. A
 * msgid with %<PRIu64> is found only when it is marked c-format. */
static const char catalog[] =
  "msgid \"\"\n"
  "msgstr \"\"\n"
  "\"Project-Id-Version: np-1.0\\n\"\n"
  "\"PO-Revision-Date: 2026-01-01 00:00+0000\\n\"\n"
  "\"Last-Translator: The Np authors\\n\"\n"
  "\"Language-Team: German\\n\"\n"
  "\"Language: de\\n\"\n"
  "\"MIME-Version: 1.0\\n\"\n"
  "\"Content-Type: text/plain; charset=UTF-8\\n\"\n"
  "\"Content-Transfer-Encoding: 8bit\\n\"\n"
  "\n"
  "#, c-format\n"
  "msgid \"No server is running as pipe “%s” (%s)\"\n"
  "msgstr \"Als Pipe „%s“ läuft kein Server (%s)\"\n"
  "\n"
  "#, c-format\n"
  "msgid \"Client %<PRIu64> of pipe “%s”\"\n"
  "msgstr \"Client %<PRIu64> von Pipe „%s“\"\n"
  "\n"
  "#, c-format\n"
  "msgid \"%s: the request was dropped without an answer\"\n"
  "msgstr \"%s: Die Anfrage wurde ohne Antwort verworfen\"\n";

static char *locale_dir;

static void
build_catalog (void)
{
  const char *msgfmt = g_getenv ("MSGFMT");
  g_autoptr(GError) error = NULL;
  g_autofree char *po = NULL;
  g_autofree char *messages_dir = NULL;
  g_autofree char *mo = NULL;
  int status;

  g_assert_nonnull (msgfmt);
  locale_dir = g_dir_make_tmp ("np-i18n-XXXXXX", &error);
  g_assert_no_error (error);

  po = g_build_filename (locale_dir, "np-1.0.po", NULL);
  g_assert_true (g_file_set_contents (po, catalog, -1, &error));
  g_assert_no_error (error);

  messages_dir = g_build_filename (locale_dir, "de", "LC_MESSAGES", NULL);
  g_assert_cmpint (g_mkdir_with_parents (messages_dir, 0700), ==, 0);
  mo = g_build_filename (messages_dir, "np-1.0.mo", NULL);

  {
    const char *argv[] = { msgfmt, "--check", "-o", mo, po, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 NULL, NULL, &status, &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, &error));
    g_assert_no_error (error);
  }

  g_unlink (po);
  g_setenv ("NP_LOCALEDIR", locale_dir, TRUE);
}

static void
remove_catalog (void)
{
  g_autofree char *mo = g_build_filename (locale_dir, "de", "LC_MESSAGES", "np-1.0.mo", NULL);
  g_autofree char *messages_dir = g_path_get_dirname (mo);
  g_autofree char *lang_dir = g_path_get_dirname (messages_dir);

  g_unlink (mo);
  g_rmdir (messages_dir);
  g_rmdir (lang_dir);
  g_rmdir (locale_dir);
  g_free (locale_dir);
}

static gboolean
drop_request_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  /* Taken, and freed unanswered when the emission ends. */
  return TRUE;
}

/* The first error the library makes, before any of its objects exists:
 * the domain is bound by the error quark. */
static void
test_not_found (void)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new ("np-test-nobody-here");
  g_autoptr(GError) error = NULL;

  g_assert_false (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "Als Pipe „np-test-nobody-here“ läuft kein Server ("));
}

/* A message built of two translated ones: the label of the connection
 * and what happened to the request, as the requester gets it. */
static void
test_request_dropped (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GBytes) message = g_bytes_new_static ("x", 1);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;

  g_signal_connect (server, "request-received", G_CALLBACK (drop_request_cb), NULL);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  client = np_pipe_client_new (np_pipe_server_get_name (server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (client, result, &error);
  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
  g_test_message ("%s", error->message);
  expected = g_strdup_printf ("Client 1 von Pipe „%s“: Die Anfrage wurde ohne Antwort verworfen",
                              np_pipe_server_get_name (server));
  g_assert_cmpstr (error->message, ==, expected);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  /* Before anything reaches the library, which reads NP_LOCALEDIR once. */
  build_catalog ();
  setlocale (LC_ALL, "");
  runtime_dir = np_test_runtime_dir_new ("np-i18n-run-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/I18n/not-found", test_not_found);
  g_test_add_func ("/Np/I18n/request-dropped", test_request_dropped);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);
  remove_catalog ();

  return ret;
}
