/* file:// destinations: one JSON record per line, appended and fsync'ed. */
#ifndef ESM_DEST_FILE_H
#define ESM_DEST_FILE_H

#include <stddef.h>

#include "common/esm_err.h"

/* Appends payload as one line to path (created 0600 if missing, O_APPEND): raw CR/LF in the
 * JSON text (whitespace outside strings) become spaces, so a record is exactly one line. The
 * line is written with one write(2); a short write is cut off again so a retry never leaves a
 * torn line. fsyncs the file (and the directory when the file was created). 0 or -1 (err). */
int esm_dest_file_append(const char *path, const char *payload, size_t len, esm_err *err);

#endif
