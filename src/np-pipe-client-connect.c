/* np-pipe-client-connect.c: connecting a client
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <gio/gunixsocketaddress.h>

#include "np-context-private.h"
#include "np-error.h"
#include "np-listener-private.h"
#include "np-name-private.h"
#include "np-pipe-client-internal.h"
#include "np-socket-connect-private.h"

#define properties np_pipe_client_properties

/* Checks that a connect may begin, and marks it begun. */
static gboolean
np_pipe_client_begin_connect_locked (NpPipeClient  *self,
                                     gboolean      *already,
                                     GError       **error)
{
  *already = self->connected && self->stream != NULL && np_stream_is_open (self->stream);
  if (*already)
    return TRUE;

  if (self->attempt != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   _("Pipe “%s”: a connect is already under way"), self->name);
      return FALSE;
    }

  if (self->name == NULL)
    {
      g_set_error_literal (error, NP_PIPE_ERROR, NP_PIPE_ERROR_INVALID_NAME,
                           _("The client has no pipe name to connect to"));
      return FALSE;
    }

  if (self->path == NULL)
    {
      g_autofree char *path = np_name_to_path (self->name, error);
      g_assert (path == NULL);
      return FALSE;
    }

  self->attempt = g_cancellable_new ();
  np_pipe_client_note_refusal_locked (self, NULL);
  return TRUE;
}

static void
np_pipe_client_forward_cancel (GCancellable *cancellable,
                               gpointer      data)
{
  g_cancellable_cancel (data);
}

/* Makes the caller's @cancellable cancel @attempt too. */
static gulong
np_pipe_client_chain_cancellable (GCancellable *cancellable,
                                  GCancellable *attempt)
{
  if (cancellable == NULL)
    return 0;

  return g_cancellable_connect (cancellable, G_CALLBACK (np_pipe_client_forward_cancel),
                                g_object_ref (attempt), g_object_unref);
}

/* Makes a stream of @connection the client's; returns the one it
 * replaces, if it is closed. One still closing (writing what was queued
 * after the server ended its side, or closed by close_async()) goes on
 * and reports its end as `disconnected`; until then the client keeps it
 * among its retired streams, so that it can detach it when it goes.
 * *@was_connected says whether the client was connected through it. */
static NpStream *
np_pipe_client_attach_locked (NpPipeClient       *self,
                              GSocketConnection  *connection,
                              guint               handshake_timeout,
                              NpStream          **stream_out,
                              gboolean           *was_connected)
{
  g_autofree char *label = g_strdup_printf (_("Pipe “%s”"), self->name);
  NpStream *old = self->stream;

  *was_connected = self->connected;
  np_pipe_client_set_connected_locked (self, FALSE);
  if (old != NULL && !np_stream_is_done_locked (old))
    {
      g_ptr_array_add (self->retired, old);
      old = NULL;
    }

  self->stream = np_stream_new (G_OBJECT (self), &np_pipe_client_stream_callbacks,
                                np_transport_unix_new (connection), self->context,
                                self->lock, label, self->max_message_size);
  np_stream_configure_locked (self->stream, self->max_queued_bytes, FALSE,
                              handshake_timeout, self->close_timeout, self->request_timeout);
  np_stream_set_max_fds_locked (self->stream, self->max_fds_per_message);
  np_stream_set_pending_limits_locked (self->stream, self->max_pending_requests,
                                       self->max_pending_request_bytes);
  *stream_out = self->stream;

  return old;
}

/* Whether connect_sync() may wait for the server's hello on
 * @connection: not when the server is one of this process that only the
 * calling thread would run (its context is owned by this thread, or is
 * this thread's own and no other thread runs it), which would wait for
 * itself, nor when it is a listener of this process whose context is
 * unknown. */
static gboolean
np_pipe_client_server_answers (GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr(GCredentials) credentials = g_socket_get_credentials (socket, NULL);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GMainContext) context = NULL;
  GMainContext *here;

  /* Another process answers whatever this thread does. */
  if (credentials == NULL || g_credentials_get_unix_pid (credentials, NULL) != getpid ())
    return TRUE;

  address = g_socket_connection_get_remote_address (connection, NULL);
  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    context = np_listener_lookup_context (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address)));
  if (context == NULL)
    return FALSE;

  if (g_main_context_is_owner (context))
    return FALSE;

  here = g_main_context_get_thread_default ();
  if (here == NULL)
    here = g_main_context_default ();
  if (context == here && g_main_context_acquire (context))
    {
      g_main_context_release (context);
      return FALSE;
    }

  return TRUE;
}

/* Ends the wait of connect_sync() on @stream, once, with success when
 * @error is %NULL: the server's hello arrived, or the connection ended
 * first. Returns FALSE when no connect_sync() waits on @stream. Called
 * from the stream's callbacks, in whatever thread reads it. */
gboolean
np_pipe_client_connected_sync (NpPipeClient *self,
                               NpStream     *stream,
                               const GError *error)
{
  g_autoptr(GError) cancelled = NULL;
  NpServerWatch *reconnect = NULL;
  NpStreamWait *wait = NULL;
  NpStream *waited = NULL;

  g_mutex_lock (self->lock);
  if (self->connect_wait != NULL && self->connect_stream == stream)
    {
      wait = g_steal_pointer (&self->connect_wait);
      waited = g_steal_pointer (&self->connect_stream);
      /* The attempt is connect_sync()'s until it ends; close() cancels
       * it under the lock, and a hello that comes after must not
       * connect the client it closed. */
      if (error == NULL && self->attempt != NULL && g_cancellable_is_cancelled (self->attempt))
        error = cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("Operation was cancelled"));
      if (error == NULL)
        {
          reconnect = np_pipe_client_stop_reconnecting_locked (self);
          np_pipe_client_set_connected_locked (self, TRUE);
        }
    }
  g_mutex_unlock (self->lock);

  if (wait == NULL)
    return FALSE;

  g_clear_pointer (&reconnect, np_server_watch_free);
  g_clear_pointer (&waited, np_stream_unref);
  np_stream_wait_done (wait, error);

  return TRUE;
}

/**
 * np_pipe_client_connect_sync:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the server and waits until the server has accepted the
 * client (its handshake arrived), as [method@Np.PipeClient.connect_async]
 * does, blocking the calling thread for at most
 * [property@Np.PipeClient:connect-timeout] in all. A refusal is the error
 * of this call: %NP_PIPE_ERROR_PERMISSION_DENIED or
 * %NP_PIPE_ERROR_TOO_MANY_CLIENTS, with the server's reason. No main
 * context is iterated: when no other thread runs the client's main
 * context, this thread reads the socket itself, and
 * [signal@Np.PipeClient::accepted] (and any message that arrives with the
 * handshake) is emitted from here, as the context would.
 *
 * One server is not waited for: a [class@Np.PipeServer] of this same
 * process whose main context only the calling thread would run (this
 * thread owns that context, or it is this thread's thread-default one and
 * no other thread runs it), which could not answer while this thread
 * waits; nor a listening socket of this process that is no
 * [class@Np.PipeServer]. Then this returns as soon as the connection is
 * made, without waiting for anything only that main loop can provide, so
 * that a server and its clients may share one thread: once the loop runs,
 * the connection works, and a refusal arrives as
 * [signal@Np.PipeClient::disconnected].
 *
 * Fails with %NP_PIPE_ERROR_NOT_FOUND when no server runs under the name,
 * %NP_PIPE_ERROR_INVALID_NAME when the name cannot be a pipe,
 * %NP_PIPE_ERROR_TIMED_OUT when the server did not take the connection or
 * did not answer the handshake in time, and %G_IO_ERROR_CANCELLED when
 * @cancellable is cancelled or [method@Np.PipeClient.close] is called
 * meanwhile. Connecting a connected client does nothing.
 *
 * Returns: %TRUE if the client is connected
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_connect_sync (NpPipeClient  *self,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_autoptr(NpPipeClient) hold = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GCancellable) attempt = NULL;
  g_autoptr(GError) failure = NULL;
  NpServerWatch *watch = NULL;
  NpStream *old = NULL;
  NpStream *stream = NULL;
  NpStreamWait wait;
  gboolean already;
  gboolean was_connected = FALSE;
  gboolean wait_for_server = FALSE;
  gboolean ret = TRUE;
  gint64 deadline = -1;
  gulong chain_id;
  guint timeout;

  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  hold = g_object_ref (self);

  g_mutex_lock (self->lock);
  if (!np_pipe_client_begin_connect_locked (self, &already, error))
    {
      g_mutex_unlock (self->lock);
      return FALSE;
    }
  if (already)
    {
      g_mutex_unlock (self->lock);
      return TRUE;
    }
  attempt = g_object_ref (self->attempt);
  timeout = self->connect_timeout;
  g_mutex_unlock (self->lock);

  if (timeout > 0)
    deadline = g_get_monotonic_time () + timeout * G_TIME_SPAN_MILLISECOND;

  chain_id = np_pipe_client_chain_cancellable (cancellable, attempt);
  connection = np_socket_connect_sync (self->name, self->path, timeout, attempt, error);
  if (connection != NULL)
    wait_for_server = np_pipe_client_server_answers (connection);

  np_stream_wait_init (&wait);

  g_mutex_lock (self->lock);
  /* close() cancels the attempt under the lock: one that came while the
   * socket connected ends it here, as it would have ended the dial. */
  if (connection != NULL && g_cancellable_is_cancelled (attempt))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("Operation was cancelled"));
      g_clear_object (&connection);
      wait_for_server = FALSE;
    }
  if (connection != NULL)
    {
      guint left = 0;

      /* What is left of the connect timeout bounds the handshake. */
      if (deadline >= 0)
        left = MAX (1, (deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);
      old = np_pipe_client_attach_locked (self, connection, left, &stream, &was_connected);
      np_stream_ref (stream);
      if (wait_for_server)
        {
          /* Until the server answers, a connect is under way. */
          self->connect_wait = &wait;
          self->connect_stream = np_stream_ref (stream);
        }
      else
        {
          watch = np_pipe_client_stop_reconnecting_locked (self);
          np_pipe_client_set_connected_locked (self, TRUE);
        }
    }
  if (!wait_for_server && self->attempt == attempt)
    g_clear_object (&self->attempt);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
  if (connection == NULL)
    {
      g_cancellable_disconnect (cancellable, chain_id);
      np_stream_wait_clear (&wait);
      return FALSE;
    }

  g_clear_pointer (&old, np_stream_unref);
  np_stream_start (stream);

  if (wait_for_server)
    {
      if (was_connected)
        np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);

      np_stream_block (stream, &wait, deadline, attempt);

      g_mutex_lock (self->lock);
      if (self->connect_wait == &wait)
        {
          /* Given up: cancelled, or the server did not answer in time. */
          self->connect_wait = NULL;
          g_clear_pointer (&self->connect_stream, np_stream_unref);
          if (g_cancellable_is_cancelled (attempt))
            failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           _("Operation was cancelled"));
          else
            failure = g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                                   _("Pipe “%s”: the server did not complete the handshake "
                                     "within %u ms"),
                                   self->name, timeout);
        }
      if (self->attempt == attempt)
        g_clear_object (&self->attempt);
      g_mutex_unlock (self->lock);

      /* Otherwise whoever took the wait ends it, if not yet. */
      g_mutex_lock (&wait.mutex);
      while (failure == NULL && !wait.done)
        g_cond_wait (&wait.cond, &wait.mutex);
      g_mutex_unlock (&wait.mutex);

      if (failure == NULL && wait.error != NULL)
        failure = g_error_copy (wait.error);

      /* A connection that failed is closed without a report. */
      if (failure != NULL)
        {
          np_stream_detach (stream);
          g_propagate_error (error, g_steal_pointer (&failure));
          ret = FALSE;
        }
      else
        np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);
    }
  else if (!was_connected)
    np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);

  g_cancellable_disconnect (cancellable, chain_id);
  np_stream_unref (stream);
  np_stream_wait_clear (&wait);

  return ret;
}

typedef struct
{
  GCancellable  *caller;      /* the caller's, chained to cancel attempt */
  gulong         chain_id;
  GCancellable  *attempt;
  gint64         deadline;
  guint          timeout;
  /* Waiting for a server that does not run yet (auto-reconnect). Only
   * the task's context touches these, but watch, under the lock. */
  NpServerWatch *watch;
  guint          delay;       /* the next back-off, before jitter */
  guint          max_delay;
  guint          interval;
  guint          wait : 1;
  guint          dialing : 1;      /* a socket connect is under way, or made */
  guint          retry_soon : 1;   /* the server showed up since the last wait */
  guint          early_dial : 1;   /* the dial under way was one of the early ones */
  guint          timer_full : 1;   /* the timer is a whole back-off */
  guint          early;            /* attempts made before this wait ran out */
  guint          attempt_watched : 1;
} ConnectData;

static void
connect_data_free (gpointer data)
{
  ConnectData *connect = data;

  /* The watch holds a reference on the task. */
  g_assert (connect->watch == NULL);

  if (connect->caller != NULL)
    g_cancellable_disconnect (connect->caller, connect->chain_id);
  g_clear_object (&connect->caller);
  g_clear_object (&connect->attempt);
  g_free (connect);
}

/* Ends the connect_async of @task, once: with success when @error is
 * %NULL. Called from the client's context or the task's, by a caller
 * that holds a reference on @task. */
void
np_pipe_client_connected (NpPipeClient *self,
                          GTask        *task,
                          const GError *error)
{
  ConnectData *connect = g_task_get_task_data (task);
  NpServerWatch *waiting = NULL;
  NpServerWatch *reconnect = NULL;
  NpStream *stream = NULL;
  GCancellable *attempt = NULL;
  gulong attempt_id = 0;

  g_mutex_lock (self->lock);
  if (self->connect_task != task)
    {
      g_mutex_unlock (self->lock);
      return;
    }

  g_clear_object (&self->connect_task);
  stream = g_steal_pointer (&self->connect_stream);
  attempt = g_steal_pointer (&self->attempt);
  attempt_id = self->attempt_id;
  self->attempt_id = 0;
  waiting = g_steal_pointer (&connect->watch);
  if (error == NULL)
    {
      reconnect = np_pipe_client_stop_reconnecting_locked (self);
      np_pipe_client_set_connected_locked (self, TRUE);
    }
  else if (!self->reconnecting)
    /* Nothing will connect to send them. */
    np_pipe_client_drop_held_locked (self);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&waiting, np_server_watch_free);
  g_clear_pointer (&reconnect, np_server_watch_free);

  if (attempt != NULL)
    {
      g_cancellable_disconnect (attempt, attempt_id);
      g_object_unref (attempt);
    }

  /* A connection that failed half-way is closed without a report. */
  if (error != NULL && stream != NULL)
    np_stream_detach (stream);
  g_clear_pointer (&stream, np_stream_unref);

  if (error == NULL)
    {
      np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_error (task, g_error_copy (error));
}

static gboolean
np_pipe_client_attempt_cancelled_cb (gpointer data)
{
  GTask *task = data;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("Operation was cancelled"));

  np_pipe_client_connected (g_task_get_source_object (task), task, error);

  return G_SOURCE_REMOVE;
}

static void
np_pipe_client_attempt_cancelled (GCancellable *attempt,
                                  gpointer      data)
{
  GTask *task = data;
  g_autoptr(GSource) idle = g_idle_source_new ();

  /* Never from inside the cancel call. */
  g_source_set_static_name (idle, "[np] cancelled connect");
  g_source_set_callback (idle, np_pipe_client_attempt_cancelled_cb,
                         g_object_ref (task), g_object_unref);
  g_source_attach (idle, g_task_get_context (task));
}

/* Has a cancel of the attempt end the connect at once, from the task's
 * context: while it waits for the server's hello, or for the server to
 * start. np_socket_connect_async() watches it while it dials. */
static void
np_pipe_client_watch_attempt (NpPipeClient *self,
                              GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  gulong id;

  if (connect->attempt_watched)
    return;
  connect->attempt_watched = TRUE;

  id = g_cancellable_connect (connect->attempt, G_CALLBACK (np_pipe_client_attempt_cancelled),
                              g_object_ref (task), g_object_unref);
  g_mutex_lock (self->lock);
  if (self->connect_task == task)
    {
      self->attempt_id = id;
      id = 0;
    }
  g_mutex_unlock (self->lock);

  /* Done already: whoever finished it did not know the handler. */
  if (id != 0)
    g_cancellable_disconnect (connect->attempt, id);
}

static void np_pipe_client_socket_connected (GObject      *object,
                                             GAsyncResult *result,
                                             gpointer      user_data);

static GError *
np_pipe_client_no_server_error_new (NpPipeClient *self,
                                    ConnectData  *connect)
{
  return g_error_new (NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
                      _("No server started as pipe “%s” (%s) within %u ms"),
                      self->name, self->path, connect->timeout);
}

/* Dials the server once more, in the task's context, with what is left
 * of the connect timeout to wait for a busy one. */
static void
np_pipe_client_dial (NpPipeClient *self,
                     GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  guint timeout = 0;

  if (connect->deadline > 0)
    timeout = MAX (1, (connect->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);

  connect->dialing = TRUE;
  g_main_context_push_thread_default (g_task_get_context (task));
  np_socket_connect_async (self->name, self->path, timeout, connect->attempt,
                           np_pipe_client_socket_connected, g_object_ref (task));
  g_main_context_pop_thread_default (g_task_get_context (task));
}

/* The back-off passed, or the server's socket showed up. */
static void
np_pipe_client_retry_connect (gpointer data,
                              gboolean from_monitor)
{
  GTask *task = data;
  NpPipeClient *self = g_task_get_source_object (task);
  ConnectData *connect = g_task_get_task_data (task);
  gboolean pending;

  g_mutex_lock (self->lock);
  pending = self->connect_task == task;
  g_mutex_unlock (self->lock);

  if (!pending)
    return;

  /* The last wait ends at the deadline: no server came. */
  if (!from_monitor && !connect->dialing && connect->deadline > 0 &&
      g_get_monotonic_time () >= connect->deadline)
    {
      g_autoptr(GError) error = np_pipe_client_no_server_error_new (self, connect);

      np_pipe_client_connected (self, task, error);
      return;
    }

  /* As the reconnect loop: a few hints per wait, then the back-off. */
  if (!from_monitor && connect->timer_full)
    connect->early = 0;
  if ((from_monitor || !connect->timer_full) && connect->early >= NP_EARLY_ATTEMPTS_PER_WAIT)
    return;
  connect->retry_soon = connect->retry_soon || from_monitor;
  if (!connect->dialing)
    {
      connect->early_dial = from_monitor || !connect->timer_full;
      if (connect->early_dial)
        connect->early++;
      np_pipe_client_dial (self, task);
    }
}

/* No server runs under the name: waits for one to start, until the
 * connect timeout. Returns FALSE when that has passed. */
static gboolean
np_pipe_client_wait_for_server (NpPipeClient *self,
                                GTask        *task)
{
  ConnectData *connect = g_task_get_task_data (task);
  NpServerWatch *watch = NULL;
  gint64 now = g_get_monotonic_time ();
  guint delay;

  if (connect->deadline > 0 && now >= connect->deadline)
    return FALSE;

  if (connect->retry_soon && connect->early < NP_EARLY_ATTEMPTS_PER_WAIT)
    {
      /* The server showed up: it may be about to listen. */
      delay = np_backoff_jitter (MIN (connect->interval, NP_RETRY_SOON_MSEC));
      connect->timer_full = FALSE;
    }
  else
    {
      delay = np_backoff_jitter (connect->delay);
      connect->delay = MIN ((guint64) connect->delay * 2, connect->max_delay);
      connect->timer_full = TRUE;
    }
  connect->retry_soon = FALSE;
  if (connect->deadline > 0)
    delay = MIN ((gint64) delay, (connect->deadline - now + 999) / G_TIME_SPAN_MILLISECOND);

  if (connect->watch == NULL)
    /* The dial found no server: one that came since is news. */
    watch = np_server_watch_new (self->path, TRUE, g_task_get_context (task),
                                 np_pipe_client_retry_connect, g_object_ref (task), g_object_unref);

  g_mutex_lock (self->lock);
  if (self->connect_task == task)
    {
      if (watch != NULL)
        connect->watch = g_steal_pointer (&watch);
      np_server_watch_set_timer (connect->watch, delay);
    }
  g_mutex_unlock (self->lock);

  /* Ended meanwhile (cancelled). */
  g_clear_pointer (&watch, np_server_watch_free);

  np_pipe_client_watch_attempt (self, task);

  return TRUE;
}

static void
np_pipe_client_socket_connected (GObject      *object,
                                 GAsyncResult *result,
                                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  NpPipeClient *self = g_task_get_source_object (task);
  ConnectData *connect = g_task_get_task_data (task);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  NpServerWatch *watch = NULL;
  NpStream *old = NULL;
  NpStream *stream = NULL;
  gboolean was_connected;
  guint timeout = 0;

  connection = np_socket_connect_finish (result, &error);
  if (connection == NULL)
    {
      connect->dialing = FALSE;
      /* An early dial that found no server (a hint from the directory
       * before the socket listened: its lock file, the directory made
       * anew) reached nobody: it costs too little to bound, and must not
       * use up the early attempts the socket's own appearance needs. */
      if (connect->early_dial && connect->early > 0 &&
          g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
        connect->early--;
      connect->early_dial = FALSE;
      if (connect->wait && g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND) &&
          np_pipe_client_wait_for_server (self, task))
        return;
      if (connect->wait && g_error_matches (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND))
        {
          g_clear_error (&error);
          error = np_pipe_client_no_server_error_new (self, connect);
        }
      np_pipe_client_connected (self, task, error);
      return;
    }

  /* What is left of the connect timeout bounds the handshake. */
  if (connect->deadline > 0)
    timeout = MAX (1, (connect->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);

  g_mutex_lock (self->lock);
  if (self->connect_task != task)
    {
      /* Cancelled meanwhile, and reported. */
      g_mutex_unlock (self->lock);
      return;
    }
  old = np_pipe_client_attach_locked (self, connection, timeout, &stream, &was_connected);
  self->connect_stream = np_stream_ref (stream);
  /* No more waiting for the server. */
  watch = g_steal_pointer (&connect->watch);
  g_mutex_unlock (self->lock);

  g_clear_pointer (&watch, np_server_watch_free);
  g_clear_pointer (&old, np_stream_unref);
  if (was_connected)
    np_context_notify (self->context, G_OBJECT (self), properties [NP_PIPE_CLIENT_PROP_CONNECTED]);

  /* From here, the server's hello or goodbye ends the connect; so does a
   * cancel, at once. */
  np_pipe_client_watch_attempt (self, task);

  np_stream_start (stream);
}

/**
 * np_pipe_client_connect_async:
 * @self: a #NpPipeClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server accepted the client,
 *   or the connect failed
 * @user_data: data for @callback
 *
 * Connects to the server and completes once the server has accepted the
 * client (its handshake arrived), so that a refusal
 * (%NP_PIPE_ERROR_PERMISSION_DENIED, %NP_PIPE_ERROR_TOO_MANY_CLIENTS) is
 * the error of [method@Np.PipeClient.connect_finish]. The whole takes at
 * most [property@Np.PipeClient:connect-timeout]; past it, the connect
 * fails with %NP_PIPE_ERROR_TIMED_OUT. Cancelling, or calling
 * [method@Np.PipeClient.close] meanwhile, fails it with
 * %G_IO_ERROR_CANCELLED and leaves the client unconnected.
 *
 * Both the caller's thread-default main context and the client's must
 * run for it to complete.
 *
 * Since: 1.0
 */
void
np_pipe_client_connect_async (NpPipeClient        *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (NP_IS_PIPE_CLIENT (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  np_pipe_client_connect_internal (self, cancellable, TRUE, callback, user_data);
}

/* Connects as connect_async() does, in the thread-default context of the
 * caller; with @wait_for_server and auto-reconnect on, waits for a server
 * that does not run yet. */
void
np_pipe_client_connect_internal (NpPipeClient        *self,
                                 GCancellable        *cancellable,
                                 gboolean             wait_for_server,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ConnectData *connect;
  GError *error = NULL;
  gboolean already;
  guint timeout;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_pipe_client_connect_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  connect = g_new0 (ConnectData, 1);
  g_task_set_task_data (task, connect, connect_data_free);

  g_mutex_lock (self->lock);
  if (!np_pipe_client_begin_connect_locked (self, &already, &error))
    {
      g_mutex_unlock (self->lock);
      g_task_return_error (task, error);
      return;
    }
  if (already)
    {
      g_mutex_unlock (self->lock);
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->connect_task = g_object_ref (task);
  connect->attempt = g_object_ref (self->attempt);
  timeout = self->connect_timeout;
  connect->wait = wait_for_server && self->auto_reconnect;
  connect->interval = self->reconnect_interval;
  connect->max_delay = MAX (self->reconnect_interval, self->reconnect_max_interval);
  g_mutex_unlock (self->lock);

  connect->timeout = timeout;
  connect->delay = connect->interval;
  if (timeout > 0)
    connect->deadline = g_get_monotonic_time () + timeout * G_TIME_SPAN_MILLISECOND;
  if (cancellable != NULL)
    connect->caller = g_object_ref (cancellable);
  connect->chain_id = np_pipe_client_chain_cancellable (cancellable, connect->attempt);

  connect->dialing = TRUE;
  np_socket_connect_async (self->name, self->path, timeout, connect->attempt,
                           np_pipe_client_socket_connected, g_steal_pointer (&task));
}

/**
 * np_pipe_client_connect_finish:
 * @self: a #NpPipeClient
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Np.PipeClient.connect_async].
 *
 * Returns: %TRUE if the client is connected
 *
 * Since: 1.0
 */
gboolean
np_pipe_client_connect_finish (NpPipeClient  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (NP_IS_PIPE_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

