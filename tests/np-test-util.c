/* np-test-util.c: what the test programs share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sys/resource.h>

#include "np-test-util.h"

static gboolean
watchdog_cb (gpointer data)
{
  g_error ("Still waiting for %s", (const char *) data);
  return G_SOURCE_REMOVE;
}

GSource *
np_test_watchdog_new (guint       sec,
                      const char *what)
{
  const char *timeout = g_getenv ("NP_TEST_WAIT_TIMEOUT");
  GSource *source;

  if (timeout != NULL)
    sec = atoi (timeout);
  if (sec == 0)
    return NULL;

  source = g_timeout_source_new_seconds (sec);
  g_source_set_callback (source, watchdog_cb, (gpointer) what, NULL);
  g_source_attach (source, NULL);

  return source;
}

void
np_test_watchdog_free (GSource *watchdog)
{
  if (watchdog != NULL)
    {
      g_source_destroy (watchdog);
      g_source_unref (watchdog);
    }
}

void
np_test_error_free0 (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

/* A name no other test of the run uses. */
char *
np_test_unique_name (const char *prefix)
{
  return g_strdup_printf ("%s-%u", prefix, g_random_int ());
}

/* Keeps the result of an asynchronous call in the GAsyncResult * that
 * @user_data points to. */
void
np_test_async_done_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Iterates what is ready in the default context, without blocking. */
void
np_test_run_ready (guint n)
{
  for (guint i = 0; i < n; i++)
    g_main_context_iteration (NULL, FALSE);
}

static gboolean
set_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the loop for a window of time: what a live loop would do in it
 * shows. Never a way to wait for something. */
void
np_test_run_for (guint msec)
{
  gboolean over = FALSE;

  g_timeout_add (msec, set_flag_cb, &over);
  WAIT_UNTIL (over);
}

/* Set for the processes of np_test_add_isolated(). */
#define PARENT_RUNTIME_DIR "NP_TEST_PARENT_RUNTIME_DIR"

/* Points XDG_RUNTIME_DIR at a new temporary directory, so that runs
 * never share sockets; returns it, for np_test_runtime_dir_remove(). A
 * test's own process (np_test_add_isolated()) works in its parent's:
 * then NULL. */
char *
np_test_runtime_dir_new (const char *tmpl)
{
  g_autoptr(GError) error = NULL;
  const char *parent = g_getenv (PARENT_RUNTIME_DIR);
  char *dir;

  if (parent != NULL)
    {
      g_setenv ("XDG_RUNTIME_DIR", parent, TRUE);
      return NULL;
    }

  dir = g_dir_make_tmp (tmpl, &error);
  g_assert_no_error (error);
  g_setenv ("XDG_RUNTIME_DIR", dir, TRUE);

  return dir;
}

/* Removes what np_test_runtime_dir_new() made, once the servers are gone. */
void
np_test_runtime_dir_remove (const char *dir)
{
  g_autofree char *np_dir = NULL;

  if (dir == NULL)
    return;

  np_dir = g_build_filename (dir, "np", NULL);
  g_rmdir (np_dir);
  g_rmdir (dir);
}

typedef struct
{
  GTestFunc func;
  guint     timeout_sec;
} Isolated;

static void
run_isolated (gconstpointer data)
{
  const Isolated *test = data;

  if (g_test_subprocess ())
    {
      test->func ();
      return;
    }

  g_setenv (PARENT_RUNTIME_DIR, g_get_user_runtime_dir (), TRUE);
  g_test_trap_subprocess (NULL, test->timeout_sec * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv (PARENT_RUNTIME_DIR);
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("%s", g_test_trap_reached_timeout ()
                                ? "the test's process hung: it did not end in time"
                                : "the test's process failed: see its report above");
}

/* Adds a test that runs in a process of its own, so that a crash or a
 * hang (shown as a timeout of @timeout_sec) fails that test alone, with
 * its report, and what it does to its process (resource limits, say)
 * stays there. */
void
np_test_add_isolated (const char *path,
                      GTestFunc   func,
                      guint       timeout_sec)
{
  /* Static: a test's process ends without the suite being freed. */
  static Isolated tests[64];
  static guint n_tests;
  Isolated *test;

  g_assert_cmpuint (n_tests, <, G_N_ELEMENTS (tests));
  test = &tests[n_tests++];
  test->func = func;
  test->timeout_sec = timeout_sec;
  g_test_add_data_func (path, test, run_isolated);
}

/* A test message: client id and sequence number, then a pattern that
 * depends on both, so a lost, repeated, reordered or corrupt message
 * shows. */
static inline guint8
np_test_pattern (guint32 client,
                 guint32 seq,
                 gsize   offset)
{
  return (guint8) (client * 31 + seq * 7 + offset);
}

GBytes *
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

gboolean
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

/* A size in [8, 2048] that looks random but both ends can compute. */
gsize
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
gsize
np_test_size_for (guint32 seq)
{
  static const gsize sizes[] = { 8, 64, 4095, 4096, 4097, 65535, 65536, 70000, 300000, 16 };

  return sizes[seq % G_N_ELEMENTS (sizes)];
}

/* Sizes that both ends can compute, mostly small, one in four over the
 * payload size the output queue copies (4 KiB: larger ones are queued by
 * reference) and one in sixteen over 64 KiB (written at once by the
 * sender), in no pattern a queue could line up with. */
gsize
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

/* Sizes in [8, 263], for tests of many small messages, where what
 * counts is how many there are and from how many peers. */
gsize
np_test_small_size (guint32 client,
                    guint32 seq)
{
  return NP_TEST_MESSAGE_MIN + np_test_random_size (client, seq) % 256;
}

/* The descriptors this process has open. */
guint
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

/* Raises the soft RLIMIT_NOFILE to the hard one (Debian's default soft
 * limit is 1024), for tests of many connections; returns the limit now
 * in force. */
guint
np_test_raise_nofile (void)
{
  struct rlimit limit;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  if (limit.rlim_cur != limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
    }

  return limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > G_MAXUINT ? G_MAXUINT : (guint) limit.rlim_cur;
}

/* The hello of a peer that speaks @version: the library's own, which
 * announces the newest version, with that one in its place. */
void
np_test_hello (guint8  out[NP_HELLO_SIZE],
               guint8  version,
               guint32 max_message_size)
{
  np_hello_encode (out, max_message_size);
  out[4] = version;
}

static GBytes *
frame_new (const guint8  header[NP_FRAME_HEADER_SIZE],
           gsize         header_len,
           const guint8 *payload,
           gsize         len)
{
  guint8 *data = g_malloc (header_len + len);

  memcpy (data, header, header_len);
  if (len > 0)
    memcpy (data + header_len, payload, len);

  return g_bytes_new_take (data, header_len + len);
}

/* A whole frame of @type: header then payload. */
GBytes *
np_test_frame (NpFrameType   type,
               const guint8 *payload,
               gsize         len)
{
  guint8 header[NP_FRAME_HEADER_SIZE];

  np_frame_header_encode (header, type, len);

  return frame_new (header, sizeof header, payload, len);
}

/* A whole MESSAGE_FDS frame that says it carries @n_fds descriptors
 * (sent with its first byte: np_test_raw_send_with_fds()). */
GBytes *
np_test_frame_fds (guint8        n_fds,
                   const guint8 *payload,
                   gsize         len)
{
  guint8 header[NP_FRAME_HEADER_SIZE];

  np_frame_header_encode_fds (header, len, n_fds);

  return frame_new (header, sizeof header, payload, len);
}

/* A request or reply frame: header, request id, then @message. */
GBytes *
np_test_request_frame (NpFrameType   type,
                       guint32       id,
                       const guint8 *message,
                       gsize         len)
{
  guint8 header[NP_REQUEST_HEADER_SIZE];

  np_request_header_encode (header, type, id, len);

  return frame_new (header, sizeof header, message, len);
}

/* A REQUEST_FDS or REPLY_FDS frame that says it carries @n_fds
 * descriptors. */
GBytes *
np_test_request_frame_fds (NpFrameType   type,
                           guint32       id,
                           guint8        n_fds,
                           const guint8 *message,
                           gsize         len)
{
  guint8 header[NP_REQUEST_HEADER_SIZE];

  np_request_header_encode_fds (header, type, id, len, n_fds);

  return frame_new (header, sizeof header, message, len);
}

/* A whole GOODBYE frame. */
GBytes *
np_test_goodbye (NpPipeError  code,
                 const char  *reason)
{
  g_autoptr(GBytes) payload = np_goodbye_encode (code, reason);
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);

  return np_test_frame (NP_FRAME_GOODBYE, data, len);
}

/* A whole SETTINGS frame. */
GBytes *
np_test_settings (guint32 max_fds)
{
  g_autoptr(GBytes) payload = np_settings_encode (max_fds);
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);

  return np_test_frame (NP_FRAME_SETTINGS, data, len);
}

/* Decodes the header of a frame a peer of the newest version may send. */
void
np_test_header_decode (const guint8   in[NP_FRAME_HEADER_SIZE],
                       NpFrameHeader *header)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_frame_header_decode (in, NP_PROTOCOL_VERSION, G_MAXUINT32, header, &error));
  g_assert_no_error (error);
}

/* The code a GOODBYE payload carries. */
NpPipeError
np_test_goodbye_code (const guint8 *payload,
                      gsize         len)
{
  g_autoptr(GError) goodbye = np_goodbye_decode (payload, len);

  g_assert_true (goodbye->domain == NP_PIPE_ERROR);

  return goodbye->code;
}

GSocket *
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

static gboolean
np_test_socket_ready_cb (GSocket      *socket,
                         GIOCondition  condition,
                         gpointer      data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs one iteration of the loop, woken up by @socket becoming ready for
 * @condition too: a peer in another process (or a write made while the
 * loop prepared) then ends the wait. */
void
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
void
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

void
np_test_raw_write_bytes (GSocket *socket,
                         GBytes  *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  np_test_raw_write (socket, data, len);
}

/* Says the hello of a peer of @version. */
void
np_test_raw_write_hello (GSocket *socket,
                         guint8   version,
                         guint32  max_message_size)
{
  guint8 hello[NP_HELLO_SIZE];

  np_test_hello (hello, version, max_message_size);
  np_test_raw_write (socket, hello, sizeof hello);
}

/* Sends @len bytes of @data with @n_fds (1 to 253) descriptors in one
 * sendmsg(), as a peer that passes descriptors does. */
void
np_test_raw_send_with_fds (GSocket      *socket,
                           const guint8 *data,
                           gsize         len,
                           const int    *fds,
                           guint         n_fds)
{
  union {
    struct cmsghdr header;
    char           space[CMSG_SPACE (sizeof (int) * NP_FDS_MAX)];
  } control;
  struct iovec iov = { (void *) data, len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  struct cmsghdr *cmsg;

  g_assert_cmpuint (n_fds, <=, NP_FDS_MAX);
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

/* Reads what is there without blocking, running the loop while nothing
 * is; returns 0 at the end of the stream. */
gssize
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
void
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

/* Reads the next frame whole: its header and its payload; FALSE at the
 * end of the stream, between two frames. */
gboolean
np_test_raw_read_frame (GSocket        *socket,
                        NpFrameHeader  *header,
                        GBytes        **payload)
{
  guint8 bytes[NP_FRAME_HEADER_SIZE];
  guint8 *data;

  if (np_test_raw_read (socket, bytes, 1) == 0)
    return FALSE;
  np_test_raw_read_exactly (socket, bytes + 1, sizeof bytes - 1);
  np_test_header_decode (bytes, header);

  data = g_malloc (MAX (header->length, 1));
  np_test_raw_read_exactly (socket, data, header->length);
  *payload = g_bytes_new_take (data, header->length);

  return TRUE;
}

void
np_test_frame_free (gpointer data)
{
  NpTestFrame *frame = data;

  g_bytes_unref (frame->payload);
  g_free (frame);
}

/* Reads frames until the end of the stream; returns them, in order, as
 * NpTestFrame. A frame cut short fails the test. */
GPtrArray *
np_test_raw_read_frames (GSocket *socket)
{
  GPtrArray *frames = g_ptr_array_new_with_free_func (np_test_frame_free);
  NpFrameHeader header;
  GBytes *payload;

  while (np_test_raw_read_frame (socket, &header, &payload))
    {
      NpTestFrame *frame = g_new0 (NpTestFrame, 1);

      frame->type = header.type;
      frame->payload = payload;
      g_ptr_array_add (frames, frame);
    }

  return frames;
}

/* Reads what a server answers a raw peer up to its goodbye: the hello,
 * then frames (its settings, say), skipped; returns the goodbye's code. */
guint32
np_test_raw_read_goodbye (GSocket *socket)
{
  guint8 hello[NP_HELLO_SIZE];
  NpHello decoded;
  g_autoptr(GError) error = NULL;

  np_test_raw_read_exactly (socket, hello, sizeof hello);
  g_assert_true (np_hello_decode (hello, &decoded, &error));
  g_assert_no_error (error);

  for (;;)
    {
      NpFrameHeader header;
      g_autoptr(GBytes) payload = NULL;

      g_assert_true (np_test_raw_read_frame (socket, &header, &payload));
      if (header.type == NP_FRAME_GOODBYE)
        return np_test_goodbye_code (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
    }
}

static gboolean
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

void
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
NpTestRawServer *
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

void
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

GSubprocess *
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

void
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
char *
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

static void
np_test_process_done_cb (GObject      *object,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_subprocess_wait_finish (G_SUBPROCESS (object), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* Iterates the main context until @process has ended, so that a server
 * of this process serves its clients meanwhile; the caller checks how it
 * ended (g_subprocess_get_successful(), g_subprocess_get_if_signaled()). */
void
np_test_wait_process (GSubprocess *process)
{
  gboolean done = FALSE;

  g_subprocess_wait_async (process, NULL, np_test_process_done_cb, &done);
  WAIT_UNTIL (done);
}

static void
pair_connected_cb (NpPipeServer     *server,
                   NpPipeConnection *connection,
                   NpTestPair       *pair)
{
  g_ptr_array_add (pair->connections, g_object_ref (connection));
}

static void
pair_message_cb (NpPipeServer     *server,
                 NpPipeConnection *connection,
                 GBytes           *message,
                 NpTestPair       *pair)
{
  g_ptr_array_add (pair->messages, g_bytes_ref (message));
}

static void
pair_disconnected_cb (NpPipeServer     *server,
                      NpPipeConnection *connection,
                      const GError     *error,
                      NpTestPair       *pair)
{
  g_ptr_array_add (pair->disconnect_errors, error != NULL ? g_error_copy (error) : NULL);
}

/* A server of a name of its own, that records what it announces; not
 * started, so that the test may set it up first. */
void
np_test_pair_init (NpTestPair *pair)
{
  memset (pair, 0, sizeof *pair);
  pair->connections = g_ptr_array_new_with_free_func (g_object_unref);
  pair->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  pair->disconnect_errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  pair->server = np_pipe_server_new (NULL);
  g_signal_connect (pair->server, "client-connected", G_CALLBACK (pair_connected_cb), pair);
  g_signal_connect (pair->server, "message-received", G_CALLBACK (pair_message_cb), pair);
  g_signal_connect (pair->server, "client-disconnected", G_CALLBACK (pair_disconnected_cb), pair);
}

void
np_test_pair_start (NpTestPair *pair)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (np_pipe_server_start (pair->server, &error));
  g_assert_no_error (error);
}

/* The pair's client, made if need be, not connected: the test may set
 * it up before np_test_pair_connect(). */
static void
pair_count_cb (gpointer data)
{
  (*(guint *) data)++;
}

NpPipeClient *
np_test_pair_new_client (NpTestPair *pair)
{
  if (pair->client == NULL)
    {
      pair->client = np_pipe_client_new (np_pipe_server_get_name (pair->server));
      g_signal_connect_swapped (pair->client, "accepted", G_CALLBACK (pair_count_cb),
                                &pair->n_accepted);
    }

  return pair->client;
}

/* Connects the pair's client, and iterates until the server announced
 * it; returns the client. */
NpPipeClient *
np_test_pair_connect (NpTestPair *pair)
{
  g_autoptr(GError) error = NULL;
  guint n = pair->connections->len;

  np_test_pair_new_client (pair);
  g_assert_true (np_pipe_client_connect_sync (pair->client, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (pair->connections->len == n + 1);

  return pair->client;
}

void
np_test_pair_clear (NpTestPair *pair)
{
  g_clear_object (&pair->client);
  g_clear_object (&pair->server);
  g_clear_pointer (&pair->connections, g_ptr_array_unref);
  g_clear_pointer (&pair->messages, g_ptr_array_unref);
  g_clear_pointer (&pair->disconnect_errors, g_ptr_array_unref);
}

void
np_test_pair_setup_server (NpTestPair    *pair,
                           gconstpointer  data)
{
  np_test_pair_init (pair);
  np_test_pair_start (pair);
}

void
np_test_pair_setup (NpTestPair    *pair,
                    gconstpointer  data)
{
  np_test_pair_setup_server (pair, data);
  np_test_pair_connect (pair);
}

void
np_test_pair_teardown (NpTestPair    *pair,
                       gconstpointer  data)
{
  np_test_pair_clear (pair);
}
