/* np-tls-private.h: TLS over TCP, through GIO's TLS (glib-networking)
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The ALPN protocol both ends advertise: versionless, as the version is
 * negotiated in the hello. */
#define NP_TLS_ALPN "np"

/* What a client asks of the server's certificate. */
typedef struct
{
  GTlsDatabase    *database;     /* NULL: the system's, or none with a pin */
  GTlsInteraction *interaction;
  GTlsCertificate *certificate;  /* the client's own, or NULL */
  char            *pin;          /* a SHA-256 fingerprint as given, or NULL */
  /* Asked when validation fails and no pin matches; NULL refuses. */
  gboolean       (*accept)      (GTlsCertificate      *certificate,
                                 GTlsCertificateFlags  errors,
                                 gpointer              data);
  gpointer         accept_data;
} NpTlsClientConfig;

gboolean         np_tls_check_available   (const char           *address,
                                           GError              **error);
gboolean         np_tls_certificate_has_key (GTlsCertificate    *certificate);

/* The input stream under a TLS connection: it reads what the socket
 * has, records ahead of what TLS asked, and keeps the rest. */
GInputStream    *np_tls_get_source        (GTlsConnection       *tls);
gboolean         np_tls_source_is_pending (GInputStream         *source);

/* The output stream under a TLS connection: it takes every write at
 * once, keeping what the socket does not take yet, so that the TLS
 * layer never sees a write half done. */
GOutputStream   *np_tls_get_sink          (GTlsConnection       *tls);
gboolean         np_tls_sink_is_pending   (GOutputStream        *sink);
/* Writes what is kept, without blocking: FALSE with @error on failure,
 * TRUE otherwise (np_tls_sink_is_pending() tells whether some is left). */
gboolean         np_tls_sink_flush        (GOutputStream        *sink,
                                           GError              **error);

/* Connects over TCP, then runs the TLS handshake (at most a few of a
 * side at once in the process, each taking a thread of GLib's pool while
 * it runs) and checks what Np asks of it: the ALPN protocol, the pin. */
void             np_tls_dial_async        (GSocketConnectable   *connectable,
                                           gboolean              plaintext,
                                           const NpTlsClientConfig *config,
                                           guint                 timeout_msec,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
GSocketConnection *np_tls_dial_finish     (GAsyncResult         *result,
                                           GTlsConnection      **tls,
                                           GError              **error);

/* A server's peers in their TLS handshake, each within a deadline;
 * handed to the owner (held weakly) once it is done. */
typedef struct _NpTlsAcceptor NpTlsAcceptor;

typedef void (*NpTlsAccepted) (GObject           *owner,
                               GSocketConnection *connection,
                               GTlsConnection    *tls,
                               guint              remaining_msec);

NpTlsAcceptor   *np_tls_acceptor_new      (GMainContext         *context,
                                           GObject              *owner,
                                           NpTlsAccepted         accepted,
                                           const char           *name);
NpTlsAcceptor   *np_tls_acceptor_ref      (NpTlsAcceptor        *self);
void             np_tls_acceptor_unref    (NpTlsAcceptor        *self);
void             np_tls_acceptor_accept   (NpTlsAcceptor        *self,
                                           GSocketConnection    *connection,
                                           GTlsCertificate      *certificate,
                                           GTlsAuthenticationMode mode,
                                           GTlsDatabase         *database,
                                           guint                 timeout_msec);
guint            np_tls_acceptor_get_n_pending
                                          (NpTlsAcceptor        *self);
void             np_tls_acceptor_close    (NpTlsAcceptor        *self);

G_END_DECLS
