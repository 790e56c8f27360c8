/* np-pipe-send.c: "np-pipe send", messages to a server from the command line,
 * standard input or a file
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <np/np.h>

#include "np-pipe-tool.h"

typedef struct
{
  NpPipeClient     *client;
  GDataInputStream *input;
  char              separator;
  int               wait;
  int               replies;
  gboolean          variant;
  gboolean          sending_done;
  gboolean          failed;
  guint64           total_bytes;
  guint             progress_id;
  guint             timeout_msec;
  guint             timeout_id;
} Send;

#define DEFAULT_TIMEOUT "10"

static gboolean
send_timeout_cb (gpointer user_data)
{
  Send *s = user_data;

  s->timeout_id = 0;
  np_tool_warn (_("pipe “%s”: reply %d of %d did not arrive within %g s"),
                np_pipe_client_get_name (s->client), s->replies + 1, s->wait,
                s->timeout_msec / 1000.0);
  s->failed = TRUE;
  np_tool_quit ();

  return G_SOURCE_REMOVE;
}

/* Once everything is sent, quits when the replies asked for are in, or
 * gives the next one --timeout to arrive. */
static void
send_finish_if_done (Send *s)
{
  if (!s->sending_done)
    return;

  g_clear_handle_id (&s->timeout_id, g_source_remove);

  if (s->replies >= s->wait || s->failed)
    np_tool_quit ();
  else if (s->timeout_msec > 0)
    s->timeout_id = g_timeout_add (s->timeout_msec, send_timeout_cb, s);
}

static void
send_message_received (NpPipeClient *client,
                       GBytes       *message,
                       Send         *s)
{
  if (s->replies >= s->wait)
    return;

  s->replies++;
  np_tool_print_message (_("reply"), message,
                         NP_TOOL_SHOW_FULL | (s->variant ? NP_TOOL_SHOW_VARIANT : 0), 0);
  send_finish_if_done (s);
}

static void
send_disconnected (NpPipeClient *client,
                   GError       *error,
                   Send         *s)
{
  /* Once: a failed send or flush said why already. */
  if (error != NULL)
    {
      if (!s->failed)
        np_tool_warn ("%s", error->message);
      s->failed = TRUE;
    }
  else if (!s->sending_done && !s->failed)
    {
      np_tool_warn (_("pipe “%s”: the server closed the connection before "
                      "everything was sent"), np_pipe_client_get_name (client));
      s->failed = TRUE;
    }

  /* Fewer replies than --wait asked for is no failure: "up to N". */
  s->sending_done = TRUE;
  s->wait = s->replies;
  np_tool_quit ();
}

/* A MESSAGE argument, a record of stdin or a --file: as it is, or with
 * --variant, the GVariant its text describes. */
static GBytes *
send_make_message (Send         *s,
                   const char   *data,
                   gsize         len,
                   GError      **error)
{
  if (s->variant)
    return np_tool_parse_variant (data, len, error);

  return g_bytes_new (data, len);
}

static gboolean
send_one (Send   *s,
          GBytes *message)
{
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_send (s->client, message, &error))
    {
      np_tool_warn ("%s", error->message);
      s->failed = TRUE;
      return FALSE;
    }

  s->total_bytes += g_bytes_get_size (message);
  return TRUE;
}

static gboolean
send_progress_cb (gpointer user_data)
{
  Send *s = user_data;
  guint64 queued = np_pipe_client_get_queued_bytes (s->client);
  guint64 done = s->total_bytes > queued ? s->total_bytes - queued : 0;

  np_tool_show_progress ("sending: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " KiB (%d%%)",
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
  np_tool_end_progress ();

  if (!np_pipe_client_flush_finish (s->client, result, &error))
    {
      if (!s->failed)
        np_tool_warn ("%s", error->message);
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
      np_tool_quit ();
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
  g_autoptr(GBytes) message = NULL;
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
      np_tool_warn (_("reading standard input: %s"), error->message);
      s->failed = TRUE;
    }

  if (record == NULL)
    {
      send_all_queued (s);
      return;
    }

  message = send_make_message (s, record, len, &error);
  if (message == NULL)
    {
      /* The user's own text, shown as it is, with where it is wrong. */
      g_printerr ("np-pipe: %s\n", error->message);
      s->failed = TRUE;
      send_all_queued (s);
      return;
    }

  if (send_one (s, message))
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

int
np_tool_run_send (int    argc,
                  char **argv)
{
  gboolean null_separated = FALSE;
  g_autofree char *file = NULL;
  int wait = 0;
  g_autofree char *timeout = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME [MESSAGE…]");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) close_error = NULL;
  g_autoptr(GInputStream) stdin_stream = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  Send s = { 0 };
  g_auto(NpToolTls) tls = { 0 };
  int tls_status;
  const GOptionEntry entries[] = {
    { "null", '0', 0, G_OPTION_ARG_NONE, &null_separated, N_("Read NUL-separated messages from stdin instead of lines"), NULL },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, N_("Send the whole FILE as one message"), N_("FILE") },
    { "variant", 0, 0, G_OPTION_ARG_NONE, &s.variant, N_("Each message is the text of a GVariant, such as '(\"uptime\", <\"\">)': send the value"), NULL },
    { "wait", 'w', 0, G_OPTION_ARG_INT, &wait, N_("Print up to N replies before closing"), "N" },
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout, N_("With --wait, give up when a reply takes over SECONDS (default 10; 0: no limit)"), N_("SECONDS") },
    { NULL }
  };

  g_option_context_set_summary (context,
                                N_("Connect and send each MESSAGE as one message; with no MESSAGE\n"
                                   "and no --file, each line of stdin is one message. With\n"
                                   "--variant, replies that hold a GVariant print decoded."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_description (context, np_tool_tls_example ());
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  np_tool_tls_add_options (context, &tls, FALSE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return np_tool_usage_error (context, error->message);
  if (argc < 2)
    return np_tool_usage_error (context, _("send needs the NAME of a pipe"));
  if (wait < 0)
    return np_tool_usage_error (context, _("--wait takes a number of replies, 0 or more"));
  if (timeout != NULL && wait == 0)
    return np_tool_usage_error (context, _("--timeout is how long --wait waits for each reply: it needs --wait"));
  if (!np_tool_parse_timeout (timeout ? timeout : DEFAULT_TIMEOUT, &s.timeout_msec))
    return np_tool_usage_error (context, _("--timeout takes a number of seconds, 0 for no limit"));
  if (file != NULL && (argc > 2 || null_separated))
    return np_tool_usage_error (context, _("--file goes with neither MESSAGE arguments nor --null"));
  if (null_separated && argc > 2)
    return np_tool_usage_error (context, _("--null reads stdin, so it takes no MESSAGE arguments"));

  /* Arguments that are no GVariant stop everything before the connect. */
  for (int i = 2; i < argc; i++)
    {
      GBytes *message = send_make_message (&s, argv[i], strlen (argv[i]), &error);

      if (message == NULL)
        return np_tool_usage_error (context, error->message);
      g_ptr_array_add (messages, message);
    }

  client = np_pipe_client_new (argv[1]);
  tls_status = np_tool_tls_setup_client (&tls, context, argv[1], client);
  if (tls_status != EXIT_SUCCESS)
    return tls_status;
  s.client = client;
  s.wait = wait;
  s.separator = null_separated ? '\0' : '\n';
  g_signal_connect (client, "message-received", G_CALLBACK (send_message_received), &s);
  g_signal_connect (client, "disconnected", G_CALLBACK (send_disconnected), &s);

  if (!np_pipe_client_connect_sync (client, NULL, &error))
    return np_tool_fail ("%s", error->message);

  if (file != NULL)
    {
      g_autoptr(GMappedFile) mapped = g_mapped_file_new (file, FALSE, &error);
      g_autoptr(GBytes) bytes = NULL;

      if (mapped == NULL)
        return np_tool_fail ("%s", error->message);

      if (s.variant)
        bytes = send_make_message (&s, g_mapped_file_get_contents (mapped),
                                   g_mapped_file_get_length (mapped), &error);
      else
        bytes = g_mapped_file_get_bytes (mapped);
      if (bytes == NULL)
        {
          g_printerr ("np-pipe: %s\n", error->message);
          s.failed = TRUE;
        }
      else
        send_one (&s, bytes);
      send_all_queued (&s);
    }
  else if (argc > 2)
    {
      for (guint i = 0; i < messages->len && send_one (&s, g_ptr_array_index (messages, i)); i++)
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

  /* A send that failed before the loop ran ended it already. */
  if (!s.sending_done)
    np_tool_run_loop ();
  g_clear_handle_id (&s.timeout_id, g_source_remove);

  /* Writes out what is still queued, and says what could not be,
   * unless a failure was reported already. */
  g_signal_handlers_disconnect_by_data (client, &s);
  if (!np_pipe_client_close (client, NULL, &close_error) && !s.failed)
    {
      g_printerr ("np-pipe: %s\n", close_error->message);
      s.failed = TRUE;
    }

  return s.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
