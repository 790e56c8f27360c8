/* np-bench.c: Np side by side with a raw socket, GDBus peer-to-peer and
 * ZeroMQ, in one run; over loopback TCP, Np with TLS side by side with a
 * bare GIO TLS stream, ZeroMQ (plain and CURVE) and GDBus
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every measurement runs the receiving and the sending side in processes
 * of their own (this program again, with --role). Rounds alternate the
 * transports, so that whatever else the machine does affects them alike;
 * the table gives the median of the rounds and the ratio of Np to each
 * baseline.
 */

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bench.h"

/* Helpers for the roles */

const BenchTransport *bench_role_transport;

void
bench_ready (void)
{
  bench_report ("ready");
}

/* A server over TCP: the clients are to connect to @address. */
void
bench_ready_at (const char *address)
{
  bench_report ("ready %s", address);
}

/* The certificate and key that the orchestrator made for TLS servers. */
GTlsCertificate *
bench_tls_certificate (void)
{
  const char *cert = g_getenv (BENCH_TLS_CERT_ENV);
  const char *key = g_getenv (BENCH_TLS_KEY_ENV);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate;

  if (cert == NULL || key == NULL)
    g_error ("No certificate: %s and %s are not set", BENCH_TLS_CERT_ENV, BENCH_TLS_KEY_ENV);
  certificate = g_tls_certificate_new_from_files (cert, key, &error);
  if (certificate == NULL)
    g_error ("%s", error->message);

  return certificate;
}

/* The prepare() of a TLS transport: a certificate was made, and GIO has
 * a TLS backend (glib-networking). */
gboolean
bench_tls_prepare (char **why)
{
  if (g_getenv (BENCH_TLS_CERT_ENV) == NULL)
    {
      *why = g_strdup ("no certificate could be made");
      return FALSE;
    }
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      *why = g_strdup ("GIO has no TLS backend (Debian: glib-networking)");
      return FALSE;
    }

  return TRUE;
}

/* A source has made its connections: it says so, and starts sending once
 * every source has (the orchestrator writes a line to its stdin), so that
 * a rate measures the messages, not connections made meanwhile. */
void
bench_connected_wait_go (void)
{
  char buf[64];

  bench_report ("connected");
  if (fgets (buf, sizeof buf, stdin) == NULL)
    exit (1);
}

void
bench_report (const char *format,
              ...)
{
  va_list args;

  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  printf ("\n");
  fflush (stdout);
}

gint64
bench_rss_bytes (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL) ||
      !(line = strstr (status, "VmRSS:")))
    return 0;

  return g_ascii_strtoll (line + strlen ("VmRSS:"), NULL, 10) * 1024;
}

int
bench_compare_double (gconstpointer a,
                      gconstpointer b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return (x > y) - (x < y);
}

void
bench_print_rtts (GArray *usecs)
{
  double *v;

  g_array_sort (usecs, bench_compare_double);
  v = (double *) (gpointer) usecs->data;
  bench_report ("rtt %f %f", v[usecs->len / 2], v[MIN (usecs->len - 1, usecs->len * 99 / 100)]);
}

void
bench_check_reply (gsize size,
                   gsize expected)
{
  if (size != expected)
    g_error ("A reply of %" G_GSIZE_FORMAT " bytes arrived, not %" G_GSIZE_FORMAT,
             size, expected);
}

guint8 *
bench_payload (gsize size)
{
  guint8 *data = g_malloc (MAX (size, 1));

  for (gsize i = 0; i < size; i++)
    data[i] = i;

  return data;
}

/* The descriptor passed with each message of scenario 9: a memfd of
 * BENCH_FD_SIZE bytes, made once by each side and sent every time. */
#define BENCH_FD_SIZE 4096

int
bench_fd_new (void)
{
  int fd = memfd_create ("np-bench", MFD_CLOEXEC);

  if (fd < 0 || ftruncate (fd, BENCH_FD_SIZE) < 0)
    g_error ("memfd: %s", g_strerror (errno));

  return fd;
}

/* Fails the process unless @fd is an open memfd of the size the peer
 * made it (a descriptor really arrived), then closes it. */
void
bench_fd_check_close (int fd)
{
  struct stat st;

  if (fd < 0 || fstat (fd, &st) < 0)
    g_error ("No valid descriptor arrived (%d): %s", fd, g_strerror (errno));
  if (st.st_size != BENCH_FD_SIZE)
    g_error ("A descriptor of %" G_GINT64_FORMAT " bytes arrived, not %d",
             (gint64) st.st_size, BENCH_FD_SIZE);
  close (fd);
}

gboolean
bench_stdin_closed_cb (gint          fd,
                       GIOCondition  condition,
                       gpointer      loop)
{
  char buf[64];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;

  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* Blocks until the orchestrator closes our stdin. */
void
bench_wait_stdin_closed (void)
{
  char buf[64];

  while (read (STDIN_FILENO, buf, sizeof buf) > 0)
    ;
}

void
bench_tags_init (BenchTags *tags,
                 guint      threads,
                 guint64    per_thread,
                 gsize      size)
{
  g_assert (size >= BENCH_TAG_SIZE);

  *tags = (BenchTags) { .threads = threads, .per_thread = per_thread, .size = size };
  tags->next = g_new0 (guint64, threads);
}

void
bench_tags_clear (BenchTags *tags)
{
  g_clear_pointer (&tags->next, g_free);
}

void
bench_tags_write (guint8  *data,
                  guint32  thread,
                  guint64  number)
{
  memcpy (data, &thread, sizeof thread);
  memcpy (data + sizeof thread, &number, sizeof number);
}

/* Fails the process on a message that is lost, repeated, out of its
 * thread's order, cut or mixed with another. */
void
bench_tags_check (BenchTags    *tags,
                  const guint8 *data,
                  gsize         len)
{
  guint32 thread;
  guint64 number;

  if (len != tags->size && len != BENCH_TAG_END_SIZE)
    g_error ("A message of %" G_GSIZE_FORMAT " bytes arrived, not %" G_GSIZE_FORMAT,
             len, tags->size);

  memcpy (&thread, data, sizeof thread);
  if (thread >= tags->threads)
    g_error ("A message names thread %u of %u", thread, tags->threads);

  if (len == BENCH_TAG_END_SIZE)
    {
      if (tags->next[thread] != tags->per_thread)
        g_error ("Thread %u ended after %" G_GUINT64_FORMAT " messages of %" G_GUINT64_FORMAT,
                 thread, tags->next[thread], tags->per_thread);
      tags->ended++;
      return;
    }

  memcpy (&number, data + sizeof thread, sizeof number);
  if (number != tags->next[thread])
    g_error ("Thread %u: message %" G_GUINT64_FORMAT " arrived where %" G_GUINT64_FORMAT
             " was expected", thread, number, tags->next[thread]);
  tags->next[thread]++;

  tags->last = g_get_monotonic_time ();
  if (tags->count++ == 0)
    tags->first = tags->last;
}

gboolean
bench_tags_done (BenchTags *tags)
{
  return tags->ended == tags->threads;
}

void
bench_tags_report (BenchTags *tags)
{
  g_assert (tags->count == tags->per_thread * tags->threads);

  bench_report ("rate %f", (tags->count - 1) / ((tags->last - tags->first) / 1e6));
}

/* Transports and scenarios */

/* Np first, then its baselines: over a Unix socket, then over loopback
 * TCP, where Np with TLS comes first. */
static const BenchTransport *transports[] = {
  &bench_np,
  &bench_raw,
  &bench_raw_batched,
  &bench_glib,
  &bench_gdbus,
#ifdef HAVE_ZMQ
  &bench_zmq,
#endif
  &bench_np_tls,
  &bench_np_tcp,
  &bench_gio_tls,
#ifdef HAVE_ZMQ
  &bench_zmq_curve,
  &bench_zmq_tcp,
#endif
  &bench_gdbus_tcp,
};

/* What the figures of each group of transports are divided by. */
static const BenchTransport *
reference_of (gboolean tcp)
{
  return tcp ? &bench_np_tls : &bench_np;
}

/* Transports whose prepare() failed in this run. */
static GHashTable *unavailable;

typedef enum
{
  KIND_ONEWAY,
  KIND_RTT,
  KIND_SETUP,
  KIND_MEMORY,
  KIND_THREADS,
  KIND_REQUEST,
  KIND_FDS,
  KIND_IDLE,
  KIND_THREAD_SETUP,
} Kind;

typedef struct
{
  const char *key;
  const char *title;
  const char *unit;
  Kind        kind;
  gsize       size;
  guint       conns;       /* connections, sending threads, or requests in flight */
  guint64     count;       /* messages, round trips or connections */
  guint       slow_divisor; /* GDBus does the same work in this many times fewer messages */
  gboolean    quick_conns;  /* --quick divides the connections as it divides the count */
  gboolean    tcp;          /* over loopback TCP, for the TCP transports */
} Scenario;

static Scenario scenarios[] = {
  { "oneway-64", "1 one-way 64 B, 1 client", "msg/s", KIND_ONEWAY, 64, 1, 1000000, 20 },
  { "oneway-1m", "2 one-way 1 MiB, 1 client", "GB/s", KIND_ONEWAY, 1024 * 1024, 1, 2000, 10 },
  { "rtt-64", "3 round trip 64 B", "µs", KIND_RTT, 64, 1, 20000, 4 },
  { "fanin-1", "4 fan-in 64 B, 1 client", "msg/s", KIND_ONEWAY, 64, 1, 400000, 10 },
  { "fanin-10", "4 fan-in 64 B, 10 clients", "msg/s", KIND_ONEWAY, 64, 10, 400000, 10 },
  { "fanin-100", "4 fan-in 64 B, 100 clients", "msg/s", KIND_ONEWAY, 64, 100, 400000, 10 },
  { "fanin-1000", "4 fan-in 64 B, 1000 clients", "msg/s", KIND_ONEWAY, 64, 1000, 400000, 10 },
  { "fanin-10000", "4 fan-in 64 B, 10000 clients", "msg/s", KIND_ONEWAY, 64, 10000, 1000000, 10, TRUE },
  { "setup", "5 connection + handshake", "conn/s", KIND_SETUP, 0, 1, 2000, 4 },
  { "setup-4threads", "5 connection + 64 B round trip, 4 threads", "conn/s", KIND_THREAD_SETUP, 64, 4, 8000, 20 },
  { "memory", "5 server memory per idle connection", "bytes", KIND_MEMORY, 0, 1000, 0, 1 },
  { "memory-10000", "5 server memory per idle connection, 10000", "bytes", KIND_MEMORY, 0, 10000, 0, 1 },
  { "threads-64", "6 4 threads, 64 B (Np: one client)", "msg/s", KIND_THREADS, 64, 4, 1000000, 1 },
  { "request-64", "7 request round trip 64 B", "µs", KIND_REQUEST, 64, 1, 20000, 4 },
  { "pipelined-64", "8 100 requests in flight, 64 B", "req/s", KIND_REQUEST, 64, 100, 400000, 40 },
  { "fds-64", "9 round trip 64 B + 1 fd", "µs", KIND_FDS, 64, 1, 20000, 4 },
  { "idle-0", "10 round trip 64 B, 0 idle clients", "µs", KIND_IDLE, 64, 0, 2000, 4, TRUE },
  { "idle-1000", "10 round trip 64 B, 1000 idle clients", "µs", KIND_IDLE, 64, 1000, 2000, 4, TRUE },
  { "idle-10000", "10 round trip 64 B, 10000 idle clients", "µs", KIND_IDLE, 64, 10000, 2000, 4, TRUE },
  { "tls-oneway-64", "11 TCP one-way 64 B", "msg/s", KIND_ONEWAY, 64, 1, 1000000, 20, FALSE, TRUE },
  { "tls-oneway-1m", "11 TCP one-way 1 MiB", "MB/s", KIND_ONEWAY, 1024 * 1024, 1, 2000, 10, FALSE, TRUE },
  { "tls-rtt-64", "11 TCP round trip 64 B", "µs", KIND_RTT, 64, 1, 20000, 4, FALSE, TRUE },
  { "tls-setup", "11 TCP connection + TLS handshake", "conn/s", KIND_SETUP, 0, 1, 1000, 10, FALSE, TRUE },
};

/* The rows of the table: a round trip gives two. A row may also be
 * compared with another row of Np's own, @np_reference. */
typedef struct
{
  const char *key;
  const char *title;
  const char *unit;
  gboolean    lower_is_better;
  const char *np_reference;
  gboolean    tcp;
} Row;

static const Row rows[] = {
  { "oneway-64", "1 one-way 64 B, 1 client", "msg/s", FALSE },
  { "oneway-1m", "2 one-way 1 MiB, 1 client", "GB/s", FALSE },
  { "rtt-64-median", "3 round trip 64 B, median", "µs", TRUE },
  { "rtt-64-p99", "3 round trip 64 B, p99", "µs", TRUE },
  { "fanin-1", "4 fan-in 64 B, 1 client", "msg/s", FALSE },
  { "fanin-10", "4 fan-in 64 B, 10 clients", "msg/s", FALSE },
  { "fanin-100", "4 fan-in 64 B, 100 clients", "msg/s", FALSE },
  { "fanin-1000", "4 fan-in 64 B, 1000 clients", "msg/s", FALSE },
  { "fanin-10000", "4 fan-in 64 B, 10000 clients", "msg/s", FALSE, "oneway-64" },
  { "setup", "5 connection + handshake", "conn/s", FALSE },
  { "setup-4threads", "5 setup + round trip, 4 threads", "conn/s", FALSE, "setup" },
  { "memory", "5 server memory per idle connection", "bytes", TRUE },
  { "memory-10000", "5 memory per idle conn., 10000 clients", "bytes", TRUE, "memory" },
  { "threads-64", "6 4 threads, 64 B (Np: one client)", "msg/s", FALSE },
  { "request-64-median", "7 request round trip 64 B, median", "µs", TRUE, "rtt-64-median" },
  { "request-64-p99", "7 request round trip 64 B, p99", "µs", TRUE, "rtt-64-p99" },
  { "pipelined-64", "8 100 requests in flight, 64 B", "req/s", FALSE },
  { "fds-64-median", "9 round trip 64 B + 1 fd, median", "µs", TRUE, "rtt-64-median" },
  { "fds-64-p99", "9 round trip 64 B + 1 fd, p99", "µs", TRUE, "rtt-64-p99" },
  { "idle-0-median", "10 round trip 64 B, 0 idle, median", "µs", TRUE },
  { "idle-0-p99", "10 round trip 64 B, 0 idle, p99", "µs", TRUE },
  { "idle-1000-median", "10 round trip 64 B, 1000 idle, median", "µs", TRUE, "idle-0-median" },
  { "idle-1000-p99", "10 round trip 64 B, 1000 idle, p99", "µs", TRUE, "idle-0-p99" },
  { "idle-10000-median", "10 round trip 64 B, 10000 idle, median", "µs", TRUE, "idle-0-median" },
  { "idle-10000-p99", "10 round trip 64 B, 10000 idle, p99", "µs", TRUE, "idle-0-p99" },
  { "tls-oneway-64", "11 one-way 64 B", "msg/s", FALSE, NULL, TRUE },
  { "tls-oneway-1m", "11 one-way 1 MiB", "MB/s", FALSE, NULL, TRUE },
  { "tls-rtt-64-median", "11 round trip 64 B, median", "µs", TRUE, NULL, TRUE },
  { "tls-rtt-64-p99", "11 round trip 64 B, p99", "µs", TRUE, NULL, TRUE },
  { "tls-setup", "11 connect + handshake + round trip", "conn/s", FALSE, NULL, TRUE },
};

/* The aims for Np over TLS: its figure divided by a baseline's, at
 * least (rates) or at most (times) @ratio. */
typedef struct
{
  const char *row;
  const char *baseline;
  double      ratio;
} Target;

static const Target targets[] = {
  { "tls-oneway-64", "zmq-curve", 1.0 },
  { "tls-oneway-1m", "gio-tls", 0.7 },
  { "tls-rtt-64-median", "gio-tls", 1.2 },
};

static const Row *
row_of (const char *key)
{
  for (guint r = 0; key != NULL && r < G_N_ELEMENTS (rows); r++)
    if (g_str_equal (rows[r].key, key))
      return &rows[r];

  return NULL;
}

static char *self_path;
static char *work_dir;

/* The measurements: row key + transport name → GArray of doubles */
static GHashTable *results;

static void
record (const char           *row,
        const BenchTransport *t,
        double                value)
{
  g_autofree char *key = g_strdup_printf ("%s/%s", row, t->name);
  GArray *values = g_hash_table_lookup (results, key);

  if (values == NULL)
    {
      values = g_array_new (FALSE, FALSE, sizeof (double));
      g_hash_table_insert (results, g_steal_pointer (&key), values);
    }
  g_array_append_val (values, value);
}

static gboolean
median_of (const char           *row,
           const BenchTransport *t,
           double               *median)
{
  g_autofree char *key = g_strdup_printf ("%s/%s", row, t->name);
  GArray *values = g_hash_table_lookup (results, key);

  if (values == NULL || values->len == 0)
    return FALSE;

  g_array_sort (values, bench_compare_double);
  *median = g_array_index (values, double, values->len / 2);
  return TRUE;
}

/* Processes */

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
} Child;

static Child *
child_spawn (const char           *role,
             const BenchTransport *t,
             const char           *address,
             ...) G_GNUC_NULL_TERMINATED;

static Child *
child_spawn (const char           *role,
             const BenchTransport *t,
             const char           *address,
             ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  Child *child = g_new0 (Child, 1);
  const char *arg;
  va_list args;

  g_ptr_array_add (argv, self_path);
  g_ptr_array_add (argv, (char *) "--role");
  g_ptr_array_add (argv, (char *) role);
  g_ptr_array_add (argv, (char *) t->name);
  g_ptr_array_add (argv, (char *) address);
  va_start (args, address);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  child->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                      &error);
  if (child->process == NULL)
    g_error ("%s", error->message);
  child->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child->process));

  return child;
}

/* Reads the child's next line; its words after the first must be numbers. */
static char *
child_line (Child *child)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line_utf8 (child->out, NULL, NULL, &error);

  if (line == NULL)
    g_error ("A benchmark process ended without its result%s%s",
             error ? ": " : "", error ? error->message : "");

  return line;
}

static void
child_expect (Child      *child,
              const char *expected)
{
  g_autofree char *line = child_line (child);

  if (!g_str_equal (line, expected))
    g_error ("A benchmark process said “%s”, not “%s”", line, expected);
}

static double
child_number (Child      *child,
              const char *word,
              double     *second)
{
  g_autofree char *line = child_line (child);
  g_auto(GStrv) words = g_strsplit (line, " ", -1);

  if (g_strv_length (words) < 2 || !g_str_equal (words[0], word))
    g_error ("A benchmark process said “%s”, not “%s …”", line, word);
  if (second != NULL)
    *second = g_ascii_strtod (words[2] ? words[2] : "0", NULL);

  return g_ascii_strtod (words[1], NULL);
}

/* Waits for a server's "ready". A server over TCP names there the
 * address its clients are to connect to, which replaces @address. */
static void
child_ready (Child  *child,
             char  **address)
{
  g_autofree char *line = child_line (child);

  if (g_str_has_prefix (line, "ready ") && line[strlen ("ready ")] != '\0')
    {
      g_free (*address);
      *address = g_strdup (line + strlen ("ready "));
    }
  else if (!g_str_equal (line, "ready"))
    g_error ("A benchmark process said “%s”, not “ready”", line);
}

/* Closes the child's stdin (servers end then) and waits for it. */
static void
child_finish (Child *child)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_close (g_subprocess_get_stdin_pipe (child->process), NULL, NULL);
  if (!g_subprocess_wait_check (child->process, NULL, &error))
    g_error ("A benchmark process failed: %s", error->message);

  g_object_unref (child->out);
  g_object_unref (child->process);
  g_free (child);
}

static char *
address_for (const BenchTransport *t)
{
  static guint serial;

  /* An ephemeral port of the loopback interface, never another address. */
  if (t->tcp)
    return g_strdup ("tcp:127.0.0.1:0");

  return g_strdup_printf ("%s/%s-%u.sock", work_dir, t->name, ++serial);
}

/* Measurements */

static guint64
count_for (const Scenario       *s,
           const BenchTransport *t,
           guint                 scale)
{
  guint64 count = s->count / scale;

  if (g_str_has_prefix (t->name, "gdbus"))
    count /= s->slow_divisor;

  return MAX (count, 10);
}

/* The connections of a scenario; --quick makes fewer of them where there
 * are thousands. */
static guint
conns_for (const Scenario *s,
           guint           scale)
{
  if (s->kind == KIND_MEMORY)
    return MAX (s->conns / scale, 10);
  if (s->quick_conns)
    return s->conns / scale;

  return s->conns;
}

/* Idle connections are spread over processes of at most this many each,
 * which stays within any process's descriptors (ZeroMQ takes two a
 * socket). */
#define IDLE_PER_PROCESS 2500

static guint
idle_processes_for (guint conns)
{
  return (conns + IDLE_PER_PROCESS - 1) / IDLE_PER_PROCESS;
}

/* Starts @conns idle connections in processes of @role, and waits until
 * each process has made its share. */
static GPtrArray *
idlers_spawn (const char           *role,
              const BenchTransport *t,
              const char           *address,
              guint                 conns)
{
  GPtrArray *idlers = g_ptr_array_new ();
  guint n_processes = idle_processes_for (conns);

  for (guint i = 0; i < n_processes; i++)
    {
      guint share = conns / n_processes + (i < conns % n_processes);
      g_autofree char *share_str = g_strdup_printf ("%u", share);

      g_ptr_array_add (idlers, child_spawn (role, t, address, share_str, NULL));
    }
  for (guint i = 0; i < idlers->len; i++)
    child_expect (g_ptr_array_index (idlers, i), "connected");

  return idlers;
}

static void
idlers_finish (GPtrArray *idlers)
{
  for (guint i = 0; i < idlers->len; i++)
    child_finish (g_ptr_array_index (idlers, i));
  g_ptr_array_unref (idlers);
}

/* The open files a scenario needs in one process, its server's or a
 * client process's: a server holds a descriptor a connection, and Np
 * keeps an eighth of the limit for the application; a client process
 * of ZeroMQ two a socket. */
static guint64
files_needed (const Scenario *s,
              guint           scale)
{
  guint conns = conns_for (s, scale);
  guint per_process;

  switch (s->kind)
    {
    case KIND_ONEWAY:
      per_process = (conns + MIN (conns, 10) - 1) / MAX (MIN (conns, 10), 1);
      break;
    case KIND_MEMORY:
    case KIND_IDLE:
      per_process = MIN (conns, IDLE_PER_PROCESS);
      break;
    default:
      return 0;
    }

  return MAX ((conns + 1 + 64) * 8 / 7 + 1, 2 * per_process + 64);
}

static void
measure_oneway (const Scenario       *s,
                const BenchTransport *t,
                guint                 scale)
{
  g_autofree char *address = address_for (t);
  guint n_conns = conns_for (s, scale);
  guint64 per_conn = MAX (count_for (s, t, scale) / n_conns, 10);
  g_autofree char *total = g_strdup_printf ("%" G_GUINT64_FORMAT, per_conn * n_conns);
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  g_autofree char *per_conn_str = g_strdup_printf ("%" G_GUINT64_FORMAT, per_conn);
  guint n_processes = MIN (n_conns, 10);
  g_autoptr(GPtrArray) senders = g_ptr_array_new ();
  Child *sink;
  double rate;

  sink = child_spawn ("sink", t, address, total, size, NULL);
  child_ready (sink, &address);

  /* Many connections are spread over up to ten client processes. */
  for (guint i = 0; i < n_processes; i++)
    {
      guint conns = n_conns / n_processes + (i < n_conns % n_processes);
      g_autofree char *conns_str = g_strdup_printf ("%u", conns);

      g_ptr_array_add (senders, child_spawn ("source", t, address, conns_str, per_conn_str, size, NULL));
    }

  /* Every source connected before any sends. */
  for (guint i = 0; i < senders->len; i++)
    child_expect (g_ptr_array_index (senders, i), "connected");
  for (guint i = 0; i < senders->len; i++)
    {
      Child *sender = g_ptr_array_index (senders, i);

      if (!g_output_stream_write_all (g_subprocess_get_stdin_pipe (sender->process), "go\n", 3,
                                      NULL, NULL, NULL))
        g_error ("A benchmark process did not take its start");
    }

  rate = child_number (sink, "rate", NULL);
  for (guint i = 0; i < senders->len; i++)
    child_finish (g_ptr_array_index (senders, i));
  child_finish (sink);

  if (g_str_equal (s->unit, "GB/s"))
    rate *= s->size / 1e9;
  else if (g_str_equal (s->unit, "MB/s"))
    rate *= s->size / 1e6;
  record (s->key, t, rate);
}

/* Records the median and p99 of the round trips @child reports, under
 * the scenario's key. */
static void
record_rtts (const Scenario       *s,
             const BenchTransport *t,
             Child                *child)
{
  g_autofree char *median_key = g_strconcat (s->key, "-median", NULL);
  g_autofree char *p99_key = g_strconcat (s->key, "-p99", NULL);
  double median, p99;

  median = child_number (child, "rtt", &p99);
  record (median_key, t, median);
  record (p99_key, t, p99);
}

/* A round trip; in scenario 9 each message carries a descriptor. */
static void
measure_rtt (const Scenario       *s,
             const BenchTransport *t,
             guint                 scale)
{
  g_autofree char *address = address_for (t);
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, count_for (s, t, scale));
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  gboolean fds = s->kind == KIND_FDS;
  Child *echo, *pinger;

  echo = child_spawn (fds ? "fd-echo" : "echo", t, address, NULL);
  child_ready (echo, &address);
  pinger = child_spawn (fds ? "fd-pinger" : "pinger", t, address, count, size, NULL);
  record_rtts (s, t, pinger);
  child_finish (pinger);
  child_finish (echo);
}

static void
measure_setup (const Scenario       *s,
               const BenchTransport *t,
               guint                 scale)
{
  g_autofree char *address = address_for (t);
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, count_for (s, t, scale));
  Child *echo, *connector;

  echo = child_spawn ("echo", t, address, NULL);
  child_ready (echo, &address);
  connector = child_spawn ("connector", t, address, count, NULL);
  record (s->key, t, child_number (connector, "rate", NULL));
  child_finish (connector);
  child_finish (echo);
}

static void
measure_memory (const Scenario       *s,
                const BenchTransport *t,
                guint                 scale)
{
  g_autofree char *address = address_for (t);
  guint n_conns = conns_for (s, scale);
  g_autofree char *conns = g_strdup_printf ("%u", n_conns);
  GPtrArray *idlers;
  Child *holder;

  holder = child_spawn ("holder", t, address, conns, NULL);
  child_ready (holder, &address);
  idlers = idlers_spawn ("idler", t, address, n_conns);
  record (s->key, t, child_number (holder, "memory", NULL));
  child_finish (holder);
  idlers_finish (idlers);
}

/* One client's round trips while the server holds idle connections from
 * other processes, every one of them connected and known to the server
 * before the first round trip. */
static void
measure_idle (const Scenario       *s,
              const BenchTransport *t,
              guint                 scale)
{
  g_autofree char *address = address_for (t);
  guint n_conns = conns_for (s, scale);
  g_autofree char *conns = g_strdup_printf ("%u", n_conns);
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, count_for (s, t, scale));
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  GPtrArray *idlers;
  Child *echo, *pinger;

  echo = child_spawn ("held-echo", t, address, conns, NULL);
  child_ready (echo, &address);
  idlers = idlers_spawn ("idle-client", t, address, n_conns);
  child_expect (echo, "held");
  pinger = child_spawn ("pinger", t, address, count, size, NULL);
  record_rtts (s, t, pinger);
  child_finish (pinger);
  idlers_finish (idlers);
  child_finish (echo);
}

/* Connections made from several threads of one process at once, each
 * carrying one round trip. */
static void
measure_thread_setup (const Scenario       *s,
                      const BenchTransport *t,
                      guint                 scale)
{
  g_autofree char *address = address_for (t);
  g_autofree char *threads = g_strdup_printf ("%u", s->conns);
  g_autofree char *per_thread = g_strdup_printf ("%" G_GUINT64_FORMAT,
                                                 MAX (count_for (s, t, scale) / s->conns, 10));
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  Child *echo, *connector;

  echo = child_spawn ("echo", t, address, NULL);
  child_ready (echo, &address);
  connector = child_spawn ("thread-connector", t, address, threads, per_thread, size, NULL);
  record (s->key, t, child_number (connector, "rate", NULL));
  child_finish (connector);
  child_finish (echo);
}

/* Np's threads share one client; the others own a connection each. */
static void
measure_threads (const Scenario       *s,
                 const BenchTransport *t,
                 guint                 scale)
{
  g_autofree char *address = address_for (t);
  g_autofree char *threads = g_strdup_printf ("%u", s->conns);
  g_autofree char *per_thread = g_strdup_printf ("%" G_GUINT64_FORMAT,
                                                 MAX (count_for (s, t, scale) / s->conns, 10));
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  Child *sink, *source;

  sink = child_spawn ("tagged-sink", t, address, threads, per_thread, size, NULL);
  child_ready (sink, &address);
  source = child_spawn ("thread-source", t, address, threads, per_thread, size, NULL);
  record (s->key, t, child_number (sink, "rate", NULL));
  child_finish (source);
  child_finish (sink);
}

/* One request at a time gives a round trip, many in flight a rate. */
static void
measure_request (const Scenario       *s,
                 const BenchTransport *t,
                 guint                 scale)
{
  g_autofree char *address = address_for (t);
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, count_for (s, t, scale));
  g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, s->size);
  g_autofree char *window = g_strdup_printf ("%u", s->conns);
  Child *replier, *requester;

  replier = child_spawn ("replier", t, address, window, NULL);
  child_ready (replier, &address);
  requester = child_spawn ("requester", t, address, count, size, window, NULL);
  if (s->conns == 1)
    record_rtts (s, t, requester);
  else
    record (s->key, t, child_number (requester, "rate", NULL));
  child_finish (requester);
  child_finish (replier);
}

static void
measure (const Scenario       *s,
         const BenchTransport *t,
         guint                 scale)
{
  if (s->tcp != t->tcp || g_hash_table_contains (unavailable, t))
    return;

  switch (s->kind)
    {
    case KIND_ONEWAY:
      if (t->sink != NULL)
        measure_oneway (s, t, scale);
      break;
    case KIND_RTT:
      if (t->pinger != NULL)
        measure_rtt (s, t, scale);
      break;
    case KIND_FDS:
      if (t->fd_pinger != NULL)
        measure_rtt (s, t, scale);
      break;
    case KIND_SETUP:
      if (t->connector != NULL)
        measure_setup (s, t, scale);
      break;
    case KIND_MEMORY:
      if (t->holder != NULL)
        measure_memory (s, t, scale);
      break;
    case KIND_THREADS:
      if (t->thread_source != NULL)
        measure_threads (s, t, scale);
      break;
    case KIND_REQUEST:
      if (t->requester != NULL)
        measure_request (s, t, scale);
      break;
    case KIND_IDLE:
      if (t->held_echo != NULL)
        measure_idle (s, t, scale);
      break;
    case KIND_THREAD_SETUP:
      if (t->thread_connector != NULL)
        measure_thread_setup (s, t, scale);
      break;
    }
}

/* Output */

static char *
format_value (double      value,
              const char *unit)
{
  if (g_str_equal (unit, "GB/s"))
    return g_strdup_printf ("%.2f", value);
  if (g_str_equal (unit, "µs"))
    return g_strdup_printf ("%.1f", value);
  if (g_str_equal (unit, "MB/s"))
    return g_strdup_printf ("%.0f", value);
  if (value >= 1e6)
    return g_strdup_printf ("%.2fM", value / 1e6);
  if (value >= 1e4)
    return g_strdup_printf ("%.0fk", value / 1e3);
  return g_strdup_printf ("%.0f", value);
}

static gboolean
group_measured (gboolean tcp)
{
  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
      {
        double value;

        if (rows[r].tcp == tcp && transports[i]->tcp == tcp &&
            median_of (rows[r].key, transports[i], &value))
          return TRUE;
      }

  return FALSE;
}

static const BenchTransport *
transport_named (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    if (g_str_equal (transports[i]->name, name))
      return transports[i];

  return NULL;
}

/* The table of one group, Unix socket or TCP: its transports as columns,
 * every figure also divided into the reference's. */
static void
print_group (gboolean tcp)
{
  const BenchTransport *reference = reference_of (tcp);

  printf ("\n%-38s %-6s", tcp ? "scenario over loopback TCP" : "scenario", "unit");
  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    if (transports[i]->tcp == tcp)
      printf (" %18s", transports[i]->title);
  printf ("\n");

  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    {
      double ref;
      gboolean have_ref;

      if (rows[r].tcp != tcp)
        continue;
      have_ref = median_of (rows[r].key, reference, &ref);

      printf ("%-38s %-6s", rows[r].title, rows[r].unit);
      for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
        {
          double value;
          g_autofree char *cell = NULL;

          if (transports[i]->tcp != tcp)
            continue;
          if (!median_of (rows[r].key, transports[i], &value))
            cell = g_strdup ("-");
          else if (transports[i] == reference || !have_ref || value == 0)
            cell = format_value (value, rows[r].unit);
          else
            {
              g_autofree char *text = format_value (value, rows[r].unit);
              cell = g_strdup_printf ("%s (%.2fx)", text, ref / value);
            }
          printf (" %18s", cell);
        }
      printf ("\n");
    }

  printf ("\nMedians of the rounds. (N.NNx) is %s's value divided by that column's: "
          "above 1 is better for rates, below 1 for times and memory.\n", reference->title);
}

static void
print_table (void)
{
  if (group_measured (FALSE))
    {
      print_group (FALSE);

      for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
        {
          const Row *reference_row = row_of (rows[r].np_reference);
          double np, reference;

          if (reference_row != NULL &&
              median_of (rows[r].key, &bench_np, &np) &&
              median_of (reference_row->key, &bench_np, &reference) && reference != 0)
            printf ("Np, %s: %.2fx its %s\n",
                    rows[r].title, np / reference, strchr (reference_row->title, ' ') + 1);
        }
    }

  if (group_measured (TRUE))
    {
      print_group (TRUE);

      for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
        {
          const Row *row = row_of (targets[i].row);
          const BenchTransport *baseline = transport_named (targets[i].baseline);
          double np, value;
          gboolean met;

          if (baseline == NULL ||
              !median_of (row->key, &bench_np_tls, &np) ||
              !median_of (row->key, baseline, &value) || value == 0)
            continue;
          met = row->lower_is_better ? np / value <= targets[i].ratio
                                     : np / value >= targets[i].ratio;
          printf ("Target, %s: %s %.2fx %s, aim %s %.1fx: %s\n",
                  strchr (row->title, ' ') + 1, bench_np_tls.title, np / value, baseline->title,
                  row->lower_is_better ? "<=" : ">=", targets[i].ratio, met ? "met" : "NOT MET");
        }
    }
}

static void
write_json (const char *path,
            guint       rounds,
            gboolean    quick)
{
  GString *json = g_string_new ("{\n");
  g_autoptr(GError) error = NULL;

  g_string_append_printf (json, "  \"rounds\": %u,\n  \"quick\": %s,\n  \"results\": [\n",
                          rounds, quick ? "true" : "false");
  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    {
      const BenchTransport *reference = reference_of (rows[r].tcp);
      double np = 0;
      gboolean have_np = median_of (rows[r].key, reference, &np);

      g_string_append_printf (json, "    {\"scenario\": \"%s\", \"title\": \"%s\", \"unit\": \"%s\", "
                              "\"lower_is_better\": %s, \"median\": {",
                              rows[r].key, rows[r].title, rows[r].unit,
                              rows[r].lower_is_better ? "true" : "false");
      for (guint i = 0, n = 0; i < G_N_ELEMENTS (transports); i++)
        {
          double value;

          if (median_of (rows[r].key, transports[i], &value))
            g_string_append_printf (json, "%s\"%s\": %.6g", n++ ? ", " : "", transports[i]->name, value);
        }
      /* Over TCP, the ratios are Np with TLS's ("np_ratio" still). */
      if (rows[r].tcp)
        g_string_append_printf (json, "}, \"ratio_of\": \"%s\"", reference->name);
      else
        g_string_append (json, "}");
      g_string_append (json, ", \"np_ratio\": {");
      for (guint i = 0, n = 0; i < G_N_ELEMENTS (transports); i++)
        {
          double value;

          if (transports[i] != reference && transports[i]->tcp == rows[r].tcp &&
              have_np && median_of (rows[r].key, transports[i], &value) && value != 0)
            g_string_append_printf (json, "%s\"%s\": %.4f", n++ ? ", " : "", transports[i]->name, np / value);
        }
      g_string_append (json, "}");
      if (rows[r].np_reference != NULL)
        {
          double reference_value;

          g_string_append_printf (json, ", \"np_reference\": \"%s\"", rows[r].np_reference);
          if (have_np && median_of (rows[r].np_reference, &bench_np, &reference_value) && reference_value != 0)
            g_string_append_printf (json, ", \"np_reference_ratio\": %.4f", np / reference_value);
        }
      g_string_append_printf (json, "}%s\n", r + 1 < G_N_ELEMENTS (rows) ? "," : "");
    }
  g_string_append (json, "  ]\n}\n");

  if (g_str_equal (path, "-"))
    fputs (json->str, stdout);
  else if (!g_file_set_contents (path, json->str, json->len, &error))
    g_error ("%s", error->message);

  g_string_free (json, TRUE);
}

static void
print_machine (void)
{
  g_autofree char *cpuinfo = NULL;
  const char *model = NULL;
  struct utsname uts;

  uname (&uts);
  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL) &&
      (model = strstr (cpuinfo, "model name")))
    model = strchr (model, ':') + 2;

  printf ("np-bench %s: %d cores%s%.*s, Linux %s, GLib %u.%u.%u\n",
          PACKAGE_VERSION, (int) sysconf (_SC_NPROCESSORS_ONLN),
          model ? ", " : "", model ? (int) strcspn (model, "\n") : 0, model ? model : "",
          uts.release, glib_major_version, glib_minor_version, glib_micro_version);
#ifndef HAVE_ZMQ
  printf ("ZeroMQ: not measured, libzmq was not found when this was built\n");
#endif
}

static void
remove_work_dir (void)
{
  g_autoptr(GDir) dir = g_dir_open (work_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (work_dir, name, NULL);

      g_unlink (path);
    }
  g_rmdir (work_dir);
}

/* Runs @argv, a program that makes a certificate; FALSE if it failed. */
static gboolean
run_quietly (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("np-bench: %s: %s\n%s", argv[0], error->message, err ? err : "");
      return FALSE;
    }

  return TRUE;
}

/* A self-signed certificate for 127.0.0.1 and its key (ECDSA P-256) in
 * the work directory, made with certtool (GnuTLS) or else openssl, for the
 * TLS servers: the roles find the files through the environment. */
static gboolean
tls_certificate_make (char **why)
{
  g_autofree char *cert = g_build_filename (work_dir, "cert.pem", NULL);
  g_autofree char *key = g_build_filename (work_dir, "key.pem", NULL);
  g_autofree char *template = g_build_filename (work_dir, "cert.cfg", NULL);
  g_autofree char *certtool = g_find_program_in_path ("certtool");
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autoptr(GError) error = NULL;

  if (certtool != NULL)
    {
      const char *privkey[] = { certtool, "--generate-privkey", "--key-type=ecdsa",
                                "--curve=secp256r1", "--outfile", key, NULL };
      const char *self_signed[] = { certtool, "--generate-self-signed", "--load-privkey", key,
                                    "--template", template, "--outfile", cert, NULL };
      const char *contents = "cn = \"127.0.0.1\"\n"
                             "ip_address = \"127.0.0.1\"\n"
                             "expiration_days = 2\n"
                             "tls_www_server\n"
                             "signing_key\n";

      if (!g_file_set_contents (template, contents, -1, &error))
        g_error ("%s", error->message);
      if (!run_quietly (privkey) || !run_quietly (self_signed))
        {
          *why = g_strdup ("certtool could not make a certificate");
          return FALSE;
        }
    }
  else if (openssl != NULL)
    {
      const char *self_signed[] = { openssl, "req", "-x509", "-newkey", "ec",
                                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                    "-keyout", key, "-out", cert, "-days", "2",
                                    "-subj", "/CN=127.0.0.1",
                                    "-addext", "subjectAltName=IP:127.0.0.1", NULL };

      if (!run_quietly (self_signed))
        {
          *why = g_strdup ("openssl could not make a certificate");
          return FALSE;
        }
    }
  else
    {
      *why = g_strdup ("neither certtool (Debian: gnutls-bin) nor openssl is installed");
      return FALSE;
    }

  g_setenv (BENCH_TLS_CERT_ENV, cert, TRUE);
  g_setenv (BENCH_TLS_KEY_ENV, key, TRUE);

  return TRUE;
}

/* Options */

static gboolean
is_scenario (const char *key)
{
  for (guint s = 0; s < G_N_ELEMENTS (scenarios); s++)
    if (g_str_equal (scenarios[s].key, key))
      return TRUE;

  return FALSE;
}

/* A prefix that is a whole key (memory, setup) names that scenario only,
 * not the larger ones named after it (memory-10000, setup-4threads). */
static gboolean
has_prefix (const char *key,
            GStrv       prefixes)
{
  for (guint i = 0; prefixes[i] != NULL; i++)
    if (is_scenario (prefixes[i]) ? g_str_equal (key, prefixes[i])
                                  : g_str_has_prefix (key, prefixes[i]))
      return TRUE;

  return FALSE;
}

static gboolean
has_transport (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    if (g_str_equal (transports[i]->name, name))
      return TRUE;

  return FALSE;
}

/* Roles */

static int
run_role (int    argc,
          char **argv)
{
  const char *role = argv[2];
  const BenchTransport *t = NULL;
  const char *address = argv[4];

  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    if (g_str_equal (transports[i]->name, argv[3]))
      t = transports[i];
  if (t == NULL)
    g_error ("No transport “%s”", argv[3]);
  bench_role_transport = t;

#define ARG(n) g_ascii_strtoull (argv[n], NULL, 10)
  if (g_str_equal (role, "sink") && argc == 7)
    return t->sink (address, ARG (5), ARG (6));
  if (g_str_equal (role, "source") && argc == 8)
    return t->source (address, ARG (5), ARG (6), ARG (7));
  if (g_str_equal (role, "echo") && argc == 5)
    return t->echo (address);
  if (g_str_equal (role, "pinger") && argc == 7)
    return t->pinger (address, ARG (5), ARG (6));
  if (g_str_equal (role, "connector") && argc == 6)
    return t->connector (address, ARG (5));
  if (g_str_equal (role, "idler") && argc == 6)
    return t->idler (address, ARG (5));
  if (g_str_equal (role, "holder") && argc == 6)
    return t->holder (address, ARG (5));
  if (g_str_equal (role, "tagged-sink") && argc == 8)
    return t->tagged_sink (address, ARG (5), ARG (6), ARG (7));
  if (g_str_equal (role, "thread-source") && argc == 8)
    return t->thread_source (address, ARG (5), ARG (6), ARG (7));
  if (g_str_equal (role, "replier") && argc == 6)
    return t->replier (address, ARG (5));
  if (g_str_equal (role, "requester") && argc == 8)
    return t->requester (address, ARG (5), ARG (6), ARG (7));
  if (g_str_equal (role, "fd-echo") && argc == 5)
    return t->fd_echo (address);
  if (g_str_equal (role, "fd-pinger") && argc == 7)
    return t->fd_pinger (address, ARG (5), ARG (6));
  if (g_str_equal (role, "held-echo") && argc == 6)
    return t->held_echo (address, ARG (5));
  if (g_str_equal (role, "idle-client") && argc == 6)
    return t->idle_client (address, ARG (5));
  if (g_str_equal (role, "thread-connector") && argc == 8)
    return t->thread_connector (address, ARG (5), ARG (6), ARG (7));
#undef ARG

  g_error ("Bad role arguments");
}

int
main (int   argc,
      char *argv[])
{
  gboolean quick = FALSE;
  int rounds = 0;
  g_autofree char *json = NULL;
  g_autofree char *only = NULL;
  g_autofree char *only_transports = NULL;
  g_auto(GStrv) prefixes = NULL;
  g_auto(GStrv) names = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit limit;
  guint64 files;
  g_autofree gboolean *skipped = g_new0 (gboolean, G_N_ELEMENTS (scenarios));
  const GOptionEntry entries[] = {
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "A short run that only proves every scenario works", NULL },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Rounds to take the median of (default 5, 1 with --quick)", "N" },
    { "json", 'j', 0, G_OPTION_ARG_FILENAME, &json, "Also write the results as JSON to FILE (- for stdout)", "FILE" },
    { "only", 'o', 0, G_OPTION_ARG_STRING, &only,
      "Only the scenarios whose key starts with one of these prefixes (oneway-64, oneway-1m, "
      "rtt, fanin, setup, memory, threads, request, pipelined, fds, idle; over loopback TCP: tls, "
      "tls-oneway-64, tls-oneway-1m, tls-rtt, tls-setup), separated by commas; "
      "a whole key names that scenario only", "PREFIX,..." },
    { "transports", 't', 0, G_OPTION_ARG_STRING, &only_transports,
      "Only these transports (np, raw, raw-batched, glib, gdbus, zmq; over loopback TCP: "
      "np-tls, np-tcp, gio-tls, zmq-curve, zmq-tcp, gdbus-tcp), separated by commas", "NAME,..." },
    { NULL }
  };

  /* Thousands of connections in one process: as many descriptors as the
   * hard limit allows, for this process and the ones it starts. */
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
  files = getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
            ? limit.rlim_cur : G_MAXUINT64;

  self_path = g_file_read_link ("/proc/self/exe", NULL);
  if (argc >= 5 && g_str_equal (argv[1], "--role"))
    return run_role (argc, argv);

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "Measure Np against a raw socket, GDBus peer-to-peer and ZeroMQ, "
                                "and over loopback TCP, Np with TLS against a bare GIO TLS stream, "
                                "ZeroMQ (plain and CURVE) and GDBus.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("np-bench: %s\n", error->message);
      return 2;
    }
  if (rounds <= 0)
    rounds = quick ? 1 : 5;
  if (only != NULL)
    prefixes = g_strsplit (only, ",", -1);
  if (only_transports != NULL)
    {
      names = g_strsplit (only_transports, ",", -1);
      for (guint n = 0; names[n] != NULL; n++)
        if (!has_transport (names[n]))
          {
            g_printerr ("np-bench: no transport “%s” in this build\n", names[n]);
            return 2;
          }
    }

  work_dir = g_dir_make_tmp ("np-bench-XXXXXX", &error);
  if (work_dir == NULL)
    g_error ("%s", error->message);
  results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref);
  unavailable = g_hash_table_new (NULL, NULL);

  print_machine ();

  /* Over TCP: a certificate for the TLS servers, and whatever else each
   * transport needs; one that cannot run is skipped, and a line says why. */
  for (guint s = 0; s < G_N_ELEMENTS (scenarios); s++)
    if (scenarios[s].tcp && (prefixes == NULL || has_prefix (scenarios[s].key, prefixes)))
      {
        g_autofree char *why = NULL;

        if (!tls_certificate_make (&why))
          printf ("TLS: not measured, %s\n", why);
        for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
          {
            g_autofree char *reason = NULL;

            if (transports[i]->prepare == NULL ||
                (names != NULL && !g_strv_contains ((const char * const *) names, transports[i]->name)))
              continue;
            if (!transports[i]->prepare (&reason))
              {
                printf ("Skipped %s: %s\n", transports[i]->title, reason);
                g_hash_table_add (unavailable, (gpointer) transports[i]);
              }
          }
        break;
      }
  for (int round = 0; round < rounds; round++)
    {
      for (guint s = 0; s < G_N_ELEMENTS (scenarios); s++)
        {
          guint64 needed = files_needed (&scenarios[s], quick ? 100 : 1);

          if (prefixes != NULL && !has_prefix (scenarios[s].key, prefixes))
            continue;
          if (needed > files)
            {
              if (!skipped[s])
                printf ("Skipped %s: it needs %" G_GUINT64_FORMAT " open files in one process, "
                        "the hard limit is %" G_GUINT64_FORMAT " (ulimit -Hn)\n",
                        scenarios[s].key, needed, files);
              skipped[s] = TRUE;
              continue;
            }

          if (isatty (STDERR_FILENO))
            fprintf (stderr, "\rround %d of %d: %-40s", round + 1, rounds, scenarios[s].title);
          for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
            if (names == NULL || g_strv_contains ((const char * const *) names, transports[i]->name))
              measure (&scenarios[s], transports[i], quick ? 100 : 1);
        }
    }
  if (isatty (STDERR_FILENO))
    fprintf (stderr, "\r%-70s\r", "");

  print_table ();
  if (json != NULL)
    write_json (json, rounds, quick);

  remove_work_dir ();
  g_hash_table_unref (unavailable);
  return 0;
}
