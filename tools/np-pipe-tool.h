/* np-pipe-tool.h: what the commands of np-pipe share
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib/gi18n-lib.h>
#include <np/np.h>

G_BEGIN_DECLS

/* Exit statuses besides EXIT_SUCCESS and EXIT_FAILURE (a runtime failure). */
#define NP_TOOL_EXIT_USAGE 2

/* The running program, for starting more of itself. */
extern char *np_tool_self_path;

void     np_tool_run_loop              (void);
void     np_tool_quit                  (void);
void     np_tool_quit_on_stdout_hangup (void);

/* How np_tool_print_message() shows a message. */
typedef enum
{
  NP_TOOL_SHOW_HEX     = 1 << 0,  /* a hex dump, even of text */
  NP_TOOL_SHOW_FULL    = 1 << 1,  /* all of it, not the first NP_TOOL_SNAP_LEN bytes */
  NP_TOOL_SHOW_VARIANT = 1 << 2,  /* decoded, when it holds a GVariant */
} NpToolShowFlags;

/* How much of a message listen shows without --full. */
#define NP_TOOL_SNAP_LEN 256

void     np_tool_output_start_async    (gboolean        raw);
void     np_tool_output_finish         (void);

gboolean np_tool_write                 (const void     *data,
                                        gsize           len);
gboolean np_tool_write_bytes           (GBytes         *bytes);
gboolean np_tool_print                 (const char     *format,
                                        ...) G_GNUC_PRINTF (1, 2);
void     np_tool_print_message         (const char     *prefix,
                                        GBytes         *message,
                                        NpToolShowFlags flags,
                                        guint           n_fds);

char    *np_tool_escape                (const char     *text,
                                        gssize          len);
void     np_tool_warn                  (const char     *format,
                                        ...) G_GNUC_PRINTF (1, 2);
GBytes  *np_tool_parse_variant         (const char     *text,
                                        gsize           len,
                                        GError        **error);
guint    np_tool_close_fds             (GUnixFDList    *fds);
void     np_tool_show_progress         (const char     *format,
                                        ...) G_GNUC_PRINTF (1, 2);
void     np_tool_end_progress          (void);

int      np_tool_fail                  (const char     *format,
                                        ...) G_GNUC_PRINTF (1, 2);
int      np_tool_usage_error           (GOptionContext *context,
                                        const char     *message);
gboolean np_tool_parse_timeout         (const char     *text,
                                        guint          *msec);

/* The options of a tcp: address (np-pipe-tls.c). */
typedef struct
{
  char     *certificate;
  char     *key;
  char     *ca;
  char     *pin;
  gboolean  require_client_certificate;
  gboolean  allow_anonymous;
  gboolean  insecure_plaintext;
} NpToolTls;

gboolean np_tool_is_tcp                (const char     *name);
void     np_tool_tls_add_options       (GOptionContext *context,
                                        NpToolTls      *tls,
                                        gboolean        server);
int      np_tool_tls_setup_server      (NpToolTls      *tls,
                                        GOptionContext *context,
                                        const char     *name,
                                        NpPipeServer   *server);
int      np_tool_tls_setup_client      (NpToolTls      *tls,
                                        GOptionContext *context,
                                        const char     *name,
                                        NpPipeClient   *client);
void     np_tool_tls_clear             (NpToolTls      *tls);
const char *np_tool_tls_example        (void);
char    *np_tool_certificate_fingerprint (GTlsCertificate *certificate);

int      np_tool_run_listen            (int             argc,
                                        char          **argv);
int      np_tool_run_send              (int             argc,
                                        char          **argv);
int      np_tool_run_request           (int             argc,
                                        char          **argv);
int      np_tool_run_ping              (int             argc,
                                        char          **argv);
int      np_tool_run_list              (int             argc,
                                        char          **argv);
int      np_tool_run_fingerprint       (int             argc,
                                        char          **argv);
int      np_tool_run_demo              (int             argc,
                                        char          **argv);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NpToolTls, np_tool_tls_clear)

G_END_DECLS
