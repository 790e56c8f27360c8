/* np-send-file.c: streams a file of any size through a pipe, pacing
 * itself on queue-drained so that the queue stays bounded and sending
 * never fails with QUEUE_FULL. Talks to np-send-file.py as well.
 *
 *   np-send-file receive NAME OUTPUT   serve; write what one client sends
 *                                      to OUTPUT, then exit
 *   np-send-file send NAME FILE        send FILE, in 64 KiB messages
 *
 * Both print the size and SHA-256 of what went through.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>

#include <np/np.h>

#define CHUNK_SIZE       (64 * 1024)
#define MAX_QUEUED_BYTES (1024 * 1024)

static GMainLoop *loop;    /* the receiver's */
static int exit_status;

/* Receiving */

typedef struct
{
  GOutputStream *output;
  GChecksum     *checksum;
  guint64        size;
} Receiver;

static void
on_message_received (NpPipeServer     *server,
                     NpPipeConnection *connection,
                     GBytes           *message,
                     Receiver         *receiver)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (message, &size);
  g_autoptr(GError) error = NULL;

  g_checksum_update (receiver->checksum, data, size);
  receiver->size += size;
  if (!g_output_stream_write_all (receiver->output, data, size, NULL, NULL, &error))
    {
      g_printerr ("np-send-file: %s\n", error->message);
      exit_status = 1;
      g_main_loop_quit (loop);
    }
}

static void
on_client_disconnected (NpPipeServer     *server,
                        NpPipeConnection *connection,
                        GError           *error,
                        Receiver         *receiver)
{
  if (error != NULL)
    {
      g_printerr ("np-send-file: %s\n", error->message);
      exit_status = 1;
    }

  g_main_loop_quit (loop);
}

static int
run_receive (const char *name,
             const char *path)
{
  g_autoptr(NpPipeServer) server = np_pipe_server_new (name);
  g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);
  g_autoptr(GError) error = NULL;
  Receiver receiver = { NULL };

  receiver.output = G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE,
                                                     NULL, &error));
  if (receiver.output == NULL)
    {
      g_printerr ("np-send-file: %s\n", error->message);
      return 1;
    }
  receiver.checksum = g_checksum_new (G_CHECKSUM_SHA256);

  g_signal_connect (server, "message-received", G_CALLBACK (on_message_received), &receiver);
  g_signal_connect (server, "client-disconnected", G_CALLBACK (on_client_disconnected), &receiver);
  if (!np_pipe_server_start (server, &error))
    {
      g_printerr ("np-send-file: %s\n", error->message);
      return 1;
    }

  printf ("listening on %s\n", name);
  fflush (stdout);
  g_main_loop_run (loop);

  if (!g_output_stream_close (receiver.output, NULL, &error))
    {
      g_printerr ("np-send-file: %s\n", error->message);
      exit_status = 1;
    }
  printf ("received %" G_GUINT64_FORMAT " bytes, sha256 %s\n",
          receiver.size, g_checksum_get_string (receiver.checksum));

  g_object_unref (receiver.output);
  g_checksum_free (receiver.checksum);

  return exit_status;
}

/* Sending */

typedef struct
{
  NpPipeClient *client;
  GInputStream *input;
  GChecksum    *checksum;
  guint64       size;
  guint         n_pauses;
  gboolean      done;
} Sender;

static void
sender_fail (Sender       *sender,
             const GError *error)
{
  g_printerr ("np-send-file: %s\n", error->message);
  exit_status = 1;
  sender->done = TRUE;
}

/* Sends until the queue passes half its limit, then returns: the client
 * emits queue-drained once the server has read it down to a quarter,
 * and that calls this again. Each chunk fits in the half left, so
 * sending never fails with QUEUE_FULL. */
static void
send_some (Sender *sender)
{
  while (np_pipe_client_get_queued_bytes (sender->client) <= MAX_QUEUED_BYTES / 2)
    {
      g_autoptr(GBytes) chunk = NULL;
      g_autoptr(GError) error = NULL;

      chunk = g_input_stream_read_bytes (sender->input, CHUNK_SIZE, NULL, &error);
      if (chunk == NULL)
        {
          sender_fail (sender, error);
          return;
        }

      if (g_bytes_get_size (chunk) == 0)
        {
          /* The end: close() writes out what is still queued. */
          sender->done = TRUE;
          return;
        }

      g_checksum_update (sender->checksum, g_bytes_get_data (chunk, NULL),
                         g_bytes_get_size (chunk));
      sender->size += g_bytes_get_size (chunk);

      if (!np_pipe_client_send (sender->client, chunk, &error))
        {
          sender_fail (sender, error);
          return;
        }
    }

  sender->n_pauses++;
}

static void
on_queue_drained (NpPipeClient *client,
                  Sender       *sender)
{
  send_some (sender);
}

static void
on_disconnected (NpPipeClient *client,
                 GError       *error,
                 Sender       *sender)
{
  g_autoptr(GError) closed = NULL;

  /* The server went before the end. */
  if (sender->done)
    return;
  if (error == NULL)
    error = closed = g_error_new_literal (NP_PIPE_ERROR, NP_PIPE_ERROR_CLOSED,
                                          "the server closed the connection");
  sender_fail (sender, error);
}

static int
run_send (const char *name,
          const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);
  g_autoptr(GError) error = NULL;
  Sender sender = { NULL };

  sender.input = G_INPUT_STREAM (g_file_read (file, NULL, &error));
  if (sender.input == NULL)
    {
      g_printerr ("np-send-file: %s\n", error->message);
      return 1;
    }
  sender.checksum = g_checksum_new (G_CHECKSUM_SHA256);
  sender.client = np_pipe_client_new (name);
  np_pipe_client_set_max_queued_bytes (sender.client, MAX_QUEUED_BYTES);
  g_signal_connect (sender.client, "queue-drained", G_CALLBACK (on_queue_drained), &sender);
  g_signal_connect (sender.client, "disconnected", G_CALLBACK (on_disconnected), &sender);

  if (np_pipe_client_connect_sync (sender.client, NULL, &error))
    {
      send_some (&sender);
      while (!sender.done)
        g_main_context_iteration (NULL, TRUE);

      /* Writes out what is queued; fails if some of it was dropped. */
      if (np_pipe_client_close (sender.client, NULL, &error))
        printf ("sent %" G_GUINT64_FORMAT " bytes, sha256 %s, paused %u times\n",
                sender.size, g_checksum_get_string (sender.checksum), sender.n_pauses);
      else
        {
          g_printerr ("np-send-file: %s\n", error->message);
          exit_status = 1;
        }
    }
  else
    {
      g_printerr ("np-send-file: %s\n", error->message);
      exit_status = 1;
    }

  g_object_unref (sender.client);
  g_object_unref (sender.input);
  g_checksum_free (sender.checksum);

  return exit_status;
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  loop = g_main_loop_new (NULL, FALSE);

  if (argc == 4 && g_str_equal (argv[1], "receive"))
    ret = run_receive (argv[2], argv[3]);
  else if (argc == 4 && g_str_equal (argv[1], "send"))
    ret = run_send (argv[2], argv[3]);
  else
    {
      g_printerr ("Usage: %s receive NAME OUTPUT | send NAME FILE\n", argv[0]);
      ret = 2;
    }

  g_main_loop_unref (loop);

  return ret;
}
