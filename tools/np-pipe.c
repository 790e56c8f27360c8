/* np-pipe.c: listen on, send messages and requests to, list and ping Np
 * pipes; the commands live in np-pipe-COMMAND.c, what they share here
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <locale.h>
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

static gboolean stdout_broken;
static GMainLoop *main_loop;

/* Main loop */

/* Runs the loop until a command is done, unless stdout already went away. */
void
np_tool_run_loop (void)
{
  if (!stdout_broken)
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
  stdout_broken = TRUE;
  np_tool_quit ();
  return G_SOURCE_REMOVE;
}

void
np_tool_quit_on_stdout_hangup (void)
{
  g_unix_fd_add (STDOUT_FILENO, G_IO_ERR | G_IO_HUP, stdout_gone_cb, NULL);
}

/* Output */

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
      np_tool_quit ();
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

int
np_tool_fail (const char *format,
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
  { "list", np_tool_run_list, N_("List the pipes of this user, live or stale") },
  { "ping", np_tool_run_ping, N_("Measure the round trip to a server") },
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
    fprintf (out, "  %-8s %s\n", commands[i].name, _(commands[i].summary));
  fprintf (out, "%s",
           _("\n"
             "Run “np-pipe COMMAND --help” for the options of a command.\n"
             "A NAME is a pipe name (in $XDG_RUNTIME_DIR/np) or an absolute socket path.\n"));
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
