/* np-test-util.h: helpers shared by the test programs
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <np/np.h>

/* Iterates the main context until @cond holds: no sleeping, no timing. */
#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    while (!(cond)) \
      g_main_context_iteration (NULL, TRUE); \
  } G_STMT_END

static inline void
np_test_error_free0 (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

/* A raw socket peer, to speak the protocol (or not) by hand. */
static inline GSocket *
np_test_raw_connect (const char *path)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);

  return socket;
}

static inline gboolean
np_test_socket_ready_cb (GSocket      *socket,
                         GIOCondition  condition,
                         gpointer      data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs one iteration of the loop, woken up by @socket becoming ready for
 * @condition too: a peer in another process (or a write made while the
 * loop prepared) then ends the wait. */
static inline void
np_test_iterate_until_ready (GSocket      *socket,
                             GIOCondition  condition)
{
  GSource *source = g_socket_create_source (socket, condition | G_IO_HUP | G_IO_ERR, NULL);

  g_source_set_callback (source, G_SOURCE_FUNC (np_test_socket_ready_cb), NULL, NULL);
  g_source_attach (source, NULL);
  g_main_context_iteration (NULL, TRUE);
  g_source_destroy (source);
  g_source_unref (source);
}

/* Writes all of @data; when the server runs in this thread and the
 * socket is full, the loop runs until the server has read some. */
static inline void
np_test_raw_write (GSocket      *socket,
                   const guint8 *data,
                   gsize         len)
{
  g_socket_set_blocking (socket, FALSE);
  while (len > 0)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) data, len, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          np_test_iterate_until_ready (socket, G_IO_OUT);
          continue;
        }

      g_assert_no_error (error);
      data += n;
      len -= n;
    }
}

/* A test message: client id and sequence number, then a pattern that
 * depends on both, so a lost, repeated, reordered or corrupt message
 * shows. */
#define NP_TEST_MESSAGE_MIN 8

static inline guint8
np_test_pattern (guint32 client,
                 guint32 seq,
                 gsize   offset)
{
  return (guint8) (client * 31 + seq * 7 + offset);
}

static inline GBytes *
np_test_message_new (guint32 client,
                     guint32 seq,
                     gsize   size)
{
  guint8 *data;

  g_assert (size >= NP_TEST_MESSAGE_MIN);

  data = g_malloc (size);
  memcpy (data, &client, 4);
  memcpy (data + 4, &seq, 4);
  for (gsize i = NP_TEST_MESSAGE_MIN; i < size; i++)
    data[i] = np_test_pattern (client, seq, i);

  return g_bytes_new_take (data, size);
}

static inline gboolean
np_test_message_parse (GBytes  *message,
                       guint32 *client,
                       guint32 *seq)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (message, &size);

  if (size < NP_TEST_MESSAGE_MIN)
    return FALSE;

  memcpy (client, data, 4);
  memcpy (seq, data + 4, 4);
  for (gsize i = NP_TEST_MESSAGE_MIN; i < size; i++)
    if (data[i] != np_test_pattern (*client, *seq, i))
      return FALSE;

  return TRUE;
}

/* Sends @len bytes of @data with @n_fds (1 to 253) descriptors in one
 * sendmsg(), as a peer that passes descriptors does. */
static inline void
np_test_raw_send_with_fds (GSocket      *socket,
                           const guint8 *data,
                           gsize         len,
                           const int    *fds,
                           guint         n_fds)
{
  union {
    struct cmsghdr header;
    char           space[CMSG_SPACE (sizeof (int) * 253)];
  } control;
  struct iovec iov = { (void *) data, len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  struct cmsghdr *cmsg;

  g_assert_cmpuint (n_fds, <=, 253);
  memset (&control, 0, sizeof control);
  msg.msg_control = control.space;
  msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
  memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);

  g_assert_cmpint (sendmsg (g_socket_get_fd (socket), &msg, MSG_NOSIGNAL), ==, (gssize) len);
}

/* The descriptors this process has open. */
static inline guint
np_test_count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  /* Less the one the listing itself used. */
  return n - 1;
}

/* Points XDG_RUNTIME_DIR at a new temporary directory, so that runs
 * never share sockets; returns it, for np_test_runtime_dir_remove(). */
static inline char *
np_test_runtime_dir_new (const char *tmpl)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp (tmpl, &error);

  g_assert_no_error (error);
  g_setenv ("XDG_RUNTIME_DIR", dir, TRUE);

  return dir;
}

/* Removes what np_test_runtime_dir_new() made, once the servers are gone. */
static inline void
np_test_runtime_dir_remove (const char *dir)
{
  g_autofree char *np_dir = g_build_filename (dir, "np", NULL);

  g_rmdir (np_dir);
  g_rmdir (dir);
}

/* A size in [8, 2048] that looks random but both ends can compute. */
static inline gsize
np_test_random_size (guint32 client,
                     guint32 seq)
{
  guint32 h = client * 2654435761u ^ seq * 2246822519u;

  h ^= h >> 15;
  h *= 2654435761u;
  h ^= h >> 13;

  return NP_TEST_MESSAGE_MIN + h % (2048 - NP_TEST_MESSAGE_MIN + 1);
}

/* Sizes that cross the read chunk and coalescing boundaries. */
static inline gsize
np_test_size_for (guint32 seq)
{
  static const gsize sizes[] = { 8, 64, 4095, 4096, 4097, 65535, 65536, 70000, 300000, 16 };

  return sizes[seq % G_N_ELEMENTS (sizes)];
}

/* The wire format, written by hand (docs/protocol.md). */
enum
{
  NP_TEST_MESSAGE = 0,
  NP_TEST_PING = 1,
  NP_TEST_PONG = 2,
  NP_TEST_GOODBYE = 3,
};

static inline void
np_test_put_u32 (guint8  *out,
                 guint32  value)
{
  out[0] = value >> 24;
  out[1] = value >> 16;
  out[2] = value >> 8;
  out[3] = value;
}

static inline guint32
np_test_get_u32 (const guint8 *in)
{
  return ((guint32) in[0] << 24) | ((guint32) in[1] << 16) | ((guint32) in[2] << 8) | in[3];
}

static inline void
np_test_hello (guint8  out[12],
               guint8  version,
               guint32 max_message_size)
{
  memcpy (out, "NPIP", 4);
  out[4] = version;
  out[5] = out[6] = out[7] = 0;
  np_test_put_u32 (out + 8, max_message_size);
}

/* A whole frame: header then payload. */
static inline GBytes *
np_test_frame (guint8        type,
               const guint8 *payload,
               gsize         len)
{
  guint8 *data = g_malloc (8 + len);

  np_test_put_u32 (data, len);
  data[4] = type;
  data[5] = data[6] = data[7] = 0;
  if (len > 0)
    memcpy (data + 8, payload, len);

  return g_bytes_new_take (data, 8 + len);
}

static inline GBytes *
np_test_goodbye (guint32     code,
                 const char *reason)
{
  gsize len = strlen (reason);
  g_autofree guint8 *payload = g_malloc (4 + len);

  np_test_put_u32 (payload, code);
  memcpy (payload + 4, reason, len);

  return np_test_frame (NP_TEST_GOODBYE, payload, 4 + len);
}

static inline void
np_test_raw_write_bytes (GSocket *socket,
                         GBytes  *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  np_test_raw_write (socket, data, len);
}

/* Reads what is there without blocking, running the loop while nothing
 * is; returns 0 at the end of the stream. */
static inline gssize
np_test_raw_read (GSocket *socket,
                  guint8  *buf,
                  gsize    len)
{
  g_socket_set_blocking (socket, FALSE);
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, (char *) buf, len, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          np_test_iterate_until_ready (socket, G_IO_IN);
          continue;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
        return 0;

      g_assert_no_error (error);
      return n;
    }
}

/* Reads exactly @len bytes, or fails the test at the end of the stream. */
static inline void
np_test_raw_read_exactly (GSocket *socket,
                          guint8  *buf,
                          gsize    len)
{
  while (len > 0)
    {
      gssize n = np_test_raw_read (socket, buf, len);

      g_assert_cmpint (n, >, 0);
      buf += n;
      len -= n;
    }
}

/* Reads what a server answers a raw peer up to its goodbye: the hello,
 * then frames (its settings, say), skipped; returns the goodbye's code. */
static inline guint32
np_test_raw_read_goodbye (GSocket *socket)
{
  guint8 hello[12];

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  g_assert_cmpmem (hello, 4, "NPIP", 4);

  for (;;)
    {
      guint8 header[8];
      g_autofree guint8 *payload = NULL;
      guint32 len;

      np_test_raw_read_exactly (socket, header, sizeof header);
      len = np_test_get_u32 (header);
      payload = g_malloc (MAX (len, 1));
      np_test_raw_read_exactly (socket, payload, len);
      if (header[4] == NP_TEST_GOODBYE)
        {
          g_assert_cmpuint (len, >=, 4);
          return np_test_get_u32 (payload);
        }
    }
}

/* A listening socket that is no Np server: it accepts, from the main
 * loop, and the test speaks (or not) for it. */
typedef struct
{
  char      *path;
  GSocket   *listener;
  GSource   *source;
  GPtrArray *accepted;
} NpTestRawServer;

static inline gboolean
np_test_raw_server_accept_cb (GSocket      *listener,
                              GIOCondition  condition,
                              gpointer      data)
{
  NpTestRawServer *server = data;
  GSocket *peer = g_socket_accept (listener, NULL, NULL);

  if (peer != NULL)
    g_ptr_array_add (server->accepted, peer);

  return G_SOURCE_CONTINUE;
}

static inline void
np_test_raw_server_start_accepting (NpTestRawServer *server)
{
  g_assert (server->source == NULL);

  server->source = g_socket_create_source (server->listener, G_IO_IN, NULL);
  g_source_set_callback (server->source, G_SOURCE_FUNC (np_test_raw_server_accept_cb),
                         server, NULL);
  g_source_attach (server->source, NULL);
}

/* Listens as pipe @name, with a backlog of @backlog; accepts as
 * connections come when @accept. */
static inline NpTestRawServer *
np_test_raw_server_new (const char *name,
                        int         backlog,
                        gboolean    accept)
{
  NpTestRawServer *server = g_new0 (NpTestRawServer, 1);
  g_autofree char *dir = g_build_filename (g_get_user_runtime_dir (), "np", NULL);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;

  g_mkdir_with_parents (dir, 0700);
  server->path = g_build_filename (dir, name, NULL);
  server->accepted = g_ptr_array_new_with_free_func (g_object_unref);
  server->listener = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                   G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (server->path);
  g_assert_true (g_socket_bind (server->listener, address, TRUE, &error));
  g_assert_no_error (error);
  g_socket_set_listen_backlog (server->listener, backlog);
  g_assert_true (g_socket_listen (server->listener, &error));
  g_assert_no_error (error);
  g_socket_set_blocking (server->listener, FALSE);

  if (accept)
    np_test_raw_server_start_accepting (server);

  return server;
}

static inline void
np_test_raw_server_free (NpTestRawServer *server)
{
  if (server->source != NULL)
    {
      g_source_destroy (server->source);
      g_source_unref (server->source);
    }
  g_ptr_array_unref (server->accepted);
  g_socket_close (server->listener, NULL);
  g_object_unref (server->listener);
  unlink (server->path);
  g_free (server->path);
  g_free (server);
}

/* The Np test peer program, built beside the tests. */
static inline GSubprocess *
np_test_spawn_peer (GSubprocessFlags    flags,
                    const char * const *args)
{
  g_autofree char *peer = g_test_build_filename (G_TEST_BUILT, "np-test-peer", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_ptr_array_add (argv, peer);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  process = g_subprocess_newv ((const char * const *) argv->pdata, flags, &error);
  g_assert_no_error (error);

  return process;
}

static inline void
np_test_line_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  char **line = user_data;
  g_autoptr(GError) error = NULL;

  *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (object), result, NULL, &error);
  g_assert_no_error (error);
  if (*line == NULL)
    *line = g_strdup ("");
}

/* The next line the process prints, "" at the end of its output. One
 * reader per process keeps what it buffered for the next call. */
static inline char *
np_test_read_line (GSubprocess *process)
{
  GDataInputStream *out = g_object_get_data (G_OBJECT (process), "np-test-stdout");
  char *line = NULL;

  if (out == NULL)
    {
      out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
      g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (out), FALSE);
      g_object_set_data_full (G_OBJECT (process), "np-test-stdout", out, g_object_unref);
    }

  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, np_test_line_cb, &line);
  WAIT_UNTIL (line != NULL);

  return line;
}

/* Sizes that both ends can compute, mostly small, one in four over the
 * payload size the output queue copies (4 KiB: larger ones are queued by
 * reference) and one in sixteen over 64 KiB (written at once by the
 * sender), in no pattern a queue could line up with. */
static inline gsize
np_test_mixed_size (guint32 client,
                    guint32 seq)
{
  gsize small = np_test_random_size (client, seq);
  guint32 pick = (guint32) np_test_random_size (seq, client) * 2654435761u >> 28;

  if (pick == 0)
    return 65536 + small * 3;
  if (pick % 4 == 1)
    return 4097 + small;
  return small;
}
