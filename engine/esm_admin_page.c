#include "engine/esm_admin_page.h"

#include <openssl/evp.h>
#include <string.h>

/* Appends 'sha256-<base64>' of the text of the first <tag>...</tag> of page. */
static int put_hash(const unsigned char *page, size_t len, const char *open, const char *close,
                    esm_buf *out)
{
    const char *text = memmem(page, len, open, strlen(open));
    if (!text) return -1;
    text += strlen(open);
    const char *end = memmem(text, len - (size_t)(text - (const char *)page), close, strlen(close));
    if (!end) return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(text, (size_t)(end - text), md, &md_len, EVP_sha256(), NULL) != 1) return -1;
    esm_buf_puts(out, "'sha256-");
    esm_buf_base64(out, md, md_len);
    esm_buf_putc(out, '\'');
    return 0;
}

int esm_admin_page_csp(const unsigned char *page, size_t len, esm_buf *out)
{
    esm_buf_puts(out, "default-src 'none'; connect-src 'self'; img-src 'none'; script-src ");
    if (put_hash(page, len, "<script>", "</script>", out) != 0) return -1;
    esm_buf_puts(out, "; style-src ");
    if (put_hash(page, len, "<style>", "</style>", out) != 0) return -1;
    esm_buf_puts(out, "; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    return 0;
}
