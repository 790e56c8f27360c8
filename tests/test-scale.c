/* test-scale.c: one server and many clients, and what a main loop full
 * of ready connections must still get right
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Thousands of idle clients beside a busy one, hundreds sending at once,
 * connections closed, cancelled or killed while their data waits to be
 * read, handlers that run main loops of their own, and threads that send
 * on many connections while the main thread serves them. Everything goes
 * through the public API, real sockets and real processes; each test
 * checks what arrived: every message once, whole, in its sender's order,
 * and every client's end reported once.
 *
 * Each test runs in a process of its own, with a runtime directory of
 * its own: a crash or a hang fails that test alone.
 */

#include "config.h"

#include <signal.h>
#include <stdlib.h>

#include "np-poller-private.h"
#include "np-test-util.h"

/* Waits */

/* Iterates the default main context until @cond holds; a watchdog turns
 * a hang into a failure that says what did not happen. */
#define WAIT_FOR(cond) NP_TEST_WAIT_FOR (120, cond)

/* The server side */

/* One client as the server saw it: the sequence numbers of each sender
 * (a client id) it carried, checked as they arrive. */
typedef struct
{
  guint64           id;
  NpPipeConnection *connection;     /* NULL once a test let go of it */
  guint32           client_id;      /* the first sender, G_MAXUINT32 before */
  GHashTable       *next_seq;       /* sender → next sequence number */
  GArray           *seqs;           /* guint32, of the first sender, as they came */
  guint             n_messages;
  guint             n_bad;
  guint             n_disconnected;
  guint             n_after_close;  /* delivered once the test closed it */
  gboolean          closed;
  GError           *error;
} Peer;

typedef struct
{
  char         *runtime_dir;
  NpPipeServer *server;
  GHashTable   *peers;              /* connection id → Peer */
  GHashTable   *by_client;          /* first sender → Peer */
  GPtrArray    *order;              /* Peer, as they connected */
  gboolean      echo;
  gboolean      one_sender;         /* a connection carries one client id */
  gboolean      gaps;               /* a sender may skip (cancelled sends) */
  gsize       (*size_for) (guint32 client, guint32 seq);
  GPtrArray    *held;               /* NpPipeRequest: "hold" requests, unanswered */
  guint         n_connected;
  guint         n_disconnected;
  guint         n_messages;
  guint         n_bad;
} Scale;

static void
peer_free (gpointer data)
{
  Peer *p = data;

  g_clear_object (&p->connection);
  g_hash_table_unref (p->next_seq);
  g_array_unref (p->seqs);
  g_clear_error (&p->error);
  g_free (p);
}

static Peer *
scale_peer (Scale            *f,
            NpPipeConnection *connection)
{
  guint64 id = np_pipe_connection_get_id (connection);
  Peer *p = g_hash_table_lookup (f->peers, &id);

  g_assert_nonnull (p);

  return p;
}

static void
scale_connected_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    Scale            *f)
{
  Peer *p = g_new0 (Peer, 1);

  p->id = np_pipe_connection_get_id (connection);
  p->connection = g_object_ref (connection);
  p->client_id = G_MAXUINT32;
  p->next_seq = g_hash_table_new (NULL, NULL);
  p->seqs = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_assert_false (g_hash_table_contains (f->peers, &p->id));
  g_hash_table_insert (f->peers, &p->id, p);
  g_ptr_array_add (f->order, p);
  f->n_connected++;
  g_main_context_wakeup (NULL);
}

static gboolean
peer_check (Scale  *f,
            Peer   *p,
            GBytes *message)
{
  guint32 client_id = 0, seq = 0;
  guint32 expected;

  if (!np_test_message_parse (message, &client_id, &seq) ||
      g_bytes_get_size (message) != f->size_for (client_id, seq))
    return FALSE;

  if (p->client_id == G_MAXUINT32)
    {
      p->client_id = client_id;
      if (f->one_sender)
        {
          g_assert_false (g_hash_table_contains (f->by_client, GUINT_TO_POINTER (client_id)));
          g_hash_table_insert (f->by_client, GUINT_TO_POINTER (client_id), p);
        }
    }
  if (f->one_sender && client_id != p->client_id)
    return FALSE;
  if (client_id == p->client_id)
    g_array_append_val (p->seqs, seq);

  expected = GPOINTER_TO_UINT (g_hash_table_lookup (p->next_seq, GUINT_TO_POINTER (client_id)));
  if (f->gaps ? seq < expected : seq != expected)
    return FALSE;

  g_hash_table_insert (p->next_seq, GUINT_TO_POINTER (client_id), GUINT_TO_POINTER (seq + 1));
  return TRUE;
}

static void
scale_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  Scale            *f)
{
  Peer *p = scale_peer (f, connection);

  p->n_messages++;
  f->n_messages++;
  if (p->closed)
    p->n_after_close++;
  if (!peer_check (f, p, message))
    {
      p->n_bad++;
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
scale_disconnected_cb (NpPipeServer     *server,
                       NpPipeConnection *connection,
                       GError           *error,
                       Scale            *f)
{
  Peer *p = scale_peer (f, connection);

  p->n_disconnected++;
  g_clear_error (&p->error);
  p->error = error != NULL ? g_error_copy (error) : NULL;
  f->n_disconnected++;
  g_main_context_wakeup (NULL);
}

#define HOLD "hold"

/* Requests are echoed, so that a client sees the server still answers;
 * but a request that says "hold" is kept unanswered, for the test to
 * answer once its client gave up on it. */
static gboolean
scale_request_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  NpPipeRequest    *request,
                  Scale            *f)
{
  g_autoptr(GBytes) hold = g_bytes_new_static (HOLD, strlen (HOLD));

  if (g_bytes_equal (np_pipe_request_get_message (request), hold))
    g_ptr_array_add (f->held, g_object_ref (request));
  else
    np_pipe_request_reply (request, np_pipe_request_get_message (request));

  return TRUE;
}

/* A runtime directory of the test's own, in its own process: nothing
 * read the cached one yet. */
static char *
scale_runtime_dir_new (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("np-scale-XXXXXX", &error);

  g_assert_no_error (error);
  g_setenv ("XDG_RUNTIME_DIR", dir, TRUE);
  g_assert_cmpstr (g_get_user_runtime_dir (), ==, dir);

  return dir;
}

/* A server started with every limit that could drop a slow client off:
 * what is sent must all arrive, however long the machine (or a
 * sanitizer) takes. */
static Scale *
scale_new (void)
{
  Scale *f = g_new0 (Scale, 1);
  g_autoptr(GError) error = NULL;

  f->runtime_dir = scale_runtime_dir_new ();
  f->peers = g_hash_table_new (g_int64_hash, g_int64_equal);
  f->by_client = g_hash_table_new (NULL, NULL);
  f->order = g_ptr_array_new_with_free_func (peer_free);
  f->one_sender = TRUE;
  f->size_for = np_test_small_size;
  f->held = g_ptr_array_new_with_free_func (g_object_unref);

  f->server = np_pipe_server_new (NULL);
  g_object_set (f->server, "max-connections", 0, NULL);
  np_pipe_server_set_close_timeout (f->server, 0);
  np_pipe_server_set_handshake_timeout (f->server, 0);
  np_pipe_server_set_max_queued_bytes (f->server, 0);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (scale_connected_cb), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (scale_message_cb), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (scale_disconnected_cb), f);
  g_signal_connect (f->server, "request-received", G_CALLBACK (scale_request_cb), f);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (np_pipe_server_get_max_connections (f->server), ==, 0);

  return f;
}

/* Stops the server once every client it announced was reported gone,
 * once each. */
static void
scale_free (Scale *f)
{
  g_assert_cmpuint (f->n_disconnected, ==, f->n_connected);
  for (guint i = 0; i < f->order->len; i++)
    g_assert_cmpuint (((Peer *) g_ptr_array_index (f->order, i))->n_disconnected, ==, 1);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);

  np_pipe_server_stop (f->server);
  g_object_add_weak_pointer (G_OBJECT (f->server), (gpointer *) &f->server);
  g_object_unref (f->server);
  g_assert_null (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  g_hash_table_unref (f->peers);
  g_hash_table_unref (f->by_client);
  g_ptr_array_unref (f->order);
  g_assert_cmpuint (f->held->len, ==, 0);
  g_ptr_array_unref (f->held);
  np_test_runtime_dir_remove (f->runtime_dir);
  g_free (f->runtime_dir);
  g_free (f);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Scale, scale_free)

static const char *
scale_name (Scale *f)
{
  return np_pipe_server_get_name (f->server);
}

static Peer *
scale_client_peer (Scale   *f,
                   guint32  client_id)
{
  Peer *p = g_hash_table_lookup (f->by_client, GUINT_TO_POINTER (client_id));

  g_assert_nonnull (p);

  return p;
}

/* Asserts that @p carried test messages 0 to @n - 1 of one sender, in
 * order, and nothing else. */
static void
peer_assert_all (Peer    *p,
                 guint32  n)
{
  g_assert_cmpuint (p->n_bad, ==, 0);
  g_assert_cmpuint (p->n_messages, ==, n);
  g_assert_cmpuint (p->seqs->len, ==, n);
  for (guint32 i = 0; i < n; i++)
    g_assert_cmpuint (g_array_index (p->seqs, guint32, i), ==, i);
}

/* The client side */

typedef struct
{
  NpPipeClient *client;
  guint32       id;
  GHashTable   *next_seq;           /* sender → next sequence number */
  guint         n_received;
  guint         n_bad;
  guint         n_disconnected;
  GError       *error;
} Client;

static void
client_message_cb (NpPipeClient *client,
                   GBytes       *message,
                   Client       *c)
{
  guint32 sender = 0, seq = 0;
  guint32 expected;

  c->n_received++;
  if (!np_test_message_parse (message, &sender, &seq) ||
      g_bytes_get_size (message) != np_test_small_size (sender, seq))
    {
      c->n_bad++;
      return;
    }

  expected = GPOINTER_TO_UINT (g_hash_table_lookup (c->next_seq, GUINT_TO_POINTER (sender)));
  if (seq != expected)
    c->n_bad++;
  g_hash_table_insert (c->next_seq, GUINT_TO_POINTER (sender), GUINT_TO_POINTER (seq + 1));
}

static void
client_disconnected_cb (NpPipeClient *client,
                        GError       *error,
                        Client       *c)
{
  c->n_disconnected++;
  g_clear_error (&c->error);
  c->error = error != NULL ? g_error_copy (error) : NULL;
}

/* A client of the server, connected: connect_sync() returns at once to
 * a server of this thread, which announces it once the loop runs. */
static Client *
client_new (Scale   *f,
            guint32  id)
{
  Client *c = g_new0 (Client, 1);
  g_autoptr(GError) error = NULL;

  c->id = id;
  c->next_seq = g_hash_table_new (NULL, NULL);
  c->client = np_pipe_client_new (scale_name (f));
  np_pipe_client_set_connect_timeout (c->client, 0);
  np_pipe_client_set_close_timeout (c->client, 0);
  np_pipe_client_set_max_queued_bytes (c->client, 0);
  g_signal_connect (c->client, "message-received", G_CALLBACK (client_message_cb), c);
  g_signal_connect (c->client, "disconnected", G_CALLBACK (client_disconnected_cb), c);
  g_assert_true (np_pipe_client_connect_sync (c->client, NULL, &error));
  g_assert_no_error (error);

  return c;
}

static void
client_free (gpointer data)
{
  Client *c = data;

  g_object_add_weak_pointer (G_OBJECT (c->client), (gpointer *) &c->client);
  g_object_unref (c->client);
  /* What the client's connection left to its context may hold it a
   * little longer. */
  WAIT_FOR (c->client == NULL);
  g_hash_table_unref (c->next_seq);
  g_clear_error (&c->error);
  g_free (c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

static guint32
client_next_seq (Client  *c,
                 guint32  sender)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (c->next_seq, GUINT_TO_POINTER (sender)));
}

static void
client_send (Client  *c,
             guint32  sender,
             guint32  seq)
{
  g_autoptr(GBytes) message = np_test_message_new (sender, seq, np_test_small_size (sender, seq));
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_send (c->client, message, &error));
  g_assert_no_error (error);
}

/* Writes out what @c queued: to a server of this thread, as long as it
 * fits in the socket. */
static void
client_flush (Client *c)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_client_flush_sync (c->client, NULL, &error));
  g_assert_no_error (error);
}

/* @clients (Client), made, connected and announced by the server. */
static GPtrArray *
clients_new (Scale   *f,
             guint32  first,
             guint    n)
{
  GPtrArray *clients = g_ptr_array_new_with_free_func (client_free);
  guint before = f->n_connected;

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (clients, client_new (f, first + i));
  WAIT_FOR (f->n_connected == before + n);

  return clients;
}

/* Closes the clients still connected and waits until the server saw
 * every client go. */
static void
clients_close (Scale     *f,
               GPtrArray *clients)
{
  for (guint i = 0; i < clients->len; i++)
    {
      Client *c = g_ptr_array_index (clients, i);
      g_autoptr(GError) error = NULL;

      if (c->n_disconnected > 0)
        continue;
      g_assert_true (np_pipe_client_close (c->client, NULL, &error));
      g_assert_no_error (error);
      WAIT_FOR (c->n_disconnected == 1);
      g_assert_no_error (c->error);
    }
  WAIT_FOR (f->n_disconnected == f->n_connected);
}

/* A request's round trip: the server still answers. */
static void
client_assert_served (Client *c)
{
  g_autoptr(GBytes) question = g_bytes_new_static ("still there?", 12);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_request_async (c->client, question, NULL, np_test_async_done_cb, &result);
  WAIT_FOR (result != NULL);
  answer = np_pipe_client_request_finish (c->client, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (answer, question));
}

/* Processes of clients */

static GSubprocess *
spawn_clients (Scale      *f,
               const char *mode,
               guint32     first,
               guint       n)
{
  g_autofree char *first_arg = g_strdup_printf ("%u", first);
  g_autofree char *n_arg = g_strdup_printf ("%u", n);
  g_autofree char *expected = g_strdup_printf ("connected %u", n);
  g_autofree char *line = NULL;
  const char *hold_args[] = { "hold", scale_name (f), n_arg, NULL };
  const char *flood_args[] = { "flood", scale_name (f), first_arg, n_arg, NULL };
  GSubprocess *peer;

  peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                             g_str_equal (mode, "hold") ? hold_args : flood_args);

  /* Read from the loop: the server accepts them meanwhile. */
  line = np_test_read_line (peer);
  g_assert_cmpstr (line, ==, expected);

  return peer;
}

/* Closes the process's stdin, which ends it, and waits until it is gone,
 * its clients closed. */
static void
process_end (GSubprocess *peer)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, &error));
  g_assert_no_error (error);
  np_test_wait_process (peer);
  g_assert_true (g_subprocess_get_successful (peer));
}

/* 1. Two thousand idle clients, in another process, beside one that
 * makes a thousand round trips: every reply comes, in order, and the
 * server holds them all. */

#define IDLE_CLIENTS  2000
#define ROUND_TRIPS   1000

static void
test_idle_crowd (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(Client) active = NULL;
  Peer *p;

  f->echo = TRUE;
  peer = spawn_clients (f, "hold", 0, IDLE_CLIENTS);
  WAIT_FOR (f->n_connected == IDLE_CLIENTS);

  active = client_new (f, IDLE_CLIENTS);
  WAIT_FOR (f->n_connected == IDLE_CLIENTS + 1);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, IDLE_CLIENTS + 1);

  for (guint32 seq = 0; seq < ROUND_TRIPS; seq++)
    {
      client_send (active, active->id, seq);
      WAIT_FOR (active->n_received == seq + 1);
      g_assert_cmpuint (active->n_bad, ==, 0);
    }
  g_assert_cmpuint (client_next_seq (active, active->id), ==, ROUND_TRIPS);

  /* The crowd stayed, silent; the active client's messages all came. */
  g_assert_cmpuint (f->n_connected, ==, IDLE_CLIENTS + 1);
  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, IDLE_CLIENTS + 1);
  g_assert_cmpuint (f->n_messages, ==, ROUND_TRIPS);
  p = scale_client_peer (f, active->id);
  peer_assert_all (p, ROUND_TRIPS);

  process_end (peer);
  WAIT_FOR (f->n_disconnected == IDLE_CLIENTS);
  for (guint i = 0; i < f->order->len; i++)
    {
      Peer *idle = g_ptr_array_index (f->order, i);

      if (idle == p)
        continue;
      g_assert_cmpuint (idle->n_messages, ==, 0);
      g_assert_cmpuint (idle->n_disconnected, ==, 1);
      g_assert_no_error (idle->error);
    }
  g_assert_cmpuint (p->n_disconnected, ==, 0);

  np_pipe_client_close (active->client, NULL, NULL);
  WAIT_FOR (f->n_disconnected == IDLE_CLIENTS + 1);
  g_assert_no_error (p->error);
}

/* 2. Five hundred clients send a hundred messages each, all at once,
 * while clients of another process flood the server without pause: none
 * is starved, every message arrives, each client's in order. */

#define CROWD_CLIENTS   500
#define CROWD_MESSAGES  100
#define FLOODERS        4
#define FLOOD_FIRST     100000

static void
count_crowd_cb (NpPipeServer     *server,
                NpPipeConnection *connection,
                GBytes           *message,
                guint            *n_crowd)
{
  guint32 client_id = 0, seq = 0;

  if (np_test_message_parse (message, &client_id, &seq) && client_id < FLOOD_FIRST)
    (*n_crowd)++;
}

static void
test_none_starved (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(GPtrArray) clients = NULL;
  guint flood_before = 0;
  guint flood_during;
  guint n_crowd = 0;

  g_signal_connect (f->server, "message-received", G_CALLBACK (count_crowd_cb), &n_crowd);
  peer = spawn_clients (f, "flood", FLOOD_FIRST, FLOODERS);
  WAIT_FOR (f->n_connected == FLOODERS);
  clients = clients_new (f, 0, CROWD_CLIENTS);
  for (guint i = 0; i < FLOODERS; i++)
    WAIT_FOR (g_hash_table_contains (f->by_client, GUINT_TO_POINTER (FLOOD_FIRST + i)));

  for (guint i = 0; i < FLOODERS; i++)
    flood_before += scale_client_peer (f, FLOOD_FIRST + i)->n_messages;

  /* All at once: each client's messages are queued before any is
   * written. */
  for (guint32 seq = 0; seq < CROWD_MESSAGES; seq++)
    for (guint i = 0; i < CROWD_CLIENTS; i++)
      {
        Client *c = g_ptr_array_index (clients, i);

        client_send (c, c->id, seq);
      }

  WAIT_FOR (n_crowd == CROWD_CLIENTS * CROWD_MESSAGES);
  flood_during = f->n_messages - n_crowd - flood_before;
  g_assert_cmpuint (f->n_bad, ==, 0);
  for (guint i = 0; i < CROWD_CLIENTS; i++)
    peer_assert_all (scale_client_peer (f, i), CROWD_MESSAGES);
  g_test_message ("the flooders had %u messages read before the crowd sent, %u while it did",
                  flood_before, flood_during);

  /* The flooders stop, and all they sent arrives, in order. */
  process_end (peer);
  WAIT_FOR (f->n_disconnected == FLOODERS);
  for (guint i = 0; i < FLOODERS; i++)
    {
      Peer *p = scale_client_peer (f, FLOOD_FIRST + i);

      g_assert_cmpuint (p->n_bad, ==, 0);
      g_assert_cmpuint (p->n_disconnected, ==, 1);
      g_assert_no_error (p->error);
      g_assert_cmpuint (p->n_messages, >, 0);
      g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (p->next_seq, GUINT_TO_POINTER (FLOOD_FIRST + i))),
                        ==, p->n_messages);
    }

  clients_close (f, clients);
}

/* 3. Ends while data waits to be read. Clients send at once; the
 * handler of one client's message closes another client whose messages
 * are ready too, and lets go of it, and connects a new client; or
 * cancels a third's pending send and request; or closes its own
 * connection. The closed clients' messages are delivered no more, each
 * end is reported once, and the others, the new ones included, are
 * served on. Roles go by client id: 4k closes 4k + 1, 4k + 3 cancels
 * what 4k + 2 has in flight, those from READY_CLIENTS on close their own
 * connection. */

#define READY_CLIENTS   64
#define SELF_CLOSERS    8
#define READY_MESSAGES  20
#define NEWCOMER_FIRST  1000
#define LATE_CLIENT     2000
#define BIG_SEQ         READY_MESSAGES
#define BIG_SIZE        (4 * 1024 * 1024)

/* The cancellable sends: one larger than a socket holds, then a small
 * one behind it. */
static gsize
ready_size (guint32 client,
            guint32 seq)
{
  return seq == BIG_SEQ ? BIG_SIZE : np_test_small_size (client, seq);
}

typedef struct
{
  Client       *client;
  GCancellable *cancellable;
  GAsyncResult *request;
  GAsyncResult *sends[2];           /* BIG_SEQ, BIG_SEQ + 1 */
} Target;

typedef struct
{
  Scale     *f;
  Target     targets[READY_CLIENTS / 4];
  GPtrArray *newcomers;             /* Client, connected from a handler */
  guint      n_closed;
  guint      n_cancelled;
  guint      n_self_closed;
} Ready;

static void
ready_message_cb (NpPipeServer     *server,
                  NpPipeConnection *connection,
                  GBytes           *message,
                  Ready            *r)
{
  Peer *p = scale_peer (r->f, connection);
  Peer *victim;

  /* Once all said who they are, at the first of the rest. */
  if (p->n_messages != 2 || p->closed)
    return;

  if (p->client_id >= READY_CLIENTS)
    {
      g_autoptr(GError) error = NULL;

      /* In its own emission, the rest of its messages ready. */
      g_assert_true (np_pipe_connection_close (connection, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (p->n_disconnected, ==, 1);
      p->closed = TRUE;
      g_clear_object (&p->connection);
      r->n_self_closed++;
      return;
    }

  switch (p->client_id % 4)
    {
    case 0:
      {
        /* A client that comes while the server dispatches the others. */
        Client *c = client_new (r->f, NEWCOMER_FIRST + r->newcomers->len);

        client_send (c, c->id, 0);
        g_ptr_array_add (r->newcomers, c);
      }

      victim = scale_client_peer (r->f, p->client_id + 1);
      if (victim->connection != NULL)
        {
          g_autoptr(GError) error = NULL;

          /* From the server's context, the end is reported before this
           * returns. */
          g_assert_true (np_pipe_connection_close (victim->connection, NULL, &error));
          g_assert_no_error (error);
          g_assert_cmpuint (victim->n_disconnected, ==, 1);
          g_assert_no_error (victim->error);
          victim->closed = TRUE;
          g_clear_object (&victim->connection);
          r->n_closed++;
        }
      break;

    case 3:
      g_cancellable_cancel (r->targets[p->client_id / 4].cancellable);
      r->n_cancelled++;
      break;

    default:
      break;
    }
}

static void
test_close_ready_peer (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GPtrArray) clients = NULL;
  g_autoptr(GPtrArray) newcomers = g_ptr_array_new_with_free_func (client_free);
  g_autoptr(Client) late = NULL;
  g_autoptr(GBytes) hold = g_bytes_new_static (HOLD, strlen (HOLD));
  const guint n_clients = READY_CLIENTS + SELF_CLOSERS;
  guint n_big_delivered = 0, n_small_delivered = 0;
  Ready r = { f };

  f->size_for = ready_size;
  f->gaps = TRUE;
  clients = clients_new (f, 0, n_clients);
  r.newcomers = newcomers;
  g_signal_connect (f->server, "message-received", G_CALLBACK (ready_message_cb), &r);

  /* Each says who it is, so that the server knows them all. */
  for (guint i = 0; i < n_clients; i++)
    {
      client_send (g_ptr_array_index (clients, i), i, 0);
      client_flush (g_ptr_array_index (clients, i));
    }
  WAIT_FOR (f->n_messages == n_clients);

  /* Then all at once, every message in the server's sockets before it
   * reads any. */
  for (guint i = 0; i < n_clients; i++)
    {
      Client *c = g_ptr_array_index (clients, i);

      for (guint32 seq = 1; seq < READY_MESSAGES; seq++)
        client_send (c, c->id, seq);
      client_flush (c);
    }

  /* What the cancellers cancel: a request the server holds, and two
   * sends, the first larger than the socket takes at once. */
  for (guint i = 0; i < READY_CLIENTS / 4; i++)
    {
      Target *t = &r.targets[i];

      t->client = g_ptr_array_index (clients, 4 * i + 2);
      t->cancellable = g_cancellable_new ();
      np_pipe_client_request_async (t->client->client, hold, t->cancellable,
                                    np_test_async_done_cb, &t->request);
      for (guint32 k = 0; k < 2; k++)
        {
          guint32 seq = BIG_SEQ + k;
          g_autoptr(GBytes) message = np_test_message_new (t->client->id, seq,
                                                           ready_size (t->client->id, seq));

          np_pipe_client_send_async (t->client->client, message, t->cancellable,
                                     np_test_async_done_cb, &t->sends[k]);
        }
    }

  /* Every closer and every canceller had its turn; every operation
   * cancelled completed, once. */
  WAIT_FOR (r.n_closed == READY_CLIENTS / 4 && r.n_cancelled == READY_CLIENTS / 4 &&
            r.n_self_closed == SELF_CLOSERS);
  for (guint i = 0; i < READY_CLIENTS / 4; i++)
    {
      Target *t = &r.targets[i];
      Peer *p = scale_client_peer (f, t->client->id);
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;
      gboolean sent[2];

      WAIT_FOR (t->request != NULL && t->sends[0] != NULL && t->sends[1] != NULL);
      reply = np_pipe_client_request_finish (t->client->client, t->request, &error);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_null (reply);

      for (guint k = 0; k < 2; k++)
        {
          g_clear_error (&error);
          sent[k] = np_pipe_client_send_finish (t->client->client, t->sends[k], &error);
          if (!sent[k])
            g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        }

      /* A send reported done arrived; a cancelled one arrives whole or
       * not at all. The client's next message comes after either. */
      client_send (t->client, t->client->id, BIG_SEQ + 2);
      WAIT_FOR (p->seqs->len > 0 && g_array_index (p->seqs, guint32, p->seqs->len - 1) == BIG_SEQ + 2);
      g_assert_cmpuint (p->n_bad, ==, 0);
      g_assert_cmpuint (p->seqs->len, >=, READY_MESSAGES + 1);
      g_assert_cmpuint (p->seqs->len, <=, READY_MESSAGES + 3);
      for (guint32 seq = 0; seq < READY_MESSAGES; seq++)
        g_assert_cmpuint (g_array_index (p->seqs, guint32, seq), ==, seq);
      for (guint k = 0; k < 2; k++)
        {
          gboolean arrived = FALSE;

          for (guint j = READY_MESSAGES; j < p->seqs->len; j++)
            arrived |= g_array_index (p->seqs, guint32, j) == BIG_SEQ + k;
          if (sent[k])
            g_assert_true (arrived);
          if (arrived)
            *(k == 0 ? &n_big_delivered : &n_small_delivered) += 1;
        }

      g_clear_object (&t->request);
      g_clear_object (&t->sends[0]);
      g_clear_object (&t->sends[1]);
      g_clear_object (&t->cancellable);
    }
  g_test_message ("of the cancelled sends, %u large and %u small arrived all the same",
                  n_big_delivered, n_small_delivered);

  /* The answers to the requests given up on go nowhere. */
  g_assert_cmpuint (f->held->len, ==, READY_CLIENTS / 4);
  for (guint i = 0; i < f->held->len; i++)
    np_pipe_request_reply (g_ptr_array_index (f->held, i), hold);
  g_ptr_array_set_size (f->held, 0);

  /* The closed clients were told, once, and nothing of theirs came
   * after; everybody else's messages all came, in order. */
  g_assert_cmpuint (f->n_disconnected, ==, READY_CLIENTS / 4 + SELF_CLOSERS);
  for (guint i = 0; i < n_clients; i++)
    {
      Client *c = g_ptr_array_index (clients, i);
      Peer *p = scale_client_peer (f, i);

      g_assert_cmpuint (p->n_bad, ==, 0);
      g_assert_cmpuint (p->n_after_close, ==, 0);
      if (i >= READY_CLIENTS)
        {
          g_assert_true (p->closed);
          peer_assert_all (p, 2);
          WAIT_FOR (c->n_disconnected == 1);
          g_assert_no_error (c->error);
        }
      else if (i % 4 == 1)
        {
          g_assert_true (p->closed);
          g_assert_cmpuint (p->n_messages, <=, READY_MESSAGES);
          WAIT_FOR (c->n_disconnected == 1);
          g_assert_no_error (c->error);
        }
      else
        {
          if (i % 4 != 2)
            {
              WAIT_FOR (p->n_messages == READY_MESSAGES);
              peer_assert_all (p, READY_MESSAGES);
            }
          g_assert_cmpuint (p->n_disconnected, ==, 0);
          g_assert_cmpuint (c->n_disconnected, ==, 0);
        }
    }

  /* The clients that connected from a handler were served. */
  g_assert_cmpuint (newcomers->len, ==, READY_CLIENTS / 4);
  for (guint i = 0; i < newcomers->len; i++)
    {
      WAIT_FOR (g_hash_table_contains (f->by_client, GUINT_TO_POINTER (NEWCOMER_FIRST + i)));
      peer_assert_all (scale_client_peer (f, NEWCOMER_FIRST + i), 1);
    }

  /* The server serves on, those it had and a newcomer. */
  late = client_new (f, LATE_CLIENT);
  WAIT_FOR (f->n_connected == n_clients + newcomers->len + 1);
  client_assert_served (late);
  client_assert_served (g_ptr_array_index (clients, 0));
  client_assert_served (g_ptr_array_index (newcomers, 0));
  for (guint i = 0; i < n_clients; i++)
    g_assert_cmpuint (((Client *) g_ptr_array_index (clients, i))->n_received, ==, 0);

  np_pipe_client_close (late->client, NULL, NULL);
  g_ptr_array_extend_and_steal (clients, g_steal_pointer (&newcomers));
  clients_close (f, clients);
}

/* The same with clients in another process, some closed by the handler
 * of another while they flood the server, the rest killed (SIGKILL)
 * while they send: each end is reported once, what came is in order and
 * whole, and the server serves on. Client 10k closes client 10k + 1. */

#define KILLED_CLIENTS  100
#define KILL_AFTER      50

static void
kill_closer_cb (NpPipeServer     *server,
                NpPipeConnection *connection,
                GBytes           *message,
                Scale            *f)
{
  Peer *p = scale_peer (f, connection);
  Peer *victim;
  g_autoptr(GError) error = NULL;

  if (p->client_id % 10 != 0 || p->n_messages != KILL_AFTER)
    return;

  victim = g_hash_table_lookup (f->by_client, GUINT_TO_POINTER (p->client_id + 1));
  if (victim == NULL || victim->connection == NULL)
    return;

  g_assert_true (np_pipe_connection_close (victim->connection, NULL, &error));
  g_assert_no_error (error);
  victim->closed = TRUE;
  g_clear_object (&victim->connection);
}

static void
test_peer_killed_while_sending (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(Client) late = NULL;
  guint n_closed = 0;
  guint n_errors = 0;

  g_signal_connect (f->server, "message-received", G_CALLBACK (kill_closer_cb), f);
  peer = spawn_clients (f, "flood", 0, KILLED_CLIENTS);
  WAIT_FOR (f->n_connected == KILLED_CLIENTS);
  WAIT_FOR (g_hash_table_size (f->by_client) == KILLED_CLIENTS);

  /* Every client is well under way, those to close closed. */
  for (guint32 i = 0; i < KILLED_CLIENTS; i++)
    {
      Peer *p = scale_client_peer (f, i);

      if (i % 10 == 1)
        WAIT_FOR (p->closed);
      else
        WAIT_FOR (p->n_messages >= 2 * KILL_AFTER);
    }

  g_subprocess_send_signal (peer, SIGKILL);
  np_test_wait_process (peer);
  g_assert_true (g_subprocess_get_if_signaled (peer));
  g_assert_cmpint (g_subprocess_get_term_sig (peer), ==, SIGKILL);

  WAIT_FOR (f->n_disconnected == KILLED_CLIENTS);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, 0);
  for (guint32 i = 0; i < KILLED_CLIENTS; i++)
    {
      Peer *p = scale_client_peer (f, i);

      g_assert_cmpuint (p->n_disconnected, ==, 1);
      g_assert_cmpuint (p->n_bad, ==, 0);
      g_assert_cmpuint (p->n_after_close, ==, 0);
      g_assert_cmpuint (p->seqs->len, ==, p->n_messages);
      if (p->closed)
        {
          g_assert_no_error (p->error);
          n_closed++;
        }
      else if (p->error != NULL)
        n_errors++;
    }
  g_assert_cmpuint (n_closed, ==, KILLED_CLIENTS / 10);
  g_test_message ("%u clients closed by the server, %u of the killed ones ended with an error",
                  n_closed, n_errors);

  late = client_new (f, KILLED_CLIENTS);
  WAIT_FOR (f->n_connected == KILLED_CLIENTS + 1);
  client_assert_served (late);
  np_pipe_client_close (late->client, NULL, NULL);
  WAIT_FOR (f->n_disconnected == KILLED_CLIENTS + 1);
}

/* 4. A handler that runs a main loop of its own, in turn nested in
 * another's, while other connections are ready: client A's first
 * message makes the B clients send more and waits, in a GMainLoop,
 * until all of theirs came; B's first message of that second batch does
 * the same with the C clients. What the others send meanwhile is
 * delivered in the nested loops, and every connection's messages come
 * once, in order, whatever level delivers them. */

#define GROUP_CLIENTS    20
#define GROUP_MESSAGES   10
#define NESTED_A         0
#define NESTED_B         1
#define NESTED_C         (1 + GROUP_CLIENTS)

typedef struct
{
  GPtrArray *clients;
  GMainLoop *loops[2];              /* waiting for the B, the C clients */
  guint      depth;
  guint      max_depth;
  guint      n_group[2];            /* messages of the B, the C clients */
  guint      n_nested[2];           /* of those, delivered in a nested loop */
  guint      n_shallow;             /* delivered at less than the depth of their batch */
} Nested;

static void
nested_send_batch (Nested  *n,
                   guint32  first)
{
  for (guint32 id = first; id < first + GROUP_CLIENTS; id++)
    for (guint32 seq = GROUP_MESSAGES; seq < 2 * GROUP_MESSAGES; seq++)
      client_send (g_ptr_array_index (n->clients, id), id, seq);
}

static void
nested_wait (Nested  *n,
             guint    group)
{
  GSource *watchdog = np_test_watchdog_new (120, group == 0 ? "the B clients, in a nested loop"
                                                          : "the C clients, in a nested loop");

  n->depth++;
  n->max_depth = MAX (n->max_depth, n->depth);
  n->loops[group] = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (n->loops[group]);
  g_clear_pointer (&n->loops[group], g_main_loop_unref);
  n->depth--;
  np_test_watchdog_free (watchdog);
}

static void
nested_message_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   GBytes           *message,
                   Nested           *n)
{
  guint32 id = 0, seq = 0;

  g_assert_true (np_test_message_parse (message, &id, &seq));

  if (id >= NESTED_B)
    {
      guint group = id >= NESTED_C ? 1 : 0;

      n->n_group[group]++;
      if (n->depth > group)
        n->n_nested[group]++;
      /* The second batch is sent from the handler one level up. */
      if (seq >= GROUP_MESSAGES && n->depth < group + 1)
        n->n_shallow++;
      if (n->n_group[group] == 2 * GROUP_CLIENTS * GROUP_MESSAGES && n->loops[group] != NULL)
        g_main_loop_quit (n->loops[group]);
    }

  if (id == NESTED_A && seq == 0)
    {
      nested_send_batch (n, NESTED_B);
      nested_wait (n, 0);
    }
  else if (id == NESTED_B && seq == GROUP_MESSAGES)
    {
      nested_send_batch (n, NESTED_C);
      nested_wait (n, 1);
    }
}

static void
test_nested_loop_in_handler (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GPtrArray) clients = NULL;
  const guint n_clients = 1 + 2 * GROUP_CLIENTS;
  Nested n = { 0 };

  clients = clients_new (f, 0, n_clients);
  n.clients = clients;
  g_signal_connect (f->server, "message-received", G_CALLBACK (nested_message_cb), &n);

  /* Every connection has messages ready before the server reads any. */
  for (guint i = 0; i < n_clients; i++)
    {
      Client *c = g_ptr_array_index (clients, i);

      for (guint32 seq = 0; seq < GROUP_MESSAGES; seq++)
        client_send (c, c->id, seq);
      client_flush (c);
    }

  WAIT_FOR (f->n_messages == GROUP_MESSAGES + 4 * GROUP_CLIENTS * GROUP_MESSAGES);
  g_assert_cmpuint (n.depth, ==, 0);
  g_assert_cmpuint (n.max_depth, ==, 2);
  g_assert_cmpuint (n.n_shallow, ==, 0);
  g_assert_cmpuint (n.n_nested[0], >=, GROUP_CLIENTS * GROUP_MESSAGES);
  g_assert_cmpuint (n.n_nested[1], >=, GROUP_CLIENTS * GROUP_MESSAGES);
  g_assert_cmpuint (f->n_bad, ==, 0);
  peer_assert_all (scale_client_peer (f, NESTED_A), GROUP_MESSAGES);
  for (guint32 id = NESTED_B; id < n_clients; id++)
    peer_assert_all (scale_client_peer (f, id), 2 * GROUP_MESSAGES);

  clients_close (f, clients);
}

/* 5. Threads that send on many connections at once, at both ends, while
 * the main thread serves them: worker threads send on every client, and
 * on every server connection, with send(), send_data(), send_async()
 * and flush_sync(); the server echoes from its handler. Every message
 * arrives, in the order of its sending thread, on every connection. */

#define THREAD_CLIENTS         48
#define CLIENT_SENDERS         4
#define SERVER_SENDERS         2
#define THREAD_MESSAGES        100
#define SERVER_SENDER_FIRST    1000

typedef struct
{
  GPtrArray *targets;               /* NpPipeClient, or NpPipeConnection */
  gboolean   server_side;
  guint32    sender;
  gint      *n_done;
  gint       n_async_done;
  gint       n_async_failed;
} Worker;

static void
worker_send_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Worker *w = user_data;
  g_autoptr(GError) error = NULL;

  if (!np_pipe_client_send_finish (NP_PIPE_CLIENT (object), result, &error))
    g_atomic_int_inc (&w->n_async_failed);
  g_atomic_int_inc (&w->n_async_done);
}

static gpointer
worker_thread (gpointer data)
{
  Worker *w = data;

  for (guint32 seq = 0; seq < THREAD_MESSAGES; seq++)
    for (guint i = 0; i < w->targets->len; i++)
      {
        gpointer target = g_ptr_array_index (w->targets, i);
        g_autoptr(GBytes) message = np_test_message_new (w->sender, seq,
                                                         np_test_small_size (w->sender, seq));
        g_autoptr(GError) error = NULL;
        gboolean ok = TRUE;

        if (w->server_side)
          {
            ok = np_pipe_connection_send (target, message, &error);
            if (ok && w->sender % 2 == 1 && seq % 10 == 9)
              ok = np_pipe_connection_flush_sync (target, NULL, &error);
          }
        else
          switch (w->sender % 4)
            {
            case 0:
              ok = np_pipe_client_send (target, message, &error);
              break;

            case 1:
              ok = np_pipe_client_send (target, message, &error);
              if (ok && seq % 10 == 9)
                ok = np_pipe_client_flush_sync (target, NULL, &error);
              break;

            case 2:
              ok = np_pipe_client_send_data (target, g_bytes_get_data (message, NULL),
                                             g_bytes_get_size (message), &error);
              break;

            default:
              np_pipe_client_send_async (target, message, NULL, worker_send_cb, w);
            }
        g_assert_no_error (error);
        g_assert_true (ok);
      }

  g_atomic_int_inc (w->n_done);
  g_main_context_wakeup (NULL);

  return NULL;
}

static gboolean
clients_all_received (GPtrArray *clients,
                      guint      n)
{
  for (guint i = 0; i < clients->len; i++)
    if (((Client *) g_ptr_array_index (clients, i))->n_received < n)
      return FALSE;

  return TRUE;
}

static void
test_threads_many_connections (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GPtrArray) clients = NULL;
  g_autoptr(GPtrArray) client_targets = g_ptr_array_new ();
  g_autoptr(GPtrArray) server_targets = g_ptr_array_new ();
  Worker workers[CLIENT_SENDERS + SERVER_SENDERS];
  GThread *threads[CLIENT_SENDERS + SERVER_SENDERS];
  const guint n_workers = G_N_ELEMENTS (workers);
  gint n_done = 0;

  /* As g_main_loop_run() would: the default context is this thread's,
   * and what it reports runs nowhere else. */
  g_assert_true (g_main_context_acquire (NULL));

  f->echo = TRUE;
  f->one_sender = FALSE;
  clients = clients_new (f, 0, THREAD_CLIENTS);
  for (guint i = 0; i < THREAD_CLIENTS; i++)
    {
      g_ptr_array_add (client_targets, ((Client *) g_ptr_array_index (clients, i))->client);
      g_ptr_array_add (server_targets, ((Peer *) g_ptr_array_index (f->order, i))->connection);
    }

  for (guint i = 0; i < n_workers; i++)
    {
      gboolean server_side = i >= CLIENT_SENDERS;

      workers[i] = (Worker) {
        server_side ? server_targets : client_targets,
        server_side,
        server_side ? SERVER_SENDER_FIRST + i - CLIENT_SENDERS : i,
        &n_done,
      };
      threads[i] = g_thread_new ("sender", worker_thread, &workers[i]);
    }

  WAIT_FOR (g_atomic_int_get (&n_done) == (gint) n_workers &&
            f->n_messages == THREAD_CLIENTS * CLIENT_SENDERS * THREAD_MESSAGES &&
            clients_all_received (clients, (CLIENT_SENDERS + SERVER_SENDERS) * THREAD_MESSAGES));
  for (guint i = 0; i < n_workers; i++)
    g_thread_join (threads[i]);

  /* The server got each client thread's messages in order, on every
   * connection; every client got its echoes and the server threads'
   * messages, in order. */
  g_assert_cmpuint (f->n_bad, ==, 0);
  for (guint i = 0; i < THREAD_CLIENTS; i++)
    {
      Peer *p = g_ptr_array_index (f->order, i);
      Client *c = g_ptr_array_index (clients, i);

      g_assert_cmpuint (p->n_bad, ==, 0);
      g_assert_cmpuint (p->n_messages, ==, CLIENT_SENDERS * THREAD_MESSAGES);
      g_assert_cmpuint (c->n_bad, ==, 0);
      g_assert_cmpuint (c->n_received, ==, (CLIENT_SENDERS + SERVER_SENDERS) * THREAD_MESSAGES);
      for (guint j = 0; j < n_workers; j++)
        {
          g_assert_cmpuint (client_next_seq (c, workers[j].sender), ==, THREAD_MESSAGES);
          if (!workers[j].server_side)
            g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (p->next_seq,
                                                                     GUINT_TO_POINTER (workers[j].sender))),
                              ==, THREAD_MESSAGES);
        }
    }

  /* The asynchronous sends all completed, in this thread's loop. */
  for (guint i = 0; i < n_workers; i++)
    {
      if (workers[i].server_side || workers[i].sender % 4 != 3)
        continue;
      WAIT_FOR (g_atomic_int_get (&workers[i].n_async_done) == THREAD_CLIENTS * THREAD_MESSAGES);
      g_assert_cmpint (workers[i].n_async_failed, ==, 0);
    }

  clients_close (f, clients);
  g_main_context_release (NULL);
}

/* What idle connections cost the main loop */

#define POLL_CLIENTS 300

/* Runs one iteration of the default main context by hand, and returns
 * how many descriptors GLib polled in it, whatever their priority. */
static guint
context_n_polled (void)
{
  GMainContext *context = g_main_context_default ();
  g_autofree GPollFD *fds = g_new0 (GPollFD, 4096);
  gint max_priority;
  gint timeout;
  gint n;

  g_assert_true (g_main_context_acquire (context));
  g_main_context_prepare (context, &max_priority);
  n = g_main_context_query (context, G_MAXINT, &timeout, fds, 4096);
  g_assert_cmpint (n, <=, 4096);
  g_main_context_check (context, G_MAXINT, fds, n);
  g_main_context_dispatch (context);
  g_main_context_release (context);

  return n;
}

/* An idle connection costs a main loop iteration nothing with the epoll
 * poller: with 300 connections open (both ends of each in this process),
 * GLib polls at most the few descriptors more that the poller has it
 * poll itself (NP_POLLER_DIRECT, the listener's among them), and no
 * source of theirs is dispatched. With a GSource per connection, GLib
 * polls each. */
static void
test_idle_polls_nothing (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GPtrArray) clients = NULL;
  guint before, after;

  before = context_n_polled ();
  clients = clients_new (f, 0, POLL_CLIENTS);
  g_assert_cmpuint (f->n_connected, ==, POLL_CLIENTS);
  after = context_n_polled ();

#ifdef NP_POLLER_EPOLL
  g_assert_cmpuint (after, <=, before + NP_POLLER_DIRECT);
#else
  g_assert_cmpuint (after, >=, before + 2 * POLL_CLIENTS);
#endif

  /* And they are served as ever. */
  for (guint i = 0; i < POLL_CLIENTS; i += 50)
    {
      Client *c = g_ptr_array_index (clients, i);

      client_send (c, c->id, 0);
    }
  WAIT_FOR (f->n_messages == POLL_CLIENTS / 50);

  clients_close (f, clients);
}

/* 7. Deadlines by the hundred, more than one dispatch takes: peers that
 * connect and never say hello all pass their handshake deadline at about
 * the same time, while a client is served; then, as the server stops,
 * peers that never read pass their close deadline together. Each silent
 * peer is dropped unannounced, each deaf one is reported once, timed
 * out. */

#define DEADLINE_PEERS 400

static void
test_deadlines_at_once (void)
{
  g_autoptr(Scale) f = scale_new ();
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GBytes) filler = g_bytes_new_take (g_malloc0 (256 * 1024), 256 * 1024);
  g_autoptr(GPtrArray) clients = NULL;
  guint n_timed_out = 0;

  np_pipe_server_set_handshake_timeout (f->server, 100);
  np_pipe_server_set_close_timeout (f->server, 100);

  for (guint i = 0; i < DEADLINE_PEERS; i++)
    g_ptr_array_add (peers, np_test_raw_connect (np_pipe_server_get_path (f->server)));
  clients = clients_new (f, 0, 1);
  client_send (g_ptr_array_index (clients, 0), 0, 0);
  WAIT_FOR (f->n_messages == 1);

  /* Each silent peer reads the end of its connection. */
  for (guint i = 0; i < peers->len; i++)
    {
      guint8 buf[256];

      while (np_test_raw_read (g_ptr_array_index (peers, i), buf, sizeof buf) > 0)
        ;
    }
  g_assert_cmpuint (f->n_connected, ==, 1);
  g_ptr_array_set_size (peers, 0);

  for (guint i = 0; i < DEADLINE_PEERS; i++)
    {
      GSocket *peer = np_test_raw_connect (np_pipe_server_get_path (f->server));

      np_test_raw_write_hello (peer, 3, 16 * 1024 * 1024);
      g_ptr_array_add (peers, peer);
    }
  WAIT_FOR (f->n_connected == 1 + DEADLINE_PEERS);

  /* More than the sockets take: every deaf peer's close waits. */
  np_pipe_server_broadcast (f->server, filler);
  np_pipe_server_stop (f->server);
  WAIT_FOR (f->n_disconnected == 1 + DEADLINE_PEERS);
  for (guint i = 1; i < f->order->len; i++)
    {
      Peer *p = g_ptr_array_index (f->order, i);

      if (g_error_matches (p->error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT))
        n_timed_out++;
    }
  g_assert_cmpuint (n_timed_out, ==, DEADLINE_PEERS);

  g_ptr_array_set_size (clients, 0);
}

/* Tests, each in a process of its own */

static guint nofile_limit;

typedef struct
{
  GTestFunc func;
  guint     timeout_sec;
  guint     nofile;       /* the RLIMIT_NOFILE it needs */
} ScaleTest;

static void
run_scale_test (gconstpointer data)
{
  const ScaleTest *test = data;

  if (g_test_subprocess ())
    {
      test->func ();
      return;
    }

  if (nofile_limit < test->nofile)
    {
      g_test_skip_printf ("this test needs %u descriptors, and RLIMIT_NOFILE allows %u "
                          "(raise its hard limit: ulimit -Hn)", test->nofile, nofile_limit);
      return;
    }

  g_test_trap_subprocess (NULL, (guint64) test->timeout_sec * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("%s", g_test_trap_reached_timeout ()
                                ? "the test's process hung: it did not end in time"
                                : "the test's process failed: see its report above");
}

static void
add_scale_test (const char *path,
                GTestFunc   func,
                guint       timeout_sec,
                guint       nofile)
{
  /* Static: a test's process ends without the suite being freed. */
  static ScaleTest tests[16];
  static guint n_tests;
  ScaleTest *test;

  g_assert_cmpuint (n_tests, <, G_N_ELEMENTS (tests));
  test = &tests[n_tests++];
  *test = (ScaleTest) { func, timeout_sec, nofile };
  g_test_add_data_func (path, test, run_scale_test);
}

/* What a process of this many connections to itself needs: a socket at
 * each end, an eighth of the limit that the library leaves to the
 * application, and some for the program. */
#define NOFILE_FOR(n_sockets) ((n_sockets) * 8 / 7 + 256)

int
main (int   argc,
      char *argv[])
{
  /* Debian's soft limit is 1024 descriptors; the hard one is the test's
   * to use. */
  nofile_limit = np_test_raise_nofile ();


  g_test_init (&argc, &argv, NULL);

  add_scale_test ("/Np/Scale/idle-crowd", test_idle_crowd, 240, NOFILE_FOR (IDLE_CLIENTS + 2));
  add_scale_test ("/Np/Scale/none-starved", test_none_starved, 240, NOFILE_FOR (2 * CROWD_CLIENTS + FLOODERS));
  add_scale_test ("/Np/Scale/close-ready-peer", test_close_ready_peer, 240,
                  NOFILE_FOR (2 * (READY_CLIENTS + SELF_CLOSERS + READY_CLIENTS / 4 + 1)));
  add_scale_test ("/Np/Scale/peer-killed-while-sending", test_peer_killed_while_sending, 240,
                  NOFILE_FOR (KILLED_CLIENTS + 2));
  add_scale_test ("/Np/Scale/nested-loop-in-handler", test_nested_loop_in_handler, 240,
                  NOFILE_FOR (2 * (1 + 2 * GROUP_CLIENTS)));
  add_scale_test ("/Np/Scale/idle-polls-nothing", test_idle_polls_nothing, 240,
                  NOFILE_FOR (2 * POLL_CLIENTS));
  add_scale_test ("/Np/Scale/threads-many-connections", test_threads_many_connections, 240,
                  NOFILE_FOR (2 * THREAD_CLIENTS));
  add_scale_test ("/Np/Scale/deadlines-at-once", test_deadlines_at_once, 240,
                  NOFILE_FOR (2 * (DEADLINE_PEERS + 1)));

  return g_test_run ();
}
