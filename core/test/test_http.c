/* test_http.c - the HTTP server on a libuv loop (lash_http.h): answers now
 * and later (a suspended connection), bodies, query arguments and headers,
 * a close with a request still unanswered (503; the late answer is a
 * no-op), bad addresses and a port in use. Clients are uv_tcp connections
 * on the same loop speaking HTTP/1.0 (the server closes after answering). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, strcasecmp */
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "lash_http.h"
#include "tap.h"

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  char req[512];
  char resp[8192];
  size_t len;
  int done;
} client;

static uv_loop_t loop;
static lash_http *srv;
static lash_http_req *held; /* a request answered later */
static uv_timer_t later;

static void on_closed(uv_handle_t *h) {
  ((client *)h->data)->done = 1;
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf) {
  client *c = h->data;
  (void)want;
  buf->base = c->resp + c->len;
  buf->len = sizeof c->resp - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  client *c = s->data;
  (void)buf;
  if (n > 0) {
    c->len += (size_t)n;
    c->resp[c->len] = '\0';
    return;
  }
  if (n < 0) uv_close((uv_handle_t *)s, on_closed);
}

static void on_written(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}

static void on_connect(uv_connect_t *cn, int status) {
  client *c = cn->data;
  uv_buf_t b = uv_buf_init(c->req, (unsigned)strlen(c->req));
  if (status < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void start(client *c, const char *req) {
  struct sockaddr_in sa;
  const char *addr = lash_http_address(srv);
  memset(c, 0, sizeof *c);
  snprintf(c->req, sizeof c->req, "%s", req);
  uv_ip4_addr("127.0.0.1", atoi(strrchr(addr, ':') + 1), &sa);
  uv_tcp_init(&loop, &c->tcp);
  c->tcp.data = c->conn.data = c;
  uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&sa, on_connect);
}

static void run_until(client *c) {
  int i;
  for (i = 0; i < 100000 && !c->done; i++)
    uv_run(&loop, UV_RUN_ONCE);
}

static int arg_x(void *ud, const char *k, const char *v) {
  if (strcmp(k, "x") == 0) snprintf(ud, 32, "%s", v);
  return 0;
}

static int header_a(void *ud, const char *k, const char *v) {
  if (strcasecmp(k, "X-A") == 0) snprintf(ud, 32, "%s", v);
  return 0;
}

static void answer_later(uv_timer_t *t) {
  (void)t;
  lash_http_respond(held, 201, "text/plain", "later", 5, NULL, 0);
  held = NULL;
}

static void close_server(uv_timer_t *t) {
  (void)t;
  lash_http_close(srv);
  srv = NULL;
}

static void handler(void *ud, lash_http_req *r) {
  const char *path = lash_http_path(r);
  char x[32] = "", a[32] = "", buf[256];
  (void)ud;
  if (strcmp(path, "/now") == 0) {
    const char *hs[] = {"X-Reply: yes"};
    lash_http_pairs(r, 0, arg_x, x);
    lash_http_pairs(r, 1, header_a, a);
    snprintf(buf, sizeof buf, "%s %s x=%s a=%s peer=%s", lash_http_method(r),
             path, x, a, lash_http_peer(r));
    lash_http_respond(r, 200, "text/plain", buf, strlen(buf), hs, 1);
  } else if (strcmp(path, "/echo") == 0) {
    size_t n;
    const char *b = lash_http_body(r, &n);
    lash_http_respond(r, 200, "text/plain", b, n, NULL, 0);
  } else if (strcmp(path, "/later") == 0) {
    held = r;
    uv_timer_start(&later, answer_later, 20, 0);
  } else if (strcmp(path, "/hang") == 0) {
    held = r;
    uv_timer_start(&later, close_server, 20, 0);
  } else {
    lash_http_respond(r, 404, "text/plain", "no", 2, NULL, 0);
  }
}

int main(void) {
  char err[256];
  client c;
  lash_http *other;
  int rc;

  uv_loop_init(&loop);
  uv_timer_init(&loop, &later);

  rc = lash_http_listen(&loop, "nonsense", handler, NULL, &other, err,
                        sizeof err);
  is(rc, LASH_EINVAL, "an address without a port is refused");
  ok(strstr(err, "\"nonsense\"") != NULL && other == NULL,
     "the message names it: %s", err);
  rc = lash_http_listen(&loop, "127.0.0.1:99999", handler, NULL, &other, err,
                        sizeof err);
  is(rc, LASH_EINVAL, "a port over 65535 is refused");
  rc = lash_http_listen(&loop, "example.org:80", handler, NULL, &other, err,
                        sizeof err);
  is(rc, LASH_EINVAL, "a host name other than localhost is refused");

  rc = lash_http_listen(&loop, "127.0.0.1:0", handler, NULL, &srv, err,
                        sizeof err);
  is(rc, 0, "listens on a free port: %s", err);
  ok(strncmp(lash_http_address(srv), "127.0.0.1:", 10) == 0 &&
         atoi(lash_http_address(srv) + 10) > 0,
     "its address names the port: %s", lash_http_address(srv));
  {
    char taken[64];
    snprintf(taken, sizeof taken, "%s", lash_http_address(srv));
    rc = lash_http_listen(&loop, taken, handler, NULL, &other, err, sizeof err);
    is(rc, LASH_EIO, "a port in use is EIO");
    ok(strstr(err, taken) != NULL, "naming the address: %s", err);
  }

  start(&c, "GET /now?x=1 HTTP/1.0\r\nX-A: b\r\n\r\n");
  run_until(&c);
  ok(strncmp(c.resp, "HTTP/1.1 200", 12) == 0, "answered at once: %.40s",
     c.resp);
  ok(strstr(c.resp, "GET /now x=1 a=b peer=127.0.0.1") != NULL,
     "method, path, query, header and peer reach the handler");
  ok(strstr(c.resp, "X-Reply: yes") != NULL, "extra headers are sent");

  start(&c, "POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
  run_until(&c);
  ok(strstr(c.resp, "\r\n\r\nhello") != NULL, "the body arrives whole");

  start(&c, "GET /later HTTP/1.0\r\n\r\n");
  run_until(&c);
  ok(strncmp(c.resp, "HTTP/1.1 201", 12) == 0 &&
         strstr(c.resp, "\r\n\r\nlater") != NULL,
     "answered later from a timer: %.40s", c.resp);

  start(&c, "GET /nothing HTTP/1.0\r\n\r\n");
  run_until(&c);
  ok(strncmp(c.resp, "HTTP/1.1 404", 12) == 0, "the handler's status");

  start(&c, "GET /hang HTTP/1.0\r\n\r\n");
  run_until(&c);
  ok(strncmp(c.resp, "HTTP/1.1 503", 12) == 0,
     "closing answers a request still held with 503: %.40s", c.resp);
  ok(srv == NULL && held != NULL, "the server closed with it held");
  is(lash_http_respond(held, 200, "text/plain", "x", 1, NULL, 0), LASH_EINVAL,
     "the late answer is a no-op");
  held = NULL;

  uv_close((uv_handle_t *)&later, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  is(uv_loop_close(&loop), 0, "every handle closed");
  return done_testing();
}
