/*
 * F-Stack's shim (shim.h): FreeBSD 13's network stack, built as a library over DPDK, serving
 * the stack-helper protocol (PROTOCOL.md). fstack-bsd.c holds the parts that need FreeBSD's
 * own structures.
 *
 * F-Stack runs one stack in one thread: ff_init() and every ff_* call must happen on the thread
 * that runs ff_run()'s loop, and nothing may block there (F-Stack's tsleep() returns at once: a
 * blocking accept() or a lingering close() cannot wait inside the stack). So:
 *  - the stack gets a thread of its own (the loop thread); protocol.c's threads (the main one
 *    and one per pending call) hand each call to it through a queue and wait for the answer;
 *  - every FreeBSD socket is non-blocking (FIONBIO); a call the lab made on a socket it left
 *    blocking is retried from the loop until FreeBSD's answer is no longer EAGAIN (or the
 *    connection attempt is no longer in progress), which is what a blocking call waits for.
 *    The answer is always FreeBSD's own return value and errno;
 *  - the one wait F-Stack cannot give is SO_LINGER's {1,N}: close() on a blocking socket runs
 *    FreeBSD's soclose(), whose tsleep() fails at once (F-Stack's EPERM), so it never lingers.
 *    That is reported as it happens, and labs name it (src/kernels/freebsd).
 *
 * Without a device the stack runs over DPDK's null device (no packets in or out) and talks to
 * itself over 127.0.0.1 (F-Stack built with FF_LOOPBACK_SUPPORT); TWLAB_FSTACK_TAP=NAME attaches it
 * to a Linux tap device instead (DPDK's net_tap; needs CAP_NET_ADMIN in the network namespace).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ff_api.h"
#include "fstack-bsd.h"
#include "shim.h"

#ifndef FSTACK_VERSION
#define FSTACK_VERSION "?"
#endif
#ifndef FSTACK_COMMIT
#define FSTACK_COMMIT "?"
#endif
#ifndef FREEBSD_VERSION
#error "FREEBSD_VERSION (__FreeBSD_version of F-Stack's FreeBSD tree) must be defined"
#endif

/* DPDK's, declared here rather than through its headers (which want its own compiler flags) */
int rte_openlog_stream(FILE *f); /* where DPDK's log (and F-Stack's kernel printf) goes */
struct eth_addr {
	uint8_t b[6];
} __attribute__((aligned(2))); /* struct rte_ether_addr */
int rte_eth_macaddr_get(uint16_t port_id, struct eth_addr *mac);
const char *rte_eal_get_runtime_dir(void);

/* ---------------------------------------------------------------- configuration */

/* How the stack starts. Set from the environment: TWLAB_FSTACK_TAP (a Linux tap device to attach
 * to; without it, DPDK's null device), TWLAB_FSTACK_HZ (FreeBSD's clock), TWLAB_FSTACK_MEMORY_MB
 * (DPDK's memory).
 * The clock: F-Stack's hardclock is a DPDK timer that adds one tick each time its loop finds it
 * due, so a loop turn that takes longer than a tick loses ticks and FreeBSD's time runs slow.
 * With 1000 Hz (FreeBSD's GENERIC kernel) and a loop that sleeps up to 1 ms per turn, a 2 s
 * TIME_WAIT lasted 3.5 s here; at 100 Hz (F-Stack's default) it lasts 2.0–2.5 s, as on FreeBSD
 * (tcp_slowtimo ends TIME_WAITs every 500 ms). So 100 Hz: timers in 10 ms steps. */
static struct {
	const char *tap;
	int hz;
	int memory_mb;
} cfg = { NULL, 100, 256 };

/* FreeBSD's own defaults where F-Stack's sample config.ini changes them (msl 2000,
 * fast_finwait2_recycle 1, finwait2_timeout 5000, blackholes on): twlab measures FreeBSD */
static const char *const freebsd_defaults[][2] = {
	{ "net.inet.tcp.msl", "30000" },
	{ "net.inet.tcp.fast_finwait2_recycle", "0" },
	{ "net.inet.tcp.finwait2_timeout", "60000" },
	{ "net.inet.tcp.blackhole", "0" },
	{ "net.inet.udp.blackhole", "0" },
	{ "net.inet.tcp.nolocaltimewait", "0" },
	/* an address is usable at once, as Linux's nodad addresses are (no DAD probes on the wire) */
	{ "net.inet6.ip6.dad_count", "0" },
};

static int write_config(char *path, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, len, "%s/twlab-fstack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) return -1;
	FILE *f = fdopen(fd, "w");
	if (!f) return -1;
	fprintf(f,
		"[dpdk]\nlcore_mask=1\nchannel=1\npromiscuous=1\nnuma_on=0\nno_huge=1\nmemory=%d\n"
		"tx_csum_offoad_skip=0\ntso=0\nvlan_strip=0\nidle_sleep=0\npkt_tx_delay=0\nsymmetric_rss=0\n"
		"port_list=0\nnb_vdev=0\nnb_bond=0\n"
		"[pcap]\nenable=0\n"
		/* F-Stack's port needs one address and a gateway to start: the lab's first address
		 * (PRIMARY); the others come with if_addr, the default route goes after start */
		"[port0]\naddr=192.0.2.1\nnetmask=255.255.255.0\nbroadcast=192.0.2.255\ngateway=192.0.2.2\n"
		"[freebsd.boot]\nhz=%d\nfd_reserve=1024\n"
		"[freebsd.sysctl]\n",
		cfg.memory_mb, cfg.hz);
	for (size_t i = 0; i < sizeof(freebsd_defaults) / sizeof(freebsd_defaults[0]); i++)
		fprintf(f, "%s=%s\n", freebsd_defaults[i][0], freebsd_defaults[i][1]);
	return fclose(f);
}

/* ---------------------------------------------------------------- calls into the loop thread */

struct call;
typedef int (*step_fn)(struct call *c); /* 1: finished (ret, err set); 0: try again next loop */

struct call {
	step_fn step;
	/* arguments */
	int proc, fd, opt, flag, how;
	long n, timeout_ms;
	const struct sh_addr *addr;
	struct sh_addr *out_addr;
	const struct sh_optval *in_v;
	struct sh_optval *out_v;
	const void *buf;
	void *rbuf;
	size_t len;
	const char *name, *svalue;
	char *value;
	void (*each)(void *arg, const struct sh_pcb *p);
	void *arg;
	struct sh_text *text;
	struct sh_tcpinfo *ti;
	/* progress */
	struct timespec start;
	int phase;
	size_t done_bytes;
	/* answer */
	long ret;
	int err;
	int done;
	struct call *next;
};

static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t calls_done = PTHREAD_COND_INITIALIZER;
static struct call *incoming, **incoming_tail = &incoming; /* under calls_lock */
static struct call *waiting;                                /* loop thread only */
static int wake_fd = -1;

/* runs c on the loop thread and waits for its answer */
static long run(struct call *c, int *err)
{
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	c->next = NULL;
	pthread_mutex_lock(&calls_lock);
	*incoming_tail = c;
	incoming_tail = &c->next;
	pthread_mutex_unlock(&calls_lock);
	uint64_t one = 1;
	if (write(wake_fd, &one, sizeof(one)) < 0) { /* the counter saturates only after 2^64 wakes */ }
	pthread_mutex_lock(&calls_lock);
	while (!c->done) pthread_cond_wait(&calls_done, &calls_lock);
	pthread_mutex_unlock(&calls_lock);
	*err = c->err;
	return c->ret;
}

static int finish(struct call *c, long ret, int err)
{
	c->ret = ret;
	c->err = ret < 0 ? err : 0;
	return 1;
}

static long elapsed_ms(const struct call *c)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - c->start.tv_sec) * 1000L + (t.tv_nsec - c->start.tv_nsec) / 1000000L;
}

static void answer(struct call *c)
{
	pthread_mutex_lock(&calls_lock);
	c->done = 1;
	pthread_cond_broadcast(&calls_done);
	pthread_mutex_unlock(&calls_lock);
}

/* ff_run's callback: once per turn of F-Stack's loop (which has just polled the device, run
 * the stack's timers and delivered loopback packets). Sleeps up to 1 ms when there is nothing
 * to do, so an idle stack costs little CPU; a new call wakes it at once. */
static int loop(void *unused)
{
	(void)unused;
	struct pollfd p = { .fd = wake_fd, .events = POLLIN };
	if (poll(&p, 1, 1) > 0) {
		uint64_t n;
		if (read(wake_fd, &n, sizeof(n)) < 0) { /* spurious: nothing to read */ }
	}
	pthread_mutex_lock(&calls_lock);
	struct call *fresh = incoming;
	incoming = NULL;
	incoming_tail = &incoming;
	pthread_mutex_unlock(&calls_lock);
	/* calls that waited first, then new ones, each in the order it came */
	struct call **link = &waiting;
	while (*link) {
		struct call *c = *link;
		if (c->step(c)) {
			*link = c->next;
			answer(c);
		} else {
			link = &c->next;
		}
	}
	while (fresh) {
		struct call *c = fresh;
		fresh = c->next;
		c->next = NULL;
		if (c->step(c)) {
			answer(c);
		} else {
			*link = c;
			link = &c->next;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- descriptors and processes */

/* F-Stack has one descriptor table; each descriptor is given to the process context that made
 * it, as a kernel would, and a call naming another process's descriptor gets EBADF. */
struct fdinfo {
	int proc;        /* 0: not ours */
	int nonblock;    /* what the lab asked for; the FreeBSD socket is always non-blocking */
};
static struct fdinfo *fds;
static int nfds;
static int next_proc = 2;
/* process contexts that have begun to exit (proc_exit): no more calls in them */
static unsigned char gone[4096];

static int proc_alive(int proc)
{
	return proc >= 1 && proc < next_proc && (proc >= (int)sizeof(gone) || !gone[proc]);
}

static struct fdinfo *fdinfo(int proc, int fd)
{
	if (!proc_alive(proc) || fd < 0 || fd >= nfds || fds[fd].proc != proc) return NULL;
	return &fds[fd];
}

static void adopt(int fd, int proc, int nonblock)
{
	if (fd >= nfds) {
		int n = nfds ? nfds : 2048;
		while (n <= fd) n *= 2;
		struct fdinfo *f = realloc(fds, (size_t)n * sizeof(*f));
		if (!f) abort();
		memset(f + nfds, 0, (size_t)(n - nfds) * sizeof(*f));
		fds = f;
		nfds = n;
	}
	fds[fd] = (struct fdinfo){ proc, nonblock };
	int on = 1;
	ff_ioctl(fd, FIONBIO, &on);
}

#define CHECK_FD(c)                                                     \
	struct fdinfo *fi = fdinfo((c)->proc, (c)->fd);                 \
	if (!fi) return finish((c), -1, EBADF);                         \
	(void)fi

/* ---------------------------------------------------------------- addresses */

static socklen_t to_linux(const struct sh_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == SH_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)a->port);
		memcpy(&s->sin_addr, a->bytes, 4);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)a->port);
	memcpy(&s->sin6_addr, a->bytes, 16);
	return sizeof(*s);
}

static void from_linux(const struct sockaddr_storage *ss, struct sh_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		a->family = SH_INET;
		a->port = ntohs(s->sin_port);
		memcpy(a->bytes, &s->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		a->family = SH_INET6;
		a->port = ntohs(s->sin6_port);
		memcpy(a->bytes, &s->sin6_addr, 16);
	}
}

/* ---------------------------------------------------------------- the calls */

static int step_socket(struct call *c)
{
	if (!proc_alive(c->proc)) return finish(c, -1, ESRCH);
	int fd = ff_socket(c->addr->family == SH_INET ? AF_INET : AF_INET6, c->opt == SH_STREAM ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0) return finish(c, -1, errno);
	adopt(fd, c->proc, c->flag);
	return finish(c, fd, 0);
}

long sh_socket(int proc, int family, int type, int nonblock, int *err)
{
	struct sh_addr fam = { .family = family };
	struct call c = { .step = step_socket, .proc = proc, .addr = &fam, .opt = type, .flag = nonblock };
	return run(&c, err);
}

static int step_setsockopt(struct call *c)
{
	CHECK_FD(c);
	int missing;
	long r = fb_setsockopt(c->fd, c->opt, c->in_v, &missing);
	return finish(c, r, missing ? SH_MISSING : errno);
}

long sh_setsockopt(int proc, int fd, int opt, const struct sh_optval *v, int *err)
{
	struct call c = { .step = step_setsockopt, .proc = proc, .fd = fd, .opt = opt, .in_v = v };
	return run(&c, err);
}

static int step_getsockopt(struct call *c)
{
	CHECK_FD(c);
	int missing;
	long r = fb_getsockopt(c->fd, c->opt, c->out_v, &missing);
	return finish(c, r, missing ? SH_MISSING : errno);
}

long sh_getsockopt(int proc, int fd, int opt, struct sh_optval *v, int *err)
{
	struct call c = { .step = step_getsockopt, .proc = proc, .fd = fd, .opt = opt, .out_v = v };
	return run(&c, err);
}

static int step_bind(struct call *c)
{
	CHECK_FD(c);
	struct sockaddr_storage ss;
	socklen_t len = to_linux(c->addr, &ss);
	int r = ff_bind(c->fd, (struct linux_sockaddr *)&ss, len);
	return finish(c, r, errno);
}

long sh_bind(int proc, int fd, const struct sh_addr *a, int *err)
{
	struct call c = { .step = step_bind, .proc = proc, .fd = fd, .addr = a };
	return run(&c, err);
}

static int step_listen(struct call *c)
{
	CHECK_FD(c);
	int r = ff_listen(c->fd, (int)c->n);
	return finish(c, r, errno);
}

long sh_listen(int proc, int fd, int backlog, int *err)
{
	struct call c = { .step = step_listen, .proc = proc, .fd = fd, .n = backlog };
	return run(&c, err);
}

/* connect(): FreeBSD's answer to the first call; on a blocking socket, then what FreeBSD's
 * kern_connectat() waits for — the attempt no longer in progress — and its so_error. */
static int step_connect(struct call *c)
{
	CHECK_FD(c);
	if (c->phase == 0) {
		struct sockaddr_storage ss;
		socklen_t len = to_linux(c->addr, &ss);
		int r = ff_connect(c->fd, (struct linux_sockaddr *)&ss, len);
		if (r == 0 || errno != EINPROGRESS || fi->nonblock) return finish(c, r, errno);
		c->phase = 1;
	}
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };
	int n = ff_poll(&p, 1, 0);
	if (n < 0) return finish(c, -1, errno);
	if (n == 0) return 0;
	int e = fb_take_so_error(c->fd);
	return finish(c, e ? -1 : 0, e);
}

long sh_connect(int proc, int fd, const struct sh_addr *a, int *err)
{
	struct call c = { .step = step_connect, .proc = proc, .fd = fd, .addr = a };
	return run(&c, err);
}

/* a call that would block on a blocking socket: try again next turn, or time out */
static int would_block(struct call *c, const struct fdinfo *fi)
{
	if (fi->nonblock) return finish(c, -1, EAGAIN);
	if (c->timeout_ms >= 0 && elapsed_ms(c) >= c->timeout_ms) return finish(c, -1, ETIMEDOUT);
	return 0;
}

static int step_accept(struct call *c)
{
	CHECK_FD(c);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	int r = ff_accept(c->fd, (struct linux_sockaddr *)&ss, &len);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return would_block(c, fi);
	if (r < 0) return finish(c, -1, errno);
	/* FreeBSD's accept() gives the new socket the listener's O_NONBLOCK (Linux's does not) */
	adopt(r, c->proc, fi->nonblock);
	if (c->out_addr) from_linux(&ss, c->out_addr);
	return finish(c, r, 0);
}

long sh_accept(int proc, int fd, long timeout_ms, struct sh_addr *peer, int *err)
{
	struct call c = { .step = step_accept, .proc = proc, .fd = fd, .timeout_ms = timeout_ms, .out_addr = peer };
	return run(&c, err);
}

/* send(): a blocking send takes everything (FreeBSD's sosend() waits for room as often as it
 * must); a non-blocking one takes what fits now */
static int step_send(struct call *c)
{
	CHECK_FD(c);
	for (;;) {
		size_t left = c->len - c->done_bytes;
		ssize_t r = ff_send(c->fd, (const char *)c->buf + c->done_bytes, left, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (fi->nonblock || c->flag) return c->done_bytes ? finish(c, (long)c->done_bytes, 0) : finish(c, -1, EAGAIN);
			return 0;
		}
		if (r < 0) return finish(c, -1, errno);
		c->done_bytes += (size_t)r;
		if (c->done_bytes == c->len || fi->nonblock || c->flag) return finish(c, (long)c->done_bytes, 0);
	}
}

long sh_send(int proc, int fd, const void *buf, size_t len, int dontwait, int *err)
{
	struct call c = { .step = step_send, .proc = proc, .fd = fd, .buf = buf, .len = len, .flag = dontwait };
	return run(&c, err);
}

static int step_recv(struct call *c)
{
	CHECK_FD(c);
	ssize_t r = ff_recv(c->fd, c->rbuf, c->len, c->flag ? MSG_PEEK : 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return would_block(c, fi);
	return finish(c, (long)r, errno);
}

long sh_recv(int proc, int fd, void *buf, size_t len, int peek, long timeout_ms, int *err)
{
	struct call c = { .step = step_recv, .proc = proc, .fd = fd, .rbuf = buf, .len = len, .flag = peek, .timeout_ms = timeout_ms };
	return run(&c, err);
}

static int step_shutdown(struct call *c)
{
	CHECK_FD(c);
	int how = c->how == SH_SHUT_RD ? SHUT_RD : c->how == SH_SHUT_WR ? SHUT_WR : SHUT_RDWR;
	return finish(c, ff_shutdown(c->fd, how), errno);
}

long sh_shutdown(int proc, int fd, int how, int *err)
{
	struct call c = { .step = step_shutdown, .proc = proc, .fd = fd, .how = how };
	return run(&c, err);
}

/* close(): on a socket the lab left blocking, FreeBSD's soclose() runs with the socket
 * blocking too (FIONBIO off), so its SO_LINGER path is the one a blocking close takes. */
static int close_fd(int fd)
{
	if (!fds[fd].nonblock) {
		int off = 0;
		ff_ioctl(fd, FIONBIO, &off);
	}
	fds[fd].proc = 0;
	return ff_close(fd);
}

static int step_close(struct call *c)
{
	CHECK_FD(c);
	int r = close_fd(c->fd);
	return finish(c, r, errno);
}

long sh_close(int proc, int fd, int *err)
{
	struct call c = { .step = step_close, .proc = proc, .fd = fd };
	return run(&c, err);
}

static int step_nonblock(struct call *c)
{
	CHECK_FD(c);
	fi->nonblock = c->flag;
	return finish(c, 0, 0);
}

long sh_nonblock(int proc, int fd, int on, int *err)
{
	struct call c = { .step = step_nonblock, .proc = proc, .fd = fd, .flag = on };
	return run(&c, err);
}

static int step_sockname(struct call *c)
{
	CHECK_FD(c);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	int r = c->flag ? ff_getpeername(c->fd, (struct linux_sockaddr *)&ss, &len) : ff_getsockname(c->fd, (struct linux_sockaddr *)&ss, &len);
	if (r == 0) from_linux(&ss, c->out_addr);
	return finish(c, r, errno);
}

long sh_sockname(int proc, int fd, int peer, struct sh_addr *a, int *err)
{
	struct call c = { .step = step_sockname, .proc = proc, .fd = fd, .flag = peer, .out_addr = a };
	return run(&c, err);
}

static int step_tcpinfo(struct call *c)
{
	CHECK_FD(c);
	return finish(c, fb_tcpinfo(c->fd, c->ti), errno);
}

long sh_tcpinfo(int proc, int fd, struct sh_tcpinfo *ti, int *err)
{
	struct call c = { .step = step_tcpinfo, .proc = proc, .fd = fd, .ti = ti };
	return run(&c, err);
}

/* A process context is a set of descriptors. F-Stack has one credential for every socket and
 * its priv_check() always passes, so a context of another user cannot be made: a lab's
 * other-uid cells are not FreeBSD's to answer here. */
static int step_proc_new(struct call *c)
{
	if ((c->n != -1 && c->n != 0) || (c->timeout_ms != -1 && c->timeout_ms != 0)) return finish(c, -1, SH_MISSING);
	if (next_proc >= (int)sizeof(gone)) return finish(c, -1, EAGAIN); /* as fork() says when out of processes */
	return finish(c, next_proc++, 0);
}

long sh_proc_new(long uid, long gid, int *err)
{
	struct call c = { .step = step_proc_new, .n = uid, .timeout_ms = gid };
	return run(&c, err);
}

/* the process can make no more calls; its descriptors are closed by sh_proc_exit */
static int step_proc_exit_begin(struct call *c)
{
	if (c->proc <= 1 || !proc_alive(c->proc) || c->proc >= (int)sizeof(gone)) return finish(c, -1, ESRCH);
	gone[c->proc] = 1;
	return finish(c, 0, 0);
}

long sh_proc_exit_begin(int proc, int *err)
{
	struct call c = { .step = step_proc_exit_begin, .proc = proc };
	return run(&c, err);
}

/* exit: every descriptor closed, in order, as FreeBSD's fdescfree() does */
static int step_proc_exit(struct call *c)
{
	for (int fd = 0; fd < nfds; fd++)
		if (fds[fd].proc == c->proc) close_fd(fd);
	return finish(c, 0, 0);
}

long sh_proc_exit(int proc, int *err)
{
	struct call c = { .step = step_proc_exit, .proc = proc };
	return run(&c, err);
}

static int step_sysctl(struct call *c)
{
	long r = c->value ? fb_sysctl_get(c->name, c->value, c->len) : fb_sysctl_set(c->name, c->svalue);
	return finish(c, r, errno);
}

long sh_sysctl_get(const char *name, char *value, size_t len, int *err)
{
	struct call c = { .step = step_sysctl, .name = name, .value = value, .len = len };
	return run(&c, err);
}

long sh_sysctl_set(const char *name, const char *value, int *err)
{
	struct call c = { .step = step_sysctl, .name = name, .svalue = value };
	return run(&c, err);
}

static int step_table(struct call *c)
{
	return finish(c, fb_table(c->each, c->arg), errno);
}

long sh_table(void (*each)(void *arg, const struct sh_pcb *p), void *arg, int *err)
{
	struct call c = { .step = step_table, .each = each, .arg = arg };
	return run(&c, err);
}

static int step_counters(struct call *c)
{
	return finish(c, fb_counters(c->text), errno);
}

long sh_counters(struct sh_text *out, int *err)
{
	struct call c = { .step = step_counters, .text = out };
	return run(&c, err);
}

/* ---------------------------------------------------------------- the wire */

/* F-Stack's port is DPDK's device, chosen when the stack boots: the tap is named in the
 * helper's environment (TWLAB_FSTACK_TAP), and wire_create only confirms it. */
static char port_mac[32];

long sh_wire_create(const char *tap, char *ifname, size_t iflen, char *mac, size_t maclen, int *err)
{
	if (!cfg.tap) {
		*err = SH_MISSING;
		return -1;
	}
	if (strcmp(tap, cfg.tap) != 0) {
		*err = EINVAL;
		return -1;
	}
	snprintf(ifname, iflen, "f-stack-0");
	snprintf(mac, maclen, "%s", port_mac);
	return 0;
}

/* the address F-Stack's config gives the port: already there */
static const uint8_t PRIMARY[4] = { 192, 0, 2, 1 };
#define PRIMARY_PREFIX 24

static int step_if_addr(struct call *c)
{
	if (c->addr->family == SH_INET && memcmp(c->addr->bytes, PRIMARY, 4) == 0 && c->n == PRIMARY_PREFIX && strcmp(c->name, "f-stack-0") == 0) return finish(c, 0, 0);
	return finish(c, fb_if_addr(c->name, c->addr, (int)c->n), errno);
}

long sh_if_addr(const char *ifname, const struct sh_addr *a, int prefix, int *err)
{
	struct call c = { .step = step_if_addr, .name = ifname, .addr = a, .n = prefix };
	return run(&c, err);
}

/* FreeBSD's ether_ioctl() takes MTUs up to ETHERMTU (1500): a larger one is its EINVAL */
static int step_if_mtu(struct call *c)
{
	return finish(c, fb_if_mtu(c->name, (int)c->n), errno);
}

long sh_if_mtu(const char *ifname, int mtu, int *err)
{
	struct call c = { .step = step_if_mtu, .name = ifname, .n = mtu };
	return run(&c, err);
}

long sh_if_up(const char *ifname, int *err)
{
	(void)ifname;
	*err = 0;
	return 0; /* F-Stack brings its port up when it starts */
}

/* ---------------------------------------------------------------- errno names */

const char *sh_errno_name(int err)
{
	/* F-Stack hands back FreeBSD's errno in Linux's numbering (ff_os_errno) */
	return strerrorname_np(err);
}

/* ---------------------------------------------------------------- boot */

static pthread_mutex_t boot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t boot_cond = PTHREAD_COND_INITIALIZER;
static int boot_state; /* 0 starting, 1 ready, -1 failed */
static char boot_why[256];
static int reply_fd = -1; /* fd 1 while F-Stack starts with its stdout sent to stderr */

/* F-Stack exits the process when it cannot start (ff_init calls exit(1)): say so on the
 * reply channel, as PROTOCOL.md's "* fatal" line, before the process goes */
static void fatal_at_exit(void)
{
	if (boot_state != 0 || reply_fd < 0) return;
	static const char line[] = "* fatal msg=F-Stack%20could%20not%20start%20(its%20messages%20are%20on%20stderr)\n";
	if (write(reply_fd, line, sizeof(line) - 1) < 0) { /* the client is gone */ }
}

static void boot_done(int state, const char *why)
{
	pthread_mutex_lock(&boot_lock);
	boot_state = state;
	if (why) snprintf(boot_why, sizeof(boot_why), "%s", why);
	pthread_cond_broadcast(&boot_cond);
	pthread_mutex_unlock(&boot_lock);
}

static void *stack_thread(void *arg)
{
	char *conf = arg;
	char extra[512];
	if (cfg.tap)
		snprintf(extra, sizeof(extra), "--vdev=net_tap0,iface=%s --no-pci --no-shconf --no-telemetry --file-prefix=twlab-fstack", cfg.tap);
	else
		snprintf(extra, sizeof(extra), "--vdev=net_null0,no-rx=1 --no-pci --no-shconf --no-telemetry --file-prefix=twlab-fstack");
	setenv("FF_DPDK_EXTRA_ARGS", extra, 1);
	char *argv[] = { "twlab-fstack", "--conf", conf, "--proc-type=primary", "--proc-id=0", NULL };
	ff_init(5, argv); /* exits the process if the stack cannot start */
	unlink(conf);
	/* DPDK makes its runtime folder (/var/run/dpdk/twlab-fstack) even when it shares nothing
	 * (--no-shconf): it stays empty, and goes, with /var/run/dpdk if nothing else is in it
	 * (rmdir leaves a folder that is not empty alone) */
	char runtime[256];
	snprintf(runtime, sizeof(runtime), "%s", rte_eal_get_runtime_dir());
	if (rmdir(runtime) == 0 && strrchr(runtime, '/')) {
		*strrchr(runtime, '/') = 0;
		rmdir(runtime);
	}

	/* from here on, stdio's stdout and DPDK's log (F-Stack's kernel printf) go to stderr:
	 * fd 1 carries nothing but protocol.c's replies */
	fflush(stdout);
	FILE *err_out = fdopen(dup(2), "w");
	if (err_out) {
		setvbuf(err_out, NULL, _IOLBF, 0);
		stdout = err_out;
	}
	rte_openlog_stream(stderr);
	dup2(reply_fd, 1);

	/* DPDK pinned this thread to CPU 0 (lcore 0): give it every CPU back, so that several
	 * stacks (one per lab) spread over the machine */
	cpu_set_t all;
	CPU_ZERO(&all);
	for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++) CPU_SET(i, &all);
	pthread_setaffinity_np(pthread_self(), sizeof(all), &all);

	/* no default route, as in a Linux lab's namespace: an address off the lab's networks is
	 * unreachable rather than sent to the peer (F-Stack's config insists on a gateway) */
	struct sockaddr_in any = { .sin_family = AF_INET }, gw = { .sin_family = AF_INET };
	inet_pton(AF_INET, "192.0.2.2", &gw.sin_addr);
	if (ff_route_ctl(FF_ROUTE_DEL, FF_RTF_GATEWAY, (struct linux_sockaddr *)&any, (struct linux_sockaddr *)&gw, (struct linux_sockaddr *)&any) != 0)
		fprintf(stderr, "twlab-fstack: cannot remove the default route: %s\n", strerror(errno));

	/* the port's MAC, for wire_create */
	struct eth_addr mac = { { 0 } };
	if (rte_eth_macaddr_get(0, &mac) == 0)
		snprintf(port_mac, sizeof(port_mac), "%02x:%02x:%02x:%02x:%02x:%02x", mac.b[0], mac.b[1], mac.b[2], mac.b[3], mac.b[4], mac.b[5]);

	boot_done(1, NULL);
	ff_run(loop, NULL);
	return NULL;
}

/* the helper's options come from its environment (protocol.c's main takes no arguments) */
static int read_options(char *why, size_t whylen)
{
	const char *tap = getenv("TWLAB_FSTACK_TAP"), *hz = getenv("TWLAB_FSTACK_HZ"), *mem = getenv("TWLAB_FSTACK_MEMORY_MB");
	if (tap && *tap) {
		if (strlen(tap) >= 16 || strpbrk(tap, " ,=")) {
			snprintf(why, whylen, "TWLAB_FSTACK_TAP=%s is not a network interface name", tap);
			return -1;
		}
		cfg.tap = tap;
	}
	if (hz && *hz && (cfg.hz = atoi(hz)) < 10) {
		snprintf(why, whylen, "TWLAB_FSTACK_HZ=%s: give a clock rate of 10 or more", hz);
		return -1;
	}
	if (mem && *mem && (cfg.memory_mb = atoi(mem)) < 64) {
		snprintf(why, whylen, "TWLAB_FSTACK_MEMORY_MB=%s: F-Stack needs 64 MB or more", mem);
		return -1;
	}
	return 0;
}

int sh_boot(struct sh_text *ready, char *why, size_t whylen)
{
	char conf[256];
	if (read_options(why, whylen) < 0) return -1;
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0) {
		snprintf(why, whylen, "eventfd: %s", strerror(errno));
		return -1;
	}
	if (write_config(conf, sizeof(conf)) < 0) {
		snprintf(why, whylen, "cannot write F-Stack's config in %s: %s", conf, strerror(errno));
		return -1;
	}
	/* F-Stack prints its config and DPDK its banner on stdout while they start: send fd 1 to
	 * stderr until then, keeping the reply channel aside */
	fflush(stdout);
	reply_fd = dup(1);
	dup2(2, 1);
	atexit(fatal_at_exit);
	pthread_t t;
	if (pthread_create(&t, NULL, stack_thread, conf) != 0) {
		dup2(reply_fd, 1);
		snprintf(why, whylen, "cannot start the stack's thread");
		return -1;
	}
	pthread_mutex_lock(&boot_lock);
	while (boot_state == 0) pthread_cond_wait(&boot_cond, &boot_lock);
	pthread_mutex_unlock(&boot_lock);
	if (boot_state < 0) {
		snprintf(why, whylen, "%s", boot_why);
		return -1;
	}
	/* F-Stack has no kern.osrelease: its FreeBSD tree's __FreeBSD_version says which FreeBSD */
	char release[16], version[160];
	snprintf(release, sizeof(release), "%d.%d", FREEBSD_VERSION / 100000, FREEBSD_VERSION / 1000 % 100);
	snprintf(version, sizeof(version), "FreeBSD %s network stack (F-Stack %s)", release, FSTACK_VERSION);
	sh_text_printf(ready, " os=FreeBSD release=%s", release);
	sh_text_kv(ready, "version", version);
	sh_text_printf(ready, " freebsd_version=%d fstack=%s commit=%s hz=%d procs=1 wire=%s", FREEBSD_VERSION, FSTACK_VERSION, FSTACK_COMMIT, cfg.hz, cfg.tap ? "tap" : "none");
	return 0;
}
