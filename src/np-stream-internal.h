/* np-stream-internal.h: what the files of NpStream share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "np-connection-owner-private.h"
#include "np-flusher-private.h"
#include "np-lock-private.h"
#include "np-out-queue-private.h"
#include "np-poller-private.h"
#include "np-stream-private.h"

G_BEGIN_DECLS

/* Locks, in the order they are taken (one may be taken while holding
 * those above it, never one above while holding one below):
 *
 *   1. the stream's lock (self->lock): guards everything of the stream
 *      but the read side. An NpPipeClient may hold its own lock while it
 *      takes this one (np-lock-private.h has the library's order).
 *   2. the flusher's lock (np-flusher.c, one per main context): taken
 *      inside the stream's lock by np_flusher_arm(); the flusher drops it
 *      before it calls a stream's prepare or dispatch, which take 1.
 *   3. np-flusher.c's registry lock, which guards the flushers of all
 *      contexts: taken alone, or inside 1 (np_flusher_release() in
 *      np_stream_unref() holds no stream lock); never while holding 2.
 *   4. the lock of an NpStreamWait (np_stream_block()): taken alone, or
 *      inside 1; nothing is taken inside it.
 *   5. the poller's (np-poller-*.c, one per main context), and its
 *      registry's: taken inside 1 by np_poller_*(); the poller drops
 *      them before it calls a watch or a timer, which take 1.
 *
 * The descriptor budget (np-fd-budget.c) is atomic and takes no lock;
 * GLib's own (a main context's, a GSource's, a GCancellable's) are
 * taken inside 1 and 5 (g_source_attach(), g_source_set_ready_time();
 * g_cancellable_connect() is never called with 1 held).
 *
 * Never held while calling the owner or completing a task: what a locked
 * stretch leaves to do goes into an NpStreamAfter, run by
 * np_stream_after() once the lock is dropped. */

/* Asserts that this thread holds the stream's lock, in debug builds. */
#define NP_STREAM_ENSURE_LOCKED(self) NP_ENSURE_LOCKED ((self)->lock)

gboolean np_stream_is_done_locked (NpStream *self);
gboolean np_stream_start_watch_locked (NpStream  *self,
                                       GError   **error);

/* Asserts that the stream is in one of the states in @mask (a bit per
 * NpStreamState) on entry to a transition. */
#define NP_STREAM_ASSERT_STATE(self, mask) \
  g_assert ((1u << (self)->state) & (mask))
#define NP_STREAM_IN(state) (1u << (state))

/* The life of a stream. Every change goes through np_stream_set_state(),
 * which asserts that it is one of these:
 *
 *   HANDSHAKE → OPEN       the peer's hello arrived and, from protocol
 *                          version 4 on, its settings
 *   HANDSHAKE → CLOSING    closed by us before the peer's hello
 *   OPEN      → CLOSING    closed by us, or the peer's end of stream at a
 *                          frame boundary: what is queued still goes out
 *   any but CLOSED → CLOSED   the end, reported once to the owner
 */
typedef enum
{
  NP_STREAM_HANDSHAKE,
  NP_STREAM_OPEN,
  NP_STREAM_CLOSING,
  NP_STREAM_CLOSED,
} NpStreamState;

typedef enum
{
  NP_OP_WRITE,   /* send_async, flush_async: done once written reaches end */
  NP_OP_PING,    /* done when the peer's pong arrives */
  NP_OP_CLOSE,   /* done when the stream is closed */
  NP_OP_REQUEST, /* done when the reply arrives */
} NpOpKind;

/* Where np_stream_request_sync() waits for its op: what any blocking
 * call waits on (np_stream_block()), and the reply. */
typedef struct
{
  NpStreamWait  base;
  GBytes       *reply;
  GUnixFDList  *reply_fds;
} NpSyncWait;

/* An asynchronous call waiting on the stream (or a blocking one, with
 * @sync instead of @task). */
typedef struct
{
  NpOpKind    kind;
  GTask      *task;
  NpSyncWait *sync;
  gulong    cancel_id;
  /* The frame the call queued, [start, end), or start == end when it
   * queued none: taken out again when it is cancelled before any of it
   * was written. */
  guint64   start;
  guint64   end;
  guint64   ping_id;
  gint64    sent_at;
  /* A request: its id once sent, its message until then (parked), and
   * its deadline. */
  guint32   request_id;
  GBytes   *message;
  GUnixFDList *fds;        /* the request's descriptors, until sent */
  NpPollerTimer *timeout;
  /* The result, once done. */
  GError   *error;
  gint64    value;
  GBytes   *reply;
  GUnixFDList *reply_fds;  /* the reply's descriptors, if it had any */
} NpOp;


/* What waits for the peer's hello before going out, in order: requests,
 * which only a peer of version 2 or later may be sent, and whatever was
 * sent after one. */
typedef struct
{
  GBytes      *message;  /* NULL for a flush */
  NpOp        *op;       /* a request, a send_async or flush_async, or NULL */
  GUnixFDList *fds;      /* a message's descriptors, or NULL */
  gboolean     request;
} NpParked;

/* Descriptors received with the bytes at [start, end) of what the peer
 * sent, for the MESSAGE_FDS frame whose first byte lies there. */
typedef struct
{
  guint64 start;
  guint64 end;
  guint   n;
  int     fds[];
} NpFdBatch;

/* What a locked stretch leaves to do once the lock is dropped: the one
 * way work leaves a lock. Only np_stream_after() runs it. */
typedef struct
{
  GQueue   done;       /* of NpOp, to complete */
  gboolean finished;   /* the stream closed: report it */
  gboolean drained;    /* the queue drained: report it */
} NpStreamAfter;

#define NP_STREAM_AFTER_INIT { G_QUEUE_INIT, FALSE, FALSE }

/* Where np_stream_after() runs what it is given. */
typedef enum
{
  /* No lock held: ops complete here; the end is reported here when this
   * thread may run the context (g_main_context_invoke()'s rule), from
   * the context otherwise. */
  NP_STREAM_AFTER_HERE,
  /* No lock held: ops complete here; reports come from the context. */
  NP_STREAM_AFTER_COMPLETE,
  /* In the context's own dispatch, no lock held: all of it here. */
  NP_STREAM_AFTER_DISPATCH,
  /* The lock held, or inside a call of the application (a failed
   * send(), a reply), where completing would be too early: all of it
   * from the context. */
  NP_STREAM_AFTER_DEFER,
} NpStreamAfterWhere;

/* The state of a call's cancellable handler. */
typedef struct
{
  NpStream *stream;
  GTask    *task;
} NpCancelData;

/* Bytes asked of the transport per read when no frame body is pending. */
#define NP_READ_CHUNK       (64 * 1024)
/* Bytes read per dispatch before yielding to the other sources. */
#define NP_READ_BUDGET      (1024 * 1024)

struct _NpStream
{
  gatomicrefcount          ref_count;
  GMutex                   lock[1];        /* an array, to be used as a pointer */

  /* Constant from creation. */
  NpConnectionOwnerInterface *owner_iface;  /* of the owner, if any */
  NpLimits                *limits;         /* the owner's, read when used */
  GMainContext            *context;
  char                    *label;
  guint32                  max_message_size;
  NpFlusher               *flusher;
  guint                    max_fds;        /* set before the stream starts */

  /* Guarded by the lock. */
  GObject                 *connection;     /* of which this is the private part;
                                            * NULL once detached */
  GObject                 *owner;          /* its server or client: NULL once detached,
                                            * or once the end is reported */
  NpTransport             *transport;      /* NULL once released */
  guint                    transport_users;
  NpStreamState            state;          /* written under the lock, read atomically too */
  GError                  *error;          /* why the stream closed */
  GError                  *abort_error;    /* closing because of it: the frame being
                                            * written and the goodbye still go out */
  GError                  *write_error;
  guint32                  peer_max_message_size;
  guint                    peer_max_fds;   /* from the peer's settings (version 4 on) */
  NpOutQueue               out;
  gsize                    queued_bytes;   /* the size of out, published: read atomically */
  GQueue                   writes;         /* of NpOp, by end */
  GQueue                   pings;          /* of NpOp, oldest first */
  GQueue                   closers;        /* of NpOp */
  GHashTable              *requests;       /* request id → NpOp, sent, awaiting a reply;
                                            * NULL until the first request */
  GQueue                   parked;         /* of NpParked */
  guint64                  parked_bytes;
  guint32                  last_request_id;
  guint                    n_unanswered;   /* requests of the peer, delivered, not answered */
  GHashTable              *unanswered;     /* their ids → their messages' sizes; NULL
                                            * until the first */
  guint64                  unanswered_bytes; /* those sizes, summed */
  GHashTable              *unanswered_fds; /* the ids of those with descriptors → how
                                            * many: held in the budget until answered;
                                            * NULL until the first */
  guint8                   version;        /* spoken, once the peer's hello arrived */
  GQueue                   deferred;       /* of NpOp, done, for the flusher to complete */
  guint64                  last_ping_id;
  NpPollerWatch           *io_watch;       /* NULL once closed */
  GIOCondition             events;
  NpPollerTimer           *deadline;
  gint64                   stall_until;    /* closing: the peer must read by then */
  NpFlushLink              flush_link;
  /* What the transport is ready for is handled by the top of the stream,
   * from the I/O watch and np_stream_poll_once(); called with the lock
   * held, which it drops. */
  void                   (*handle_io)      (NpStream     *self,
                                            GIOCondition  revents);
  guint                    client_end : 1;     /* NP_STREAM_CLIENT_END */
  guint                    remote : 1;         /* NP_STREAM_REMOTE */
  guint                    connected : 1;      /* started, and not closed by the owner */
  guint                    peer_known : 1;     /* its hello arrived: version, message limit */
  guint                    peer_ready : 1;     /* and its settings: open, nothing parks */
  guint                    settings_received : 1;
  guint                    goodbye_queued : 1; /* ours, whatever its code */
  guint                    goodbye_received : 1;
  guint                    peer_eof : 1;
  guint                    awaiting_answers : 1; /* closing waits for n_unanswered to reach 0 */
  guint                    want_out : 1;
  guint                    flush_requested : 1;
  guint                    report_pending : 1;
  guint                    over_half : 1;
  guint                    drained_pending : 1;
  guint                    peer_said_why : 1;  /* the error is the peer's goodbye's */

  /* Read side: only the context's thread touches it, while dispatching. */
  guint8                   head[NP_HELLO_SIZE];
  gsize                    head_len;
  guint8                  *body;
  gsize                    body_len;
  gsize                    body_alloc;
  gsize                    body_filled;
  NpFrameType              body_type;
  GUnixFDList             *body_fds;       /* the descriptors of that body */
  guint64                  received;       /* bytes received, all told */
  const guint8            *buf;            /* the buffer being delivered */
  guint64                  buf_pos;        /* where its first byte lies in the stream */
  GQueue                   fd_batches;     /* of NpFdBatch, received, not yet matched */
  /* What is left to parse of the buffer being delivered: a handler that
   * runs a main loop of its own makes a nested read, which delivers this
   * first, so that the order holds. NULL when nothing is being parsed. */
  const guint8            *rest;
  const guint8            *rest_end;
  guint                    reading;        /* depth of nested reads */
  guint                    hello_read : 1;
  guint                    rest_ready : 1; /* the I/O watch is ready for the rest */
  guint                    transport_ready : 1; /* ready for what the transport holds */
  guint                    open_pending : 1;
};

/* Whom a dispatch reports to: the connection of which the stream is the
 * private part, and the connection's owner, each with a reference for
 * the length of the dispatch; NULL once they let go. */
typedef struct
{
  GObject *connection;
  GObject *owner;
} NpStreamTarget;

static inline void
np_stream_target_take_locked (NpStream       *self,
                              NpStreamTarget *target)
{
  target->connection = self->connection != NULL ? g_object_ref (self->connection) : NULL;
  target->owner = self->owner != NULL && target->connection != NULL ? g_object_ref (self->owner) : NULL;
}

static inline void
np_stream_target_release (NpStreamTarget *target)
{
  g_clear_object (&target->owner);
  g_clear_object (&target->connection);
}

/* The owner's limit or timeout, as it is now. */
static inline guint
np_stream_limit (NpStream *self,
                 NpLimit   limit)
{
  return np_limits_get (self->limits, limit);
}

/* Flow control: past half of max-queued-bytes (never without a limit)
 * the queue is over half; drained to a quarter it is reported to the
 * owner. */
static inline guint64
np_stream_high_water (NpStream *self)
{
  guint64 max_queued_bytes = np_stream_limit (self, NP_LIMIT_MAX_QUEUED_BYTES);

  return max_queued_bytes > 0 ? max_queued_bytes / 2 : G_MAXUINT64;
}

/* After each frame queued: the one comparison flow control costs. */
static inline void
np_stream_note_queued_locked (NpStream *self)
{
  if (G_UNLIKELY (np_out_queue_get_size (&self->out) > np_stream_high_water (self)))
    self->over_half = TRUE;
}

/* A buffer is being delivered, with frames left of it to parse: a
 * handler that runs a loop of its own waits for them. From the context's
 * thread. */
static inline gboolean
np_stream_has_rest (NpStream *self)
{
  return self->rest != NULL && self->rest < self->rest_end;
}

/* Something is to be read whether or not the descriptor is readable:
 * the rest of a buffer, or what the transport holds (a reading budget
 * ran out with a TLS record decrypted and not all read). */
static inline gboolean
np_stream_read_pending (NpStream *self)
{
  return np_stream_has_rest (self) || self->transport_ready;
}

/* Everything queued is written: the queue, and what the transport holds
 * of it. */
static inline gboolean
np_stream_all_written_locked (NpStream *self)
{
  return np_out_queue_is_empty (&self->out) &&
         (self->transport == NULL || !self->transport->wants_out);
}

/* Closing has nothing left to do but to close: all written, and the
 * answers the peer waits for given. */
static inline gboolean
np_stream_closing_done_locked (NpStream *self)
{
  return np_stream_all_written_locked (self) && (!self->awaiting_answers || self->n_unanswered == 0);
}

/* The requests awaiting a reply; an empty table until the first is sent,
 * which makes the stream's own. */
static inline GHashTable *
np_stream_get_requests_locked (NpStream *self)
{
  static GHashTable *empty;

  if (G_LIKELY (self->requests != NULL))
    return self->requests;

  if (g_once_init_enter (&empty))
    g_once_init_leave (&empty, g_hash_table_new (NULL, NULL));

  return empty;
}

NpOp   *np_op_new                  (NpOpKind       kind,
                                    GTask         *task);
void    np_op_complete             (NpOp          *op);

GError *np_stream_closed_error_new (NpStream      *self);
GError *np_stream_error_new        (NpStream      *self,
                                    GQuark         domain,
                                    int            code,
                                    const char    *format,
                                    ...) G_GNUC_PRINTF (4, 5);
void    np_stream_finish_locked    (NpStream      *self,
                                    const GError  *error,
                                    NpStreamAfter *after);
void    np_stream_abort_locked     (NpStream      *self,
                                    const GError  *error,
                                    NpStreamAfter *after);
gboolean np_stream_hello_locked    (NpStream      *self,
                                    guint8         version,
                                    guint32        peer_max_message_size);
gboolean np_stream_opened_locked   (NpStream      *self);
void    np_stream_queue_goodbye_locked
                                   (NpStream      *self);
GError *np_stream_too_large_error_new
                                   (NpStream      *self,
                                    gsize          len);
gboolean np_stream_check_fds_locked(NpStream      *self,
                                    guint          n_fds,
                                    GError       **error);
void    np_stream_peer_ended_locked(NpStream      *self,
                                    NpStreamAfter *after);
void    np_stream_update_events_locked
                                   (NpStream      *self);
void    np_stream_clear_timer      (NpPollerTimer **timer);
void    np_stream_set_deadline_locked
                                   (NpStream      *self,
                                    guint          timeout_msec);
void    np_stream_settle_locked    (NpStream      *self,
                                    NpStreamAfter *after);
gboolean np_stream_needs_dispatch_locked
                                   (NpStream      *self);
GError *np_stream_stalled_error_new(NpStream      *self);
void    np_stream_release_transport_locked
                                   (NpStream      *self);
void    np_stream_write_some_locked(NpStream      *self);
gboolean np_stream_write_error_is_hangup
                                   (NpStream      *self);
void    np_stream_request_flush_locked
                                   (NpStream      *self);
void    np_stream_fail_ops_locked  (GQueue        *ops,
                                    const GError  *error,
                                    NpStreamAfter *after);
void    np_stream_collect_writes_locked
                                   (NpStream      *self,
                                    NpStreamAfter *after);
gboolean np_stream_wait_writable_locked
                                   (NpStream      *self,
                                    gint           timeout_msec,
                                    GCancellable  *cancellable,
                                    GError       **error);
void    np_stream_watch_cancellable(NpStream      *self,
                                    GTask         *task,
                                    GCallback      cancelled);
NpOp   *np_stream_take_op_locked   (NpStream      *self,
                                    GTask         *task);
void    np_op_cancel_soon          (NpOp          *op);
void    np_stream_after            (NpStream      *self,
                                    NpStreamAfter *after,
                                    NpStreamAfterWhere where);
gboolean np_stream_poll_once       (NpStream      *self,
                                    gint           timeout_msec,
                                    GCancellable  *cancellable);
void    np_stream_read             (NpStream      *self,
                                    NpStreamTarget *target,
                                    NpStreamAfter *after);
void    np_stream_queue_message_locked
                                   (NpStream      *self,
                                    GBytes        *message,
                                    NpOp          *op);
gboolean np_stream_park_fds_locked (NpStream      *self,
                                    GBytes        *message,
                                    GUnixFDList   *fds);
void    np_stream_queue_message_with_fds_locked
                                   (NpStream      *self,
                                    GBytes        *message,
                                    GUnixFDList   *fds);
gboolean np_stream_park_locked     (NpStream      *self,
                                    GBytes        *message,
                                    NpOp          *op,
                                    gboolean       request);
NpOp   *np_stream_unpark_locked    (NpStream      *self,
                                    NpStreamAfter *after,
                                    GError       **error);
void    np_stream_send_parked_locked
                                   (NpStream      *self,
                                    NpStreamAfter *after);
void    np_parked_free             (NpParked      *parked);
GUnixFDList *np_stream_take_reply_fds
                                   (GTask         *task);
GError *np_stream_not_supported_error_new
                                   (NpStream      *self);
gboolean np_stream_check_request_fds_locked
                                   (NpStream      *self,
                                    guint          n_fds,
                                    GError       **error);
guint   np_stream_count_parked_messages_locked
                                   (NpStream      *self);
void    np_stream_fail_requests_locked
                                   (NpStream      *self,
                                    const GError  *error,
                                    NpStreamAfter *after);
gboolean np_stream_check_send_locked
                                   (NpStream      *self,
                                    gsize          len,
                                    NpStreamAfter *after,
                                    GError       **error);
gboolean np_stream_take_request    (NpStream      *self,
                                    guint32        id,
                                    gsize          size,
                                    guint          n_fds,
                                    NpStreamAfter *after);
void    np_stream_handle_reply     (NpStream      *self,
                                    NpFrameType    type,
                                    GBytes        *payload,
                                    GUnixFDList   *fds,
                                    NpStreamAfter *after);
gboolean np_stream_queue_peer_frame_locked
                                   (NpStream      *self,
                                    const guint8  *header,
                                    gsize          header_len,
                                    GBytes        *payload,
                                    GError       **error);
gboolean np_stream_queue_peer_frame_with_fds_locked
                                   (NpStream      *self,
                                    const guint8  *header,
                                    gsize          header_len,
                                    GBytes        *payload,
                                    GUnixFDList   *fds,
                                    GError       **error);
void    np_stream_clear_partial    (NpStream      *self);
void    np_stream_set_transport_ready (NpStream   *self,
                                       gboolean    ready);
void    np_stream_set_rest_ready   (NpStream      *self,
                                    gboolean       ready);
GError *np_stream_read_goodbye_locked
                                   (NpStream      *self);
void    np_stream_read_after_hangup(NpStream      *self);
GError *np_stream_ended_error_new  (NpStream      *self);

/* Every change of state: asserts it is one of those above. */
static inline void
np_stream_set_state (NpStream      *self,
                     NpStreamState  state)
{
  static const gboolean legal[4][4] = {
    /*                      HANDSHAKE OPEN   CLOSING CLOSED */
    [NP_STREAM_HANDSHAKE] = { FALSE,  TRUE,  TRUE,   TRUE },
    [NP_STREAM_OPEN]      = { FALSE,  FALSE, TRUE,   TRUE },
    [NP_STREAM_CLOSING]   = { FALSE,  FALSE, FALSE,  TRUE },
    [NP_STREAM_CLOSED]    = { FALSE,  FALSE, FALSE,  FALSE },
  };

  NP_STREAM_ENSURE_LOCKED (self);
  g_assert (legal[self->state][state]);
  g_atomic_int_set ((gint *) &self->state, state);
}

static inline NpStreamState
np_stream_get_state (NpStream *self)
{
  return (NpStreamState) g_atomic_int_get ((gint *) &self->state);
}

G_END_DECLS
