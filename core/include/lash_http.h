/* lash_http.h - a small HTTP server on a libuv loop (libmicrohttpd).
 *
 * The server behind `lash ui` and `lash worker --metrics` (issue 14). HTTP
 * itself is libmicrohttpd's, run in its external-loop mode: its epoll fd
 * is watched with a uv_poll on the caller's loop and its timeouts with a
 * uv_timer, so requests are answered on the loop's thread, between the
 * engine's own callbacks, with no thread of the server's own.
 *
 * A request goes to the handler once it arrived whole (body included, at
 * most LASH_HTTP_BODY_MAX bytes). The handler answers it with
 * lash_http_respond, then or later (from the loop's thread): until then the
 * connection is suspended. Every request is answered exactly once; one not
 * answered when the server closes gets a 503.
 */
#ifndef LASH_HTTP_H
#define LASH_HTTP_H

#include <stddef.h>

#include "lash.h" /* LASH_API, the error codes */

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;

#define LASH_HTTP_BODY_MAX (1u << 20) /* request bodies: 1 MiB */

typedef struct lash_http lash_http;
typedef struct lash_http_req lash_http_req;

/* Called on the loop's thread for each request; it must (now or later)
 * call lash_http_respond(r, ...) exactly once. */
typedef void (*lash_http_fn)(void *ud, lash_http_req *r);

/* Listens on @p addr ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:9464"; port
 * 0 takes a free one) on @p loop. On failure *out is NULL and @p err holds
 * a message naming the address and the cause.
 * @return 0, LASH_EINVAL (a malformed address), LASH_EIO (cannot listen). */
LASH_API int lash_http_listen(struct uv_loop_s *loop, const char *addr,
                              lash_http_fn fn, void *ud, lash_http **out,
                              char *err, size_t errlen);
/* The address it listens on, port included ("127.0.0.1:40123"). */
LASH_API const char *lash_http_address(const lash_http *h);
/* Stops listening: requests not answered yet get a 503 now (the handler
 * may still call lash_http_respond on them: a no-op), open connections are
 * closed, the uv handles are closed (freed by the loop's next pass). */
LASH_API void lash_http_close(lash_http *h);

/* A request's method ("GET"), path ("/api/list", no query) and body. */
LASH_API const char *lash_http_method(const lash_http_req *r);
LASH_API const char *lash_http_path(const lash_http_req *r);
LASH_API const char *lash_http_body(const lash_http_req *r, size_t *len);
/* The peer's address ("127.0.0.1"), "" when unknown. */
LASH_API const char *lash_http_peer(const lash_http_req *r);
/* Calls fn for each query argument (value "" when absent) or header
 * (what: 0 arguments, 1 headers); stops when fn returns non-zero. */
typedef int (*lash_http_pair_fn)(void *ud, const char *key, const char *val);
LASH_API void lash_http_pairs(const lash_http_req *r, int what,
                              lash_http_pair_fn fn, void *ud);
/* Answers @p r: status, Content-Type, body (copied), extra headers as
 * "Name: value" strings (nheaders of them, may be 0). Frees @p r once the
 * server is done with it: r is not to be used after this call.
 * @return 0, LASH_EINVAL (already answered: nothing happens),
 *   LASH_ENOMEM. */
LASH_API int lash_http_respond(lash_http_req *r, int status, const char *ctype,
                               const void *body, size_t len,
                               const char *const *headers, size_t nheaders);

#ifdef __cplusplus
}
#endif
#endif /* LASH_HTTP_H */
