/*
 * F-Stack's shim, FreeBSD half (see fstack-bsd.h): socket options by FreeBSD's own numbers,
 * sysctls by name, the TCP connection table from net.inet.tcp.pcblist, the TCP counters from
 * net.inet.tcp.stats. Compiled against F-Stack's FreeBSD compat headers (tools/compat), so the
 * structures are FreeBSD 13's, not Linux's.
 *
 * Options go through ff_setsockopt_freebsd with FreeBSD's numbers: F-Stack's own ff_setsockopt
 * takes Linux's numbers and translates them (Linux's SO_REUSEPORT to FreeBSD's SO_REUSEPORT, and
 * only a short list). Here a lab's SO_REUSEPORT is FreeBSD's SO_REUSEPORT (0x200, the BSD
 * semantics the seed describes), never SO_REUSEPORT_LB.
 */
#include <sys/param.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/ioccom.h>
#include <sys/sockio.h>
#include <sys/sysctl.h>
#include <sys/socketvar.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/in_var.h>
#include <netinet6/in6_var.h>
#include <netinet6/nd6.h>
#include <netinet/in_pcb.h>
#include <netinet/tcp.h>
#include <netinet/tcp_fsm.h>
#include <netinet/tcp_var.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstack-bsd.h"

/* F-Stack's calls (lib/ff_api.h, which needs Linux's headers) */
int ff_setsockopt_freebsd(int s, int level, int optname, const void *optval, socklen_t optlen);
int ff_getsockopt_freebsd(int s, int level, int optname, void *optval, socklen_t *optlen);
int ff_sysctl(const int *name, u_int namelen, void *oldp, size_t *oldlenp, const void *newp, size_t newlen);
void ff_os_errno(int error); /* sets errno to the Linux number of a FreeBSD errno */
int ff_socket(int domain, int type, int protocol); /* takes Linux's AF_INET6 (10) */
int ff_close(int fd);
int ff_ioctl_freebsd(int fd, unsigned long request, ...);
#define L_AF_INET6 10

/* errno values this file sets itself, in Linux's numbering (what every ff_* call returns) */
#define L_ENOENT 2
#define L_ENOMEM 12
#define L_EINVAL 22
#define L_EOPNOTSUPP 95

static long fail(int linux_errno)
{
	errno = linux_errno;
	return -1;
}

/* ---------------------------------------------------------------- socket options */

struct optdef {
	int level, name;
};

static int optdef(int opt, struct optdef *d)
{
	switch (opt) {
	case SH_SO_REUSEADDR: *d = (struct optdef){ SOL_SOCKET, SO_REUSEADDR }; return 0;
	case SH_SO_REUSEPORT: *d = (struct optdef){ SOL_SOCKET, SO_REUSEPORT }; return 0;
	case SH_SO_KEEPALIVE: *d = (struct optdef){ SOL_SOCKET, SO_KEEPALIVE }; return 0;
	case SH_SO_LINGER: *d = (struct optdef){ SOL_SOCKET, SO_LINGER }; return 0;
	case SH_SO_RCVBUF: *d = (struct optdef){ SOL_SOCKET, SO_RCVBUF }; return 0;
	case SH_SO_SNDBUF: *d = (struct optdef){ SOL_SOCKET, SO_SNDBUF }; return 0;
	case SH_SO_ERROR: *d = (struct optdef){ SOL_SOCKET, SO_ERROR }; return 0;
	case SH_SO_TYPE: *d = (struct optdef){ SOL_SOCKET, SO_TYPE }; return 0;
	case SH_IPV6_V6ONLY: *d = (struct optdef){ IPPROTO_IPV6, IPV6_V6ONLY }; return 0;
	case SH_TCP_NODELAY: *d = (struct optdef){ IPPROTO_TCP, TCP_NODELAY }; return 0;
	case SH_TCP_MAXSEG: *d = (struct optdef){ IPPROTO_TCP, TCP_MAXSEG }; return 0;
	case SH_IP_ADD_MEMBERSHIP: *d = (struct optdef){ IPPROTO_IP, IP_ADD_MEMBERSHIP }; return 0;
	case SH_IPV6_JOIN_GROUP: *d = (struct optdef){ IPPROTO_IPV6, IPV6_JOIN_GROUP }; return 0;
	default: return -1; /* IP_LOCAL_PORT_RANGE is Linux's: FreeBSD has only IP_PORTRANGE's three ranges */
	}
}

long fb_setsockopt(int fd, int opt, const struct sh_optval *v, int *missing)
{
	struct optdef d;
	*missing = 0;
	if (optdef(opt, &d) < 0) {
		*missing = 1;
		return -1;
	}
	switch (opt) {
	case SH_SO_LINGER: {
		struct linger l = { .l_onoff = v->onoff, .l_linger = v->seconds };
		return ff_setsockopt_freebsd(fd, d.level, d.name, &l, sizeof(l));
	}
	case SH_IP_ADD_MEMBERSHIP: {
		struct ip_mreq m;
		memset(&m, 0, sizeof(m));
		memcpy(&m.imr_multiaddr, v->group.bytes, 4);
		memcpy(&m.imr_interface, v->iface.bytes, 4);
		return ff_setsockopt_freebsd(fd, d.level, d.name, &m, sizeof(m));
	}
	case SH_IPV6_JOIN_GROUP: {
		struct ipv6_mreq m;
		memset(&m, 0, sizeof(m));
		memcpy(&m.ipv6mr_multiaddr, v->group.bytes, 16);
		m.ipv6mr_interface = v->ifindex;
		return ff_setsockopt_freebsd(fd, d.level, d.name, &m, sizeof(m));
	}
	default: {
		int i = (int)v->i;
		return ff_setsockopt_freebsd(fd, d.level, d.name, &i, sizeof(i));
	}
	}
}

long fb_getsockopt(int fd, int opt, struct sh_optval *v, int *missing)
{
	struct optdef d;
	*missing = 0;
	if (optdef(opt, &d) < 0 || opt == SH_IP_ADD_MEMBERSHIP || opt == SH_IPV6_JOIN_GROUP) {
		*missing = opt != SH_IP_ADD_MEMBERSHIP && opt != SH_IPV6_JOIN_GROUP;
		return *missing ? -1 : fail(L_EINVAL); /* group memberships cannot be read back, as on every OS */
	}
	if (opt == SH_SO_LINGER) {
		struct linger l;
		socklen_t len = sizeof(l);
		long r = ff_getsockopt_freebsd(fd, d.level, d.name, &l, &len);
		if (r >= 0) {
			v->onoff = l.l_onoff != 0; /* FreeBSD answers the option's bit, SO_LINGER (0x80) */
			v->seconds = l.l_linger;
		}
		return r;
	}
	int i = 0;
	socklen_t len = sizeof(i);
	long r = ff_getsockopt_freebsd(fd, d.level, d.name, &i, &len);
	if (r < 0) return r;
	if (opt == SH_SO_ERROR && i) {
		/* a FreeBSD errno number: say it in Linux's, like every other errno the helper names */
		int saved = errno;
		ff_os_errno(i);
		i = errno;
		errno = saved;
	}
	/* FreeBSD answers a flag option with the option's bit (SO_REUSEPORT: 0x200); say 0/1 */
	if (d.level == SOL_SOCKET && (opt == SH_SO_REUSEADDR || opt == SH_SO_REUSEPORT || opt == SH_SO_KEEPALIVE)) i = i != 0;
	v->i = i;
	return r;
}

int fb_take_so_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (ff_getsockopt_freebsd(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) return errno;
	if (!e) return 0;
	int saved = errno;
	ff_os_errno(e);
	e = errno;
	errno = saved;
	return e;
}

static int sh_state(int tcps)
{
	switch (tcps) {
	case TCPS_CLOSED: return SH_TCP_CLOSE;
	case TCPS_LISTEN: return SH_TCP_LISTEN;
	case TCPS_SYN_SENT: return SH_TCP_SYN_SENT;
	case TCPS_SYN_RECEIVED: return SH_TCP_SYN_RECV;
	case TCPS_ESTABLISHED: return SH_TCP_ESTABLISHED;
	case TCPS_CLOSE_WAIT: return SH_TCP_CLOSE_WAIT;
	case TCPS_FIN_WAIT_1: return SH_TCP_FIN_WAIT1;
	case TCPS_CLOSING: return SH_TCP_CLOSING;
	case TCPS_LAST_ACK: return SH_TCP_LAST_ACK;
	case TCPS_FIN_WAIT_2: return SH_TCP_FIN_WAIT2;
	case TCPS_TIME_WAIT: return SH_TCP_TIME_WAIT;
	default: return SH_TCP_UNKNOWN;
	}
}

long fb_tcpinfo(int fd, struct sh_tcpinfo *ti)
{
	struct tcp_info i;
	socklen_t len = sizeof(i);
	memset(&i, 0, sizeof(i));
	long r = ff_getsockopt_freebsd(fd, IPPROTO_TCP, TCP_INFO, &i, &len);
	if (r < 0) return r;
	/* FreeBSD 13 fills these; the rest of Linux's tcp_info (unacked, retransmits) it leaves 0
	 * ("__tcpi_" fields), so they are reported as unknown (-1), not as 0 */
	ti->state = sh_state(i.tcpi_state);
	ti->rto_us = i.tcpi_rto;
	ti->snd_mss = i.tcpi_snd_mss;
	ti->rcv_mss = i.tcpi_rcv_mss;
	ti->snd_cwnd = i.tcpi_snd_cwnd;
	ti->rtt_us = i.tcpi_rtt;
	return r;
}

/* ---------------------------------------------------------------- interface addresses */

/* ifconfig's way: an ioctl on a datagram socket of the address's family */
static long if_ioctl(int linux_family, unsigned long request, void *req)
{
	int s = ff_socket(linux_family, SOCK_DGRAM, 0);
	if (s < 0) return -1;
	long r = ff_ioctl_freebsd(s, request, req);
	int saved = errno;
	ff_close(s);
	errno = saved;
	return r;
}

long fb_if_addr(const char *ifname, const struct sh_addr *a, int prefix)
{
	if (a->family == SH_INET) {
		if (prefix < 0 || prefix > 32) return fail(L_EINVAL);
		struct in_aliasreq req;
		memset(&req, 0, sizeof(req));
		snprintf(req.ifra_name, sizeof(req.ifra_name), "%s", ifname);
		uint32_t addr, mask = prefix ? htonl(0xffffffffu << (32 - prefix)) : 0;
		memcpy(&addr, a->bytes, 4);
		struct sockaddr_in sin = { .sin_len = sizeof(sin), .sin_family = AF_INET };
		sin.sin_addr.s_addr = addr;
		memcpy(&req.ifra_addr, &sin, sizeof(sin));
		sin.sin_addr.s_addr = mask;
		memcpy(&req.ifra_mask, &sin, sizeof(sin));
		sin.sin_addr.s_addr = addr | ~mask;
		memcpy(&req.ifra_broadaddr, &sin, sizeof(sin));
		return if_ioctl(AF_INET, SIOCAIFADDR, &req);
	}
	if (prefix < 0 || prefix > 128) return fail(L_EINVAL);
	struct in6_aliasreq req;
	memset(&req, 0, sizeof(req));
	snprintf(req.ifra_name, sizeof(req.ifra_name), "%s", ifname);
	req.ifra_addr.sin6_len = sizeof(struct sockaddr_in6);
	req.ifra_addr.sin6_family = AF_INET6;
	memcpy(&req.ifra_addr.sin6_addr, a->bytes, 16);
	req.ifra_prefixmask.sin6_len = sizeof(struct sockaddr_in6);
	req.ifra_prefixmask.sin6_family = AF_INET6;
	for (int i = 0; i < 16; i++) {
		int bits = prefix - 8 * i;
		req.ifra_prefixmask.sin6_addr.s6_addr[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
	req.ifra_lifetime.ia6t_vltime = ND6_INFINITE_LIFETIME;
	req.ifra_lifetime.ia6t_pltime = ND6_INFINITE_LIFETIME;
	return if_ioctl(L_AF_INET6, SIOCAIFADDR_IN6, &req);
}

long fb_if_mtu(const char *ifname, int mtu)
{
	struct ifreq req;
	memset(&req, 0, sizeof(req));
	snprintf(req.ifr_name, sizeof(req.ifr_name), "%s", ifname);
	req.ifr_mtu = mtu;
	return if_ioctl(AF_INET, SIOCSIFMTU, &req);
}

/* ---------------------------------------------------------------- sysctls */

static int name2oid(const char *name, int *oid, size_t *n)
{
	int q[2] = { 0, 3 }; /* sysctl.name2oid */
	size_t len = *n * sizeof(int);
	if (ff_sysctl(q, 2, oid, &len, name, strlen(name)) < 0) return -1;
	*n = len / sizeof(int);
	return 0;
}

/* the CTLTYPE of an oid (sysctl.oidfmt) */
static int oidkind(const int *oid, size_t n, unsigned *kind)
{
	int q[CTL_MAXNAME + 2] = { 0, 4 };
	unsigned char buf[sizeof(unsigned) + 64];
	size_t len = sizeof(buf);
	memcpy(q + 2, oid, n * sizeof(int));
	if (ff_sysctl(q, (u_int)(n + 2), buf, &len, NULL, 0) < 0) return -1;
	memcpy(kind, buf, sizeof(unsigned));
	return 0;
}

struct ctlnum {
	size_t size;
	int is_signed;
};

static int ctlnum(unsigned kind, struct ctlnum *c)
{
	switch (kind & CTLTYPE) {
	case CTLTYPE_INT: case CTLTYPE_S32: *c = (struct ctlnum){ 4, 1 }; return 0;
	case CTLTYPE_UINT: case CTLTYPE_U32: *c = (struct ctlnum){ 4, 0 }; return 0;
	case CTLTYPE_LONG: case CTLTYPE_S64: *c = (struct ctlnum){ 8, 1 }; return 0;
	case CTLTYPE_ULONG: case CTLTYPE_U64: *c = (struct ctlnum){ 8, 0 }; return 0;
	case CTLTYPE_S8: *c = (struct ctlnum){ 1, 1 }; return 0;
	case CTLTYPE_U8: *c = (struct ctlnum){ 1, 0 }; return 0;
	case CTLTYPE_S16: *c = (struct ctlnum){ 2, 1 }; return 0;
	case CTLTYPE_U16: *c = (struct ctlnum){ 2, 0 }; return 0;
	default: return -1;
	}
}

/* one number of a sysctl's value as text, signed or not as its type says */
static int print_num(char *out, size_t len, const unsigned char *p, const struct ctlnum *c)
{
	if (c->size == 8) {
		uint64_t u;
		memcpy(&u, p, 8);
		return c->is_signed ? snprintf(out, len, "%lld", (long long)u) : snprintf(out, len, "%llu", (unsigned long long)u);
	}
	if (c->size == 4) {
		uint32_t u;
		memcpy(&u, p, 4);
		return c->is_signed ? snprintf(out, len, "%d", (int32_t)u) : snprintf(out, len, "%u", u);
	}
	if (c->size == 2) {
		uint16_t u;
		memcpy(&u, p, 2);
		return c->is_signed ? snprintf(out, len, "%d", (int16_t)u) : snprintf(out, len, "%u", u);
	}
	return c->is_signed ? snprintf(out, len, "%d", (int8_t)*p) : snprintf(out, len, "%u", *p);
}

long fb_sysctl_get(const char *name, char *value, size_t len)
{
	int oid[CTL_MAXNAME];
	size_t n = CTL_MAXNAME;
	unsigned kind;
	struct ctlnum c;
	if (name2oid(name, oid, &n) < 0 || oidkind(oid, n, &kind) < 0) return -1;
	if ((kind & CTLTYPE) == CTLTYPE_STRING) {
		size_t got = len - 1;
		if (ff_sysctl(oid, (u_int)n, value, &got, NULL, 0) < 0) return -1;
		value[got < len ? got : len - 1] = 0;
		return 0;
	}
	if (ctlnum(kind, &c) < 0) return fail(L_EOPNOTSUPP); /* a structure (CTLTYPE_OPAQUE): not a value */
	unsigned char buf[512];
	size_t got = sizeof(buf);
	if (ff_sysctl(oid, (u_int)n, buf, &got, NULL, 0) < 0) return -1;
	/* an array (net.inet.tcp.states) prints as its values separated by spaces */
	size_t used = 0;
	value[0] = 0;
	for (size_t off = 0; off + c.size <= got && used + 1 < len; off += c.size) {
		if (off) value[used++] = ' ';
		int w = print_num(value + used, len - used, buf + off, &c);
		if (w < 0 || (size_t)w >= len - used) break;
		used += (size_t)w;
	}
	value[used < len ? used : len - 1] = 0;
	return 0;
}

long fb_sysctl_set(const char *name, const char *value)
{
	int oid[CTL_MAXNAME];
	size_t n = CTL_MAXNAME;
	unsigned kind;
	struct ctlnum c;
	if (name2oid(name, oid, &n) < 0 || oidkind(oid, n, &kind) < 0) return -1;
	if ((kind & CTLTYPE) == CTLTYPE_STRING) return ff_sysctl(oid, (u_int)n, NULL, NULL, value, strlen(value) + 1);
	if (ctlnum(kind, &c) < 0) return fail(L_EOPNOTSUPP);
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || *end || end == value) return fail(L_EINVAL);
	unsigned char buf[8];
	switch (c.size) {
	case 1: { int8_t x = (int8_t)v; memcpy(buf, &x, 1); break; }
	case 2: { int16_t x = (int16_t)v; memcpy(buf, &x, 2); break; }
	case 4: { int32_t x = (int32_t)v; memcpy(buf, &x, 4); break; }
	default: memcpy(buf, &v, 8); break;
	}
	return ff_sysctl(oid, (u_int)n, NULL, NULL, buf, c.size);
}

/* ---------------------------------------------------------------- the connection table */

/* a whole sysctl's value, however long (the pcb list grows between the two calls: leave room) */
static unsigned char *fetch_all(const char *name, size_t *len)
{
	int oid[CTL_MAXNAME];
	size_t n = CTL_MAXNAME;
	if (name2oid(name, oid, &n) < 0) return NULL;
	for (int tries = 0; tries < 4; tries++) {
		size_t need = 0;
		if (ff_sysctl(oid, (u_int)n, NULL, &need, NULL, 0) < 0) return NULL;
		need += need / 2 + 4096;
		unsigned char *buf = malloc(need);
		if (!buf) {
			errno = L_ENOMEM;
			return NULL;
		}
		*len = need;
		if (ff_sysctl(oid, (u_int)n, buf, len, NULL, 0) == 0) return buf;
		free(buf);
		if (errno != L_ENOMEM) return NULL;
	}
	return NULL;
}

/* an endpoint of a control block; `v6`: the pcb is IPv6's (inp_vflag, as netstat reads it:
 * inc_flags says so only once a connection exists) */
static void endpoint(const struct in_conninfo *inc, int v6, int local, struct sh_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (v6) {
		a->family = SH_INET6;
		memcpy(a->bytes, local ? &inc->inc_ie.ie6_laddr : &inc->inc_ie.ie6_faddr, 16);
	} else {
		a->family = SH_INET;
		memcpy(a->bytes, local ? &inc->inc_ie.ie_laddr : &inc->inc_ie.ie_faddr, 4);
	}
	a->port = ntohs(local ? inc->inc_ie.ie_lport : inc->inc_ie.ie_fport);
}

long fb_table(void (*each)(void *arg, const struct sh_pcb *p), void *arg)
{
	size_t len = 0;
	unsigned char *buf = fetch_all("net.inet.tcp.pcblist", &len);
	if (!buf) return -1;
	long count = 0;
	const struct xinpgen *head = (const struct xinpgen *)buf;
	for (size_t off = head->xig_len; off + sizeof(struct xinpgen) < len;) {
		const struct xinpgen *g = (const struct xinpgen *)(buf + off);
		if (g->xig_len <= sizeof(struct xinpgen)) break; /* the trailing xinpgen */
		const struct xtcpcb *tp = (const struct xtcpcb *)g;
		const struct xinpcb *inp = &tp->xt_inp;
		off += g->xig_len;
		if (inp->inp_gencnt > head->xig_gen) continue; /* freed while the list was copied */
		struct sh_pcb p;
		int v6 = (inp->inp_vflag & INP_IPV6) != 0;
		endpoint(&inp->inp_inc, v6, 1, &p.local);
		endpoint(&inp->inp_inc, v6, 0, &p.remote);
		if (p.local.port == 0 && tp->t_state == TCPS_CLOSED) continue; /* not bound yet */
		p.state = sh_state(tp->t_state);
		p.sndq = inp->xi_socket.so_snd.sb_cc;
		p.rcvq = inp->xi_socket.so_rcv.sb_cc;
		/* FreeBSD exports a connection's timers in ms, but not a TIME_WAIT entry's (its
		 * tcptw keeps no callout): only the 2MSL timer of FIN_WAIT_2 and CLOSING is known */
		p.timer_ms = tp->t_state != TCPS_TIME_WAIT && tp->tt_2msl > 0 ? tp->tt_2msl : -1;
		each(arg, &p);
		count++;
	}
	free(buf);
	return count;
}

/* ---------------------------------------------------------------- counters */

#define TCPSTAT_FIELDS(X) \
	X(connattempt) X(accepts) X(connects) X(drops) X(conndrops) X(minmssdrops) X(closed) X(segstimed) \
	X(rttupdated) X(delack) X(timeoutdrop) X(rexmttimeo) X(persisttimeo) X(keeptimeo) X(keepprobe) \
	X(keepdrops) X(sndtotal) X(sndpack) X(sndbyte) X(sndrexmitpack) X(sndrexmitbyte) X(sndrexmitbad) \
	X(sndacks) X(sndprobe) X(sndurg) X(sndwinup) X(sndctrl) X(rcvtotal) X(rcvpack) X(rcvbyte) \
	X(rcvbadsum) X(rcvbadoff) X(rcvreassfull) X(rcvshort) X(rcvduppack) X(rcvdupbyte) X(rcvpartduppack) \
	X(rcvpartdupbyte) X(rcvoopack) X(rcvoobyte) X(rcvpackafterwin) X(rcvbyteafterwin) X(rcvafterclose) \
	X(rcvwinprobe) X(rcvdupack) X(rcvacktoomuch) X(rcvackpack) X(rcvackbyte) X(rcvwinupd) X(pawsdrop) \
	X(predack) X(preddat) X(persistdrop) X(badsyn) X(mturesent) X(listendrop) X(badrst) X(sc_added) \
	X(sc_retransmitted) X(sc_dupsyn) X(sc_dropped) X(sc_completed) X(sc_bucketoverflow) \
	X(sc_cacheoverflow) X(sc_reset) X(sc_stale) X(sc_aborted) X(sc_badack) X(sc_unreach) X(sc_zonefail) \
	X(sc_sendcookie) X(sc_recvcookie) X(finwait2_drops) X(sack_recovery_episode) X(sack_rexmits) \
	X(sack_rexmit_bytes) X(sack_rcv_blocks) X(sack_send_blocks) X(ecn_ce) X(ecn_ect0) X(ecn_ect1)

long fb_counters(struct sh_text *out)
{
	size_t len = 0;
	unsigned char *buf = fetch_all("net.inet.tcp.stats", &len);
	if (!buf) return -1;
	if (len < sizeof(struct tcpstat)) {
		free(buf);
		return fail(L_EINVAL);
	}
	struct tcpstat s;
	memcpy(&s, buf, sizeof(s));
	free(buf);
	long n = 0;
#define X(f) sh_text_printf(out, "tcp." #f " %llu\n", (unsigned long long)s.tcps_##f), n++;
	TCPSTAT_FIELDS(X)
#undef X
	/* connections per state (net.inet.tcp.states), by twlab's state names */
	uint64_t states[TCP_NSTATES];
	int oid[CTL_MAXNAME];
	size_t on = CTL_MAXNAME, sl = sizeof(states);
	if (name2oid("net.inet.tcp.states", oid, &on) == 0 && ff_sysctl(oid, (u_int)on, states, &sl, NULL, 0) == 0) {
		for (int i = 0; i < TCP_NSTATES && (size_t)i * sizeof(uint64_t) < sl; i++) {
			sh_text_printf(out, "tcp.states.%s %llu\n", sh_tcp_state_names[sh_state(i)], (unsigned long long)states[i]);
			n++;
		}
	}
	return n;
}
