/* test-tls.c: NpPipeServer and NpPipeClient over TCP with TLS, on the
 * loopback interface, with certificates made for the run
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The certificates come from tls/make-certs.sh (see there which is
 * which). The servers listen on loopback, on port 0 but for the one
 * restarted on its port, and say in their name which port they got;
 * the peers that speak TLS by hand run in threads of their own, with
 * blocking calls, while the main thread runs the server's loop. Each
 * test runs in a process of its own.
 */

#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "np-test-util.h"

/* The watchdog of every wait: TLS handshakes are slow under valgrind. */
#define WAIT_SEC 60

#define N_CLIENTS 200

/* The handshake timeout of the server that peers stall. */
#define HANDSHAKE_TIMEOUT_MSEC 1000

/* Where make-certs.sh wrote the certificates; why the tests skip, if
 * they do. */
static char *cert_dir;
static gboolean owns_cert_dir;
static char *skip_reason;

/* Where a test's own process finds its parent's certificates. */
#define CERT_DIR_VARIABLE "NP_TEST_TLS_CERT_DIR"

/* How long a test's own process may take. */
#define TEST_TIMEOUT_SEC 300

static gboolean
tls_or_skip (void)
{
  if (skip_reason == NULL)
    return TRUE;

  g_test_skip (skip_reason);
  return FALSE;
}

static char *
cert_file (const char *name)
{
  g_autofree char *base = g_strconcat (name, ".pem", NULL);

  return g_build_filename (cert_dir, base, NULL);
}

/* Certificate @name with its key. */
static GTlsCertificate *
load_cert (const char *name)
{
  g_autofree char *cert = cert_file (name);
  g_autofree char *key_name = g_strconcat (name, "-key", NULL);
  g_autofree char *key = cert_file (key_name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate;

  certificate = g_tls_certificate_new_from_files (cert, key, &error);
  g_assert_no_error (error);

  return certificate;
}

/* A database that trusts the authority @name only. */
static GTlsDatabase *
load_database (const char *name)
{
  g_autofree char *file = cert_file (name);
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database;

  database = g_tls_file_database_new (file, &error);
  g_assert_no_error (error);

  return database;
}

/* The SHA-256 fingerprint of @certificate in hex, as tls-pin takes it:
 * with colons between the bytes, in upper case, when @colons. */
static char *
fingerprint (GTlsCertificate *certificate,
             gboolean         colons)
{
  g_autoptr(GByteArray) der = NULL;
  g_autofree char *hex = NULL;
  GString *out;

  g_object_get (certificate, "certificate", &der, NULL);
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
  if (!colons)
    return g_steal_pointer (&hex);

  out = g_string_new (NULL);
  for (gsize i = 0; hex[i] != '\0'; i += 2)
    g_string_append_printf (out, "%s%c%c", i > 0 ? ":" : "",
                            g_ascii_toupper (hex[i]), g_ascii_toupper (hex[i + 1]));

  return g_string_free (out, FALSE);
}

/* A message of @size bytes, sizes under 8 included: the test messages
 * of np-test-util when they fit, a byte pattern otherwise. */
static GBytes *
message_new (guint32 client,
             guint32 seq,
             gsize   size)
{
  if (size >= NP_TEST_MESSAGE_MIN)
    return np_test_message_new (client, seq, size);

  return g_bytes_new ("\x5a\x5b\x5c\x5d\x5e\x5f\x60", size);
}

/* The server side: a TLS server on 127.0.0.1, port 0, that records what
 * it announces and echoes each message. */
typedef struct
{
  NpPipeServer *server;
  GPtrArray    *connected;         /* NpPipeConnection */
  GPtrArray    *disconnected;      /* NpPipeConnection */
  GPtrArray    *disconnect_errors; /* GError, or NULL for a clean close */
  GPtrArray    *received;          /* GBytes */
  gboolean      echo;
} Fixture;

static void
on_client_connected (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     Fixture          *f)
{
  g_ptr_array_add (f->connected, g_object_ref (connection));
}

static void
on_client_disconnected (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        Fixture          *f)
{
  g_ptr_array_add (f->disconnected, g_object_ref (connection));
  g_ptr_array_add (f->disconnect_errors, error != NULL ? g_error_copy (error) : NULL);
}

static void
on_message_received (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     GBytes           *message,
                     Fixture          *f)
{
  g_ptr_array_add (f->received, g_bytes_ref (message));

  if (f->echo)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_connection_send (connection, message, &error));
      g_assert_no_error (error);
    }
}

static gboolean
on_request_received (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     NpPipeRequest    *request,
                     Fixture          *f)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

/* A new server of @address with certificate @cert (none when NULL),
 * which lets anonymous clients in when @anonymous. Not started. */
static void
server_new (Fixture    *f,
            const char *address,
            const char *cert,
            gboolean    anonymous)
{
  g_assert_null (f->server);

  f->server = np_pipe_server_new (address);
  if (cert != NULL)
    {
      g_autoptr(GTlsCertificate) certificate = load_cert (cert);

      g_object_set (f->server, "tls-certificate", certificate, NULL);
    }
  g_object_set (f->server, "allow-anonymous", anonymous, NULL);

  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_client_connected), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_client_disconnected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message_received), f);
  g_signal_connect (f->server, "request-received", G_CALLBACK (on_request_received), f);
}

/* Starts the server; returns its name, with the port it got. */
static const char *
server_start (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  const char *name;

  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);

  name = np_pipe_server_get_name (f->server);
  g_assert_true (g_str_has_prefix (name, "tcp:127.0.0.1:"));
  g_assert_false (g_str_equal (name, "tcp:127.0.0.1:0"));

  return name;
}

/* The usual server: certificate @cert, anonymous clients let in. */
static const char *
server_run (Fixture    *f,
            const char *cert)
{
  server_new (f, "tcp:127.0.0.1:0", cert, TRUE);
  return server_start (f);
}

static guint16
server_port (Fixture *f)
{
  g_autoptr(GSocketAddress) address = (GSocketAddress *) np_pipe_server_get_address (f->server);

  g_assert_true (G_IS_INET_SOCKET_ADDRESS (address));
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
}

/* Stops and drops the server, once every client it announced is gone. */
static void
server_drop (Fixture *f)
{
  if (f->server == NULL)
    return;

  np_pipe_server_stop (f->server);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->disconnected->len >= f->connected->len);
  g_assert_cmpuint (f->disconnected->len, ==, f->connected->len);

  g_object_add_weak_pointer (G_OBJECT (f->server), (gpointer *) &f->server);
  g_object_unref (f->server);
  g_assert_null (f->server);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->connected = g_ptr_array_new_with_free_func (g_object_unref);
  f->disconnected = g_ptr_array_new_with_free_func (g_object_unref);
  f->disconnect_errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  f->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  f->echo = TRUE;
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  server_drop (f);
  g_ptr_array_unref (f->connected);
  g_ptr_array_unref (f->disconnected);
  g_ptr_array_unref (f->disconnect_errors);
  g_ptr_array_unref (f->received);
}

/* The client side: a client and what it received. */
typedef struct
{
  NpPipeClient    *client;
  GPtrArray       *received;          /* GBytes */
  GPtrArray       *disconnect_errors; /* GError, or NULL */
  guint            n_accepted;
  /* What accept-certificate was shown, when asked to record it. */
  guint            n_asked;
  gboolean         accept;
  GTlsCertificate *peer_cert;
  GTlsCertificateFlags peer_errors;
} TestClient;

static void
test_client_free (TestClient *tc)
{
  g_clear_object (&tc->client);
  g_ptr_array_unref (tc->received);
  g_ptr_array_unref (tc->disconnect_errors);
  g_clear_object (&tc->peer_cert);
  g_free (tc);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestClient, test_client_free)

static void
test_client_message_cb (NpPipeClient *client,
                        GBytes       *message,
                        TestClient   *tc)
{
  g_ptr_array_add (tc->received, g_bytes_ref (message));
}

static void
test_client_disconnected_cb (NpPipeClient *client,
                             GError       *error,
                             TestClient   *tc)
{
  g_ptr_array_add (tc->disconnect_errors, error != NULL ? g_error_copy (error) : NULL);
}

static void
test_client_accepted_cb (NpPipeClient *client,
                         TestClient   *tc)
{
  tc->n_accepted++;
}

static gboolean
test_client_accept_certificate_cb (NpPipeClient         *client,
                                   GTlsCertificate      *peer_cert,
                                   GTlsCertificateFlags  errors,
                                   TestClient           *tc)
{
  tc->n_asked++;
  g_set_object (&tc->peer_cert, peer_cert);
  tc->peer_errors = errors;

  return tc->accept;
}

/* A client of @name that trusts authority @ca (the system's when NULL). */
static TestClient *
test_client_new (const char *name,
                 const char *ca)
{
  TestClient *tc = g_new0 (TestClient, 1);

  tc->client = np_pipe_client_new (name);
  tc->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  tc->disconnect_errors = g_ptr_array_new_with_free_func (np_test_error_free0);
  if (ca != NULL)
    {
      g_autoptr(GTlsDatabase) database = load_database (ca);

      g_object_set (tc->client, "tls-database", database, NULL);
    }

  g_signal_connect (tc->client, "message-received", G_CALLBACK (test_client_message_cb), tc);
  g_signal_connect (tc->client, "disconnected", G_CALLBACK (test_client_disconnected_cb), tc);
  g_signal_connect (tc->client, "accepted", G_CALLBACK (test_client_accepted_cb), tc);

  return tc;
}

/* Records what accept-certificate is shown, and answers @accept. */
static void
test_client_watch_certificate (TestClient *tc,
                               gboolean    accept)
{
  tc->accept = accept;
  g_signal_connect (tc->client, "accept-certificate",
                    G_CALLBACK (test_client_accept_certificate_cb), tc);
}

static void
test_client_set_cert (TestClient *tc,
                      const char *cert)
{
  g_autoptr(GTlsCertificate) certificate = load_cert (cert);

  g_object_set (tc->client, "tls-certificate", certificate, NULL);
}

/* Connects asynchronously, the server's loop running meanwhile. */
static gboolean
test_client_connect (TestClient  *tc,
                     GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  np_pipe_client_connect_async (tc->client, NULL, np_test_async_done_cb, &result);
  NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);

  return np_pipe_client_connect_finish (tc->client, result, error);
}

static void
test_client_connect_ok (TestClient *tc)
{
  g_autoptr(GError) error = NULL;

  gboolean ok = test_client_connect (tc, &error);

  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_true (np_pipe_client_get_connected (tc->client));
}

/* Fails the connect; returns why. */
static GError *
test_client_connect_refused (TestClient *tc)
{
  GError *error = NULL;

  g_assert_false (test_client_connect (tc, &error));
  g_assert_nonnull (error);
  g_assert_false (np_pipe_client_get_connected (tc->client));
  g_test_message ("refused: %s (%s %d)", error->message,
                  g_quark_to_string (error->domain), error->code);

  return error;
}

/* Sends @message and waits for the server's echo, which must be it. */
static void
test_client_round_trip (TestClient *tc,
                        GBytes     *message)
{
  g_autoptr(GError) error = NULL;
  guint n = tc->received->len;

  g_assert_true (np_pipe_client_send (tc->client, message, &error));
  g_assert_no_error (error);
  NP_TEST_WAIT_FOR (WAIT_SEC, tc->received->len == n + 1);
  g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, n), message));
}

static void
test_client_echo (TestClient *tc,
                  guint32     seq)
{
  g_autoptr(GBytes) message = np_test_message_new (1, seq, 100);

  test_client_round_trip (tc, message);
}

/* A request answered with its own message. */
static void
test_client_request (TestClient *tc,
                     GBytes     *request)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;

  np_pipe_client_request_async (tc->client, request, NULL, np_test_async_done_cb, &result);
  NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);
  reply = np_pipe_client_request_finish (tc->client, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (reply, request));
}

/* A TCP socket to @port of 127.0.0.1 that speaks no TLS. */
static GSocket *
raw_tcp_connect (guint16 port)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, port);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);

  return socket;
}

/* Writes what the socket takes of @data now: the server may have closed
 * on us already. */
static void
raw_write_some (GSocket      *socket,
                const guint8 *data,
                gsize         len)
{
  g_socket_send (socket, (const char *) data, len, NULL, NULL);
}

/* Reads and drops what comes until the server closes the connection:
 * the end of the stream, or a reset. */
static void
raw_wait_closed (GSocket *socket)
{
  GSource *watchdog = np_test_watchdog_new (WAIT_SEC, "the server to close a raw peer");

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      guint8 buf[4096];
      gssize n = g_socket_receive (socket, (char *) buf, sizeof buf, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          np_test_iterate_until_ready (socket, G_IO_IN);
          continue;
        }
      if (n == 0 || error != NULL)
        break;
    }

  np_test_watchdog_free (watchdog);
}

/* A free port of 127.0.0.1, for a server that must start twice on the
 * same one. */
static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  guint16 port;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, TRUE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (socket, NULL);

  return port;
}

/* A peer that speaks TLS by hand, in a thread of its own, with blocking
 * calls: ALPN "np", the certificate checked against the tests' CA. */
typedef enum
{
  PEER_FRAME_TOO_LARGE,
  PEER_UNKNOWN_FRAME,
  PEER_GARBAGE_AFTER_HELLO,
  PEER_CUT_RECORD,
  PEER_NO_ALPN,
} PeerAttack;

typedef struct
{
  guint16      port;
  PeerAttack   attack;
  GTlsDatabase *database;

  /* What it saw, once done is set. */
  gint         done;
  gboolean     handshake_ok;
  char        *alpn;
  gboolean     got_hello;
  gboolean     got_goodbye;
  guint32      goodbye_code;
  char        *error_message;
} Peer;

static gboolean
stream_read_exactly (GInputStream *in,
                     guint8       *buf,
                     gsize         len)
{
  gsize n = 0;

  return g_input_stream_read_all (in, buf, len, &n, NULL, NULL) && n == len;
}

static gboolean
stream_write (GOutputStream *out,
              const guint8  *data,
              gsize          len)
{
  return g_output_stream_write_all (out, data, len, NULL, NULL, NULL);
}

static gboolean
stream_write_bytes (GOutputStream *out,
                    GBytes        *bytes)
{
  return stream_write (out, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

/* Reads frames until the end; records the goodbye's code. */
static void
peer_read_to_end (Peer         *peer,
                  GInputStream *in)
{
  for (;;)
    {
      guint8 header[NP_FRAME_HEADER_SIZE];
      g_autofree guint8 *payload = NULL;
      NpFrameHeader decoded;
      g_autoptr(GError) error = NULL;

      if (!stream_read_exactly (in, header, sizeof header))
        return;
      if (!np_frame_header_decode (header, NP_PROTOCOL_VERSION, G_MAXUINT32, &decoded, &error))
        return;
      payload = g_malloc (MAX (decoded.length, 1));
      if (!stream_read_exactly (in, payload, decoded.length))
        return;
      if (decoded.type == NP_FRAME_GOODBYE)
        {
          g_autoptr(GError) goodbye = np_goodbye_decode (payload, decoded.length);

          if (goodbye != NULL && goodbye->domain == NP_PIPE_ERROR)
            {
              peer->got_goodbye = TRUE;
              peer->goodbye_code = goodbye->code;
            }
        }
    }
}

/* Reads the server's hello and settings: the peer is a client then. */
static gboolean
peer_read_handshake (GInputStream *in)
{
  guint8 hello[NP_HELLO_SIZE];
  guint8 header[NP_FRAME_HEADER_SIZE];
  guint8 settings[NP_CONTROL_PAYLOAD_MAX];
  NpHello decoded_hello;
  NpFrameHeader decoded;

  if (!stream_read_exactly (in, hello, sizeof hello) ||
      !np_hello_decode (hello, &decoded_hello, NULL) ||
      !stream_read_exactly (in, header, sizeof header) ||
      !np_frame_header_decode (header, NP_PROTOCOL_VERSION, G_MAXUINT32, &decoded, NULL) ||
      decoded.type != NP_FRAME_SETTINGS ||
      decoded.length > sizeof settings)
    return FALSE;

  return stream_read_exactly (in, settings, decoded.length);
}

static gpointer
peer_thread (gpointer data)
{
  static const char * const protocols[] = { "np", NULL };
  Peer *peer = data;
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GBytes) settings = np_test_settings (0);
  g_autoptr(GError) error = NULL;
  GInputStream *in;
  GOutputStream *out;
  guint8 hello[NP_HELLO_SIZE];

  connection = g_socket_client_connect_to_host (socket_client, "127.0.0.1", peer->port, NULL, &error);
  if (connection == NULL)
    goto out;

  identity = g_network_address_new ("127.0.0.1", peer->port);
  tls = g_tls_client_connection_new (G_IO_STREAM (connection), identity, &error);
  if (tls == NULL)
    goto out;
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), peer->database);
  if (peer->attack != PEER_NO_ALPN)
    g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (tls), protocols);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    goto out;
  peer->handshake_ok = TRUE;
  peer->alpn = g_strdup (g_tls_connection_get_negotiated_protocol (G_TLS_CONNECTION (tls)));

  in = g_io_stream_get_input_stream (tls);
  out = g_io_stream_get_output_stream (tls);

  /* Without ALPN the server drops the peer after the TLS handshake:
   * read the socket to its end, under TLS (a session ticket may come
   * first). Reading the TLS stream of a connection the server reset can
   * make glib-networking lose a GError of its own. */
  if (peer->attack == PEER_NO_ALPN)
    {
      GInputStream *raw = g_io_stream_get_input_stream (G_IO_STREAM (connection));
      guint8 sink[4096];

      while (g_input_stream_read (raw, sink, sizeof sink, NULL, NULL) > 0)
        ;
      goto out;
    }

  /* The whole handshake of the newest version: hello and settings. */
  np_test_hello (hello, NP_PROTOCOL_VERSION, 1024 * 1024);
  if (!stream_write (out, hello, sizeof hello) || !stream_write_bytes (out, settings))
    goto out;
  peer->got_hello = peer_read_handshake (in);
  if (!peer->got_hello || peer->attack == PEER_NO_ALPN)
    goto out;

  switch (peer->attack)
    {
    case PEER_FRAME_TOO_LARGE:
      {
        guint8 header[NP_FRAME_HEADER_SIZE];

        np_frame_header_encode (header, NP_FRAME_MESSAGE, G_MAXUINT32);
        stream_write (out, header, sizeof header);
        peer_read_to_end (peer, in);
      }
      break;

    case PEER_UNKNOWN_FRAME:
      {
        guint8 frame[NP_FRAME_HEADER_SIZE + 4];

        np_frame_header_encode (frame, (NpFrameType) 200, 4);
        memcpy (frame + NP_FRAME_HEADER_SIZE, "what", 4);
        stream_write (out, frame, sizeof frame);
        peer_read_to_end (peer, in);
      }
      break;

    case PEER_GARBAGE_AFTER_HELLO:
      {
        /* A length, then reserved bytes that are not zero. */
        static const guint8 garbage[] = { 0, 0, 0, 4, 0, 0xde, 0xad, 0xbe, 'j', 'u', 'n', 'k' };

        stream_write (out, garbage, sizeof garbage);
        peer_read_to_end (peer, in);
      }
      break;

    case PEER_NO_ALPN:
      g_assert_not_reached ();

    case PEER_CUT_RECORD:
      {
        /* The header of an application data record of 256 bytes, then
         * 100 of them, written under the TLS layer; then the end. */
        GSocket *socket = g_socket_connection_get_socket (connection);
        guint8 record[5 + 100] = { 0x17, 0x03, 0x03, 0x01, 0x00 };

        for (gsize i = 5; i < sizeof record; i++)
          record[i] = (guint8) (i * 37);
        g_socket_set_blocking (socket, TRUE);
        g_socket_send (socket, (const char *) record, sizeof record, NULL, NULL);
        g_socket_shutdown (socket, FALSE, TRUE, NULL);
        /* Waits for the server to close its end. */
        {
          guint8 byte;

          while (g_socket_receive (socket, (char *) &byte, 1, NULL, NULL) > 0)
            ;
        }
      }
      break;
    }

out:
  if (error != NULL)
    peer->error_message = g_strdup (error->message);
  g_atomic_int_set (&peer->done, TRUE);
  g_main_context_wakeup (NULL);

  return NULL;
}

/* Runs a peer to its end, the main loop serving meanwhile. */
static void
peer_run (Peer *peer)
{
  g_autoptr(GThread) thread = NULL;

  thread = g_thread_new ("tls-peer", peer_thread, peer);
  NP_TEST_WAIT_FOR (WAIT_SEC, g_atomic_int_get (&peer->done));
  g_thread_join (g_steal_pointer (&thread));
  if (peer->error_message != NULL)
    g_test_message ("TLS peer: %s", peer->error_message);
}

static void
peer_clear (Peer *peer)
{
  g_clear_object (&peer->database);
  g_clear_pointer (&peer->alpn, g_free);
  g_clear_pointer (&peer->error_message, g_free);
}

static gboolean
client_echo_request_cb (NpPipeClient  *client,
                        NpPipeRequest *request,
                        gpointer       user_data)
{
  np_pipe_request_reply (request, np_pipe_request_get_message (request));
  return TRUE;
}

/* Messages of 0 B to 8 MiB each way, and requests each way, over TLS. */
static void
test_round_trip (Fixture       *f,
                 gconstpointer  data)
{
  static const gsize sizes[] = { 0, 1, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024 };
  g_autoptr(TestClient) tc = NULL;
  const char *name;

  name = server_run (f, "server");
  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GBytes) message = message_new (1, i, sizes[i]);

      /* There through the client, back through the server's echo. */
      test_client_round_trip (tc, message);
      g_assert_cmpuint (f->received->len, ==, i + 1);
      g_assert_true (g_bytes_equal (g_ptr_array_index (f->received, i), message));
    }

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GBytes) request = message_new (2, i, sizes[i]);

      test_client_request (tc, request);
    }

  /* Requests from the server, answered by the client. */
  g_signal_connect (tc->client, "request-received", G_CALLBACK (client_echo_request_cb), NULL);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      NpPipeConnection *connection = g_ptr_array_index (f->connected, 0);
      g_autoptr(GBytes) request = message_new (3, i, sizes[i]);
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;

      np_pipe_connection_request_async (connection, request, NULL, np_test_async_done_cb, &result);
      NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);
      reply = np_pipe_connection_request_finish (connection, result, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (reply, request));
    }

  g_assert_true (np_pipe_client_get_connected (tc->client));
  g_assert_cmpuint (tc->disconnect_errors->len, ==, 0);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *count)
{
  (*count)++;
}

/* A TCP server says where it listens; a TCP peer has an address and no
 * credentials. */
static void
test_addresses (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autofree char *expected = NULL;
  NpPipeConnection *connection;
  const char *name;
  guint notified = 0;

  server_new (f, "tcp:127.0.0.1:0", "server", TRUE);
  g_signal_connect (f->server, "notify::name", G_CALLBACK (count_notify_cb), &notified);
  name = server_start (f);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_null (np_pipe_server_get_path (f->server));

  expected = g_strdup_printf ("tcp:127.0.0.1:%u", server_port (f));
  g_assert_cmpstr (name, ==, expected);

  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  connection = g_ptr_array_index (f->connected, 0);

  g_assert_cmpint (np_pipe_connection_get_peer_pid (connection), ==, -1);
  g_assert_cmpuint (np_pipe_connection_get_peer_uid (connection), ==, (guint) -1);
  g_assert_cmpuint (np_pipe_connection_get_peer_gid (connection), ==, (guint) -1);
  remote = np_pipe_connection_get_remote_address (connection);
  g_assert_true (G_IS_INET_SOCKET_ADDRESS (remote));
  g_assert_true (g_inet_address_equal (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)),
                                       loopback));
  /* No client certificate was asked for. */
  g_assert_null (np_pipe_connection_get_peer_certificate (connection));

  test_client_echo (tc, 0);
}

/* Over IPv6 loopback, where there is one: the certificate names ::1. */
static void
test_ipv6 (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GSocket) probe = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(GError) error = NULL;
  const char *name;

  probe = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  if (probe == NULL || !g_socket_bind (probe, any, TRUE, &error))
    {
      g_test_skip ("No IPv6 loopback here");
      return;
    }
  g_socket_close (probe, NULL);

  server_new (f, "tcp:[::1]:0", "server", TRUE);
  g_assert_true (np_pipe_server_start (f->server, &error));
  g_assert_no_error (error);
  name = np_pipe_server_get_name (f->server);
  g_assert_true (g_str_has_prefix (name, "tcp:[::1]:"));
  g_assert_false (g_str_equal (name, "tcp:[::1]:0"));
  address = (GSocketAddress *) np_pipe_server_get_address (f->server);
  g_assert_true (g_inet_address_equal (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)),
                                       loopback));

  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  test_client_echo (tc, 0);
}

/* Connects a client of @ca to a server of @cert and checks it is
 * refused with a TLS error about the certificate, then once more with
 * accept-certificate refusing too, to see why; returns the flags it was
 * shown. The server announces no client. */
static GTlsCertificateFlags
assert_certificate_refused (Fixture    *f,
                            const char *cert,
                            const char *ca)
{
  g_autoptr(GTlsCertificate) server_cert = load_cert (cert);
  g_autoptr(TestClient) plain = NULL;
  g_autoptr(TestClient) asking = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error2 = NULL;
  const char *name = server_run (f, cert);

  plain = test_client_new (name, ca);
  error = test_client_connect_refused (plain);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_nonnull (strstr (error->message, name));
  g_assert_nonnull (strstr (error->message, "certificate"));

  asking = test_client_new (name, ca);
  test_client_watch_certificate (asking, FALSE);
  error2 = test_client_connect_refused (asking);
  g_assert_error (error2, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (asking->n_asked, >=, 1);
  g_assert_true (g_tls_certificate_is_same (asking->peer_cert, server_cert));

  g_assert_cmpuint (f->connected->len, ==, 0);
  g_assert_true (np_pipe_server_is_running (f->server));

  return asking->peer_errors;
}

static void
test_wrong_ca (Fixture       *f,
               gconstpointer  data)
{
  g_assert_true (assert_certificate_refused (f, "foreign", "ca") & G_TLS_CERTIFICATE_UNKNOWN_CA);
}

static void
test_expired (Fixture       *f,
              gconstpointer  data)
{
  g_assert_true (assert_certificate_refused (f, "expired", "ca") & G_TLS_CERTIFICATE_EXPIRED);
}

/* A certificate for other.invalid, served on 127.0.0.1. */
static void
test_wrong_host (Fixture       *f,
                 gconstpointer  data)
{
  g_assert_true (assert_certificate_refused (f, "other-name", "ca") & G_TLS_CERTIFICATE_BAD_IDENTITY);
}

/* A valid certificate is refused when it is not the pinned one. */
static void
test_pin_mismatch (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GTlsCertificate) other = NULL;
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;
  const char *name;

  other = load_cert ("foreign");
  pin = fingerprint (other, FALSE);
  name = server_run (f, "server");

  tc = test_client_new (name, "ca");
  g_object_set (tc->client, "tls-pin", pin, NULL);
  error = test_client_connect_refused (tc);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "does not match the pinned fingerprint"));
  g_assert_cmpuint (f->connected->len, ==, 0);
}

/* A self-signed certificate is accepted when pinned, in either spelling
 * of its fingerprint. */
static void
test_pin_match (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GTlsCertificate) self_signed = NULL;
  g_autoptr(TestClient) plain = NULL;
  g_autoptr(TestClient) colons = NULL;
  g_autoptr(TestClient) unpinned = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;
  g_autofree char *pin_colons = NULL;
  const char *name;

  self_signed = load_cert ("self-signed");
  pin = fingerprint (self_signed, FALSE);
  pin_colons = fingerprint (self_signed, TRUE);
  name = server_run (f, "self-signed");

  /* Not pinned, it is refused. */
  unpinned = test_client_new (name, "ca");
  error = test_client_connect_refused (unpinned);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  plain = test_client_new (name, NULL);
  g_object_set (plain->client, "tls-pin", pin, NULL);
  test_client_connect_ok (plain);
  test_client_echo (plain, 0);

  colons = test_client_new (name, "ca");
  g_object_set (colons->client, "tls-pin", pin_colons, NULL);
  test_client_connect_ok (colons);
  test_client_echo (colons, 1);

  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 2);
}

/* accept-certificate decides for a certificate that fails validation. */
static void
test_accept_certificate (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GTlsCertificate) foreign = NULL;
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(TestClient) trusting = NULL;
  const char *name;

  foreign = load_cert ("foreign");
  name = server_run (f, "foreign");

  tc = test_client_new (name, "ca");
  test_client_watch_certificate (tc, TRUE);
  test_client_connect_ok (tc);
  g_assert_cmpuint (tc->n_asked, >=, 1);
  g_assert_true (tc->peer_errors & G_TLS_CERTIFICATE_UNKNOWN_CA);
  g_assert_true (g_tls_certificate_is_same (tc->peer_cert, foreign));
  test_client_echo (tc, 0);

  /* Not asked about a certificate that validates. */
  trusting = test_client_new (name, "other-ca");
  test_client_watch_certificate (trusting, FALSE);
  test_client_connect_ok (trusting);
  g_assert_cmpuint (trusting->n_asked, ==, 0);
  test_client_echo (trusting, 1);
}

/* A server that requires client certificates refuses a client without
 * one, or with one its authorities did not sign (for the right name all
 * the same), and knows the certificate of a client with a good one. */
static void
test_client_cert_required (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GTlsCertificate) client_cert = NULL;
  g_autoptr(TestClient) none = NULL;
  g_autoptr(TestClient) foreign = NULL;
  g_autoptr(TestClient) with = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_foreign = NULL;
  NpPipeConnection *connection;
  const char *name;

  database = load_database ("ca");
  client_cert = load_cert ("client");
  server_new (f, "tcp:127.0.0.1:0", "server", FALSE);
  g_object_set (f->server,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED,
                "tls-database", database,
                NULL);
  name = server_start (f);

  /* In TLS 1.3 the client's handshake is over before the server has
   * judged its certificate: the client learns it from glib-networking
   * (when it reads the server's alert) or from the connection closing
   * before the server's hello, and the error says so either way. */
  none = test_client_new (name, "ca");
  error = test_client_connect_refused (none);
  if (!g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED))
    {
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
      g_assert_nonnull (strstr (error->message, "certificate"));
    }
  g_assert_cmpuint (f->connected->len, ==, 0);

  foreign = test_client_new (name, "ca");
  test_client_set_cert (foreign, "foreign-client");
  /* The client only learns that the server closed the connection. */
  error_foreign = test_client_connect_refused (foreign);
  g_assert_cmpuint (f->connected->len, ==, 0);

  with = test_client_new (name, "ca");
  test_client_set_cert (with, "client");
  test_client_connect_ok (with);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  connection = g_ptr_array_index (f->connected, 0);
  g_assert_true (g_tls_certificate_is_same (np_pipe_connection_get_peer_certificate (connection),
                                            client_cert));
  g_assert_cmpuint (np_pipe_connection_get_peer_certificate_errors (connection), ==, 0);
  test_client_echo (with, 0);
}

typedef struct
{
  guint n_asked;
  guint n_without_cert;
} Authorizer;

/* Lets in np-test-client alone. */
static gboolean
authorize_by_cn_cb (NpPipeServer     *server,
                    NpPipeConnection *connection,
                    Authorizer       *auth)
{
  GTlsCertificate *cert = np_pipe_connection_get_peer_certificate (connection);
  g_autofree char *subject = NULL;

  auth->n_asked++;
  if (cert == NULL)
    {
      auth->n_without_cert++;
      return FALSE;
    }

  g_assert_cmpuint (np_pipe_connection_get_peer_certificate_errors (connection), ==, 0);
  subject = g_tls_certificate_get_subject_name (cert);
  return subject != NULL && strstr (subject, "CN=np-test-client") != NULL;
}

/* authorize-peer refuses a client by its certificate: one the CA signed
 * but for another name, and a client with none. With it connected, a
 * server that only requests certificates starts. */
static void
test_authorize_by_certificate (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(TestClient) intruder = NULL;
  g_autoptr(TestClient) none = NULL;
  g_autoptr(TestClient) good = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_none = NULL;
  Authorizer auth = { 0, };
  const char *name;

  database = load_database ("ca");
  server_new (f, "tcp:127.0.0.1:0", "server", FALSE);
  g_object_set (f->server,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUESTED,
                "tls-database", database,
                NULL);
  g_signal_connect (f->server, "authorize-peer", G_CALLBACK (authorize_by_cn_cb), &auth);
  name = server_start (f);

  intruder = test_client_new (name, "ca");
  test_client_set_cert (intruder, "intruder");
  error = test_client_connect_refused (intruder);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (auth.n_asked, ==, 1);

  none = test_client_new (name, "ca");
  error_none = test_client_connect_refused (none);
  g_assert_error (error_none, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (auth.n_asked, ==, 2);
  g_assert_cmpuint (auth.n_without_cert, ==, 1);
  g_assert_cmpuint (f->connected->len, ==, 0);

  good = test_client_new (name, "ca");
  test_client_set_cert (good, "client");
  test_client_connect_ok (good);
  g_assert_cmpuint (auth.n_asked, ==, 3);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  test_client_echo (good, 0);
}

static gboolean
authorize_loopback_cb (NpPipeServer     *server,
                       NpPipeConnection *connection,
                       Authorizer       *auth)
{
  g_autoptr(GSocketAddress) remote = np_pipe_connection_get_remote_address (connection);

  auth->n_asked++;
  g_assert_null (np_pipe_connection_get_peer_certificate (connection));
  g_assert_true (G_IS_INET_SOCKET_ADDRESS (remote));

  return g_inet_address_get_is_loopback (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
}

static gboolean
refuse_cb (NpPipeServer     *server,
           NpPipeConnection *connection,
           Authorizer       *auth)
{
  auth->n_asked++;
  return FALSE;
}

/* Without client certificates, authorize-peer is enough for a server to
 * start, and decides: here by the peer's address, then by refusing. */
static void
test_authorize_peer (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TestClient) first = NULL;
  g_autoptr(TestClient) second = NULL;
  g_autoptr(GError) error = NULL;
  Authorizer auth = { 0, };
  const char *name;

  server_new (f, "tcp:127.0.0.1:0", "server", FALSE);
  g_signal_connect (f->server, "authorize-peer", G_CALLBACK (authorize_loopback_cb), &auth);
  name = server_start (f);

  first = test_client_new (name, "ca");
  test_client_connect_ok (first);
  g_assert_cmpuint (auth.n_asked, ==, 1);
  test_client_echo (first, 0);

  g_signal_handlers_disconnect_by_func (f->server, authorize_loopback_cb, &auth);
  g_signal_connect (f->server, "authorize-peer", G_CALLBACK (refuse_cb), &auth);
  second = test_client_new (name, "ca");
  error = test_client_connect_refused (second);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (auth.n_asked, ==, 2);
  g_assert_cmpuint (f->connected->len, ==, 1);
}

/* A TCP server that would let anyone in does not start unless told to. */
static void
test_anonymous_refused (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_requested = NULL;

  server_new (f, "tcp:127.0.0.1:0", "server", FALSE);
  g_assert_false (np_pipe_server_start (f->server, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_test_message ("refused: %s", error->message);
  g_assert_false (np_pipe_server_is_running (f->server));

  /* Certificates requested is not enough. */
  database = load_database ("ca");
  g_object_set (f->server,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUESTED,
                "tls-database", database,
                NULL);
  g_assert_false (np_pipe_server_start (f->server, &error_requested));
  g_assert_error (error_requested, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_false (np_pipe_server_is_running (f->server));
}

static void
test_allow_anonymous (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  const char *name;

  server_new (f, "tcp:127.0.0.1:0", "server", FALSE);
  g_object_set (f->server, "allow-anonymous", TRUE, NULL);
  name = server_start (f);
  g_assert_true (np_pipe_server_is_running (f->server));

  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  test_client_echo (tc, 0);
}

/* What a TCP server needs before it starts: a certificate, and the
 * authorities of the client certificates it requires; plain text only
 * on loopback. */
static void
test_start_checks (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GTlsCertificate) certificate = load_cert ("server");
  g_autofree char *keyless_file = cert_file ("server");
  g_autoptr(GTlsCertificate) keyless = NULL;
  g_autoptr(NpPipeServer) any = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_key = NULL;
  g_autoptr(GError) error_database = NULL;
  g_autoptr(GError) error_plaintext = NULL;

  server_new (f, "tcp:127.0.0.1:0", NULL, TRUE);
  g_assert_false (np_pipe_server_start (f->server, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED);
  g_assert_nonnull (strstr (error->message, "tls-certificate"));

  /* A certificate loaded without its key: every handshake would fail. */
  keyless = g_tls_certificate_new_from_file (keyless_file, &error_key);
  g_assert_no_error (error_key);
  g_object_set (f->server, "tls-certificate", keyless, NULL);
  g_assert_false (np_pipe_server_start (f->server, &error_key));
  g_assert_error (error_key, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED);
  g_assert_nonnull (strstr (error_key->message, "private key"));
  g_assert_false (np_pipe_server_is_running (f->server));

  g_object_set (f->server,
                "tls-certificate", certificate,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED,
                NULL);
  g_assert_false (np_pipe_server_start (f->server, &error_database));
  g_assert_error (error_database, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error_database->message, "tls-database"));
  g_assert_false (np_pipe_server_is_running (f->server));

  any = np_pipe_server_new ("tcp:0.0.0.0:0");
  g_object_set (any, "insecure-plaintext", TRUE, "allow-anonymous", TRUE, NULL);
  g_assert_false (np_pipe_server_start (any, &error_plaintext));
  g_assert_error (error_plaintext, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error_plaintext->message, "loopback"));
  g_assert_false (np_pipe_server_is_running (any));
}

/* Plain text on loopback, both ends agreeing; an end that speaks TLS to
 * one that does not gets nowhere. */
static void
test_insecure_plaintext (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(TestClient) plain = NULL;
  g_autoptr(TestClient) tls = NULL;
  g_autoptr(GBytes) large = np_test_message_new (1, 7, 1024 * 1024);
  g_autoptr(GError) error = NULL;
  const char *name;

  server_new (f, "tcp:127.0.0.1:0", NULL, TRUE);
  g_object_set (f->server, "insecure-plaintext", TRUE, NULL);
  name = server_start (f);

  plain = test_client_new (name, NULL);
  g_object_set (plain->client, "insecure-plaintext", TRUE, NULL);
  test_client_connect_ok (plain);
  test_client_echo (plain, 0);
  test_client_round_trip (plain, large);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  g_assert_null (np_pipe_connection_get_peer_certificate (g_ptr_array_index (f->connected, 0)));

  tls = test_client_new (name, "ca");
  error = test_client_connect_refused (tls);
  g_assert_true (error->domain == G_TLS_ERROR);
  g_assert_cmpuint (f->connected->len, ==, 1);
  test_client_echo (plain, 1);
}

/* A plain-text client gets nowhere with a TLS server. */
static void
test_plaintext_to_tls (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(TestClient) plain = NULL;
  g_autoptr(TestClient) tls = NULL;
  g_autoptr(GError) error = NULL;
  const char *name;

  name = server_run (f, "server");

  plain = test_client_new (name, NULL);
  g_object_set (plain->client, "insecure-plaintext", TRUE, NULL);
  error = test_client_connect_refused (plain);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL);
  g_assert_cmpuint (f->connected->len, ==, 0);

  tls = test_client_new (name, "ca");
  test_client_connect_ok (tls);
  test_client_echo (tls, 0);
}

/* A server made for a GInetSocketAddress, a client for a
 * GSocketConnectable of the host name the certificate names. */
static void
test_for_address (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GTlsCertificate) certificate = load_cert ("server");
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketConnectable) localhost = NULL;
  g_autoptr(GTlsDatabase) database = load_database ("ca");
  g_autoptr(NpPipeClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  const char *name;
  gboolean ok;

  f->server = np_pipe_server_new_for_address (G_INET_SOCKET_ADDRESS (address));
  g_object_set (f->server, "tls-certificate", certificate, "allow-anonymous", TRUE, NULL);
  g_signal_connect (f->server, "client-connected", G_CALLBACK (on_client_connected), f);
  g_signal_connect (f->server, "client-disconnected", G_CALLBACK (on_client_disconnected), f);
  g_signal_connect (f->server, "message-received", G_CALLBACK (on_message_received), f);
  name = server_start (f);

  localhost = g_network_address_new ("localhost", server_port (f));
  client = np_pipe_client_new_for_connectable (localhost);
  g_object_set (client, "tls-database", database, NULL);
  np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
  NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);
  ok = np_pipe_client_connect_finish (client, result, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  g_assert_true (np_pipe_client_send_data (client, (const guint8 *) name, strlen (name), NULL));
  NP_TEST_WAIT_FOR (WAIT_SEC, f->received->len == 1);
  g_assert_cmpmem (g_bytes_get_data (g_ptr_array_index (f->received, 0), NULL),
                   g_bytes_get_size (g_ptr_array_index (f->received, 0)), name, strlen (name));
}

/* Peers that stall in the TLS handshake, saying nothing or half a
 * ClientHello, are dropped at the handshake timeout; a proper client
 * is served meanwhile. */
static void
test_handshake_stall (Fixture       *f,
                      gconstpointer  data)
{
  /* A record of 512 bytes announced, 11 sent. */
  static const guint8 half_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
  g_autoptr(GSocket) silent = NULL;
  g_autoptr(GSocket) half = NULL;
  g_autoptr(TestClient) tc = NULL;
  gint64 start;
  const char *name;

  server_new (f, "tcp:127.0.0.1:0", "server", TRUE);
  np_pipe_server_set_handshake_timeout (f->server, HANDSHAKE_TIMEOUT_MSEC);
  name = server_start (f);

  start = g_get_monotonic_time ();
  silent = raw_tcp_connect (server_port (f));
  half = raw_tcp_connect (server_port (f));
  raw_write_some (half, half_hello, sizeof half_hello);

  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  test_client_echo (tc, 0);

  raw_wait_closed (silent);
  raw_wait_closed (half);
  /* Not before the deadline: it is what dropped them. */
  g_assert_cmpint (g_get_monotonic_time () - start, >=, (HANDSHAKE_TIMEOUT_MSEC - 10) * G_TIME_SPAN_MILLISECOND);

  g_assert_cmpuint (f->connected->len, ==, 1);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
  g_assert_true (np_pipe_client_get_connected (tc->client));
  test_client_echo (tc, 1);
}

/* Bytes that are no TLS: the server drops that peer and serves others. */
static void
test_garbage_instead_of_tls (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(TestClient) before = NULL;
  g_autoptr(TestClient) after = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (4242);
  guint8 junk[4096];
  const char *name;

  name = server_run (f, "server");
  before = test_client_new (name, "ca");
  test_client_connect_ok (before);

  memcpy (junk, "GET / HTTP/1.1\r\n", 16);
  for (gsize i = 16; i < sizeof junk; i++)
    junk[i] = g_rand_int_range (rand, 0, 256);

  socket = raw_tcp_connect (server_port (f));
  raw_write_some (socket, junk, sizeof junk);
  raw_wait_closed (socket);

  g_assert_true (np_pipe_server_is_running (f->server));
  test_client_echo (before, 0);

  after = test_client_new (name, "ca");
  test_client_connect_ok (after);
  test_client_echo (after, 1);

  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 2);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
}

/* A client that ends its TCP connection in the middle of a TLS record
 * is dropped with an error, and no message comes of it. */
static void
test_cut_record (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TestClient) bystander = NULL;
  Peer peer = { 0, };
  const GError *error;
  const char *name;

  name = server_run (f, "server");
  bystander = test_client_new (name, "ca");
  test_client_connect_ok (bystander);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);

  peer.port = server_port (f);
  peer.attack = PEER_CUT_RECORD;
  peer.database = load_database ("ca");
  peer_run (&peer);
  g_assert_true (peer.handshake_ok);
  g_assert_true (peer.got_hello);

  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 2 && f->disconnected->len == 1);
  g_assert_true (g_ptr_array_index (f->disconnected, 0) == g_ptr_array_index (f->connected, 1));
  error = g_ptr_array_index (f->disconnect_errors, 0);
  g_assert_nonnull (error);
  g_test_message ("cut record: %s (%s %d)", error->message, g_quark_to_string (error->domain), error->code);
  g_assert_cmpuint (f->received->len, ==, 0);

  test_client_echo (bystander, 0);
  peer_clear (&peer);
}

/* A TLS client that does not say it speaks Np (no ALPN "np") is
 * dropped after the TLS handshake, before a word of Np. */
static void
test_no_alpn (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(TestClient) bystander = NULL;
  Peer peer = { 0, };
  const char *name;

  name = server_run (f, "server");
  bystander = test_client_new (name, "ca");
  test_client_connect_ok (bystander);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);

  peer.port = server_port (f);
  peer.attack = PEER_NO_ALPN;
  peer.database = load_database ("ca");
  peer_run (&peer);
  g_assert_null (peer.alpn);
  g_assert_false (peer.got_hello);

  g_assert_cmpuint (f->connected->len, ==, 1);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
  test_client_echo (bystander, 0);
  peer_clear (&peer);
}

typedef struct
{
  PeerAttack   attack;
  NpPipeError  code;
  const char  *says;
} Attack;

static const Attack attacks[] = {
  { PEER_FRAME_TOO_LARGE, NP_PIPE_ERROR_MESSAGE_TOO_LARGE, NULL },
  { PEER_UNKNOWN_FRAME, NP_PIPE_ERROR_PROTOCOL, "unknown frame type" },
  { PEER_GARBAGE_AFTER_HELLO, NP_PIPE_ERROR_PROTOCOL, "reserved header bytes" },
};

/* Frames a hostile client sends inside TLS: the server closes that
 * connection alone, with the error the same frames get over a pipe, and
 * tells the peer so. */
static void
test_hostile_frames (Fixture       *f,
                     gconstpointer  data)
{
  const Attack *attack = data;
  g_autoptr(TestClient) bystander = NULL;
  Peer peer = { 0, };
  const GError *error;
  const char *name;

  name = server_run (f, "server");
  bystander = test_client_new (name, "ca");
  test_client_connect_ok (bystander);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  test_client_echo (bystander, 0);

  peer.port = server_port (f);
  peer.attack = attack->attack;
  peer.database = load_database ("ca");
  peer_run (&peer);
  g_assert_true (peer.handshake_ok);
  g_assert_cmpstr (peer.alpn, ==, "np");
  g_assert_true (peer.got_hello);
  g_assert_true (peer.got_goodbye);
  g_assert_cmpuint (peer.goodbye_code, ==, attack->code);

  NP_TEST_WAIT_FOR (WAIT_SEC, f->disconnected->len == 1);
  g_assert_cmpuint (f->connected->len, ==, 2);
  g_assert_true (g_ptr_array_index (f->disconnected, 0) == g_ptr_array_index (f->connected, 1));
  error = g_ptr_array_index (f->disconnect_errors, 0);
  g_assert_error (error, NP_PIPE_ERROR, (gint) attack->code);
  if (attack->says != NULL)
    g_assert_nonnull (strstr (error->message, attack->says));

  g_assert_true (np_pipe_client_get_connected (bystander->client));
  test_client_echo (bystander, 1);
  g_assert_cmpuint (f->received->len, ==, 2);
  peer_clear (&peer);
}

static void
many_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  guint *n_done = user_data;
  g_autoptr(GError) error = NULL;

  gboolean ok = np_pipe_client_connect_finish (NP_PIPE_CLIENT (object), result, &error);

  g_assert_no_error (error);
  g_assert_true (ok);
  (*n_done)++;
}

/* 200 TLS clients at once: all connect, each makes a round trip. */
static void
test_many_clients (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) test_client_free);
  guint n_done = 0;
  guint n_echoed;
  const char *name;

  g_assert_cmpuint (np_test_raise_nofile (), >=, 4 * N_CLIENTS + 64);
  /* Both ends of every handshake run in this one process: what counts
   * here is that all are served, not how soon. */
  server_new (f, "tcp:127.0.0.1:0", "server", TRUE);
  np_pipe_server_set_handshake_timeout (f->server, WAIT_SEC * 1000);
  name = server_start (f);

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      TestClient *tc = test_client_new (name, "ca");

      g_ptr_array_add (clients, tc);
      np_pipe_client_set_connect_timeout (tc->client, WAIT_SEC * 1000);
      np_pipe_client_connect_async (tc->client, NULL, many_connected_cb, &n_done);
    }

  NP_TEST_WAIT_FOR (WAIT_SEC * 2, n_done == N_CLIENTS);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == N_CLIENTS);
  g_assert_cmpuint (np_pipe_server_get_n_connections (f->server), ==, N_CLIENTS);

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      TestClient *tc = g_ptr_array_index (clients, i);
      g_autoptr(GBytes) message = np_test_message_new (i, 0, np_test_small_size (i, 0));
      g_autoptr(GError) error = NULL;

      g_assert_true (np_pipe_client_send (tc->client, message, &error));
      g_assert_no_error (error);
    }

  do
    {
      n_echoed = 0;
      for (guint i = 0; i < N_CLIENTS; i++)
        n_echoed += ((TestClient *) g_ptr_array_index (clients, i))->received->len;
      if (n_echoed < N_CLIENTS)
        {
          GSource *watchdog = np_test_watchdog_new (WAIT_SEC, "every client's echo");

          g_main_context_iteration (NULL, TRUE);
          np_test_watchdog_free (watchdog);
        }
    }
  while (n_echoed < N_CLIENTS);

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      TestClient *tc = g_ptr_array_index (clients, i);
      guint32 client, seq;

      g_assert_cmpuint (tc->received->len, ==, 1);
      g_assert_true (np_test_message_parse (g_ptr_array_index (tc->received, 0), &client, &seq));
      g_assert_cmpuint (client, ==, i);
      g_assert_cmpuint (seq, ==, 0);
      g_assert_cmpuint (tc->disconnect_errors->len, ==, 0);
    }
  g_assert_cmpuint (f->received->len, ==, N_CLIENTS);
  g_assert_cmpuint (f->disconnected->len, ==, 0);
}

/* A client with auto-reconnect comes back to a server restarted on the
 * same port, and what it sent meanwhile arrives. */
static void
test_reconnect_across_restart (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(GBytes) meanwhile = np_test_message_new (1, 100, 5000);
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  const char *name;

  address = g_strdup_printf ("tcp:127.0.0.1:%u", free_port ());
  server_new (f, address, "server", TRUE);
  name = server_start (f);
  g_assert_cmpstr (name, ==, address);

  tc = test_client_new (name, "ca");
  np_pipe_client_set_auto_reconnect (tc->client, TRUE);
  np_pipe_client_set_reconnect_interval (tc->client, 20);
  np_pipe_client_set_reconnect_max_interval (tc->client, 100);
  test_client_connect_ok (tc);
  g_assert_cmpuint (tc->n_accepted, ==, 1);
  test_client_echo (tc, 0);

  server_drop (f);
  NP_TEST_WAIT_FOR (WAIT_SEC, tc->disconnect_errors->len >= 1);
  g_assert_false (np_pipe_client_get_connected (tc->client));

  /* Queued for the next connection. */
  g_assert_true (np_pipe_client_send (tc->client, meanwhile, &error));
  g_assert_no_error (error);

  g_ptr_array_set_size (f->connected, 0);
  g_ptr_array_set_size (f->disconnected, 0);
  g_ptr_array_set_size (f->disconnect_errors, 0);
  g_ptr_array_set_size (f->received, 0);
  server_new (f, address, "server", TRUE);
  g_assert_cmpstr (server_start (f), ==, address);

  NP_TEST_WAIT_FOR (WAIT_SEC, tc->n_accepted == 2);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->received->len == 1);
  g_assert_true (g_bytes_equal (g_ptr_array_index (f->received, 0), meanwhile));
  NP_TEST_WAIT_FOR (WAIT_SEC, tc->received->len == 2);
  g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, 1), meanwhile));
  test_client_echo (tc, 1);
}

static GUnixFDList *
fd_list_new (void)
{
  g_autoptr(GError) error = NULL;
  GUnixFDList *fds = g_unix_fd_list_new ();
  int pipe_fds[2];

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_unix_fd_list_append (fds, pipe_fds[0], &error), ==, 0);
  g_assert_no_error (error);
  close (pipe_fds[0]);
  close (pipe_fds[1]);

  return fds;
}

/* Descriptors cannot cross TCP: sending them fails before anything is
 * written, and what follows goes as if nothing had been tried. */
static void
test_fds_not_supported (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TestClient) tc = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GBytes) message = np_test_message_new (1, 0, 1000);
  g_autoptr(GBytes) after = np_test_message_new (1, 1, 1000);
  g_autoptr(GBytes) request = np_test_message_new (1, 2, 1000);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_server = NULL;
  g_autoptr(GError) error_request = NULL;
  NpPipeConnection *connection;
  const char *name;

  name = server_run (f, "server");
  f->echo = FALSE;
  tc = test_client_new (name, "ca");
  test_client_connect_ok (tc);
  NP_TEST_WAIT_FOR (WAIT_SEC, f->connected->len == 1);
  connection = g_ptr_array_index (f->connected, 0);

  fds = fd_list_new ();
  g_assert_false (np_pipe_client_send_with_fds (tc->client, message, fds, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_assert_cmpuint (np_pipe_client_get_queued_bytes (tc->client), ==, 0);

  g_assert_false (np_pipe_connection_send_with_fds (connection, message, fds, &error_server));
  g_assert_error (error_server, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
  g_assert_cmpuint (np_pipe_connection_get_queued_bytes (connection), ==, 0);

  np_pipe_client_request_with_fds_async (tc->client, request, fds, NULL, np_test_async_done_cb, &result);
  NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);
  reply = np_pipe_client_request_with_fds_finish (tc->client, result, NULL, &error_request);
  g_assert_null (reply);
  g_assert_error (error_request, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);

  /* Nothing of them went: the next message is the first each side sees. */
  g_assert_true (np_pipe_client_send (tc->client, after, NULL));
  g_assert_true (np_pipe_connection_send (connection, after, NULL));
  NP_TEST_WAIT_FOR (WAIT_SEC, f->received->len == 1 && tc->received->len == 1);
  g_assert_true (g_bytes_equal (g_ptr_array_index (f->received, 0), after));
  g_assert_true (g_bytes_equal (g_ptr_array_index (tc->received, 0), after));
  g_assert_true (np_pipe_client_get_connected (tc->client));
  g_assert_cmpuint (f->disconnected->len, ==, 0);
}

/* Without a TLS backend, a TCP client fails saying what to install. Run
 * in a process of its own whose GIO finds no modules. */
static void
test_no_backend (void)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) child = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *self = NULL;
  g_autofree char *empty = NULL;

  if (g_getenv ("NP_TEST_TLS_NO_BACKEND") != NULL)
    {
      g_autoptr(NpPipeClient) client = NULL;
      g_autoptr(GAsyncResult) result = NULL;

      g_assert_false (g_tls_backend_supports_tls (g_tls_backend_get_default ()));
      client = np_pipe_client_new ("tcp:127.0.0.1:9");
      np_pipe_client_connect_async (client, NULL, np_test_async_done_cb, &result);
      NP_TEST_WAIT_FOR (WAIT_SEC, result != NULL);
      g_assert_false (np_pipe_client_connect_finish (client, result, &error));
      g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "glib-networking"));
      return;
    }

  if (!tls_or_skip ())
    return;

  self = g_file_read_link ("/proc/self/exe", &error);
  g_assert_no_error (error);
  empty = g_dir_make_tmp ("np-test-no-modules-XXXXXX", &error);
  g_assert_no_error (error);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (launcher, "NP_TEST_TLS_NO_BACKEND", "1", TRUE);
  g_subprocess_launcher_setenv (launcher, "GIO_MODULE_DIR", empty, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "GIO_EXTRA_MODULES");
  g_subprocess_launcher_unsetenv (launcher, "GIO_USE_TLS");
  child = g_subprocess_launcher_spawn (launcher, &error, self, "-p", "/Np/Tls/no-backend", NULL);
  g_assert_no_error (error);
  np_test_wait_process (child);
  g_rmdir (empty);

  g_assert_true (g_subprocess_get_if_exited (child));
  g_assert_cmpint (g_subprocess_get_exit_status (child), ==, 0);
}

/* Dials to a server that accepts and never answers its TLS handshake
 * hold at most half of the process's handshake slots: a dial to a
 * healthy server meanwhile connects at once, while they still wait. */
static void
test_stalled_server_slots (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GSocket) mute = NULL;
  g_autoptr(GSocketAddress) loopback = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GPtrArray) stalled = g_ptr_array_new_with_free_func ((GDestroyNotify) test_client_free);
  GAsyncResult *results[12] = { NULL, };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(TestClient) healthy = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *mute_name = NULL;
  const char *name;
  guint n_done;

  /* A listener whose backlog takes the connections; nothing answers. */
  mute = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  loopback = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_assert_true (g_socket_bind (mute, loopback, TRUE, &error));
  g_assert_true (g_socket_listen (mute, &error));
  bound = g_socket_get_local_address (mute, &error);
  g_assert_no_error (error);
  mute_name = g_strdup_printf ("tcp:127.0.0.1:%u",
                               g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  name = server_run (f, "server");

  /* More dials than there are slots, each in its TLS handshake for as
   * long as the test lasts. */
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      TestClient *tc = test_client_new (mute_name, "ca");

      np_pipe_client_set_connect_timeout (tc->client, 600 * 1000);
      g_ptr_array_add (stalled, tc);
      np_pipe_client_connect_async (tc->client, cancellable, np_test_async_done_cb, &results[i]);
    }

  healthy = test_client_new (name, "ca");
  test_client_connect_ok (healthy);
  test_client_echo (healthy, 64);

  /* The stalled dials are all still waiting. */
  n_done = 0;
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    n_done += results[i] != NULL;
  g_assert_cmpuint (n_done, ==, 0);

  g_cancellable_cancel (cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      TestClient *tc = g_ptr_array_index (stalled, i);
      g_autoptr(GError) cancelled = NULL;

      NP_TEST_WAIT_FOR (WAIT_SEC, results[i] != NULL);
      g_assert_false (np_pipe_client_connect_finish (tc->client, results[i], &cancelled));
      g_assert_error (cancelled, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_object (&results[i]);
    }
}

/* Makes the certificates in a directory of the run's; says why not when
 * the tests cannot run. */
static void
setup_certificates (void)
{
  g_autofree char *script = NULL;
  g_autofree char *certtool = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      skip_reason = g_strdup ("No TLS backend: glib-networking is not installed");
      return;
    }

  /* A test's own process uses its parent's. */
  if (g_getenv (CERT_DIR_VARIABLE) != NULL)
    {
      cert_dir = g_strdup (g_getenv (CERT_DIR_VARIABLE));
      return;
    }

  certtool = g_find_program_in_path ("certtool");
  if (certtool == NULL)
    {
      skip_reason = g_strdup ("certtool (gnutls-bin) is not installed");
      return;
    }

  cert_dir = g_dir_make_tmp ("np-test-tls-XXXXXX", &error);
  g_assert_no_error (error);
  script = g_test_build_filename (G_TEST_DIST, "tls", "make-certs.sh", NULL);

  {
    const char *argv[] = { "/bin/sh", script, cert_dir, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                  NULL, &err, &status, &error);
    g_assert_no_error (error);
    if (!g_spawn_check_wait_status (status, &error))
      g_error ("%s failed: %s\n%s", script, error->message, err);
  }

  g_setenv (CERT_DIR_VARIABLE, cert_dir, TRUE);
  owns_cert_dir = TRUE;
}

static void
remove_certificates (void)
{
  g_autoptr(GDir) dir = NULL;
  const char *entry;

  if (!owns_cert_dir)
    return;

  dir = g_dir_open (cert_dir, 0, NULL);
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (cert_dir, entry, NULL);

      g_unlink (path);
    }
  g_rmdir (cert_dir);
}

typedef struct
{
  void          (*func) (Fixture *, gconstpointer);
  gconstpointer   data;
} TlsTest;

/* Runs a test in a process of its own, so that a crash, a failed
 * assertion or a hang (at TEST_TIMEOUT_SEC) fails it alone, with its
 * report, and the others still run. */
static void
run_isolated (gconstpointer data)
{
  const TlsTest *test = data;

  if (!tls_or_skip ())
    return;

  if (g_test_subprocess ())
    {
      Fixture f = { 0, };

      fixture_setup (&f, test->data);
      test->func (&f, test->data);
      fixture_teardown (&f, test->data);
      return;
    }

  g_test_trap_subprocess (NULL, TEST_TIMEOUT_SEC * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("%s", g_test_trap_reached_timeout ()
                                ? "the test's process hung: it did not end in time"
                                : "the test's process failed: see its report above");
}

static void
add_test (const char    *path,
          void         (*func) (Fixture *, gconstpointer),
          gconstpointer  data)
{
  /* For the length of the run: a process that runs one test by -p frees
   * no test data. */
  static TlsTest tests[64];
  static guint n_tests;
  TlsTest *test;

  g_assert (n_tests < G_N_ELEMENTS (tests));
  test = &tests[n_tests++];
  test->func = func;
  test->data = data;
  g_test_add_data_func (path, test, run_isolated);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  if (g_getenv ("NP_TEST_TLS_NO_BACKEND") == NULL)
    setup_certificates ();

  add_test ("/Np/Tls/round-trip", test_round_trip, NULL);
  add_test ("/Np/Tls/addresses", test_addresses, NULL);
  add_test ("/Np/Tls/ipv6", test_ipv6, NULL);
  add_test ("/Np/Tls/refused/wrong-ca", test_wrong_ca, NULL);
  add_test ("/Np/Tls/refused/expired", test_expired, NULL);
  add_test ("/Np/Tls/refused/wrong-host", test_wrong_host, NULL);
  add_test ("/Np/Tls/refused/pin-mismatch", test_pin_mismatch, NULL);
  add_test ("/Np/Tls/pin-match", test_pin_match, NULL);
  add_test ("/Np/Tls/accept-certificate", test_accept_certificate, NULL);
  add_test ("/Np/Tls/client-cert-required", test_client_cert_required, NULL);
  add_test ("/Np/Tls/authorize-peer", test_authorize_peer, NULL);
  add_test ("/Np/Tls/authorize-by-certificate", test_authorize_by_certificate, NULL);
  add_test ("/Np/Tls/anonymous-refused", test_anonymous_refused, NULL);
  add_test ("/Np/Tls/allow-anonymous", test_allow_anonymous, NULL);
  add_test ("/Np/Tls/start-checks", test_start_checks, NULL);
  add_test ("/Np/Tls/insecure-plaintext", test_insecure_plaintext, NULL);
  add_test ("/Np/Tls/plaintext-to-tls", test_plaintext_to_tls, NULL);
  add_test ("/Np/Tls/for-address", test_for_address, NULL);
  add_test ("/Np/Tls/hostile/handshake-stall", test_handshake_stall, NULL);
  add_test ("/Np/Tls/hostile/garbage-instead-of-tls", test_garbage_instead_of_tls, NULL);
  add_test ("/Np/Tls/hostile/cut-record", test_cut_record, NULL);
  add_test ("/Np/Tls/hostile/no-alpn", test_no_alpn, NULL);
  add_test ("/Np/Tls/hostile/frame-too-large", test_hostile_frames, &attacks[0]);
  add_test ("/Np/Tls/hostile/unknown-frame", test_hostile_frames, &attacks[1]);
  add_test ("/Np/Tls/hostile/garbage-after-hello", test_hostile_frames, &attacks[2]);
  add_test ("/Np/Tls/many-clients", test_many_clients, NULL);
  add_test ("/Np/Tls/hostile/stalled-server-slots", test_stalled_server_slots, NULL);
  add_test ("/Np/Tls/reconnect-across-restart", test_reconnect_across_restart, NULL);
  add_test ("/Np/Tls/fds-not-supported", test_fds_not_supported, NULL);
  g_test_add_func ("/Np/Tls/no-backend", test_no_backend);

  ret = g_test_run ();

  remove_certificates ();
  g_free (cert_dir);
  g_free (skip_reason);

  return ret;
}
