/* np-variant.c
 *
 * Copyright 2026 The Np authors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include <glib/gi18n-lib.h>

#include "np-i18n-private.h"
#include "np-variant.h"

/* Longer type strings are refused: no real type needs one, and a peer
 * must not make us scan a whole message for a NUL. */
#define NP_VARIANT_TYPE_MAX 1024

/* A message holding a GVariant: its type string, a NUL, zeros up to a
 * multiple of 8 bytes from the start, then the value serialised in normal
 * form, little-endian (docs/protocol.md). */

static gsize
np_variant_header_size (gsize type_len)
{
  return (type_len + 1 + 7) & ~(gsize) 7;
}

/**
 * np_variant_to_message:
 * @value: a #GVariant; a floating reference is consumed
 *
 * Makes a message of @value, with its type, so that the receiving side
 * gets it back with [func@Np.variant_from_message], in any language:
 * Python and GJS exchange `GLib.Variant` values (`a{sv}`, tuples,
 * arrays) this way, and docs/protocol.md describes the bytes for other
 * languages.
 *
 * Returns: (transfer full): the message
 *
 * Since: 1.0
 */
GBytes *
np_variant_to_message (GVariant *value)
{
  g_autoptr(GVariant) sunk = NULL;
  g_autoptr(GVariant) normal = NULL;
  const char *type;
  gsize type_len, header, size;
  guint8 *data;

  g_return_val_if_fail (value != NULL, NULL);

  sunk = g_variant_ref_sink (value);
  normal = g_variant_get_normal_form (sunk);
  if (G_BYTE_ORDER == G_BIG_ENDIAN)
    {
      GVariant *swapped = g_variant_byteswap (normal);

      g_variant_unref (normal);
      normal = swapped;
    }

  type = g_variant_get_type_string (normal);
  type_len = strlen (type);
  header = np_variant_header_size (type_len);
  size = g_variant_get_size (normal);

  data = g_malloc0 (header + size);
  memcpy (data, type, type_len);
  g_variant_store (normal, data + header);

  return g_bytes_new_take (data, header + size);
}

/**
 * np_variant_from_message:
 * @message: a message made by [func@Np.variant_to_message], or by a peer
 *   following its format
 * @error: return location for a #GError
 *
 * Reads back the #GVariant of @message. The bytes come from a peer and
 * are checked as such: a message without a valid, definite type string,
 * or whose value is truncated or not in normal form, fails with
 * %G_IO_ERROR_INVALID_DATA. That concerns this message only; the
 * connection goes on.
 *
 * Returns: (transfer full): the value
 *
 * Since: 1.0
 */
GVariant *
np_variant_from_message (GBytes  *message,
                         GError **error)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GVariant) value = NULL;
  const char *data;
  const char *nul;
  gsize len, header;

  g_return_val_if_fail (message != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  np_i18n_init ();

  data = g_bytes_get_data (message, &len);
  nul = len > 0 ? memchr (data, '\0', MIN (len, NP_VARIANT_TYPE_MAX + 1)) : NULL;
  if (nul == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The message holds no GVariant: it starts with no type string"));
      return NULL;
    }

  if (!g_variant_type_string_is_valid (data) ||
      !g_variant_type_is_definite ((const GVariantType *) data))
    {
      g_autofree char *escaped = g_strescape (data, NULL);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The message holds no GVariant: “%s” is not a definite type"), escaped);
      return NULL;
    }

  header = np_variant_header_size (nul - data);
  if (header > len)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The GVariant message of type “%s” is truncated"), data);
      return NULL;
    }

  body = g_bytes_new_from_bytes (message, header, len - header);
  value = g_variant_ref_sink (g_variant_new_from_bytes ((const GVariantType *) data, body, FALSE));
  if (G_BYTE_ORDER == G_BIG_ENDIAN)
    {
      GVariant *swapped = g_variant_byteswap (value);

      g_variant_unref (value);
      value = swapped;
    }

  /* A value that is not in normal form (truncated, padded, with bad
   * offsets) would read as something else than what was sent. */
  if (!g_variant_is_normal_form (value))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The GVariant message of type “%s” is not in normal form"), data);
      return NULL;
    }

  return g_steal_pointer (&value);
}
