/*
 * loadgen — a small native WebSocket load generator for `npm run bench:load`.
 *
 * Single-threaded, epoll (edge-triggered), non-blocking sockets to 127.0.0.1. It speaks just
 * enough RFC 6455 to load a server: the client handshake with a fixed key (the accept value is
 * checked), masked client frames built once with a fixed mask, and a streaming parser for the
 * server's frames (header only: payloads are skipped, data messages are counted). It is meant to
 * cost far less CPU per message than the server under test, so that the server is the bottleneck.
 *
 * Modes (all report one `RESULT {json}` line on stdout at the end):
 *
 *   echo           --conns C --window W --size S: each connection keeps W text messages of S bytes
 *                  in flight (pipelined); every reply triggers one more. Reports replies/s and
 *                  p50/p99 round-trip latency (queueing included: it is a throughput test).
 *   broadcast-recv --conns N --window K --size S: N-2 receivers, then one publisher, then one
 *                  "tail" connection (connected last, so servers iterating their client set in
 *                  insertion order write to it last). The publisher keeps K messages in flight,
 *                  one more each time the tail receives one (a closed loop: the server is never
 *                  asked for more than it delivers). Reports deliveries/s (messages received by
 *                  all N connections per second, the publisher and the tail included).
 *   idle           --conns N: open N connections, print `READY <n>`, then hold them idle until a
 *                  line or EOF on stdin (or --hold seconds). The runner measures server memory.
 *   handshake      --concurrency C: C slots, each connects, sends the upgrade request, reads the
 *                  101, closes (with SO_LINGER 0, i.e. RST: no TIME_WAIT, so ports do not run
 *                  out), and starts over. Reports handshakes/s.
 *
 * Timed modes print `MEASURE_START` and `MEASURE_END` lines around the measured interval (after
 * --warmup seconds) so the runner can sample the server's CPU time at the same moments; the
 * loadgen's own CPU use over that interval (getrusage user+sys / wall) is in the RESULT.
 *
 * --wait-stdin: after the RESULT line, keep the connections open (unread) until a line or EOF on
 * stdin (or --hold seconds), so that the runner can finish sampling the server first.
 * --fin-close: close with FIN instead of RST (SO_LINGER 0) everywhere.
 *
 * --raw (echo and idle only): no handshake; the server is a plain TCP echo (node:net), which
 * returns our masked frames as they are (the parser accepts masked frames). A ceiling for echo
 * throughput and a floor for per-connection memory.
 *
 * Build: cc -O2 -Wall -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };
enum { ROLE_PLAIN, ROLE_PUBLISHER, ROLE_TAIL };
enum { M_ECHO, M_BROADCAST, M_IDLE, M_HANDSHAKE };

#define HEAD_MAX 1024
#define READ_BUF (256 * 1024)
#define LAT_BUCKETS 200000 /* 1 us resolution up to 200 ms */
#define STDIN_TAG 0xffffffffu

static const char WS_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char WS_ACCEPT[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

typedef struct {
  int fd;
  uint8_t state;
  uint8_t role;
  uint8_t fhlen;  /* frame header bytes collected (header split across reads) */
  uint8_t fh[14];
  uint16_t hlen;  /* handshake response bytes collected */
  char *head;     /* handshake response buffer (freed once open) */
  uint64_t skip;  /* payload bytes of the current frame still to skip */
  uint32_t reqoff;
  uint64_t owe;   /* message bytes owed to the socket (echo / publisher) */
  uint64_t sent;  /* message bytes written so far (phase in the prebuilt burst) */
  uint64_t *ts;   /* echo: send times of in-flight messages (ring of `window`) */
  uint32_t ts_head, ts_count;
} conn_t;

/* ---- options ---------------------------------------------------------------------------- */
static int mode = -1;
static const char *host = "127.0.0.1";
static int port = 0;
static int nconns = 64;
static int window_ = 64;
static int msg_size = 32;
static double duration = 5;
static double warmup = 1;
static int concurrency = 32;
static int max_pending = 256;
static double hold = 120;
static int raw = 0;
static int rst_close = 1;
static int wait_stdin = 0;

/* ---- state ------------------------------------------------------------------------------ */
static int ep;
static conn_t *conns;
static int nslots;
static struct sockaddr_in addr;
static char request[512];
static int request_len;
static uint8_t *burst; /* `window_ + 1` identical masked frames back to back */
static size_t frame_len, burst_len;
static uint8_t *rbuf;

static int n_open, n_pending, n_opened_total, n_next;
static uint64_t errors, closed_by_server, bad_handshakes;
static uint64_t now_ns;

static int measuring;
static uint64_t m_msgs;     /* echo replies / broadcast deliveries / handshakes in the window */
static uint64_t m_published;
static uint64_t lat_hist[LAT_BUCKETS + 1];
static uint64_t lat_count;
static uint64_t allowance; /* broadcast: messages the publisher may send */
static int publisher = -1, tail = -1;

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void raise_nofile(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  struct rlimit want = {65536, 65536};
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
  /* Without CAP_SYS_RESOURCE (or inside a container) the hard limit caps us. */
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  getrlimit(RLIMIT_NOFILE, &r);
  if ((long)r.rlim_cur < (long)nslots + 16)
    fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %ld < %d connections\n", (long)r.rlim_cur,
            nslots);
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_close(conn_t *c) {
  if (c->fd >= 0) {
    if (rst_close) {
      struct linger l = {1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd); /* also removes it from the epoll set */
  }
  if (c->state == ST_OPEN) n_open--;
  else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) n_pending--;
  free(c->head);
  c->head = NULL;
  c->fd = -1;
  c->state = ST_CLOSED;
}

static void send_request(conn_t *c);

static void conn_start(int i, int role) {
  conn_t *c = &conns[i];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->role = (uint8_t)role;
  c->state = ST_CONNECTING;
  n_pending++;
  n_opened_total++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.u64 = (uint64_t)i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
    errors++;
    conn_close(c);
    return;
  }
  /* Completion (or failure) is reported as EPOLLOUT / EPOLLERR. */
}

static void became_open(conn_t *c) {
  n_pending--;
  n_open++;
  c->state = ST_OPEN;
  if (mode == M_ECHO) {
    c->ts = calloc((size_t)window_, sizeof(uint64_t));
    if (c->ts == NULL) die("calloc");
  }
}

static void send_request(conn_t *c) {
  while (c->reqoff < (uint32_t)request_len) {
    ssize_t w = write(c->fd, request + c->reqoff, (size_t)request_len - c->reqoff);
    if (w < 0) {
      if (errno == EAGAIN) return;
      errors++;
      conn_close(c);
      return;
    }
    c->reqoff += (uint32_t)w;
  }
  c->state = ST_HANDSHAKE;
}

/* Write owed message bytes from the prebuilt burst (all frames are identical). */
static void flush_owed(conn_t *c) {
  while (c->owe > 0) {
    size_t off = (size_t)(c->sent % frame_len);
    size_t len = burst_len - off;
    if (len > c->owe) len = (size_t)c->owe;
    ssize_t w = write(c->fd, burst + off, len);
    if (w < 0) {
      if (errno == EAGAIN) return; /* EPOLLOUT (edge) will call us again */
      errors++;
      conn_close(c);
      return;
    }
    c->owe -= (uint64_t)w;
    c->sent += (uint64_t)w;
  }
}

static inline size_t header_need(uint8_t b1) {
  uint8_t len = b1 & 0x7f;
  size_t base = len == 126 ? 4 : len == 127 ? 10 : 2;
  return (b1 & 0x80) ? base + 4 : base;
}

/* A complete frame header: set the payload skip; count finished data messages. */
static inline int on_header(conn_t *c, const uint8_t *h) {
  uint8_t b0 = h[0], b1 = h[1];
  uint64_t len = b1 & 0x7f;
  if (len == 126) {
    len = ((uint64_t)h[2] << 8) | h[3];
  } else if (len == 127) {
    len = 0;
    for (int k = 2; k < 10; k++) len = (len << 8) | h[k];
  }
  c->skip = len;
  uint8_t opcode = b0 & 0x0f;
  if (opcode == 0x8) {
    closed_by_server++;
    return -1;
  }
  return (b0 & 0x80) && opcode < 0x8 ? 1 : 0;
}

/* Parse server frames; returns the number of complete data messages, or -1 on a Close frame. */
static long parse_frames(conn_t *c, const uint8_t *p, size_t n) {
  long msgs = 0;
  while (n > 0) {
    if (c->skip > 0) {
      size_t k = c->skip < n ? (size_t)c->skip : n;
      c->skip -= k;
      p += k;
      n -= k;
      continue;
    }
    if (c->fhlen == 0 && n >= 2) {
      size_t need = header_need(p[1]);
      if (n >= need) {
        int r = on_header(c, p);
        if (r < 0) return -1;
        msgs += r;
        p += need;
        n -= need;
        continue;
      }
    }
    while (c->fhlen < 2 && n > 0) {
      c->fh[c->fhlen++] = *p++;
      n--;
    }
    if (c->fhlen < 2) break;
    size_t need = header_need(c->fh[1]);
    size_t take = need - c->fhlen;
    if (take > n) take = n;
    memcpy(c->fh + c->fhlen, p, take);
    c->fhlen += (uint8_t)take;
    p += take;
    n -= take;
    if (c->fhlen < need) break;
    c->fhlen = 0;
    int r = on_header(c, c->fh);
    if (r < 0) return -1;
    msgs += r;
  }
  return msgs;
}

static void on_messages(int i, conn_t *c, long k) {
  if (k <= 0) return;
  if (mode == M_ECHO) {
    if (measuring) {
      m_msgs += (uint64_t)k;
      for (long j = 0; j < k && c->ts_count > 0; j++) {
        uint64_t us = (now_ns - c->ts[c->ts_head]) / 1000;
        lat_hist[us < LAT_BUCKETS ? us : LAT_BUCKETS]++;
        lat_count++;
        c->ts_head = (c->ts_head + 1) % (uint32_t)window_;
        c->ts_count--;
      }
    } else {
      uint32_t drop = (uint32_t)k < c->ts_count ? (uint32_t)k : c->ts_count;
      c->ts_head = (c->ts_head + drop) % (uint32_t)window_;
      c->ts_count -= drop;
    }
    for (long j = 0; j < k && c->ts_count < (uint32_t)window_; j++) {
      c->ts[(c->ts_head + c->ts_count) % (uint32_t)window_] = now_ns;
      c->ts_count++;
    }
    c->owe += (uint64_t)k * frame_len;
    flush_owed(c);
  } else if (mode == M_BROADCAST) {
    if (measuring) m_msgs += (uint64_t)k;
    if (i == tail) allowance += (uint64_t)k;
  }
}

static void on_readable(int i, conn_t *c) {
  for (;;) {
    ssize_t r = read(c->fd, rbuf, READ_BUF);
    if (r == 0) {
      if (mode != M_HANDSHAKE || c->state != ST_OPEN) errors++;
      conn_close(c);
      return;
    }
    if (r < 0) {
      if (errno == EAGAIN) return;
      errors++;
      conn_close(c);
      return;
    }
    const uint8_t *p = rbuf;
    size_t n = (size_t)r;
    if (c->state == ST_HANDSHAKE) {
      if (c->head == NULL) c->head = malloc(HEAD_MAX);
      if (c->head == NULL) die("malloc");
      size_t room = HEAD_MAX - 1 - c->hlen;
      size_t take = n < room ? n : room;
      memcpy(c->head + c->hlen, p, take);
      c->hlen += (uint16_t)take;
      c->head[c->hlen] = 0;
      char *end = strstr(c->head, "\r\n\r\n");
      if (end == NULL) {
        if (c->hlen >= HEAD_MAX - 1) {
          bad_handshakes++;
          conn_close(c);
          return;
        }
        continue;
      }
      size_t head_len = (size_t)(end + 4 - c->head);
      if (strncmp(c->head, "HTTP/1.1 101", 12) != 0 || strstr(c->head, WS_ACCEPT) == NULL) {
        if (bad_handshakes++ < 3) fprintf(stderr, "loadgen: bad handshake: %.80s\n", c->head);
        conn_close(c);
        return;
      }
      /* Bytes after the head were already frames; the first `take` bytes of this read are in
         the head buffer, anything past `head_len` of it belongs to the frame stream. */
      size_t consumed = head_len - (c->hlen - take);
      p += consumed;
      n -= consumed;
      free(c->head);
      c->head = NULL;
      became_open(c);
      if (mode == M_HANDSHAKE) {
        if (measuring) m_msgs++;
        conn_close(c);
        conn_start(i, ROLE_PLAIN);
        return;
      }
      if (mode == M_ECHO) on_messages(i, c, window_); /* prime the window: treat as W replies */
      if (n == 0) {
        if ((size_t)r < READ_BUF) return;
        continue;
      }
    }
    long k = parse_frames(c, p, n);
    if (k < 0) {
      errors++;
      conn_close(c);
      return;
    }
    on_messages(i, c, k);
    if (c->state != ST_OPEN) return;
    if ((size_t)r < READ_BUF) return; /* drained; the next arrival is a new edge */
  }
}

static void on_event(int i, uint32_t events) {
  conn_t *c = &conns[i];
  if (c->state == ST_CLOSED || c->state == ST_FREE) return;
  if (events & EPOLLERR) {
    errors++;
    conn_close(c);
    if (mode == M_HANDSHAKE) conn_start(i, ROLE_PLAIN);
    return;
  }
  if (c->state == ST_CONNECTING && (events & EPOLLOUT)) {
    if (raw) {
      c->state = ST_HANDSHAKE;
      became_open(c);
      if (mode == M_ECHO) on_messages(i, c, window_);
    } else {
      send_request(c);
    }
    if (c->state == ST_CLOSED) {
      if (mode == M_HANDSHAKE) conn_start(i, ROLE_PLAIN);
      return;
    }
  } else if (c->state == ST_HANDSHAKE && c->reqoff < (uint32_t)request_len &&
             (events & EPOLLOUT)) {
    send_request(c);
  } else if (c->state == ST_OPEN && (events & EPOLLOUT) && c->owe > 0) {
    flush_owed(c);
  }
  if (c->state != ST_CLOSED && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) on_readable(i, c);
  if (mode == M_HANDSHAKE && c->state == ST_CLOSED) conn_start(i, ROLE_PLAIN);
}

/* ---- setup ------------------------------------------------------------------------------ */

static void build_frames(void) {
  size_t hdr = msg_size < 126 ? 2 : msg_size < 65536 ? 4 : 10;
  frame_len = hdr + 4 + (size_t)msg_size;
  burst_len = frame_len * (size_t)(window_ + 1);
  burst = malloc(burst_len);
  if (burst == NULL) die("malloc");
  uint8_t *f = burst;
  f[0] = 0x81; /* FIN + text */
  size_t at = 2;
  if (msg_size < 126) {
    f[1] = 0x80 | (uint8_t)msg_size;
  } else if (msg_size < 65536) {
    f[1] = 0x80 | 126;
    f[2] = (uint8_t)(msg_size >> 8);
    f[3] = (uint8_t)msg_size;
    at = 4;
  } else {
    f[1] = 0x80 | 127;
    memset(f + 2, 0, 8);
    f[6] = (uint8_t)(msg_size >> 24);
    f[7] = (uint8_t)(msg_size >> 16);
    f[8] = (uint8_t)(msg_size >> 8);
    f[9] = (uint8_t)msg_size;
    at = 10;
  }
  memcpy(f + at, MASK, 4);
  at += 4;
  for (int j = 0; j < msg_size; j++) f[at + j] = (uint8_t)('a' + j % 26) ^ MASK[j & 3];
  for (int w = 1; w <= window_; w++) memcpy(burst + (size_t)w * frame_len, burst, frame_len);
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen echo|broadcast-recv|idle|handshake --port P [--host 127.0.0.1]\n"
          "  [--conns N] [--window W] [--size S] [--duration s] [--warmup s]\n"
          "  [--concurrency C] [--max-pending P] [--hold s] [--raw] [--fin-close]\n"
          "  [--wait-stdin]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  if (argc < 2) usage();
  if (strcmp(argv[1], "echo") == 0) mode = M_ECHO;
  else if (strcmp(argv[1], "broadcast-recv") == 0) mode = M_BROADCAST;
  else if (strcmp(argv[1], "idle") == 0) mode = M_IDLE;
  else if (strcmp(argv[1], "handshake") == 0) mode = M_HANDSHAKE;
  else usage();
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--raw") == 0) raw = 1;
    else if (strcmp(a, "--fin-close") == 0) rst_close = 0;
    else if (strcmp(a, "--wait-stdin") == 0) wait_stdin = 1;
    else if (v == NULL) usage();
    else if (strcmp(a, "--host") == 0) host = v, i++;
    else if (strcmp(a, "--port") == 0) port = atoi(v), i++;
    else if (strcmp(a, "--conns") == 0) nconns = atoi(v), i++;
    else if (strcmp(a, "--window") == 0) window_ = atoi(v), i++;
    else if (strcmp(a, "--size") == 0) msg_size = atoi(v), i++;
    else if (strcmp(a, "--duration") == 0) duration = atof(v), i++;
    else if (strcmp(a, "--warmup") == 0) warmup = atof(v), i++;
    else if (strcmp(a, "--concurrency") == 0) concurrency = atoi(v), i++;
    else if (strcmp(a, "--max-pending") == 0) max_pending = atoi(v), i++;
    else if (strcmp(a, "--hold") == 0) hold = atof(v), i++;
    else usage();
  }
  if (port <= 0 || nconns < 1 || window_ < 1 || msg_size < 1 || concurrency < 1) usage();
  if (mode == M_BROADCAST && nconns < 3) usage();
  if (raw && mode != M_ECHO && mode != M_IDLE) usage();
}

static double percentile(double q) {
  if (lat_count == 0) return 0;
  uint64_t want = (uint64_t)(q * (double)lat_count);
  uint64_t seen = 0;
  for (int b = 0; b <= LAT_BUCKETS; b++) {
    seen += lat_hist[b];
    if (seen > want) return b;
  }
  return LAT_BUCKETS;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  nslots = mode == M_HANDSHAKE ? concurrency : nconns;
  raise_nofile();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();
  request_len = snprintf(request, sizeof request,
                         "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         host, port, WS_KEY);
  build_frames();
  rbuf = malloc(READ_BUF);
  conns = calloc((size_t)nslots, sizeof(conn_t));
  if (rbuf == NULL || conns == NULL) die("malloc");
  for (int i = 0; i < nslots; i++) conns[i].fd = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  if (mode == M_IDLE) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev); /* fails harmlessly if stdin is not pollable */
  }

  const int maxev = 1024;
  struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);
  uint64_t t0 = mono_ns();
  now_ns = t0;
  uint64_t connected_at = 0, measure_start = 0, measure_end = 0;
  double cpu_start = 0, cpu_end = 0;
  int ready_printed = 0, done = 0, stdin_done = 0;
  /* Broadcast connection phases: receivers, then the publisher, then the tail. */
  int target = mode == M_BROADCAST ? nconns - 2 : nslots;
  if (mode == M_HANDSHAKE) {
    for (int i = 0; i < nslots; i++) conn_start(i, ROLE_PLAIN);
    n_next = nslots;
    connected_at = t0;
  }

  while (!done) {
    /* Open more connections, at most max_pending handshakes at a time (no SYN floods). */
    if (mode != M_HANDSHAKE) {
      while (n_next < target && n_pending < max_pending) {
        int role = ROLE_PLAIN;
        if (mode == M_BROADCAST && n_next == nconns - 2) role = ROLE_PUBLISHER;
        if (mode == M_BROADCAST && n_next == nconns - 1) role = ROLE_TAIL;
        if (role == ROLE_PUBLISHER) publisher = n_next;
        if (role == ROLE_TAIL) tail = n_next;
        conn_start(n_next++, role);
      }
    }
    int n = epoll_wait(ep, evs, maxev, 10);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    now_ns = mono_ns();
    for (int e = 0; e < n; e++) {
      if (evs[e].data.u64 == STDIN_TAG) {
        char tmp[256];
        ssize_t r = read(0, tmp, sizeof tmp);
        if (r <= 0 || memchr(tmp, '\n', (size_t)r) != NULL) stdin_done = 1;
        if (r <= 0) epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        continue;
      }
      on_event((int)evs[e].data.u64, evs[e].events);
    }
    if (mode == M_BROADCAST && publisher >= 0 && conns[publisher].state == ST_OPEN &&
        tail >= 0 && conns[tail].state == ST_OPEN && allowance > 0) {
      conn_t *p = &conns[publisher];
      if (measuring) m_published += allowance;
      p->owe += allowance * frame_len;
      allowance = 0;
      flush_owed(p);
    }
    /* Phase changes. */
    if (connected_at == 0 && n_pending == 0 && n_next == target) {
      if (mode == M_BROADCAST && target < nconns) {
        target++; /* next: the publisher, then the tail */
        continue;
      }
      connected_at = now_ns;
      fprintf(stderr, "loadgen: %d connections open in %.2f s (%llu errors)\n", n_open,
              (now_ns - t0) / 1e9, (unsigned long long)errors);
      if (mode == M_BROADCAST) allowance = (uint64_t)window_;
      if (mode == M_IDLE) {
        printf("READY %d\n", n_open);
        ready_printed = 1;
      }
    }
    if (mode == M_IDLE) {
      if (stdin_done || (now_ns - t0) / 1e9 > hold) done = 1;
      continue;
    }
    if (connected_at == 0) {
      if ((now_ns - t0) / 1e9 > 60) {
        fprintf(stderr, "loadgen: gave up connecting (%d open, %d pending)\n", n_open, n_pending);
        break;
      }
      continue;
    }
    double since = (now_ns - connected_at) / 1e9;
    if (!measuring && measure_start == 0 && since >= warmup) {
      measuring = 1;
      measure_start = now_ns;
      cpu_start = cpu_seconds();
      printf("MEASURE_START\n");
    } else if (measuring && since >= warmup + duration) {
      measuring = 0;
      measure_end = now_ns;
      cpu_end = cpu_seconds();
      printf("MEASURE_END\n");
      done = 1;
    }
    if (mode != M_HANDSHAKE && n_open == 0) {
      fprintf(stderr, "loadgen: every connection closed\n");
      break;
    }
  }

  double wall = measure_end > measure_start ? (measure_end - measure_start) / 1e9 : 0;
  const char *names[] = {"echo", "broadcast-recv", "idle", "handshake"};
  printf("RESULT {\"mode\":\"%s\",\"conns\":%d,\"open\":%d,\"window\":%d,\"size\":%d,"
         "\"seconds\":%.4f,\"count\":%llu,\"rate\":%.1f,\"published\":%llu,"
         "\"loadgenCpu\":%.4f,\"p50us\":%.0f,\"p99us\":%.0f,\"errors\":%llu,"
         "\"closedByServer\":%llu,\"badHandshakes\":%llu,\"connectSeconds\":%.3f,"
         "\"ready\":%d}\n",
         names[mode], mode == M_HANDSHAKE ? concurrency : nconns, n_open, window_, msg_size,
         wall, (unsigned long long)m_msgs, wall > 0 ? m_msgs / wall : 0.0,
         (unsigned long long)m_published, wall > 0 ? (cpu_end - cpu_start) / wall : 0.0,
         percentile(0.5), percentile(0.99), (unsigned long long)errors,
         (unsigned long long)closed_by_server, (unsigned long long)bad_handshakes,
         connected_at > 0 ? (connected_at - t0) / 1e9 : -1.0, ready_printed);
  if (wait_stdin) {
    /* Keep the connections (unread) until the runner is done with the server (e.g. saving a
       CPU profile), so that their teardown is not part of what it measures. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    if (ep2 >= 0 && epoll_ctl(ep2, EPOLL_CTL_ADD, 0, &ev) == 0) {
      struct epoll_event got;
      char tmp[256];
      if (epoll_wait(ep2, &got, 1, (int)(hold * 1000)) > 0) (void)!read(0, tmp, sizeof tmp);
    }
  }
  for (int i = 0; i < nslots; i++)
    if (conns[i].state != ST_CLOSED && conns[i].state != ST_FREE && conns[i].fd >= 0)
      conn_close(&conns[i]);
  return 0;
}
