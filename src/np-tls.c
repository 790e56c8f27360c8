/* np-tls.c: TLS over TCP, through GIO's TLS (glib-networking)
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-tcp-private.h"
#include "np-tls-private.h"

/* Handshakes of one side (accepting or connecting) that run at once in
 * the process: glib-networking runs each, blocking, in a thread of
 * GLib's shared pool, and a peer that stalls holds its thread until the
 * handshake deadline. The sides count apart, so that a client and a
 * server of one process never wait for each other's slots. */
#define NP_TLS_HANDSHAKES_MAX 8

/* Of those, the most with one peer (the address of a server's peer, the
 * server a client dials): a peer that stalls in its handshakes holds no
 * more of the slots than this, and others get theirs meanwhile. */
#define NP_TLS_HANDSHAKES_PER_PEER (NP_TLS_HANDSHAKES_MAX / 2)

static char *np_tls_fingerprint (GTlsCertificate *certificate);

/* NpTlsSink: the output stream under a TLS connection. GnuTLS wants a
 * record it could not write whole to be written again with the same
 * bytes; what the stream above would write next is not always those
 * (a cancelled message is taken out of the queue). So the sink takes
 * every write at once and keeps what the socket does not take, at most
 * a record or so: the transport writes nothing more until it is out. */

#define NP_TYPE_TLS_SINK (np_tls_sink_get_type ())
G_DECLARE_FINAL_TYPE (NpTlsSink, np_tls_sink, NP, TLS_SINK, GOutputStream)

struct _NpTlsSink
{
  GOutputStream  parent_instance;
  GSocket       *socket;
  /* A read may write (a TLS 1.3 key update answered) while another
   * thread writes: the lock keeps what each writes whole and in order. */
  GMutex         lock;
  GByteArray    *backlog;
  gsize          sent;          /* of the backlog */
};

static void np_tls_sink_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (NpTlsSink, np_tls_sink, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      np_tls_sink_pollable_init))

/* Sends the backlog; FALSE with @error on failure. Called with the
 * lock held. */
static gboolean
np_tls_sink_send_backlog_locked (NpTlsSink     *self,
                                 gboolean       blocking,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  while (self->sent < self->backlog->len)
    {
      g_autoptr(GError) local_error = NULL;
      gssize n;

      n = g_socket_send_with_blocking (self->socket,
                                       (const char *) self->backlog->data + self->sent,
                                       self->backlog->len - self->sent,
                                       blocking, cancellable, &local_error);
      if (n < 0)
        {
          if (!blocking && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return TRUE;
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      self->sent += n;
    }

  g_byte_array_set_size (self->backlog, 0);
  self->sent = 0;

  return TRUE;
}

static gboolean
np_tls_sink_has_backlog_locked (NpTlsSink *self)
{
  return self->sent < self->backlog->len;
}

static gboolean
np_tls_sink_has_backlog (NpTlsSink *self)
{
  gboolean pending;

  g_mutex_lock (&self->lock);
  pending = np_tls_sink_has_backlog_locked (self);
  g_mutex_unlock (&self->lock);

  return pending;
}

static gboolean
np_tls_sink_send_backlog (NpTlsSink     *self,
                          gboolean       blocking,
                          GCancellable  *cancellable,
                          GError       **error)
{
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = np_tls_sink_send_backlog_locked (self, blocking, cancellable, error);
  g_mutex_unlock (&self->lock);

  return ok;
}

static gssize
np_tls_sink_write (GOutputStream  *stream,
                   const void     *buffer,
                   gsize           count,
                   GCancellable   *cancellable,
                   GError        **error)
{
  NpTlsSink *self = NP_TLS_SINK (stream);
  gssize n = -1;

  /* Only the handshake, in its thread, writes blocking: nothing else
   * writes meanwhile. */
  g_mutex_lock (&self->lock);
  if (np_tls_sink_send_backlog_locked (self, TRUE, cancellable, error))
    n = g_socket_send_with_blocking (self->socket, buffer, count, TRUE, cancellable, error);
  g_mutex_unlock (&self->lock);

  return n;
}

static gssize
np_tls_sink_write_nonblocking (GPollableOutputStream  *stream,
                               const void             *buffer,
                               gsize                   count,
                               GError                **error)
{
  NpTlsSink *self = NP_TLS_SINK (stream);
  gssize n = 0;

  g_mutex_lock (&self->lock);

  if (!np_tls_sink_send_backlog_locked (self, FALSE, NULL, error))
    {
      g_mutex_unlock (&self->lock);
      return -1;
    }

  if (!np_tls_sink_has_backlog_locked (self))
    {
      g_autoptr(GError) local_error = NULL;

      n = g_socket_send_with_blocking (self->socket, buffer, count, FALSE, NULL, &local_error);
      if (n < 0)
        {
          if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_mutex_unlock (&self->lock);
              g_propagate_error (error, g_steal_pointer (&local_error));
              return -1;
            }
          n = 0;
        }
    }

  /* Kept in order after what waits already. */
  if ((gsize) n < count)
    g_byte_array_append (self->backlog, (const guint8 *) buffer + n, count - n);

  g_mutex_unlock (&self->lock);

  return count;
}

static gboolean
np_tls_sink_is_writable (GPollableOutputStream *stream)
{
  NpTlsSink *self = NP_TLS_SINK (stream);

  return !np_tls_sink_has_backlog (self) &&
         (g_socket_condition_check (self->socket, G_IO_OUT) & G_IO_OUT) != 0;
}

static GSource *
np_tls_sink_create_source (GPollableOutputStream *stream,
                           GCancellable          *cancellable)
{
  NpTlsSink *self = NP_TLS_SINK (stream);
  g_autoptr(GSource) socket_source = g_socket_create_source (self->socket, G_IO_OUT, NULL);

  return g_pollable_source_new_full (stream, socket_source, cancellable);
}

static void
np_tls_sink_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->is_writable = np_tls_sink_is_writable;
  iface->create_source = np_tls_sink_create_source;
  iface->write_nonblocking = np_tls_sink_write_nonblocking;
}

static gboolean
np_tls_sink_close (GOutputStream  *stream,
                   GCancellable   *cancellable,
                   GError        **error)
{
  /* The socket is the connection's to close. */
  return TRUE;
}

static void
np_tls_sink_finalize (GObject *object)
{
  NpTlsSink *self = NP_TLS_SINK (object);

  g_clear_object (&self->socket);
  g_byte_array_unref (self->backlog);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (np_tls_sink_parent_class)->finalize (object);
}

static void
np_tls_sink_class_init (NpTlsSinkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = np_tls_sink_finalize;
  stream_class->write_fn = np_tls_sink_write;
  stream_class->close_fn = np_tls_sink_close;
}

static void
np_tls_sink_init (NpTlsSink *self)
{
  g_mutex_init (&self->lock);
  self->backlog = g_byte_array_new ();
}

GOutputStream *
np_tls_get_sink (GTlsConnection *tls)
{
  g_autoptr(GIOStream) base = NULL;

  g_object_get (tls, "base-io-stream", &base, NULL);

  return g_io_stream_get_output_stream (base);
}

gboolean
np_tls_sink_is_pending (GOutputStream *sink)
{
  return np_tls_sink_has_backlog (NP_TLS_SINK (sink));
}

gboolean
np_tls_sink_flush (GOutputStream  *sink,
                   GError        **error)
{
  return np_tls_sink_send_backlog (NP_TLS_SINK (sink), FALSE, NULL, error);
}

/* NpTlsSource: the input stream under a TLS connection. GnuTLS reads a
 * record's header, then its body: two system calls a record. The source
 * reads what the socket has, a record or more at a time, and hands it
 * out from there; np_tls_source_is_pending() tells the transport when
 * some is left that the socket no longer shows. */

#define NP_TLS_SOURCE_SIZE (16 * 1024 + 512)

#define NP_TYPE_TLS_SOURCE (np_tls_source_get_type ())
G_DECLARE_FINAL_TYPE (NpTlsSource, np_tls_source, NP, TLS_SOURCE, GInputStream)

struct _NpTlsSource
{
  GInputStream  parent_instance;
  GSocket      *socket;
  /* Read by one thread at a time: the handshake's, then the stream's
   * readers, which glib-networking takes turns. */
  gsize         start;
  gsize         end;
  guint8        buffer[NP_TLS_SOURCE_SIZE];
};

static void np_tls_source_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (NpTlsSource, np_tls_source, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      np_tls_source_pollable_init))

static gssize
np_tls_source_read_internal (NpTlsSource   *self,
                             void          *buffer,
                             gsize          count,
                             gboolean       blocking,
                             GCancellable  *cancellable,
                             GError       **error)
{
  gsize n;

  if (self->start == self->end)
    {
      gssize received = g_socket_receive_with_blocking (self->socket, (char *) self->buffer,
                                                        sizeof self->buffer, blocking,
                                                        cancellable, error);

      if (received <= 0)
        return received;
      self->start = 0;
      self->end = received;
    }

  n = MIN (count, self->end - self->start);
  memcpy (buffer, self->buffer + self->start, n);
  self->start += n;

  return n;
}

static gssize
np_tls_source_read (GInputStream  *stream,
                    void          *buffer,
                    gsize          count,
                    GCancellable  *cancellable,
                    GError       **error)
{
  return np_tls_source_read_internal (NP_TLS_SOURCE (stream), buffer, count, TRUE,
                                      cancellable, error);
}

static gssize
np_tls_source_read_nonblocking (GPollableInputStream  *stream,
                                void                  *buffer,
                                gsize                  count,
                                GError               **error)
{
  return np_tls_source_read_internal (NP_TLS_SOURCE (stream), buffer, count, FALSE,
                                      NULL, error);
}

static gboolean
np_tls_source_is_readable (GPollableInputStream *stream)
{
  NpTlsSource *self = NP_TLS_SOURCE (stream);

  return self->start < self->end ||
         (g_socket_condition_check (self->socket, G_IO_IN) & G_IO_IN) != 0;
}

static GSource *
np_tls_source_create_source (GPollableInputStream *stream,
                             GCancellable         *cancellable)
{
  NpTlsSource *self = NP_TLS_SOURCE (stream);
  g_autoptr(GSource) child = NULL;

  if (self->start < self->end)
    child = g_timeout_source_new (0);
  else
    child = g_socket_create_source (self->socket, G_IO_IN, NULL);

  return g_pollable_source_new_full (stream, child, cancellable);
}

static void
np_tls_source_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->is_readable = np_tls_source_is_readable;
  iface->create_source = np_tls_source_create_source;
  iface->read_nonblocking = np_tls_source_read_nonblocking;
}

static gboolean
np_tls_source_close (GInputStream  *stream,
                     GCancellable  *cancellable,
                     GError       **error)
{
  /* The socket is the connection's to close. */
  return TRUE;
}

static void
np_tls_source_finalize (GObject *object)
{
  NpTlsSource *self = NP_TLS_SOURCE (object);

  g_clear_object (&self->socket);

  G_OBJECT_CLASS (np_tls_source_parent_class)->finalize (object);
}

static void
np_tls_source_class_init (NpTlsSourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = np_tls_source_finalize;
  stream_class->read_fn = np_tls_source_read;
  stream_class->close_fn = np_tls_source_close;
}

static void
np_tls_source_init (NpTlsSource *self)
{
}

GInputStream *
np_tls_get_source (GTlsConnection *tls)
{
  g_autoptr(GIOStream) base = NULL;

  g_object_get (tls, "base-io-stream", &base, NULL);

  return g_io_stream_get_input_stream (base);
}

gboolean
np_tls_source_is_pending (GInputStream *source)
{
  NpTlsSource *self = NP_TLS_SOURCE (source);

  return self->start < self->end;
}

/* Availability */

gboolean
np_tls_check_available (const char  *address,
                        GError     **error)
{
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                   _("“%s” needs TLS, which GIO cannot do here: install the "
                     "glib-networking package"), address);
      return FALSE;
    }

  return TRUE;
}

/* The base stream: the source as input, the sink as output. */
static GIOStream *
np_tls_base_new (GSocketConnection *connection)
{
  g_autoptr(NpTlsSource) source = g_object_new (NP_TYPE_TLS_SOURCE, NULL);
  g_autoptr(NpTlsSink) sink = g_object_new (NP_TYPE_TLS_SINK, NULL);

  source->socket = g_object_ref (g_socket_connection_get_socket (connection));
  sink->socket = g_object_ref (g_socket_connection_get_socket (connection));

  return g_simple_io_stream_new (G_INPUT_STREAM (source), G_OUTPUT_STREAM (sink));
}

static void
np_tls_configure (GTlsConnection *tls)
{
  const char * const protocols[] = { NP_TLS_ALPN, NULL };

  g_tls_connection_set_advertised_protocols (tls, protocols);
}

/* A client's certificate: glib-networking asks about every one, even
 * one that validated. Requested, any gets to authorize-peer, which sees
 * what validation found; required, only one that validated gets in. */
static gboolean
np_tls_server_accept_certificate_cb (GTlsConnection       *tls,
                                     GTlsCertificate      *certificate,
                                     GTlsCertificateFlags  errors,
                                     gpointer              data)
{
  GTlsAuthenticationMode mode = GPOINTER_TO_INT (data);

  return mode == G_TLS_AUTHENTICATION_REQUESTED || errors == 0;
}

static GTlsConnection *
np_tls_server_new (GSocketConnection      *connection,
                   GTlsCertificate        *certificate,
                   GTlsAuthenticationMode  mode,
                   GTlsDatabase           *database,
                   GError                **error)
{
  g_autoptr(GIOStream) base = np_tls_base_new (connection);
  GTlsBackend *backend = g_tls_backend_get_default ();
  GTlsConnection *tls;

  /* The database is given at construction, even when there is none: a
   * connection made without one loads the system's trust store, all of
   * it, for each connection. Client certificates are validated against
   * the application's authorities only. */
  tls = g_initable_new (g_tls_backend_get_server_connection_type (backend), NULL, error,
                        "base-io-stream", base,
                        "certificate", certificate,
                        "authentication-mode", mode,
                        "database", database,
                        NULL);
  if (tls == NULL)
    return NULL;

  g_signal_connect (tls, "accept-certificate", G_CALLBACK (np_tls_server_accept_certificate_cb),
                    GINT_TO_POINTER (mode));
  np_tls_configure (tls);

  return tls;
}

/* What the client asked, for as long as its connection lives. */
typedef struct
{
  char     *pin;
  gboolean (*accept) (GTlsCertificate *, GTlsCertificateFlags, gpointer);
  gpointer  accept_data;
} NpTlsAccept;

static void
np_tls_accept_free (gpointer data)
{
  NpTlsAccept *accept = data;

  g_free (accept->pin);
  g_free (accept);
}

/* Validation failed: a pinned certificate gets in all the same; any
 * other, only if the application says so. */
static gboolean
np_tls_accept_certificate_cb (GTlsConnection       *tls,
                              GTlsCertificate      *certificate,
                              GTlsCertificateFlags  errors,
                              gpointer              data)
{
  NpTlsAccept *accept = data;

  if (accept->pin != NULL)
    {
      g_autofree char *fingerprint = np_tls_fingerprint (certificate);

      return g_strcmp0 (fingerprint, accept->pin) == 0;
    }

  if (accept->accept != NULL)
    return accept->accept (certificate, errors, accept->accept_data);

  return FALSE;
}

static GTlsConnection *
np_tls_client_new (GSocketConnection       *connection,
                   GSocketConnectable      *identity,
                   const NpTlsClientConfig *config,
                   GError                 **error)
{
  g_autoptr(GIOStream) base = np_tls_base_new (connection);
  g_autoptr(GSocketConnectable) numeric = NULL;
  GTlsBackend *backend = g_tls_backend_get_default ();
  GTlsConnection *tls;
  NpTlsAccept *accept;

  /* A host given as an address is checked against the certificate's
   * addresses, and sent as no server name: a server refuses an address
   * as one (RFC 6066). */
  if (G_IS_NETWORK_ADDRESS (identity) &&
      g_hostname_is_ip_address (g_network_address_get_hostname (G_NETWORK_ADDRESS (identity))))
    {
      GNetworkAddress *address = G_NETWORK_ADDRESS (identity);

      numeric = G_SOCKET_CONNECTABLE (g_inet_socket_address_new_from_string (g_network_address_get_hostname (address),
                                                                             g_network_address_get_port (address)));
      if (numeric != NULL)
        identity = numeric;
    }

  /* A pinned certificate needs no authority: without one of the
   * application's, no database spares loading the system's trust store
   * for each connection, and the pin decides. */
  if (config->database != NULL || config->pin != NULL)
    tls = g_initable_new (g_tls_backend_get_client_connection_type (backend), NULL, error,
                          "base-io-stream", base,
                          "server-identity", identity,
                          "database", config->database,
                          NULL);
  else
    tls = g_initable_new (g_tls_backend_get_client_connection_type (backend), NULL, error,
                          "base-io-stream", base,
                          "server-identity", identity,
                          NULL);
  if (tls == NULL)
    return NULL;

  if (config->interaction != NULL)
    g_tls_connection_set_interaction (tls, config->interaction);
  if (config->certificate != NULL)
    g_tls_connection_set_certificate (tls, config->certificate);
  np_tls_configure (tls);

  accept = g_new0 (NpTlsAccept, 1);
  accept->pin = g_strdup (config->pin);
  accept->accept = config->accept;
  accept->accept_data = config->accept_data;
  g_object_set_data_full (G_OBJECT (tls), "np-tls-accept", accept, np_tls_accept_free);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (np_tls_accept_certificate_cb), accept);

  return tls;
}

/* Whether @certificate comes with its private key, in memory or on a
 * token. */
gboolean
np_tls_certificate_has_key (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) key = NULL;
  g_autofree char *uri = NULL;

  g_object_get (certificate, "private-key", &key, "private-key-pkcs11-uri", &uri, NULL);

  return key != NULL || uri != NULL;
}

/* Fingerprints */

static char *
np_tls_fingerprint (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;

  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
}

/* A SHA-256 fingerprint as people write it (colons or spaces between
 * the bytes, either case) in the form np_tls_fingerprint() gives. */
static char *
np_tls_normalize_pin (const char  *pin,
                      GError     **error)
{
  GString *hex = g_string_new (NULL);

  for (const char *p = pin; *p != '\0'; p++)
    {
      if (*p == ':' || *p == ' ')
        continue;
      if (!g_ascii_isxdigit (*p))
        break;
      g_string_append_c (hex, g_ascii_tolower (*p));
    }

  if (hex->len != 64 || strspn (pin, "0123456789abcdefABCDEF: ") != strlen (pin))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not a SHA-256 fingerprint: 64 hexadecimal digits, "
                     "colons between the bytes allowed"), pin);
      g_string_free (hex, TRUE);
      return NULL;
    }

  return g_string_free (hex, FALSE);
}

/* Handshakes, a few at a time */

typedef enum
{
  NP_TLS_SIDE_SERVER,
  NP_TLS_SIDE_CLIENT,
} NpTlsSide;

typedef struct
{
  char      *address;
  char      *peer;       /* the side and the address: what counts apart */
  char      *pin;
  NpTlsSide  side;
  gboolean   started;
  GCancellable *cancellable;
  gulong     cancel_id;
} Handshake;

/* Guarded by the lock: the handshakes that wait for a slot, those that
 * run, and those that run with each peer (of Handshake.peer, a count). */
static GMutex      handshakes_lock;
static GQueue      handshakes_waiting[2];
static guint       handshakes_running[2];
static GHashTable *handshakes_per_peer;

static void
handshake_free (gpointer data)
{
  Handshake *handshake = data;

  g_free (handshake->address);
  g_free (handshake->peer);
  g_free (handshake->pin);
  g_clear_object (&handshake->cancellable);
  g_free (handshake);
}

static void np_tls_handshake_done (GObject      *object,
                                   GAsyncResult *result,
                                   gpointer      user_data);

static void
np_tls_handshake_start (GTask *task)
{
  GMainContext *context = g_task_get_context (task);

  g_main_context_push_thread_default (context);
  g_tls_connection_handshake_async (g_task_get_source_object (task), G_PRIORITY_DEFAULT,
                                    g_task_get_cancellable (task), np_tls_handshake_done, task);
  g_main_context_pop_thread_default (context);
}

/* Whether @handshake may take a slot now. Called with the lock held. */
static gboolean
np_tls_handshake_may_start_locked (Handshake *handshake)
{
  guint with_peer = GPOINTER_TO_UINT (g_hash_table_lookup (handshakes_per_peer, handshake->peer));

  return handshakes_running[handshake->side] < NP_TLS_HANDSHAKES_MAX &&
         with_peer < NP_TLS_HANDSHAKES_PER_PEER;
}

/* Counts @handshake in, or (@delta -1) out. Called with the lock held. */
static void
np_tls_handshake_count_locked (Handshake *handshake,
                               int        delta)
{
  guint with_peer = GPOINTER_TO_UINT (g_hash_table_lookup (handshakes_per_peer, handshake->peer));

  handshakes_running[handshake->side] += delta;
  with_peer += delta;
  if (with_peer > 0)
    g_hash_table_replace (handshakes_per_peer, g_strdup (handshake->peer), GUINT_TO_POINTER (with_peer));
  else
    g_hash_table_remove (handshakes_per_peer, handshake->peer);
}

/* Gives the slot of a handshake that ended to the first that waits and
 * may take it. */
static void
np_tls_handshake_release (Handshake *ended)
{
  GTask *next = NULL;

  g_mutex_lock (&handshakes_lock);
  np_tls_handshake_count_locked (ended, -1);
  for (GList *l = handshakes_waiting[ended->side].head; l != NULL; l = l->next)
    {
      Handshake *handshake = g_task_get_task_data (l->data);

      if (np_tls_handshake_may_start_locked (handshake))
        {
          next = l->data;
          g_queue_delete_link (&handshakes_waiting[ended->side], l);
          np_tls_handshake_count_locked (handshake, +1);
          handshake->started = TRUE;
          break;
        }
    }
  g_mutex_unlock (&handshakes_lock);

  if (next != NULL)
    {
      Handshake *handshake = g_task_get_task_data (next);

      /* Never from the handler: it is not running on this call. */
      g_cancellable_disconnect (handshake->cancellable, handshake->cancel_id);
      np_tls_handshake_start (next);
    }
}

static GError *
np_tls_describe_certificate_error (GTlsConnection *tls,
                                   const char     *address,
                                   const GError   *error)
{
  GTlsCertificateFlags flags = g_tls_connection_get_peer_certificate_errors (tls);
  const char *why = NULL;

  if (flags & G_TLS_CERTIFICATE_UNKNOWN_CA)
    why = _("it is not signed by a certificate authority this end trusts");
  else if (flags & G_TLS_CERTIFICATE_BAD_IDENTITY)
    why = _("it is not for the host name or address connected to");
  else if (flags & G_TLS_CERTIFICATE_EXPIRED)
    why = _("it has expired");
  else if (flags & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    why = _("it is not valid yet");
  else if (flags & G_TLS_CERTIFICATE_REVOKED)
    why = _("it has been revoked");
  else if (flags & G_TLS_CERTIFICATE_INSECURE)
    why = _("its algorithm is insecure");

  if (why != NULL)
    return g_error_new (error->domain, error->code,
                        _("TLS handshake with “%s” failed: the peer’s certificate was refused: %s (%s)"),
                        address, why, error->message);

  return g_error_new (error->domain, error->code, _("TLS handshake with “%s” failed: %s"),
                      address, error->message);
}

static void
np_tls_handshake_done (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GTlsConnection *tls = G_TLS_CONNECTION (object);
  Handshake *handshake = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  const char *protocol;
  gboolean ok;

  np_tls_handshake_release (handshake);

  ok = g_tls_connection_handshake_finish (tls, result, &error);
  if (!ok && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  /* A certificate that is not the pinned one, whether it validates (the
   * handshake succeeded) or not (it failed on it). */
  if (handshake->pin != NULL &&
      (ok || g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE)))
    {
      GTlsCertificate *certificate = g_tls_connection_get_peer_certificate (tls);
      g_autofree char *fingerprint = certificate != NULL ? np_tls_fingerprint (certificate) : NULL;

      if (g_strcmp0 (fingerprint, handshake->pin) != 0)
        {
          g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                                   _("The certificate of “%s” (SHA-256 %s) does not match "
                                     "the pinned fingerprint %s"),
                                   handshake->address,
                                   fingerprint != NULL ? fingerprint : _("none"),
                                   handshake->pin);
          return;
        }
    }

  if (!ok)
    {
      g_task_return_error (task, np_tls_describe_certificate_error (tls, handshake->address, error));
      return;
    }

  protocol = g_tls_connection_get_negotiated_protocol (tls);
  if (g_strcmp0 (protocol, NP_TLS_ALPN) != 0)
    {
      g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_PROTOCOL,
                               _("The peer at “%s” does not speak Np: it agreed on no “%s” "
                                 "protocol in the TLS handshake (ALPN)"),
                               handshake->address, NP_TLS_ALPN);
      return;
    }

  g_task_return_boolean (task, TRUE);
}

static void
np_tls_handshake_cancelled (GCancellable *cancellable,
                            gpointer      data)
{
  GTask *task = data;
  Handshake *handshake = g_task_get_task_data (task);
  gboolean waiting = FALSE;

  g_mutex_lock (&handshakes_lock);
  if (!handshake->started)
    waiting = g_queue_remove (&handshakes_waiting[handshake->side], task);
  g_mutex_unlock (&handshakes_lock);

  /* Started: the handshake itself ends with the cancellation. */
  if (waiting)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Operation was cancelled"));
      g_object_unref (task);
    }
}

static void
np_tls_handshake_async (GTlsConnection      *tls,
                        const char          *address,
                        const char          *pin,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *task = g_task_new (tls, cancellable, callback, user_data);
  Handshake *handshake = g_new0 (Handshake, 1);
  gboolean start;

  g_task_set_source_tag (task, np_tls_handshake_async);
  g_task_set_name (task, "[np] TLS handshake");
  handshake->address = g_strdup (address);
  handshake->pin = g_strdup (pin);
  handshake->side = G_IS_TLS_SERVER_CONNECTION (tls) ? NP_TLS_SIDE_SERVER : NP_TLS_SIDE_CLIENT;
  handshake->peer = g_strdup_printf ("%d %s", handshake->side, address);
  g_task_set_task_data (task, handshake, handshake_free);

  /* Connected first: a cancellation before the task is queued finds it
   * neither waiting nor started, and the handshake then fails at once. */
  if (cancellable != NULL)
    {
      handshake->cancellable = g_object_ref (cancellable);
      handshake->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (np_tls_handshake_cancelled),
                                                    g_object_ref (task), g_object_unref);
    }

  /* The queue holds the task's reference until it starts, or until a
   * cancellation takes it out. */
  g_mutex_lock (&handshakes_lock);
  if (handshakes_per_peer == NULL)
    handshakes_per_peer = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  start = np_tls_handshake_may_start_locked (handshake);
  if (start)
    {
      np_tls_handshake_count_locked (handshake, +1);
      handshake->started = TRUE;
    }
  else
    g_queue_push_tail (&handshakes_waiting[handshake->side], task);
  g_mutex_unlock (&handshakes_lock);

  if (start)
    {
      g_cancellable_disconnect (cancellable, handshake->cancel_id);
      np_tls_handshake_start (task);
    }
}

static gboolean
np_tls_handshake_finish (GAsyncResult  *result,
                         GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Accepting: a server's peers in their TLS handshake */

struct _NpTlsAcceptor
{
  gatomicrefcount  ref_count;
  GMutex           lock;
  GMainContext    *context;
  GWeakRef         owner;
  NpTlsAccepted    accepted;
  char            *name;
  GHashTable      *pending;    /* of Pending, guarded by the lock */
  gboolean         closed;
};

typedef struct
{
  NpTlsAcceptor     *acceptor;   /* a reference */
  GSocketConnection *connection;
  GTlsConnection    *tls;
  GCancellable      *cancellable;
  GSource           *timer;
  GSource           *hello;      /* waits for the peer's first bytes */
  char              *address;
  gint64             deadline;   /* 0: none */
  gboolean           timed_out;
} Pending;

NpTlsAcceptor *
np_tls_acceptor_ref (NpTlsAcceptor *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
np_tls_acceptor_unref (NpTlsAcceptor *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_assert (g_hash_table_size (self->pending) == 0);
  g_hash_table_unref (self->pending);
  g_weak_ref_clear (&self->owner);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_free (self->name);
  g_free (self);
}

NpTlsAcceptor *
np_tls_acceptor_new (GMainContext  *context,
                     GObject       *owner,
                     NpTlsAccepted  accepted,
                     const char    *name)
{
  NpTlsAcceptor *self = g_new0 (NpTlsAcceptor, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  self->context = g_main_context_ref (context);
  g_weak_ref_init (&self->owner, owner);
  self->accepted = accepted;
  self->name = g_strdup (name);
  self->pending = g_hash_table_new (NULL, NULL);

  return self;
}

static void
pending_free (Pending *pending)
{
  if (pending->timer != NULL)
    {
      g_source_destroy (pending->timer);
      g_source_unref (pending->timer);
    }
  if (pending->hello != NULL)
    {
      g_source_destroy (pending->hello);
      g_source_unref (pending->hello);
    }
  g_object_unref (pending->cancellable);
  g_object_unref (pending->tls);
  g_object_unref (pending->connection);
  np_tls_acceptor_unref (pending->acceptor);
  g_free (pending->address);
  g_free (pending);
}

static gboolean
pending_timeout_cb (gpointer data)
{
  Pending *pending = data;

  pending->timed_out = TRUE;
  g_cancellable_cancel (pending->cancellable);

  return G_SOURCE_REMOVE;
}

static void
np_tls_acceptor_handshake_done (GObject      *object,
                                GAsyncResult *result,
                                gpointer      user_data)
{
  Pending *pending = user_data;
  NpTlsAcceptor *self = pending->acceptor;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) owner = NULL;
  gboolean ok;
  guint remaining = 0;

  ok = np_tls_handshake_finish (result, &error);

  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->pending, pending);
  if (!self->closed)
    owner = g_weak_ref_get (&self->owner);
  g_mutex_unlock (&self->lock);

  if (ok && pending->deadline > 0)
    remaining = MAX (1, (pending->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);

  if (!ok)
    {
      if (pending->timed_out)
        g_debug ("Pipe “%s”: dropping the peer at %s: it did not complete the TLS handshake "
                 "within the handshake timeout", self->name, pending->address);
      else
        g_debug ("Pipe “%s”: dropping the peer at %s: %s", self->name, pending->address,
                 error->message);
      g_io_stream_close (G_IO_STREAM (pending->connection), NULL, NULL);
    }
  else if (owner == NULL)
    g_io_stream_close (G_IO_STREAM (pending->connection), NULL, NULL);
  else
    self->accepted (owner, pending->connection, pending->tls, remaining);

  pending_free (pending);
}

/* The peer's first bytes came (or the deadline passed, or the server
 * stopped: the handshake then fails at once). */
static gboolean
pending_hello_cb (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      data)
{
  Pending *pending = data;
  NpTlsAcceptor *self = pending->acceptor;

  g_main_context_push_thread_default (self->context);
  np_tls_handshake_async (pending->tls, pending->address, NULL, pending->cancellable,
                          np_tls_acceptor_handshake_done, pending);
  g_main_context_pop_thread_default (self->context);

  return G_SOURCE_REMOVE;
}

/* Runs the TLS handshake of a peer that just connected, within
 * @timeout_msec (0: no limit), then hands the connection to the owner
 * with what is left of the timeout; drops the peer if it fails. */
void
np_tls_acceptor_accept (NpTlsAcceptor          *self,
                        GSocketConnection      *connection,
                        GTlsCertificate        *certificate,
                        GTlsAuthenticationMode  mode,
                        GTlsDatabase           *database,
                        guint                   timeout_msec)
{
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  g_autoptr(GError) error = NULL;
  GTlsConnection *tls;
  Pending *pending;
  gboolean closed;

  tls = np_tls_server_new (connection, certificate, mode, database, &error);
  if (tls == NULL)
    {
      g_debug ("Pipe “%s”: dropping a peer: %s", self->name, error->message);
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }

  pending = g_new0 (Pending, 1);
  pending->acceptor = np_tls_acceptor_ref (self);
  pending->connection = g_object_ref (connection);
  pending->tls = tls;
  pending->cancellable = g_cancellable_new ();
  pending->address = remote != NULL && G_IS_INET_SOCKET_ADDRESS (remote)
                     ? g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)))
                     : g_strdup ("?");
  if (timeout_msec > 0)
    {
      pending->deadline = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;
      pending->timer = g_timeout_source_new (timeout_msec);
      g_source_set_static_name (pending->timer, "[np] TLS handshake deadline");
      g_source_set_callback (pending->timer, pending_timeout_cb, pending, NULL);
      g_source_attach (pending->timer, self->context);
    }

  g_mutex_lock (&self->lock);
  g_hash_table_add (self->pending, pending);
  closed = self->closed;
  g_mutex_unlock (&self->lock);

  if (closed)
    g_cancellable_cancel (pending->cancellable);

  /* A peer takes one of the few handshake slots only once its first
   * bytes arrived: one that connects and says nothing holds a
   * descriptor until its deadline, never a thread. */
  pending->hello = g_socket_create_source (g_socket_connection_get_socket (connection),
                                           G_IO_IN, pending->cancellable);
  g_source_set_static_name (pending->hello, "[np] TLS ClientHello");
  g_source_set_callback (pending->hello, G_SOURCE_FUNC (pending_hello_cb), pending, NULL);
  g_source_attach (pending->hello, self->context);
}

/* Peers in their TLS handshake. */
guint
np_tls_acceptor_get_n_pending (NpTlsAcceptor *self)
{
  guint n;

  g_mutex_lock (&self->lock);
  n = g_hash_table_size (self->pending);
  g_mutex_unlock (&self->lock);

  return n;
}

/* Ends every handshake under way and hands nothing more to the owner;
 * from any thread. */
void
np_tls_acceptor_close (NpTlsAcceptor *self)
{
  g_autoptr(GPtrArray) cancellables = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  Pending *pending;

  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, (gpointer *) &pending, NULL))
    g_ptr_array_add (cancellables, g_object_ref (pending->cancellable));
  g_mutex_unlock (&self->lock);

  /* With no lock held: a handshake may end at once, in this thread. */
  for (guint i = 0; i < cancellables->len; i++)
    g_cancellable_cancel (g_ptr_array_index (cancellables, i));
}

/* Dialing: a client's TCP connection, then its TLS handshake */

typedef struct
{
  GSocketConnectable *connectable;
  char               *address;
  gboolean            plaintext;
  NpTlsClientConfig   config;
  guint               timeout_msec;
  gint64              deadline;
  GCancellable       *cancellable;  /* ours: the caller's, or the timer, cancel it */
  GCancellable       *caller;
  gulong              chain_id;
  GSource            *timer;
  gboolean            timed_out;
  GSocketConnection  *connection;
  GTlsConnection     *tls;
} Dial;

static void
dial_free (gpointer data)
{
  Dial *dial = data;

  if (dial->timer != NULL)
    {
      g_source_destroy (dial->timer);
      g_source_unref (dial->timer);
    }
  if (dial->caller != NULL)
    {
      g_cancellable_disconnect (dial->caller, dial->chain_id);
      g_object_unref (dial->caller);
    }
  g_clear_object (&dial->cancellable);
  g_clear_object (&dial->connectable);
  g_clear_object (&dial->config.database);
  g_clear_object (&dial->config.interaction);
  g_clear_object (&dial->config.certificate);
  g_free (dial->config.pin);
  g_clear_object (&dial->connection);
  g_clear_object (&dial->tls);
  g_free (dial->address);
  g_free (dial);
}

static gboolean
dial_timeout_cb (gpointer data)
{
  Dial *dial = data;

  dial->timed_out = TRUE;
  g_cancellable_cancel (dial->cancellable);

  return G_SOURCE_REMOVE;
}

static void
dial_forward_cancel (GCancellable *caller,
                     gpointer      data)
{
  g_cancellable_cancel (data);
}

static void
dial_return_error (GTask  *task,
                   GError *error)
{
  Dial *dial = g_task_get_task_data (task);

  if (dial->connection != NULL)
    g_io_stream_close (G_IO_STREAM (dial->connection), NULL, NULL);

  if (dial->timed_out)
    {
      g_task_return_new_error (task, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                               _("“%s” did not complete the TLS handshake within %u ms"),
                               dial->address, dial->timeout_msec);
      g_error_free (error);
    }
  else
    g_task_return_error (task, error);
}

static void
dial_handshake_done (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!np_tls_handshake_finish (result, &error))
    {
      dial_return_error (task, error);
      return;
    }

  g_task_return_boolean (task, TRUE);
}

static void
dial_connected (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Dial *dial = g_task_get_task_data (task);
  g_autoptr(GSocketAddress) remote = NULL;
  GError *error = NULL;

  dial->connection = np_tcp_connect_finish (result, &error);
  if (dial->connection == NULL)
    {
      /* Our timer cancelled the TCP connect: a timeout, not the
       * caller's cancellation. */
      if (dial->timed_out)
        {
          g_error_free (error);
          error = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                               _("“%s” did not take the connection within %u ms"),
                               dial->address, dial->timeout_msec);
        }
      g_task_return_error (task, error);
      return;
    }

  if (dial->plaintext)
    {
      remote = g_socket_connection_get_remote_address (dial->connection, NULL);
      if (remote == NULL || !np_tcp_is_loopback (remote))
        {
          dial_return_error (task, g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                                                _("“%s” is not on this machine: plain text "
                                                  "(insecure-plaintext) is only allowed over "
                                                  "loopback, for measuring what TLS costs"),
                                                dial->address));
          return;
        }
      g_task_return_boolean (task, TRUE);
      return;
    }

  dial->tls = np_tls_client_new (dial->connection, dial->connectable, &dial->config, &error);
  if (dial->tls == NULL)
    {
      dial_return_error (task, error);
      return;
    }

  np_tls_handshake_async (dial->tls, dial->address, dial->config.pin, dial->cancellable,
                          dial_handshake_done, g_steal_pointer (&task));
}

/* Connects to @connectable over TCP within @timeout_msec (0: no limit),
 * then runs the TLS handshake with what @config asks of the server,
 * unless @plaintext (loopback only). In the caller's thread-default
 * context. */
void
np_tls_dial_async (GSocketConnectable      *connectable,
                   gboolean                 plaintext,
                   const NpTlsClientConfig *config,
                   guint                    timeout_msec,
                   GCancellable            *cancellable,
                   GAsyncReadyCallback      callback,
                   gpointer                 user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Dial *dial = g_new0 (Dial, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, np_tls_dial_async);
  g_task_set_name (task, "[np] dial over TCP");
  dial->connectable = g_object_ref (connectable);
  dial->address = np_tcp_format_connectable (connectable);
  dial->plaintext = plaintext;
  g_set_object (&dial->config.database, config->database);
  g_set_object (&dial->config.interaction, config->interaction);
  g_set_object (&dial->config.certificate, config->certificate);
  if (config->pin != NULL)
    {
      dial->config.pin = np_tls_normalize_pin (config->pin, &error);
      if (dial->config.pin == NULL)
        {
          g_prefix_error (&error, _("Cannot connect to “%s”: "), dial->address);
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
    }
  dial->config.accept = config->accept;
  dial->config.accept_data = config->accept_data;
  dial->timeout_msec = timeout_msec;
  dial->cancellable = g_cancellable_new ();
  g_task_set_task_data (task, dial, dial_free);

  if (!plaintext && !np_tls_check_available (dial->address, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (cancellable != NULL)
    {
      dial->caller = g_object_ref (cancellable);
      dial->chain_id = g_cancellable_connect (cancellable, G_CALLBACK (dial_forward_cancel),
                                              g_object_ref (dial->cancellable), g_object_unref);
    }
  if (timeout_msec > 0)
    {
      dial->timer = g_timeout_source_new (timeout_msec);
      g_source_set_static_name (dial->timer, "[np] dial timeout");
      g_source_set_callback (dial->timer, dial_timeout_cb, dial, NULL);
      g_source_attach (dial->timer, g_task_get_context (task));
    }

  np_tcp_connect_async (connectable, dial->cancellable, dial_connected, task);
}

/* Returns the connection, with its TLS connection in @tls (none in
 * plain text). */
GSocketConnection *
np_tls_dial_finish (GAsyncResult    *result,
                    GTlsConnection **tls,
                    GError         **error)
{
  Dial *dial = g_task_get_task_data (G_TASK (result));

  *tls = NULL;
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;

  *tls = g_steal_pointer (&dial->tls);
  return g_steal_pointer (&dial->connection);
}
