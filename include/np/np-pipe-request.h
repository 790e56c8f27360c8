/* np-pipe-request.h
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

#define NP_TYPE_PIPE_REQUEST (np_pipe_request_get_type ())

NP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (NpPipeRequest, np_pipe_request, NP, PIPE_REQUEST, GObject)

NP_AVAILABLE_IN_ALL
GBytes           *np_pipe_request_get_message        (NpPipeRequest *self);
NP_AVAILABLE_IN_ALL
GUnixFDList      *np_pipe_request_get_fd_list        (NpPipeRequest *self);
NP_AVAILABLE_IN_ALL
NpPipeConnection *np_pipe_request_get_connection     (NpPipeRequest *self);
NP_AVAILABLE_IN_ALL
gboolean          np_pipe_request_get_answered       (NpPipeRequest *self);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply              (NpPipeRequest *self,
                                                      GBytes        *reply);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply_with_fds     (NpPipeRequest *self,
                                                      GBytes        *reply,
                                                      GUnixFDList   *fd_list);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply_data         (NpPipeRequest *self,
                                                      const guint8  *data,
                                                      gsize          size);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply_variant      (NpPipeRequest *self,
                                                      GVariant      *value);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply_error        (NpPipeRequest *self,
                                                      const GError  *error);
NP_AVAILABLE_IN_ALL
void              np_pipe_request_reply_error_literal (NpPipeRequest *self,
                                                       GQuark         domain,
                                                       gint           code,
                                                       const char    *message);

G_END_DECLS
