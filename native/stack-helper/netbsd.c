/*
 * The stack helper's NetBSD half: NetBSD's kernel as a rump kernel (sys/kern, sys/net,
 * sys/netinet, sys/netinet6 as libraries in this process), driven through rump_sys_* calls.
 *
 * NetBSD's numbers and structures are not Linux's: constants come from nbgen.h, which twlab's
 * build recipe generates from the NetBSD source it built (NB_<NAME>, errno and TCP counter
 * tables), and the few structures used here are written out with their NetBSD layout
 * (sockaddr_in has sin_len; sysctlnode and kinfo_pcb as in sys/sysctl.h and sys/socket.h).
 *
 * Process contexts are rump processes (rump_pub_lwproc_rfork): descriptors belong to one, its
 * credentials are set with setuid/setgid inside it, and releasing its last thread runs NetBSD's
 * exit path for descriptors (fd_free, as exit1 does): every socket it held is closed by the
 * kernel, with whatever SO_LINGER says. The main thread keeps one thread (lwp) per process and
 * switches between them; a call that may block runs on a host thread of its own with a new lwp
 * in its process, released when the call returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <poll.h>
#include <arpa/inet.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpdefs.h>
#include <rump/netconfig.h>

#include "nbgen.h"
#include "shim.h"

/* ---- NetBSD structures (amd64 layout) ---- */
struct nb_sockaddr_in {
	uint8_t len, family;
	uint16_t port; /* network order */
	uint8_t addr[4];
	uint8_t zero[8];
};
struct nb_sockaddr_in6 {
	uint8_t len, family;
	uint16_t port;
	uint32_t flowinfo;
	uint8_t addr[16];
	uint32_t scope_id;
};
union nb_sockaddr {
	struct nb_sockaddr_in in;
	struct nb_sockaddr_in6 in6;
	uint8_t raw[128];
};
struct nb_linger {
	int32_t onoff, linger;
};
struct nb_pollfd {
	int32_t fd;
	int16_t events, revents;
};
/* sys/sysctl.h: struct sysctlnode, pointers padded to 64 bits */
struct nb_sysctlnode {
	uint32_t flags;
	int32_t num;
	char name[32];
	uint32_t ver, rsvd;
	uint64_t un[2];
	uint64_t size, func, parent, desc;
};
/* sys/socket.h: struct kinfo_pcb (net.inet.tcp.pcblist) */
struct nb_kinfo_pcb {
	uint64_t pcbaddr, ppcbaddr, sockaddr;
	uint32_t family, type, protocol, pflags;
	uint32_t sostate, prstate;
	int32_t tstate;
	uint32_t tflags;
	uint64_t rcvq, sndq;
	uint8_t src[264];
	uint8_t dst[264];
	uint64_t inode, vnode, conn, refs, nextref;
};
/* netinet/tcp.h: struct tcp_info; the fields NetBSD 7.99 fills (others are reserved) */
struct nb_tcp_info {
	uint8_t state, ca_state, retransmits, probes, backoff, options, wscale, pad;
	uint32_t rto, ato, snd_mss, rcv_mss;
	uint32_t unacked, sacked, lost, retrans, fackets;
	uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
	uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
	uint32_t rcv_rtt, rcv_space;
	uint32_t snd_wnd, snd_bwnd, snd_nxt, rcv_nxt, toe_tid, snd_rexmitpack, rcv_ooopack, snd_zerowin;
	uint32_t pad2[26];
};

/*
 * The helper is linked statically, and glibc's dlopen(NULL) in a static program hands
 * rumpuser's module loader (rumpuser_dl_bootstrap) a link map it crashes on. There are no
 * modules to load: the components are linked in and register themselves from constructors.
 */
void *dlopen(const char *file, int mode)
{
	(void)file;
	(void)mode;
	return NULL;
}

/* ---- process contexts ---- */
#define MAX_PROCS 256
static struct {
	struct lwp *lwp; /* the main thread's lwp in this process; NULL once it exited */
	pid_t pid;
} procs[MAX_PROCS];
static int nprocs;
static pthread_mutex_t procs_lock = PTHREAD_MUTEX_INITIALIZER;

/* the main thread's calls run in process `proc` */
static int enter(int proc, int *err)
{
	pthread_mutex_lock(&procs_lock);
	struct lwp *l = proc >= 1 && proc <= nprocs ? procs[proc - 1].lwp : NULL;
	pthread_mutex_unlock(&procs_lock);
	if (!l) {
		*err = NB_ESRCH;
		return -1;
	}
	if (rump_pub_lwproc_curlwp() != l) rump_pub_lwproc_switch(l);
	return 0;
}

/* a worker thread's call runs on a new lwp of process `proc` */
static int enter_thread(int proc, int *err)
{
	pthread_mutex_lock(&procs_lock);
	pid_t pid = proc >= 1 && proc <= nprocs && procs[proc - 1].lwp ? procs[proc - 1].pid : -1;
	pthread_mutex_unlock(&procs_lock);
	if (pid < 0 || rump_pub_lwproc_newlwp(pid) != 0) {
		*err = NB_ESRCH;
		return -1;
	}
	return 0;
}

static void leave_thread(void)
{
	rump_pub_lwproc_releaselwp();
}

/* ---- boot ---- */

static long sysctl_set_int(const char *name, long v, int *err);

int sh_boot(struct sh_text *ready, char *why, size_t whylen)
{
	int err = 0;
	if (rump_init() != 0) {
		snprintf(why, whylen, "rump_init failed");
		return -1;
	}
	/* process 1: the helper's own, forked from proc0 so that it is an ordinary process */
	if (rump_pub_lwproc_rfork(RUMP_RFCFDG) != 0) {
		snprintf(why, whylen, "cannot create the main process context");
		return -1;
	}
	procs[0].lwp = rump_pub_lwproc_curlwp();
	procs[0].pid = rump_sys_getpid();
	nprocs = 1;
	/* no duplicate-address detection (an address added would be unusable for seconds, NOTES.md),
	 * and no link-local addresses: the wire carries only what a lab causes */
	if (sysctl_set_int("net.inet6.ip6.dad_count", 0, &err) < 0 || sysctl_set_int("net.inet.ip.dad_count", 0, &err) < 0) {
		snprintf(why, whylen, "cannot turn off duplicate-address detection (errno %d)", err);
		return -1;
	}
	sysctl_set_int("net.inet6.ip6.auto_linklocal", 0, &err);
	char release[64] = "", version[256] = "";
	if (sh_sysctl_get("kern.osrelease", release, sizeof(release), &err) < 0) snprintf(release, sizeof(release), "unknown");
	if (sh_sysctl_get("kern.version", version, sizeof(version), &err) < 0) version[0] = 0;
	char *nl = strchr(version, '\n');
	if (nl) *nl = 0;
	sh_text_kv(ready, "os", "NetBSD");
	sh_text_kv(ready, "release", release);
	sh_text_kv(ready, "version", version);
	sh_text_printf(ready, " procs=1 wire=tap");
	return 0;
}

const char *sh_errno_name(int err)
{
	for (size_t i = 0; i < sizeof(nb_errnos) / sizeof(nb_errnos[0]); i++)
		if (nb_errnos[i].num == err) return nb_errnos[i].name;
	return NULL;
}

/* ---- process contexts ---- */

long sh_proc_new(long uid, long gid, int *err)
{
	if (nprocs == MAX_PROCS) {
		*err = NB_EAGAIN;
		return -1;
	}
	if (enter(1, err) < 0) return -1;
	if (rump_pub_lwproc_rfork(RUMP_RFCFDG) != 0) {
		*err = NB_EAGAIN;
		return -1;
	}
	struct lwp *l = rump_pub_lwproc_curlwp();
	pid_t pid = rump_sys_getpid();
	if ((gid >= 0 && rump_sys_setgid((gid_t)gid) < 0) || (uid >= 0 && rump_sys_setuid((uid_t)uid) < 0)) {
		*err = errno;
		rump_pub_lwproc_releaselwp();
		rump_pub_lwproc_switch(procs[0].lwp);
		return -1;
	}
	pthread_mutex_lock(&procs_lock);
	procs[nprocs].lwp = l;
	procs[nprocs].pid = pid;
	long id = ++nprocs;
	pthread_mutex_unlock(&procs_lock);
	rump_pub_lwproc_switch(procs[0].lwp);
	return id;
}

/* lwps of processes on their way out: taken from the table by the main thread, released by a worker */
static struct lwp *exiting[MAX_PROCS];

/* Main thread: the process takes no more calls, and the main thread lets go of its lwp. */
long sh_proc_exit_begin(int proc, int *err)
{
	pthread_mutex_lock(&procs_lock);
	struct lwp *l = proc > 1 && proc <= nprocs ? procs[proc - 1].lwp : NULL;
	if (l) {
		procs[proc - 1].lwp = NULL;
		exiting[proc - 1] = l;
	}
	pthread_mutex_unlock(&procs_lock);
	if (!l) {
		*err = NB_ESRCH;
		return -1;
	}
	if (rump_pub_lwproc_curlwp() == l) rump_pub_lwproc_switch(procs[0].lwp);
	return 0;
}

/* Worker thread: the process's last lwp goes, and with it every descriptor it held (fd_free,
 * which may linger). */
long sh_proc_exit(int proc, int *err)
{
	pthread_mutex_lock(&procs_lock);
	struct lwp *l = proc > 1 && proc <= nprocs ? exiting[proc - 1] : NULL;
	if (l) exiting[proc - 1] = NULL;
	pthread_mutex_unlock(&procs_lock);
	if (!l) {
		*err = NB_ESRCH;
		return -1;
	}
	rump_pub_lwproc_switch(l);
	rump_pub_lwproc_releaselwp();
	return 0;
}

/* ---- addresses and options ---- */

static socklen_t to_nb(const struct sh_addr *a, union nb_sockaddr *s)
{
	memset(s, 0, sizeof(*s));
	if (a->family == SH_INET) {
		s->in.len = sizeof(s->in);
		s->in.family = RUMP_AF_INET;
		s->in.port = htons((uint16_t)a->port);
		memcpy(s->in.addr, a->bytes, 4);
		return sizeof(s->in);
	}
	s->in6.len = sizeof(s->in6);
	s->in6.family = RUMP_AF_INET6;
	s->in6.port = htons((uint16_t)a->port);
	memcpy(s->in6.addr, a->bytes, 16);
	return sizeof(s->in6);
}

static void from_nb(const union nb_sockaddr *s, struct sh_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (s->in.family == RUMP_AF_INET) {
		a->family = SH_INET;
		memcpy(a->bytes, s->in.addr, 4);
		a->port = ntohs(s->in.port);
	} else if (s->in.family == RUMP_AF_INET6) {
		a->family = SH_INET6;
		memcpy(a->bytes, s->in6.addr, 16);
		a->port = ntohs(s->in6.port);
	}
}

static int opt_level(int opt, int *level, int *name)
{
	switch (opt) {
	case SH_SO_REUSEADDR: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_REUSEADDR; return 0;
	case SH_SO_REUSEPORT: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_REUSEPORT; return 0;
	case SH_SO_KEEPALIVE: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_KEEPALIVE; return 0;
	case SH_SO_LINGER: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_LINGER; return 0;
	case SH_SO_RCVBUF: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_RCVBUF; return 0;
	case SH_SO_SNDBUF: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_SNDBUF; return 0;
	case SH_SO_ERROR: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_ERROR; return 0;
	case SH_SO_TYPE: *level = RUMP_SOL_SOCKET; *name = RUMP_SO_TYPE; return 0;
	case SH_IPV6_V6ONLY: *level = NB_IPPROTO_IPV6; *name = NB_IPV6_V6ONLY; return 0;
	case SH_TCP_NODELAY: *level = NB_IPPROTO_TCP; *name = NB_TCP_NODELAY; return 0;
	case SH_TCP_MAXSEG: *level = NB_IPPROTO_TCP; *name = NB_TCP_MAXSEG; return 0;
	case SH_IP_ADD_MEMBERSHIP: *level = NB_IPPROTO_IP; *name = NB_IP_ADD_MEMBERSHIP; return 0;
	case SH_IPV6_JOIN_GROUP: *level = NB_IPPROTO_IPV6; *name = NB_IPV6_JOIN_GROUP; return 0;
	default: return -1; /* IP_LOCAL_PORT_RANGE: Linux's alone */
	}
}

/* ---- sockets ---- */

#define RESULT(expr) do { long r_ = (long)(expr); if (r_ < 0) *err = errno; return r_; } while (0)

long sh_socket(int proc, int family, int type, int nonblock, int *err)
{
	if (enter(proc, err) < 0) return -1;
	int t = (type == SH_STREAM ? RUMP_SOCK_STREAM : RUMP_SOCK_DGRAM) | (nonblock ? NB_SOCK_NONBLOCK : 0);
	RESULT(rump_sys_socket(family == SH_INET ? RUMP_AF_INET : RUMP_AF_INET6, t, 0));
}

long sh_setsockopt(int proc, int fd, int opt, const struct sh_optval *v, int *err)
{
	int level, name;
	if (opt_level(opt, &level, &name) < 0) {
		*err = SH_MISSING;
		return -1;
	}
	if (enter(proc, err) < 0) return -1;
	if (opt == SH_SO_LINGER) {
		struct nb_linger l = { v->onoff, v->seconds };
		RESULT(rump_sys_setsockopt(fd, level, name, &l, sizeof(l)));
	}
	if (opt == SH_IP_ADD_MEMBERSHIP) {
		uint8_t mreq[8];
		memcpy(mreq, v->group.bytes, 4);
		memcpy(mreq + 4, v->iface.bytes, 4);
		RESULT(rump_sys_setsockopt(fd, level, name, mreq, sizeof(mreq)));
	}
	if (opt == SH_IPV6_JOIN_GROUP) {
		uint8_t mreq[20];
		uint32_t ifindex = v->ifindex;
		memcpy(mreq, v->group.bytes, 16);
		memcpy(mreq + 16, &ifindex, 4);
		RESULT(rump_sys_setsockopt(fd, level, name, mreq, sizeof(mreq)));
	}
	int i = (int)v->i;
	RESULT(rump_sys_setsockopt(fd, level, name, &i, sizeof(i)));
}

long sh_getsockopt(int proc, int fd, int opt, struct sh_optval *v, int *err)
{
	int level, name;
	if (opt_level(opt, &level, &name) < 0 || opt == SH_IP_ADD_MEMBERSHIP || opt == SH_IPV6_JOIN_GROUP) {
		*err = SH_MISSING;
		return -1;
	}
	if (enter(proc, err) < 0) return -1;
	if (opt == SH_SO_LINGER) {
		struct nb_linger l = { 0, 0 };
		socklen_t len = sizeof(l);
		int r = rump_sys_getsockopt(fd, level, name, &l, &len);
		if (r < 0) RESULT(r);
		v->onoff = l.onoff;
		v->seconds = l.linger;
		return r;
	}
	int i = 0;
	socklen_t len = sizeof(i);
	int r = rump_sys_getsockopt(fd, level, name, &i, &len);
	if (r < 0) RESULT(r);
	v->i = i;
	return r;
}

long sh_bind(int proc, int fd, const struct sh_addr *a, int *err)
{
	union nb_sockaddr s;
	socklen_t len = to_nb(a, &s);
	if (enter(proc, err) < 0) return -1;
	RESULT(rump_sys_bind(fd, (const void *)&s, len));
}

long sh_listen(int proc, int fd, int backlog, int *err)
{
	if (enter(proc, err) < 0) return -1;
	RESULT(rump_sys_listen(fd, backlog));
}

long sh_connect(int proc, int fd, const struct sh_addr *a, int *err)
{
	union nb_sockaddr s;
	socklen_t len = to_nb(a, &s);
	if (enter_thread(proc, err) < 0) return -1;
	long r = rump_sys_connect(fd, (const void *)&s, len);
	if (r < 0) *err = errno;
	leave_thread();
	return r;
}

/* waits until fd is readable (or `timeout_ms` passes: 0; or fails: -1) */
static int wait_readable(int fd, long timeout_ms, int *err)
{
	struct nb_pollfd p = { fd, NB_POLLIN, 0 };
	int r = rump_sys_poll((void *)&p, 1, (int)timeout_ms);
	if (r < 0) *err = errno;
	return r;
}

long sh_accept(int proc, int fd, long timeout_ms, struct sh_addr *peer, int *err)
{
	if (enter_thread(proc, err) < 0) return -1;
	long r;
	if (timeout_ms >= 0 && (r = wait_readable(fd, timeout_ms, err)) <= 0) {
		if (r == 0) *err = NB_ETIMEDOUT;
		leave_thread();
		return -1;
	}
	union nb_sockaddr s;
	socklen_t len = sizeof(s);
	memset(&s, 0, sizeof(s));
	r = rump_sys_accept(fd, (void *)&s, &len);
	if (r < 0) *err = errno;
	else from_nb(&s, peer);
	leave_thread();
	return r;
}

long sh_send(int proc, int fd, const void *buf, size_t len, int dontwait, int *err)
{
	int flags = NB_MSG_NOSIGNAL;
	if (dontwait) {
		/* NetBSD 7.99's sosend() ignores MSG_DONTWAIT (only SS_NBIO or the kernel's MSG_NBIO
		 * keep it from sleeping, kern/uipc_socket.c): a send that must not block is made as a
		 * NetBSD program would, with the descriptor non-blocking for the call */
		if (enter(proc, err) < 0) return -1;
		int fl = rump_sys_fcntl(fd, NB_F_GETFL);
		if (fl < 0) RESULT(fl);
		if (!(fl & NB_O_NONBLOCK) && rump_sys_fcntl(fd, NB_F_SETFL, fl | NB_O_NONBLOCK) < 0) RESULT(-1);
		long r = rump_sys_sendto(fd, buf, len, flags, NULL, 0);
		int e = errno;
		if (!(fl & NB_O_NONBLOCK)) rump_sys_fcntl(fd, NB_F_SETFL, fl);
		if (r < 0) *err = e;
		return r;
	}
	if (enter_thread(proc, err) < 0) return -1;
	long r = rump_sys_sendto(fd, buf, len, flags, NULL, 0);
	if (r < 0) *err = errno;
	leave_thread();
	return r;
}

long sh_recv(int proc, int fd, void *buf, size_t len, int peek, long timeout_ms, int *err)
{
	if (enter_thread(proc, err) < 0) return -1;
	long r;
	if (timeout_ms >= 0 && (r = wait_readable(fd, timeout_ms, err)) <= 0) {
		if (r == 0) *err = NB_ETIMEDOUT;
		leave_thread();
		return -1;
	}
	r = rump_sys_recvfrom(fd, buf, len, peek ? NB_MSG_PEEK : 0, NULL, NULL);
	if (r < 0) *err = errno;
	leave_thread();
	return r;
}

long sh_shutdown(int proc, int fd, int how, int *err)
{
	if (enter(proc, err) < 0) return -1;
	RESULT(rump_sys_shutdown(fd, how == SH_SHUT_RD ? NB_SHUT_RD : how == SH_SHUT_WR ? NB_SHUT_WR : NB_SHUT_RDWR));
}

/* close(2) runs on the caller's thread: the main thread for a close that cannot block, a worker
 * for one that may linger (protocol.c decides from the request) */
static pthread_t main_thread;
__attribute__((constructor)) static void remember_main(void)
{
	main_thread = pthread_self();
}

long sh_close(int proc, int fd, int *err)
{
	if (pthread_equal(pthread_self(), main_thread)) {
		if (enter(proc, err) < 0) return -1;
		RESULT(rump_sys_close(fd));
	}
	if (enter_thread(proc, err) < 0) return -1;
	long r = rump_sys_close(fd);
	if (r < 0) *err = errno;
	leave_thread();
	return r;
}

long sh_nonblock(int proc, int fd, int on, int *err)
{
	if (enter(proc, err) < 0) return -1;
	int fl = rump_sys_fcntl(fd, NB_F_GETFL);
	if (fl < 0) RESULT(fl);
	RESULT(rump_sys_fcntl(fd, NB_F_SETFL, on ? (fl | NB_O_NONBLOCK) : (fl & ~NB_O_NONBLOCK)));
}

long sh_sockname(int proc, int fd, int peer, struct sh_addr *a, int *err)
{
	union nb_sockaddr s;
	socklen_t len = sizeof(s);
	memset(&s, 0, sizeof(s));
	if (enter(proc, err) < 0) return -1;
	int r = peer ? rump_sys_getpeername(fd, (void *)&s, &len) : rump_sys_getsockname(fd, (void *)&s, &len);
	if (r < 0) RESULT(r);
	from_nb(&s, a);
	return r;
}

/* NetBSD's TCPS_* numbering (netinet/tcp_fsm.h) in twlab's names */
static int state_of(int tcps)
{
	switch (tcps) {
	case NB_TCPS_CLOSED: return SH_TCP_CLOSE;
	case NB_TCPS_LISTEN: return SH_TCP_LISTEN;
	case NB_TCPS_SYN_SENT: return SH_TCP_SYN_SENT;
	case NB_TCPS_SYN_RECEIVED: return SH_TCP_SYN_RECV;
	case NB_TCPS_ESTABLISHED: return SH_TCP_ESTABLISHED;
	case NB_TCPS_CLOSE_WAIT: return SH_TCP_CLOSE_WAIT;
	case NB_TCPS_FIN_WAIT_1: return SH_TCP_FIN_WAIT1;
	case NB_TCPS_CLOSING: return SH_TCP_CLOSING;
	case NB_TCPS_LAST_ACK: return SH_TCP_LAST_ACK;
	case NB_TCPS_FIN_WAIT_2: return SH_TCP_FIN_WAIT2;
	case NB_TCPS_TIME_WAIT: return SH_TCP_TIME_WAIT;
	default: return SH_TCP_UNKNOWN;
	}
}

long sh_tcpinfo(int proc, int fd, struct sh_tcpinfo *ti, int *err)
{
	struct nb_tcp_info i;
	socklen_t len = sizeof(i);
	memset(&i, 0, sizeof(i));
	if (enter(proc, err) < 0) return -1;
	int r = rump_sys_getsockopt(fd, NB_IPPROTO_TCP, NB_TCP_INFO, &i, &len);
	if (r < 0) RESULT(r);
	/* NetBSD 7.99 fills state, rto, MSSes, rtt and cwnd; unacked and retransmits are reserved */
	ti->state = state_of(i.state);
	ti->rto_us = i.rto;
	ti->snd_mss = i.snd_mss;
	ti->rcv_mss = i.rcv_mss;
	ti->snd_cwnd = i.snd_cwnd;
	ti->rtt_us = i.rtt;
	return r;
}

/* ---- sysctl ---- */

/* Resolves a dotted name to its MIB with CTL_QUERY, level by level (sysctlnametomib). */
static int mib_of(const char *name, int *mib, unsigned *len, uint32_t *type, int *err)
{
	char buf[256];
	if (strlen(name) >= sizeof(buf)) {
		*err = NB_ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, name);
	unsigned n = 0;
	*type = NB_CTLTYPE_NODE;
	char *save = NULL;
	for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		if (n + 1 >= NB_CTL_MAXNAME || (n > 0 && *type != NB_CTLTYPE_NODE)) {
			*err = NB_ENOENT;
			return -1;
		}
		struct nb_sysctlnode query, nodes[256];
		memset(&query, 0, sizeof(query));
		query.flags = NB_SYSCTL_VERSION;
		size_t size = sizeof(nodes);
		mib[n] = NB_CTL_QUERY;
		if (rump_sys___sysctl(mib, n + 1, nodes, &size, &query, sizeof(query)) < 0) {
			*err = errno;
			return -1;
		}
		size_t count = size / sizeof(nodes[0]), i;
		for (i = 0; i < count; i++)
			if (strcmp(nodes[i].name, part) == 0) break;
		if (i == count) {
			*err = NB_ENOENT;
			return -1;
		}
		mib[n++] = nodes[i].num;
		*type = nodes[i].flags & NB_SYSCTL_TYPEMASK;
	}
	*len = n;
	return 0;
}

long sh_sysctl_get(const char *name, char *value, size_t len, int *err)
{
	int mib[NB_CTL_MAXNAME];
	unsigned n;
	uint32_t type;
	if (enter(1, err) < 0 || mib_of(name, mib, &n, &type, err) < 0) return -1;
	union {
		int32_t i;
		int64_t q;
		uint8_t b;
		char s[1024];
	} v;
	memset(&v, 0, sizeof(v));
	size_t size = sizeof(v);
	if (type == NB_CTLTYPE_NODE || type == NB_CTLTYPE_STRUCT) {
		*err = NB_EISDIR;
		return -1;
	}
	if (rump_sys___sysctl(mib, n, &v, &size, NULL, 0) < 0) {
		*err = errno;
		return -1;
	}
	switch (type) {
	case NB_CTLTYPE_INT: snprintf(value, len, "%d", v.i); break;
	case NB_CTLTYPE_QUAD: snprintf(value, len, "%lld", (long long)v.q); break;
	case NB_CTLTYPE_BOOL: snprintf(value, len, "%d", v.b); break;
	default: v.s[sizeof(v.s) - 1] = 0; snprintf(value, len, "%s", v.s); break;
	}
	return 0;
}

long sh_sysctl_set(const char *name, const char *value, int *err)
{
	int mib[NB_CTL_MAXNAME];
	unsigned n;
	uint32_t type;
	char *end;
	if (enter(1, err) < 0 || mib_of(name, mib, &n, &type, err) < 0) return -1;
	long long x = strtoll(value, &end, 10);
	int r;
	if (type == NB_CTLTYPE_INT || type == NB_CTLTYPE_QUAD || type == NB_CTLTYPE_BOOL) {
		if (*end || end == value) {
			*err = NB_EINVAL;
			return -1;
		}
		int32_t i = (int32_t)x;
		int64_t q = x;
		uint8_t b = x != 0;
		r = type == NB_CTLTYPE_INT ? rump_sys___sysctl(mib, n, NULL, NULL, &i, sizeof(i))
			: type == NB_CTLTYPE_QUAD ? rump_sys___sysctl(mib, n, NULL, NULL, &q, sizeof(q))
			: rump_sys___sysctl(mib, n, NULL, NULL, &b, sizeof(b));
	} else if (type == NB_CTLTYPE_STRING) {
		r = rump_sys___sysctl(mib, n, NULL, NULL, value, strlen(value) + 1);
	} else {
		*err = NB_EISDIR;
		return -1;
	}
	if (r < 0) *err = errno;
	return r;
}

static long sysctl_set_int(const char *name, long v, int *err)
{
	char text[32];
	snprintf(text, sizeof(text), "%ld", v);
	return sh_sysctl_set(name, text, err);
}

/* ---- the socket table: net.inet.tcp.pcblist and net.inet6.tcp6.pcblist ---- */

static long pcblist(const char *name, void (*each)(void *, const struct sh_pcb *), void *arg, int *err)
{
	int mib[NB_CTL_MAXNAME];
	unsigned n;
	uint32_t type;
	if (mib_of(name, mib, &n, &type, err) < 0) return -1;
	/* op, arg, element size, element count (sysctl_inpcblist) */
	mib[n] = NB_PCB_ALL;
	mib[n + 1] = 0;
	mib[n + 2] = sizeof(struct nb_kinfo_pcb);
	mib[n + 3] = 0x7fffffff;
	size_t size = 0;
	struct nb_kinfo_pcb *list = NULL;
	for (int attempt = 0; attempt < 5; attempt++) {
		if (rump_sys___sysctl(mib, n + 4, NULL, &size, NULL, 0) < 0) {
			*err = errno;
			return -1;
		}
		size += 16 * sizeof(*list); /* room for sockets made meanwhile */
		free(list);
		list = malloc(size);
		if (!list) abort();
		if (rump_sys___sysctl(mib, n + 4, list, &size, NULL, 0) == 0) break;
		if (errno != NB_ENOMEM) {
			*err = errno;
			free(list);
			return -1;
		}
	}
	long count = (long)(size / sizeof(*list));
	for (long i = 0; i < count; i++) {
		struct sh_pcb p;
		memset(&p, 0, sizeof(p));
		from_nb((const void *)list[i].src, &p.local);
		from_nb((const void *)list[i].dst, &p.remote);
		p.state = state_of(list[i].tstate);
		p.sndq = list[i].sndq;
		p.rcvq = list[i].rcvq;
		p.timer_ms = -1; /* kinfo_pcb carries no timers */
		if (!p.local.family) continue;
		if (!p.remote.family) p.remote.family = p.local.family; /* not connected: the unspecified address */
		each(arg, &p);
	}
	free(list);
	return count;
}

long sh_table(void (*each)(void *arg, const struct sh_pcb *p), void *arg, int *err)
{
	if (enter(1, err) < 0) return -1;
	long a = pcblist("net.inet.tcp.pcblist", each, arg, err);
	if (a < 0) return -1;
	long b = pcblist("net.inet6.tcp6.pcblist", each, arg, err);
	if (b < 0) return -1;
	return a + b;
}

/* ---- counters: net.inet.tcp.stats, named as netinet/tcp_var.h names them (TCP_STAT_*) ---- */

long sh_counters(struct sh_text *out, int *err)
{
	int mib[NB_CTL_MAXNAME];
	unsigned n;
	uint32_t type;
	uint64_t stats[NB_TCP_NSTATS];
	size_t size = sizeof(stats);
	if (enter(1, err) < 0 || mib_of("net.inet.tcp.stats", mib, &n, &type, err) < 0) return -1;
	memset(stats, 0, sizeof(stats));
	if (rump_sys___sysctl(mib, n, stats, &size, NULL, 0) < 0) {
		*err = errno;
		return -1;
	}
	long count = 0;
	for (size_t i = 0; i < sizeof(nb_tcp_stats) / sizeof(nb_tcp_stats[0]); i++) {
		if (nb_tcp_stats[i].index < 0 || (size_t)nb_tcp_stats[i].index >= size / sizeof(uint64_t)) continue;
		sh_text_printf(out, "tcp.%s %llu\n", nb_tcp_stats[i].name, (unsigned long long)stats[nb_tcp_stats[i].index]);
		count++;
	}
	return count;
}

/* ---- the wire: virtif, a NetBSD Ethernet interface over a Linux tap device ---- */

long sh_wire_create(const char *tap, char *ifname, size_t iflen, char *mac, size_t maclen, int *err)
{
	(void)mac;
	(void)maclen;
	/* virtif names the host's tap after its unit: virt0 ↔ tun0 (libvirtif/virtif_user.c) */
	int unit;
	if (sscanf(tap, "tun%d", &unit) != 1 || unit < 0 || unit > 99) {
		*err = NB_EINVAL;
		return -1;
	}
	snprintf(ifname, iflen, "virt%d", unit);
	if (enter(1, err) < 0) return -1;
	int r = rump_pub_netconfig_ifcreate(ifname);
	if (r != 0) {
		*err = r;
		return -1;
	}
	r = rump_pub_netconfig_ifup(ifname);
	if (r != 0) {
		*err = r;
		return -1;
	}
	return 0;
}

long sh_if_addr(const char *ifname, const struct sh_addr *a, int prefix, int *err)
{
	char text[64];
	if (enter(1, err) < 0) return -1;
	if (!inet_ntop(a->family == SH_INET ? AF_INET : AF_INET6, a->bytes, text, sizeof(text))) {
		*err = NB_EINVAL;
		return -1;
	}
	int r = a->family == SH_INET ? rump_pub_netconfig_ipv4_ifaddr_cidr(ifname, text, prefix) : rump_pub_netconfig_ipv6_ifaddr(ifname, text, prefix);
	if (r != 0) {
		*err = r;
		return -1;
	}
	return 0;
}

long sh_if_mtu(const char *ifname, int mtu, int *err)
{
	(void)ifname;
	(void)mtu;
	*err = SH_MISSING; /* virtif is fixed at Ethernet's 1500 */
	return -1;
}

long sh_if_up(const char *ifname, int *err)
{
	if (enter(1, err) < 0) return -1;
	int r = rump_pub_netconfig_ifup(ifname);
	if (r != 0) {
		*err = r;
		return -1;
	}
	return 0;
}
