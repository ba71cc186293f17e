/* server.c - libmicrohttpd driven by a libuv loop (lash_http.h).
 *
 * MHD runs in its external-loop mode with epoll: one uv_poll watches the
 * daemon's epoll fd (the listening socket, the connections and MHD's
 * inter-thread channel all sit in it) and one uv_timer MHD_get_timeout's
 * deadline; each firing calls MHD_run, which never blocks. A request is
 * handed to the application once its body arrived; the connection is
 * suspended until lash_http_respond, which resumes it (the resume wakes
 * the epoll fd through MHD's channel; a zero timer makes sure).
 *
 * A request is freed once both sides let go of it: MHD (its completion
 * callback) and the application (its answer). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, strcasecmp */
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <uv.h>

#include "lash.h"
#include "lash_http.h"

struct lash_http_req {
  lash_http *h; /* NULL once the server closed */
  struct MHD_Connection *conn;
  char *method, *path;
  char *body;
  size_t len, cap;
  char peer[INET6_ADDRSTRLEN];
  int dispatched; /* handed to the application */
  int suspended;  /* its connection is suspended */
  int answered;   /* a response exists (queued or to queue) */
  int app_done;   /* the application answered (or the server for it) */
  int mhd_done;   /* MHD completed it */
  int too_big;
  struct MHD_Response *resp;
  unsigned status;
  lash_http_req *prev, *next; /* dispatched and not answered: h->pending */
};

struct lash_http {
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer;
  struct MHD_Daemon *d;
  lash_http_fn fn;
  void *ud;
  char address[INET6_ADDRSTRLEN + 8];
  lash_http_req pending; /* list head */
  int in_run;
  int closing;
  int open_handles;
};

/* ------------------------------------------------------------ requests */

static void req_free(lash_http_req *r) {
  if (r->resp != NULL) MHD_destroy_response(r->resp);
  free(r->method);
  free(r->path);
  free(r->body);
  free(r);
}

static void req_unlink(lash_http_req *r) {
  if (r->next != NULL) {
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->prev = r->next = NULL;
  }
}

static void timer_cb(uv_timer_t *t);

static void kick(lash_http *h) {
  if (h != NULL && !h->closing) uv_timer_start(&h->timer, timer_cb, 0, 0);
}

static int make_response(lash_http_req *r, unsigned status, const char *ctype,
                         const void *body, size_t len,
                         const char *const *headers, size_t nheaders) {
  struct MHD_Response *resp;
  size_t i;
  resp =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) return LASH_ENOMEM;
  if (ctype != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  for (i = 0; i < nheaders; i++) {
    const char *colon = strchr(headers[i], ':');
    char name[128];
    size_t n;
    if (colon == NULL || (n = (size_t)(colon - headers[i])) >= sizeof name)
      continue;
    memcpy(name, headers[i], n);
    name[n] = '\0';
    colon++;
    while (*colon == ' ')
      colon++;
    MHD_add_response_header(resp, name, colon);
  }
  r->resp = resp;
  r->status = status;
  r->answered = 1;
  return 0;
}

/* Gives the response to the suspended connection (the access handler
 * queues it when MHD calls it again). */
static void wake(lash_http_req *r) {
  req_unlink(r);
  if (r->suspended && r->conn != NULL) {
    r->suspended = 0;
    MHD_resume_connection(r->conn);
    kick(r->h);
  }
}

int lash_http_respond(lash_http_req *r, int status, const char *ctype,
                      const void *body, size_t len, const char *const *headers,
                      size_t nheaders) {
  int rc;
  if (r == NULL || r->app_done) return LASH_EINVAL;
  r->app_done = 1;
  if (r->answered) { /* the server answered it when it closed */
    if (r->mhd_done) req_free(r);
    return LASH_EINVAL;
  }
  if (status < 100 || status > 599) status = 500;
  rc = make_response(r, (unsigned)status, ctype, body, len, headers, nheaders);
  if (rc < 0) {
    static const char msg[] = "{\"error\":\"out of memory\"}";
    r->app_done = 0;
    if (make_response(r, 500, "application/json", msg, sizeof msg - 1, NULL,
                      0) < 0) {
      r->app_done = 1;
      return rc; /* left suspended until the server closes */
    }
    r->app_done = 1;
  }
  wake(r);
  return rc;
}

const char *lash_http_method(const lash_http_req *r) {
  return r->method;
}

const char *lash_http_path(const lash_http_req *r) {
  return r->path;
}

const char *lash_http_body(const lash_http_req *r, size_t *len) {
  if (len != NULL) *len = r->len;
  return r->body != NULL ? r->body : "";
}

const char *lash_http_peer(const lash_http_req *r) {
  return r->peer;
}

struct pairs {
  lash_http_pair_fn fn;
  void *ud;
};

static enum MHD_Result pair_cb(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value) {
  struct pairs *p = cls;
  (void)kind;
  return p->fn(p->ud, key, value != NULL ? value : "") ? MHD_NO : MHD_YES;
}

void lash_http_pairs(const lash_http_req *r, int what, lash_http_pair_fn fn,
                     void *ud) {
  struct pairs p;
  if (r->conn == NULL || fn == NULL) return;
  p.fn = fn;
  p.ud = ud;
  MHD_get_connection_values(
      r->conn, what ? MHD_HEADER_KIND : MHD_GET_ARGUMENT_KIND, pair_cb, &p);
}

/* ------------------------------------------------------------ MHD side */

static void set_peer(lash_http_req *r, struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
  r->peer[0] = '\0';
  if (sa == NULL) return;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET,
              &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
              r->peer, sizeof r->peer);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
              r->peer, sizeof r->peer);
}

static enum MHD_Result queue_plain(struct MHD_Connection *conn, unsigned status,
                                   const char *json) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ok;
  if (resp == NULL) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "application/json");
  ok = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ok;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  lash_http *h = cls;
  lash_http_req *r = *con_cls;
  (void)version;
  if (r == NULL) { /* the headers arrived */
    if ((r = calloc(1, sizeof *r)) == NULL) return MHD_NO;
    r->h = h;
    r->conn = conn;
    r->method = strdup(method);
    r->path = strdup(url);
    if (r->method == NULL || r->path == NULL) {
      req_free(r);
      return MHD_NO;
    }
    set_peer(r, conn);
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size > 0) { /* a piece of the body */
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->too_big || r->len + n > LASH_HTTP_BODY_MAX) {
      r->too_big = 1;
      return MHD_YES;
    }
    if (r->len + n + 1 > r->cap) {
      size_t cap = (r->len + n + 1) * 2;
      char *b = realloc(r->body, cap);
      if (b == NULL) return MHD_NO;
      r->body = b;
      r->cap = cap;
    }
    memcpy(r->body + r->len, upload, n);
    r->len += n;
    r->body[r->len] = '\0';
    return MHD_YES;
  }
  if (r->resp != NULL) { /* answered: send it */
    enum MHD_Result ok = MHD_queue_response(conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ok;
  }
  if (r->too_big)
    return queue_plain(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                       "{\"error\":\"request body over 1 MiB\"}");
  if (!r->dispatched) {
    r->dispatched = 1;
    if (h->closing)
      return queue_plain(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "{\"error\":\"the server is closing\"}");
    /* pending until answered */
    r->next = h->pending.next;
    r->prev = &h->pending;
    h->pending.next->prev = r;
    h->pending.next = r;
    h->fn(h->ud, r);
    if (r->resp != NULL) { /* answered at once */
      enum MHD_Result ok = MHD_queue_response(conn, r->status, r->resp);
      MHD_destroy_response(r->resp);
      r->resp = NULL;
      return ok;
    }
  }
  if (!r->answered && !r->suspended) {
    r->suspended = 1;
    MHD_suspend_connection(conn);
  }
  return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  lash_http_req *r = *con_cls;
  (void)cls;
  (void)conn;
  (void)why;
  if (r == NULL) return;
  *con_cls = NULL;
  r->conn = NULL;
  r->mhd_done = 1;
  req_unlink(r);
  if (!r->dispatched || r->app_done) req_free(r);
}

/* ------------------------------------------------------------ the loop */

static void handle_closed(uv_handle_t *hd) {
  lash_http *h = hd->data;
  if (--h->open_handles == 0) free(h);
}

static void shut(lash_http *h) {
  lash_http_req *r;
  static const char msg[] = "{\"error\":\"the server closed\"}";
  /* Answer what the application still holds, then stop MHD (which
   * completes every connection); the application's own answer to those
   * later is a no-op (lash_http_respond). */
  while ((r = h->pending.next) != &h->pending) {
    req_unlink(r);
    if (!r->answered && make_response(r, 503, "application/json", msg,
                                      sizeof msg - 1, NULL, 0) < 0)
      r->answered = 1;
    if (r->suspended && r->conn != NULL) {
      r->suspended = 0;
      MHD_resume_connection(r->conn);
    }
    r->h = NULL;
  }
  MHD_run(h->d);
  MHD_stop_daemon(h->d);
  h->d = NULL;
  uv_close((uv_handle_t *)&h->poll, handle_closed);
  uv_close((uv_handle_t *)&h->timer, handle_closed);
}

static void run_mhd(lash_http *h) {
  MHD_UNSIGNED_LONG_LONG to;
  h->in_run = 1;
  MHD_run(h->d);
  h->in_run = 0;
  if (h->closing) {
    shut(h);
    return;
  }
  if (MHD_get_timeout(h->d, &to) == MHD_YES)
    uv_timer_start(&h->timer, timer_cb, to > 60000 ? 60000 : (uint64_t)to, 0);
  else
    uv_timer_stop(&h->timer);
}

static void timer_cb(uv_timer_t *t) {
  run_mhd(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  run_mhd(p->data);
}

/* "host:port" -> a socket address; 0 or -1 with a message. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss,
                      socklen_t *sslen, char *err, size_t errlen) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon, *hs = addr;
  size_t hl;
  char *end;
  long port;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':') goto bad;
    hs = addr + 1;
    hl = (size_t)(close - hs);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL) goto bad;
    hl = (size_t)(colon - addr);
  }
  if (hl == 0 || hl >= sizeof host) goto bad;
  memcpy(host, hs, hl);
  host[hl] = '\0';
  port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) goto bad;
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  memset(ss, 0, sizeof *ss);
  {
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons((uint16_t)port);
      *sslen = sizeof *a4;
      return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons((uint16_t)port);
      *sslen = sizeof *a6;
      return 0;
    }
  }
bad:
  snprintf(err, errlen,
           "address \"%s\": give HOST:PORT with a numeric IPv4 host, "
           "[IPv6]:PORT or localhost:PORT (e.g. 127.0.0.1:8080)",
           addr);
  return -1;
}

static void name_of(lash_http *h, int fd) {
  struct sockaddr_storage ss;
  socklen_t n = sizeof ss;
  char host[INET6_ADDRSTRLEN];
  h->address[0] = '\0';
  if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0) return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)(void *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    snprintf(h->address, sizeof h->address, "%s:%u", host,
             (unsigned)ntohs(a->sin_port));
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf(h->address, sizeof h->address, "[%s]:%u", host,
             (unsigned)ntohs(a->sin6_port));
  }
}

int lash_http_listen(uv_loop_t *loop, const char *addr, lash_http_fn fn,
                     void *ud, lash_http **out, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  lash_http *h;
  const union MHD_DaemonInfo *di;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
  char dummy[1];
  if (err == NULL) {
    err = dummy;
    errlen = sizeof dummy;
  }
  if (out != NULL) *out = NULL;
  if (loop == NULL || addr == NULL || fn == NULL || out == NULL) {
    snprintf(err, errlen,
             "lash_http_listen: a loop, an address, a handler "
             "and an out pointer are needed");
    return LASH_EINVAL;
  }
  if (parse_addr(addr, &ss, &sslen, err, errlen) < 0) return LASH_EINVAL;
  if ((h = calloc(1, sizeof *h)) == NULL) {
    snprintf(err, errlen, "out of memory");
    return LASH_ENOMEM;
  }
  h->loop = loop;
  h->fn = fn;
  h->ud = ud;
  h->pending.next = h->pending.prev = &h->pending;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, access_cb, h, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)60, MHD_OPTION_END);
  (void)sslen;
  if (h->d == NULL) {
    snprintf(err, errlen,
             "cannot listen on %s (in use, or not an address of this host?)",
             addr);
    free(h);
    return LASH_EIO;
  }
  di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
  if (di != NULL) name_of(h, di->listen_fd);
  di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
  if (di == NULL || uv_poll_init(loop, &h->poll, di->epoll_fd) != 0) {
    snprintf(err, errlen, "cannot watch the HTTP server of %s on the loop",
             addr);
    MHD_stop_daemon(h->d);
    free(h);
    return LASH_EIO;
  }
  uv_timer_init(loop, &h->timer);
  h->poll.data = h->timer.data = h;
  h->open_handles = 2;
  uv_poll_start(&h->poll, UV_READABLE, poll_cb);
  uv_timer_start(&h->timer, timer_cb, 0, 0);
  *out = h;
  return 0;
}

const char *lash_http_address(const lash_http *h) {
  return h != NULL ? h->address : "";
}

void lash_http_close(lash_http *h) {
  if (h == NULL || h->closing) return;
  h->closing = 1;
  uv_poll_stop(&h->poll);
  uv_timer_stop(&h->timer);
  if (!h->in_run) shut(h);
}
