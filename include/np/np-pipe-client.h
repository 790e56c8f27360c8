/* np-pipe-client.h
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
#include <gio/gunixfdlist.h>

#include "np-pipe-connection.h"
#include "np-version-macros.h"

G_BEGIN_DECLS

#define NP_TYPE_PIPE_CLIENT (np_pipe_client_get_type ())

NP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (NpPipeClient, np_pipe_client, NP, PIPE_CLIENT, GObject)

NP_AVAILABLE_IN_ALL
NpPipeClient *np_pipe_client_new                  (const char           *name);
NP_AVAILABLE_IN_ALL
NpPipeClient *np_pipe_client_new_for_connectable  (GSocketConnectable   *connectable);
NP_AVAILABLE_IN_ALL
const char   *np_pipe_client_get_name             (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
GSocketConnectable *np_pipe_client_get_connectable
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
GTlsDatabase *np_pipe_client_dup_tls_database     (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_tls_database     (NpPipeClient         *self,
                                                   GTlsDatabase         *database);
NP_AVAILABLE_IN_ALL
GTlsInteraction *np_pipe_client_dup_tls_interaction
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_tls_interaction  (NpPipeClient         *self,
                                                   GTlsInteraction      *interaction);
NP_AVAILABLE_IN_ALL
GTlsCertificate *np_pipe_client_dup_tls_certificate
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_tls_certificate  (NpPipeClient         *self,
                                                   GTlsCertificate      *certificate);
NP_AVAILABLE_IN_ALL
char         *np_pipe_client_dup_tls_pin          (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_tls_pin          (NpPipeClient         *self,
                                                   const char           *pin);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_get_insecure_plaintext
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_insecure_plaintext
                                                  (NpPipeClient         *self,
                                                   gboolean              insecure_plaintext);
NP_AVAILABLE_IN_ALL
const char   *np_pipe_client_get_path             (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
NpPipeConnection *np_pipe_client_get_connection (NpPipeClient       *self);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_get_connected        (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_max_message_size (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_max_message_size (NpPipeClient         *self,
                                                   guint                 max_message_size);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_max_queued_bytes (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_max_queued_bytes (NpPipeClient         *self,
                                                   guint                 max_queued_bytes);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_peer_max_message_size
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_connect_timeout  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_connect_timeout  (NpPipeClient         *self,
                                                   guint                 timeout_msec);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_close_timeout    (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_close_timeout    (NpPipeClient         *self,
                                                   guint                 timeout_msec);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_request_timeout  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_request_timeout  (NpPipeClient         *self,
                                                   guint                 timeout_msec);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_get_auto_reconnect   (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_auto_reconnect   (NpPipeClient         *self,
                                                   gboolean              auto_reconnect);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_reconnect_interval
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_reconnect_interval
                                                  (NpPipeClient         *self,
                                                   guint                 interval_msec);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_reconnect_max_interval
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_reconnect_max_interval
                                                  (NpPipeClient         *self,
                                                   guint                 interval_msec);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_connect_sync         (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_connect_async        (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_connect_finish       (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_send                 (NpPipeClient         *self,
                                                   GBytes               *message,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_send_data            (NpPipeClient         *self,
                                                   const guint8         *data,
                                                   gsize                 size,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_send_async           (NpPipeClient         *self,
                                                   GBytes               *message,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_send_finish          (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_flush_sync           (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_flush_async          (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_flush_finish         (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_ping_async           (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
gint64        np_pipe_client_ping_finish          (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_send_variant         (NpPipeClient         *self,
                                                   GVariant             *value,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_request_async        (NpPipeClient         *self,
                                                   GBytes               *request,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_finish       (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_sync         (NpPipeClient         *self,
                                                   GBytes               *request,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_request_data_async   (NpPipeClient         *self,
                                                   const guint8         *data,
                                                   gsize                 size,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_data_finish  (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_data_sync    (NpPipeClient         *self,
                                                   const guint8         *data,
                                                   gsize                 size,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_request_with_fds_async
                                                  (NpPipeClient         *self,
                                                   GBytes               *request,
                                                   GUnixFDList          *fd_list,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_with_fds_finish
                                                  (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GUnixFDList         **out_fd_list,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_client_request_with_fds_sync
                                                  (NpPipeClient         *self,
                                                   GBytes               *request,
                                                   GUnixFDList          *fd_list,
                                                   GUnixFDList         **out_fd_list,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
guint64       np_pipe_client_get_queued_bytes     (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_close                (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GError              **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_close_async          (NpPipeClient         *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_close_finish         (NpPipeClient         *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);

NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_max_fds_per_message
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_max_fds_per_message
                                                  (NpPipeClient         *self,
                                                   guint                 max_fds);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_max_pending_requests
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_max_pending_requests
                                                  (NpPipeClient         *self,
                                                   guint                 max_pending_requests);
NP_AVAILABLE_IN_ALL
guint         np_pipe_client_get_max_pending_request_bytes
                                                  (NpPipeClient         *self);
NP_AVAILABLE_IN_ALL
void          np_pipe_client_set_max_pending_request_bytes
                                                  (NpPipeClient         *self,
                                                   guint                 max_pending_request_bytes);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_client_send_with_fds        (NpPipeClient         *self,
                                                   GBytes               *message,
                                                   GUnixFDList          *fds,
                                                   GError              **error);

G_END_DECLS
