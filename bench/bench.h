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
 *
 * A transport over TCP is given the address "tcp:127.0.0.1:0": its
 * server role binds an ephemeral port of the loopback interface and
 * prints "ready ADDRESS" (bench_ready_at()), and its client roles are
 * given that ADDRESS. The certificate of TLS servers is in the files that
 * the environment variables BENCH_TLS_CERT_ENV and BENCH_TLS_KEY_ENV name.
 */

#pragma once

#include <gio/gio.h>

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
  /* Over loopback TCP: takes part in the TCP and TLS scenarios only. */
  gboolean    tcp;
  /* In the orchestrator, before any measurement: FALSE, with the reason
   * in @why, when this transport cannot be measured on this machine. */
  gboolean (*prepare) (char **why);
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
  /* Receives @per_thread numbered messages of @size bytes from each of
   * @threads senders, and from each an end mark (see BenchTags); fails
   * unless every sender's messages arrived complete and in order; prints
   * "rate MSGS_PER_SECOND", timed from the first to the last. */
  int (*tagged_sink)   (const char *address, guint threads, guint64 per_thread, gsize size);
  /* Sends @per_thread numbered messages of @size bytes, then an end mark,
   * from each of @threads threads of one process. */
  int (*thread_source) (const char *address, guint threads, guint64 per_thread, gsize size);
  /* Answers every request with its own message, for a client that keeps
   * @window requests in flight. */
  int (*replier)   (const char *address, guint window);
  /* Sends @count requests of @size bytes, keeping @window of them in
   * flight: a new one goes out on each reply. With a window of 1, prints
   * "rtt MEDIAN_US P99_US"; otherwise "rate REQUESTS_PER_SECOND", timed
   * from the first request to the last reply. */
  int (*requester) (const char *address, guint64 count, gsize size, guint window);
  /* Echoes every message that comes with one descriptor, with one
   * descriptor of its own (see bench_fd_new()); fails on a message that
   * comes without. */
  int (*fd_echo)   (const char *address);
  /* Sends a message with one descriptor and waits for its echo and the
   * descriptor that comes back, @count times; prints
   * "rtt MEDIAN_US P99_US". */
  int (*fd_pinger) (const char *address, guint count, gsize size);
  /* An echo server that first waits for @idle connections of
   * idle_client() and prints "held" once every one of them has completed
   * its handshake (ZeroMQ: sent its hello), then echoes as echo() does;
   * pinger() measures it. */
  int (*held_echo) (const char *address, guint idle);
  /* Opens @conns connections to held_echo() (ZeroMQ: DEALER sockets
   * that each send one hello), prints "connected", and keeps them idle. */
  int (*idle_client) (const char *address, guint conns);
  /* Opens @per_thread connections one after the other from each of
   * @threads threads at once, each connection carrying one round trip of
   * @size bytes to an echo server before it closes; prints
   * "rate CONNECTIONS_PER_SECOND". */
  int (*thread_connector) (const char *address, guint threads, guint per_thread, gsize size);
} BenchTransport;

extern const BenchTransport bench_np;
extern const BenchTransport bench_raw;
extern const BenchTransport bench_raw_batched;
extern const BenchTransport bench_gdbus;
extern const BenchTransport bench_glib;
extern const BenchTransport bench_np_tls;
extern const BenchTransport bench_np_tcp;
extern const BenchTransport bench_gio_tls;
extern const BenchTransport bench_gdbus_tcp;
#ifdef HAVE_ZMQ
extern const BenchTransport bench_zmq;
extern const BenchTransport bench_zmq_tcp;
extern const BenchTransport bench_zmq_curve;
#endif

/* In a role's process: the transport it runs for. */
extern const BenchTransport *bench_role_transport;

#define BENCH_TLS_CERT_ENV "NP_BENCH_TLS_CERT"
#define BENCH_TLS_KEY_ENV  "NP_BENCH_TLS_KEY"

/* Shared helpers (np-bench.c) */
void    bench_ready          (void);
void    bench_ready_at       (const char *address);
GTlsCertificate *
        bench_tls_certificate (void);
gboolean bench_tls_prepare   (char **why);
void    bench_connected_wait_go
                             (void);
void    bench_report         (const char *format, ...) G_GNUC_PRINTF (1, 2);
gint64  bench_rss_bytes      (void);
int     bench_compare_double (gconstpointer a, gconstpointer b);
void    bench_print_rtts     (GArray *usecs);
void    bench_check_reply    (gsize size, gsize expected);
guint8 *bench_payload        (gsize size);
int     bench_fd_new         (void);
void    bench_fd_check_close (int fd);
gboolean bench_stdin_closed_cb (gint fd, GIOCondition condition, gpointer loop);
void    bench_wait_stdin_closed (void);

/* Numbered messages from several sending threads: a message of the
 * scenario's size starts with its thread's index (32 bits) and its number
 * in that thread (64 bits), counted from 0; a thread ends with a message
 * of BENCH_TAG_END_SIZE bytes that holds only its index. */
#define BENCH_TAG_SIZE     12
#define BENCH_TAG_END_SIZE 4

typedef struct
{
  guint    threads;
  guint64  per_thread;
  gsize    size;
  guint64 *next;     /* per thread: the number expected next */
  guint    ended;    /* threads whose end mark arrived */
  guint64  count;    /* numbered messages received */
  gint64   first;
  gint64   last;
} BenchTags;

void     bench_tags_init    (BenchTags *tags, guint threads, guint64 per_thread, gsize size);
void     bench_tags_clear   (BenchTags *tags);
void     bench_tags_write   (guint8 *data, guint32 thread, guint64 number);
void     bench_tags_check   (BenchTags *tags, const guint8 *data, gsize len);
gboolean bench_tags_done    (BenchTags *tags);
void     bench_tags_report  (BenchTags *tags);

G_END_DECLS
