/* test-activation.c: a server started on demand by systemd's socket
 * activation, for real, through systemd-socket-activate
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gstdio.h>

#include "np-test-util.h"

static void
record_message_cb (NpPipeClient  *client,
                   GBytes        *message,
                   GBytes       **out)
{
  *out = g_bytes_ref (message);
}

static char *
read_stderr_line (GSubprocess *process)
{
  g_autoptr(GDataInputStream) err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));
  char *line = NULL;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (err), FALSE);
  g_data_input_stream_read_line_async (err, G_PRIORITY_DEFAULT, NULL, np_test_line_cb, &line);
  WAIT_UNTIL (line != NULL);

  return line;
}

/* The first client's connect starts the server, which adopts the socket
 * it was passed: the connect completes and the message is answered. The
 * server leaves no LISTEN_* variable to its children, and the socket file
 * stays with the service manager when the server stops. */
static void
test_socket_activation (void)
{
  g_autofree char *activate = g_find_program_in_path ("systemd-socket-activate");
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autofree char *name = g_strdup_printf ("activated-%u", g_random_int ());
  g_autofree char *dir = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *listen_arg = NULL;
  g_autofree char *fdname_arg = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GSubprocess) manager = NULL;
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) message = g_bytes_new_static ("started on demand", 17);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  if (activate == NULL)
    {
      g_test_skip ("systemd-socket-activate is not installed (Debian package systemd)");
      return;
    }

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  listen_arg = g_strdup_printf ("--listen=%s", path);
  fdname_arg = g_strdup_printf ("--fdname=%s", name);
  manager = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                              G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                              activate, listen_arg, fdname_arg, "--setenv=XDG_RUNTIME_DIR",
                              peer, "serve", name, NULL);
  g_assert_no_error (error);

  /* It listens; nothing of ours runs yet. */
  line = read_stderr_line (manager);
  g_assert_true (g_str_has_prefix (line, "Listening on "));

  client = np_pipe_client_new (name);
  g_signal_connect (client, "message-received", G_CALLBACK (record_message_cb), &reply);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (client, result, &error));
  g_assert_no_error (error);

  g_clear_pointer (&line, g_free);
  line = np_test_read_line (manager);
  g_assert_cmpstr (line, ==, "ready");

  g_assert_true (np_pipe_client_send (client, message, &error));
  WAIT_UNTIL (reply != NULL);
  g_assert_true (g_bytes_equal (reply, message));
  np_pipe_client_close (client, NULL, NULL);

  /* A second server of that name is refused while the first runs. */
  {
    g_autoptr(NpPipeServer) second = np_pipe_server_new (name);

    g_assert_false (np_pipe_server_start (second, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
    g_clear_error (&error);
  }

  g_output_stream_close (g_subprocess_get_stdin_pipe (manager), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (manager, NULL, &error));
  g_assert_no_error (error);

  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_unlink (path);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-activation-XXXXXX");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Activation/systemd-socket-activate", test_socket_activation);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
