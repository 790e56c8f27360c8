/* bench.h: what np-bench asks of each transport
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each role runs in a process of its own, started by the orchestrator,
 * and reports on stdout in one line: a server role prints "ready" once it
 * listens, then its result; a client role prints its result. A server
 * role ends when its stdin closes.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Iterates the main context until @cond holds. */
#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    while (!(cond)) \
      g_main_context_iteration (NULL, TRUE); \
  } G_STMT_END


typedef struct
{
  const char *name;
  const char *title;
  /* Receives @total messages of @size bytes on any number of connections;
   * prints "rate MSGS_PER_SECOND", timed from the first to the last. */
  int (*sink)      (const char *address, guint64 total, gsize size);
  /* Sends @per_conn messages of @size bytes on each of @conns connections,
   * round robin, then closes once everything is written. */
  int (*source)    (const char *address, guint conns, guint64 per_conn, gsize size);
  /* Echoes every message to its sender. */
  int (*echo)      (const char *address);
  /* Sends a message and waits for its echo, @count times; prints
   * "rtt MEDIAN_US P99_US". */
  int (*pinger)    (const char *address, guint count, gsize size);
  /* Opens @count connections one after the other, each carrying one round
   * trip to an echo server; prints "rate CONNECTIONS_PER_SECOND". */
  int (*connector) (const char *address, guint count);
  /* Opens @conns connections, prints "connected", and keeps them idle. */
  int (*idler)     (const char *address, guint conns);
  /* A server that waits for @conns idle connections and prints
   * "memory BYTES_PER_CONNECTION" of resident memory. */
  int (*holder)    (const char *address, guint conns);
} BenchTransport;

extern const BenchTransport bench_np;
extern const BenchTransport bench_raw;
extern const BenchTransport bench_raw_batched;
extern const BenchTransport bench_gdbus;
extern const BenchTransport bench_glib;
#ifdef HAVE_ZMQ
extern const BenchTransport bench_zmq;
#endif

/* Shared helpers (np-bench.c) */
void    bench_ready          (void);
void    bench_report         (const char *format, ...) G_GNUC_PRINTF (1, 2);
gint64  bench_rss_bytes      (void);
int     bench_compare_double (gconstpointer a, gconstpointer b);
void    bench_print_rtts     (GArray *usecs);
guint8 *bench_payload        (gsize size);
gboolean bench_stdin_closed_cb (gint fd, GIOCondition condition, gpointer loop);
void    bench_wait_stdin_closed (void);

G_END_DECLS
