/* np-test-util.h: what the test programs share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Frames are built and read with the library's own codec
 * (np-frame-private.h): a test says which frame it sends, the codec
 * says how its bytes look.
 */

#pragma once

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <np/np.h>

#include "np-frame-private.h"

G_BEGIN_DECLS

/* Iterates the main context until @cond holds: no sleeping, no timing. */
#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    while (!(cond)) \
      g_main_context_iteration (NULL, TRUE); \
  } G_STMT_END

/* The same, failing the test with what it waited for once @sec seconds
 * passed (0: never); NP_TEST_WAIT_TIMEOUT, in seconds, overrides @sec,
 * for slow tools such as valgrind. */
#define NP_TEST_WAIT_FOR(sec, cond) \
  G_STMT_START { \
    GSource *watchdog_ = np_test_watchdog_new ((sec), #cond); \
    while (!(cond)) \
      g_main_context_iteration (NULL, TRUE); \
    np_test_watchdog_free (watchdog_); \
  } G_STMT_END

GSource  *np_test_watchdog_new         (guint               sec,
                                        const char         *what);
void      np_test_watchdog_free        (GSource            *watchdog);

void      np_test_error_free0          (gpointer            data);
char     *np_test_unique_name          (const char         *prefix);
void      np_test_async_done_cb        (GObject            *object,
                                        GAsyncResult       *result,
                                        gpointer            user_data);
void      np_test_run_ready            (guint               n);
void      np_test_run_for              (guint               msec);

/* The runtime directory of a test program. */
char     *np_test_runtime_dir_new      (const char         *tmpl);
void      np_test_runtime_dir_remove   (const char         *dir);

/* A test in a process of its own: a crash or a hang fails it alone. */
void      np_test_add_isolated         (const char         *path,
                                        GTestFunc           func,
                                        guint               timeout_sec);

/* Test messages. */
#define NP_TEST_MESSAGE_MIN 8

GBytes   *np_test_message_new          (guint32             client,
                                        guint32             seq,
                                        gsize               size);
gboolean  np_test_message_parse        (GBytes             *message,
                                        guint32            *client,
                                        guint32            *seq);
gsize     np_test_random_size          (guint32             client,
                                        guint32             seq);
gsize     np_test_size_for             (guint32             seq);
gsize     np_test_mixed_size           (guint32             client,
                                        guint32             seq);
gsize     np_test_small_size           (guint32             client,
                                        guint32             seq);
guint     np_test_count_open_fds       (void);
guint     np_test_raise_nofile         (void);

/* Frames, encoded by np-frame.c. */
void      np_test_hello                (guint8              out[NP_HELLO_SIZE],
                                        guint8              version,
                                        guint32             max_message_size);
GBytes   *np_test_frame                (NpFrameType         type,
                                        const guint8       *payload,
                                        gsize               len);
GBytes   *np_test_frame_fds            (guint8              n_fds,
                                        const guint8       *payload,
                                        gsize               len);
GBytes   *np_test_request_frame        (NpFrameType         type,
                                        guint32             id,
                                        const guint8       *message,
                                        gsize               len);
GBytes   *np_test_request_frame_fds    (NpFrameType         type,
                                        guint32             id,
                                        guint8              n_fds,
                                        const guint8       *message,
                                        gsize               len);
GBytes   *np_test_goodbye              (NpPipeError         code,
                                        const char         *reason);
GBytes   *np_test_settings             (guint32             max_fds);
void      np_test_header_decode        (const guint8        in[NP_FRAME_HEADER_SIZE],
                                        NpFrameHeader      *header);
NpPipeError np_test_goodbye_code       (const guint8       *payload,
                                        gsize               len);

/* A raw socket peer, to speak the protocol (or not) by hand. */
GSocket  *np_test_raw_connect          (const char         *path);
void      np_test_iterate_until_ready  (GSocket            *socket,
                                        GIOCondition        condition);
void      np_test_raw_write            (GSocket            *socket,
                                        const guint8       *data,
                                        gsize               len);
void      np_test_raw_write_bytes      (GSocket            *socket,
                                        GBytes             *bytes);
void      np_test_raw_write_hello      (GSocket            *socket,
                                        guint8              version,
                                        guint32             max_message_size);
void      np_test_raw_send_with_fds    (GSocket            *socket,
                                        const guint8       *data,
                                        gsize               len,
                                        const int          *fds,
                                        guint               n_fds);
gssize    np_test_raw_read             (GSocket            *socket,
                                        guint8             *buf,
                                        gsize               len);
void      np_test_raw_read_exactly     (GSocket            *socket,
                                        guint8             *buf,
                                        gsize               len);
gboolean  np_test_raw_read_frame       (GSocket            *socket,
                                        NpFrameHeader      *header,
                                        GBytes            **payload);
guint32   np_test_raw_read_goodbye     (GSocket            *socket);

/* A frame read whole. */
typedef struct
{
  NpFrameType  type;
  GBytes      *payload;
} NpTestFrame;

void       np_test_frame_free          (gpointer            data);
GPtrArray *np_test_raw_read_frames     (GSocket            *socket);

/* A listening socket that is no Np server: it accepts, from the main
 * loop, and the test speaks (or not) for it. */
typedef struct
{
  char      *path;
  GSocket   *listener;
  GSource   *source;
  GPtrArray *accepted;
} NpTestRawServer;

NpTestRawServer *np_test_raw_server_new (const char      *name,
                                         int              backlog,
                                         gboolean         accept);
void      np_test_raw_server_start_accepting (NpTestRawServer *server);
void      np_test_raw_server_free      (NpTestRawServer    *server);

/* The Np test peer program, built beside the tests. */
GSubprocess *np_test_spawn_peer        (GSubprocessFlags    flags,
                                        const char * const *args);
char     *np_test_read_line            (GSubprocess        *process);
void      np_test_wait_process         (GSubprocess        *process);
void      np_test_line_cb              (GObject            *object,
                                        GAsyncResult       *result,
                                        gpointer            user_data);

/* A server of a name of its own, started, and a client connected to it:
 * what most tests begin with. The arrays record what the server
 * announced; a test connects its own handlers too. */
typedef struct
{
  NpPipeServer *server;
  NpPipeClient *client;
  GPtrArray    *connections;       /* NpPipeConnection, as client-connected announced them */
  GPtrArray    *messages;          /* GBytes, as message-received delivered them */
  GPtrArray    *disconnect_errors; /* GError, or NULL for a clean close, per client-disconnected */
  guint         n_accepted;        /* the client's accepted signals */
} NpTestPair;

void      np_test_pair_init            (NpTestPair         *pair);
void      np_test_pair_start           (NpTestPair         *pair);
NpPipeClient *np_test_pair_new_client  (NpTestPair         *pair);
NpPipeClient *np_test_pair_connect     (NpTestPair         *pair);
void      np_test_pair_clear           (NpTestPair         *pair);

/* For g_test_add(): the server started; or the server and a client. */
void      np_test_pair_setup_server    (NpTestPair         *pair,
                                        gconstpointer       data);
void      np_test_pair_setup           (NpTestPair         *pair,
                                        gconstpointer       data);
void      np_test_pair_teardown        (NpTestPair         *pair,
                                        gconstpointer       data);

G_END_DECLS
