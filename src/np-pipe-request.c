/* np-pipe-request.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-i18n-private.h"
#include "np-pipe-request-private.h"
#include "np-variant.h"

/**
 * NpPipeRequest:
 *
 * One request received, to be answered once.
 *
 * The server receives requests from its clients through
 * [signal@Np.PipeServer::request-received], and a client from its server
 * through [signal@Np.PipeClient::request-received]. Answer with
 * [method@Np.PipeRequest.reply] or [method@Np.PipeRequest.reply_error],
 * at once in the handler, or later, after asynchronous work, by keeping a
 * reference:
 *
 * ```c
 * static gboolean
 * on_request (NpPipeServer     *server,
 *             NpPipeConnection *connection,
 *             NpPipeRequest    *request,
 *             gpointer          user_data)
 * {
 *   g_autoptr(GBytes) reply = compute (np_pipe_request_get_message (request));
 *
 *   np_pipe_request_reply (request, reply);
 *   return TRUE;
 * }
 * ```
 *
 * A request may carry file descriptors, and its reply too (protocol
 * version 4): see [method@Np.PipeRequest.get_fd_list] and
 * [method@Np.PipeRequest.reply_with_fds].
 *
 * A request is answered once: answering it again is a programming error,
 * reported with `g_critical()`, and sends nothing. A request dropped
 * unanswered (its last reference gone) is answered with an error
 * (%NP_PIPE_ERROR_FAILED), so that no peer waits for ever.
 *
 * Requests kept to answer later are bounded per connection
 * ([property@Np.PipeServer:max-pending-requests] and
 * [property@Np.PipeServer:max-pending-request-bytes], and the same
 * properties of [class@Np.PipeClient]): past them, the peer's further
 * requests are answered at once with %NP_PIPE_ERROR_TOO_MANY_REQUESTS,
 * never delivered, until some are answered.
 *
 * The methods may be called from any thread.
 *
 * Since: 1.0
 */

struct _NpPipeRequest
{
  GObject           parent_instance;

  NpStream         *stream;
  GBytes           *message;
  GUnixFDList      *fds;
  NpPipeConnection *connection;
  guint32           id;
  gint              answered;   /* atomic */
};

G_DEFINE_FINAL_TYPE (NpPipeRequest, np_pipe_request, G_TYPE_OBJECT)

static void
np_pipe_request_finalize (GObject *object)
{
  NpPipeRequest *self = (NpPipeRequest *)object;

  if (self->stream != NULL && g_atomic_int_compare_and_exchange (&self->answered, FALSE, TRUE))
    {
      g_autoptr(GError) dropped = NULL;

      dropped = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_FAILED,
                             _("%s: the request was dropped without an answer"),
                             np_stream_get_label (self->stream));
      np_stream_reply (self->stream, self->id, NULL, NULL, dropped);
    }

  g_clear_pointer (&self->stream, np_stream_unref);
  g_clear_pointer (&self->message, g_bytes_unref);
  g_clear_object (&self->fds);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (np_pipe_request_parent_class)->finalize (object);
}

static void
np_pipe_request_class_init (NpPipeRequestClass *klass)
{
  np_i18n_init ();

  G_OBJECT_CLASS (klass)->finalize = np_pipe_request_finalize;
}

static void
np_pipe_request_init (NpPipeRequest *self)
{
}

NpPipeRequest *
_np_pipe_request_new (NpStream         *stream,
                      guint32           id,
                      GBytes           *message,
                      GUnixFDList      *fds,
                      NpPipeConnection *connection)
{
  NpPipeRequest *self = g_object_new (NP_TYPE_PIPE_REQUEST, NULL);

  self->stream = np_stream_ref (stream);
  self->id = id;
  self->message = g_bytes_ref (message);
  self->fds = fds != NULL ? g_object_ref (fds) : NULL;
  self->connection = connection != NULL ? g_object_ref (connection) : NULL;

  return self;
}

/* Answers a request the application did not take. */
void
_np_pipe_request_reply_unhandled (NpPipeRequest *self)
{
  g_autoptr(GError) error = NULL;

  if (np_pipe_request_get_answered (self))
    return;

  error = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_SUPPORTED,
                       _("%s: nothing handles requests on this pipe: no handler of "
                         "request-received took the request (a handler that returned "
                         "FALSE or nothing, or raised an error, counts as none)"),
                       np_stream_get_label (self->stream));
  np_pipe_request_reply_error (self, error);
}

/**
 * np_pipe_request_get_message:
 * @self: a #NpPipeRequest
 *
 * Gets the message of the request.
 *
 * Returns: (transfer none): the message
 *
 * Since: 1.0
 */
GBytes *
np_pipe_request_get_message (NpPipeRequest *self)
{
  g_return_val_if_fail (NP_IS_PIPE_REQUEST (self), NULL);

  return self->message;
}

/**
 * np_pipe_request_get_fd_list:
 * @self: a #NpPipeRequest
 *
 * Gets the file descriptors that came with the request, sent with
 * [method@Np.PipeClient.request_with_fds_async] or
 * [method@Np.PipeConnection.request_with_fds_async].
 *
 * They belong to the request: they are closed when its last reference
 * goes, unless the handler keeps a reference to the list, or takes them
 * out of it with g_unix_fd_list_steal_fds() (or duplicates one with
 * g_unix_fd_list_get()). A request nobody handled is answered with an
 * error and its descriptors are closed, as those of a message.
 *
 * Until the request is answered, its descriptors count among those the
 * library holds for peers, which it keeps below `RLIMIT_NOFILE` (less a
 * share left to the application): a peer whose requests, kept
 * unanswered, would take more is dropped with
 * %G_IO_ERROR_TOO_MANY_OPEN_FILES.
 *
 * Returns: (transfer none) (nullable): the descriptors, or %NULL when the
 *   request carried none
 *
 * Since: 1.0
 */
GUnixFDList *
np_pipe_request_get_fd_list (NpPipeRequest *self)
{
  g_return_val_if_fail (NP_IS_PIPE_REQUEST (self), NULL);

  return self->fds;
}

/**
 * np_pipe_request_get_connection:
 * @self: a #NpPipeRequest
 *
 * Gets the connection the request came over: at a server, the
 * connection of the client that sent it; at a client, the client's own
 * end of its connection ([method@Np.PipeClient.get_connection]).
 *
 * Returns: (transfer none): the connection
 *
 * Since: 1.0
 */
NpPipeConnection *
np_pipe_request_get_connection (NpPipeRequest *self)
{
  g_return_val_if_fail (NP_IS_PIPE_REQUEST (self), NULL);

  return self->connection;
}

/**
 * np_pipe_request_get_answered:
 * @self: a #NpPipeRequest
 *
 * Checks whether the request was answered.
 *
 * Returns: %TRUE once a reply or an error was given
 *
 * Since: 1.0
 */
gboolean
np_pipe_request_get_answered (NpPipeRequest *self)
{
  g_return_val_if_fail (NP_IS_PIPE_REQUEST (self), FALSE);

  return g_atomic_int_get (&self->answered);
}

static gboolean
np_pipe_request_take_answer (NpPipeRequest *self)
{
  if (!g_atomic_int_compare_and_exchange (&self->answered, FALSE, TRUE))
    {
      g_critical ("The request was answered already; a request is answered once");
      return FALSE;
    }

  return TRUE;
}

/**
 * np_pipe_request_reply:
 * @self: a #NpPipeRequest
 * @reply: the reply, 0 bytes or more
 *
 * Answers the request with @reply. The reply is queued like a message;
 * it counts against the limit of what may be queued to the peer. When the
 * peer is gone, it goes nowhere.
 *
 * A reply larger than the peer accepts is not sent: the peer receives the
 * error %NP_PIPE_ERROR_MESSAGE_TOO_LARGE instead.
 *
 * Since: 1.0
 */
void
np_pipe_request_reply (NpPipeRequest *self,
                       GBytes        *reply)
{
  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (reply != NULL);

  if (np_pipe_request_take_answer (self))
    np_stream_reply (self->stream, self->id, reply, NULL, NULL);
}

/**
 * np_pipe_request_reply_with_fds:
 * @self: a #NpPipeRequest
 * @reply: the reply, 0 bytes or more
 * @fd_list: (nullable): the descriptors to pass with it, at most 253
 *
 * Answers the request with @reply and the file descriptors of @fd_list,
 * which travel with it over the socket (`SCM_RIGHTS`): the requester
 * receives duplicates of them from
 * [method@Np.PipeClient.request_with_fds_finish] (or
 * [method@Np.PipeConnection.request_with_fds_finish]). A reference to
 * @fd_list is kept until the reply is written; @fd_list with no
 * descriptors, or %NULL, answers like [method@Np.PipeRequest.reply].
 *
 * Only a peer whose library speaks protocol version 4 or later takes
 * descriptors with a reply. Such a reply to an older peer is not sent,
 * nor sent without its descriptors: the requester receives the error
 * %NP_PIPE_ERROR_NOT_SUPPORTED instead, as it receives
 * %NP_PIPE_ERROR_MESSAGE_TOO_LARGE instead of a reply too large for it,
 * and the descriptors are let go of. The same goes for more than 253
 * descriptors, and for more than the requester takes per frame (its
 * max-fds-per-message, announced in the handshake), which it receives
 * as %NP_PIPE_ERROR_MESSAGE_TOO_LARGE; a requester that asked before it
 * announced it receives %NP_PIPE_ERROR_NOT_SUPPORTED.
 *
 * The requester closes the descriptors of a reply it did not ask for
 * with [method@Np.PipeClient.request_with_fds_async].
 *
 * Since: 1.0
 */
void
np_pipe_request_reply_with_fds (NpPipeRequest *self,
                                GBytes        *reply,
                                GUnixFDList   *fd_list)
{
  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (reply != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));

  if (np_pipe_request_take_answer (self))
    np_stream_reply (self->stream, self->id, reply, fd_list, NULL);
}

/**
 * np_pipe_request_reply_data:
 * @self: a #NpPipeRequest
 * @data: (array length=size) (element-type guint8) (nullable): the reply
 * @size: the length of @data
 *
 * Answers the request with a copy of @data, like
 * [method@Np.PipeRequest.reply]: the call for bindings that hold a byte
 * string, such as a Python `bytes` object.
 *
 * Since: 1.0
 */
void
np_pipe_request_reply_data (NpPipeRequest *self,
                            const guint8  *data,
                            gsize          size)
{
  g_autoptr(GBytes) reply = NULL;

  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (data != NULL || size == 0);

  reply = g_bytes_new (data, size);
  np_pipe_request_reply (self, reply);
}

/**
 * np_pipe_request_reply_variant:
 * @self: a #NpPipeRequest
 * @value: the reply; a floating reference is consumed
 *
 * Answers the request with @value, as [func@Np.variant_to_message] makes
 * it a message.
 *
 * Since: 1.0
 */
void
np_pipe_request_reply_variant (NpPipeRequest *self,
                               GVariant      *value)
{
  g_autoptr(GBytes) reply = NULL;

  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (value != NULL);

  reply = np_variant_to_message (value);
  np_pipe_request_reply (self, reply);
}

/**
 * np_pipe_request_reply_error:
 * @self: a #NpPipeRequest
 * @error: why the request failed
 *
 * Answers the request with @error. It reaches the requester with the
 * same domain, code and message, so that `g_error_matches()` there
 * matches what is given here, whatever the domain.
 *
 * Since: 1.0
 */
void
np_pipe_request_reply_error (NpPipeRequest *self,
                             const GError  *error)
{
  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (error != NULL);

  if (np_pipe_request_take_answer (self))
    np_stream_reply (self->stream, self->id, NULL, NULL, error);
}

/**
 * np_pipe_request_reply_error_literal:
 * @self: a #NpPipeRequest
 * @domain: the error domain
 * @code: the error code
 * @message: the error message
 *
 * Answers the request with an error, like
 * [method@Np.PipeRequest.reply_error]; the call for bindings.
 *
 * Since: 1.0
 */
void
np_pipe_request_reply_error_literal (NpPipeRequest *self,
                                     GQuark         domain,
                                     gint           code,
                                     const char    *message)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (NP_IS_PIPE_REQUEST (self));
  g_return_if_fail (domain != 0);
  g_return_if_fail (message != NULL);

  error = g_error_new_literal (domain, code, message);
  np_pipe_request_reply_error (self, error);
}
