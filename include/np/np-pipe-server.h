/* np-pipe-server.h
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (NP_INSIDE) && !defined (NP_COMPILATION)
# error "Only <np/np.h> can be included directly."
#endif

#include <gio/gio.h>

#include "np-version-macros.h"

G_BEGIN_DECLS

#define NP_TYPE_PIPE_SERVER (np_pipe_server_get_type ())

NP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (NpPipeServer, np_pipe_server, NP, PIPE_SERVER, GObject)

NP_AVAILABLE_IN_ALL
NpPipeServer *np_pipe_server_new                   (const char    *name);
NP_AVAILABLE_IN_ALL
NpPipeServer *np_pipe_server_new_for_address       (GInetSocketAddress *address);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_server_start                 (NpPipeServer  *self,
                                                    GError       **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_stop                  (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_server_is_running            (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
const char   *np_pipe_server_get_name              (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
const char   *np_pipe_server_get_path              (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_n_connections     (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
GListModel   *np_pipe_server_get_connections       (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_broadcast             (NpPipeServer  *self,
                                                    GBytes        *message);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_message_size  (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_message_size  (NpPipeServer  *self,
                                                    guint          max_message_size);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_queued_bytes  (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_queued_bytes  (NpPipeServer  *self,
                                                    guint          max_queued_bytes);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_connections   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_connections   (NpPipeServer  *self,
                                                    guint          max_connections);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_server_get_allow_other_users (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_allow_other_users (NpPipeServer  *self,
                                                    gboolean       allow_other_users);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_handshake_timeout (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_handshake_timeout (NpPipeServer  *self,
                                                    guint          timeout_msec);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_close_timeout     (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_close_timeout     (NpPipeServer  *self,
                                                    guint          timeout_msec);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_request_timeout   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_request_timeout   (NpPipeServer  *self,
                                                    guint          timeout_msec);

NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_fds_per_message
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_fds_per_message
                                                   (NpPipeServer  *self,
                                                    guint          max_fds);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_pending_requests
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_pending_requests
                                                   (NpPipeServer  *self,
                                                    guint          max_pending_requests);
NP_AVAILABLE_IN_ALL
guint         np_pipe_server_get_max_pending_request_bytes
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_max_pending_request_bytes
                                                   (NpPipeServer  *self,
                                                    guint          max_pending_request_bytes);

NP_AVAILABLE_IN_ALL
GInetSocketAddress *np_pipe_server_get_address     (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
GTlsCertificate *np_pipe_server_dup_tls_certificate
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_tls_certificate   (NpPipeServer  *self,
                                                    GTlsCertificate *certificate);
NP_AVAILABLE_IN_ALL
GTlsAuthenticationMode np_pipe_server_get_tls_authentication_mode
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_tls_authentication_mode
                                                   (NpPipeServer  *self,
                                                    GTlsAuthenticationMode mode);
NP_AVAILABLE_IN_ALL
GTlsDatabase *np_pipe_server_dup_tls_database      (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_tls_database      (NpPipeServer  *self,
                                                    GTlsDatabase  *database);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_server_get_allow_anonymous   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_allow_anonymous   (NpPipeServer  *self,
                                                    gboolean       allow_anonymous);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_server_get_insecure_plaintext
                                                   (NpPipeServer  *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_server_set_insecure_plaintext
                                                   (NpPipeServer  *self,
                                                    gboolean       insecure_plaintext);

G_END_DECLS
