/* np-stream.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "np-error.h"
#include "np-stream-private.h"

/* Bytes asked of the kernel per read when no frame body is pending. */
#define NP_READ_CHUNK       (64 * 1024)
/* Bytes read per dispatch before yielding to the other sources. */
#define NP_READ_BUDGET      (1024 * 1024)
/* First allocation for a frame body that did not arrive whole; it grows as
 * bytes come, so a peer cannot make us allocate a size it only announced. */
#define NP_BODY_INITIAL     (256 * 1024)
/* Payloads up to this size are copied into the queue; larger ones are
 * queued by reference and written straight from the caller's GBytes. */
#define NP_COALESCE_MAX     4096
#define NP_CHUNK_SIZE       (16 * 1024)
/* Past this many queued bytes send() writes at once instead of waiting
 * for the flush source. */
#define NP_WRITE_THRESHOLD  (64 * 1024)
#define NP_IOV_MAX          64

typedef enum
{
  NP_STREAM_HANDSHAKE,
  NP_STREAM_OPEN,
  NP_STREAM_CLOSING,
  NP_STREAM_CLOSED,
} NpStreamState;

typedef struct _NpChunk NpChunk;

struct _NpChunk
{
  NpChunk      *next;
  GBytes       *bytes;   /* NULL for a chunk of copied bytes */
  const guint8 *data;
  gsize         len;
  gsize         offset;  /* bytes already written */
  gsize         cap;
  guint8        inline_data[];
};

typedef struct
{
  guint64  mark;
  GTask   *task;
} NpWaiter;

typedef struct
{
  guint64  id;
  gint64   sent_at;
  GTask   *task;
} NpPing;

typedef struct
{
  GSource   source;
  NpStream *stream;
} NpStreamSource;

/* One per main context, shared by its streams: what they queue goes out
 * in the context's next prepare phase, before it polls, so a burst of
 * sends costs one vectored write and no extra loop iteration. Streams
 * whose flush must report something (a completed flush, an error, the
 * end of a close) are dispatched instead. */
typedef struct
{
  GSource       source;
  GMainContext *context;
  GQueue        dirty;
  guint         n_streams;
} NpFlusher;

struct _NpStream
{
  GObject                 *owner;
  const NpStreamCallbacks *callbacks;
  GSocketConnection       *connection;
  GSocket                 *socket;
  GMainContext            *context;
  char                    *label;
  int                      fd;

  NpStreamState            state;
  guint32                  max_message_size;
  guint32                  peer_max_message_size;
  guint64                  max_queued_bytes;
  gboolean                 drop_when_full;

  GSource                 *io_source;
  gpointer                 fd_tag;
  GIOCondition             events;
  NpFlusher               *flusher;
  GList                    flush_link;   /* in flusher->dirty while armed */
  GSource                 *timeout_source;

  /* Read side: a partial hello or frame header, or a partial body. */
  guint8                   head[NP_HELLO_SIZE];
  gsize                    head_len;
  guint8                  *body;
  gsize                    body_len;
  gsize                    body_alloc;
  gsize                    body_filled;
  NpFrameType              body_type;

  /* Write side. */
  NpChunk                 *out_head;
  NpChunk                 *out_tail;
  guint64                  queued_total;
  guint64                  written_total;
  GQueue                   waiters;
  GError                  *write_error;

  /* Pings sent, oldest first: a peer answers them in order. */
  GQueue                   pings;
  guint64                  last_ping_id;
  /* Dispatches under way, and whether np_stream_free() waits for them:
   * a signal handler may drop the last use of a stream we are still in. */
  guint                    busy;
  guint                    free_pending : 1;
  guint                    flush_armed : 1;
  guint                    want_out : 1;
  guint                    reading : 1;
};

G_STATIC_ASSERT (NP_HELLO_SIZE >= NP_FRAME_HEADER_SIZE);

static void np_stream_finish (NpStream     *self,
                              const GError *error);
static void np_stream_free_now (NpStream *self);

/* Holds the owner and the stream across a dispatch: a signal handler
 * may drop the last reference to either. */
static inline GObject *
np_stream_enter (NpStream *self)
{
  self->busy++;
  return g_object_ref (self->owner);
}

static inline void
np_stream_leave (NpStream *self,
                 GObject  *owner)
{
  if (--self->busy == 0 && self->free_pending)
    np_stream_free_now (self);
  g_object_unref (owner);
}

/* One read buffer per thread, taken while in use so that a nested main
 * loop run from a signal handler gets a buffer of its own. Idle streams
 * hold none. */
static GPrivate np_read_buffer = G_PRIVATE_INIT (g_free);

static guint8 *
take_read_buffer (void)
{
  guint8 *buf = g_private_get (&np_read_buffer);

  if (buf == NULL)
    return g_malloc (NP_READ_CHUNK);

  g_private_set (&np_read_buffer, NULL);
  return buf;
}

static void
give_back_read_buffer (guint8 *buf)
{
  if (buf == NULL)
    return;

  if (g_private_get (&np_read_buffer) == NULL)
    g_private_set (&np_read_buffer, buf);
  else
    g_free (buf);
}

static GError *
np_stream_error_new (NpStream    *self,
                     GQuark       domain,
                     int          code,
                     const char  *format,
                     ...) G_GNUC_PRINTF (4, 5);

static GError *
np_stream_error_new (NpStream    *self,
                     GQuark       domain,
                     int          code,
                     const char  *format,
                     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  return g_error_new (domain, code, "%s: %s", self->label, message);
}

static GError *
np_stream_errno_new (NpStream   *self,
                     int         errsv,
                     const char *what)
{
  return np_stream_error_new (self, G_IO_ERROR, g_io_error_from_errno (errsv),
                              "%s failed: %s", what, g_strerror (errsv));
}

static void
np_stream_update_events (NpStream *self)
{
  GIOCondition events = 0;

  if (self->io_source == NULL)
    return;

  if (self->state <= NP_STREAM_OPEN)
    events |= G_IO_IN;
  if (self->want_out)
    events |= G_IO_OUT;

  if (events != self->events)
    {
      self->events = events;
      if (self->fd_tag != NULL)
        g_source_modify_unix_fd (self->io_source, self->fd_tag, events);
    }
}

/* Write side */

static void
np_chunk_free (NpChunk *chunk)
{
  g_clear_pointer (&chunk->bytes, g_bytes_unref);
  g_free (chunk);
}

static void
np_stream_append_chunk (NpStream *self,
                        NpChunk  *chunk)
{
  if (self->out_tail != NULL)
    self->out_tail->next = chunk;
  else
    self->out_head = chunk;
  self->out_tail = chunk;
}

static void
np_stream_append_copy (NpStream     *self,
                       const guint8 *data,
                       gsize         len)
{
  NpChunk *tail = self->out_tail;

  if (len == 0)
    return;

  if (tail == NULL || tail->bytes != NULL || tail->cap - tail->len < len)
    {
      gsize cap = MAX (NP_CHUNK_SIZE, len);

      tail = g_malloc (sizeof (NpChunk) + cap);
      tail->next = NULL;
      tail->bytes = NULL;
      tail->data = tail->inline_data;
      tail->len = 0;
      tail->offset = 0;
      tail->cap = cap;
      np_stream_append_chunk (self, tail);
    }

  memcpy (tail->inline_data + tail->len, data, len);
  tail->len += len;
}

static void
np_stream_append_bytes (NpStream *self,
                        GBytes   *bytes)
{
  NpChunk *chunk = g_new0 (NpChunk, 1);
  gsize len;

  chunk->data = g_bytes_get_data (bytes, &len);
  chunk->len = len;
  chunk->bytes = g_bytes_ref (bytes);
  np_stream_append_chunk (self, chunk);
}

static void
np_stream_drop_queue (NpStream *self)
{
  while (self->out_head != NULL)
    {
      NpChunk *chunk = self->out_head;

      self->out_head = chunk->next;
      np_chunk_free (chunk);
    }
  self->out_tail = NULL;

  /* Nothing left to wait for the socket to take. */
  self->want_out = FALSE;
  np_stream_update_events (self);
}

static void
np_stream_complete_waiters (NpStream     *self,
                            const GError *error)
{
  while (!g_queue_is_empty (&self->waiters))
    {
      NpWaiter *waiter = g_queue_peek_head (&self->waiters);
      g_autoptr(GTask) task = NULL;

      if (error == NULL && waiter->mark > self->written_total)
        break;

      g_queue_pop_head (&self->waiters);
      task = g_steal_pointer (&waiter->task);
      g_free (waiter);

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else if (!g_task_return_error_if_cancelled (task))
        g_task_return_boolean (task, TRUE);
    }
}

static void
np_stream_consume (NpStream *self,
                   gsize     written)
{
  self->written_total += written;

  while (written > 0)
    {
      NpChunk *chunk = self->out_head;
      gsize left = chunk->len - chunk->offset;

      if (written < left)
        {
          chunk->offset += written;
          break;
        }

      written -= left;
      self->out_head = chunk->next;
      if (self->out_head == NULL)
        self->out_tail = NULL;
      np_chunk_free (chunk);
    }
}

/* Writes as much of the queue as the socket takes, in vectored writes,
 * without blocking. On failure it drops the queue and keeps the error in
 * write_error; the caller decides when to report it. */
static void
np_stream_write_some (NpStream *self)
{
  while (self->out_head != NULL && self->write_error == NULL)
    {
      struct iovec iov[NP_IOV_MAX];
      struct msghdr msg = { 0 };
      guint n_iov = 0;
      gssize n;

      for (NpChunk *c = self->out_head; c != NULL && n_iov < NP_IOV_MAX; c = c->next)
        {
          iov[n_iov].iov_base = (void *) (c->data + c->offset);
          iov[n_iov].iov_len = c->len - c->offset;
          n_iov++;
        }

      msg.msg_iov = iov;
      msg.msg_iovlen = n_iov;

      n = sendmsg (self->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n < 0)
        {
          int errsv = errno;

          if (errsv == EINTR)
            continue;

          if (errsv == EAGAIN || errsv == EWOULDBLOCK)
            {
              self->want_out = TRUE;
              np_stream_update_events (self);
              return;
            }

          self->write_error = np_stream_errno_new (self, errsv, "Writing to the socket");
          np_stream_drop_queue (self);
          np_stream_complete_waiters (self, self->write_error);
          break;
        }

      np_stream_consume (self, n);
    }

  self->want_out = FALSE;
  np_stream_update_events (self);
  np_stream_complete_waiters (self, NULL);
}

static gboolean
np_stream_write_error_is_hangup (NpStream *self)
{
  return g_error_matches (self->write_error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
         g_error_matches (self->write_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

/* Called from our own sources, where reporting the end is safe. */
static void
np_stream_flush_and_settle (NpStream *self)
{
  np_stream_write_some (self);

  if (self->state == NP_STREAM_CLOSING && self->out_head == NULL)
    np_stream_finish (self, self->write_error);
  else if (self->write_error != NULL && self->state <= NP_STREAM_OPEN &&
           !np_stream_write_error_is_hangup (self))
    np_stream_finish (self, self->write_error);

  /* On a hang-up while open, reading finds the end and reports it. */
}

static void
np_stream_arm_flush (NpStream *self)
{
  if (!self->flush_armed && self->flusher != NULL)
    {
      self->flush_armed = TRUE;
      g_queue_push_tail_link (&self->flusher->dirty, &self->flush_link);
    }
}

static void
np_stream_disarm_flush (NpStream *self)
{
  if (self->flush_armed)
    {
      self->flush_armed = FALSE;
      g_queue_unlink (&self->flusher->dirty, &self->flush_link);
    }
}

static void
np_stream_queue_frame (NpStream    *self,
                       NpFrameType  type,
                       GBytes      *payload)
{
  guint8 header[NP_FRAME_HEADER_SIZE];
  gsize len = g_bytes_get_size (payload);

  np_frame_header_encode (header, type, len);
  np_stream_append_copy (self, header, sizeof header);

  if (len <= NP_COALESCE_MAX)
    np_stream_append_copy (self, g_bytes_get_data (payload, NULL), len);
  else
    np_stream_append_bytes (self, payload);

  self->queued_total += sizeof header + len;

  if (self->want_out)
    return;

  /* A caller that never returns to the main loop must not pile up. */
  if (self->queued_total - self->written_total >= NP_WRITE_THRESHOLD)
    np_stream_write_some (self);

  np_stream_arm_flush (self);
}

/* Read side */

static void
np_stream_clear_partial (NpStream *self)
{
  self->head_len = 0;
  g_clear_pointer (&self->body, g_free);
  self->body_len = self->body_alloc = self->body_filled = 0;
}

static void
np_stream_clear_timeout (NpStream *self)
{
  if (self->timeout_source != NULL)
    {
      g_source_destroy (self->timeout_source);
      g_clear_pointer (&self->timeout_source, g_source_unref);
    }
}

static void
np_stream_handle_pong (NpStream *self,
                       GBytes   *payload)
{
  NpPing *ping = g_queue_peek_head (&self->pings);
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  guint64 id = 0;

  if (ping == NULL || len != sizeof id)
    return;

  for (guint i = 0; i < sizeof id; i++)
    id = (id << 8) | data[i];

  /* A pong that answers none of our pings is ignored. */
  if (id != ping->id)
    return;

  g_queue_pop_head (&self->pings);
  g_task_return_int (ping->task, g_get_monotonic_time () - ping->sent_at);
  g_object_unref (ping->task);
  g_free (ping);
}

static void
np_stream_handle_frame (NpStream    *self,
                        NpFrameType  type,
                        GBytes      *payload)
{
  switch (type)
    {
    case NP_FRAME_MESSAGE:
      self->callbacks->message (self->owner, payload);
      break;

    case NP_FRAME_PING:
      np_stream_queue_frame (self, NP_FRAME_PONG, payload);
      break;

    case NP_FRAME_PONG:
      np_stream_handle_pong (self, payload);
      break;

    case NP_FRAME_GOODBYE:
      {
        gsize len;
        const guint8 *data = g_bytes_get_data (payload, &len);
        g_autoptr(GError) error = np_goodbye_decode (data, len);

        g_prefix_error (&error, "%s: ", self->label);
        np_stream_finish (self, error);
      }
      break;

    default:
      g_assert_not_reached ();
    }
}

/* Parses every complete hello and frame in buf; keeps what is left over
 * as a partial header or body. */
static void
np_stream_parse (NpStream     *self,
                 const guint8 *buf,
                 gsize         avail)
{
  const guint8 *p = buf;
  const guint8 *end = buf + avail;

  while (p < end && self->state <= NP_STREAM_OPEN)
    {
      g_autoptr(GError) error = NULL;
      NpFrameHeader header;
      gsize left = end - p;

      if (self->state == NP_STREAM_HANDSHAKE)
        {
          NpHello hello;

          if (left < NP_HELLO_SIZE)
            break;

          if (!np_hello_decode (p, &hello, &error))
            {
              g_prefix_error (&error, "%s: ", self->label);
              np_stream_abort (self, error);
              return;
            }

          self->peer_max_message_size = hello.max_message_size;
          self->state = NP_STREAM_OPEN;
          np_stream_clear_timeout (self);
          p += NP_HELLO_SIZE;
          continue;
        }

      if (left < NP_FRAME_HEADER_SIZE)
        break;

      if (!np_frame_header_decode (p, self->max_message_size, &header, &error))
        {
          g_prefix_error (&error, "%s: ", self->label);
          np_stream_abort (self, error);
          return;
        }

      p += NP_FRAME_HEADER_SIZE;
      left -= NP_FRAME_HEADER_SIZE;

      if (left >= header.length)
        {
          g_autoptr(GBytes) payload = g_bytes_new (p, header.length);

          p += header.length;
          np_stream_handle_frame (self, header.type, payload);
        }
      else
        {
          self->body_type = header.type;
          self->body_len = header.length;
          self->body_alloc = MAX (left, MIN (header.length, NP_BODY_INITIAL));
          self->body = g_malloc (self->body_alloc);
          self->body_filled = left;
          memcpy (self->body, p, left);
          return;
        }
    }

  if (self->state <= NP_STREAM_OPEN)
    {
      self->head_len = end - p;
      memcpy (self->head, p, self->head_len);
    }
}

/* Handles a recv() that returned n <= 0. Returns TRUE to read on. */
static gboolean
np_stream_read_ended (NpStream *self,
                      gssize    n)
{
  g_autoptr(GError) error = NULL;

  if (n < 0)
    {
      int errsv = errno;

      if (errsv == EINTR)
        return TRUE;
      if (errsv == EAGAIN || errsv == EWOULDBLOCK)
        return FALSE;

      /* A Unix socket reports a reset, after every byte the peer wrote,
       * when the peer closed without reading all we sent: for what we
       * read, that is the end of the stream. */
      if (errsv != ECONNRESET)
        {
          error = np_stream_errno_new (self, errsv, "Reading from the socket");
          np_stream_finish (self, error);
          return FALSE;
        }
    }

  if (self->state == NP_STREAM_HANDSHAKE)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 "The peer closed the connection before completing the handshake");
  else if (self->head_len > 0 || self->body != NULL)
    error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                                 "The peer closed the connection in the middle of a message");

  np_stream_finish (self, error);
  return FALSE;
}

static void
np_stream_read (NpStream *self)
{
  guint8 *buf = NULL;
  gsize budget = NP_READ_BUDGET;

  while (self->state <= NP_STREAM_OPEN && budget > 0)
    {
      gssize n;
      gsize want;

      if (self->body != NULL)
        {
          /* Read a large body straight into its own allocation. */
          if (self->body_filled == self->body_alloc)
            {
              self->body_alloc = MIN (self->body_len, self->body_alloc * 2);
              self->body = g_realloc (self->body, self->body_alloc);
            }

          want = self->body_alloc - self->body_filled;
          n = recv (self->fd, self->body + self->body_filled, want, MSG_DONTWAIT);
          if (n <= 0)
            {
              if (np_stream_read_ended (self, n))
                continue;
              break;
            }

          budget -= MIN (budget, (gsize) n);
          self->body_filled += n;

          if (self->body_filled == self->body_len)
            {
              g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&self->body),
                                                            self->body_len);

              self->body_len = self->body_alloc = self->body_filled = 0;
              np_stream_handle_frame (self, self->body_type, payload);
            }
          else if ((gsize) n < want)
            break;

          continue;
        }

      if (buf == NULL)
        buf = take_read_buffer ();

      memcpy (buf, self->head, self->head_len);
      want = NP_READ_CHUNK - self->head_len;
      n = recv (self->fd, buf + self->head_len, want, MSG_DONTWAIT);
      if (n <= 0)
        {
          if (np_stream_read_ended (self, n))
            continue;
          break;
        }

      budget -= MIN (budget, (gsize) n);
      {
        gsize avail = self->head_len + n;

        self->head_len = 0;
        np_stream_parse (self, buf, avail);
      }

      /* A short read means the socket is drained: don't pay for EAGAIN. */
      if ((gsize) n < want)
        break;
    }

  give_back_read_buffer (buf);
}

/* Sources */

static gboolean
np_stream_io_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  NpStream *self = ((NpStreamSource *) source)->stream;
  GIOCondition revents = g_source_query_unix_fd (source, self->fd_tag);
  GObject *owner;

  /* A handler ran a main loop of its own while we deliver messages: read
   * nothing until the outer read is done, or the order would break, and
   * stop polling the socket meanwhile. */
  if (self->reading)
    {
      g_source_remove_unix_fd (source, self->fd_tag);
      self->fd_tag = NULL;
      return G_SOURCE_CONTINUE;
    }

  owner = np_stream_enter (self);

  if (revents & G_IO_OUT)
    {
      self->want_out = FALSE;
      np_stream_flush_and_settle (self);
    }

  if (self->state <= NP_STREAM_OPEN && (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
    {
      self->reading = TRUE;
      np_stream_read (self);
      self->reading = FALSE;

      if (self->fd_tag == NULL && self->io_source != NULL)
        self->fd_tag = g_source_add_unix_fd (self->io_source, self->fd, self->events);
    }
  else if (self->state == NP_STREAM_CLOSING && (revents & (G_IO_HUP | G_IO_ERR)))
    np_stream_flush_and_settle (self);

  np_stream_leave (self, owner);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs np_stream_io_funcs = {
  .dispatch = np_stream_io_dispatch,
};

/* Writes what the stream queued, if that reports nothing to anyone.
 * Returns FALSE when the stream needs a dispatch. */
static gboolean
np_stream_flush_quietly (NpStream *self)
{
  if (!g_queue_is_empty (&self->waiters) || self->write_error != NULL ||
      self->state >= NP_STREAM_CLOSING)
    return FALSE;

  /* When the socket is full, the I/O source writes once it is writable. */
  if (!self->want_out)
    np_stream_write_some (self);

  return self->write_error == NULL;
}

static gboolean
np_flusher_prepare (GSource *source,
                    int     *timeout)
{
  NpFlusher *flusher = (NpFlusher *) source;
  GList *link = flusher->dirty.head;

  *timeout = -1;

  while (link != NULL)
    {
      NpStream *stream = link->data;
      GList *next = link->next;

      if (np_stream_flush_quietly (stream))
        np_stream_disarm_flush (stream);
      link = next;
    }

  return !g_queue_is_empty (&flusher->dirty);
}

static gboolean
np_flusher_check (GSource *source)
{
  return !g_queue_is_empty (&((NpFlusher *) source)->dirty);
}

static gboolean
np_flusher_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  NpFlusher *flusher = (NpFlusher *) source;
  guint n = flusher->dirty.length;

  /* A stream that a handler frees leaves the queue; one that it arms
   * again waits for the next iteration. */
  while (n-- > 0 && !g_queue_is_empty (&flusher->dirty))
    {
      NpStream *stream = g_queue_peek_head (&flusher->dirty);
      GObject *owner = np_stream_enter (stream);

      np_stream_disarm_flush (stream);
      if (!stream->want_out)
        np_stream_flush_and_settle (stream);
      np_stream_leave (stream, owner);
    }

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs np_flusher_funcs = {
  .prepare = np_flusher_prepare,
  .check = np_flusher_check,
  .dispatch = np_flusher_dispatch,
};

G_LOCK_DEFINE_STATIC (flushers);
static GHashTable *flushers;   /* GMainContext → NpFlusher */

static NpFlusher *
np_flusher_acquire (GMainContext *context)
{
  NpFlusher *flusher;

  G_LOCK (flushers);

  if (flushers == NULL)
    flushers = g_hash_table_new (NULL, NULL);

  flusher = g_hash_table_lookup (flushers, context);
  if (flusher == NULL)
    {
      flusher = (NpFlusher *) g_source_new (&np_flusher_funcs, sizeof (NpFlusher));
      flusher->context = context;
      g_queue_init (&flusher->dirty);
      g_source_set_priority (&flusher->source, G_PRIORITY_HIGH);
      g_source_set_static_name (&flusher->source, "[np] pipe flush");
      g_source_attach (&flusher->source, context);
      g_hash_table_insert (flushers, context, flusher);
    }
  flusher->n_streams++;

  G_UNLOCK (flushers);

  return flusher;
}

static void
np_flusher_release (NpFlusher *flusher)
{
  G_LOCK (flushers);

  if (--flusher->n_streams == 0)
    {
      g_hash_table_remove (flushers, flusher->context);
      g_source_destroy (&flusher->source);
      g_source_unref (&flusher->source);
    }

  G_UNLOCK (flushers);
}

static GSource *
np_stream_source_new (NpStream     *self,
                      GSourceFuncs *funcs,
                      int           priority,
                      const char   *name)
{
  GSource *source = g_source_new (funcs, sizeof (NpStreamSource));

  ((NpStreamSource *) source)->stream = self;
  g_source_set_priority (source, priority);
  g_source_set_static_name (source, name);
  g_source_attach (source, self->context);

  return source;
}

static void
np_stream_destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* Closing a Unix socket with unread bytes in it resets the connection,
 * and the peer may then lose what we wrote last: discard what the peer
 * already sent (a bounded amount) first. */
static void
np_stream_drain (NpStream *self)
{
  guint8 sink[4096];

  for (guint i = 0; i < 64; i++)
    {
      gssize n = recv (self->fd, sink, sizeof sink, MSG_DONTWAIT);

      if (n <= 0 && !(n < 0 && errno == EINTR))
        break;
    }
}

/* Releases every resource of the stream; reports nothing. */
static void
np_stream_release (NpStream     *self,
                   const GError *error)
{
  g_autoptr(GError) closed = NULL;

  np_stream_destroy_source (&self->io_source);
  np_stream_destroy_source (&self->timeout_source);
  if (self->flusher != NULL)
    {
      np_stream_disarm_flush (self);
      g_clear_pointer (&self->flusher, np_flusher_release);
    }
  self->want_out = FALSE;

  if (self->connection != NULL)
    {
      np_stream_drain (self);
      g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
      g_clear_object (&self->connection);
      self->socket = NULL;
      self->fd = -1;
    }

  np_stream_clear_partial (self);
  np_stream_drop_queue (self);

  if (error == NULL)
    error = closed = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                          "The pipe closed before the message was written");
  np_stream_complete_waiters (self, error);

  while (!g_queue_is_empty (&self->pings))
    {
      NpPing *ping = g_queue_pop_head (&self->pings);

      g_task_return_error (ping->task, g_error_copy (error));
      g_object_unref (ping->task);
      g_free (ping);
    }
}

static void
np_stream_finish (NpStream     *self,
                  const GError *error)
{
  g_autoptr(GObject) owner = NULL;

  if (self->state == NP_STREAM_CLOSED)
    return;

  self->state = NP_STREAM_CLOSED;
  owner = g_object_ref (self->owner);
  np_stream_release (self, error);
  self->callbacks->closed (owner, error);
}

static gboolean
np_stream_handshake_timeout_cb (gpointer data)
{
  NpStream *self = data;
  g_autoptr(GError) error = NULL;
  GObject *owner;

  error = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                               "The peer did not complete the handshake in time");
  g_clear_pointer (&self->timeout_source, g_source_unref);
  owner = np_stream_enter (self);
  np_stream_abort (self, error);
  np_stream_leave (self, owner);

  return G_SOURCE_REMOVE;
}

/* Public (to the library) API */

NpStream *
np_stream_new (GObject                 *owner,
               const NpStreamCallbacks *callbacks,
               GSocketConnection       *connection,
               GMainContext            *context,
               const char              *label,
               guint32                  max_message_size)
{
  NpStream *self = g_new0 (NpStream, 1);
  guint8 hello[NP_HELLO_SIZE];

  self->owner = owner;
  self->callbacks = callbacks;
  self->connection = g_object_ref (connection);
  self->socket = g_socket_connection_get_socket (connection);
  self->fd = g_socket_get_fd (self->socket);
  self->context = g_main_context_ref (context);
  self->label = g_strdup (label);
  self->state = NP_STREAM_HANDSHAKE;
  self->max_message_size = max_message_size;
  self->peer_max_message_size = G_MAXUINT32;
  g_queue_init (&self->waiters);
  g_queue_init (&self->pings);

  self->io_source = np_stream_source_new (self, &np_stream_io_funcs,
                                          G_PRIORITY_DEFAULT, "[np] pipe I/O");
  self->events = G_IO_IN;
  self->fd_tag = g_source_add_unix_fd (self->io_source, self->fd, self->events);
  /* Not blocked while dispatched: GLib would remove and add the socket to
   * the poll set, and wake itself up, for every read. Nested main loops
   * are handled in the dispatch function instead. */
  g_source_set_can_recurse (self->io_source, TRUE);
  self->flusher = np_flusher_acquire (self->context);
  self->flush_link.data = self;

  np_hello_encode (hello, max_message_size);
  np_stream_append_copy (self, hello, sizeof hello);
  self->queued_total += sizeof hello;
  np_stream_write_some (self);
  if (self->write_error != NULL)
    np_stream_arm_flush (self);

  return self;
}

static void
np_stream_free_now (NpStream *self)
{
  g_clear_error (&self->write_error);
  g_main_context_unref (self->context);
  g_free (self->label);
  g_free (self);
}

/* Closes without reporting anything; the memory goes once no dispatch of
 * this stream is under way. */
void
np_stream_free (NpStream *self)
{
  if (self == NULL)
    return;

  /* What the socket takes without blocking still goes out. */
  if (self->state != NP_STREAM_CLOSED)
    np_stream_write_some (self);

  self->state = NP_STREAM_CLOSED;
  np_stream_release (self, NULL);

  if (self->busy > 0)
    self->free_pending = TRUE;
  else
    np_stream_free_now (self);
}

void
np_stream_set_handshake_timeout (NpStream *self,
                                 guint     timeout_msec)
{
  np_stream_clear_timeout (self);

  if (timeout_msec == 0 || self->state != NP_STREAM_HANDSHAKE)
    return;

  self->timeout_source = g_timeout_source_new (timeout_msec);
  g_source_set_static_name (self->timeout_source, "[np] handshake deadline");
  g_source_set_callback (self->timeout_source, np_stream_handshake_timeout_cb, self, NULL);
  g_source_attach (self->timeout_source, self->context);
}

gboolean
np_stream_is_open (NpStream *self)
{
  return self != NULL && self->state <= NP_STREAM_OPEN;
}

gboolean
np_stream_send (NpStream  *self,
                GBytes    *message,
                GError   **error)
{
  gsize len = g_bytes_get_size (message);

  /* After a hang-up on the write side, reading soon reports the end. */
  if (!np_stream_is_open (self) || self->write_error != NULL)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                   "%s: the pipe is closed", self->label);
      return FALSE;
    }

  if (len > self->peer_max_message_size)
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE,
                   "%s: message of %" G_GSIZE_FORMAT " bytes exceeds the limit of %u bytes "
                   "that the receiving side accepts",
                   self->label, len, self->peer_max_message_size);
      return FALSE;
    }

  if (self->max_queued_bytes > 0 &&
      np_stream_get_queued_bytes (self) + NP_FRAME_HEADER_SIZE + len > self->max_queued_bytes)
    {
      GError *full;

      full = np_stream_error_new (self, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL,
                                  "the peer does not keep up: %" G_GUINT64_FORMAT " bytes are "
                                  "queued to it, and %" G_GSIZE_FORMAT " more would pass the "
                                  "limit of %" G_GUINT64_FORMAT,
                                  np_stream_get_queued_bytes (self), len, self->max_queued_bytes);

      if (self->drop_when_full)
        {
          /* Reported from the flush source, never from inside send(). */
          self->write_error = g_error_copy (full);
          np_stream_drop_queue (self);
          np_stream_complete_waiters (self, self->write_error);
          np_stream_arm_flush (self);
        }

      g_propagate_error (error, full);
      return FALSE;
    }

  np_stream_queue_frame (self, NP_FRAME_MESSAGE, message);

  return TRUE;
}

/* Bounds what may be queued to the peer (0: no bound). Past the bound,
 * send() fails; with @drop_when_full the stream also ends with that
 * error, freeing the queue. */
void
np_stream_set_queue_limit (NpStream *self,
                           guint64   max_queued_bytes,
                           gboolean  drop_when_full)
{
  self->max_queued_bytes = max_queued_bytes;
  self->drop_when_full = drop_when_full;
}

gboolean
np_stream_flush_sync (NpStream      *self,
                      GCancellable  *cancellable,
                      GError       **error)
{
  while (self->state != NP_STREAM_CLOSED)
    {
      np_stream_write_some (self);

      if (self->write_error != NULL)
        {
          g_propagate_error (error, g_error_copy (self->write_error));
          return FALSE;
        }

      if (self->out_head == NULL)
        return TRUE;

      /* Blocks this thread only: no main context is iterated. */
      if (!g_socket_condition_wait (self->socket, G_IO_OUT, cancellable, error))
        return FALSE;
    }

  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
               "%s: the pipe is closed", self->label);
  return FALSE;
}

void
np_stream_flush_async (NpStream *self,
                       GTask    *task)
{
  NpWaiter *waiter;

  if (self->state == NP_STREAM_CLOSED)
    {
      g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               "%s: the pipe is closed", self->label);
      return;
    }

  waiter = g_new (NpWaiter, 1);
  waiter->mark = self->queued_total;
  waiter->task = g_object_ref (task);
  g_queue_push_tail (&self->waiters, waiter);

  np_stream_arm_flush (self);
}

/* Sends a ping that the peer's library answers by itself; @task returns
 * the round trip in microseconds. */
void
np_stream_ping_async (NpStream *self,
                      GTask    *task)
{
  g_autoptr(GBytes) payload = NULL;
  guint8 data[8];
  NpPing *ping;

  if (!np_stream_is_open (self) || self->write_error != NULL)
    {
      g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                               "%s: the pipe is closed", self->label);
      return;
    }

  ping = g_new0 (NpPing, 1);
  ping->id = ++self->last_ping_id;
  ping->task = g_object_ref (task);
  for (guint i = 0; i < sizeof data; i++)
    data[i] = ping->id >> (56 - 8 * i);
  payload = g_bytes_new (data, sizeof data);

  g_queue_push_tail (&self->pings, ping);
  ping->sent_at = g_get_monotonic_time ();
  np_stream_queue_frame (self, NP_FRAME_PING, payload);
}

guint64
np_stream_get_queued_bytes (NpStream *self)
{
  /* A dropped queue counts for nothing. */
  if (self->out_head == NULL)
    return 0;

  return self->queued_total - self->written_total;
}

/* Stops reading; only writing what is queued remains. */
static gboolean
np_stream_begin_close (NpStream *self)
{
  if (self->state >= NP_STREAM_CLOSING)
    return FALSE;

  self->state = NP_STREAM_CLOSING;
  np_stream_clear_timeout (self);
  np_stream_clear_partial (self);
  np_stream_update_events (self);

  return TRUE;
}

/* Stops reading, writes out what is queued from the main loop, then
 * reports a clean close. Reports at once when nothing is queued. */
void
np_stream_close (NpStream *self)
{
  if (!np_stream_begin_close (self))
    return;

  np_stream_write_some (self);
  if (self->out_head == NULL)
    np_stream_finish (self, self->write_error);
}

/* Writes out what is queued, blocking this thread, then reports. */
void
np_stream_close_sync (NpStream *self)
{
  g_autoptr(GError) error = NULL;

  if (!np_stream_begin_close (self))
    return;

  np_stream_flush_sync (self, NULL, &error);
  np_stream_finish (self, error);
}

/* Ends the stream because of @error, telling the peer why in a goodbye
 * frame when the socket takes it without blocking. */
void
np_stream_abort (NpStream     *self,
                 const GError *error)
{
  g_autoptr(GBytes) goodbye = NULL;

  if (self->state == NP_STREAM_CLOSED)
    return;

  if (self->write_error == NULL)
    {
      NpPipeError code = error->domain == NP_PIPE_ERROR ? error->code : NP_PIPE_ERROR_FAILED;

      goodbye = np_goodbye_encode (code, error->message);
      self->state = NP_STREAM_CLOSING;
      np_stream_queue_frame (self, NP_FRAME_GOODBYE, goodbye);
      np_stream_write_some (self);
    }

  np_stream_finish (self, error);
}
