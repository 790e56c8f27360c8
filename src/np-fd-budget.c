/* np-fd-budget.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <sys/resource.h>

#include "np-fd-budget-private.h"

/* Descriptors left to the application, of RLIMIT_NOFILE: an eighth, and
 * at least this many. */
#define NP_FD_RESERVE_MIN 32

/* Process-wide, so that peers cannot add up past the limit by spreading
 * their descriptors over connections (or servers): the streams, one
 * socket each, the descriptors received from peers and not yet
 * handed to the application, and those of the peers' requests that the
 * application has not answered yet (it keeps them while it works on
 * the answer). */
static guint np_fd_streams;
static guint np_fd_held;
/* The limit as last read, 0 before: receiving uses it, so that a message
 * with descriptors costs no system call for it. A server reads the limit
 * anew when it starts. */
static guint np_fd_limit;

/* The most descriptors the library may use, keeping some for the
 * application: a server accepts no client past it, and a peer that
 * would make the library hold more is dropped. */
guint
np_fd_budget_limit (void)
{
  struct rlimit limit;
  rlim_t reserve;
  guint ret;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
      limit.rlim_cur > G_MAXUINT)
    ret = G_MAXUINT;
  else
    {
      reserve = MAX (NP_FD_RESERVE_MIN, limit.rlim_cur / 8);
      ret = limit.rlim_cur > reserve ? limit.rlim_cur - reserve : 1;
    }
  g_atomic_int_set (&np_fd_limit, ret);

  return ret;
}

static guint
np_fd_budget_cached_limit (void)
{
  guint limit = g_atomic_int_get (&np_fd_limit);

  return limit != 0 ? limit : np_fd_budget_limit ();
}

/* Received descriptors not yet delivered. */
guint
np_fd_budget_held (void)
{
  return g_atomic_int_get (&np_fd_held);
}

/* What the library uses now: a socket per stream, in every pipe of the
 * process, and the descriptors received and not yet delivered. */
guint64
np_fd_budget_used (void)
{
  return (guint64) (guint) g_atomic_int_get (&np_fd_streams) + (guint) g_atomic_int_get (&np_fd_held);
}

/* Counts @n more received descriptors, unless that would pass the
 * limit: then counts nothing and returns FALSE. */
gboolean
np_fd_budget_hold (guint n)
{
  guint limit = np_fd_budget_cached_limit ();

  for (;;)
    {
      guint held = (guint) g_atomic_int_get (&np_fd_held);
      guint64 used = (guint64) held + (guint) g_atomic_int_get (&np_fd_streams) + n;

      if (used > (guint64) limit)
        return FALSE;
      if (g_atomic_int_compare_and_exchange (&np_fd_held, held, held + n))
        return TRUE;
    }
}

void
np_fd_budget_release (guint n)
{
  g_assert ((guint) g_atomic_int_get (&np_fd_held) >= n);
  g_atomic_int_add (&np_fd_held, -(gint) n);
}

void
np_fd_budget_add_stream (void)
{
  g_atomic_int_inc (&np_fd_streams);
}

void
np_fd_budget_remove_stream (void)
{
  g_atomic_int_dec_and_test (&np_fd_streams);
}
