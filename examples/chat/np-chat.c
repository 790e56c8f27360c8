/* np-chat.c: a small chat over Np; the server relays every message to all
 * the other clients. Talks to np-chat.py and np-chat.js as well.
 *
 *   np-chat server [NAME]          serve until Ctrl-C
 *   np-chat client [NAME] [NICK]   send each line of stdin; print what comes
 *
 * A client line starting with "/" is a command, sent as a request that
 * the server answers: "/who" lists the clients connected, one per line.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <np/np.h>

#define DEFAULT_NAME "np-chat"

static GMainLoop *loop;
static int exit_status;

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* Server */

static void
on_client_connected (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     gpointer          user_data)
{
  printf ("joined: client %" G_GUINT64_FORMAT " (pid %d)\n",
          np_pipe_connection_get_id (connection), np_pipe_connection_get_peer_pid (connection));
}

static void
on_message_received (NpPipeServer     *server,
                     NpPipeConnection *sender,
                     GBytes           *message,
                     gpointer          user_data)
{
  GListModel *connections = np_pipe_server_get_connections (server);
  gsize size;
  const char *text = g_bytes_get_data (message, &size);

  printf ("client %" G_GUINT64_FORMAT ": %.*s\n", np_pipe_connection_get_id (sender), (int) size, text);

  for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
    {
      g_autoptr(NpPipeConnection) connection = g_list_model_get_item (connections, i);

      if (connection != sender)
        np_pipe_connection_send (connection, message, NULL);
    }
}

/* Answers "/who" with the clients connected, in the order they came:
 *
 *   who: 2 connected
 *   client 1 (pid 4242)
 *   client 2 (pid 4243, you)
 */
static gboolean
on_request_received (NpPipeServer     *server,
                     NpPipeConnection *asker,
                     NpPipeRequest    *request,
                     gpointer          user_data)
{
  GListModel *connections = np_pipe_server_get_connections (server);
  guint n = g_list_model_get_n_items (connections);
  gsize size;
  const char *command = g_bytes_get_data (np_pipe_request_get_message (request), &size);
  g_autoptr(GString) reply = NULL;

  printf ("client %" G_GUINT64_FORMAT " asks: %.*s\n",
          np_pipe_connection_get_id (asker), (int) size, command);

  if (size != 4 || memcmp (command, "/who", 4) != 0)
    {
      g_autofree char *what = g_strdup_printf ("unknown command “%.*s”; try /who",
                                               (int) size, command);

      np_pipe_request_reply_error_literal (request, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                                           what);
      return TRUE;
    }

  reply = g_string_new (NULL);
  g_string_append_printf (reply, "who: %u connected", n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(NpPipeConnection) connection = g_list_model_get_item (connections, i);

      g_string_append_printf (reply, "\nclient %" G_GUINT64_FORMAT " (pid %d%s)",
                              np_pipe_connection_get_id (connection),
                              np_pipe_connection_get_peer_pid (connection),
                              connection == asker ? ", you" : "");
    }

  np_pipe_request_reply_data (request, (const guint8 *) reply->str, reply->len);
  return TRUE;
}

static void
on_client_disconnected (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        gpointer          user_data)
{
  printf ("left: client %" G_GUINT64_FORMAT "%s%s\n", np_pipe_connection_get_id (connection),
          error ? ": " : "", error ? error->message : "");
}

static int
run_server (const char *name)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GError) error = NULL;

  g_signal_connect (server, "client-connected", G_CALLBACK (on_client_connected), NULL);
  g_signal_connect (server, "message-received", G_CALLBACK (on_message_received), NULL);
  g_signal_connect (server, "request-received", G_CALLBACK (on_request_received), NULL);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (on_client_disconnected), NULL);

  if (!np_pipe_server_start (server, &error))
    {
      g_printerr ("np-chat: %s\n", error->message);
      return 1;
    }

  printf ("listening on %s\n", np_pipe_server_get_name (server));
  g_unix_signal_add (SIGINT, quit_cb, NULL);
  g_unix_signal_add (SIGTERM, quit_cb, NULL);
  g_main_loop_run (loop);
  np_pipe_server_stop (server);

  return 0;
}

/* Client */

typedef struct
{
  NpPipeClient     *client;
  GDataInputStream *input;
  const char       *nick;
  guint             n_pending;  /* commands waiting for their answer */
  gboolean          input_done;
} Chat;

static void read_next_line (Chat *chat);

/* Closes once the input is over and every command has its answer. */
static void
close_when_done (Chat *chat)
{
  if (chat->input_done && chat->n_pending == 0)
    np_pipe_client_close (chat->client, NULL, NULL);  /* writes out what is queued */
}

static void
command_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Chat *chat = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = np_pipe_client_request_finish (chat->client, result, &error);

  if (reply != NULL)
    {
      gsize size;
      const char *text = g_bytes_get_data (reply, &size);

      printf ("%.*s\n", (int) size, text);
    }
  else
    g_printerr ("np-chat: %s\n", error->message);

  chat->n_pending--;
  close_when_done (chat);
}

static void
line_read_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Chat *chat = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (chat->input, result, NULL, &error);
  g_autofree char *text = NULL;

  if (line == NULL)
    {
      if (error != NULL)
        g_printerr ("np-chat: %s\n", error->message);
      chat->input_done = TRUE;
      close_when_done (chat);
      return;
    }

  if (line[0] == '/')
    {
      g_autoptr(GBytes) command = g_bytes_new (line, strlen (line));

      chat->n_pending++;
      np_pipe_client_request_async (chat->client, command, NULL, command_done_cb, chat);
      read_next_line (chat);
      return;
    }

  text = g_strdup_printf ("%s: %s", chat->nick, line);
  if (!np_pipe_client_send_data (chat->client, (const guint8 *) text, strlen (text), &error))
    {
      g_printerr ("np-chat: %s\n", error->message);
      exit_status = 1;
      g_main_loop_quit (loop);
      return;
    }

  read_next_line (chat);
}

static void
read_next_line (Chat *chat)
{
  g_data_input_stream_read_line_async (chat->input, G_PRIORITY_DEFAULT, NULL, line_read_cb, chat);
}

static void
on_chat_message (NpPipeClient *client,
                 GBytes       *message,
                 gpointer      user_data)
{
  gsize size;
  const char *text = g_bytes_get_data (message, &size);

  printf ("%.*s\n", (int) size, text);
}

static void
on_chat_disconnected (NpPipeClient *client,
                      GError       *error,
                      gpointer      user_data)
{
  if (error != NULL)
    {
      g_printerr ("np-chat: %s\n", error->message);
      exit_status = 1;
    }
  g_idle_add (quit_cb, NULL);
}

static int
run_client (const char *name,
            const char *nick)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GInputStream) stdin_stream = g_unix_input_stream_new (STDIN_FILENO, FALSE);
  g_autoptr(GDataInputStream) input = g_data_input_stream_new (stdin_stream);
  g_autoptr(GError) error = NULL;
  Chat chat = { client, input, nick, 0, FALSE };

  g_signal_connect (client, "message-received", G_CALLBACK (on_chat_message), NULL);
  g_signal_connect (client, "disconnected", G_CALLBACK (on_chat_disconnected), NULL);

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    {
      g_printerr ("np-chat: %s\n", error->message);
      return 1;
    }

  read_next_line (&chat);
  g_main_loop_run (loop);

  return exit_status;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GMainLoop) main_loop = g_main_loop_new (NULL, FALSE);
  const char *name = argc > 2 ? argv[2] : DEFAULT_NAME;

  setlocale (LC_ALL, "");

  /* One line at a time, whatever stdout is. */
  setvbuf (stdout, NULL, _IOLBF, 0);
  loop = main_loop;

  if (argc >= 2 && argc <= 3 && g_str_equal (argv[1], "server"))
    return run_server (name);
  if (argc >= 2 && argc <= 4 && g_str_equal (argv[1], "client"))
    return run_client (name, argc > 3 ? argv[3] : g_get_user_name ());

  g_printerr ("Usage: %s server [NAME] | client [NAME] [NICK]\n", argv[0]);
  return 2;
}
