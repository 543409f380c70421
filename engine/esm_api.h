/* The Lambda API's event-source-mapping resource on the admin listener (docs/operations.md
 * "The Lambda API"), rest-json as AWS's API version 2015-03-31, so that the AWS CLI, the SDKs
 * and Terraform read esmd's mappings with --endpoint-url pointing at it:
 *   GET /2015-03-31/event-source-mappings[/]?FunctionName=&EventSourceArn=&Marker=&MaxItems=
 *       200 {"EventSourceMappings":[...],"NextMarker":..} (at most 100 a page)
 *   GET /2015-03-31/event-source-mappings/{UUID}   200 the mapping; 404 ResourceNotFoundException
 * Mappings live in the config file: a POST, PUT or DELETE gets ResourceConflictException (409)
 * naming it. Errors carry x-amzn-ErrorType and a body botocore reads ({"Type","message"}). */
#ifndef ESM_API_H
#define ESM_API_H

#include <stddef.h>

#include "common/esm_buf.h"
#include "engine/esm_admin.h"
#include "engine/esm_api_render.h"

#define ESM_API_MAPPINGS_PATH "/2015-03-31/event-source-mappings"
#define ESM_API_PAGE_MAX 100

/* Whether a request path is the resource's (the collection, with or without a trailing '/', or
 * one mapping). */
bool esm_api_is_mappings_path(const char *path);

/* Answers one request; returns the HTTP status, out gets JSON, *error_type the
 * x-amzn-ErrorType of an error (NULL on success). config_path names the file mappings are
 * defined in. */
unsigned esm_api_mappings(const char *method, const char *path, const esm_api_mapping *maps,
                          size_t n, const char *config_path, esm_admin_arg_fn get_arg, void *req,
                          esm_buf *out, const char **error_type);

#endif
