/* The status page of the admin API (GET /): engine/esm_admin_page.html, compiled in by
 * cmake/embed.cmake, with the response headers that confine it. See docs/operations.md
 * "Admin HTTP". */
#ifndef ESM_ADMIN_PAGE_H
#define ESM_ADMIN_PAGE_H

#include <stddef.h>

#include "common/esm_buf.h"

/* The page's bytes (generated into the build tree). */
extern const unsigned char esm_admin_page_html[];
extern const size_t esm_admin_page_html_len;

/* The page's Content-Security-Policy: nothing but requests to its own origin, and only the
 * page's own inline script and style, allowed by their SHA-256 (an injected one cannot run).
 * 0 ok, -1 when the page lacks a <script> or <style> element or hashing failed. */
int esm_admin_page_csp(const unsigned char *page, size_t len, esm_buf *out);

#endif
