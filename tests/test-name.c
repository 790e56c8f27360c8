/* test-name.c: the socket-file rules of np-name.c, on real files and
 * sockets
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <np/np.h>

#include "np-name-private.h"

static char *test_dir;

static char *
test_path (const char *name)
{
  return g_build_filename (test_dir, name, NULL);
}

/* A Unix socket bound at @path; listening when @listen, otherwise closed
 * at once, leaving the file behind as a crashed server does. */
static int
make_socket (const char *path,
             gboolean    listen_on_it)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (fd, 1), ==, 0);

  if (listen_on_it)
    return fd;

  close (fd);
  return -1;
}

static gboolean
exists (const char *path)
{
  struct stat st;

  return lstat (path, &st) == 0;
}

static void
test_state_absent_and_not_socket (void)
{
  g_autofree char *path = test_path ("plain");
  int pid = -1;

  g_assert_cmpint (np_name_get_state (path, &pid, NULL), ==, NP_NAME_STATE_ABSENT);
  g_assert_cmpint (pid, ==, 0);

  g_assert_true (g_file_set_contents (path, "precious", -1, NULL));
  g_assert_cmpint (np_name_get_state (path, &pid, NULL), ==, NP_NAME_STATE_NOT_SOCKET);
  g_unlink (path);
}

/* A server holds the lock: live, with the pid it wrote. */
static void
test_state_live_by_lock (void)
{
  g_autofree char *path = test_path ("locked");
  g_autoptr(GError) error = NULL;
  int stale_lock_fd = 0;
  int pid = 0;
  int lock_fd;

  lock_fd = np_name_lock ("locked", path, &error);
  g_assert_no_error (error);
  make_socket (path, FALSE);

  /* Nothing accepts on the socket: the lock alone makes it live. */
  g_assert_cmpint (np_name_get_state (path, &pid, &stale_lock_fd), ==, NP_NAME_STATE_LIVE);
  g_assert_cmpint (pid, ==, getpid ());
  g_assert_cmpint (stale_lock_fd, ==, -1);

  g_unlink (path);
  np_name_unlock (lock_fd, path);
}

/* No lock file, or one nobody holds: whether anything accepts decides. */
static void
test_state_probed (void)
{
  g_autofree char *path = test_path ("probed");
  g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);
  int pid = -1;
  int listener;

  make_socket (path, FALSE);
  g_assert_cmpint (np_name_get_state (path, &pid, NULL), ==, NP_NAME_STATE_STALE);
  g_assert_cmpint (pid, ==, 0);
  g_unlink (path);

  listener = make_socket (path, TRUE);
  g_assert_cmpint (np_name_get_state (path, &pid, NULL), ==, NP_NAME_STATE_LIVE);

  /* A lock file left by some other run does not make a socket that
   * something accepts on stale. */
  g_assert_true (g_file_set_contents (lock_path, "1\n", -1, NULL));
  g_assert_cmpint (np_name_get_state (path, &pid, NULL), ==, NP_NAME_STATE_LIVE);

  close (listener);
  g_unlink (path);
  g_unlink (lock_path);
}

/* The lock of a stale pipe is kept for the caller: no server can take the
 * name until the caller released it. */
static void
test_state_keeps_stale_lock (void)
{
  g_autofree char *path = test_path ("crashed");
  g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);
  g_autoptr(GError) error = NULL;
  int stale_lock_fd = -1;
  int pid = -1;
  int fd;

  /* What a server killed with SIGKILL leaves behind. */
  g_assert_true (g_file_set_contents (lock_path, "4242\n", -1, NULL));
  make_socket (path, FALSE);

  g_assert_cmpint (np_name_get_state (path, &pid, &stale_lock_fd), ==, NP_NAME_STATE_STALE);
  g_assert_cmpint (stale_lock_fd, >=, 0);

  fd = np_name_lock ("crashed", path, &error);
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_assert_cmpint (fd, ==, -1);
  g_clear_error (&error);

  g_assert_cmpint (g_unlink (path), ==, 0);
  np_name_unlock (stale_lock_fd, path);
  g_assert_false (exists (lock_path));

  fd = np_name_lock ("crashed", path, &error);
  g_assert_no_error (error);
  np_name_unlock (fd, path);
}

static void
test_claim_path (void)
{
  g_autofree char *path = test_path ("claimed");
  g_autoptr(GError) error = NULL;
  int listener;

  /* Nothing there. */
  g_assert_true (np_name_claim_path ("claimed", path, &error));
  g_assert_no_error (error);

  /* A file that is not a socket stays. */
  g_assert_true (g_file_set_contents (path, "precious", -1, NULL));
  g_assert_false (np_name_claim_path ("claimed", path, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, "Cannot listen as pipe “claimed”"));
  g_assert_nonnull (strstr (error->message, "exists and is not a socket"));
  g_assert_true (exists (path));
  g_clear_error (&error);
  g_unlink (path);

  /* A socket something accepts on stays. */
  listener = make_socket (path, TRUE);
  g_assert_false (np_name_claim_path ("claimed", path, &error));
  g_assert_error (error, NP_PIPE_ERROR, NP_PIPE_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, "another process listens on"));
  g_assert_true (exists (path));
  g_clear_error (&error);
  close (listener);

  /* Now nobody accepts: it is stale, and goes. */
  g_assert_true (np_name_claim_path ("claimed", path, &error));
  g_assert_no_error (error);
  g_assert_false (exists (path));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int ret;

  test_dir = g_dir_make_tmp ("np-test-name-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Np/Name/state/absent-and-not-socket", test_state_absent_and_not_socket);
  g_test_add_func ("/Np/Name/state/live-by-lock", test_state_live_by_lock);
  g_test_add_func ("/Np/Name/state/probed", test_state_probed);
  g_test_add_func ("/Np/Name/state/keeps-stale-lock", test_state_keeps_stale_lock);
  g_test_add_func ("/Np/Name/claim-path", test_claim_path);

  ret = g_test_run ();

  g_rmdir (test_dir);
  g_free (test_dir);

  return ret;
}
