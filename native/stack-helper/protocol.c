/*
 * The stack helper's OS-neutral half (PROTOCOL.md): reads requests on fd 0, answers each on
 * fd 1 at once, runs calls that can block on a thread of their own and reports their completion
 * on fd 3. Everything OS-specific is behind shim.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define REQ_FD 0
#define EVENT_FD 3
/* replies go to the descriptor the client gave as fd 1; fd 1 itself then becomes a copy of fd 2,
 * because a stack's console (rump's rumpuser_putchar) prints on stdout */
static int REPLY_FD = 1;
#define MAX_LINE 4096
#define MAX_KV 16
#define MAX_DATA (64u << 20)

const char *const sh_tcp_state_names[] = {
	"UNKNOWN", "CLOSE", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
	"CLOSE_WAIT", "FIN_WAIT1", "CLOSING", "LAST_ACK", "FIN_WAIT2", "TIME_WAIT",
};

static const char *const opt_names[SH_OPT_COUNT] = {
	[SH_SO_REUSEADDR] = "SO_REUSEADDR", [SH_SO_REUSEPORT] = "SO_REUSEPORT", [SH_SO_KEEPALIVE] = "SO_KEEPALIVE",
	[SH_SO_LINGER] = "SO_LINGER", [SH_SO_RCVBUF] = "SO_RCVBUF", [SH_SO_SNDBUF] = "SO_SNDBUF",
	[SH_SO_ERROR] = "SO_ERROR", [SH_SO_TYPE] = "SO_TYPE", [SH_IPV6_V6ONLY] = "IPV6_V6ONLY",
	[SH_TCP_NODELAY] = "TCP_NODELAY", [SH_TCP_MAXSEG] = "TCP_MAXSEG", [SH_IP_ADD_MEMBERSHIP] = "IP_ADD_MEMBERSHIP",
	[SH_IPV6_JOIN_GROUP] = "IPV6_JOIN_GROUP", [SH_IP_LOCAL_PORT_RANGE] = "IP_LOCAL_PORT_RANGE",
};

/* ---------------------------------------------------------------- text */

static void text_reserve(struct sh_text *t, size_t more)
{
	if (t->len + more + 1 <= t->cap) return;
	size_t cap = t->cap ? t->cap : 256;
	while (cap < t->len + more + 1) cap *= 2;
	char *b = realloc(t->buf, cap);
	if (!b) abort();
	t->buf = b;
	t->cap = cap;
}

void sh_text_printf(struct sh_text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	text_reserve(t, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static int plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._:,/+-[]", c) != NULL;
}

void sh_text_kv(struct sh_text *t, const char *key, const char *value)
{
	sh_text_printf(t, " %s=", key);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (plain(*p) && *p) sh_text_printf(t, "%c", *p);
		else sh_text_printf(t, "%%%02X", *p);
	}
}

static void text_free(struct sh_text *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

/* ---------------------------------------------------------------- output */

static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) _exit(0); /* the client is gone */
		p += n;
		len -= (size_t)n;
	}
}

/* a finished line (+ data) on fd 1 (main thread only) or fd 3 (any thread, one at a time) */
static void emit(int fd, struct sh_text *line, const void *data, size_t datalen)
{
	sh_text_printf(line, "\n");
	if (fd == EVENT_FD) pthread_mutex_lock(&event_lock);
	write_all(fd, line->buf, line->len);
	if (datalen) write_all(fd, data, datalen);
	if (fd == EVENT_FD) pthread_mutex_unlock(&event_lock);
}

static void result_keys(struct sh_text *t, long ret, int err)
{
	sh_text_printf(t, " ret=%ld", ret);
	if (ret < 0) {
		const char *name = sh_errno_name(err);
		if (name) sh_text_printf(t, " errno=%s", name);
		else sh_text_printf(t, " errno=E%d", err);
	}
}

/* ---------------------------------------------------------------- requests */

struct request {
	unsigned long tag;
	char op[32];
	int nkv;
	char *key[MAX_KV];
	char *val[MAX_KV];
	unsigned char *data;
	size_t datalen;
};

static void request_free(struct request *r)
{
	for (int i = 0; i < r->nkv; i++) {
		free(r->key[i]);
		free(r->val[i]);
	}
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static const char *get(const struct request *r, const char *key)
{
	for (int i = 0; i < r->nkv; i++)
		if (strcmp(r->key[i], key) == 0) return r->val[i];
	return NULL;
}

/* a problem with the request itself: PROTOCOL.md "bad" */
struct bad {
	char msg[256];
};

static int bad(struct bad *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct bad *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->msg, sizeof(b->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int get_long(const struct request *r, const char *key, long dflt, int required, long *out, struct bad *b)
{
	const char *v = get(r, key);
	if (!v) {
		if (required) return bad(b, "%s needs %s=", r->op, key);
		*out = dflt;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v) return bad(b, "%s=%s is not a number", key, v);
	*out = n;
	return 0;
}

static int parse_ip(const char *text, struct sh_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, a->bytes) == 1) {
		a->family = SH_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, a->bytes) == 1) {
		a->family = SH_INET6;
		return 0;
	}
	return -1;
}

static void format_ip(const struct sh_addr *a, char *out, size_t len)
{
	if (!inet_ntop(a->family == SH_INET ? AF_INET : AF_INET6, a->bytes, out, (socklen_t)len)) snprintf(out, len, "?");
}

static int get_addr(const struct request *r, struct sh_addr *a, struct bad *b)
{
	const char *addr = get(r, "addr");
	long port;
	if (!addr) return bad(b, "%s needs addr=", r->op);
	if (parse_ip(addr, a) < 0) return bad(b, "addr=%s is not an IP address", addr);
	if (get_long(r, "port", 0, 1, &port, b) < 0) return -1;
	if (port < 0 || port > 65535) return bad(b, "port=%ld out of range", port);
	a->port = (unsigned)port;
	return 0;
}

static int find_opt(const char *name)
{
	for (int i = 0; i < SH_OPT_COUNT; i++)
		if (strcmp(opt_names[i], name) == 0) return i;
	return -1;
}

static int parse_optval(int opt, const char *v, struct sh_optval *o, struct bad *b)
{
	memset(o, 0, sizeof(*o));
	char first[64], second[64];
	const char *comma = strchr(v, ',');
	switch (opt) {
	case SH_SO_LINGER:
		if (sscanf(v, "%d,%d", &o->onoff, &o->seconds) != 2) return bad(b, "SO_LINGER value is <onoff>,<seconds>, not %s", v);
		return 0;
	case SH_IP_LOCAL_PORT_RANGE:
		if (sscanf(v, "%u,%u", &o->lo, &o->hi) != 2) return bad(b, "IP_LOCAL_PORT_RANGE value is <lo>,<hi>, not %s", v);
		return 0;
	case SH_IP_ADD_MEMBERSHIP:
	case SH_IPV6_JOIN_GROUP:
		if (!comma || (size_t)(comma - v) >= sizeof(first) || strlen(comma + 1) >= sizeof(second)) return bad(b, "%s value is <group>,<interface>, not %s", opt_names[opt], v);
		memcpy(first, v, (size_t)(comma - v));
		first[comma - v] = 0;
		strcpy(second, comma + 1);
		if (parse_ip(first, &o->group) < 0) return bad(b, "%s group %s is not an address", opt_names[opt], first);
		if (opt == SH_IP_ADD_MEMBERSHIP) {
			if (parse_ip(second, &o->iface) < 0) return bad(b, "IP_ADD_MEMBERSHIP interface %s is not an address", second);
		} else {
			o->ifindex = (unsigned)strtoul(second, NULL, 10);
		}
		return 0;
	default: {
		char *end;
		o->i = strtol(v, &end, 10);
		if (*end || end == v) return bad(b, "%s value %s is not a number", opt_names[opt], v);
		return 0;
	}
	}
}

static void format_optval(int opt, const struct sh_optval *o, char *out, size_t len)
{
	switch (opt) {
	case SH_SO_LINGER: snprintf(out, len, "%d,%d", o->onoff, o->seconds); break;
	case SH_IP_LOCAL_PORT_RANGE: snprintf(out, len, "%u,%u", o->lo, o->hi); break;
	default: snprintf(out, len, "%ld", o->i); break;
	}
}

/* ---------------------------------------------------------------- async calls */

struct job {
	struct request req;
	int proc, fd;
	struct sh_addr addr;
	long n1, n2;
	struct timespec t0;
};

static long elapsed_us(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

static void *run_job(void *arg)
{
	struct job *j = arg;
	struct sh_text line = { 0 };
	int err = 0;
	long ret;
	char text[64];
	unsigned char *data = NULL;
	size_t datalen = 0;
	const char *op = j->req.op;
	sh_text_printf(&line, "%lu done", j->req.tag);
	if (strcmp(op, "connect") == 0) {
		ret = sh_connect(j->proc, j->fd, &j->addr, &err);
		result_keys(&line, ret, err);
	} else if (strcmp(op, "accept") == 0) {
		struct sh_addr peer = { 0 };
		ret = sh_accept(j->proc, j->fd, j->n1, &peer, &err);
		result_keys(&line, ret, err);
		if (ret >= 0 && peer.family) {
			format_ip(&peer, text, sizeof(text));
			sh_text_printf(&line, " family=%s addr=%s port=%u", peer.family == SH_INET ? "inet" : "inet6", text, peer.port);
		}
	} else if (strcmp(op, "send") == 0) {
		ret = sh_send(j->proc, j->fd, j->req.data, j->req.datalen, 0, &err);
		result_keys(&line, ret, err);
	} else if (strcmp(op, "recv") == 0) {
		data = malloc((size_t)j->n1 ? (size_t)j->n1 : 1);
		ret = sh_recv(j->proc, j->fd, data, (size_t)j->n1, (int)(j->n2 & 1), j->n2 >> 1, &err);
		result_keys(&line, ret, err);
		datalen = ret > 0 ? (size_t)ret : 0;
	} else if (strcmp(op, "close") == 0) {
		ret = sh_close(j->proc, j->fd, &err);
		result_keys(&line, ret, err);
	} else { /* proc_exit */
		ret = sh_proc_exit(j->proc, &err);
		result_keys(&line, ret, err);
	}
	sh_text_printf(&line, " elapsed_us=%ld", elapsed_us(&j->t0));
	if (strcmp(op, "recv") == 0) sh_text_printf(&line, " data=%zu", datalen);
	emit(EVENT_FD, &line, data, datalen);
	free(data);
	text_free(&line);
	request_free(&j->req);
	free(j);
	return NULL;
}

/* hands the request to a thread of its own; the request's memory moves to the job */
static void start_job(struct request *r, int proc, int fd, const struct sh_addr *a, long n1, long n2)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j) abort();
	j->req = *r;
	memset(r, 0, sizeof(*r));
	j->proc = proc;
	j->fd = fd;
	if (a) j->addr = *a;
	j->n1 = n1;
	j->n2 = n2;
	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_t t;
	if (pthread_create(&t, &attr, run_job, j) != 0) abort();
	pthread_attr_destroy(&attr);
}

/* ---------------------------------------------------------------- dispatch */

struct table_ctx {
	struct sh_text *out;
};

static void table_line(void *arg, const struct sh_pcb *p)
{
	struct table_ctx *c = arg;
	char l[64], r[64];
	format_ip(&p->local, l, sizeof(l));
	format_ip(&p->remote, r, sizeof(r));
	int st = p->state >= 0 && p->state <= SH_TCP_TIME_WAIT ? p->state : SH_TCP_UNKNOWN;
	sh_text_printf(c->out, "family=%s state=%s laddr=%s lport=%u raddr=%s rport=%u sndq=%llu rcvq=%llu",
		p->local.family == SH_INET ? "inet" : "inet6", sh_tcp_state_names[st], l, p->local.port, r, p->remote.port,
		(unsigned long long)p->sndq, (unsigned long long)p->rcvq);
	if (p->timer_ms >= 0) sh_text_printf(c->out, " timer_ms=%ld", p->timer_ms);
	sh_text_printf(c->out, "\n");
}

/* Handles one request. Returns 1 for quit. */
static int handle(struct request *r)
{
	struct sh_text line = { 0 };
	struct bad b = { { 0 } };
	int err = 0, rc = 0;
	long ret = 0, proc, fd = -1;
	struct sh_addr a;
	const unsigned char *data = NULL;
	size_t datalen = 0;
	struct sh_text payload = { 0 };
	const char *op = r->op;

	sh_text_printf(&line, "%lu", r->tag);
	if (get_long(r, "proc", 1, 0, &proc, &b) < 0) goto bad;
	if (get(r, "fd") && get_long(r, "fd", 0, 1, &fd, &b) < 0) goto bad;
#define NEED_FD() do { if (fd < 0) { bad(&b, "%s needs fd=", op); goto bad; } } while (0)

	if (strcmp(op, "socket") == 0) {
		const char *fam = get(r, "family"), *type = get(r, "type");
		long nb;
		if (!fam || (strcmp(fam, "inet") && strcmp(fam, "inet6"))) { bad(&b, "socket needs family=inet|inet6"); goto bad; }
		if (!type || (strcmp(type, "stream") && strcmp(type, "dgram"))) { bad(&b, "socket needs type=stream|dgram"); goto bad; }
		if (get_long(r, "nonblock", 0, 0, &nb, &b) < 0) goto bad;
		ret = sh_socket((int)proc, strcmp(fam, "inet") == 0 ? SH_INET : SH_INET6, strcmp(type, "stream") == 0 ? SH_STREAM : SH_DGRAM, nb != 0, &err);
	} else if (strcmp(op, "setsockopt") == 0 || strcmp(op, "getsockopt") == 0) {
		const char *name = get(r, "opt");
		int opt;
		struct sh_optval v;
		NEED_FD();
		if (!name || (opt = find_opt(name)) < 0) { bad(&b, "%s: unknown opt=%s", op, name ? name : ""); goto bad; }
		if (op[0] == 's') {
			const char *value = get(r, "value");
			if (!value) { bad(&b, "setsockopt needs value="); goto bad; }
			if (parse_optval(opt, value, &v, &b) < 0) goto bad;
			ret = sh_setsockopt((int)proc, (int)fd, opt, &v, &err);
		} else {
			memset(&v, 0, sizeof(v));
			ret = sh_getsockopt((int)proc, (int)fd, opt, &v, &err);
		}
		if (ret < 0 && err == SH_MISSING) {
			sh_text_printf(&line, " missing what=%s", name);
			goto out;
		}
		sh_text_printf(&line, " ok");
		result_keys(&line, ret, err);
		if (op[0] == 'g' && ret >= 0) {
			char text[64];
			format_optval(opt, &v, text, sizeof(text));
			sh_text_printf(&line, " value=%s", text);
		}
		goto out;
	} else if (strcmp(op, "bind") == 0) {
		NEED_FD();
		if (get_addr(r, &a, &b) < 0) goto bad;
		ret = sh_bind((int)proc, (int)fd, &a, &err);
	} else if (strcmp(op, "listen") == 0) {
		long backlog;
		NEED_FD();
		if (get_long(r, "backlog", 128, 0, &backlog, &b) < 0) goto bad;
		ret = sh_listen((int)proc, (int)fd, (int)backlog, &err);
	} else if (strcmp(op, "connect") == 0) {
		NEED_FD();
		if (get_addr(r, &a, &b) < 0) goto bad;
		start_job(r, (int)proc, (int)fd, &a, 0, 0);
		sh_text_printf(&line, " pending");
		goto out;
	} else if (strcmp(op, "accept") == 0) {
		long timeout;
		NEED_FD();
		if (get_long(r, "timeout_ms", -1, 0, &timeout, &b) < 0) goto bad;
		start_job(r, (int)proc, (int)fd, NULL, timeout, 0);
		sh_text_printf(&line, " pending");
		goto out;
	} else if (strcmp(op, "send") == 0) {
		const char *flags = get(r, "flags");
		NEED_FD();
		if (flags && strcmp(flags, "dontwait") == 0) {
			ret = sh_send((int)proc, (int)fd, r->data, r->datalen, 1, &err);
		} else if (flags && *flags) {
			bad(&b, "send: unknown flags=%s", flags);
			goto bad;
		} else {
			start_job(r, (int)proc, (int)fd, NULL, 0, 0);
			sh_text_printf(&line, " pending");
			goto out;
		}
	} else if (strcmp(op, "recv") == 0) {
		long max, timeout;
		const char *flags = get(r, "flags");
		NEED_FD();
		if (get_long(r, "max", 65536, 0, &max, &b) < 0 || get_long(r, "timeout_ms", -1, 0, &timeout, &b) < 0) goto bad;
		if (max < 0 || max > (long)MAX_DATA) { bad(&b, "recv max=%ld out of range", max); goto bad; }
		if (flags && *flags && strcmp(flags, "peek") != 0) { bad(&b, "recv: unknown flags=%s", flags); goto bad; }
		start_job(r, (int)proc, (int)fd, NULL, max, (timeout << 1) | (flags && strcmp(flags, "peek") == 0));
		sh_text_printf(&line, " pending");
		goto out;
	} else if (strcmp(op, "shutdown") == 0) {
		const char *how = get(r, "how");
		NEED_FD();
		int h = !how ? -1 : strcmp(how, "rd") == 0 ? SH_SHUT_RD : strcmp(how, "wr") == 0 ? SH_SHUT_WR : strcmp(how, "rdwr") == 0 ? SH_SHUT_RDWR : -1;
		if (h < 0) { bad(&b, "shutdown needs how=rd|wr|rdwr"); goto bad; }
		ret = sh_shutdown((int)proc, (int)fd, h, &err);
	} else if (strcmp(op, "close") == 0) {
		long async;
		NEED_FD();
		if (get_long(r, "async", 0, 0, &async, &b) < 0) goto bad;
		if (async) {
			start_job(r, (int)proc, (int)fd, NULL, 0, 0);
			sh_text_printf(&line, " pending");
			goto out;
		}
		ret = sh_close((int)proc, (int)fd, &err);
	} else if (strcmp(op, "nonblock") == 0) {
		long on;
		NEED_FD();
		if (get_long(r, "on", 0, 1, &on, &b) < 0) goto bad;
		ret = sh_nonblock((int)proc, (int)fd, on != 0, &err);
	} else if (strcmp(op, "getsockname") == 0 || strcmp(op, "getpeername") == 0) {
		NEED_FD();
		memset(&a, 0, sizeof(a));
		ret = sh_sockname((int)proc, (int)fd, op[3] == 'p', &a, &err);
		sh_text_printf(&line, " ok");
		result_keys(&line, ret, err);
		if (ret >= 0 && a.family) {
			char text[64];
			format_ip(&a, text, sizeof(text));
			sh_text_printf(&line, " family=%s addr=%s port=%u", a.family == SH_INET ? "inet" : "inet6", text, a.port);
		}
		goto out;
	} else if (strcmp(op, "tcpinfo") == 0) {
		struct sh_tcpinfo ti;
		NEED_FD();
		memset(&ti, 0xff, sizeof(ti));
		ret = sh_tcpinfo((int)proc, (int)fd, &ti, &err);
		if (ret < 0 && err == SH_MISSING) { sh_text_printf(&line, " missing what=TCP_INFO"); goto out; }
		sh_text_printf(&line, " ok");
		result_keys(&line, ret, err);
		if (ret >= 0) {
			int st = ti.state >= 0 && ti.state <= SH_TCP_TIME_WAIT ? ti.state : SH_TCP_UNKNOWN;
			sh_text_printf(&line, " state=%s", sh_tcp_state_names[st]);
#define TI(k) if (ti.k >= 0) sh_text_printf(&line, " " #k "=%ld", ti.k)
			TI(unacked); TI(rto_us); TI(snd_mss); TI(rcv_mss); TI(retransmits); TI(snd_cwnd); TI(rtt_us);
#undef TI
		}
		goto out;
	} else if (strcmp(op, "proc_new") == 0) {
		long uid, gid;
		if (get_long(r, "uid", -1, 0, &uid, &b) < 0 || get_long(r, "gid", uid, 0, &gid, &b) < 0) goto bad;
		ret = sh_proc_new(uid, gid, &err);
		if (ret < 0 && err == SH_MISSING) { sh_text_printf(&line, " missing what=proc_new"); goto out; }
	} else if (strcmp(op, "proc_exit") == 0) {
		if (!get(r, "proc")) { bad(&b, "proc_exit needs proc="); goto bad; }
		if (proc <= 1) { bad(&b, "proc_exit: process %ld is the helper's own", proc); goto bad; }
		if ((ret = sh_proc_exit_begin((int)proc, &err)) < 0) {
			if (err == SH_MISSING) { sh_text_printf(&line, " missing what=proc_exit"); goto out; }
			sh_text_printf(&line, " ok");
			result_keys(&line, ret, err);
			goto out;
		}
		start_job(r, (int)proc, -1, NULL, 0, 0);
		sh_text_printf(&line, " pending");
		goto out;
	} else if (strcmp(op, "sysctl_get") == 0 || strcmp(op, "sysctl_set") == 0) {
		const char *name = get(r, "name");
		char value[1024];
		if (!name) { bad(&b, "%s needs name=", op); goto bad; }
		if (op[7] == 'g') {
			ret = sh_sysctl_get(name, value, sizeof(value), &err);
		} else {
			const char *v = get(r, "value");
			if (!v) { bad(&b, "sysctl_set needs value="); goto bad; }
			ret = sh_sysctl_set(name, v, &err);
		}
		if (ret < 0 && err == SH_MISSING) { sh_text_printf(&line, " missing what=%s", name); goto out; }
		sh_text_printf(&line, " ok");
		result_keys(&line, ret, err);
		if (op[7] == 'g' && ret >= 0) sh_text_kv(&line, "value", value);
		goto out;
	} else if (strcmp(op, "table") == 0) {
		struct table_ctx c = { &payload };
		ret = sh_table(table_line, &c, &err);
		data = (const unsigned char *)payload.buf;
		datalen = payload.len;
	} else if (strcmp(op, "counters") == 0) {
		ret = sh_counters(&payload, &err);
		data = (const unsigned char *)payload.buf;
		datalen = payload.len;
	} else if (strcmp(op, "wire_create") == 0) {
		const char *tap = get(r, "tap");
		char ifname[32] = "", mac[32] = "";
		if (!tap) { bad(&b, "wire_create needs tap="); goto bad; }
		ret = sh_wire_create(tap, ifname, sizeof(ifname), mac, sizeof(mac), &err);
		if (ret < 0 && err == SH_MISSING) { sh_text_printf(&line, " missing what=wire"); goto out; }
		sh_text_printf(&line, " ok");
		result_keys(&line, ret, err);
		if (ret >= 0) sh_text_printf(&line, " if=%s mac=%s", ifname, mac);
		goto out;
	} else if (strcmp(op, "if_addr") == 0 || strcmp(op, "if_mtu") == 0 || strcmp(op, "if_up") == 0) {
		const char *ifname = get(r, "if");
		if (!ifname) { bad(&b, "%s needs if=", op); goto bad; }
		if (op[3] == 'a') {
			long prefix;
			const char *addr = get(r, "addr");
			if (!addr || parse_ip(addr, &a) < 0) { bad(&b, "if_addr needs addr=<address>"); goto bad; }
			if (get_long(r, "prefix", 0, 1, &prefix, &b) < 0) goto bad;
			ret = sh_if_addr(ifname, &a, (int)prefix, &err);
		} else if (op[3] == 'm') {
			long mtu;
			if (get_long(r, "mtu", 0, 1, &mtu, &b) < 0) goto bad;
			ret = sh_if_mtu(ifname, (int)mtu, &err);
		} else {
			ret = sh_if_up(ifname, &err);
		}
	} else if (strcmp(op, "quit") == 0) {
		rc = 1;
	} else {
		bad(&b, "unknown op %s", op);
		goto bad;
	}
	if (ret < 0 && err == SH_MISSING) {
		sh_text_printf(&line, " missing what=%s", op);
		goto out;
	}
	sh_text_printf(&line, " ok");
	result_keys(&line, ret, err);
	if (data || strcmp(op, "table") == 0 || strcmp(op, "counters") == 0) sh_text_printf(&line, " data=%zu", datalen);
	goto out;
bad:
	line.len = 0;
	sh_text_printf(&line, "%lu bad", r->tag);
	sh_text_kv(&line, "msg", b.msg);
out:
	emit(REPLY_FD, &line, data, datalen);
	text_free(&line);
	text_free(&payload);
	return rc;
#undef NEED_FD
}

/* ---------------------------------------------------------------- reading */

static unsigned char inbuf[1 << 16];
static size_t in_start, in_end;

static int fill(void)
{
	if (in_start == in_end) in_start = in_end = 0;
	if (in_end == sizeof(inbuf)) {
		if (in_start == 0) return -1; /* a line longer than the buffer */
		memmove(inbuf, inbuf + in_start, in_end - in_start);
		in_end -= in_start;
		in_start = 0;
	}
	ssize_t n;
	do n = read(REQ_FD, inbuf + in_end, sizeof(inbuf) - in_end);
	while (n < 0 && errno == EINTR);
	if (n <= 0) return -1;
	in_end += (size_t)n;
	return 0;
}

/* the next line, without its newline (valid until the next read); NULL at end of input */
static char *read_line(void)
{
	for (;;) {
		unsigned char *nl = memchr(inbuf + in_start, '\n', in_end - in_start);
		if (nl) {
			char *line = (char *)inbuf + in_start;
			*nl = 0;
			in_start = (size_t)(nl - inbuf) + 1;
			return line;
		}
		if (fill() < 0) return NULL;
	}
}

static int read_bytes(unsigned char *out, size_t n)
{
	while (n) {
		if (in_start == in_end && fill() < 0) return -1;
		size_t k = in_end - in_start < n ? in_end - in_start : n;
		memcpy(out, inbuf + in_start, k);
		in_start += k;
		out += k;
		n -= k;
	}
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *decode(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out) abort();
	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return out;
}

/* Parses a request line; returns -1 (with a reply already sent) when it cannot be parsed. */
static int parse(char *line, struct request *r)
{
	memset(r, 0, sizeof(*r));
	char *save = NULL;
	char *tag = strtok_r(line, " ", &save);
	char *op = strtok_r(NULL, " ", &save);
	char *end;
	struct sh_text reply = { 0 };
	if (!tag || !op || (r->tag = strtoul(tag, &end, 10), *end) || strlen(op) >= sizeof(r->op)) {
		sh_text_printf(&reply, "%s bad msg=request%%20is%%20<tag>%%20<op>%%20[key=value...]", tag && *tag ? tag : "0");
		emit(REPLY_FD, &reply, NULL, 0);
		text_free(&reply);
		return -1;
	}
	strcpy(r->op, op);
	for (char *tok; (tok = strtok_r(NULL, " ", &save));) {
		char *eq = strchr(tok, '=');
		if (!eq || r->nkv == MAX_KV) continue;
		*eq = 0;
		r->key[r->nkv] = strdup(tok);
		r->val[r->nkv] = decode(eq + 1);
		r->nkv++;
	}
	const char *d = get(r, "data");
	if (d) {
		unsigned long n = strtoul(d, NULL, 10);
		if (n > MAX_DATA) {
			fprintf(stderr, "stack-helper: request of %lu bytes: more than %u\n", n, MAX_DATA);
			exit(2);
		}
		r->data = malloc(n ? n : 1);
		r->datalen = n;
		if (!r->data || read_bytes(r->data, n) < 0) exit(0);
	}
	return 0;
}

int main(void)
{
	struct sh_text ready = { 0 };
	char why[512] = "";
	/* die with the client (PROTOCOL.md "Transport"), and never of a write to a closed pipe */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	REPLY_FD = fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (REPLY_FD < 0 || dup2(2, 1) < 0) return 2;
	sh_text_printf(&ready, "* ready");
	if (sh_boot(&ready, why, sizeof(why)) < 0) {
		ready.len = 0;
		sh_text_printf(&ready, "* fatal");
		sh_text_kv(&ready, "msg", why);
		emit(REPLY_FD, &ready, NULL, 0);
		return 1;
	}
	emit(REPLY_FD, &ready, NULL, 0);
	text_free(&ready);
	for (char *line; (line = read_line());) {
		struct request r;
		if (!*line) continue;
		if (parse(line, &r) < 0) continue;
		int quit = handle(&r);
		request_free(&r);
		if (quit) break;
	}
	/* end of input: the client is gone (or asked us to quit); the stack goes with the process */
	_exit(0);
}
