/* np-lock-private.h: the locks of the library, the order they are taken
 * in, and the check that a _locked function's lock is held
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Locks, outermost first: a thread may take one while it holds those
 * above it, never one above while it holds one below.
 *
 *   1. An NpPipeClient's lock (np-pipe-client.c): its connection, the
 *      connect under way, what is held for a reconnect. Sending, and
 *      releasing what was held, take 4 inside it, so that nothing sent
 *      later overtakes them.
 *      An NpPipeServer's lock (np-pipe-server.c): its settings and
 *      listener. It takes 3 and the socket-activation lock inside it, and
 *      no connection's lock.
 *   2. An NpPipeConnectionList's lock (np-connection-list.c): taken
 *      alone.
 *   3. An NpListener's lock (np-listener.c), then its registry lock
 *      (`listening`).
 *   4. A stream's lock: the state of one connection (see
 *      np-stream-internal.h, which orders the locks a stream takes
 *      inside it: the flusher's, the flusher registry's, an
 *      NpStreamWait's, the poller's).
 *   5. A poller's lock (np-poller-epoll.c, one per main context), or its
 *      registry lock (`pollers`), never one inside the other: taken
 *      inside 3 or 4 to watch a descriptor or arm a deadline, and never
 *      held while a watch's or timer's callback runs. Only GLib's own
 *      (g_source_set_ready_time() takes the context's) are taken inside
 *      them.
 *   6. Over TCP (np-tls.c): an NpTlsAcceptor's lock (a server's peers in
 *      their TLS handshake) and the lock of the queue of handshakes, each
 *      taken alone, with nothing inside; the queue's may be taken inside
 *      1, when cancelling a connect cancels a handshake that waits for
 *      its turn. No handshake is cancelled with either held.
 *
 * No lock is held while application code runs: a signal, a callback, a
 * task's completion. What a locked stretch of a stream leaves to do is
 * done by np_stream_after() once the lock is dropped; the server and the
 * client copy what they need under their lock and call out after.
 * The descriptor budget (np-fd-budget.c) and the limits (np-limits.c) are
 * read and written atomically, under no lock. */

/* Asserts that @mutex is held, in builds configured with
 * -Dlock_checks=true (the test and CI builds), as GDBus's
 * CONNECTION_ENSURE_LOCK does: a trylock that succeeds means nobody held
 * it. Held by another thread, the check passes: it catches the callers
 * that forgot the lock, which are the ones that hold none. Off in release
 * builds, where it would cost a trylock per call on every message's
 * path. */
#ifdef NP_ENABLE_LOCK_CHECKS
#define NP_ENSURE_LOCKED(mutex) \
  G_STMT_START { \
    if (G_UNLIKELY (g_mutex_trylock (mutex))) \
      { \
        g_mutex_unlock (mutex); \
        g_error ("%s: called without its lock (" #mutex ")", G_STRFUNC); \
      } \
  } G_STMT_END
#else
#define NP_ENSURE_LOCKED(mutex) G_STMT_START { (void) (mutex); } G_STMT_END
#endif

G_END_DECLS
