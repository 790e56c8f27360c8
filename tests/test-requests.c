/* test-requests.c: requests and replies both ways, their errors, and
 * typed GVariant messages
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#define _GNU_SOURCE

#include <glib/gstdio.h>
#include <sys/mman.h>

#include "np-test-util.h"

#include "np-frame-private.h"

typedef struct
{
  NpPipeServer *server;
  NpPipeClient *client;
  GPtrArray    *connections;
  GPtrArray    *kept;           /* requests the server keeps to answer later */
  GPtrArray    *messages;       /* what the server received, in order */
  guint         n_requests;
  gboolean      answer;         /* answer at once with the message */
  gboolean      keep;           /* keep, answer later */
  gboolean      drop;           /* take, and drop unanswered */
  guint         holding;        /* of kept, not yet answered */
  guint         max_holding;    /* what holding may reach, 0: unchecked */
  gsize         holding_bytes;  /* their messages' sizes */
  gsize         max_holding_bytes; /* what those may reach, 0: unchecked */
  GError       *disconnected;   /* why the last connection ended */
  guint         n_disconnected;
} Fixture;

static gboolean
on_request (NpPipeServer     *server,
            NpPipeConnection *connection,
            NpPipeRequest    *request,
            Fixture          *f)
{
  g_assert_true (np_pipe_request_get_connection (request) == connection);
  f->n_requests++;
  g_ptr_array_add (f->messages, g_bytes_ref (np_pipe_request_get_message (request)));

  if (f->answer)
    np_pipe_request_reply (request, np_pipe_request_get_message (request));
  else if (f->keep)
    {
      /* Counted, not timed: the server never hands over one past its
       * bound. */
      gsize size = g_bytes_get_size (np_pipe_request_get_message (request));

      if (f->max_holding > 0)
        g_assert_cmpuint (f->holding, <, f->max_holding);
      if (f->max_holding_bytes > 0)
        g_assert_cmpuint (f->holding_bytes + size, <=, f->max_holding_bytes);
      f->holding++;
      f->holding_bytes += size;
      g_ptr_array_add (f->kept, g_object_ref (request));
    }
  else if (!f->drop)
    return FALSE;

  return TRUE;
}

static void
on_message (NpPipeServer     *server,
            NpPipeConnection *connection,
            GBytes           *message,
            Fixture          *f)
{
  g_ptr_array_add (f->messages, g_bytes_ref (message));
}

static void
on_connected (NpPipeServer     *server,
              NpPipeConnection *connection,
              Fixture          *f)
{
  g_ptr_array_add (f->connections, g_object_ref (connection));
}

static void
on_disconnected (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 const GError     *error,
                 Fixture          *f)
{
  g_clear_error (&f->disconnected);
  f->disconnected = error != NULL ? g_error_copy (error) : NULL;
  f->n_disconnected++;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->kept = g_ptr_array_new_with_free_func (g_object_unref);
  f->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  f->answer = TRUE;
  f->server = np_pipe_server_new (NULL);
  g_signal_connect (f->server, "request-received", G_CALLBACK (on_request), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message), f);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_connected), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_disconnected), f);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);

  f->client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_assert_true (np_pipe_client_connect_sync (f->client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == 1);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_ptr_array_unref (f->kept);
  g_clear_object (&f->client);
  g_clear_object (&f->server);
  g_ptr_array_unref (f->connections);
  g_ptr_array_unref (f->messages);
  g_clear_error (&f->disconnected);
}

static GBytes *
text (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static GBytes *
client_request (Fixture  *f,
                GBytes   *message,
                GError  **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  np_pipe_client_request_async (f->client, message, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);

  return np_pipe_client_request_finish (f->client, result, error);
}

static gboolean
client_answers_cb (NpPipeClient  *client,
                   NpPipeRequest *request,
                   gpointer       user_data)
{
  g_autoptr(GBytes) reply = g_bytes_new_static ("from the client", 15);
  g_autoptr(NpPipeConnection) connection = np_pipe_client_get_connection (client);

  /* The client's end of the connection the request came over. */
  g_assert_nonnull (connection);
  g_assert_true (np_pipe_request_get_connection (request) == connection);
  np_pipe_request_reply (request, reply);
  return TRUE;
}

/* A request each way, answered. */
static void
test_both_ways (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GBytes) message = text ("to the server");
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  reply = client_request (f, message, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, message));
  g_clear_pointer (&reply, g_bytes_unref);

  g_signal_connect (f->client, "request-received", G_CALLBACK (client_answers_cb), NULL);
  np_pipe_connection_request_async (g_ptr_array_index (f->connections, 0), message, NULL,
                                    np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_connection_request_finish (g_ptr_array_index (f->connections, 0), result, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), "from the client", 15);
}

typedef struct
{
  NpPipeClient *client;
  GBytes       *reply;
  GError       *error;
  gint          done;
} DataSync;

static gpointer
request_data_sync_worker (gpointer data)
{
  DataSync *d = data;

  d->reply = np_pipe_client_request_data_sync (d->client, (const guint8 *) "sync", 4,
                                               NULL, &d->error);
  g_atomic_int_set (&d->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

static gboolean
client_answers_data_cb (NpPipeClient  *client,
                        NpPipeRequest *request,
                        gpointer       user_data)
{
  np_pipe_request_reply_data (request, (const guint8 *) "data reply", 10);
  return TRUE;
}

/* The calls for bindings that hold byte strings: a request each way made
 * from bytes and a length, and a reply made so too. */
static void
test_data_twins (Fixture       *f,
                 gconstpointer  data)
{
  NpPipeConnection *connection = g_ptr_array_index (f->connections, 0);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GThread) thread = NULL;
  DataSync d = { f->client, NULL, NULL, FALSE };

  np_pipe_client_request_data_async (f->client, (const guint8 *) "to the server", 13, NULL,
                                     np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_data_finish (f->client, result, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), "to the server", 13);
  g_clear_pointer (&reply, g_bytes_unref);
  g_clear_object (&result);

  /* An empty request is a request too. */
  np_pipe_client_request_data_async (f->client, NULL, 0, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_data_finish (f->client, result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (reply), ==, 0);
  g_clear_pointer (&reply, g_bytes_unref);
  g_clear_object (&result);

  /* The blocking twin, from a thread while this one runs the context. */
  thread = g_thread_new ("request-data-sync", request_data_sync_worker, &d);
  WAIT_UNTIL (g_atomic_int_get (&d.done));
  g_assert_no_error (d.error);
  g_assert_cmpmem (g_bytes_get_data (d.reply, NULL), g_bytes_get_size (d.reply), "sync", 4);
  g_bytes_unref (d.reply);

  g_signal_connect (f->client, "request-received", G_CALLBACK (client_answers_data_cb), NULL);
  np_pipe_connection_request_data_async (connection, (const guint8 *) "to the client", 13, NULL,
                                         np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_connection_request_data_finish (connection, result, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), "data reply", 10);
  g_assert_cmpuint (f->n_requests, ==, 3);
}

/* A reply larger than the requester takes (the max message size of its
 * hello) goes as an ERROR of code MESSAGE_TOO_LARGE instead, from the
 * side that answers: the request fails, the connection goes on. */
static void
test_reply_too_large (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(NpPipeClient) small = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) large = g_bytes_new_take (g_malloc0 (2000), 2000);
  g_autoptr(GBytes) fits = text ("fits");
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_set_max_message_size (small, 1024);
  np_pipe_client_connect_async (small, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (small, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  np_pipe_client_request_async (small, large, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (small, result, &error);
  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_assert_nonnull (strstr (error->message, "1024"));
  g_clear_error (&error);
  g_clear_object (&result);

  g_assert_true (np_pipe_client_get_connected (small));
  np_pipe_client_request_async (small, fits, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (small, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, fits));
}

/* Replies given in another order than the requests came are matched to
 * them; a thousand may be in flight. */
static void
test_out_of_order_and_many (Fixture       *f,
                            gconstpointer  data)
{
  const guint n = 1000;
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree GAsyncResult **slots = g_new0 (GAsyncResult *, n);

  f->answer = FALSE;
  f->keep = TRUE;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (7, i, np_test_random_size (7, i));

      np_pipe_client_request_async (f->client, message, NULL, np_test_async_done_cb, &slots[i]);
    }
  WAIT_UNTIL (f->kept->len == n);

  /* Backwards. */
  for (guint i = n; i-- > 0;)
    {
      NpPipeRequest *request = g_ptr_array_index (f->kept, i);

      np_pipe_request_reply (request, np_pipe_request_get_message (request));
    }

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;
      guint32 client = 0, seq = 0;

      WAIT_UNTIL (slots[i] != NULL);
      reply = np_pipe_client_request_finish (f->client, slots[i], &error);
      g_assert_no_error (error);
      g_assert_true (np_test_message_parse (reply, &client, &seq));
      g_assert_cmpuint (seq, ==, i);
      g_clear_object (&slots[i]);
    }
}

/* A request unanswered in time fails with TIMED_OUT; the reply that
 * comes later is dropped, and the connection goes on. */
static void
test_timeout (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GBytes) message = text ("late");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  f->answer = FALSE;
  f->keep = TRUE;
  np_pipe_client_set_request_timeout (client, 100);
  g_assert_cmpuint (np_pipe_client_get_request_timeout (client), ==, 100);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));

  np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (client, result, &error);
  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Answered after all: dropped. */
  g_assert_cmpuint (f->kept->len, ==, 1);
  np_pipe_request_reply (g_ptr_array_index (f->kept, 0), message);

  f->answer = TRUE;
  f->keep = FALSE;
  np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (client, result, &error);
  g_assert_no_error (error);
  g_assert_true (np_pipe_client_get_connected (client));
}

/* Cancelling fails that request only; one cancelled before any of it
 * was written never reaches the server. */
static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) before = g_cancellable_new ();
  g_autoptr(GBytes) first = text ("first");
  g_autoptr(GBytes) cancelled = text ("cancelled");
  g_autoptr(GBytes) never = text ("never");
  g_autoptr(GBytes) last = text ("last");
  GAsyncResult *results[4] = { NULL };
  g_autoptr(GError) error = NULL;

  f->answer = FALSE;
  f->keep = TRUE;

  g_cancellable_cancel (before);
  np_pipe_client_request_async (f->client, first, NULL, np_test_async_done_cb, &results[0]);
  np_pipe_client_request_async (f->client, cancelled, cancellable, np_test_async_done_cb, &results[1]);
  np_pipe_client_request_async (f->client, never, before, np_test_async_done_cb, &results[2]);
  g_cancellable_cancel (cancellable);
  np_pipe_client_request_async (f->client, last, NULL, np_test_async_done_cb, &results[3]);

  WAIT_UNTIL (results[1] != NULL && results[2] != NULL && f->kept->len == 2);
  g_assert_null (np_pipe_client_request_finish (f->client, results[1], &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_null (np_pipe_client_request_finish (f->client, results[2], &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* Neither cancelled request reached the server. */
  g_assert_true (g_bytes_equal (np_pipe_request_get_message (g_ptr_array_index (f->kept, 0)), first));
  g_assert_true (g_bytes_equal (np_pipe_request_get_message (g_ptr_array_index (f->kept, 1)), last));

  for (guint i = 0; i < f->kept->len; i++)
    {
      NpPipeRequest *request = g_ptr_array_index (f->kept, i);

      np_pipe_request_reply (request, np_pipe_request_get_message (request));
    }
  WAIT_UNTIL (results[0] != NULL && results[3] != NULL);
  for (guint i = 0; i < G_N_ELEMENTS (results); i += 3)
    {
      g_autoptr(GBytes) reply = np_pipe_client_request_finish (f->client, results[i], &error);

      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (reply, i == 0 ? first : last));
    }

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    g_clear_object (&results[i]);
}

/* Nobody answers: a request no handler takes gets NOT_SUPPORTED at once;
 * one dropped unanswered gets FAILED. */
static void
test_unanswered (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GBytes) message = text ("anyone?");
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  f->answer = FALSE;
  reply = client_request (f, message, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  f->drop = TRUE;
  reply = client_request (f, message, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "without an answer"));
  g_clear_error (&error);

  /* The client too: with no handler, the server hears NOT_SUPPORTED. */
  {
    g_autoptr(GAsyncResult) result = NULL;

    np_pipe_connection_request_async (g_ptr_array_index (f->connections, 0), message, NULL,
                                      np_test_async_done_cb, &result);
    WAIT_UNTIL (result != NULL);
    g_assert_null (np_pipe_connection_request_finish (g_ptr_array_index (f->connections, 0),
                                                      result, &error));
    g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  }
}

/* The errors a requester gets when its request is not answered, or its
 * reply cannot be sent, name the pipe, as every other message does. */
static void
test_errors_name_the_pipe (Fixture       *f,
                           gconstpointer  data)
{
  const char *name = np_pipe_server_get_name (f->server);
  g_autoptr(NpPipeClient) small = np_pipe_client_new (name);
  g_autoptr(GBytes) message = text ("anyone?");
  g_autoptr(GBytes) large = g_bytes_new_take (g_malloc0 (2000), 2000);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* No handler took it: the message says a handler that declined looks
   * like none. */
  f->answer = FALSE;
  reply = client_request (f, message, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, name));
  g_assert_nonnull (strstr (error->message, "counts as none"));
  g_clear_error (&error);

  /* Taken, and dropped unanswered. */
  f->drop = TRUE;
  reply = client_request (f, message, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "without an answer"));
  g_assert_nonnull (strstr (error->message, name));
  g_clear_error (&error);

  /* Answered with more than the requester takes. */
  f->drop = FALSE;
  f->answer = TRUE;
  np_pipe_client_set_max_message_size (small, 1024);
  np_pipe_client_connect_async (small, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (np_pipe_client_connect_finish (small, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  np_pipe_client_request_async (small, large, NULL, np_test_async_done_cb, &result);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_finish (small, result, &error);
  g_assert_null (reply);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_assert_nonnull (strstr (error->message, "requesting side"));
  g_assert_nonnull (strstr (error->message, name));
}

static gboolean
reply_error_cb (NpPipeServer     *server,
                NpPipeConnection *connection,
                NpPipeRequest    *request,
                gpointer          user_data)
{
  const char *what = g_bytes_get_data (np_pipe_request_get_message (request), NULL);

  if (g_str_has_prefix (what, "gio"))
    {
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No “%s” here", "x");

      np_pipe_request_reply_error (request, error);
    }
  else if (g_str_has_prefix (what, "np"))
    np_pipe_request_reply_error_literal (request, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL, "full");
  else
    np_pipe_request_reply_error_literal (request, g_quark_from_static_string ("my-app-error-quark"),
                                         42, "an application error");
  return TRUE;
}

/* An error reply keeps its domain, code and message. */
static void
test_error_domains (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GBytes) gio = g_bytes_new_static ("gio", 4);
  g_autoptr(GBytes) np = g_bytes_new_static ("np", 3);
  g_autoptr(GBytes) app = g_bytes_new_static ("app", 4);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  f->answer = FALSE;
  g_signal_connect (f->server, "request-received", G_CALLBACK (reply_error_cb), NULL);

  reply = client_request (f, gio, &error);
  g_assert_null (reply);
  g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
  g_assert_cmpstr (error->message, ==, "No “x” here");
  g_clear_error (&error);

  reply = client_request (f, np, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_QUEUE_FULL);
  g_clear_error (&error);

  reply = client_request (f, app, &error);
  g_assert_error (error, g_quark_from_static_string ("my-app-error-quark"), 42);
  g_assert_cmpstr (error->message, ==, "an application error");
}

/* Answering twice is a programming error, and sends nothing. */
static void
test_answer_twice (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GBytes) message = text ("once");
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  NpPipeRequest *request;

  f->answer = FALSE;
  f->keep = TRUE;
  np_pipe_client_request_async (f->client, message, NULL, NULL, NULL);
  WAIT_UNTIL (f->kept->len == 1);
  request = g_ptr_array_index (f->kept, 0);

  g_assert_false (np_pipe_request_get_answered (request));
  np_pipe_request_reply (request, message);
  g_assert_true (np_pipe_request_get_answered (request));

  g_test_expect_message ("Np", G_LOG_LEVEL_CRITICAL, "*answered once*");
  np_pipe_request_reply (request, message);
  g_test_assert_expected_messages ();

  /* The connection is intact. */
  f->keep = FALSE;
  f->answer = TRUE;
  reply = client_request (f, message, &error);
  g_assert_no_error (error);
}

/* A disconnect fails every pending request with its error. */
static void
test_disconnect_fails_pending (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GBytes) message = text ("pending");
  GAsyncResult *results[3] = { NULL };
  g_autoptr(GError) error = NULL;

  f->answer = FALSE;
  f->keep = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    np_pipe_client_request_async (f->client, message, NULL, np_test_async_done_cb, &results[i]);
  WAIT_UNTIL (f->kept->len == G_N_ELEMENTS (results));

  np_pipe_server_stop (f->server);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      WAIT_UNTIL (results[i] != NULL);
      g_assert_null (np_pipe_client_request_finish (f->client, results[i], &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED);
      g_clear_error (&error);
      g_clear_object (&results[i]);
    }
}

/* Requests and messages keep their relative order on the wire. */
static void
test_order_with_messages (Fixture       *f,
                          gconstpointer  data)
{
  const guint n = 200;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (9, i, np_test_size_for (i));
      g_autoptr(GError) error = NULL;

      if (i % 3 == 0)
        np_pipe_client_request_async (f->client, message, NULL, NULL, NULL);
      else
        g_assert_true (np_pipe_client_send (f->client, message, &error));
    }

  WAIT_UNTIL (f->messages->len == n);
  for (guint i = 0; i < n; i++)
    {
      guint32 client = 0, seq = 0;

      g_assert_true (np_test_message_parse (g_ptr_array_index (f->messages, i), &client, &seq));
      g_assert_cmpuint (seq, ==, i);
    }
}

typedef struct
{
  Fixture *f;
  gint     done;
} SyncWorker;

static gpointer
request_sync_worker (gpointer data)
{
  SyncWorker *w = data;
  g_autoptr(GBytes) message = text ("from a worker");
  g_autoptr(GError) error = NULL;
  GBytes *reply = np_pipe_client_request_sync (w->f->client, message, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, message));
  g_atomic_int_set (&w->done, TRUE);
  g_main_context_wakeup (NULL);

  return reply;
}

/* request_sync from a thread while the main thread runs the server, and
 * from the main thread to a server in another process. */
static void
test_request_sync (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *name = g_strdup_printf ("sync-%u", g_random_int ());
  const char *args[] = { "serve", name, NULL };
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GBytes) message = text ("blocking");
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  SyncWorker w = { f, FALSE };
  GThread *thread;
  gpointer result = NULL;

  /* The server runs here: this thread must run while the worker waits. */
  thread = g_thread_new ("request-sync", request_sync_worker, &w);
  WAIT_UNTIL (g_atomic_int_get (&w.done));
  g_assert_cmpuint (f->n_requests, ==, 1);
  result = g_thread_join (thread);
  g_bytes_unref (result);

  peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  line = np_test_read_line (peer);
  g_assert_cmpstr (line, ==, "ready");

  /* No main loop runs: the call reads the socket itself. */
  client = np_pipe_client_new (name);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  reply = np_pipe_client_request_sync (client, message, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, message));

  /* A cancelled one returns at once. */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(GBytes) none = NULL;

    g_cancellable_cancel (cancellable);
    none = np_pipe_client_request_sync (client, message, cancellable, &error);
    g_assert_null (none);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }

  np_pipe_client_close (client, NULL, NULL);
  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
}

/* A peer of protocol version 1, which has no requests: a request fails
 * at once with NOT_SUPPORTED, never by timing out, and the connection
 * goes on. A request made before the peer's hello waits for it. */
static void
test_peer_without_requests (void)
{
  g_autofree char *name = g_strdup_printf ("v1-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GBytes) message = text ("request");
  g_autoptr(GBytes) after = text ("a message after it");
  g_autoptr(GAsyncResult) early = NULL;
  g_autoptr(GAsyncResult) late = NULL;
  g_autoptr(GError) error = NULL;
  guint8 hello[12];
  guint8 buf[64];
  guint8 header[NP_FRAME_HEADER_SIZE];
  NpFrameHeader decoded;

  np_pipe_client_set_request_timeout (client, 0);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &early);
  g_assert_true (np_pipe_client_send (client, after, &error));
  WAIT_UNTIL (raw->accepted->len == 1);

  np_test_hello (hello, 1, 1024);
  np_test_raw_write (g_ptr_array_index (raw->accepted, 0), hello, sizeof hello);
  WAIT_UNTIL (early != NULL);
  g_assert_null (np_pipe_client_request_finish (client, early, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &late);
  WAIT_UNTIL (late != NULL);
  g_assert_null (np_pipe_client_request_finish (client, late, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  /* The version 1 peer saw our hello and the message, nothing else. */
  np_test_raw_read_exactly (g_ptr_array_index (raw->accepted, 0), buf, 12);
  g_assert_cmpuint (buf[4], ==, 4);
  np_test_raw_read_exactly (g_ptr_array_index (raw->accepted, 0), header, sizeof header);
  np_test_header_decode (header, &decoded);
  g_assert_cmpuint (decoded.type, ==, NP_FRAME_MESSAGE);
  g_assert_cmpuint (decoded.length, ==, g_bytes_get_size (after));
  g_assert_true (np_pipe_client_get_connected (client));

  np_test_raw_server_free (raw);
}

/* Bounds on the requests a side holds unanswered */

/* Another client of the fixture's server, connected: it takes the
 * server's settings as they are now. */
static NpPipeClient *
connect_client (Fixture *f)
{
  NpPipeClient *client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;
  guint n = f->connections->len;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == n + 1);

  return client;
}

/* Answers kept request @i with its own message. */
static void
answer_kept (Fixture *f,
             guint    i)
{
  NpPipeRequest *request = g_ptr_array_index (f->kept, i);

  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  f->holding--;
  f->holding_bytes -= g_bytes_get_size (np_pipe_request_get_message (request));
}

static void
assert_refused (GAsyncResult **result,
                NpPipeClient  *client)
{
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (*result);
  g_assert_null (np_pipe_client_request_finish (client, *result, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS);
  g_clear_object (result);
}

static void
assert_echoed (GAsyncResult **result,
               NpPipeClient  *client,
               gsize          size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = NULL;

  WAIT_UNTIL (*result != NULL);
  reply = np_pipe_client_request_finish (client, *result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (reply), ==, size);
  g_clear_object (result);
}

static guint
count_done (GAsyncResult **results,
            guint          n)
{
  guint done = 0;

  for (guint i = 0; i < n; i++)
    if (results[i] != NULL)
      done++;

  return done;
}

/* A client cannot make the server hold more of its requests unanswered
 * than max-pending-requests: those past it are answered at once with
 * TOO_MANY_REQUESTS and never delivered, the held ones can still be
 * answered, and answering some makes room for as many. */
static void
test_pending_count (Fixture       *f,
                    gconstpointer  data)
{
  const guint limit = 8;
  const guint n = 3 * limit;
  g_autoptr(NpPipeClient) client = NULL;
  g_autofree GAsyncResult **results = g_new0 (GAsyncResult *, n + 4);

  g_assert_cmpuint (np_pipe_server_get_max_pending_requests (f->server), ==, 4096);
  np_pipe_server_set_max_pending_requests (f->server, limit);
  g_assert_cmpuint (np_pipe_server_get_max_pending_requests (f->server), ==, limit);
  client = connect_client (f);

  f->answer = FALSE;
  f->keep = TRUE;
  f->max_holding = limit;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, 16);

      np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &results[i]);
    }

  /* Taken in order: the first ones are held, every later one refused. */
  WAIT_UNTIL (count_done (results, n) == n - limit);
  g_assert_cmpuint (f->kept->len, ==, limit);
  g_assert_cmpuint (f->n_requests, ==, limit);
  for (guint i = 0; i < n; i++)
    if (i < limit)
      g_assert_null (results[i]);
    else
      assert_refused (&results[i], client);

  /* Three answered: three more are taken, and not a fourth. */
  for (guint i = 0; i < 3; i++)
    {
      answer_kept (f, i);
      assert_echoed (&results[i], client, 16);
    }
  for (guint i = n; i < n + 4; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (1, i, 16);

      np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &results[i]);
    }
  WAIT_UNTIL (results[n + 3] != NULL);
  assert_refused (&results[n + 3], client);
  g_assert_cmpuint (f->kept->len, ==, limit + 3);
  g_assert_cmpuint (f->holding, ==, limit);

  /* Every held one is still answered. */
  for (guint i = 3; i < f->kept->len; i++)
    answer_kept (f, i);
  for (guint i = 3; i < limit; i++)
    assert_echoed (&results[i], client, 16);
  for (guint i = n; i < n + 3; i++)
    assert_echoed (&results[i], client, 16);
  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_cmpuint (f->n_disconnected, ==, 0);
}

/* The same in bytes: a few large requests take up
 * max-pending-request-bytes, and the next one that would pass it is
 * refused, while a small one still fits. */
static void
test_pending_bytes (Fixture       *f,
                    gconstpointer  data)
{
  const guint limit = 1024 * 1024;
  const gsize big = 300000;
  const gsize sizes[] = { big, big, big, big, 100, big, big };
  g_autoptr(NpPipeClient) client = NULL;
  GAsyncResult *results[G_N_ELEMENTS (sizes)] = { NULL };

  g_assert_cmpuint (np_pipe_server_get_max_pending_request_bytes (f->server), ==, 64 * 1024 * 1024);
  np_pipe_server_set_max_pending_request_bytes (f->server, limit);
  g_assert_cmpuint (np_pipe_server_get_max_pending_request_bytes (f->server), ==, limit);
  client = connect_client (f);

  f->answer = FALSE;
  f->keep = TRUE;
  f->max_holding_bytes = limit;
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (2, i, sizes[i]);

      np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &results[i]);
    }

  /* Three fill 900000 of the 1048576 bytes; the fourth would pass them;
   * 100 more bytes still fit. */
  WAIT_UNTIL (results[3] != NULL && f->kept->len == 4);
  assert_refused (&results[3], client);
  g_assert_cmpuint (f->n_requests, ==, 4);
  for (guint i = 0; i < 5; i++)
    if (i != 3)
      g_assert_null (results[i]);

  /* One answered makes room for one more large request, not two. */
  answer_kept (f, 0);
  assert_echoed (&results[0], client, big);
  for (guint i = 5; i < 7; i++)
    {
      g_autoptr(GBytes) message = np_test_message_new (2, i, sizes[i]);

      np_pipe_client_request_async (client, message, NULL, np_test_async_done_cb, &results[i]);
    }
  WAIT_UNTIL (results[6] != NULL);
  assert_refused (&results[6], client);
  g_assert_cmpuint (f->kept->len, ==, 5);

  for (guint i = 1; i < f->kept->len; i++)
    answer_kept (f, i);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    if (i != 0 && i != 3 && i != 6)
      assert_echoed (&results[i], client, sizes[i]);
  g_assert_cmpuint (f->n_disconnected, ==, 0);
}

/* The requests a client keeps, counted against what it should take. */
typedef struct
{
  GPtrArray *kept;
  guint      holding;
  guint      max_holding;
  gsize      holding_bytes;
  gsize      max_holding_bytes;
} Keeper;

static gboolean
client_keeps_cb (NpPipeClient  *client,
                 NpPipeRequest *request,
                 Keeper        *k)
{
  gsize size = g_bytes_get_size (np_pipe_request_get_message (request));

  g_assert_cmpuint (k->holding, <, k->max_holding);
  g_assert_cmpuint (k->holding_bytes + size, <=, k->max_holding_bytes);
  k->holding++;
  k->holding_bytes += size;
  g_ptr_array_add (k->kept, g_object_ref (request));
  return TRUE;
}

static void
keeper_answer (Keeper *k,
               guint   i)
{
  NpPipeRequest *request = g_ptr_array_index (k->kept, i);

  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  k->holding--;
  k->holding_bytes -= g_bytes_get_size (np_pipe_request_get_message (request));
}

static GError *
connection_request (NpPipeConnection  *connection,
                    GAsyncResult     **result)
{
  GError *error = NULL;
  g_autoptr(GBytes) reply = NULL;

  WAIT_UNTIL (*result != NULL);
  reply = np_pipe_connection_request_finish (connection, *result, &error);
  g_clear_object (result);

  return error;
}

/* The client holds to its own bounds on the server's requests, and a
 * change applies at once. */
static void
test_pending_client (Fixture       *f,
                     gconstpointer  data)
{
  NpPipeConnection *connection = g_ptr_array_index (f->connections, 0);
  g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func (g_object_unref);
  Keeper k = { kept, 0, 2, 0, G_MAXSIZE };
  g_autoptr(GBytes) small = text ("small");
  g_autoptr(GBytes) large = text ("larger than ten bytes");
  GAsyncResult *results[5] = { NULL };
  GError *error;

  g_assert_cmpuint (np_pipe_client_get_max_pending_requests (f->client), ==, 4096);
  g_assert_cmpuint (np_pipe_client_get_max_pending_request_bytes (f->client), ==, 64 * 1024 * 1024);
  np_pipe_client_set_max_pending_requests (f->client, 2);
  g_assert_cmpuint (np_pipe_client_get_max_pending_requests (f->client), ==, 2);
  g_signal_connect (f->client, "request-received", G_CALLBACK (client_keeps_cb), &k);

  for (guint i = 0; i < 3; i++)
    np_pipe_connection_request_async (connection, small, NULL, np_test_async_done_cb, &results[i]);
  error = connection_request (connection, &results[2]);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS);
  g_clear_error (&error);
  g_assert_cmpuint (kept->len, ==, 2);

  keeper_answer (&k, 0);
  g_assert_no_error (connection_request (connection, &results[0]));

  /* A request past the bytes is refused, one within them taken. */
  np_pipe_client_set_max_pending_request_bytes (f->client, 10);
  k.max_holding_bytes = 10;
  g_assert_cmpuint (np_pipe_client_get_max_pending_request_bytes (f->client), ==, 10);
  np_pipe_connection_request_async (connection, large, NULL, np_test_async_done_cb, &results[3]);
  error = connection_request (connection, &results[3]);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS);
  g_clear_error (&error);
  np_pipe_connection_request_async (connection, small, NULL, np_test_async_done_cb, &results[4]);
  WAIT_UNTIL (kept->len == 3);

  keeper_answer (&k, 1);
  keeper_answer (&k, 2);
  g_assert_no_error (connection_request (connection, &results[1]));
  g_assert_no_error (connection_request (connection, &results[4]));
  g_assert_true (np_pipe_client_get_connected (f->client));
}

/* Reads @len bytes the server wrote. The server writes as the loop
 * prepares to poll: a source on the socket wakes the poll for them. */
static void
raw_read_exactly (GSocket *socket,
                  guint8  *buf,
                  gsize    len)
{
  g_autoptr(GSource) source = g_socket_create_source (socket, G_IO_IN, NULL);

  g_source_set_dummy_callback (source);
  g_source_attach (source, NULL);
  np_test_raw_read_exactly (socket, buf, len);
  g_source_destroy (source);
}

/* A raw peer of protocol version 3: its hello said, the server's read. */
static GSocket *
raw_peer_new (Fixture *f)
{
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  guint8 hello[NP_HELLO_SIZE];
  guint n = f->connections->len;

  np_test_raw_write_hello (socket, 3, 1024 * 1024);
  raw_read_exactly (socket, hello, sizeof hello);
  g_assert_cmpmem (hello, 4, "NPIP", 4);
  WAIT_UNTIL (f->connections->len == n + 1);

  return socket;
}

/* An ERROR frame, written out by hand: np_error_reply_encode() takes a
 * GError, whose domain would be interned in this process, the one under
 * test. */
static void
raw_send_error (GSocket    *socket,
                guint32     id,
                const char *domain,
                guint32     code,
                const char *message)
{
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 fields[NP_ERROR_REPLY_MIN];
  guint32 id_be = GUINT32_TO_BE (id);
  guint32 code_be = GUINT32_TO_BE (code);

  memcpy (fields, &id_be, 4);
  memcpy (fields + 4, &code_be, 4);
  fields[8] = 0;
  fields[9] = strlen (domain);
  g_byte_array_append (payload, fields, sizeof fields);
  g_byte_array_append (payload, (const guint8 *) domain, strlen (domain));
  g_byte_array_append (payload, (const guint8 *) message, strlen (message));
  np_frame_header_encode (header, NP_FRAME_ERROR, payload->len);
  np_test_raw_write (socket, header, sizeof header);
  np_test_raw_write (socket, payload->data, payload->len);
}

/* The next frame from the server: its type, and its payload. */
static GBytes *
raw_read_frame (GSocket *socket,
                guint8  *type)
{
  guint8 header[NP_FRAME_HEADER_SIZE];
  NpFrameHeader decoded;
  guint8 *payload;

  raw_read_exactly (socket, header, sizeof header);
  np_test_header_decode (header, &decoded);
  *type = decoded.type;
  payload = g_malloc (MAX (decoded.length, 1));
  raw_read_exactly (socket, payload, decoded.length);

  return g_bytes_new_take (payload, decoded.length);
}

static void
raw_send_request (GSocket    *socket,
                  guint32     id,
                  const char *message)
{
  guint8 header[NP_REQUEST_HEADER_SIZE];

  np_request_header_encode (header, NP_FRAME_REQUEST, id, strlen (message));
  np_test_raw_write (socket, header, sizeof header);
  np_test_raw_write (socket, (const guint8 *) message, strlen (message));
}

static void
assert_raw_reply (GSocket    *socket,
                  guint32     id,
                  const char *message)
{
  g_autoptr(GBytes) payload = NULL;
  const guint8 *data;
  gsize len;
  guint8 type;

  payload = raw_read_frame (socket, &type);
  data = g_bytes_get_data (payload, &len);
  g_assert_cmpuint (type, ==, NP_FRAME_REPLY);
  g_assert_cmpuint (np_request_id_decode (data), ==, id);
  g_assert_cmpmem (data + 4, len - 4, message, strlen (message));
}

static void
assert_raw_goodbye (GSocket     *socket,
                    NpPipeError  code)
{
  g_autoptr(GBytes) payload = NULL;
  guint8 type;

  payload = raw_read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_GOODBYE);
  g_assert_cmpuint (g_bytes_get_size (payload), >=, 4);
  g_assert_cmpuint (np_test_goodbye_code (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload)),
                    ==, code);
}

/* A raw peer of protocol version 4: its hello and settings said, the
 * server's read. */
static GSocket *
raw_peer_v4_new (Fixture *f)
{
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) settings = NULL;
  guint8 hello[NP_HELLO_SIZE];
  guint8 payload[8] = { 0, 0, 0, 0, 0, 0, 0, 16 };
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint n = f->connections->len;
  guint8 type;

  np_test_raw_write_hello (socket, 4, 1024 * 1024);
  np_frame_header_encode (header, NP_FRAME_SETTINGS, sizeof payload);
  np_test_raw_write (socket, header, sizeof header);
  np_test_raw_write (socket, payload, sizeof payload);
  raw_read_exactly (socket, hello, sizeof hello);
  g_assert_cmpmem (hello, 4, "NPIP", 4);
  settings = raw_read_frame (socket, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_SETTINGS);
  WAIT_UNTIL (f->connections->len == n + 1);

  return socket;
}

/* Thousands of requests with descriptors, none answered: the server
 * holds max-pending-requests of them (and their descriptors), answers
 * every other one at once with TOO_MANY_REQUESTS, and closes the
 * descriptors of those: the peer cannot make it hold more. The same in
 * bytes with max-pending-request-bytes. */
static void
test_pending_with_fds (Fixture       *f,
                       gconstpointer  data)
{
  const guint n = 2000;
  g_autoptr(GSocket) peer = NULL;
  g_autofree guint8 *frame = NULL;
  guint n_refused = 0;
  guint base;
  int fds[3];

  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    {
      fds[i] = memfd_create ("np-test-requests", MFD_CLOEXEC);
      g_assert_cmpint (fds[i], >=, 0);
    }
  np_pipe_server_set_max_pending_requests (f->server, 8);
  np_pipe_server_set_max_pending_request_bytes (f->server, 64 * 1024);
  base = np_test_count_open_fds ();
  peer = raw_peer_v4_new (f);
  base += 2;  /* the peer's socket, and the server's side of it */

  f->answer = FALSE;
  f->keep = TRUE;
  f->max_holding = 8;
  f->max_holding_bytes = 64 * 1024;

  frame = g_malloc0 (NP_REQUEST_HEADER_SIZE + 20000);
  for (guint i = 0; i < n; i++)
    {
      /* Every tenth a large one. */
      gsize len = i % 10 == 9 ? 20000 : 16;

      np_request_header_encode (frame, NP_FRAME_REQUEST_FDS, i + 1, len);
      frame[5] = G_N_ELEMENTS (fds);
      np_test_raw_send_with_fds (peer, frame, NP_REQUEST_HEADER_SIZE + len, fds,
                                 G_N_ELEMENTS (fds));

      /* Read the refusals as they come, so that neither side blocks. */
      while (g_socket_condition_check (peer, G_IO_IN) & G_IO_IN)
        {
          g_autoptr(GBytes) payload = NULL;
          guint8 type;

          payload = raw_read_frame (peer, &type);
          g_assert_cmpuint (type, ==, NP_FRAME_ERROR);
          g_autoptr(GError) reply = NULL;
          g_autoptr(GError) error = NULL;
          guint32 id;

          g_assert_true (np_error_reply_decode (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload),
                                                &id, &reply, &error));
          g_assert_no_error (error);
          g_assert_error (reply, NP_PIPE_ERROR, NP_PIPE_ERROR_TOO_MANY_REQUESTS);
          n_refused++;
        }
      g_main_context_iteration (NULL, FALSE);
    }

  while (n_refused < n - 8)
    {
      g_autoptr(GBytes) payload = NULL;
      guint8 type;

      payload = raw_read_frame (peer, &type);
      g_assert_cmpuint (type, ==, NP_FRAME_ERROR);
      n_refused++;
    }

  g_assert_cmpuint (f->kept->len, ==, 8);
  g_assert_cmpuint (f->n_requests, ==, 8);
  /* Only the held requests' descriptors stay open. */
  g_assert_cmpuint (np_test_count_open_fds (), ==, base + 8 * G_N_ELEMENTS (fds));
  g_assert_cmpuint (f->n_disconnected, ==, 0);

  for (guint i = 0; i < 8; i++)
    answer_kept (f, i);
  g_ptr_array_set_size (f->kept, 0);
  g_assert_cmpuint (np_test_count_open_fds (), ==, base);
  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    close (fds[i]);
}

typedef struct
{
  GAsyncResult *result;
  GBytes       *reply;
  GError       *error;
} NestedAsk;

/* Asks the peer, and waits for the answer in a loop of its own. */
static void
ask_in_handler_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   GBytes           *message,
                   NestedAsk        *ask)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("question", 8);

  np_pipe_connection_request_async (connection, request, NULL, np_test_async_done_cb, &ask->result);
  WAIT_UNTIL (ask->result != NULL);
  ask->reply = np_pipe_connection_request_finish (connection, ask->result, &ask->error);
}

/* A handler that waits in a main loop of its own for a reply that came
 * in the same read as the message it handles (the peer answered ahead):
 * the reply is delivered to it from what is left of that read, without
 * waiting for the socket to bring more. */
static void
test_nested_wait_for_rest (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GSocket) peer = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GBytes) message = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "go", 2);
  NestedAsk ask = { 0 };
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_REQUEST_HEADER_SIZE];

  g_signal_connect (f->server, "message-received", G_CALLBACK (ask_in_handler_cb), &ask);
  np_pipe_server_set_request_timeout (f->server, 5000);
  np_test_hello (hello, 3, 1024 * 1024);
  g_byte_array_append (bytes, hello, sizeof hello);
  g_byte_array_append (bytes, g_bytes_get_data (message, NULL), g_bytes_get_size (message));
  /* The first request the server sends has id 1. */
  np_request_header_encode (header, NP_FRAME_REPLY, 1, 6);
  g_byte_array_append (bytes, header, sizeof header);
  g_byte_array_append (bytes, (const guint8 *) "answer", 6);
  np_test_raw_write (peer, bytes->data, bytes->len);

  WAIT_UNTIL (ask.result != NULL);
  g_assert_no_error (ask.error);
  g_assert_cmpmem (g_bytes_get_data (ask.reply, NULL), g_bytes_get_size (ask.reply), "answer", 6);
  g_clear_object (&ask.result);
  g_bytes_unref (ask.reply);
}

/* Asks the peer, blocking, from the context's own thread. */
static void
ask_sync_in_handler_cb (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GBytes           *message,
                        NestedAsk        *ask)
{
  g_autoptr(GBytes) request = g_bytes_new_static ("question", 8);

  ask->reply = np_pipe_connection_request_with_fds_sync (connection, request, NULL, NULL, NULL,
                                                         &ask->error);
  ask->result = (GAsyncResult *) g_object_new (G_TYPE_OBJECT, NULL);
}

/* The same, for a handler that asks blocking (request_with_fds_sync):
 * the answer that came in the same read is read from what is left of
 * it. */
static void
test_sync_wait_for_rest (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GSocket) peer = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GBytes) message = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "go", 2);
  NestedAsk ask = { 0 };
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_REQUEST_HEADER_SIZE];

  g_signal_connect (f->server, "message-received", G_CALLBACK (ask_sync_in_handler_cb), &ask);
  np_pipe_server_set_request_timeout (f->server, 5000);
  np_test_hello (hello, 3, 1024 * 1024);
  g_byte_array_append (bytes, hello, sizeof hello);
  g_byte_array_append (bytes, g_bytes_get_data (message, NULL), g_bytes_get_size (message));
  np_request_header_encode (header, NP_FRAME_REPLY, 1, 6);
  g_byte_array_append (bytes, header, sizeof header);
  g_byte_array_append (bytes, (const guint8 *) "answer", 6);
  np_test_raw_write (peer, bytes->data, bytes->len);

  WAIT_UNTIL (ask.result != NULL);
  g_assert_no_error (ask.error);
  g_assert_cmpmem (g_bytes_get_data (ask.reply, NULL), g_bytes_get_size (ask.reply), "answer", 6);
  g_clear_object (&ask.result);
  g_bytes_unref (ask.reply);
}

/* A request whose id already waits for an answer could not be told from
 * it by its answers: the connection ends with PROTOCOL, and the second
 * is never delivered. An id answered may come again. */
static void
test_duplicate_id (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GSocket) peer = raw_peer_new (f);

  raw_send_request (peer, 7, "first");
  assert_raw_reply (peer, 7, "first");
  raw_send_request (peer, 7, "again");
  assert_raw_reply (peer, 7, "again");

  f->answer = FALSE;
  f->keep = TRUE;
  f->max_holding = 1;
  raw_send_request (peer, 5, "held");
  raw_send_request (peer, 5, "same id");
  assert_raw_goodbye (peer, NP_PIPE_ERROR_PROTOCOL);

  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (f->disconnected, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpuint (f->n_requests, ==, 3);
  g_assert_cmpuint (f->kept->len, ==, 1);
  g_assert_true (np_pipe_client_get_connected (f->client));
}

/* No request has id 0 (the counter skips it): one that does is a
 * protocol error, never delivered. */
static void
test_id_zero (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GSocket) peer = raw_peer_new (f);

  raw_send_request (peer, 0, "zero");
  assert_raw_goodbye (peer, NP_PIPE_ERROR_PROTOCOL);

  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (f->disconnected, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpuint (f->n_requests, ==, 0);
  g_assert_true (np_pipe_client_get_connected (f->client));
}

/* Error replies to requests nobody waits for cost the process nothing:
 * 2,000 of them in made-up domains leave the budget of domains learnt
 * from peers whole, and a real answer in a domain this process never
 * saw, on another connection, still arrives in that domain. */
static void
test_error_domains_unwaited (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GSocket) flooder = raw_peer_new (f);
  g_autoptr(GSocket) answerer = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) message = text ("asked");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  NpPipeConnection *connection;
  guint8 ping[NP_FRAME_HEADER_SIZE + 8] = { 0 };
  guint8 type;

  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *domain = g_strdup_printf ("np-test-unwaited-%u-quark", i);

      raw_send_error (flooder, 1000 + i, domain, 1, "nobody asked");
    }

  /* Once the pong comes, the server has read every error before it. */
  np_frame_header_encode (ping, NP_FRAME_PING, 8);
  np_test_raw_write (flooder, ping, sizeof ping);
  payload = raw_read_frame (flooder, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_PONG);
  g_assert_cmpuint (f->n_disconnected, ==, 0);

  answerer = raw_peer_new (f);
  connection = g_ptr_array_index (f->connections, f->connections->len - 1);
  np_pipe_connection_request_async (connection, message, NULL, np_test_async_done_cb, &result);
  g_clear_pointer (&payload, g_bytes_unref);
  payload = raw_read_frame (answerer, &type);
  g_assert_cmpuint (type, ==, NP_FRAME_REQUEST);
  raw_send_error (answerer, np_request_id_decode (g_bytes_get_data (payload, NULL)),
                  "np-test-late-domain-quark", 7, "answered");

  WAIT_UNTIL (result != NULL);
  g_assert_null (np_pipe_connection_request_finish (connection, result, &error));
  g_assert_nonnull (error);
  g_assert_cmpstr (g_quark_to_string (error->domain), ==, "np-test-late-domain-quark");
  g_assert_cmpint (error->code, ==, 7);
  g_assert_cmpstr (error->message, ==, "answered");
}

static void
assert_round_trip (GVariant *value)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (value);
  g_autoptr(GBytes) message = np_variant_to_message (sunk);
  g_autoptr(GVariant) back = NULL;
  g_autoptr(GError) error = NULL;

  back = np_variant_from_message (message, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (back, sunk));
  g_assert_cmpstr (g_variant_get_type_string (back), ==, g_variant_get_type_string (sunk));
}

static void
test_variant_round_trips (void)
{
  g_autoptr(GVariantBuilder) dict = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (dict, "{sv}", "name", g_variant_new_string ("Np"));
  g_variant_builder_add (dict, "{sv}", "size", g_variant_new_uint64 (G_MAXUINT64));
  g_variant_builder_add (dict, "{sv}", "list", g_variant_new_strv ((const char *[]) { "a", "b", NULL }, -1));

  assert_round_trip (g_variant_builder_end (dict));
  assert_round_trip (g_variant_new ("(ids)", -3, 2.5, "text"));
  assert_round_trip (g_variant_new ("au", NULL));
  assert_round_trip (g_variant_new_uint32 (7));
  assert_round_trip (g_variant_new ("(a{sv}ay)", NULL, NULL));
  assert_round_trip (g_variant_new ("mv", g_variant_new_boolean (TRUE)));
  assert_round_trip (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "\1\2\3", 3, 1));
}

static void
test_variant_malformed (void)
{
  static const struct {
    const char *data;
    gsize       len;
  } cases[] = {
    { "", 0 },                                          /* empty */
    { "u", 1 },                                         /* no NUL */
    { "q!\0\0\0\0\0\0", 8 },                            /* not a type */
    { "r\0\0\0\0\0\0\0", 8 },                           /* indefinite */
    { "u\0\0\0\0\0\0\0\1\0", 10 },                      /* truncated u */
    { "u\0\0\0\0\0\0\0\1\0\0\0\0", 13 },                /* padded u */
    { "s\0\0\0\0\0\0\0abc", 11 },                       /* string without NUL */
    { "(uu)\0\0\0\0\1\0\0\0", 12 },                     /* truncated tuple */
    { "as\0\0\0\0\0\0a\0b\0\x09", 13 },                 /* bad offset */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) message = g_bytes_new_static (cases[i].data, cases[i].len);
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;

      value = np_variant_from_message (message, &error);
      if (value != NULL)
        g_error ("case %u read as %s", i, g_variant_print (value, TRUE));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    }
}

static gboolean
variant_request_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    NpPipeRequest    *request,
                    gpointer          user_data)
{
  g_autoptr(GVariant) value = np_variant_from_message (np_pipe_request_get_message (request), NULL);
  guint32 a, b;

  g_variant_get (value, "(uu)", &a, &b);
  np_pipe_request_reply_variant (request, g_variant_new ("(u)", a + b));
  return TRUE;
}

/* Typed messages over a real pipe: sent, and as a request and its
 * reply. */
static void
test_variant_messages (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GVariant) sum = NULL;
  g_autoptr(GVariant) received = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint32 total = 0;

  f->answer = FALSE;
  g_assert_true (np_pipe_client_send_variant (f->client, g_variant_new ("(sb)", "hi", TRUE), &error));
  WAIT_UNTIL (f->messages->len == 1);
  received = np_variant_from_message (g_ptr_array_index (f->messages, 0), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (received), ==, "(sb)");

  g_signal_connect (f->server, "request-received", G_CALLBACK (variant_request_cb), NULL);
  request = np_variant_to_message (g_variant_new ("(uu)", 40, 2));
  reply = client_request (f, request, &error);
  g_assert_no_error (error);
  sum = np_variant_from_message (reply, &error);
  g_assert_no_error (error);
  g_variant_get (sum, "(u)", &total);
  g_assert_cmpuint (total, ==, 42);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  g_autoptr(GError) error = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-requests-XXXXXX");

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Requests/both-ways", test_both_ways);
  ADD ("/Np/Requests/data-twins", test_data_twins);
  ADD ("/Np/Requests/out-of-order-and-many", test_out_of_order_and_many);
  ADD ("/Np/Requests/reply-too-large", test_reply_too_large);
  ADD ("/Np/Requests/timeout", test_timeout);
  ADD ("/Np/Requests/cancel", test_cancel);
  ADD ("/Np/Requests/unanswered", test_unanswered);
  ADD ("/Np/Requests/errors-name-the-pipe", test_errors_name_the_pipe);
  ADD ("/Np/Requests/error-domains", test_error_domains);
  ADD ("/Np/Requests/answer-twice", test_answer_twice);
  ADD ("/Np/Requests/disconnect-fails-pending", test_disconnect_fails_pending);
  ADD ("/Np/Requests/order-with-messages", test_order_with_messages);
  ADD ("/Np/Requests/request-sync", test_request_sync);
  g_test_add_func ("/Np/Requests/peer-without-requests", test_peer_without_requests);
  ADD ("/Np/Requests/pending/count", test_pending_count);
  ADD ("/Np/Requests/pending/bytes", test_pending_bytes);
  ADD ("/Np/Requests/pending/client", test_pending_client);
  ADD ("/Np/Requests/pending/with-fds", test_pending_with_fds);
  ADD ("/Np/Requests/nested-wait-for-rest", test_nested_wait_for_rest);
  ADD ("/Np/Requests/sync-wait-for-rest", test_sync_wait_for_rest);
  ADD ("/Np/Requests/duplicate-id", test_duplicate_id);
  ADD ("/Np/Requests/id-zero", test_id_zero);
  ADD ("/Np/Requests/error-domains/unwaited", test_error_domains_unwaited);
  g_test_add_func ("/Np/Variant/round-trips", test_variant_round_trips);
  g_test_add_func ("/Np/Variant/malformed", test_variant_malformed);
  ADD ("/Np/Variant/messages", test_variant_messages);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
