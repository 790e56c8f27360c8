/* test-threads.c: clients, connections and servers used from several
 * threads at once, over real sockets, with the real main loop
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The contract under test is GDBusConnection's: every method may be
 * called from any thread; signals are emitted in the main context that
 * was the thread-default one when the object was created; an _async
 * call's callback runs in the thread-default context of the thread that
 * made it. Each test checks what arrived (every message once, whole, in
 * order per sending thread) and where each signal and callback ran.
 *
 * The main thread owns the global default main context for the whole
 * program, as g_main_loop_run() would, so that nothing reported in that
 * context can run anywhere else. Tests that let other threads take the
 * context say so.
 */

#include <stdlib.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "np-test-util.h"

/* Waits */

static GThread *main_thread;
/* Iterates the default main context until @cond holds; a watchdog turns
 * a hang into a failure that says what did not happen. */
#define WAIT_FOR(cond) NP_TEST_WAIT_FOR (300, cond)

/* Runs what is ready in the default main context, without blocking. */
static void
drain_default_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* A worker that is done wakes the main thread up to see it. */
static void
worker_done (gint *n_done)
{
  g_atomic_int_inc (n_done);
  g_main_context_wakeup (NULL);
}

/* The server side */

/* What one connection received, checked as it arrives: the messages of
 * each sender (a client id) are its test messages 0, 1, 2… */
typedef struct
{
  NpPipeConnection *connection;
  GHashTable       *next_seq;       /* client id → next sequence number */
  guint32           client_id;      /* the first sender, G_MAXUINT32 before */
  guint             n_messages;
  guint             n_bad;
  guint             n_disconnected;
  GError           *error;
} Record;

typedef struct
{
  NpPipeServer *server;
  GMainContext *context;
  GThread      *thread;
  GHashTable   *records;            /* NpPipeConnection → Record */
  GPtrArray    *order;              /* Record, in connection order */
  gsize       (*size_for) (guint32 client, guint32 seq);
  gboolean      one_sender;         /* a connection carries one client id */
  gboolean      echo;
  guint         n_connected;
  guint         n_disconnected;
  guint         n_messages;
  guint         n_bad;
} Fixture;

static void
record_free (gpointer data)
{
  Record *r = data;

  g_object_unref (r->connection);
  g_hash_table_unref (r->next_seq);
  g_clear_error (&r->error);
  g_free (r);
}

/* Signals about the server's connections run in its context, in the
 * thread that runs it. */
static void
assert_in_server_context (Fixture *f)
{
  g_assert_true (g_main_context_is_owner (f->context));
  g_assert_true (g_thread_self () == f->thread);
}

static void
on_client_connected (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     Fixture          *f)
{
  Record *r = g_new0 (Record, 1);

  assert_in_server_context (f);
  g_assert_null (g_hash_table_lookup (f->records, connection));

  r->connection = g_object_ref (connection);
  r->next_seq = g_hash_table_new (NULL, NULL);
  r->client_id = G_MAXUINT32;
  g_hash_table_insert (f->records, connection, r);
  g_ptr_array_add (f->order, r);
  f->n_connected++;
  g_main_context_wakeup (NULL);
}

static gboolean
record_check (Fixture *f,
              Record  *r,
              GBytes  *message)
{
  guint32 client_id = 0, seq = 0;
  guint32 expected;

  if (!np_test_message_parse (message, &client_id, &seq))
    return FALSE;

  if (f->one_sender && r->client_id != G_MAXUINT32 && client_id != r->client_id)
    return FALSE;
  if (r->client_id == G_MAXUINT32)
    r->client_id = client_id;

  expected = GPOINTER_TO_UINT (g_hash_table_lookup (r->next_seq, GUINT_TO_POINTER (client_id)));
  if (seq != expected || g_bytes_get_size (message) != f->size_for (client_id, seq))
    return FALSE;

  g_hash_table_insert (r->next_seq, GUINT_TO_POINTER (client_id), GUINT_TO_POINTER (seq + 1));
  return TRUE;
}

static void
on_message_received (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     GBytes           *message,
                     Fixture          *f)
{
  Record *r = g_hash_table_lookup (f->records, connection);

  assert_in_server_context (f);
  g_assert_nonnull (r);

  r->n_messages++;
  f->n_messages++;
  if (!record_check (f, r, message))
    {
      r->n_bad++;
      f->n_bad++;
    }

  if (f->echo)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }
}

static void
on_client_disconnected (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        Fixture          *f)
{
  Record *r = g_hash_table_lookup (f->records, connection);

  assert_in_server_context (f);
  g_assert_nonnull (r);

  r->n_disconnected++;
  g_clear_error (&r->error);
  r->error = error != NULL ? g_error_copy (error) : NULL;
  f->n_disconnected++;

  /* A main thread that waits on a server of another thread sees it. */
  g_main_context_wakeup (NULL);
}

static guint32
record_next_seq (Record  *r,
                 guint32  client_id)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (r->next_seq, GUINT_TO_POINTER (client_id)));
}

static Record *
record_nth (Fixture *f,
            guint    index)
{
  g_assert_cmpuint (index, <, f->order->len);
  return g_ptr_array_index (f->order, index);
}

static void
fixture_init (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  f->context = g_main_context_ref_thread_default ();
  f->thread = g_thread_self ();
  f->records = g_hash_table_new (NULL, NULL);
  f->order = g_ptr_array_new_with_free_func (record_free);
  f->size_for = np_test_mixed_size;
  f->one_sender = TRUE;

  f->server = np_pipe_server_new (NULL);
  /* What is sent must all arrive, however long the machine (or a
   * sanitizer) takes. */
  np_pipe_server_set_close_timeout (f->server, 0);
  np_pipe_server_set_max_queued_bytes (f->server, 0);
  np_pipe_server_set_max_connections (f->server, 0);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_client_connected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message_received), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_client_disconnected), f);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_fini (Fixture *f)
{
  g_object_add_weak_pointer (G_OBJECT (f->server), (gpointer *) &f->server);
  g_object_unref (f->server);
  g_assert_null (f->server);

  /* Every connection announced was reported gone, once. */
  for (guint i = 0; i < f->order->len; i++)
    g_assert_cmpuint (record_nth (f, i)->n_disconnected, ==, 1);
  g_assert_cmpuint (f->n_bad, ==, 0);

  g_hash_table_unref (f->records);
  g_ptr_array_unref (f->order);
  g_main_context_unref (f->context);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  fixture_init (f);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  fixture_fini (f);
  drain_default_context ();
}

static const char *
server_name (Fixture *f)
{
  return np_pipe_server_get_name (f->server);
}

/* Clients of the main thread */

typedef struct
{
  NpPipeClient *client;
  GMainContext *context;
  GThread      *thread;
  guint32       sender;         /* the client id of what it receives */
  guint32       first_seq;
  guint32       next_seq;
  guint         n_received;
  guint         n_bad;
  guint         n_disconnected;
  guint         n_notify_connected;
  GError       *error;
} Client;

/* A client's signals run in the context it was created in, in the thread
 * that runs it. */
static void
assert_in_client_context (Client *c)
{
  g_assert_true (g_main_context_is_owner (c->context));
  g_assert_true (g_thread_self () == c->thread);
}

/* Checks that what arrives is a run of consecutive test messages of
 * @sender, sized by np_test_mixed_size(), starting anywhere. */
static void
client_message_cb (NpPipeClient *client,
                   GBytes       *message,
                   Client       *c)
{
  guint32 sender = 0, seq = 0;

  assert_in_client_context (c);

  if (!np_test_message_parse (message, &sender, &seq) || sender != c->sender ||
      (c->n_received > 0 && seq != c->next_seq) ||
      g_bytes_get_size (message) != np_test_mixed_size (sender, seq))
    c->n_bad++;

  if (c->n_received == 0)
    c->first_seq = seq;
  c->next_seq = seq + 1;
  c->n_received++;
}

static void
client_disconnected_cb (NpPipeClient *client,
                        GError       *error,
                        Client       *c)
{
  assert_in_client_context (c);
  g_assert_false (np_pipe_client_get_connected (client));

  c->n_disconnected++;
  g_clear_error (&c->error);
  c->error = error != NULL ? g_error_copy (error) : NULL;
}

static void
client_notify_connected_cb (GObject    *object,
                            GParamSpec *pspec,
                            Client     *c)
{
  assert_in_client_context (c);
  c->n_notify_connected++;
}

/* A client of the calling thread's thread-default context. */
static Client *
client_new (const char *name,
            guint32     sender)
{
  Client *c = g_new0 (Client, 1);

  c->client = np_pipe_client_new (name);
  c->context = g_main_context_ref_thread_default ();
  c->thread = g_thread_self ();
  c->sender = sender;
  np_pipe_client_set_close_timeout (c->client, 0);
  np_pipe_client_set_max_queued_bytes (c->client, 0);
  g_signal_connect (c->client, "message-received", G_CALLBACK (client_message_cb), c);
  g_signal_connect (c->client, "disconnected", G_CALLBACK (client_disconnected_cb), c);
  g_signal_connect (c->client, "notify::connected", G_CALLBACK (client_notify_connected_cb), c);

  return c;
}

static void
client_connect (Client *c)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_connect_sync (c->client, NULL, &error));
  g_assert_no_error (error);
}

static void
client_free (Client *c)
{
  g_object_add_weak_pointer (G_OBJECT (c->client), (gpointer *) &c->client);
  g_object_unref (c->client);
  g_assert_null (c->client);
  g_main_context_unref (c->context);
  g_clear_error (&c->error);
  g_free (c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

/* 1. Workers that connect, send, flush and close clients of their own,
 * in a loop, with no main context of their own: the main thread runs the
 * server. It lets go of the default context between iterations, as
 * WAIT_UNTIL() does, so that the workers may also take it to report
 * their clients' ends themselves. */

#define CYCLE_WORKERS   4
#define CYCLES          200
#define CYCLE_MESSAGES  4

/* Small, copied, by reference, and over the write threshold. */
static gsize
cycle_size (guint32 client,
            guint32 seq)
{
  static const gsize sizes[CYCLE_MESSAGES] = { 16, 5000, 100, 70000 };

  return sizes[seq % CYCLE_MESSAGES];
}

typedef struct
{
  const char *name;
  guint       index;
  gint       *n_done;
} CycleWorker;

static gpointer
cycle_worker (gpointer data)
{
  CycleWorker *w = data;

  g_assert_null (g_main_context_get_thread_default ());

  for (guint cycle = 0; cycle < CYCLES; cycle++)
    {
      guint32 client_id = w->index * CYCLES + cycle;
      g_autoptr(NpPipeClient) client = np_pipe_client_new (w->name);
      g_autoptr(GError) error = NULL;

      np_pipe_client_set_close_timeout (client, 0);
      np_pipe_client_connect_sync (client, NULL, &error);
      g_assert_no_error (error);

      for (guint32 seq = 0; seq < CYCLE_MESSAGES; seq++)
        {
          g_autoptr(GBytes) message = np_test_message_new (client_id, seq, cycle_size (client_id, seq));

          g_assert_true (np_pipe_client_send (client, message, &error));
          g_assert_no_error (error);
        }

      g_assert_true (np_pipe_client_flush_sync (client, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), ==, 0);

      np_pipe_client_close (client, NULL, NULL);
      g_assert_false (np_pipe_client_get_connected (client));
    }

  worker_done (w->n_done);
  return NULL;
}

static void
test_worker_clients (Fixture       *f,
                     gconstpointer  data)
{
  CycleWorker workers[CYCLE_WORKERS];
  GThread *threads[CYCLE_WORKERS];
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  gint n_done = 0;

  f->size_for = cycle_size;

  g_main_context_release (NULL);

  for (guint i = 0; i < CYCLE_WORKERS; i++)
    {
      workers[i] = (CycleWorker) { server_name (f), i, &n_done };
      threads[i] = g_thread_new ("cycle-worker", cycle_worker, &workers[i]);
    }

  WAIT_FOR (g_atomic_int_get (&n_done) == CYCLE_WORKERS &&
            f->n_disconnected == CYCLE_WORKERS * CYCLES);

  for (guint i = 0; i < CYCLE_WORKERS; i++)
    g_thread_join (threads[i]);

  g_assert_true (g_main_context_acquire (NULL));

  /* Every cycle was one connection that got all of its messages, in
   * order, whole, and closed cleanly. */
  g_assert_cmpuint (f->n_connected, ==, CYCLE_WORKERS * CYCLES);
  g_assert_cmpuint (f->n_bad, ==, 0);
  g_assert_cmpuint (f->n_messages, ==, CYCLE_WORKERS * CYCLES * CYCLE_MESSAGES);
  for (guint i = 0; i < f->order->len; i++)
    {
      Record *r = record_nth (f, i);

      g_assert_cmpuint (r->n_messages, ==, CYCLE_MESSAGES);
      g_assert_cmpuint (r->n_bad, ==, 0);
      g_assert_cmpuint (record_next_seq (r, r->client_id), ==, CYCLE_MESSAGES);
      g_assert_no_error (r->error);
      g_assert_false (g_hash_table_contains (seen, GUINT_TO_POINTER (r->client_id)));
      g_hash_table_add (seen, GUINT_TO_POINTER (r->client_id));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, CYCLE_WORKERS * CYCLES);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
}

/* 2. Threads that send through one client, created and connected in the
 * main thread: each thread's messages arrive in its order, every message
 * whole. The threads send with send(), send_data() and send_async(),
 * and flush_sync() when the queue grows. */

#define SHARED_SENDERS   4
#define SHARED_MESSAGES  400

typedef struct
{
  NpPipeClient *client;
  guint32       index;
  gint         *n_done;
  gint          n_async_done;   /* completed in the main thread */
  gint          n_async_failed;
  gint          n_async_elsewhere;
} SharedSender;

static void
shared_send_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  SharedSender *s = user_data;
  g_autoptr(GError) error = NULL;

  /* A thread with no context of its own has the global default one. */
  if (!g_main_context_is_owner (g_main_context_default ()) || g_thread_self () != main_thread)
    g_atomic_int_inc (&s->n_async_elsewhere);
  if (!np_pipe_client_send_finish (NP_PIPE_CLIENT (object), result, &error))
    g_atomic_int_inc (&s->n_async_failed);
  g_atomic_int_inc (&s->n_async_done);
}

static gpointer
shared_sender (gpointer data)
{
  SharedSender *s = data;

  for (guint32 seq = 0; seq < SHARED_MESSAGES; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (s->index, seq, np_test_mixed_size (s->index, seq));
      g_autoptr(GError) error = NULL;

      switch (s->index % 3)
        {
        case 0:
          g_assert_true (np_pipe_client_send (s->client, message, &error));
          break;

        case 1:
          g_assert_true (np_pipe_client_send_data (s->client, g_bytes_get_data (message, NULL),
                                                   g_bytes_get_size (message), &error));
          break;

        default:
          np_pipe_client_send_async (s->client, message, NULL, shared_send_cb, s);
        }
      g_assert_no_error (error);

      /* A producer that outruns the server waits for the socket. */
      if (np_pipe_client_get_queued_bytes (s->client) > 4 * 1024 * 1024)
        {
          g_assert_true (np_pipe_client_flush_sync (s->client, NULL, &error));
          g_assert_no_error (error);
        }
    }

  worker_done (s->n_done);
  return NULL;
}

static void
test_shared_client (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(Client) c = client_new (server_name (f), 0);
  SharedSender senders[SHARED_SENDERS];
  GThread *threads[SHARED_SENDERS];
  gint n_done = 0;
  guint n_async = 0;
  Record *r;

  f->one_sender = FALSE;
  client_connect (c);
  WAIT_FOR (f->n_connected == 1);

  for (guint i = 0; i < SHARED_SENDERS; i++)
    {
      senders[i] = (SharedSender) { c->client, i, &n_done, 0, 0, 0 };
      threads[i] = g_thread_new ("shared-sender", shared_sender, &senders[i]);
    }

  for (guint i = 0; i < SHARED_SENDERS; i++)
    if (i % 3 == 2)
      n_async += SHARED_MESSAGES;

  WAIT_FOR (g_atomic_int_get (&n_done) == SHARED_SENDERS &&
            f->n_messages == SHARED_SENDERS * SHARED_MESSAGES);
  for (guint i = 0; i < SHARED_SENDERS; i++)
    g_thread_join (threads[i]);

  r = record_nth (f, 0);
  g_assert_cmpuint (f->n_bad, ==, 0);
  for (guint32 i = 0; i < SHARED_SENDERS; i++)
    g_assert_cmpuint (record_next_seq (r, i), ==, SHARED_MESSAGES);

  /* Every send_async completed, successfully, in the main thread. */
  for (guint i = 0; i < SHARED_SENDERS; i++)
    {
      WAIT_FOR (g_atomic_int_get (&senders[i].n_async_done) == (i % 3 == 2 ? SHARED_MESSAGES : 0));
      g_assert_cmpint (senders[i].n_async_failed, ==, 0);
      g_assert_cmpint (senders[i].n_async_elsewhere, ==, 0);
    }
  g_assert_cmpuint (n_async, >, 0);

  np_pipe_client_close (c->client, NULL, NULL);
  WAIT_FOR (c->n_disconnected == 1 && f->n_disconnected == 1);
  g_assert_no_error (c->error);
  g_assert_no_error (r->error);
}

/* 3. Broadcasts from a worker while clients come and go in the main
 * thread: the clients connected throughout get every broadcast, in
 * order; those that came and went get a run of consecutive ones. */

#define BROADCASTS        1500
#define STABLE_CLIENTS    3

typedef struct
{
  NpPipeServer *server;
  gint         *n_done;
  gint          n_seen_connections;
} Broadcaster;

static gpointer
broadcaster (gpointer data)
{
  Broadcaster *b = data;

  for (guint32 seq = 0; seq < BROADCASTS; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (0, seq, np_test_mixed_size (0, seq));

      np_pipe_server_broadcast (b->server, message);

      /* The getters are for any thread too. */
      if (seq % 100 == 0)
        g_atomic_int_set (&b->n_seen_connections,
                          MAX ((guint) g_atomic_int_get (&b->n_seen_connections),
                               np_pipe_server_get_n_connections (b->server)));
      g_assert_true (np_pipe_server_is_running (b->server));
    }

  worker_done (b->n_done);
  return NULL;
}

static void
test_broadcast_from_worker (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) stable = g_ptr_array_new_with_free_func ((GDestroyNotify) client_free);
  Broadcaster b = { f->server, NULL, 0 };
  GThread *thread;
  gint n_done = 0;
  guint n_transient = 0;
  guint n_transient_received = 0;

  for (guint i = 0; i < STABLE_CLIENTS; i++)
    {
      Client *c = client_new (server_name (f), 0);

      client_connect (c);
      g_ptr_array_add (stable, c);
    }
  WAIT_FOR (f->n_connected == STABLE_CLIENTS);

  b.n_done = &n_done;
  thread = g_thread_new ("broadcaster", broadcaster, &b);

  /* Clients that connect and leave while the broadcasts go out. */
  while (g_atomic_int_get (&n_done) == 0)
    {
      g_autoptr(Client) c = client_new (server_name (f), 0);
      guint before = f->n_connected;

      client_connect (c);
      WAIT_FOR (f->n_connected > before || g_atomic_int_get (&n_done) > 0);
      for (guint i = 0; i < 20; i++)
        g_main_context_iteration (NULL, FALSE);

      np_pipe_client_close (c->client, NULL, NULL);
      WAIT_FOR (c->n_disconnected == 1);
      g_assert_no_error (c->error);
      g_assert_cmpuint (c->n_bad, ==, 0);

      n_transient++;
      n_transient_received += c->n_received;
    }
  g_thread_join (thread);

  for (guint i = 0; i < STABLE_CLIENTS; i++)
    {
      Client *c = g_ptr_array_index (stable, i);

      WAIT_FOR (c->n_received == BROADCASTS || c->n_bad > 0 || c->n_disconnected > 0);
      g_assert_cmpuint (c->n_bad, ==, 0);
      g_assert_cmpuint (c->n_disconnected, ==, 0);
      g_assert_cmpuint (c->first_seq, ==, 0);
      g_assert_cmpuint (c->n_received, ==, BROADCASTS);
    }

  g_test_message ("%u clients came and went, and got %u broadcasts between them",
                  n_transient, n_transient_received);
  g_assert_cmpuint (n_transient, >, 0);
  g_assert_cmpint (g_atomic_int_get (&b.n_seen_connections), >=, STABLE_CLIENTS);

  for (guint i = 0; i < STABLE_CLIENTS; i++)
    np_pipe_client_close (((Client *) g_ptr_array_index (stable, i))->client, NULL, NULL);
  WAIT_FOR (f->n_disconnected == f->n_connected);
}

/* 4. A client closed from one thread while another sends on it: every
 * send that succeeded arrives, whole and in order; every send after the
 * close fails with NP_PIPE_ERROR_CLOSED; the client reports its end once,
 * in its own context. Half of the rounds close from a worker with
 * close(), the other half from the main thread with close_async(). */

#define CLOSE_ROUNDS  16

typedef struct
{
  gpointer  target;            /* NpPipeClient or NpPipeConnection */
  guint32   sender;
  guint     threshold;         /* sends before the close may come */
  GMutex    lock;
  GCond     cond;
  gint      reached;           /* atomic, and under the lock */
  gint      n_ok;
  gint      n_failed_after;
  gint      n_async_cb;
  gint      n_async_wrong_error;
  gint     *n_done;
} Sender;

static void
sender_reached (Sender *s)
{
  g_mutex_lock (&s->lock);
  g_atomic_int_set (&s->reached, TRUE);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  g_main_context_wakeup (NULL);
}

static void
sender_wait (Sender *s)
{
  g_mutex_lock (&s->lock);
  while (!s->reached)
    g_cond_wait (&s->cond, &s->lock);
  g_mutex_unlock (&s->lock);
}

static void
closed_send_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Sender *s = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_false (np_pipe_client_send_finish (NP_PIPE_CLIENT (object), result, &error));
  if (!g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED))
    g_atomic_int_inc (&s->n_async_wrong_error);
  g_atomic_int_inc (&s->n_async_cb);
}

static gpointer
client_sender (gpointer data)
{
  Sender *s = data;
  NpPipeClient *client = s->target;
  g_autoptr(GError) error = NULL;
  guint32 seq;

  for (seq = 0; ; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (s->sender, seq, np_test_mixed_size (s->sender, seq));

      if (!np_pipe_client_send (client, message, &error))
        break;

      g_atomic_int_set (&s->n_ok, seq + 1);
      if (seq + 1 == s->threshold)
        sender_reached (s);

      /* Keep the queue bounded; the close may come in the middle. */
      if (np_pipe_client_get_queued_bytes (client) > 2 * 1024 * 1024 &&
          !np_pipe_client_flush_sync (client, NULL, &error))
        break;
    }
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  /* A flush that failed may have raced the close: the send tells. */
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (s->sender, seq, 5000);

      g_assert_false (np_pipe_client_send (client, message, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      g_assert_false (np_pipe_client_send_data (client, (const guint8 *) "x", 1, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      g_assert_false (np_pipe_client_flush_sync (client, NULL, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      np_pipe_client_send_async (client, message, NULL, closed_send_cb, s);
      g_atomic_int_inc (&s->n_failed_after);
    }
  g_assert_false (np_pipe_client_get_connected (client));
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), ==, 0);

  /* The close may have come before the threshold. */
  sender_reached (s);
  worker_done (s->n_done);
  return NULL;
}

typedef struct
{
  Sender *sender;
  gint   *n_done;
} Closer;

static gpointer
client_closer (gpointer data)
{
  Closer *closer = data;

  sender_wait (closer->sender);
  np_pipe_client_close (closer->sender->target, NULL, NULL);
  g_assert_false (np_pipe_client_get_connected (closer->sender->target));

  worker_done (closer->n_done);
  return NULL;
}

static void
close_async_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_thread_self () == main_thread);
  g_assert_true (np_pipe_client_close_finish (NP_PIPE_CLIENT (object), result, &error));
  g_assert_no_error (error);
  (*(gint *) user_data)++;
}

static void
test_client_close_while_sending (Fixture       *f,
                                 gconstpointer  data)
{
  static const guint thresholds[] = { 1, 3, 20, 150 };

  for (guint round = 0; round < CLOSE_ROUNDS; round++)
    {
      g_autoptr(Client) c = client_new (server_name (f), 0);
      Sender s = { c->client, 1000 + round, thresholds[round % G_N_ELEMENTS (thresholds)] };
      Closer closer = { &s, NULL };
      GThread *sender_thread, *closer_thread = NULL;
      gboolean from_worker = round % 2 == 0;
      gint n_done = 0, n_closed = 0;
      Record *r;

      g_mutex_init (&s.lock);
      g_cond_init (&s.cond);
      s.n_done = closer.n_done = &n_done;

      client_connect (c);
      WAIT_FOR (f->n_connected == round + 1);
      r = record_nth (f, round);

      sender_thread = g_thread_new ("sender", client_sender, &s);
      if (from_worker)
        closer_thread = g_thread_new ("closer", client_closer, &closer);
      else
        {
          WAIT_FOR (g_atomic_int_get (&s.reached));
          np_pipe_client_close_async (c->client, NULL, close_async_cb, &n_closed);
        }

      WAIT_FOR (g_atomic_int_get (&n_done) == (from_worker ? 2 : 1) &&
                (from_worker || n_closed == 1) &&
                r->n_disconnected == 1 && c->n_disconnected >= 1 &&
                g_atomic_int_get (&s.n_async_cb) == 10);
      g_thread_join (sender_thread);
      if (closer_thread != NULL)
        g_thread_join (closer_thread);
      drain_default_context ();

      /* What was sent before the close arrived, all of it. */
      g_test_message ("round %u: %d messages sent before the close", round, s.n_ok);
      g_assert_cmpuint (r->n_bad, ==, 0);
      g_assert_cmpuint (r->n_messages, ==, (guint) s.n_ok);
      g_assert_cmpuint (record_next_seq (r, s.sender), ==, (guint) s.n_ok);
      g_assert_no_error (r->error);
      g_assert_cmpint (s.n_failed_after, ==, 10);
      g_assert_cmpint (s.n_async_wrong_error, ==, 0);

      /* Reported once, in the main thread. */
      g_assert_cmpuint (c->n_disconnected, ==, 1);
      g_assert_no_error (c->error);

      g_mutex_clear (&s.lock);
      g_cond_clear (&s.cond);
    }
}

/* 5. A connection closed by the main thread while a worker sends to it:
 * every send that succeeded reaches the client, every later one fails
 * with NP_PIPE_ERROR_CLOSED, the server reports the client gone once. */

static gpointer
connection_sender (gpointer data)
{
  Sender *s = data;
  NpPipeConnection *connection = s->target;
  g_autoptr(GError) error = NULL;
  guint32 seq;

  for (seq = 0; ; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (s->sender, seq, np_test_mixed_size (s->sender, seq));

      /* The client reads in the main thread: let it catch up. */
      while (np_pipe_connection_get_queued_bytes (connection) > 2 * 1024 * 1024 &&
             np_pipe_connection_get_connected (connection))
        g_thread_yield ();

      if (!np_pipe_connection_send (connection, message, &error))
        break;

      g_atomic_int_set (&s->n_ok, seq + 1);
      if (seq + 1 == s->threshold)
        sender_reached (s);
    }
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
  g_clear_error (&error);

  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (s->sender, seq, 70000);

      g_assert_false (np_pipe_connection_send (connection, message, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      g_assert_false (np_pipe_connection_send_data (connection, (const guint8 *) "x", 1, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      g_atomic_int_inc (&s->n_failed_after);
    }
  g_assert_false (np_pipe_connection_get_connected (connection));

  sender_reached (s);
  worker_done (s->n_done);
  return NULL;
}

static void
test_connection_close_while_sending (Fixture       *f,
                                     gconstpointer  data)
{
  static const guint thresholds[] = { 1, 5, 50, 300 };

  for (guint round = 0; round < CLOSE_ROUNDS; round++)
    {
      guint32 sender = 2000 + round;
      g_autoptr(Client) c = client_new (server_name (f), sender);
      Sender s = { NULL, sender, thresholds[round % G_N_ELEMENTS (thresholds)] };
      GThread *thread;
      gint n_done = 0;
      Record *r;

      g_mutex_init (&s.lock);
      g_cond_init (&s.cond);
      s.n_done = &n_done;

      client_connect (c);
      WAIT_FOR (f->n_connected == round + 1);
      r = record_nth (f, round);
      s.target = r->connection;

      thread = g_thread_new ("sender", connection_sender, &s);
      WAIT_FOR (g_atomic_int_get (&s.reached));
      /* The client reads in this thread: a close that blocked until
       * everything is written would wait for it. */
      np_pipe_connection_close_async (r->connection, NULL, NULL, NULL);
      g_assert_false (np_pipe_connection_get_connected (r->connection));

      WAIT_FOR (g_atomic_int_get (&n_done) == 1 && r->n_disconnected == 1 &&
                c->n_disconnected == 1);
      g_thread_join (thread);
      drain_default_context ();

      g_test_message ("round %u: %d messages sent before the close", round, s.n_ok);
      g_assert_cmpint (s.n_failed_after, ==, 10);
      g_assert_no_error (r->error);
      g_assert_cmpuint (r->n_disconnected, ==, 1);

      /* Everything queued before the close reached the client. */
      g_assert_cmpuint (c->n_bad, ==, 0);
      g_assert_cmpuint (c->n_received, ==, (guint) s.n_ok);
      g_assert_cmpuint (c->n_received == 0 ? 0 : c->first_seq, ==, 0);
      g_assert_cmpuint (c->n_disconnected, ==, 1);
      g_assert_no_error (c->error);

      g_mutex_clear (&s.lock);
      g_cond_clear (&s.cond);
    }
}

/* 6. Where signals and callbacks run */

/* 6a. A client created in a worker that runs a context of its own gets
 * its signals and callbacks there. */

#define ECHOES 200

typedef struct
{
  const char   *name;
  GMainContext *context;
  GThread      *thread;
  gint          connected;
  gint          closed;
  gint          n_pings;
  gint         *n_done;
} Own;

static void
assert_in_own_context (Own *own)
{
  g_assert_true (g_main_context_is_owner (own->context));
  g_assert_true (g_thread_self () == own->thread);
  g_assert_false (g_thread_self () == main_thread);
}

static void
own_connected_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Own *own = user_data;
  g_autoptr(GError) error = NULL;

  assert_in_own_context (own);
  g_assert_true (np_pipe_client_connect_finish (NP_PIPE_CLIENT (object), result, &error));
  g_assert_no_error (error);
  own->connected++;
}

static void
own_ping_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Own *own = user_data;
  g_autoptr(GError) error = NULL;
  gint64 usec = -1;

  assert_in_own_context (own);
  usec = np_pipe_client_ping_finish (NP_PIPE_CLIENT (object), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (usec, >=, 0);
  own->n_pings++;
}

static void
own_closed_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Own *own = user_data;
  g_autoptr(GError) error = NULL;

  assert_in_own_context (own);
  g_assert_true (np_pipe_client_close_finish (NP_PIPE_CLIENT (object), result, &error));
  g_assert_no_error (error);
  own->closed++;
}

static gpointer
own_loop_worker (gpointer data)
{
  Own *own = data;
  g_autoptr(Client) c = NULL;

  own->context = g_main_context_new ();
  own->thread = g_thread_self ();
  g_main_context_push_thread_default (own->context);

  c = client_new (own->name, 6);
  g_assert_true (c->context == own->context);

  np_pipe_client_connect_async (c->client, NULL, own_connected_cb, own);
  while (own->connected == 0)
    g_main_context_iteration (own->context, TRUE);
  g_assert_true (np_pipe_client_get_connected (c->client));

  for (guint32 seq = 0; seq < ECHOES; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (6, seq, np_test_mixed_size (6, seq));
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_client_send (c->client, message, &error));
      g_assert_no_error (error);
      if (seq % 50 == 0)
        np_pipe_client_ping_async (c->client, NULL, own_ping_cb, own);
    }

  while (c->n_received < ECHOES || own->n_pings < ECHOES / 50)
    g_main_context_iteration (own->context, TRUE);
  g_assert_cmpuint (c->n_bad, ==, 0);
  g_assert_cmpuint (c->first_seq, ==, 0);

  np_pipe_client_close_async (c->client, NULL, own_closed_cb, own);
  while (own->closed == 0 || c->n_disconnected == 0)
    g_main_context_iteration (own->context, TRUE);
  g_assert_cmpuint (c->n_disconnected, ==, 1);
  g_assert_no_error (c->error);
  /* Connected, then not: both notified here. */
  g_assert_cmpuint (c->n_notify_connected, ==, 2);

  g_clear_pointer (&c, client_free);
  while (g_main_context_iteration (own->context, FALSE))
    ;
  g_main_context_pop_thread_default (own->context);
  g_main_context_unref (own->context);

  worker_done (own->n_done);
  return NULL;
}

static void
test_context_worker_loop (Fixture       *f,
                          gconstpointer  data)
{
  Own own = { server_name (f) };
  GThread *thread;
  gint n_done = 0;

  f->echo = TRUE;
  own.n_done = &n_done;
  thread = g_thread_new ("own-loop", own_loop_worker, &own);
  WAIT_FOR (g_atomic_int_get (&n_done) == 1 && f->n_disconnected == 1);
  g_thread_join (thread);

  g_assert_cmpuint (f->n_messages, ==, ECHOES);
  g_assert_cmpuint (record_next_seq (record_nth (f, 0), 6), ==, ECHOES);
}

/* 6b. send_async, flush_async and ping_async called from a worker that
 * pushed a context of its own, on a client of the main thread: the
 * callbacks run in the worker's context. */

#define ASYNC_SENDS 300

typedef struct
{
  NpPipeClient *client;
  GMainContext *context;
  GThread      *thread;
  guint         n_sent;
  guint         n_flushed;
  guint         n_pinged;
  gint         *n_done;
} AsyncWorker;

static void
assert_in_worker_context (AsyncWorker *w)
{
  g_assert_true (g_main_context_is_owner (w->context));
  g_assert_true (g_thread_self () == w->thread);
}

static void
worker_send_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  AsyncWorker *w = user_data;
  g_autoptr(GError) error = NULL;

  assert_in_worker_context (w);
  g_assert_true (np_pipe_client_send_finish (NP_PIPE_CLIENT (object), result, &error));
  g_assert_no_error (error);
  w->n_sent++;
}

static void
worker_flush_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncWorker *w = user_data;
  g_autoptr(GError) error = NULL;

  assert_in_worker_context (w);
  g_assert_true (np_pipe_client_flush_finish (NP_PIPE_CLIENT (object), result, &error));
  g_assert_no_error (error);
  w->n_flushed++;
}

static void
worker_ping_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  AsyncWorker *w = user_data;
  g_autoptr(GError) error = NULL;

  assert_in_worker_context (w);
  g_assert_cmpint (np_pipe_client_ping_finish (NP_PIPE_CLIENT (object), result, &error), >=, 0);
  g_assert_no_error (error);
  w->n_pinged++;
}

static gpointer
async_worker (gpointer data)
{
  AsyncWorker *w = data;

  w->context = g_main_context_new ();
  w->thread = g_thread_self ();
  g_main_context_push_thread_default (w->context);

  for (guint32 seq = 0; seq < ASYNC_SENDS; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (7, seq, np_test_mixed_size (7, seq));

      np_pipe_client_send_async (w->client, message, NULL, worker_send_cb, w);
      if (seq % 30 == 29)
        {
          np_pipe_client_flush_async (w->client, NULL, worker_flush_cb, w);
          np_pipe_client_ping_async (w->client, NULL, worker_ping_cb, w);
        }
      while (g_main_context_iteration (w->context, FALSE))
        ;
    }

  while (w->n_sent < ASYNC_SENDS || w->n_flushed < ASYNC_SENDS / 30 || w->n_pinged < ASYNC_SENDS / 30)
    g_main_context_iteration (w->context, TRUE);

  g_main_context_pop_thread_default (w->context);
  g_main_context_unref (w->context);

  worker_done (w->n_done);
  return NULL;
}

static void
test_context_async_from_worker (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(Client) c = client_new (server_name (f), 7);
  AsyncWorker w = { c->client };
  GThread *thread;
  gint n_done = 0;

  w.n_done = &n_done;
  client_connect (c);
  WAIT_FOR (f->n_connected == 1);

  thread = g_thread_new ("async-worker", async_worker, &w);
  WAIT_FOR (g_atomic_int_get (&n_done) == 1 && f->n_messages == ASYNC_SENDS);
  g_thread_join (thread);

  g_assert_cmpuint (w.n_sent, ==, ASYNC_SENDS);
  g_assert_cmpuint (record_next_seq (record_nth (f, 0), 7), ==, ASYNC_SENDS);

  np_pipe_client_close (c->client, NULL, NULL);
  WAIT_FOR (c->n_disconnected == 1 && f->n_disconnected == 1);
}

/* 6c. A client of the main thread used from a worker (which has a
 * context of its own, and runs it): its signals and notifications still
 * run in the main thread. */

typedef struct
{
  Client *c;
  gint   *n_done;
} UseWorker;

static gpointer
use_worker (gpointer data)
{
  UseWorker *u = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (context);

  g_assert_true (np_pipe_client_connect_sync (u->c->client, NULL, &error));
  g_assert_no_error (error);

  for (guint32 seq = 0; seq < ECHOES; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (8, seq, np_test_mixed_size (8, seq));

      g_assert_true (np_pipe_client_send (u->c->client, message, &error));
      g_assert_no_error (error);
      /* Anything wrongly put in this thread's context would run here. */
      while (g_main_context_iteration (context, FALSE))
        ;
    }
  g_assert_true (np_pipe_client_flush_sync (u->c->client, NULL, &error));
  g_assert_no_error (error);

  g_main_context_pop_thread_default (context);
  worker_done (u->n_done);
  return NULL;
}

static gpointer
close_worker (gpointer data)
{
  UseWorker *u = data;
  g_autoptr(GMainContext) context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  np_pipe_client_close (u->c->client, NULL, NULL);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);

  worker_done (u->n_done);
  return NULL;
}

static void
test_context_main_client_from_worker (Fixture       *f,
                                      gconstpointer  data)
{
  g_autoptr(Client) c = client_new (server_name (f), 8);
  UseWorker u = { c, NULL };
  GThread *thread;
  gint n_done = 0;

  f->echo = TRUE;
  u.n_done = &n_done;

  thread = g_thread_new ("use-worker", use_worker, &u);
  WAIT_FOR (g_atomic_int_get (&n_done) == 1 && c->n_received == ECHOES);
  g_thread_join (thread);
  g_assert_cmpuint (c->n_bad, ==, 0);
  g_assert_cmpuint (c->first_seq, ==, 0);

  thread = g_thread_new ("close-worker", close_worker, &u);
  WAIT_FOR (g_atomic_int_get (&n_done) == 2 && c->n_disconnected == 1 &&
            c->n_notify_connected == 2 && f->n_disconnected == 1);
  g_thread_join (thread);
  drain_default_context ();

  /* Each handler checked it ran in the main thread. */
  g_assert_cmpuint (c->n_disconnected, ==, 1);
  g_assert_cmpuint (c->n_notify_connected, ==, 2);
  g_assert_no_error (c->error);
  g_assert_cmpuint (f->n_messages, ==, ECHOES);
}

/* A server in a worker that runs a context of its own. */
typedef struct
{
  Fixture       f;
  GThread      *thread;
  GMainContext *context;
  GMutex        lock;
  GCond         cond;
  gboolean      ready;
  gboolean      echo;
  gboolean      quit;   /* under the lock, so that Helgrind sees the order */
  gint          n_done;
  /* What the server saw, for the main thread once the worker is done. */
  guint         n_connected;
  guint         n_messages;
  guint         n_bad;
  guint         n_disconnected;
  guint         n_errors;
} ServerWorker;

static gboolean
server_worker_quitting (ServerWorker *sw)
{
  gboolean quit;

  g_mutex_lock (&sw->lock);
  quit = sw->quit;
  g_mutex_unlock (&sw->lock);

  return quit;
}

static gpointer
server_worker (gpointer data)
{
  ServerWorker *sw = data;

  sw->context = g_main_context_new ();
  g_main_context_push_thread_default (sw->context);
  fixture_init (&sw->f);
  sw->f.echo = sw->echo;

  g_mutex_lock (&sw->lock);
  sw->ready = TRUE;
  g_cond_broadcast (&sw->cond);
  g_mutex_unlock (&sw->lock);

  while (!server_worker_quitting (sw))
    g_main_context_iteration (sw->context, TRUE);
  /* What the main thread's calls left to notify here. */
  while (g_main_context_iteration (sw->context, FALSE))
    ;

  sw->n_connected = sw->f.n_connected;
  sw->n_messages = sw->f.n_messages;
  sw->n_bad = sw->f.n_bad;
  sw->n_disconnected = sw->f.n_disconnected;
  for (guint i = 0; i < sw->f.order->len; i++)
    sw->n_errors += record_nth (&sw->f, i)->error != NULL;

  fixture_fini (&sw->f);
  while (g_main_context_iteration (sw->context, FALSE))
    ;
  g_main_context_pop_thread_default (sw->context);
  g_main_context_unref (sw->context);

  worker_done (&sw->n_done);
  return NULL;
}

static void
server_worker_start (ServerWorker *sw,
                     gboolean      echo)
{
  memset (sw, 0, sizeof *sw);
  g_mutex_init (&sw->lock);
  g_cond_init (&sw->cond);
  sw->echo = echo;
  sw->thread = g_thread_new ("server-worker", server_worker, sw);

  g_mutex_lock (&sw->lock);
  while (!sw->ready)
    g_cond_wait (&sw->cond, &sw->lock);
  g_mutex_unlock (&sw->lock);
}

/* Once every client is gone. */
static void
server_worker_stop (ServerWorker *sw)
{
  WAIT_FOR (np_pipe_server_get_n_connections (sw->f.server) == 0);
  g_mutex_lock (&sw->lock);
  sw->quit = TRUE;
  g_mutex_unlock (&sw->lock);
  g_main_context_wakeup (sw->context);
  WAIT_FOR (g_atomic_int_get (&sw->n_done) == 1);
  g_thread_join (sw->thread);

  g_mutex_clear (&sw->lock);
  g_cond_clear (&sw->cond);
}

/* 6d. A server created in a worker that runs a context of its own emits
 * everything there; the main thread sends to its connections, stops it,
 * and its clients (in the main thread) get their signals in the main
 * thread. */
static void
test_context_server_in_worker (void)
{
  ServerWorker sw;
  g_autoptr(Client) c = NULL;
  g_autoptr(GBytes) direct = np_test_message_new (9, ECHOES, np_test_mixed_size (9, ECHOES));
  g_autoptr(GError) error = NULL;

  server_worker_start (&sw, TRUE);

  /* The main thread's client, with the server's handlers echoing in the
   * worker. */
  c = client_new (np_pipe_server_get_name (sw.f.server), 9);
  client_connect (c);
  WAIT_FOR (np_pipe_server_get_n_connections (sw.f.server) == 1);

  for (guint32 seq = 0; seq < ECHOES; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (9, seq, np_test_mixed_size (9, seq));

      g_assert_true (np_pipe_client_send (c->client, message, &error));
      g_assert_no_error (error);
    }
  WAIT_FOR (c->n_received == ECHOES);
  g_assert_cmpuint (c->n_bad, ==, 0);

  /* A connection of the worker's server, used from the main thread. */
  {
    g_autoptr(GListModel) connections = g_object_ref (np_pipe_server_get_connections (sw.f.server));
    g_autoptr(NpPipeConnection) connection = g_list_model_get_item (connections, 0);

    g_assert_nonnull (connection);
    g_assert_true (np_pipe_connection_send (connection, direct, &error));
    g_assert_no_error (error);
  }
  WAIT_FOR (c->n_received == ECHOES + 1);
  g_assert_cmpuint (c->n_bad, ==, 0);

  /* Stopped from the main thread: the server reports in the worker, the
   * client here. */
  np_pipe_server_stop (sw.f.server);
  g_assert_false (np_pipe_server_is_running (sw.f.server));
  WAIT_FOR (c->n_disconnected == 1);
  g_assert_no_error (c->error);

  server_worker_stop (&sw);

  /* Everything the main thread's client sent reached the worker's
   * server, and so did its end. */
  g_assert_cmpuint (sw.n_connected, ==, 1);
  g_assert_cmpuint (sw.n_messages, ==, ECHOES);
  g_assert_cmpuint (sw.n_bad, ==, 0);
  g_assert_cmpuint (sw.n_disconnected, ==, 1);
  g_assert_cmpuint (sw.n_errors, ==, 0);
}

/* 9. close_async() while another thread's flush_sync() writes the queue
 * out: whichever thread empties the queue of a closing client, the close
 * ends, cleanly, without waiting for a timeout.
 *
 * The server reads in a worker; the main thread queues much more than
 * the socket holds, without running its context. A worker's flush_sync()
 * starts writing; the main thread then closes with close_async() and
 * runs one iteration, in which the client's own writing finds the queue
 * still full and waits for the socket. Once flush_sync() has written the
 * rest, what is ready in the main context must end the close. */

#define FLUSH_QUEUE   (32 * 1024 * 1024)
#define FLUSH_ROUNDS  10

typedef struct
{
  NpPipeClient *client;
  gboolean      ok;
  gint          done;
} FlushWorker;

static gpointer
flush_worker (gpointer data)
{
  FlushWorker *w = data;
  g_autoptr(GError) error = NULL;

  /* Fails when the close came before this thread took the connection. */
  w->ok = np_pipe_client_flush_sync (w->client, NULL, &error);
  if (!w->ok)
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);

  g_atomic_int_set (&w->done, TRUE);
  return NULL;
}

static void
test_close_async_during_flush_sync (void)
{
  ServerWorker sw;
  guint n_sent = 0;
  guint n_overlapped = 0;

  server_worker_start (&sw, FALSE);

  for (guint round = 0; round < FLUSH_ROUNDS; round++)
    {
      guint32 client_id = 300 + round;
      g_autoptr(Client) c = client_new (np_pipe_server_get_name (sw.f.server), client_id);
      FlushWorker w = { c->client };
      GThread *thread;
      guint64 before;
      gboolean overlapped;
      gint n_closed = 0;

      client_connect (c);

      /* Sends past the threshold write what the socket takes; the rest
       * waits in the queue, since this thread runs nothing. */
      for (guint32 seq = 0; np_pipe_client_get_queued_bytes (c->client) < FLUSH_QUEUE; seq++)
        {
          g_autoptr(GBytes) message = np_test_message_new (client_id, seq, np_test_mixed_size (client_id, seq));
          g_autoptr(GError) error = NULL;

          g_assert_true (np_pipe_client_send (c->client, message, &error));
          g_assert_no_error (error);
          n_sent++;
        }

      before = np_pipe_client_get_queued_bytes (c->client);
      thread = g_thread_new ("flush-worker", flush_worker, &w);

      /* The queue shrinks while this thread runs nothing: the worker is
       * writing it. */
      while (np_pipe_client_get_queued_bytes (c->client) >= before && !g_atomic_int_get (&w.done))
        g_thread_yield ();

      overlapped = !g_atomic_int_get (&w.done);
      np_pipe_client_close_async (c->client, NULL, close_async_cb, &n_closed);
      g_main_context_iteration (NULL, FALSE);

      /* The worker writes the rest, the server reads it in its own
       * thread; nothing runs here. */
      while (!g_atomic_int_get (&w.done))
        g_thread_yield ();
      g_thread_join (thread);

      /* The close ends once its goodbye, after what the worker wrote,
       * is out too: as soon as the socket takes it, which the server's
       * thread decides. */
      if (w.ok && overlapped)
        n_overlapped++;

      WAIT_FOR (n_closed == 1 && c->n_disconnected == 1);
      g_assert_no_error (c->error);
    }

  g_test_message ("%u of %u rounds closed while flush_sync() wrote", n_overlapped, FLUSH_ROUNDS);
  g_assert_cmpuint (n_overlapped, >, 0);

  server_worker_stop (&sw);

  /* Everything queued before each close arrived, whole and in order. */
  g_assert_cmpuint (sw.n_connected, ==, FLUSH_ROUNDS);
  g_assert_cmpuint (sw.n_messages, ==, n_sent);
  g_assert_cmpuint (sw.n_bad, ==, 0);
  g_assert_cmpuint (sw.n_disconnected, ==, FLUSH_ROUNDS);
  g_assert_cmpuint (sw.n_errors, ==, 0);
}

/* 7. Clients used only through the blocking calls, from threads that
 * never run a main loop, while nothing runs the default main context
 * either: the server is another process, which counts what arrives. */

#define BLOCKING_THREADS   3
#define BLOCKING_MESSAGES  3000

typedef struct
{
  const char *name;
  guint32     client_id;
  gboolean    flush_midway;
} Blocking;

static gpointer
blocking_worker (gpointer data)
{
  Blocking *b = data;
  g_autoptr(NpPipeClient) client = np_pipe_client_new (b->name);
  g_autoptr(GError) error = NULL;

  g_assert_null (g_main_context_get_thread_default ());

  np_pipe_client_set_close_timeout (client, 0);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  for (guint32 seq = 0; seq < BLOCKING_MESSAGES; seq++)
    {
      g_autoptr(GBytes) message = np_test_message_new (b->client_id, seq,
                                                       np_test_mixed_size (b->client_id, seq));

      g_assert_true (np_pipe_client_send (client, message, &error));
      g_assert_no_error (error);

      if (b->flush_midway && seq == BLOCKING_MESSAGES / 2)
        {
          g_assert_true (np_pipe_client_flush_sync (client, NULL, &error));
          g_assert_no_error (error);
          g_assert_cmpuint (np_pipe_client_get_queued_bytes (client), ==, 0);
        }
    }

  np_pipe_client_close (client, NULL, NULL);
  g_assert_false (np_pipe_client_get_connected (client));

  return NULL;
}

static char *
read_line_blocking (GSubprocess *process)
{
  g_autoptr(GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  g_autoptr(GError) error = NULL;
  char *line;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (out), FALSE);
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);

  return line;
}

static void
test_blocking_without_loop (void)
{
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autofree char *name = g_strdup_printf ("counter-%d", getpid ());
  g_autofree char *line = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  Blocking workers[BLOCKING_THREADS];
  GThread *threads[BLOCKING_THREADS];

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              &error, peer, "count", name, NULL);
  g_assert_no_error (error);
  line = read_line_blocking (process);
  g_assert_cmpstr (line, ==, "ready");
  g_clear_pointer (&line, g_free);

  /* From here until the workers are done, no thread runs or owns the
   * default main context. */
  g_main_context_release (NULL);

  for (guint i = 0; i < BLOCKING_THREADS; i++)
    {
      workers[i] = (Blocking) { name, 100 + i, i == 0 };
      threads[i] = g_thread_new ("blocking", blocking_worker, &workers[i]);
    }
  for (guint i = 0; i < BLOCKING_THREADS; i++)
    g_thread_join (threads[i]);

  g_assert_true (g_main_context_acquire (NULL));

  g_assert_true (g_output_stream_close (g_subprocess_get_stdin_pipe (process), NULL, &error));
  g_assert_no_error (error);
  line = read_line_blocking (process);
  g_assert_true (g_subprocess_wait_check (process, NULL, &error));
  g_assert_no_error (error);

  /* Every message, checked, from every client. */
  expected = g_strdup_printf ("%u 0 %u", BLOCKING_THREADS * BLOCKING_MESSAGES, BLOCKING_THREADS);
  g_assert_cmpstr (line, ==, expected);

  drain_default_context ();
}

/* 8. Many clients of the main context, each fed with send_async() and
 * flush_async() by a worker of its own set, with no context of its own:
 * the callbacks all run in the main thread, every message arrives. All
 * the clients share the main context's flusher, which the workers arm
 * while the main thread runs it. */

#define FED_CLIENTS     24
#define FED_WORKERS     4
#define FED_MESSAGES    150
#define FED_IN_FLIGHT   256

typedef struct
{
  NpPipeClient **clients;
  guint          index;
  GMutex         lock;
  GCond          cond;
  gint           in_flight;
  gint           n_callbacks;
  gint           n_failed;
  gint           n_elsewhere;
  gint          *n_done;
} Feeder;

static void
feeder_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Feeder *fd = user_data;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (g_thread_self () != main_thread || !g_main_context_is_owner (g_main_context_default ()))
    g_atomic_int_inc (&fd->n_elsewhere);

  if (g_async_result_is_tagged (result, np_pipe_client_send_async))
    ok = np_pipe_client_send_finish (NP_PIPE_CLIENT (object), result, &error);
  else
    ok = np_pipe_client_flush_finish (NP_PIPE_CLIENT (object), result, &error);
  if (!ok)
    g_atomic_int_inc (&fd->n_failed);

  g_atomic_int_inc (&fd->n_callbacks);
  g_mutex_lock (&fd->lock);
  fd->in_flight--;
  g_cond_signal (&fd->cond);
  g_mutex_unlock (&fd->lock);
}

static gpointer
feeder (gpointer data)
{
  Feeder *fd = data;

  for (guint32 seq = 0; seq < FED_MESSAGES; seq++)
    for (guint i = fd->index; i < FED_CLIENTS; i += FED_WORKERS)
      {
        g_autoptr(GBytes) message = np_test_message_new (i, seq, np_test_mixed_size (i, seq));
        guint n = seq % 10 == 9 ? 2 : 1;

        g_mutex_lock (&fd->lock);
        while (fd->in_flight >= FED_IN_FLIGHT)
          g_cond_wait (&fd->cond, &fd->lock);
        fd->in_flight += n;
        g_mutex_unlock (&fd->lock);

        np_pipe_client_send_async (fd->clients[i], message, NULL, feeder_cb, fd);
        if (n == 2)
          np_pipe_client_flush_async (fd->clients[i], NULL, feeder_cb, fd);
      }

  worker_done (fd->n_done);
  return NULL;
}

static void
test_async_feeders (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) client_free);
  NpPipeClient *raw[FED_CLIENTS];
  Feeder feeders[FED_WORKERS];
  GThread *threads[FED_WORKERS];
  const guint per_client = FED_MESSAGES + FED_MESSAGES / 10;
  gint n_done = 0;

  for (guint i = 0; i < FED_CLIENTS; i++)
    {
      Client *c = client_new (server_name (f), i);

      client_connect (c);
      g_ptr_array_add (clients, c);
      raw[i] = c->client;
    }
  WAIT_FOR (f->n_connected == FED_CLIENTS);

  for (guint i = 0; i < FED_WORKERS; i++)
    {
      feeders[i] = (Feeder) { raw, i };
      g_mutex_init (&feeders[i].lock);
      g_cond_init (&feeders[i].cond);
      feeders[i].n_done = &n_done;
      threads[i] = g_thread_new ("feeder", feeder, &feeders[i]);
    }

  WAIT_FOR (g_atomic_int_get (&n_done) == FED_WORKERS &&
            f->n_messages == FED_CLIENTS * FED_MESSAGES);
  for (guint i = 0; i < FED_WORKERS; i++)
    {
      g_thread_join (threads[i]);
      WAIT_FOR (g_atomic_int_get (&feeders[i].n_callbacks) ==
                (gint) (per_client * (FED_CLIENTS / FED_WORKERS)));
      g_assert_cmpint (feeders[i].n_failed, ==, 0);
      g_assert_cmpint (feeders[i].n_elsewhere, ==, 0);
      g_mutex_clear (&feeders[i].lock);
      g_cond_clear (&feeders[i].cond);
    }

  g_assert_cmpuint (f->n_bad, ==, 0);
  for (guint i = 0; i < f->order->len; i++)
    {
      Record *r = record_nth (f, i);

      g_assert_cmpuint (r->n_messages, ==, FED_MESSAGES);
      g_assert_cmpuint (record_next_seq (r, r->client_id), ==, FED_MESSAGES);
    }

  for (guint i = 0; i < FED_CLIENTS; i++)
    np_pipe_client_close (raw[i], NULL, NULL);
  WAIT_FOR (f->n_disconnected == FED_CLIENTS);
  for (guint i = 0; i < FED_CLIENTS; i++)
    {
      Client *c = g_ptr_array_index (clients, i);

      WAIT_FOR (c->n_disconnected == 1);
      g_assert_no_error (c->error);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  /* A runtime directory of our own, so runs never share sockets. */
  runtime_dir = np_test_runtime_dir_new ("np-threads-XXXXXX");


  g_test_init (&argc, &argv, NULL);

  main_thread = g_thread_self ();
  /* As g_main_loop_run() would: the default context is this thread's. */
  g_assert_true (g_main_context_acquire (NULL));

  /* Classes are initialized once, by whichever thread comes first, and
   * published with atomics inside libgobject that ThreadSanitizer and
   * Helgrind cannot see; so is GLib's cache of the runtime directory,
   * which every client reads to find its socket. Made here, before any
   * thread, they are not reported as races. */
  g_type_class_unref (g_type_class_ref (NP_TYPE_PIPE_CLIENT));
  g_type_class_unref (g_type_class_ref (NP_TYPE_PIPE_SERVER));
  g_type_class_unref (g_type_class_ref (NP_TYPE_PIPE_CONNECTION));
  g_assert_cmpstr (g_get_user_runtime_dir (), ==, runtime_dir);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Threads/worker-clients", test_worker_clients);
  ADD ("/Np/Threads/shared-client", test_shared_client);
  ADD ("/Np/Threads/broadcast-from-worker", test_broadcast_from_worker);
  ADD ("/Np/Threads/client-close-while-sending", test_client_close_while_sending);
  ADD ("/Np/Threads/connection-close-while-sending", test_connection_close_while_sending);
  ADD ("/Np/Threads/context/worker-loop", test_context_worker_loop);
  ADD ("/Np/Threads/context/async-from-worker", test_context_async_from_worker);
  ADD ("/Np/Threads/context/main-client-from-worker", test_context_main_client_from_worker);
  g_test_add_func ("/Np/Threads/context/server-in-worker", test_context_server_in_worker);
  g_test_add_func ("/Np/Threads/close-async-during-flush-sync", test_close_async_during_flush_sync);
  g_test_add_func ("/Np/Threads/blocking-without-loop", test_blocking_without_loop);
  ADD ("/Np/Threads/async-feeders", test_async_feeders);

  ret = g_test_run ();

  g_main_context_release (NULL);

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
