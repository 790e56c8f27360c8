/* np-pipe-demo.c: "np-pipe demo", a server process and three client
 * processes walking through the five flows of a pipe server, printing each
 * as it happens
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   np-pipe demo                 run the server; it starts the clients
 *   np-pipe demo --client NAME   run one client (started by the server)
 *
 * The server tells each client the id of its connection in a first
 * message, so that both sides call a client by the same number.
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include <np/np.h>

#include "np-pipe-tool.h"

#define N_CLIENTS  3
#define BIG_SIZE   (1024 * 1024)

#define WELCOME     "you are client "
#define STAY        "; stay connected until the server stops"

static void say (const char *who,
                 const char *format,
                 ...) G_GNUC_PRINTF (2, 3);

/* One line at a time, flushed, so the four processes' lines interleave
 * in the order things happen. */
static void
say (const char *who,
     const char *format,
     ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);

  np_tool_print ("%-10s %s\n", who, line);
}

/* Server */

typedef struct
{
  NpPipeServer *server;
  GMainLoop    *loop;
  guint         n_connected;
  guint         n_disconnected;
  guint         n_messages;
  guint         n_big_messages;
  guint64       n_bytes;
  guint         n_children_running;
  gboolean      failed;
} Server;

/* Once two clients left by themselves and the third one's large message
 * is in, stop the server with that client still connected. */
static void
server_maybe_stop (Server *s)
{
  if (s->n_disconnected == N_CLIENTS - 1 && s->n_big_messages == N_CLIENTS &&
      np_pipe_server_is_running (s->server))
    {
      say ("[server]", "Flow 5: stopping the server with %u client still connected",
           np_pipe_server_get_n_connections (s->server));
      np_pipe_server_stop (s->server);
      say ("[server]", "Flow 5: stopped; the socket file is gone");
    }
}

static void
server_client_connected (NpPipeServer     *server,
                         NpPipeConnection *connection,
                         Server           *s)
{
  guint64 id = np_pipe_connection_get_id (connection);
  g_autofree char *welcome = NULL;
  g_autoptr(GBytes) message = NULL;

  s->n_connected++;
  say ("[server]", "Flow 2: client %" G_GUINT64_FORMAT " connected (pid %d, uid %u); %u connected now",
       id,
       np_pipe_connection_get_peer_pid (connection),
       np_pipe_connection_get_peer_uid (connection),
       np_pipe_server_get_n_connections (server));

  /* The last one in stays for flow 5. */
  welcome = g_strdup_printf (WELCOME "%" G_GUINT64_FORMAT "%s",
                             id, s->n_connected == N_CLIENTS ? STAY : "");
  message = g_bytes_new (welcome, strlen (welcome));
  np_pipe_connection_send (connection, message, NULL);

  if (s->n_connected == N_CLIENTS)
    {
      g_autoptr(GBytes) go = g_bytes_new_static ("go", 2);

      say ("[server]", "All %u clients are in: broadcasting “go”", N_CLIENTS);
      np_pipe_server_broadcast (server, go);
    }
}

static void
server_message_received (NpPipeServer     *server,
                         NpPipeConnection *connection,
                         GBytes           *message,
                         Server           *s)
{
  guint64 id = np_pipe_connection_get_id (connection);
  gsize size = g_bytes_get_size (message);
  g_autoptr(GBytes) reply = NULL;

  s->n_messages++;
  s->n_bytes += size;

  if (size == BIG_SIZE)
    {
      say ("[server]", "Flow 3: client %" G_GUINT64_FORMAT " sent %" G_GSIZE_FORMAT
           " bytes, more than one read takes; they arrived as one whole message",
           id, size);
      {
        g_autofree char *text = g_strdup_printf ("got your %" G_GSIZE_FORMAT " bytes", size);

        reply = g_bytes_new (text, strlen (text));
        np_pipe_connection_send (connection, reply, NULL);
      }
      s->n_big_messages++;
      server_maybe_stop (s);
      return;
    }

  say ("[server]", "Flow 3: client %" G_GUINT64_FORMAT " says “%.*s”; relaying it to the others",
       id, (int) size, (const char *) g_bytes_get_data (message, NULL));

  /* Relay to every other client. */
  {
    GListModel *connections = np_pipe_server_get_connections (server);
    g_autofree char *text = g_strdup_printf ("client %" G_GUINT64_FORMAT " says: %.*s",
                                             id, (int) size,
                                             (const char *) g_bytes_get_data (message, NULL));

    reply = g_bytes_new (text, strlen (text));

    for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
      {
        g_autoptr(NpPipeConnection) other = g_list_model_get_item (connections, i);

        if (other != connection)
          np_pipe_connection_send (other, reply, NULL);
      }
  }
}

static void
server_client_disconnected (NpPipeServer     *server,
                            NpPipeConnection *connection,
                            GError           *error,
                            Server           *s)
{
  s->n_disconnected++;
  say ("[server]", "Flow 4: client %" G_GUINT64_FORMAT " disconnected (%s); %u connected now",
       np_pipe_connection_get_id (connection),
       error ? error->message : "clean close",
       np_pipe_server_get_n_connections (server));

  if (error != NULL)
    s->failed = TRUE;

  server_maybe_stop (s);
}

static void
child_exited (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Server *s = user_data;
  GSubprocess *child = G_SUBPROCESS (object);

  if (!g_subprocess_wait_check_finish (child, result, NULL))
    s->failed = TRUE;

  if (--s->n_children_running == 0)
    g_main_loop_quit (s->loop);
}

static int
run_server (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  Server s = { server, loop };

  g_signal_connect (server, "client-connected", G_CALLBACK (server_client_connected), &s);
  g_signal_connect (server, "message-received", G_CALLBACK (server_message_received), &s);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (server_client_disconnected), &s);

  if (!np_pipe_server_start (server, &error))
    {
      np_tool_warn ("%s", error->message);
      return 1;
    }

  say ("[server]", "Flow 1: started pipe “%s” on %s (pid %d)",
       np_pipe_server_get_name (server), np_pipe_server_get_path (server), (int) getpid ());

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      g_autoptr(GSubprocess) child = NULL;

      child = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error,
                                np_tool_self_path, "demo", "--client",
                                np_pipe_server_get_name (server),
                                NULL);
      if (child == NULL)
        {
          np_tool_warn (_("cannot start a client: %s"), error->message);
          return 1;
        }

      s.n_children_running++;
      g_subprocess_wait_check_async (child, NULL, child_exited, &s);
    }

  g_main_loop_run (loop);

  say ("[server]", "Summary: %u clients connected, %u disconnected, %u messages (%" G_GUINT64_FORMAT
       " bytes) received%s",
       s.n_connected, s.n_disconnected, s.n_messages, s.n_bytes,
       s.failed ? "; SOMETHING FAILED" : "; all flows done");

  return s.failed || s.n_disconnected != N_CLIENTS ? 1 : 0;
}

/* Client */

typedef struct
{
  NpPipeClient *client;
  GMainLoop    *loop;
  const char   *name;
  char         *who;
  guint64       id;
  gboolean      stays;
  gboolean      acked;
  gboolean      failed;
} Client;

/* The server's first message: the id it gave us, which we go by. */
static gboolean
client_take_id (Client     *c,
                const char *text,
                gsize       size)
{
  g_autofree char *welcome = g_strndup (text, size);
  const char *number = welcome + strlen (WELCOME);
  char *end = NULL;

  if (!g_str_has_prefix (welcome, WELCOME))
    return FALSE;

  c->id = g_ascii_strtoull (number, &end, 10);
  if (c->id == 0 || end == number || (*end != '\0' && !g_str_equal (end, STAY)))
    return FALSE;

  c->stays = *end != '\0';
  g_free (c->who);
  c->who = g_strdup_printf ("[client %" G_GUINT64_FORMAT "]", c->id);
  say (c->who, "Flow 2: connected to pipe “%s” (pid %d); the server calls me client %" G_GUINT64_FORMAT,
       c->name, (int) getpid (), c->id);

  return TRUE;
}

static void
client_message_received (NpPipeClient *client,
                         GBytes       *message,
                         Client       *c)
{
  gsize size;
  const char *text = g_bytes_get_data (message, &size);
  g_autoptr(GError) error = NULL;

  if (c->id == 0)
    {
      if (!client_take_id (c, text, size))
        {
          say (c->who, "expected my id first, received “%.*s”", (int) size, text);
          c->failed = TRUE;
          g_main_loop_quit (c->loop);
        }
      return;
    }

  say (c->who, "received “%.*s”", (int) size, text);

  if (size == 2 && memcmp (text, "go", 2) == 0)
    {
      g_autofree char *hello = g_strdup_printf ("hello from process %d", (int) getpid ());
      g_autoptr(GBytes) small = g_bytes_new (hello, strlen (hello));
      g_autoptr(GBytes) big = NULL;
      guint8 *data = g_malloc (BIG_SIZE);

      memset (data, 'a' + c->id % 26, BIG_SIZE);
      big = g_bytes_new_take (data, BIG_SIZE);

      say (c->who, "Flow 3: sending “%s” and a message of %d bytes", hello, BIG_SIZE);
      if (!np_pipe_client_send (client, small, &error) ||
          !np_pipe_client_send (client, big, &error))
        {
          say (c->who, "send failed: %s", error->message);
          c->failed = TRUE;
          g_main_loop_quit (c->loop);
        }
      return;
    }

  if (size >= 8 && memcmp (text, "got your", 8) == 0)
    {
      c->acked = TRUE;

      if (!c->stays)
        {
          say (c->who, "Flow 4: done, closing");
          np_pipe_client_close (client, NULL, NULL);
        }
      else
        say (c->who, "Flow 5: staying connected until the server stops");
    }
}

static void
client_disconnected (NpPipeClient *client,
                     GError       *error,
                     Client       *c)
{
  say (c->who, "disconnected (%s)", error ? error->message : "clean close");
  if (error != NULL || !c->acked)
    c->failed = TRUE;
  g_main_loop_quit (c->loop);
}

static int
run_client (const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  Client c = { client, loop, name, g_strdup ("[client ?]") };

  g_signal_connect (client, "message-received", G_CALLBACK (client_message_received), &c);
  g_signal_connect (client, "disconnected", G_CALLBACK (client_disconnected), &c);

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    {
      say (c.who, "cannot connect: %s", error->message);
      g_free (c.who);
      return 1;
    }

  g_main_loop_run (loop);

  g_signal_handlers_disconnect_by_data (client, &c);
  g_free (c.who);

  return c.failed ? 1 : 0;
}

int
np_tool_run_demo (int    argc,
                  char **argv)
{
  if (argc == 3 && g_str_equal (argv[1], "--client"))
    return run_client (argv[2]);

  if (argc != 1)
    {
      g_printerr (_("Usage:\n  np-pipe demo\n\n"
                    "Start a server process and three client processes and show the\n"
                    "five flows of a pipe server as they happen.\n"));
      return argc == 2 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")) ? 0 : 2;
    }

  return run_server ();
}
