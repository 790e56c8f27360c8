/* np-pipe-connection.h
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

#include "np-version-macros.h"

G_BEGIN_DECLS

#define NP_TYPE_PIPE_CONNECTION (np_pipe_connection_get_type ())

NP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (NpPipeConnection, np_pipe_connection, NP, PIPE_CONNECTION, GObject)

NP_AVAILABLE_IN_ALL
guint64       np_pipe_connection_get_id                (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
gint          np_pipe_connection_get_peer_pid          (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_connection_get_peer_uid          (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_connection_get_peer_gid          (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
GCredentials *np_pipe_connection_get_peer_credentials  (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
GTlsCertificate *np_pipe_connection_get_peer_certificate
                                                       (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
GTlsCertificateFlags np_pipe_connection_get_peer_certificate_errors
                                                       (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
GSocketAddress *np_pipe_connection_get_remote_address  (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_connection_get_peer_max_message_size
                                                       (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_send                  (NpPipeConnection  *self,
                                                        GBytes            *message,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_send_with_fds         (NpPipeConnection  *self,
                                                        GBytes            *message,
                                                        GUnixFDList       *fds,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_send_data             (NpPipeConnection  *self,
                                                        const guint8      *data,
                                                        gsize              size,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_send_variant          (NpPipeConnection  *self,
                                                        GVariant          *value,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_send_async            (NpPipeConnection  *self,
                                                        GBytes            *message,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_send_finish           (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_flush_sync            (NpPipeConnection  *self,
                                                        GCancellable      *cancellable,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_flush_async           (NpPipeConnection  *self,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_flush_finish          (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_request_async         (NpPipeConnection  *self,
                                                        GBytes            *request,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_finish        (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_request_data_async    (NpPipeConnection  *self,
                                                        const guint8      *data,
                                                        gsize              size,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_data_finish   (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_request_with_fds_async
                                                       (NpPipeConnection  *self,
                                                        GBytes            *request,
                                                        GUnixFDList       *fd_list,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_with_fds_finish
                                                       (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GUnixFDList      **out_fd_list,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_with_fds_sync (NpPipeConnection  *self,
                                                        GBytes            *request,
                                                        GUnixFDList       *fd_list,
                                                        GUnixFDList      **out_fd_list,
                                                        GCancellable      *cancellable,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_sync          (NpPipeConnection  *self,
                                                        GBytes            *request,
                                                        GCancellable      *cancellable,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
GBytes       *np_pipe_connection_request_data_sync     (NpPipeConnection  *self,
                                                        const guint8      *data,
                                                        gsize              size,
                                                        GCancellable      *cancellable,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_ping_async            (NpPipeConnection    *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
NP_AVAILABLE_IN_ALL
gint64        np_pipe_connection_ping_finish           (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
guint64       np_pipe_connection_get_queued_bytes      (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_close                 (NpPipeConnection  *self,
                                                        GCancellable      *cancellable,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
void          np_pipe_connection_close_async           (NpPipeConnection  *self,
                                                        GCancellable      *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer           user_data);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_close_finish          (NpPipeConnection  *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
NP_AVAILABLE_IN_ALL
gboolean      np_pipe_connection_get_connected         (NpPipeConnection  *self);
NP_AVAILABLE_IN_ALL
guint         np_pipe_connection_get_max_queued_bytes  (NpPipeConnection  *self);

G_END_DECLS
