/* np-connection-owner-private.h: what a connection reports to the
 * server or client it belongs to
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "np-pipe-connection.h"

G_BEGIN_DECLS

#define NP_TYPE_CONNECTION_OWNER (np_connection_owner_get_type ())

G_DECLARE_INTERFACE (NpConnectionOwner, np_connection_owner, NP, CONNECTION_OWNER, GObject)

/* Implemented by NpPipeServer and NpPipeClient. A connection calls these
 * in its owner's main context, with no lock held and a reference on both
 * until the call returns; after the connection's own signals of the same
 * event, if any. */
struct _NpConnectionOwnerInterface
{
  GTypeInterface parent_iface;

  /* The peer's handshake is complete: the peer accepted us. */
  void (*opened)  (NpConnectionOwner *self,
                   NpPipeConnection  *connection);
  /* A whole message arrived, with @fds when it carried descriptors
   * (%NULL otherwise): they are the owner's, closed with @fds unless it
   * keeps a reference. */
  void (*message) (NpConnectionOwner *self,
                   NpPipeConnection  *connection,
                   GBytes            *message,
                   GUnixFDList       *fds);
  /* A request arrived, with @fds as for a message: answer it, once,
   * through the NpPipeRequest made of it (_np_pipe_request_new()). */
  void (*request) (NpConnectionOwner *self,
                   NpPipeConnection  *connection,
                   guint32            id,
                   GBytes            *message,
                   GUnixFDList       *fds);
  /* What is queued, having passed half the queue limit, drained to a
   * quarter of it. Not called once the connection is closed. */
  void (*drained) (NpConnectionOwner *self,
                   NpPipeConnection  *connection);
  /* The connection ended: @error is %NULL after a clean close by either
   * side. Called once. */
  void (*closed)  (NpConnectionOwner *self,
                   NpPipeConnection  *connection,
                   const GError      *error);
};

gboolean np_connection_owner_takes_fds (gpointer     owner,
                                        guint        signal_id,
                                        GUnixFDList *fds);

G_END_DECLS
