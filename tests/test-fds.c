/* test-fds.c: file descriptors that travel with messages
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "np-test-util.h"
/* After <np/np.h>: the wire format, for the peers written by hand. */
#include "np-frame-private.h"

typedef struct
{
  NpPipeServer *server;
  GPtrArray    *connections;
  GPtrArray    *messages;     /* of GBytes, from message-received */
  GPtrArray    *fd_messages;  /* of GBytes, from message-with-fds-received */
  GPtrArray    *fd_lists;     /* of GUnixFDList, kept */
  GError       *disconnect_error;
  guint         n_disconnected;
} Fixture;

static void
on_connected (NpPipeServer     *server,
              NpPipeConnection *connection,
              Fixture          *f)
{
  g_ptr_array_add (f->connections, g_object_ref (connection));
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
on_message_with_fds (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     GBytes           *message,
                     GUnixFDList      *fds,
                     Fixture          *f)
{
  g_ptr_array_add (f->fd_messages, g_bytes_ref (message));
  g_ptr_array_add (f->fd_lists, g_object_ref (fds));
}

static void
on_disconnected (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 const GError     *error,
                 Fixture          *f)
{
  g_clear_error (&f->disconnect_error);
  if (error != NULL)
    f->disconnect_error = g_error_copy (error);
  f->n_disconnected++;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  f->fd_messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  f->fd_lists = g_ptr_array_new_with_free_func (g_object_unref);
  f->server = np_pipe_server_new (NULL);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_connected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_disconnected), f);
  /* Tests that want descriptors connect message-with-fds-received. */
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->server);
  g_ptr_array_unref (f->connections);
  g_ptr_array_unref (f->messages);
  g_ptr_array_unref (f->fd_messages);
  g_ptr_array_unref (f->fd_lists);
  g_clear_error (&f->disconnect_error);
}

static void
want_fds (Fixture *f)
{
  g_signal_connect (f->server, "message-with-fds-received", G_CALLBACK (on_message_with_fds), f);
}

static int
memfd_with (const char *text)
{
  int fd = memfd_create ("np-test-fds", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, text, strlen (text)), ==, (gssize) strlen (text));

  return fd;
}

/* What @fd holds, read from its start. */
static char *
read_all (int fd)
{
  GString *data = g_string_new (NULL);
  char buf[256];
  gssize n;

  lseek (fd, 0, SEEK_SET);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (data, buf, n);

  return g_string_free (data, FALSE);
}

static GBytes *
text (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

/* A memfd sent by another process arrives with its message, and reads
 * what that process wrote into it; it is close-on-exec. */
static void
test_memfd_client_to_server (Fixture       *f,
                             gconstpointer  data)
{
  const char *args[] = { "fd-send", np_pipe_server_get_name (f->server),
                         "written by the client process", NULL };
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  GUnixFDList *fds;
  int fd;

  want_fds (f);
  peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_NONE, args);
  WAIT_UNTIL (f->fd_lists->len == 1);

  g_assert_cmpmem (g_bytes_get_data (f->fd_messages->pdata[0], NULL),
                   g_bytes_get_size (f->fd_messages->pdata[0]), "memfd", 5);
  fds = f->fd_lists->pdata[0];
  g_assert_cmpint (g_unix_fd_list_get_length (fds), ==, 1);
  fd = g_unix_fd_list_peek_fds (fds, NULL)[0];
  g_assert_cmpint (fcntl (fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  contents = read_all (fd);
  g_assert_cmpstr (contents, ==, "written by the client process");
  g_assert_cmpuint (f->messages->len, ==, 0);

  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_no_error (f->disconnect_error);
}

/* The read end of a pipe sent to a client in another process: it reads
 * what the server writes into the other end, to its end. */
static void
test_pipe_server_to_client (Fixture       *f,
                            gconstpointer  data)
{
  const char *args[] = { "fd-receive", np_pipe_server_get_name (f->server), NULL };
  const char *words = "through a pipe from the server";
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) message = text ("pipe");
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  int ends[2];

  peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  WAIT_UNTIL (f->connections->len == 1);

  g_assert_cmpint (pipe2 (ends, O_CLOEXEC), ==, 0);
  g_unix_fd_list_append (fds, ends[0], &error);
  g_assert_no_error (error);
  close (ends[0]);
  g_assert_true (np_pipe_connection_send_with_fds (f->connections->pdata[0], message, fds, &error));
  g_assert_no_error (error);
  g_clear_object (&fds);

  g_assert_cmpint (write (ends[1], words, strlen (words)), ==, (gssize) strlen (words));
  close (ends[1]);

  line = np_test_read_line (peer);
  g_assert_cmpstr (line, ==, "pipe through a pipe from the server");
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
}

/* With no handler for descriptors, they are closed and the message goes
 * to message-received: 1,000 of them leave no descriptor open. */
static void
test_unhandled_closed (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) message = text ("unasked");
  g_autoptr(GError) error = NULL;
  guint before;
  int fd;

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == 1 && np_pipe_client_get_peer_max_message_size (client) > 0);

  before = np_test_count_open_fds ();
  fd = memfd_with ("x");
  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);

  for (guint i = 0; i < 1000; i++)
    {
      g_assert_true (np_pipe_client_send_with_fds (client, message, fds, &error));
      g_assert_no_error (error);
      /* Spread over reads of their own, and not. */
      if (i % 7 == 0)
        g_main_context_iteration (NULL, FALSE);
    }
  g_clear_object (&fds);

  WAIT_UNTIL (f->messages->len == 1000);
  for (guint i = 0; i < f->messages->len; i++)
    g_assert_true (g_bytes_equal (f->messages->pdata[i], message));
  g_assert_cmpuint (np_test_count_open_fds (), ==, before);
  g_assert_true (np_pipe_client_get_connected (client));
}

/* Messages with and without descriptors keep their order, and each
 * list is the one sent with its message. */
static void
test_order_and_matching (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_autoptr(GError) error = NULL;
  guint n_fds_messages = 0;

  want_fds (f);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));

  for (guint i = 0; i < 60; i++)
    {
      g_autofree char *label = g_strdup_printf ("%u", i);
      g_autoptr(GBytes) message = text (label);

      if (i % 3 == 0)
        {
          g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();

          for (guint j = 0; j <= i % 4; j++)
            {
              int fd = memfd_with (label);

              g_unix_fd_list_append (fds, fd, &error);
              g_assert_no_error (error);
              close (fd);
            }
          g_assert_true (np_pipe_client_send_with_fds (client, message, fds, &error));
          n_fds_messages++;
        }
      else
        g_assert_true (np_pipe_client_send (client, message, &error));
      g_assert_no_error (error);
    }

  WAIT_UNTIL (f->fd_messages->len == n_fds_messages && f->messages->len == 60 - n_fds_messages);
  for (guint k = 0; k < f->fd_lists->len; k++)
    {
      g_autofree char *label = g_strdup_printf ("%u", k * 3);
      GUnixFDList *fds = f->fd_lists->pdata[k];

      g_assert_cmpmem (g_bytes_get_data (f->fd_messages->pdata[k], NULL),
                       g_bytes_get_size (f->fd_messages->pdata[k]), label, strlen (label));
      g_assert_cmpint (g_unix_fd_list_get_length (fds), ==, (k * 3) % 4 + 1);
      for (gint j = 0; j < g_unix_fd_list_get_length (fds); j++)
        {
          g_autofree char *contents = read_all (g_unix_fd_list_peek_fds (fds, NULL)[j]);

          g_assert_cmpstr (contents, ==, label);
        }
    }
}

/* A hello of version 3 from a raw peer, then a wait for the server's. */
static GSocket *
raw_peer (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (f->server));

  np_test_raw_write_hello (socket, 3, 4096);
  WAIT_UNTIL (f->connections->len == 1);

  return socket;
}

typedef enum
{
  BAD_TOO_MANY,     /* the header announces more than allowed */
  BAD_TRUNCATED,    /* more descriptors than the control buffer holds */
  BAD_MISMATCH,     /* the header announces another number than came */
  BAD_STRAY,        /* descriptors with a plain message */
  BAD_CUT,          /* the connection ends in the middle of the body */
} Bad;

/* A raw peer that breaks the rules of descriptors: its connection
 * closes with PROTOCOL, and every descriptor it sent is closed. */
static void
test_bad_peer (Fixture       *f,
               gconstpointer  data)
{
  Bad bad = GPOINTER_TO_INT (data);
  g_autoptr(GSocket) socket = NULL;
  guint8 frame[NP_FRAME_HEADER_SIZE + 5];
  const char *expected = NULL;
  int fds[6];
  guint n_fds = 2;
  gsize len = sizeof frame;
  guint before;

  /* A MESSAGE_FDS frame whose count each case sets. */
  np_frame_header_encode (frame, NP_FRAME_MESSAGE_FDS, 5);
  memcpy (frame + NP_FRAME_HEADER_SIZE, "hello", 5);
  want_fds (f);
  np_pipe_server_set_max_fds_per_message (f->server, 4);
  before = np_test_count_open_fds ();
  socket = raw_peer (f);

  switch (bad)
    {
    case BAD_TOO_MANY:
      frame[5] = 5;
      expected = "more than the 4 allowed";
      break;
    case BAD_TRUNCATED:
      frame[5] = n_fds = 6;
      expected = "cut short";
      break;
    case BAD_MISMATCH:
      frame[5] = 3;
      expected = "but 2 came";
      break;
    case BAD_STRAY:
      frame[4] = 0;
      expected = "start no message with descriptors";
      break;
    case BAD_CUT:
      frame[5] = 2;
      len = sizeof frame - 2;
      expected = "in the middle of a message";
      break;
    default:
      g_assert_not_reached ();
    }

  for (guint i = 0; i < n_fds; i++)
    fds[i] = memfd_with ("held");
  np_test_raw_send_with_fds (socket, frame, len, fds, n_fds);
  for (guint i = 0; i < n_fds; i++)
    close (fds[i]);
  if (bad == BAD_STRAY)
    {
      /* Noticed at the next frame. */
      np_test_raw_write (socket, frame, sizeof frame);
    }
  if (bad == BAD_CUT)
    {
      /* Received and held, then the end of the stream. */
      WAIT_UNTIL (np_test_count_open_fds () >= before + 2 + 2);
      g_socket_shutdown (socket, FALSE, TRUE, NULL);
    }

  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_error (f->disconnect_error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (f->disconnect_error->message, expected));
  g_assert_cmpuint (f->fd_messages->len, ==, 0);
  g_assert_cmpuint (f->messages->len, ==, bad == BAD_STRAY ? 1 : 0);

  g_socket_close (socket, NULL);
  g_ptr_array_set_size (f->connections, 0);
  WAIT_UNTIL (np_test_count_open_fds () == before);
}

/* The peer's hello, a plain message and a message with descriptors, in
 * three writes made before the server reads anything: its first read
 * returns the three together (a read stops after the write that carried
 * descriptors, not before), and the descriptors go to the frame that
 * starts in it, after the hello and the earlier frame. */
static void
test_after_earlier_bytes (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GSocket) socket = np_test_raw_connect (np_pipe_server_get_path (f->server));
  g_autoptr(GBytes) plain = np_test_frame (NP_FRAME_MESSAGE, (const guint8 *) "first", 5);
  g_autoptr(GBytes) frame = np_test_frame_fds (1, (const guint8 *) "with", 4);
  g_autofree char *contents = NULL;
  int fd = memfd_with ("carried");

  want_fds (f);
  /* Nothing runs the server's context until all three are in the socket. */
  np_test_raw_write_hello (socket, 3, 4096);
  np_test_raw_write_bytes (socket, plain);
  np_test_raw_send_with_fds (socket, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame), &fd, 1);
  close (fd);

  WAIT_UNTIL (f->fd_messages->len == 1 || f->n_disconnected > 0);
  g_assert_no_error (f->disconnect_error);
  g_assert_cmpuint (f->n_disconnected, ==, 0);
  g_assert_cmpuint (f->messages->len, ==, 1);
  g_assert_cmpmem (g_bytes_get_data (f->messages->pdata[0], NULL),
                   g_bytes_get_size (f->messages->pdata[0]), "first", 5);
  g_assert_cmpmem (g_bytes_get_data (f->fd_messages->pdata[0], NULL),
                   g_bytes_get_size (f->fd_messages->pdata[0]), "with", 4);
  g_assert_cmpint (g_unix_fd_list_get_length (f->fd_lists->pdata[0]), ==, 1);
  contents = read_all (g_unix_fd_list_peek_fds (f->fd_lists->pdata[0], NULL)[0]);
  g_assert_cmpstr (contents, ==, "carried");
}

/* A peer of version 2 takes no descriptors: sending to it fails at once
 * with NOT_SUPPORTED, and the connection goes on. */
static void
test_peer_without_fds (void)
{
  g_autofree char *name = g_strdup_printf ("v2-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) message = text ("with a descriptor");
  g_autoptr(GError) error = NULL;
  int fd = memfd_with ("x");

  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (raw->accepted->len == 1);
  np_test_raw_write_hello (g_ptr_array_index (raw->accepted, 0), 2, 4096);
  WAIT_UNTIL (np_pipe_client_get_peer_max_message_size (client) > 0);

  g_assert_false (np_pipe_client_send_with_fds (client, message, fds, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_true (np_pipe_client_send (client, message, &error));
  g_assert_true (np_pipe_client_get_connected (client));

  np_pipe_client_close (client, NULL, NULL);
  np_test_raw_server_free (raw);
}

static void
on_client_disconnected (NpPipeClient  *client,
                        const GError  *error,
                        GError       **out)
{
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR, 0, "clean");
}

/* A message with descriptors sent behind a request that waits for a
 * version 2 peer's hello waits too, then closes the connection with
 * NOT_SUPPORTED rather than be lost; the reference to its descriptors
 * goes with it. */
static void
test_early_to_peer_without_fds (void)
{
  g_autofree char *name = g_strdup_printf ("v2-early-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  GUnixFDList *fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) message = text ("early");
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) ended = NULL;
  int fd = memfd_with ("x");

  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);
  g_object_add_weak_pointer (G_OBJECT (fds), (gpointer *) &fds);

  g_signal_connect (client, "disconnected", G_CALLBACK (on_client_disconnected), &ended);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  np_pipe_client_request_async (client, message, NULL, NULL, NULL);
  g_assert_true (np_pipe_client_send_with_fds (client, message, fds, &error));
  g_assert_no_error (error);
  g_object_unref (fds);
  g_assert_nonnull (fds);   /* queued: the client holds it */

  WAIT_UNTIL (raw->accepted->len == 1);
  np_test_raw_write_hello (g_ptr_array_index (raw->accepted, 0), 2, 4096);
  WAIT_UNTIL (ended != NULL);
  g_assert_error (ended, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_assert_null (fds);

  np_test_raw_server_free (raw);
}

/* Descriptors queued to a peer that never reads them are let go of when
 * the connection closes. */
static void
test_queued_dropped_on_close (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  GUnixFDList *fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) big = NULL;
  g_autoptr(GError) error = NULL;
  guint8 *data_ = g_malloc0 (4 << 20);
  int fd = memfd_with ("x");

  big = g_bytes_new_take (data_, 4 << 20);
  g_unix_fd_list_append (fds, fd, &error);
  close (fd);
  g_object_add_weak_pointer (G_OBJECT (fds), (gpointer *) &fds);

  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  WAIT_UNTIL (f->connections->len == 1 && np_pipe_client_get_peer_max_message_size (client) > 0);

  /* The server sends to a client that does not run its loop: behind
   * 4 MiB, the descriptors stay queued. */
  g_assert_true (np_pipe_connection_send (f->connections->pdata[0], big, &error));
  g_assert_true (np_pipe_connection_send_with_fds (f->connections->pdata[0], big, fds, &error));
  g_assert_no_error (error);
  g_object_unref (fds);
  g_assert_nonnull (fds);

  g_clear_object (&client);
  WAIT_UNTIL (f->n_disconnected == 1);
  g_assert_null (fds);
}

/* Requests and replies with descriptors */

static GUnixFDList *
fd_list_with (const char *contents)
{
  g_autoptr(GError) error = NULL;
  GUnixFDList *fds = g_unix_fd_list_new ();
  int fd = memfd_with (contents);

  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);

  return fds;
}

/* What the one descriptor of @fds holds. */
static char *
read_fd_list (GUnixFDList *fds)
{
  g_assert_nonnull (fds);
  g_assert_cmpint (g_unix_fd_list_get_length (fds), ==, 1);

  return read_all (g_unix_fd_list_peek_fds (fds, NULL)[0]);
}

/* Reads the request's memfd and answers with a memfd of its own, which
 * says what the request's held. */
static gboolean
answer_with_memfd (NpPipeRequest *request)
{
  g_autofree char *asked = read_fd_list (np_pipe_request_get_fd_list (request));
  g_autofree char *answer = g_strdup_printf ("answer to “%s”", asked);
  g_autoptr(GUnixFDList) fds = fd_list_with (answer);

  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request), fds);
  return TRUE;
}

static gboolean
on_server_request_memfd (NpPipeServer     *server,
                         NpPipeConnection *connection,
                         NpPipeRequest    *request,
                         gpointer          user_data)
{
  return answer_with_memfd (request);
}

static gboolean
on_client_request_memfd (NpPipeClient  *client,
                         NpPipeRequest *request,
                         gpointer       user_data)
{
  return answer_with_memfd (request);
}

/* A request carrying a memfd is answered with a reply carrying another,
 * each readable at the other end: from a client to the server, from the
 * server to a client, and, blocking, to a server in another process
 * that sends the request's memfd back. */
static void
test_request_reply_memfd (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *name = g_strdup_printf ("fds-sync-%u", g_random_int ());
  const char *args[] = { "serve", name, NULL };
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(NpPipeClient) remote = NULL;
  g_autoptr(GSubprocess) peer = NULL;
  g_autoptr(GBytes) message = text ("open something");
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  g_signal_connect (f->server, "request-received", G_CALLBACK (on_server_request_memfd), NULL);
  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_signal_connect (client, "request-received", G_CALLBACK (on_client_request_memfd), NULL);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == 1);

  {
    g_autoptr(GUnixFDList) fds = fd_list_with ("client's memfd");
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;
    g_autofree char *contents = NULL;

    np_pipe_client_request_with_fds_async (client, message, fds, NULL, np_test_async_done_cb, &result);
    WAIT_UNTIL (result != NULL);
    reply = np_pipe_client_request_with_fds_finish (client, result, &reply_fds, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    contents = read_fd_list (reply_fds);
    g_assert_cmpstr (contents, ==, "answer to “client's memfd”");
  }

  {
    g_autoptr(GUnixFDList) fds = fd_list_with ("server's memfd");
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;
    g_autofree char *contents = NULL;

    np_pipe_connection_request_with_fds_async (f->connections->pdata[0], message, fds, NULL,
                                               np_test_async_done_cb, &result);
    WAIT_UNTIL (result != NULL);
    reply = np_pipe_connection_request_with_fds_finish (f->connections->pdata[0], result,
                                                        &reply_fds, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    contents = read_fd_list (reply_fds);
    g_assert_cmpstr (contents, ==, "answer to “server's memfd”");
  }

  /* No main loop runs: the call reads the socket itself. */
  peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  line = np_test_read_line (peer);
  g_assert_cmpstr (line, ==, "ready");
  remote = np_pipe_client_new (name);
  g_assert_true (np_pipe_client_connect_sync (remote, NULL, &error));
  g_assert_no_error (error);
  {
    g_autoptr(GUnixFDList) fds = fd_list_with ("there and back");
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;
    g_autofree char *contents = NULL;

    reply = np_pipe_client_request_with_fds_sync (remote, message, fds, &reply_fds, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    contents = read_fd_list (reply_fds);
    g_assert_cmpstr (contents, ==, "there and back");
  }
  {
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;

    /* A plain request gets a plain reply: no list. */
    reply = np_pipe_client_request_with_fds_sync (remote, message, NULL, &reply_fds, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    g_assert_null (reply_fds);
  }

  np_pipe_client_close (remote, NULL, NULL);
  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  g_assert_true (g_subprocess_wait_check (peer, NULL, &error));
  g_assert_no_error (error);
}

/* A peer of protocol version 3 takes descriptors with messages, not with
 * requests: a request with descriptors fails with NOT_SUPPORTED, made
 * before the peer's hello or after, and is not sent; a plain one is, and
 * the connection goes on. */
static void
test_request_to_version_3 (void)
{
  g_autofree char *name = g_strdup_printf ("v3-%u", g_random_int ());
  NpTestRawServer *raw = np_test_raw_server_new (name, 8, TRUE);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GUnixFDList) fds = fd_list_with ("x");
  g_autoptr(GBytes) message = text ("with a descriptor");
  g_autoptr(GBytes) plain = text ("without");
  g_autoptr(GAsyncResult) early = NULL;
  g_autoptr(GAsyncResult) late = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GUnixFDList) reply_fds = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  gsize frame_len = NP_REQUEST_HEADER_SIZE + g_bytes_get_size (plain);
  GSocket *peer;
  guint8 buf[64];

  np_pipe_client_set_request_timeout (client, 0);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  np_pipe_client_request_with_fds_async (client, message, fds, NULL, np_test_async_done_cb, &early);
  WAIT_UNTIL (raw->accepted->len == 1);
  peer = g_ptr_array_index (raw->accepted, 0);

  np_test_raw_write_hello (peer, 3, 1024);
  WAIT_UNTIL (early != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, early, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  np_pipe_client_request_with_fds_async (client, message, fds, NULL, np_test_async_done_cb, &late);
  WAIT_UNTIL (late != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, late, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_null (np_pipe_client_request_with_fds_sync (client, message, fds, NULL, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  /* The peer saw our hello, then the plain request alone, with no
   * descriptors; its plain reply comes back with no list. */
  np_pipe_client_request_with_fds_async (client, plain, NULL, NULL, np_test_async_done_cb, &result);
  g_assert_true (np_pipe_client_flush_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_test_raw_read_exactly (peer, buf, 12);
  g_assert_cmpmem (buf, 4, "NPIP", 4);
  np_test_raw_read_exactly (peer, buf, frame_len);
  g_assert_cmpuint (buf[4], ==, NP_FRAME_REQUEST);
  g_assert_cmpuint (buf[5], ==, 0);
  g_assert_cmpmem (buf + NP_REQUEST_HEADER_SIZE, frame_len - NP_REQUEST_HEADER_SIZE,
                   g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
  buf[4] = NP_FRAME_REPLY;
  np_test_raw_write (peer, buf, frame_len);
  WAIT_UNTIL (result != NULL);
  reply = np_pipe_client_request_with_fds_finish (client, result, &reply_fds, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, plain));
  g_assert_null (reply_fds);
  g_assert_true (np_pipe_client_get_connected (client));

  np_pipe_client_close (client, NULL, NULL);
  np_test_raw_server_free (raw);
}

typedef struct
{
  GUnixFDList *fds;
  gboolean     replied;
} Replier;

/* Replies with the replier's descriptors, and lets go of them. */
static gboolean
on_request_reply_fds (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      NpPipeRequest    *request,
                      Replier          *replier)
{
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request), replier->fds);
  g_object_unref (replier->fds);
  replier->replied = TRUE;
  return TRUE;
}

/* A reply with descriptors to a peer of version 3, which asked with a
 * plain request, is not sent: the peer gets the error NOT_SUPPORTED in
 * its stead, the descriptors are let go of, and the connection goes
 * on. */
static void
test_reply_to_version_3 (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *path = g_build_filename (g_get_user_runtime_dir (), "np",
                                            np_pipe_server_get_name (f->server), NULL);
  g_autoptr(GSocket) peer = np_test_raw_connect (path);
  g_autoptr(GBytes) message = text ("give me a file");
  Replier replier = { fd_list_with ("never sent"), FALSE };
  gsize len = g_bytes_get_size (message);
  g_autofree guint8 *payload = NULL;
  g_autoptr(GError) reply_error = NULL;
  g_autoptr(GError) error = NULL;
  guint8 header[NP_FRAME_HEADER_SIZE];
  NpFrameHeader decoded;
  guint8 request[64];
  guint8 hello[NP_HELLO_SIZE];
  guint32 id = 0;

  g_object_add_weak_pointer (G_OBJECT (replier.fds), (gpointer *) &replier.fds);
  g_signal_connect (f->server, "request-received", G_CALLBACK (on_request_reply_fds), &replier);

  np_test_raw_write_hello (peer, 3, 1024);
  np_request_header_encode (request, NP_FRAME_REQUEST, 77, len);
  memcpy (request + NP_REQUEST_HEADER_SIZE, g_bytes_get_data (message, NULL), len);
  np_test_raw_write (peer, request, NP_REQUEST_HEADER_SIZE + len);

  /* Whatever the answer, all of it written before the socket is read:
   * nothing would wake a loop that waits for the write. */
  WAIT_UNTIL (replier.replied);
  while (np_pipe_connection_get_queued_bytes (f->connections->pdata[0]) > 0)
    g_main_context_iteration (NULL, FALSE);
  np_test_raw_read_exactly (peer, hello, sizeof hello);
  np_test_raw_read_exactly (peer, header, sizeof header);
  np_test_header_decode (header, &decoded);
  g_assert_cmpuint (decoded.type, ==, NP_FRAME_ERROR);
  g_assert_cmpuint (decoded.n_fds, ==, 0);
  payload = g_malloc (decoded.length);
  np_test_raw_read_exactly (peer, payload, decoded.length);
  g_assert_true (np_error_reply_decode (payload, decoded.length, &id, &reply_error,
                                        &error));
  g_assert_no_error (error);
  g_assert_cmpuint (id, ==, 77);
  g_assert_error (reply_error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);

  g_assert_null (replier.fds);
  g_assert_cmpuint (f->connections->len, ==, 1);
  g_assert_true (np_pipe_connection_get_connected (f->connections->pdata[0]));
}

typedef struct
{
  guint n_done;
  guint n_failed;
} Tally;

/* Finishes a request without taking the reply's descriptors. */
static void
tally_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Tally *tally = user_data;
  g_autoptr(GBytes) reply = NULL;

  reply = np_pipe_client_request_with_fds_finish (NP_PIPE_CLIENT (object), result, NULL, NULL);
  if (reply == NULL)
    tally->n_failed++;
  tally->n_done++;
}

static gboolean
on_request_drop (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  /* Taken, and dropped unanswered. */
  return TRUE;
}

/* The descriptors of requests nobody handles, or that a handler drops
 * unanswered, are closed, and those of replies the requester does not
 * take too: 200 requests of each kind leave no descriptor open. */
static void
test_request_fds_closed (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GBytes) message = text ("who takes these?");
  g_autoptr(GError) error = NULL;
  Tally tally = { 0, 0 };
  gulong handler = 0;
  guint before;

  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == 1 && np_pipe_client_get_peer_max_message_size (client) > 0);
  before = np_test_count_open_fds ();

  for (guint round = 0; round < 3; round++)
    {
      /* Unhandled, then dropped, then answered with a memfd. */
      if (round == 1)
        handler = g_signal_connect (f->server, "request-received",
                                    G_CALLBACK (on_request_drop), NULL);
      else if (round == 2)
        {
          g_signal_handler_disconnect (f->server, handler);
          g_signal_connect (f->server, "request-received",
                            G_CALLBACK (on_server_request_memfd), NULL);
        }

      for (guint i = 0; i < 200; i++)
        {
          g_autoptr(GUnixFDList) fds = fd_list_with ("x");

          np_pipe_client_request_with_fds_async (client, message, fds, NULL, tally_cb, &tally);
          /* Spread over reads of their own, and not. */
          if (i % 7 == 0)
            g_main_context_iteration (NULL, FALSE);
        }

      WAIT_UNTIL (tally.n_done == 200 * (round + 1));
      g_assert_cmpuint (tally.n_failed, ==, 200 * MIN (round + 1, 2));
      WAIT_UNTIL (np_test_count_open_fds () == before);
    }

  g_assert_true (np_pipe_client_get_connected (client));
}

static guint n_echoed;

static gboolean
on_request_echo (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 NpPipeRequest    *request,
                 gpointer          user_data)
{
  n_echoed++;
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request),
                                  np_pipe_request_get_fd_list (request));
  return TRUE;
}

/* A request with descriptors cancelled before it was written is never
 * sent, and takes its descriptors along: the request queued after it
 * goes without them (which the server, seeing descriptors that no frame
 * took, would end the connection for at the next frame), and the
 * connection goes on. */
static void
test_request_fds_cancelled (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GUnixFDList) fds = fd_list_with ("cancelled");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GBytes) message = text ("never sent");
  g_autoptr(GBytes) after = text ("sent");
  g_autoptr(GAsyncResult) cancelled = NULL;
  g_autoptr(GAsyncResult) answered = NULL;
  g_autoptr(GUnixFDList) reply_fds = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  n_echoed = 0;
  g_signal_connect (f->server, "request-received", G_CALLBACK (on_request_echo), NULL);
  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->connections->len == 1 && np_pipe_client_get_peer_max_message_size (client) > 0);

  /* Both queued, in one chunk, before the loop writes anything. */
  np_pipe_client_request_with_fds_async (client, message, fds, cancellable, np_test_async_done_cb,
                                         &cancelled);
  np_pipe_client_request_with_fds_async (client, after, NULL, NULL, np_test_async_done_cb, &answered);
  g_cancellable_cancel (cancellable);

  WAIT_UNTIL (cancelled != NULL && answered != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, cancelled, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  reply = np_pipe_client_request_with_fds_finish (client, answered, &reply_fds, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, after));
  g_assert_null (reply_fds);
  g_assert_cmpuint (n_echoed, ==, 1);

  /* The next frame starts after what was received with the first. */
  g_clear_object (&answered);
  g_clear_pointer (&reply, g_bytes_unref);
  np_pipe_client_request_with_fds_async (client, after, NULL, NULL, np_test_async_done_cb, &answered);
  WAIT_UNTIL (answered != NULL);
  reply = np_pipe_client_request_with_fds_finish (client, answered, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, after));
  g_assert_cmpuint (n_echoed, ==, 2);
  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_cmpuint (f->n_disconnected, ==, 0);
}

static GUnixFDList *
fd_list_of (guint n)
{
  GUnixFDList *fds = g_unix_fd_list_new ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      int fd = memfd_with ("x");

      g_unix_fd_list_append (fds, fd, &error);
      g_assert_no_error (error);
      close (fd);
    }

  return fds;
}

/* Each side holds the other to the descriptors it announced it takes
 * per frame (max-fds-per-message, in its settings): a request with more
 * fails locally with MESSAGE_TOO_LARGE, made before the settings came or
 * after, and a reply with more reaches the requester as that error; the
 * connection goes on. */
static void
test_request_fds_limit (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GUnixFDList) three = fd_list_of (3);
  g_autoptr(GUnixFDList) two = fd_list_of (2);
  g_autoptr(GBytes) message = text ("limits");
  g_autoptr(GAsyncResult) early = NULL;
  g_autoptr(GAsyncResult) late = NULL;
  g_autoptr(GAsyncResult) fits = NULL;
  g_autoptr(GUnixFDList) reply_fds = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  n_echoed = 0;
  np_pipe_server_set_max_fds_per_message (f->server, 2);
  g_signal_connect (f->server, "request-received", G_CALLBACK (on_request_echo), NULL);
  client = np_pipe_client_new (np_pipe_server_get_name (f->server));
  np_pipe_client_set_max_fds_per_message (client, 1);
  /* This thread runs the server: the connect returns before its
   * settings, and the first request waits for them. */
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  np_pipe_client_request_with_fds_async (client, message, three, NULL, np_test_async_done_cb, &early);
  WAIT_UNTIL (early != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, early, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);

  np_pipe_client_request_with_fds_async (client, message, three, NULL, np_test_async_done_cb, &late);
  WAIT_UNTIL (late != NULL);
  g_assert_null (np_pipe_client_request_with_fds_finish (client, late, NULL, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);
  g_assert_cmpuint (n_echoed, ==, 0);

  /* Two reach the server, which sends them back: one more than the
   * client takes. */
  np_pipe_client_request_with_fds_async (client, message, two, NULL, np_test_async_done_cb, &fits);
  WAIT_UNTIL (fits != NULL);
  reply = np_pipe_client_request_with_fds_finish (client, fits, &reply_fds, &error);
  g_assert_null (reply);
  g_assert_null (reply_fds);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_MESSAGE_TOO_LARGE);
  g_clear_error (&error);
  g_assert_cmpuint (n_echoed, ==, 1);

  g_assert_true (np_pipe_client_get_connected (client));
  g_assert_cmpuint (f->n_disconnected, ==, 0);
}

typedef struct
{
  const char   *name;
  GMainContext *context;
  gint          ready;
  gint          stop;
} ClientThread;

/* Answers with the request's message and descriptors. */
static gboolean
on_client_request_echo (NpPipeClient  *client,
                        NpPipeRequest *request,
                        gpointer       user_data)
{
  np_pipe_request_reply_with_fds (request, np_pipe_request_get_message (request),
                                  np_pipe_request_get_fd_list (request));
  return TRUE;
}

/* A client that runs in a thread and a main context of its own. */
static gpointer
client_thread (gpointer data)
{
  ClientThread *t = data;
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (t->context);
  client = np_pipe_client_new (t->name);
  g_signal_connect (client, "request-received", G_CALLBACK (on_client_request_echo), NULL);
  g_assert_true (np_pipe_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_atomic_int_set (&t->ready, TRUE);
  /* The main thread may be waiting for that alone. */
  g_main_context_wakeup (NULL);
  while (!g_atomic_int_get (&t->stop))
    g_main_context_iteration (t->context, TRUE);
  np_pipe_client_close (client, NULL, NULL);
  g_clear_object (&client);
  g_main_context_pop_thread_default (t->context);

  return NULL;
}

/* The server asks, blocking, a client that runs in another thread: a
 * plain request gets a plain reply, and one with a memfd gets it back. */
static void
test_connection_request_sync (Fixture       *f,
                              gconstpointer  data)
{
  ClientThread t = { np_pipe_server_get_name (f->server), g_main_context_new (), FALSE, FALSE };
  g_autoptr(GBytes) message = text ("from the server, waiting");
  g_autoptr(GError) error = NULL;
  NpPipeConnection *connection;
  GThread *thread;

  thread = g_thread_new ("client", client_thread, &t);
  WAIT_UNTIL (f->connections->len == 1 && g_atomic_int_get (&t.ready));
  connection = f->connections->pdata[0];

  {
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;

    reply = np_pipe_connection_request_with_fds_sync (connection, message, NULL, &reply_fds,
                                                      NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    g_assert_null (reply_fds);
  }

  {
    g_autoptr(GUnixFDList) fds = fd_list_with ("the server's, and back");
    g_autoptr(GUnixFDList) reply_fds = NULL;
    g_autoptr(GBytes) reply = NULL;
    g_autofree char *contents = NULL;

    reply = np_pipe_connection_request_with_fds_sync (connection, message, fds, &reply_fds,
                                                      NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (reply, message));
    contents = read_fd_list (reply_fds);
    g_assert_cmpstr (contents, ==, "the server's, and back");
  }

  g_atomic_int_set (&t.stop, TRUE);
  g_main_context_wakeup (t.context);
  g_thread_join (thread);
  g_main_context_unref (t.context);
  WAIT_UNTIL (f->n_disconnected == 1);
}

/* Descriptors sent with the bytes of a message body belong to no
 * frame: a peer that keeps sending them must not make the server hold
 * them until the message ends, or the library's descriptor budget. */

/* Sends @len bytes of @data with @n_fds copies of @fd in one sendmsg(). */
static void
raw_send_with_fds (GSocket      *socket,
                   const guint8 *data,
                   gsize         len,
                   int           fd,
                   guint         n_fds)
{
  int fds[253];

  g_assert_cmpuint (n_fds, >, 0);
  g_assert_cmpuint (n_fds, <=, G_N_ELEMENTS (fds));
  for (guint i = 0; i < n_fds; i++)
    fds[i] = fd;
  np_test_raw_send_with_fds (socket, data, len, fds, n_fds);
}

/* A raw peer of protocol version 3, its hello sent. */
static GSocket *
raw_peer_v3 (NpPipeServer *server)
{
  GSocket *socket = np_test_raw_connect (np_pipe_server_get_path (server));

  np_test_raw_write_hello (socket, 3, 16 * 1024 * 1024);

  return socket;
}

typedef struct
{
  GPtrArray *connections;
  GPtrArray *fd_lists;
  GError    *error;
  guint      n_disconnected;
} FdServer;

static void
fd_server_connected_cb (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        FdServer         *f)
{
  g_ptr_array_add (f->connections, g_object_ref (connection));
}

static void
fd_server_message_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      GBytes           *message,
                      GUnixFDList      *fds,
                      FdServer         *f)
{
  g_ptr_array_add (f->fd_lists, g_object_ref (fds));
}

static void
fd_server_disconnected_cb (NpPipeServer     *server,
                           NpPipeConnection *connection,
                           const GError     *error,
                           FdServer         *f)
{
  g_clear_error (&f->error);
  if (error != NULL)
    f->error = g_error_copy (error);
  f->n_disconnected++;
  g_ptr_array_remove (f->connections, connection);
}

static NpPipeServer *
fd_server_new (FdServer *f,
               guint     max_fds)
{
  NpPipeServer *server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;

  f->connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->fd_lists = g_ptr_array_new_with_free_func (g_object_unref);
  np_pipe_server_set_max_fds_per_message (server, max_fds);
  g_signal_connect (server, "client-connected", G_CALLBACK (fd_server_connected_cb), f);
  g_signal_connect (server, "message-with-fds-received", G_CALLBACK (fd_server_message_cb), f);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (fd_server_disconnected_cb), f);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  return server;
}

static void
fd_server_clear (FdServer *f)
{
  g_clear_pointer (&f->connections, g_ptr_array_unref);
  g_clear_pointer (&f->fd_lists, g_ptr_array_unref);
  g_clear_error (&f->error);
}

static void
test_fds_in_body (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = fd_server_new (&f, 4);
  g_autoptr(GSocket) socket = NULL;
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 byte = 'x';
  guint base, held_at_most;
  int fd = memfd_create ("np-fds", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  base = np_test_count_open_fds ();
  socket = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 1);

  /* A plain message of 1 MiB, its body sent a byte at a time, each
   * byte with 4 descriptors: 200 in all. */
  np_frame_header_encode (header, NP_FRAME_MESSAGE, 1024 * 1024);
  np_test_raw_write (socket, header, sizeof header);
  for (guint i = 0; i < 50; i++)
    raw_send_with_fds (socket, &byte, 1, fd, 4);

  /* Dropped at the first, never holding more than one write's. */
  held_at_most = base + 2;
  while (f.n_disconnected == 0)
    {
      g_main_context_iteration (NULL, TRUE);
      held_at_most = MAX (held_at_most, np_test_count_open_fds ());
      /* Ends the test rather than waiting for the budget to run out. */
      if (held_at_most > base + 2 + 4)
        break;
    }
  g_assert_cmpuint (held_at_most, <=, base + 2 + 4);
  g_assert_error (f.error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (f.error->message, "descriptors"));
  g_assert_cmpuint (f.fd_lists->len, ==, 0);

  g_socket_close (socket, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* The descriptor budget (np-fd-budget.c): with RLIMIT_NOFILE at 48,
 * the library may hold 16 descriptors, its connections included. A peer
 * whose descriptors would pass it is dropped with TOO_MANY_OPEN_FILES,
 * its descriptors closed; a new client past it is refused with
 * TOO_MANY_CLIENTS, saying why; and once the descriptors are delivered
 * and let go of, peers are served again. */

static void
test_fd_budget (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GSocket) holder = NULL;
  g_autoptr(GSocket) greedy = NULL;
  g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocket) refused = NULL;
  g_autoptr(GByteArray) goodbye = g_byte_array_new ();
  struct rlimit limit;
  guint8 frame[NP_FRAME_HEADER_SIZE + 100] = { 0 };
  guint8 buf[4096];
  guint base, before, n_gone;
  gssize n;
  int fd;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = 48;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  fd = memfd_create ("np-fds", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  server = fd_server_new (&f, 8);
  base = np_test_count_open_fds ();
  g_assert_cmpuint (base, <, 24);

  /* A message of 8 descriptors, its body not all there: the server
   * holds them, 8 of its 16. */
  np_frame_header_encode_fds (frame, 100, 8);
  holder = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 1);
  raw_send_with_fds (holder, frame, NP_FRAME_HEADER_SIZE + 1, fd, 8);
  WAIT_UNTIL (np_test_count_open_fds () == base + 2 + 8);

  /* 8 more would take it to 8 + 8 + its 2 connections. */
  greedy = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 2);
  raw_send_with_fds (greedy, frame, NP_FRAME_HEADER_SIZE + 1, fd, 8);
  WAIT_UNTIL (f.n_disconnected == 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_nonnull (strstr (f.error->message, "RLIMIT_NOFILE"));
  g_socket_close (greedy, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base + 2 + 8);

  /* Clients fill what is left: 8 held, and connections up to 8. */
  while (f.connections->len < 8)
    {
      guint n_before = f.connections->len;

      g_ptr_array_add (others, raw_peer_v3 (server));
      WAIT_UNTIL (f.connections->len == n_before + 1);
    }
  refused = raw_peer_v3 (server);
  while ((n = np_test_raw_read (refused, buf, sizeof buf)) > 0)
    g_byte_array_append (goodbye, buf, n);
  g_assert_cmpuint (f.connections->len, ==, 8);
  g_assert_nonnull (memmem (goodbye->data, goodbye->len, "no descriptors left",
                           strlen ("no descriptors left")));
  g_socket_close (refused, NULL);
  g_ptr_array_set_size (others, 0);
  WAIT_UNTIL (f.connections->len == 1);

  /* The holder's message completes: its descriptors are the
   * application's, out of the budget. */
  np_test_raw_write (holder, frame + NP_FRAME_HEADER_SIZE + 1, sizeof frame - NP_FRAME_HEADER_SIZE - 1);
  WAIT_UNTIL (f.fd_lists->len == 1);
  g_assert_cmpint (g_unix_fd_list_get_length (g_ptr_array_index (f.fd_lists, 0)), ==, 8);
  g_ptr_array_set_size (f.fd_lists, 0);
  before = np_test_count_open_fds ();
  g_assert_cmpuint (before, ==, base + 2);

  /* And the greedy peer's message now gets through. */
  n_gone = f.n_disconnected;
  g_clear_object (&greedy);
  greedy = raw_peer_v3 (server);
  WAIT_UNTIL (f.connections->len == 2);
  raw_send_with_fds (greedy, frame, sizeof frame, fd, 8);
  WAIT_UNTIL (f.fd_lists->len == 1);
  g_assert_cmpint (g_unix_fd_list_get_length (g_ptr_array_index (f.fd_lists, 0)), ==, 8);
  g_assert_cmpuint (f.n_disconnected, ==, n_gone);
  g_ptr_array_set_size (f.fd_lists, 0);

  g_socket_close (greedy, NULL);
  g_socket_close (holder, NULL);
  WAIT_UNTIL (f.connections->len == 0);
  WAIT_UNTIL (np_test_count_open_fds () == base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* Requests with descriptors that the application keeps to answer
 * later hold their descriptors: they count in the budget until
 * answered. With RLIMIT_NOFILE at 48 (16 for the library), a peer whose
 * requests of 8 descriptors each would pass it is dropped with
 * TOO_MANY_OPEN_FILES; the application's share of the process's
 * descriptors is left whole, and answering lets the budget go. */

static gboolean
keep_request_fds_cb (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     NpPipeRequest    *request,
                     FdServer         *f)
{
  g_ptr_array_add (f->fd_lists, g_object_ref (request));

  return TRUE;
}

static void
test_fd_budget_requests (void)
{
  FdServer f = { 0 };
  g_autoptr(NpPipeServer) server = NULL;
  g_autoptr(GSocket) greedy = NULL;
  g_autoptr(GBytes) settings = np_test_settings (8);
  struct rlimit limit;
  guint8 frame[NP_REQUEST_HEADER_SIZE + 1] = { 0 };
  guint base;
  int fd;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = 48;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  fd = memfd_create ("np-fds", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  server = fd_server_new (&f, 8);
  g_signal_connect (server, "request-received", G_CALLBACK (keep_request_fds_cb), &f);
  base = np_test_count_open_fds ();

  greedy = np_test_raw_connect (np_pipe_server_get_path (server));
  np_test_raw_write_hello (greedy, 4, 1024);
  np_test_raw_write_bytes (greedy, settings);
  WAIT_UNTIL (f.connections->len == 1);

  /* REQUEST_FDS of 8 descriptors, ids 1, 2, ... */
  for (guint32 id = 1; id <= 6 && f.n_disconnected == 0; id++)
    {
      np_request_header_encode_fds (frame, NP_FRAME_REQUEST_FDS, id, 1, 8);
      raw_send_with_fds (greedy, frame, sizeof frame, fd, 8);
      while (f.fd_lists->len < id && f.n_disconnected == 0)
        g_main_context_iteration (NULL, TRUE);
    }

  g_assert_cmpuint (f.n_disconnected, ==, 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_cmpuint (f.fd_lists->len, ==, 1);
  g_socket_close (greedy, NULL);
  WAIT_UNTIL (np_test_count_open_fds () == base + 8);

  /* Answered (here, dropped), the request lets its descriptors go. */
  g_ptr_array_set_size (f.fd_lists, 0);
  g_assert_cmpuint (np_test_count_open_fds (), ==, base);

  close (fd);
  g_clear_object (&server);
  fd_server_clear (&f);
}

/* No descriptor left for a context's poller: a client in a context of
 * its own, or a server, that the process cannot give an epoll instance
 * (or, earlier, a socket) fails its call with an error that says so;
 * nothing hangs. The limit is set just above the descriptors open, one
 * more each round, until the calls go through. */

static int
lowest_free_fd (void)
{
  int fd = dup (0);

  g_assert_cmpint (fd, >=, 0);
  close (fd);

  return fd;
}

static void
set_nofile (rlim_t cur)
{
  struct rlimit limit;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = cur;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
}

/* The server of the test may find no descriptor for a client either:
 * it says so, once. */
static gboolean
accept_paused_not_fatal (const char     *log_domain,
                         GLogLevelFlags  log_level,
                         const char     *message,
                         gpointer        user_data)
{
  return strstr (message, "stops accepting connections") == NULL;
}

static void
test_no_fd_for_poller (void)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (NULL);
  g_autoptr(GError) error = NULL;
  struct rlimit saved;
  guint n_epoll_client = 0, n_epoll_server = 0;
  gboolean client_done = FALSE, server_done = FALSE;

  g_test_log_set_fatal_handler (accept_paused_not_fatal, NULL);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  g_assert_true (np_pipe_server_start (server, &error));
  g_assert_no_error (error);

  for (int extra = 1; !client_done || !server_done; extra++)
    {
      g_autoptr(GMainContext) context = g_main_context_new ();
      g_autoptr(NpPipeClient) client = NULL;
      g_autoptr(NpPipeServer) other = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      gboolean ok;

      g_assert_cmpint (extra, <, 16);
      g_main_context_push_thread_default (context);

      if (!client_done)
        {
          client = np_pipe_client_new (np_pipe_server_get_name (server));
          set_nofile (lowest_free_fd () + extra);
          np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
          while (result == NULL)
            {
              g_main_context_iteration (NULL, FALSE);
              g_main_context_iteration (context, FALSE);
            }
          ok = np_pipe_client_connect_finish (client, result, &error);
          set_nofile (saved.rlim_cur);
          if (ok)
            client_done = TRUE;
          else
            {
              g_assert_nonnull (error);
              g_assert_false (np_pipe_client_get_connected (client));
              if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) &&
                  strstr (error->message, "epoll") != NULL)
                n_epoll_client++;
              g_clear_error (&error);
            }
          if (ok)
            g_assert_true (np_pipe_client_close (client, NULL, NULL));
          g_clear_object (&client);
          while (g_main_context_iteration (context, FALSE))
            ;
        }

      if (!server_done)
        {
          other = np_pipe_server_new (NULL);
          set_nofile (lowest_free_fd () + extra);
          ok = np_pipe_server_start (other, &error);
          set_nofile (saved.rlim_cur);
          if (ok)
            server_done = TRUE;
          else
            {
              g_assert_nonnull (error);
              g_assert_false (np_pipe_server_is_running (other));
              if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) &&
                  strstr (error->message, "epoll") != NULL)
                n_epoll_server++;
              g_clear_error (&error);
            }
          np_pipe_server_stop (other);
          g_clear_object (&other);
        }

      g_main_context_pop_thread_default (context);
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

#ifdef NP_POLLER_EPOLL
  g_assert_cmpuint (n_epoll_client, >, 0);
  g_assert_cmpuint (n_epoll_server, >, 0);
#endif
}

/* A blocking connect waits for the server's hello in poll(), woken by its
 * cancellable's descriptor, which GLib makes on demand and aborts the
 * process when it cannot: with only the socket's descriptor to spare,
 * connect_sync() polls in slices instead, and connects; and a cancel
 * still ends it. The server is another process, whose descriptors are
 * its own. */
static void
test_no_fd_for_cancellable (void)
{
  g_autofree char *name = np_test_unique_name ("no-fd-for-cancellable");
  const char *args[] = { "serve", name, NULL };
  g_autoptr(GSubprocess) peer = np_test_spawn_peer (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE, args);
  g_autofree char *ready = np_test_read_line (peer);
  g_autoptr(NpPipeClient) first = np_pipe_client_new (name);
  g_autoptr(NpPipeClient) client = np_pipe_client_new (name);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  struct rlimit saved;
  gboolean ok;

  g_assert_cmpstr (ready, ==, "ready");
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);

  /* The context's poller exists: the second connection needs its socket
   * only. */
  g_assert_true (np_pipe_client_connect_sync (first, NULL, &error));
  g_assert_no_error (error);

  set_nofile (lowest_free_fd () + 1);
  ok = np_pipe_client_connect_sync (client, cancellable, &error);
  set_nofile (saved.rlim_cur);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_true (np_pipe_client_get_connected (client));

  g_assert_true (np_pipe_client_close (client, NULL, NULL));
  g_assert_true (np_pipe_client_close (first, NULL, NULL));
  g_output_stream_close (g_subprocess_get_stdin_pipe (peer), NULL, NULL);
  np_test_wait_process (peer);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *runtime_dir = NULL;
  int ret;

  runtime_dir = np_test_runtime_dir_new ("np-fds-XXXXXX");

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, data) \
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown)

  ADD ("/Np/Fds/memfd-client-to-server", test_memfd_client_to_server, NULL);
  ADD ("/Np/Fds/pipe-server-to-client", test_pipe_server_to_client, NULL);
  ADD ("/Np/Fds/unhandled-closed", test_unhandled_closed, NULL);
  ADD ("/Np/Fds/order-and-matching", test_order_and_matching, NULL);
  ADD ("/Np/Fds/after-earlier-bytes", test_after_earlier_bytes, NULL);
  ADD ("/Np/Fds/bad/too-many", test_bad_peer, GINT_TO_POINTER (BAD_TOO_MANY));
  ADD ("/Np/Fds/bad/truncated", test_bad_peer, GINT_TO_POINTER (BAD_TRUNCATED));
  ADD ("/Np/Fds/bad/mismatch", test_bad_peer, GINT_TO_POINTER (BAD_MISMATCH));
  ADD ("/Np/Fds/bad/stray", test_bad_peer, GINT_TO_POINTER (BAD_STRAY));
  ADD ("/Np/Fds/bad/cut", test_bad_peer, GINT_TO_POINTER (BAD_CUT));
  g_test_add_func ("/Np/Fds/peer-without-fds", test_peer_without_fds);
  g_test_add_func ("/Np/Fds/early-to-peer-without-fds", test_early_to_peer_without_fds);
  ADD ("/Np/Fds/queued-dropped-on-close", test_queued_dropped_on_close, NULL);
  ADD ("/Np/Fds/request/memfd-both-ways", test_request_reply_memfd, NULL);
  g_test_add_func ("/Np/Fds/request/to-version-3", test_request_to_version_3);
  ADD ("/Np/Fds/request/reply-to-version-3", test_reply_to_version_3, NULL);
  ADD ("/Np/Fds/request/unhandled-closed", test_request_fds_closed, NULL);
  ADD ("/Np/Fds/request/cancelled", test_request_fds_cancelled, NULL);
  ADD ("/Np/Fds/request/connection-sync", test_connection_request_sync, NULL);
  ADD ("/Np/Fds/request/fds-limit", test_request_fds_limit, NULL);

  /* Each in a process of its own: a crash or a hang fails that test
   * alone, with its report. */
  np_test_add_isolated ("/Np/Fds/in-body", test_fds_in_body, 60);
  np_test_add_isolated ("/Np/Fds/budget", test_fd_budget, 60);
  np_test_add_isolated ("/Np/Fds/budget/requests", test_fd_budget_requests, 60);
  np_test_add_isolated ("/Np/Fds/no-fd-for-poller", test_no_fd_for_poller, 60);
  np_test_add_isolated ("/Np/Fds/no-fd-for-cancellable", test_no_fd_for_cancellable, 60);

  ret = g_test_run ();

  np_test_runtime_dir_remove (runtime_dir);

  return ret;
}
