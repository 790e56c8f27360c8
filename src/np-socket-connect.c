/* np-socket-connect.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "np-error.h"
#include "np-socket-connect-private.h"

/* A Unix socket whose listen backlog is full refuses a non-blocking
 * connect with EAGAIN: the server is alive but behind. A blocking connect
 * waits in the kernel until there is room, for at most SO_SNDTIMEO; we
 * wait in slices of this, so that a cancellable is honoured. */
#define NP_CONNECT_SLICE_MSEC 100

/* Back-off between the attempts of an asynchronous connect that found
 * the backlog full. */
#define NP_RETRY_FIRST_MSEC   2
#define NP_RETRY_MAX_MSEC     100

static int
np_socket_new_fd (gboolean   nonblocking,
                  GError   **error)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);

  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot create a socket: %s"), g_strerror (errsv));
    }

  return fd;
}

static void
np_socket_address (const char         *path,
                   struct sockaddr_un *addr)
{
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  /* np_name_to_path() refused any path that would not fit. */
  g_strlcpy (addr->sun_path, path, sizeof addr->sun_path);
}

static void
np_socket_set_connect_error (const char  *name,
                             const char  *path,
                             int          errsv,
                             GError     **error)
{
  switch (errsv)
    {
    case ENOENT:
    case ECONNREFUSED:
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_NOT_FOUND,
                   _("No server is running as pipe “%s” (%s)"), name, path);
      break;

    case EACCES:
    case EPERM:
      g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_PERMISSION_DENIED,
                   _("Not allowed to connect to pipe “%s” (%s)"), name, path);
      break;

    default:
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot connect to pipe “%s”: %s"), name, g_strerror (errsv));
    }
}

static void
np_socket_set_busy_error (const char  *name,
                          guint        timeout_msec,
                          GError     **error)
{
  g_set_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_TIMED_OUT,
               _("Pipe “%s” did not take the connection within %u ms: its server is "
                 "alive but does not accept connections as fast as they come"),
               name, timeout_msec);
}

static GSocketConnection *
np_socket_connection_new (int      fd,
                          GError **error)
{
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, error);

  if (socket == NULL)
    {
      close (fd);
      return NULL;
    }

  return g_socket_connection_factory_create_connection (socket);
}

GSocketConnection *
np_socket_connect_sync (const char    *name,
                        const char    *path,
                        guint          timeout_msec,
                        GCancellable  *cancellable,
                        GError       **error)
{
  struct timeval slice = { 0, NP_CONNECT_SLICE_MSEC * 1000 };
  struct timeval none = { 0, 0 };
  struct sockaddr_un addr;
  gint64 deadline = 0;
  int fd;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  fd = np_socket_new_fd (FALSE, error);
  if (fd < 0)
    return NULL;

  if (timeout_msec > 0)
    deadline = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;

  np_socket_address (path, &addr);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);

  while (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      int errsv = errno;

      if (errsv == EINTR)
        continue;

      if (errsv != EAGAIN)
        {
          np_socket_set_connect_error (name, path, errsv, error);
          close (fd);
          return NULL;
        }

      /* The backlog is full: wait for room, a slice at a time. */
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          close (fd);
          return NULL;
        }

      if (deadline > 0 && g_get_monotonic_time () >= deadline)
        {
          np_socket_set_busy_error (name, timeout_msec, error);
          close (fd);
          return NULL;
        }
    }

  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);

  return np_socket_connection_new (fd, error);
}

typedef struct
{
  char    *name;
  char    *path;
  guint    timeout_msec;
  gint64   deadline;
  guint    backoff_msec;
  GSource *retry;
  gulong   cancel_id;
} ConnectData;

static void
connect_data_free (gpointer data)
{
  ConnectData *attempt = data;

  g_assert (attempt->retry == NULL);
  g_free (attempt->name);
  g_free (attempt->path);
  g_free (attempt);
}

static void np_socket_try_connect (GTask *task);

static void
np_socket_connect_done (GTask             *task,
                        GSocketConnection *connection,
                        GError            *error)
{
  ConnectData *attempt = g_task_get_task_data (task);

  g_clear_pointer (&attempt->retry, g_source_unref);
  if (attempt->cancel_id != 0)
    {
      g_cancellable_disconnect (g_task_get_cancellable (task), attempt->cancel_id);
      attempt->cancel_id = 0;
    }

  if (connection != NULL)
    g_task_return_pointer (task, connection, g_object_unref);
  else
    g_task_return_error (task, error);
}

static gboolean
np_socket_retry_cb (gpointer data)
{
  GTask *task = data;
  ConnectData *attempt = g_task_get_task_data (task);

  /* Cancelled meanwhile: that already finished the task. */
  if (attempt->retry == NULL)
    return G_SOURCE_REMOVE;

  g_clear_pointer (&attempt->retry, g_source_unref);
  np_socket_try_connect (task);

  return G_SOURCE_REMOVE;
}

static gboolean
np_socket_cancelled_cb (gpointer data)
{
  GTask *task = data;
  ConnectData *attempt = g_task_get_task_data (task);

  if (attempt->retry != NULL)
    {
      g_source_destroy (attempt->retry);
      np_socket_connect_done (task, NULL,
                              g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                   _("Operation was cancelled")));
    }

  return G_SOURCE_REMOVE;
}

static void
np_socket_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  GTask *task = data;
  g_autoptr(GSource) idle = g_idle_source_new ();

  /* Complete from the task's context, never inside the cancel call. */
  g_source_set_static_name (idle, "[np] cancelled connect");
  g_source_set_callback (idle, np_socket_cancelled_cb, g_object_ref (task), g_object_unref);
  g_source_attach (idle, g_task_get_context (task));
}

static void
np_socket_try_connect (GTask *task)
{
  ConnectData *attempt = g_task_get_task_data (task);
  struct sockaddr_un addr;
  GError *error = NULL;
  int fd;

  fd = np_socket_new_fd (TRUE, &error);
  if (fd < 0)
    {
      np_socket_connect_done (task, NULL, error);
      return;
    }

  np_socket_address (attempt->path, &addr);

  while (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      int errsv = errno;

      if (errsv == EINTR)
        continue;

      close (fd);

      if (errsv != EAGAIN)
        {
          np_socket_set_connect_error (attempt->name, attempt->path, errsv, &error);
          np_socket_connect_done (task, NULL, error);
          return;
        }

      if (attempt->deadline > 0 && g_get_monotonic_time () >= attempt->deadline)
        {
          np_socket_set_busy_error (attempt->name, attempt->timeout_msec, &error);
          np_socket_connect_done (task, NULL, error);
          return;
        }

      /* The backlog is full: try again a little later. */
      attempt->retry = g_timeout_source_new (attempt->backoff_msec);
      attempt->backoff_msec = MIN (attempt->backoff_msec * 2, NP_RETRY_MAX_MSEC);
      g_source_set_static_name (attempt->retry, "[np] connect retry");
      g_source_set_callback (attempt->retry, np_socket_retry_cb,
                             g_object_ref (task), g_object_unref);
      g_source_attach (attempt->retry, g_task_get_context (task));
      return;
    }

  np_socket_connect_done (task, np_socket_connection_new (fd, &error), error);
}

void
np_socket_connect_async (const char          *name,
                         const char          *path,
                         guint                timeout_msec,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ConnectData *attempt;

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, np_socket_connect_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  attempt = g_new0 (ConnectData, 1);
  attempt->name = g_strdup (name);
  attempt->path = g_strdup (path);
  attempt->timeout_msec = timeout_msec;
  attempt->backoff_msec = NP_RETRY_FIRST_MSEC;
  if (timeout_msec > 0)
    attempt->deadline = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;
  g_task_set_task_data (task, attempt, connect_data_free);

  np_socket_try_connect (task);

  /* Only a retry waits; watch the cancellable while one does. */
  if (attempt->retry != NULL && cancellable != NULL)
    attempt->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (np_socket_cancelled),
                                                g_object_ref (task), g_object_unref);
}

GSocketConnection *
np_socket_connect_finish (GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
