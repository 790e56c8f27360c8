/* np-pipe.c: listen on, send to, list and ping Np pipes
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <np/np.h>

#include "np-pipe-tool.h"

#define EXIT_USAGE 2

/* Output */

char *np_tool_self_path;

static gboolean stdout_broken;
static GMainLoop *main_loop;

/* Writes to stdout; a reader that went away (`| head`) ends the program
 * quietly. */
gboolean
np_tool_write (const void *data,
               gsize       len)
{
  if (stdout_broken)
    return FALSE;

  if ((len > 0 && fwrite (data, 1, len, stdout) != len) || fflush (stdout) != 0)
    {
      stdout_broken = TRUE;
      if (main_loop != NULL)
        g_main_loop_quit (main_loop);
      return FALSE;
    }

  return TRUE;
}

gboolean
np_tool_print (const char *format,
               ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);

  return np_tool_write (line, strlen (line));
}

static int
fail (const char *format,
      ...) G_GNUC_PRINTF (1, 2);

static int
fail (const char *format,
      ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_printerr ("np-pipe: %s\n", message);
  return EXIT_FAILURE;
}

static int
usage_error (GOptionContext *context,
             const char     *message)
{
  g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

  g_printerr ("np-pipe: %s\n\n%s", message, help);
  return EXIT_USAGE;
}

static gboolean
is_printable_text (const char *data,
                   gsize       len)
{
  const char *end = data + len;

  if (!g_utf8_validate_len (data, len, NULL))
    return FALSE;

  for (const char *p = data; p < end; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (!g_unichar_isprint (c) && c != '\t')
        return FALSE;
    }

  return TRUE;
}

/* Prints "PREFIX: text", or a hex dump when the message is not printable
 * UTF-8 on one line (or @hex). */
void
np_tool_print_message (const char *prefix,
                       GBytes     *message,
                       gboolean    hex)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);

  if (!hex && is_printable_text ((const char *) data, len))
    {
      np_tool_print ("%s: %.*s\n", prefix, (int) len, (const char *) data);
      return;
    }

  np_tool_print ("%s: %" G_GSIZE_FORMAT " bytes\n", prefix, len);

  for (gsize offset = 0; offset < len && !stdout_broken; offset += 16)
    {
      GString *line = g_string_new (NULL);
      gsize n = MIN (16, len - offset);

      g_string_append_printf (line, "  %08" G_GSIZE_MODIFIER "x ", offset);
      for (gsize i = 0; i < 16; i++)
        {
          if (i == 8)
            g_string_append_c (line, ' ');
          if (i < n)
            g_string_append_printf (line, " %02x", data[offset + i]);
          else
            g_string_append (line, "   ");
        }
      g_string_append (line, "  |");
      for (gsize i = 0; i < n; i++)
        g_string_append_c (line, g_ascii_isprint (data[offset + i]) ? data[offset + i] : '.');
      g_string_append (line, "|\n");

      np_tool_write (line->str, line->len);
      g_string_free (line, TRUE);
    }
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (main_loop);
  return G_SOURCE_CONTINUE;
}

/* The reader of our stdout went away while we had nothing to write. */
static gboolean
stdout_gone_cb (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  stdout_broken = TRUE;
  g_main_loop_quit (main_loop);
  return G_SOURCE_REMOVE;
}

/* Progress on stderr, only when a person is watching it. */
static gboolean progress_shown;

static void
show_progress (const char *format,
               ...) G_GNUC_PRINTF (1, 2);

static void
show_progress (const char *format,
               ...)
{
  g_autofree char *text = NULL;
  va_list args;

  if (!isatty (STDERR_FILENO))
    return;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "\r\033[K%s", text);
  progress_shown = TRUE;
}

static void
end_progress (void)
{
  if (progress_shown)
    fprintf (stderr, "\r\033[K");
  progress_shown = FALSE;
}

/* listen */

typedef struct
{
  gboolean echo;
  gboolean broadcast;
  gboolean hex;
  gboolean raw;
} ListenOptions;

static void
listen_client_connected (NpPipeServer     *server,
                         NpPipeConnection *connection,
                         ListenOptions    *options)
{
  g_autofree char *line = g_strdup_printf ("client %" G_GUINT64_FORMAT " connected (pid %d, uid %u)\n",
                                           np_pipe_connection_get_id (connection),
                                           np_pipe_connection_get_peer_pid (connection),
                                           np_pipe_connection_get_peer_uid (connection));

  if (options->raw)
    g_printerr ("%s", line);
  else
    np_tool_write (line, strlen (line));
}

static void
listen_message_received (NpPipeServer     *server,
                         NpPipeConnection *sender,
                         GBytes           *message,
                         ListenOptions    *options)
{
  g_autoptr(GError) error = NULL;

  if (options->raw)
    {
      np_tool_write (g_bytes_get_data (message, NULL), g_bytes_get_size (message));
    }
  else
    {
      g_autofree char *prefix = g_strdup_printf ("client %" G_GUINT64_FORMAT,
                                                 np_pipe_connection_get_id (sender));

      np_tool_print_message (prefix, message, options->hex);
    }

  if (options->echo && !np_pipe_connection_send (sender, message, &error))
    g_printerr ("np-pipe: %s\n", error->message);

  if (options->broadcast)
    {
      GListModel *connections = np_pipe_server_get_connections (server);

      for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
        {
          g_autoptr(NpPipeConnection) other = g_list_model_get_item (connections, i);
          g_autoptr(GError) relay_error = NULL;

          if (other != sender && !np_pipe_connection_send (other, message, &relay_error))
            g_printerr ("np-pipe: %s\n", relay_error->message);
        }
    }
}

static void
listen_client_disconnected (NpPipeServer     *server,
                            NpPipeConnection *connection,
                            GError           *error,
                            ListenOptions    *options)
{
  g_autofree char *line = g_strdup_printf ("client %" G_GUINT64_FORMAT " disconnected%s%s\n",
                                           np_pipe_connection_get_id (connection),
                                           error ? ": " : "", error ? error->message : "");

  if (options->raw)
    g_printerr ("%s", line);
  else
    np_tool_write (line, strlen (line));
}

static int
run_listen (int    argc,
            char **argv)
{
  ListenOptions options = { 0 };
  guint max_message_size = 0;
  g_autoptr(GOptionContext) context = g_option_context_new ("[NAME]");
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GError) error = NULL;
  const GOptionEntry entries[] = {
    { "echo", 'e', 0, G_OPTION_ARG_NONE, &options.echo, "Send each message back to its sender", NULL },
    { "broadcast", 'b', 0, G_OPTION_ARG_NONE, &options.broadcast, "Relay each message to all other clients", NULL },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &options.hex, "Print every message as a hex dump", NULL },
    { "raw", 'r', 0, G_OPTION_ARG_NONE, &options.raw, "Write the messages' bytes, unframed, to stdout; events go to stderr", NULL },
    { "max-message-size", 'm', 0, G_OPTION_ARG_INT, &max_message_size, "Largest message accepted, in bytes (default 16 MiB)", "BYTES" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Start a server (under a generated name when none is given)\n"
                                "and print one line per event.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, error->message);
  if (argc > 2)
    return usage_error (context, "listen takes at most one NAME");
  if (options.raw && options.hex)
    return usage_error (context, "--raw and --hex do not go together");

  server = np_pipe_server_new (argc == 2 ? argv[1] : NULL);
  if (max_message_size > 0)
    np_pipe_server_set_max_message_size (server, max_message_size);

  g_signal_connect (server, "client-connected", G_CALLBACK (listen_client_connected), &options);
  g_signal_connect (server, "message-received", G_CALLBACK (listen_message_received), &options);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (listen_client_disconnected), &options);

  if (!np_pipe_server_start (server, &error))
    return fail ("%s", error->message);

  {
    g_autofree char *line = g_strdup_printf ("Listening as pipe “%s” on %s\n",
                                             np_pipe_server_get_name (server),
                                             np_pipe_server_get_path (server));
    if (options.raw)
      g_printerr ("%s", line);
    else
      np_tool_write (line, strlen (line));
  }

  g_unix_signal_add (SIGINT, quit_cb, NULL);
  g_unix_signal_add (SIGTERM, quit_cb, NULL);
  g_unix_fd_add (STDOUT_FILENO, G_IO_ERR | G_IO_HUP, stdout_gone_cb, NULL);
  if (!stdout_broken)
    g_main_loop_run (main_loop);

  /* Reports each client it disconnects; removes the socket file. */
  np_pipe_server_stop (server);

  return EXIT_SUCCESS;
}

/* send */

typedef struct
{
  NpPipeClient     *client;
  GDataInputStream *input;
  char              separator;
  int               wait;
  int               replies;
  gboolean          sending_done;
  gboolean          failed;
  guint64           total_bytes;
  guint             progress_id;
} Send;

static void
send_finish_if_done (Send *s)
{
  if (s->sending_done && (s->replies >= s->wait || s->failed))
    g_main_loop_quit (main_loop);
}

static void
send_message_received (NpPipeClient *client,
                       GBytes       *message,
                       Send         *s)
{
  if (s->replies >= s->wait)
    return;

  s->replies++;
  np_tool_print_message ("reply", message, FALSE);
  send_finish_if_done (s);
}

static void
send_disconnected (NpPipeClient *client,
                   GError       *error,
                   Send         *s)
{
  if (error != NULL)
    {
      g_printerr ("np-pipe: %s\n", error->message);
      s->failed = TRUE;
    }
  else if (!s->sending_done)
    {
      g_printerr ("np-pipe: pipe “%s”: the server closed the connection before "
                  "everything was sent\n", np_pipe_client_get_name (client));
      s->failed = TRUE;
    }

  /* Fewer replies than --wait asked for is no failure: "up to N". */
  s->sending_done = TRUE;
  s->wait = s->replies;
  g_main_loop_quit (main_loop);
}

static gboolean
send_one (Send         *s,
          const guint8 *data,
          gsize         len)
{
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_send_data (s->client, data, len, &error))
    {
      g_printerr ("np-pipe: %s\n", error->message);
      s->failed = TRUE;
      return FALSE;
    }

  s->total_bytes += len;
  return TRUE;
}

static gboolean
send_progress_cb (gpointer user_data)
{
  Send *s = user_data;
  guint64 queued = np_pipe_client_get_queued_bytes (s->client);
  guint64 done = s->total_bytes > queued ? s->total_bytes - queued : 0;

  show_progress ("sending: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " KiB (%d%%)",
                 done / 1024, s->total_bytes / 1024,
                 s->total_bytes ? (int) (done * 100 / s->total_bytes) : 100);

  return G_SOURCE_CONTINUE;
}

static void
send_flushed_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Send *s = user_data;
  g_autoptr(GError) error = NULL;

  g_clear_handle_id (&s->progress_id, g_source_remove);
  end_progress ();

  if (!np_pipe_client_flush_finish (s->client, result, &error))
    {
      if (!s->failed)
        g_printerr ("np-pipe: %s\n", error->message);
      s->failed = TRUE;
    }

  s->sending_done = TRUE;
  send_finish_if_done (s);
}

/* Everything is queued: write it out from the loop, with progress. */
static void
send_all_queued (Send *s)
{
  if (s->failed)
    {
      s->sending_done = TRUE;
      g_main_loop_quit (main_loop);
      return;
    }

  if (isatty (STDERR_FILENO) && np_pipe_client_get_queued_bytes (s->client) > 1024 * 1024)
    s->progress_id = g_timeout_add (100, send_progress_cb, s);

  np_pipe_client_flush_async (s->client, NULL, send_flushed_cb, s);
}

static void read_next_record (Send *s);

static void
record_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Send *s = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *record = NULL;
  gsize len = 0;

  if (s->separator == '\n')
    record = g_data_input_stream_read_line_finish (s->input, result, &len, &error);
  else
    {
      record = g_data_input_stream_read_upto_finish (s->input, result, &len, &error);
      /* Skip the separator; at the end of input there is none. */
      if (record != NULL)
        g_data_input_stream_read_byte (s->input, NULL, NULL);
    }

  if (error != NULL)
    {
      g_printerr ("np-pipe: reading standard input: %s\n", error->message);
      s->failed = TRUE;
    }

  if (record == NULL)
    {
      send_all_queued (s);
      return;
    }

  if (send_one (s, (const guint8 *) record, len))
    read_next_record (s);
  else
    send_all_queued (s);
}

static void
read_next_record (Send *s)
{
  if (s->separator == '\n')
    g_data_input_stream_read_line_async (s->input, G_PRIORITY_DEFAULT, NULL, record_read_cb, s);
  else
    g_data_input_stream_read_upto_async (s->input, "", 1, G_PRIORITY_DEFAULT, NULL, record_read_cb, s);
}

static int
run_send (int    argc,
          char **argv)
{
  gboolean null_separated = FALSE;
  g_autofree char *file = NULL;
  int wait = 0;
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME [MESSAGE…]");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stdin_stream = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  Send s = { 0 };
  const GOptionEntry entries[] = {
    { "null", '0', 0, G_OPTION_ARG_NONE, &null_separated, "Read NUL-separated messages from stdin instead of lines", NULL },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "Send the whole FILE as one message", "FILE" },
    { "wait", 'w', 0, G_OPTION_ARG_INT, &wait, "Print up to N replies before closing", "N" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Connect and send each MESSAGE as one message; with no MESSAGE\n"
                                "and no --file, each line of stdin is one message.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, error->message);
  if (argc < 2)
    return usage_error (context, "send needs the NAME of a pipe");
  if (wait < 0)
    return usage_error (context, "--wait takes a number of replies, 0 or more");
  if (file != NULL && (argc > 2 || null_separated))
    return usage_error (context, "--file goes with neither MESSAGE arguments nor --null");
  if (null_separated && argc > 2)
    return usage_error (context, "--null reads stdin, so it takes no MESSAGE arguments");

  client = np_pipe_client_new (argv[1]);
  s.client = client;
  s.wait = wait;
  s.separator = null_separated ? '\0' : '\n';
  g_signal_connect (client, "message-received", G_CALLBACK (send_message_received), &s);
  g_signal_connect (client, "disconnected", G_CALLBACK (send_disconnected), &s);

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return fail ("%s", error->message);

  if (file != NULL)
    {
      g_autoptr(GMappedFile) mapped = g_mapped_file_new (file, FALSE, &error);
      g_autoptr(GBytes) bytes = NULL;

      if (mapped == NULL)
        return fail ("%s", error->message);

      bytes = g_mapped_file_get_bytes (mapped);
      if (!np_pipe_client_send (client, bytes, &error))
        {
          g_printerr ("np-pipe: %s\n", error->message);
          s.failed = TRUE;
        }
      s.total_bytes = g_bytes_get_size (bytes);
      send_all_queued (&s);
    }
  else if (argc > 2)
    {
      for (int i = 2; i < argc && send_one (&s, (const guint8 *) argv[i], strlen (argv[i])); i++)
        ;
      send_all_queued (&s);
    }
  else
    {
      stdin_stream = g_unix_input_stream_new (STDIN_FILENO, FALSE);
      input = g_data_input_stream_new (stdin_stream);
      s.input = input;
      read_next_record (&s);
    }

  g_main_loop_run (main_loop);

  /* Writes out what is still queued. */
  g_signal_handlers_disconnect_by_data (client, &s);
  np_pipe_client_close (client);

  return s.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ping */

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
      g_main_loop_quit (main_loop);
      return;
    }

  g_array_append_val (p->times, usec);
  if (p->count >= 100 && p->times->len % 100 == 0)
    show_progress ("ping: %u of %u", p->times->len, p->count);

  if (p->times->len == p->count)
    g_main_loop_quit (main_loop);
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

static int
run_ping (int    argc,
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
    return usage_error (context, error->message);
  if (argc != 2)
    return usage_error (context, "ping needs the NAME of a pipe");
  if (count < 1)
    return usage_error (context, "--count takes a number of pings, 1 or more");

  client = np_pipe_client_new (argv[1]);
  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return fail ("%s", error->message);

  p.client = client;
  p.times = times;
  p.count = count;
  ping_next (&p);
  g_main_loop_run (main_loop);
  end_progress ();

  if (p.error != NULL)
    {
      int status = fail ("%s", p.error->message);
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

/* list */

typedef enum
{
  PIPE_LIVE,
  PIPE_STALE,
  PIPE_UNKNOWN,
} PipeState;

/* Tells a live server from a stale socket by the lock the server holds
 * (docs/protocol.md); a socket without a lock file is probed. When
 * @keep_lock_fd is given and the pipe is stale, the lock is kept so that
 * no server starts while the caller removes the files. */
static PipeState
pipe_state (const char *path,
            int        *pid,
            int        *keep_lock_fd)
{
  g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);
  int fd = g_open (lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);

  *pid = 0;

  if (fd >= 0)
    {
      if (flock (fd, LOCK_EX | LOCK_NB) != 0)
        {
          char buf[32] = { 0 };

          if (read (fd, buf, sizeof buf - 1) > 0)
            *pid = atoi (buf);
          close (fd);
          return PIPE_LIVE;
        }

      if (keep_lock_fd != NULL)
        *keep_lock_fd = fd;
      else
        close (fd);
      return PIPE_STALE;
    }
  else
    {
      struct sockaddr_un addr = { .sun_family = AF_UNIX };
      int sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      PipeState state = PIPE_UNKNOWN;

      g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
      if (sock >= 0)
        {
          if (connect (sock, (struct sockaddr *) &addr, sizeof addr) == 0 || errno == EAGAIN)
            state = PIPE_LIVE;
          else if (errno == ECONNREFUSED)
            state = PIPE_STALE;
          close (sock);
        }

      return state;
    }
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static int
run_list (int    argc,
          char **argv)
{
  gboolean clean = FALSE;
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir_path = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  const char *entry;
  const GOptionEntry entries[] = {
    { "clean", 0, 0, G_OPTION_ARG_NONE, &clean, "Remove the stale socket files", NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "List the pipes in the user's runtime directory, live or stale.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, error->message);
  if (argc != 1)
    return usage_error (context, "list takes no arguments");

  dir = g_dir_open (dir_path, 0, &error);
  if (dir == NULL)
    {
      if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return EXIT_SUCCESS;
      return fail ("%s", error->message);
    }

  while ((entry = g_dir_read_name (dir)) != NULL)
    if (!g_str_has_suffix (entry, ".lock"))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_names);

  np_tool_print ("%-32s %-6s %8s  %s\n", "NAME", "STATE", "PID", "PATH");

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *pid_text = NULL;
      int lock_fd = -1;
      struct stat st;
      PipeState state;
      int pid;

      if (lstat (path, &st) != 0 || !S_ISSOCK (st.st_mode))
        continue;

      state = pipe_state (path, &pid, clean ? &lock_fd : NULL);
      pid_text = pid > 0 ? g_strdup_printf ("%d", pid) : g_strdup ("-");
      np_tool_print ("%-32s %-6s %8s  %s\n", name,
                     state == PIPE_LIVE ? "live" : state == PIPE_STALE ? "stale" : "?",
                     pid_text, path);

      if (clean && state == PIPE_STALE)
        {
          g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);

          if (g_unlink (path) != 0)
            g_printerr ("np-pipe: cannot remove %s: %s\n", path, g_strerror (errno));
          else
            g_printerr ("removed stale %s\n", path);
          if (lock_fd >= 0)
            {
              g_unlink (lock_path);
              close (lock_fd);
            }
        }
    }

  return EXIT_SUCCESS;
}

/* main */

static const struct
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} commands[] = {
  { "listen", run_listen, "Start a server and print what happens" },
  { "send", run_send, "Send messages to a server" },
  { "list", run_list, "List the pipes of this user, live or stale" },
  { "ping", run_ping, "Measure the round trip to a server" },
  { "demo", np_tool_run_demo, "Show a server and three clients at work" },
};

static void
print_help (FILE *out)
{
  fprintf (out,
           "Usage:\n"
           "  np-pipe COMMAND [OPTION…]\n"
           "\n"
           "Listen on, send to, list and ping Np pipes.\n"
           "\n"
           "Commands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf (out,
           "\n"
           "Run “np-pipe COMMAND --help” for the options of a command.\n"
           "A NAME is a pipe name (in $XDG_RUNTIME_DIR/np) or an absolute socket path.\n");
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  setlocale (LC_ALL, "");

  /* A closed stdout is noticed on write, not by a signal. */
  signal (SIGPIPE, SIG_IGN);
  main_loop = loop;
  np_tool_self_path = g_file_read_link ("/proc/self/exe", NULL);
  if (np_tool_self_path == NULL)
    np_tool_self_path = g_strdup (argv[0]);

  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") ||
      g_str_equal (argv[1], "help"))
    {
      print_help (argc < 2 ? stderr : stdout);
      return argc < 2 ? EXIT_USAGE : EXIT_SUCCESS;
    }

  if (g_str_equal (argv[1], "--version"))
    {
      printf ("np-pipe %s (libnp %d.%d.%d)\n", PACKAGE_VERSION,
              NP_MAJOR_VERSION, NP_MINOR_VERSION, NP_MICRO_VERSION);
      return EXIT_SUCCESS;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_str_equal (argv[1], commands[i].name))
        {
          g_autofree char *prgname = g_strdup_printf ("np-pipe %s", commands[i].name);
          int status;

          g_set_prgname (prgname);
          status = commands[i].run (argc - 1, argv + 1);
          main_loop = NULL;
          return status;
        }
    }

  g_printerr ("np-pipe: unknown command “%s”\n\n", argv[1]);
  print_help (stderr);
  return EXIT_USAGE;
}
