/* np-pipe.c: listen on, send messages and requests to, list and ping Np
 * pipes; the commands live in np-pipe-COMMAND.c, what they share here
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <np/np.h>

#include "np-i18n-private.h"
#include "np-pipe-tool.h"

char *np_tool_self_path;

static gint stdout_broken;
static GMainLoop *main_loop;

/* Main loop */

/* Runs the loop until a command is done, unless stdout already went away. */
void
np_tool_run_loop (void)
{
  if (!g_atomic_int_get (&stdout_broken))
    g_main_loop_run (main_loop);
}

void
np_tool_quit (void)
{
  if (main_loop != NULL)
    g_main_loop_quit (main_loop);
}

/* The reader of our stdout went away while we had nothing to write. */
static gboolean
stdout_gone_cb (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  g_atomic_int_set (&stdout_broken, TRUE);
  np_tool_quit ();
  return G_SOURCE_REMOVE;
}

void
np_tool_quit_on_stdout_hangup (void)
{
  g_unix_fd_add (STDOUT_FILENO, G_IO_ERR | G_IO_HUP, stdout_gone_cb, NULL);
}

/* Output */

/* listen's stdout is written by a thread of its own, so that a terminal or
 * a reader slower than the traffic never holds up the main loop that
 * serves the clients; formatting a large message happens there too. What
 * waits for that thread is bounded, in bytes of memory held (a message
 * shown in full is held whole, of one shown in part only that part):
 * past OUTPUT_QUEUE_MAX, what comes is dropped and counted, and the count
 * is said once there is room again, or at the end. */
#define OUTPUT_QUEUE_MAX (16 * 1024 * 1024)
/* At the end, how long a reader that takes nothing more is waited for. */
#define OUTPUT_FINISH_IDLE (2 * G_TIME_SPAN_SECOND)
/* The most written by one write(), so that progress shows. */
#define OUTPUT_WRITE_MAX (64 * 1024)

typedef struct
{
  char            *prefix;   /* NULL: @bytes as they are */
  GBytes          *bytes;
  gsize            len;      /* of the message, of which @bytes may be the start */
  NpToolShowFlags  flags;
  guint            n_fds;
  gsize            cost;
} OutputItem;

static struct
{
  GMutex   lock;
  GCond    cond;
  GThread *thread;
  GQueue   items;            /* of OutputItem */
  gsize    queued;           /* the cost of @items and of the one being written */
  gboolean writing;
  gboolean stopping;
  gboolean raw;              /* stdout carries messages' bytes, notes go to stderr */
  gint64   last_progress;
  guint64  dropped;          /* events or messages dropped, not yet said */
  guint64  dropped_bytes;
} output;

static gboolean
output_is_async (void)
{
  return output.thread != NULL;
}

static void
output_item_free (OutputItem *item)
{
  g_free (item->prefix);
  g_bytes_unref (item->bytes);
  g_free (item);
}

static gboolean
quit_idle_cb (gpointer user_data)
{
  np_tool_quit ();
  return G_SOURCE_REMOVE;
}

/* From the writer thread: everything to fd 1, waiting as long as it takes. */
static gboolean
output_write_fd (const char *data,
                 gsize       len)
{
  while (len > 0)
    {
      gssize n = write (STDOUT_FILENO, data, MIN (len, OUTPUT_WRITE_MAX));

      if (n < 0)
        {
          struct pollfd pfd = { STDOUT_FILENO, POLLOUT, 0 };

          if (errno == EINTR)
            continue;
          /* A stdout left non-blocking by whoever started us. */
          if (errno == EAGAIN)
            {
              poll (&pfd, 1, -1);
              continue;
            }
          return FALSE;
        }

      data += n;
      len -= n;
      g_mutex_lock (&output.lock);
      output.last_progress = g_get_monotonic_time ();
      g_cond_broadcast (&output.cond);
      g_mutex_unlock (&output.lock);
    }

  return TRUE;
}

typedef gboolean (*FlushFunc) (GString *out);

static gboolean
flush_to_fd (GString *out)
{
  gboolean ok = output_write_fd (out->str, out->len);

  g_string_truncate (out, 0);
  return ok;
}

static gboolean
flush_to_stdio (GString *out)
{
  gboolean ok = np_tool_write (out->str, out->len);

  g_string_truncate (out, 0);
  return ok;
}

static void format_message (GString         *out,
                            const char      *prefix,
                            GBytes          *message,
                            gsize            len,
                            NpToolShowFlags  flags,
                            guint            n_fds,
                            FlushFunc        flush);

static gpointer
output_thread (gpointer user_data)
{
  g_autoptr(GString) out = g_string_new (NULL);

  g_mutex_lock (&output.lock);
  for (;;)
    {
      OutputItem *item;
      gboolean ok;

      while (g_queue_is_empty (&output.items) && !output.stopping)
        g_cond_wait (&output.cond, &output.lock);
      item = g_queue_pop_head (&output.items);
      if (item == NULL)
        break;
      output.writing = TRUE;
      g_mutex_unlock (&output.lock);

      if (item->prefix == NULL)
        ok = output_write_fd (g_bytes_get_data (item->bytes, NULL), g_bytes_get_size (item->bytes));
      else
        {
          format_message (out, item->prefix, item->bytes, item->len, item->flags, item->n_fds,
                          flush_to_fd);
          ok = flush_to_fd (out);
        }

      g_mutex_lock (&output.lock);
      output.writing = FALSE;
      output.queued -= item->cost;
      output_item_free (item);
      g_cond_broadcast (&output.cond);

      if (!ok)
        {
          /* The reader went away (`| head`): the program ends quietly. */
          g_atomic_int_set (&stdout_broken, TRUE);
          g_queue_clear_full (&output.items, (GDestroyNotify) output_item_free);
          output.queued = 0;
          g_idle_add (quit_idle_cb, NULL);
          break;
        }
    }
  g_mutex_unlock (&output.lock);

  return NULL;
}

/* From here on, stdout is written without ever blocking the caller. With
 * @raw, stdout carries messages as they are, so what is said about
 * output that was dropped goes to stderr. */
void
np_tool_output_start_async (gboolean raw)
{
  g_assert (output.thread == NULL);

  fflush (stdout);
  output.raw = raw;
  output.last_progress = g_get_monotonic_time ();
  output.thread = g_thread_new ("np-pipe-output", output_thread, NULL);
}

static char *
output_dropped_note_locked (void)
{
  char *note;

  if (output.dropped == 0)
    return NULL;

  if (output.raw)
    note = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         "%llu message (%llu bytes) was dropped from standard output: it was slower than the traffic",
                                         "%llu messages (%llu bytes) were dropped from standard output: it was slower than the traffic",
                                         output.dropped),
                            (unsigned long long) output.dropped, (unsigned long long) output.dropped_bytes);
  else
    note = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         "%llu event was not shown: standard output was slower than the traffic",
                                         "%llu events were not shown: standard output was slower than the traffic",
                                         output.dropped),
                            (unsigned long long) output.dropped);
  output.dropped = 0;
  output.dropped_bytes = 0;

  return note;
}

/* Queues @item for the writer thread, or drops it when too much waits. */
static gboolean
output_queue (OutputItem *item)
{
  g_autofree char *note = NULL;

  if (g_atomic_int_get (&stdout_broken))
    {
      output_item_free (item);
      return FALSE;
    }

  g_mutex_lock (&output.lock);
  if (output.queued >= OUTPUT_QUEUE_MAX)
    {
      output.dropped++;
      output.dropped_bytes += g_bytes_get_size (item->bytes);
      g_mutex_unlock (&output.lock);
      output_item_free (item);
      return TRUE;
    }

  note = output_dropped_note_locked ();
  if (note != NULL && !output.raw)
    {
      OutputItem *said = g_new0 (OutputItem, 1);
      char *line = g_strdup_printf ("np-pipe: %s\n", note);

      said->cost = strlen (line);
      said->bytes = g_bytes_new_take (line, said->cost);
      output.queued += said->cost;
      g_queue_push_tail (&output.items, said);
    }

  output.queued += item->cost;
  g_queue_push_tail (&output.items, item);
  g_cond_broadcast (&output.cond);
  g_mutex_unlock (&output.lock);

  if (note != NULL && output.raw)
    g_printerr ("np-pipe: %s\n", note);

  return TRUE;
}

/* Writes out what is queued, giving a reader that takes nothing more
 * OUTPUT_FINISH_IDLE, and says what was dropped or left unwritten. */
void
np_tool_output_finish (void)
{
  g_autofree char *note = NULL;
  gsize left = 0;
  gboolean done;

  if (!output_is_async ())
    return;

  g_mutex_lock (&output.lock);
  output.stopping = TRUE;
  g_cond_broadcast (&output.cond);
  for (;;)
    {
      gint64 deadline = output.last_progress + OUTPUT_FINISH_IDLE;

      done = g_queue_is_empty (&output.items) && !output.writing;
      if (done || g_atomic_int_get (&stdout_broken))
        break;
      if (!g_cond_wait_until (&output.cond, &output.lock, deadline) &&
          g_get_monotonic_time () >= output.last_progress + OUTPUT_FINISH_IDLE)
        {
          left = output.queued;
          break;
        }
    }
  note = output_dropped_note_locked ();
  g_mutex_unlock (&output.lock);

  if (note != NULL && !g_atomic_int_get (&stdout_broken))
    g_printerr ("np-pipe: %s\n", note);

  if (left > 0)
    {
      /* The writer is stuck in write(): it ends with the process. */
      g_printerr (_("np-pipe: about %zu bytes of output were not written: "
                    "standard output took nothing for %d s\n"),
                  left, (int) (OUTPUT_FINISH_IDLE / G_TIME_SPAN_SECOND));
      return;
    }

  g_thread_join (g_steal_pointer (&output.thread));
  g_queue_clear_full (&output.items, (GDestroyNotify) output_item_free);
}

/* Writes to stdout; a reader that went away (`| head`) ends the program
 * quietly. */
gboolean
np_tool_write (const void *data,
               gsize       len)
{
  if (g_atomic_int_get (&stdout_broken))
    return FALSE;

  if (output_is_async ())
    {
      g_autoptr(GBytes) bytes = g_bytes_new (data, len);

      return np_tool_write_bytes (bytes);
    }

  if ((len > 0 && fwrite (data, 1, len, stdout) != len) || fflush (stdout) != 0)
    {
      g_atomic_int_set (&stdout_broken, TRUE);
      np_tool_quit ();
      return FALSE;
    }

  return TRUE;
}

/* Writes @bytes to stdout as they are, without a copy when the writer
 * thread runs. */
gboolean
np_tool_write_bytes (GBytes *bytes)
{
  OutputItem *item;

  if (!output_is_async ())
    return np_tool_write (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  item = g_new0 (OutputItem, 1);
  item->bytes = g_bytes_ref (bytes);
  item->cost = g_bytes_get_size (bytes);

  return output_queue (item);
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

/* Escaping */

static gboolean
is_printable_char (gunichar c)
{
  GUnicodeType type;

  if (c == '\t')
    return TRUE;
  if (!g_unichar_isprint (c))
    return FALSE;

  /* Line breaks of their own, which some terminals honour. */
  type = g_unichar_type (c);
  return type != G_UNICODE_LINE_SEPARATOR && type != G_UNICODE_PARAGRAPH_SEPARATOR;
}

/* The length of the longest start of @data, at most @len bytes, that is
 * printable UTF-8 on one line; a character cut by @len ends it too. */
static gsize
printable_prefix_len (const char *data,
                      gsize       len)
{
  const char *p = data;
  const char *end = data + len;

  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2 || !is_printable_char (c))
        break;
      p = g_utf8_next_char (p);
    }

  return p - data;
}

/* Text a peer chose (a goodbye's reason, an error's message or domain, a
 * message), made safe for a terminal: what is not printable UTF-8 on one
 * line (escape sequences, control characters, invalid bytes) becomes
 * \xNN or \uNNNN, so that it cannot set a title, clear the screen, or
 * fake a line of output. Every piece of peer text goes through here,
 * messages included (np_tool_print_message() shows those as text only
 * when nothing needs escaping). */
char *
np_tool_escape (const char *text,
                gssize      len)
{
  const char *p = text;
  const char *end;
  GString *out;

  if (len < 0)
    len = strlen (text);
  end = text + len;
  out = g_string_sized_new (len);

  while (p < end)
    {
      gsize n = printable_prefix_len (p, end - p);
      gunichar c;

      g_string_append_len (out, p, n);
      p += n;
      if (p >= end)
        break;

      c = g_utf8_get_char_validated (p, end - p);
      if (c == (gunichar) -1 || c == (gunichar) -2 || c < 0x80)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
        }
      else
        {
          g_string_append_printf (out, c <= 0xffff ? "\\u%04x" : "\\U%08x", c);
          p = g_utf8_next_char (p);
        }
    }

  return g_string_free (out, FALSE);
}

/* Messages */

static void
format_hex_dump (GString      *out,
                 const guint8 *data,
                 gsize         len,
                 FlushFunc     flush)
{
  for (gsize offset = 0; offset < len; offset += 16)
    {
      gsize n = MIN (16, len - offset);

      g_string_append_printf (out, "  %08" G_GSIZE_MODIFIER "x ", offset);
      for (gsize i = 0; i < 16; i++)
        {
          if (i == 8)
            g_string_append_c (out, ' ');
          if (i < n)
            g_string_append_printf (out, " %02x", data[offset + i]);
          else
            g_string_append (out, "   ");
        }
      g_string_append (out, "  |");
      for (gsize i = 0; i < n; i++)
        g_string_append_c (out, g_ascii_isprint (data[offset + i]) ? data[offset + i] : '.');
      g_string_append (out, "|\n");

      if (out->len >= OUTPUT_WRITE_MAX && !flush (out))
        return;
    }
}

static void
format_left_out (GString  *out,
                 gsize     left_out,
                 gboolean  characters)
{
  if (left_out == 0)
    return;

  g_string_append (out, "  ");
  if (characters)
    g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                              "(%zu more character not shown; --full shows all)",
                                              "(%zu more characters not shown; --full shows all)",
                                              left_out),
                            left_out);
  else
    g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                              "(%zu more byte not shown; --full shows all)",
                                              "(%zu more bytes not shown; --full shows all)",
                                              left_out),
                            left_out);
  g_string_append_c (out, '\n');
}

/* "PREFIX: text" for a message that is printable UTF-8 on one line,
 * otherwise "PREFIX: N bytes" and a hex dump (or with
 * NP_TOOL_SHOW_VARIANT, the GVariant it holds, printed as
 * g_variant_print() does); without NP_TOOL_SHOW_FULL, only its first
 * NP_TOOL_SNAP_LEN bytes, saying how many were left out. @message may be
 * only the start of the message, of @len bytes, that is shown. */
static void
format_message (GString         *out,
                const char      *prefix,
                GBytes          *message,
                gsize            len,
                NpToolShowFlags  flags,
                guint            n_fds,
                FlushFunc        flush)
{
  gsize held;
  const guint8 *data = g_bytes_get_data (message, &held);
  gboolean full = (flags & NP_TOOL_SHOW_FULL) != 0;
  gsize shown = MIN (held, full ? len : MIN (len, NP_TOOL_SNAP_LEN));
  gsize text_len;

  g_string_append (out, prefix);
  if (n_fds > 0)
    {
      g_string_append (out, " (");
      g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                                "with %u descriptor, closed",
                                                "with %u descriptors, closed", n_fds),
                              n_fds);
      g_string_append_c (out, ')');
    }
  g_string_append (out, ": ");

  if ((flags & NP_TOOL_SHOW_VARIANT) && held == len)
    {
      g_autoptr(GVariant) value = np_variant_from_message (message, NULL);

      if (value != NULL)
        {
          g_autofree char *printed = g_variant_print (value, TRUE);
          g_autofree char *escaped = NULL;
          glong chars = g_utf8_strlen (printed, -1);
          const char *cut = printed + strlen (printed);

          if (!full && chars > NP_TOOL_SNAP_LEN)
            cut = g_utf8_offset_to_pointer (printed, NP_TOOL_SNAP_LEN);
          escaped = np_tool_escape (printed, cut - printed);
          g_string_append (out, escaped);
          g_string_append_c (out, '\n');
          if (!full && chars > NP_TOOL_SNAP_LEN)
            format_left_out (out, chars - NP_TOOL_SNAP_LEN, TRUE);
          return;
        }
    }

  text_len = printable_prefix_len ((const char *) data, shown);
  /* Text cut by the snap length in the middle of a character is text. */
  if (!(flags & NP_TOOL_SHOW_HEX) && shown < len && text_len < shown && shown - text_len < 4 &&
      g_utf8_get_char_validated ((const char *) data + text_len, shown - text_len) == (gunichar) -2)
    shown = text_len;

  if (!(flags & NP_TOOL_SHOW_HEX) && text_len == shown)
    {
      g_string_append_len (out, (const char *) data, shown);
      g_string_append_c (out, '\n');
    }
  else
    {
      g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE, "%zu byte",
                                                "%zu bytes", len),
                              len);
      g_string_append_c (out, '\n');
      format_hex_dump (out, data, shown, flush);
    }
  format_left_out (out, len - shown, FALSE);
}

/* Prints a message as format_message() shows it; when the writer thread
 * runs, the formatting is done there. */
void
np_tool_print_message (const char      *prefix,
                       GBytes          *message,
                       NpToolShowFlags  flags,
                       guint            n_fds)
{
  g_autoptr(GString) out = NULL;

  if (output_is_async ())
    {
      OutputItem *item = g_new0 (OutputItem, 1);
      gsize len = g_bytes_get_size (message);

      item->prefix = g_strdup (prefix);
      item->len = len;
      /* Only what is shown is held, unless a GVariant is decoded. */
      if ((flags & (NP_TOOL_SHOW_FULL | NP_TOOL_SHOW_VARIANT)) || len <= NP_TOOL_SNAP_LEN)
        item->bytes = g_bytes_ref (message);
      else
        item->bytes = g_bytes_new (g_bytes_get_data (message, NULL), NP_TOOL_SNAP_LEN);
      item->flags = flags;
      item->n_fds = n_fds;
      item->cost = strlen (prefix) + g_bytes_get_size (item->bytes);
      output_queue (item);
      return;
    }

  out = g_string_new (NULL);
  format_message (out, prefix, message, g_bytes_get_size (message), flags, n_fds, flush_to_stdio);
  flush_to_stdio (out);
}

/* Reads the text of a GVariant (as gdbus call takes its arguments) into
 * a message; the error points at where the text is wrong. */
GBytes *
np_tool_parse_variant (const char  *text,
                       gsize        len,
                       GError     **error)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) local_error = NULL;

  value = g_variant_parse (NULL, text, text + len, NULL, &local_error);
  if (value == NULL)
    {
      g_autofree char *source = g_strndup (text, len);
      g_autofree char *context = g_variant_parse_error_print_context (local_error, source);

      g_strchomp (context);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("not the text of a GVariant: %s"), context);
      return NULL;
    }

  /* g_variant_parse() gives a full reference, which this only adds to. */
  return np_variant_to_message (value);
}

/* Closes the descriptors of @fds, which a command only counts. */
guint
np_tool_close_fds (GUnixFDList *fds)
{
  g_autofree int *stolen = NULL;
  int n = 0;

  if (fds == NULL)
    return 0;

  stolen = g_unix_fd_list_steal_fds (fds, &n);
  for (int i = 0; i < n; i++)
    close (stolen[i]);

  return n;
}

/* Progress on stderr, only when a person is watching it. */
static gboolean progress_shown;

void
np_tool_show_progress (const char *format,
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

void
np_tool_end_progress (void)
{
  if (progress_shown)
    fprintf (stderr, "\r\033[K");
  progress_shown = FALSE;
}

/* Errors */

/* Says what went wrong on stderr, escaped: error messages embed text a
 * peer chose (a goodbye's reason, an error reply). */
void
np_tool_warn (const char *format,
              ...)
{
  g_autofree char *message = NULL;
  g_autofree char *escaped = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  escaped = np_tool_escape (message, -1);
  g_printerr ("np-pipe: %s\n", escaped);
}

int
np_tool_fail (const char *format,
              ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  np_tool_warn ("%s", message);
  return EXIT_FAILURE;
}

int
np_tool_usage_error (GOptionContext *context,
                     const char     *message)
{
  g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

  g_printerr ("np-pipe: %s\n\n%s", message, help);
  return NP_TOOL_EXIT_USAGE;
}

/* Reads a --timeout: seconds, fractions allowed, 0 for no limit. Gives
 * milliseconds for g_timeout_add(), at least 1 when the limit is not 0. */
gboolean
np_tool_parse_timeout (const char *text,
                       guint      *msec)
{
  char *end = NULL;
  double seconds = g_ascii_strtod (text, &end);

  if (end == text || *end != '\0' || !(seconds >= 0) || seconds > G_MAXUINT / 1000)
    return FALSE;

  *msec = (guint) (seconds * 1000);
  if (*msec == 0 && seconds > 0)
    *msec = 1;

  return TRUE;
}

/* main */

static const struct
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} commands[] = {
  { "listen", np_tool_run_listen, N_("Start a server and print what happens") },
  { "send", np_tool_run_send, N_("Send messages to a server") },
  { "request", np_tool_run_request, N_("Send a request to a server and print its reply") },
  { "list", np_tool_run_list, N_("List the local pipes of this user, live or stale") },
  { "ping", np_tool_run_ping, N_("Measure the round trip to a server") },
  { "fingerprint", np_tool_run_fingerprint, N_("Print the SHA-256 fingerprint of a certificate, for --tls-pin") },
  { "demo", np_tool_run_demo, N_("Show a server and three clients at work") },
};

static void
print_help (FILE *out)
{
  fprintf (out, "%s",
           _("Usage:\n"
             "  np-pipe COMMAND [OPTION…]\n"
             "\n"
             "Listen on, send messages and requests to, list and ping Np pipes.\n"
             "\n"
             "Commands:\n"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-11s %s\n", commands[i].name, _(commands[i].summary));
  fprintf (out, "%s",
           _("\n"
             "Run “np-pipe COMMAND --help” for the options of a command.\n"
             "A NAME is a pipe name (in $XDG_RUNTIME_DIR/np), an absolute socket path,\n"
             "or tcp:HOST:PORT: a pipe over TCP, always with TLS (listen, send, request\n"
             "and ping; see their --tls-… options).\n"
             "\n"));
  fprintf (out, "%s", np_tool_tls_example ());
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  /* Messages share the library's domain, np-1.0, as the gio tool shares
   * GLib's; its catalog is found where the library finds it. */
  setlocale (LC_ALL, "");
  np_i18n_init ();
  textdomain (GETTEXT_PACKAGE);

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
      return argc < 2 ? NP_TOOL_EXIT_USAGE : EXIT_SUCCESS;
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

  g_printerr (_("np-pipe: unknown command “%s”\n\n"), argv[1]);
  print_help (stderr);
  return NP_TOOL_EXIT_USAGE;
}
