/*
 * What an operating system's network stack must provide to the stack helper (PROTOCOL.md).
 * protocol.c parses requests into these OS-neutral values and calls the shim; the shim calls its
 * stack (NetBSD's rump_sys_*, F-Stack's ff_*) with that OS's numbers and structures.
 *
 * Every call returns the stack's return value; on failure it returns -1 and sets *err to the
 * stack's own errno number (named by sh_errno_name), or to SH_MISSING when the stack has nothing
 * that does what was asked (PROTOCOL.md "missing").
 */
#ifndef TWLAB_STACK_SHIM_H
#define TWLAB_STACK_SHIM_H

#include <stddef.h>
#include <stdint.h>

#define SH_MISSING (-1000)

enum sh_family { SH_INET = 4, SH_INET6 = 6 };
enum sh_type { SH_STREAM = 1, SH_DGRAM = 2 };

struct sh_addr {
	int family; /* SH_INET or SH_INET6 */
	uint8_t bytes[16];
	unsigned port;
};

enum sh_opt {
	SH_SO_REUSEADDR,
	SH_SO_REUSEPORT,
	SH_SO_KEEPALIVE,
	SH_SO_LINGER,
	SH_SO_RCVBUF,
	SH_SO_SNDBUF,
	SH_SO_ERROR,
	SH_SO_TYPE,
	SH_IPV6_V6ONLY,
	SH_TCP_NODELAY,
	SH_TCP_MAXSEG,
	SH_IP_ADD_MEMBERSHIP,
	SH_IPV6_JOIN_GROUP,
	SH_IP_LOCAL_PORT_RANGE,
	SH_OPT_COUNT
};

/* an option's value: `i` for flags and integers, the rest for the structured ones */
struct sh_optval {
	long i;
	int onoff, seconds;          /* SO_LINGER */
	struct sh_addr group, iface; /* IP_ADD_MEMBERSHIP (iface: an address), IPV6_JOIN_GROUP */
	unsigned ifindex;            /* IPV6_JOIN_GROUP */
	unsigned lo, hi;             /* IP_LOCAL_PORT_RANGE */
};

enum sh_how { SH_SHUT_RD, SH_SHUT_WR, SH_SHUT_RDWR };

/* TCP states, in twlab's names (PROTOCOL.md "Names") */
extern const char *const sh_tcp_state_names[];
enum sh_tcp_state {
	SH_TCP_UNKNOWN, SH_TCP_CLOSE, SH_TCP_LISTEN, SH_TCP_SYN_SENT, SH_TCP_SYN_RECV, SH_TCP_ESTABLISHED,
	SH_TCP_CLOSE_WAIT, SH_TCP_FIN_WAIT1, SH_TCP_CLOSING, SH_TCP_LAST_ACK, SH_TCP_FIN_WAIT2, SH_TCP_TIME_WAIT
};

/* one TCP control block of the socket table */
struct sh_pcb {
	struct sh_addr local, remote;
	int state; /* enum sh_tcp_state */
	uint64_t sndq, rcvq;
	long timer_ms; /* -1: the stack does not say */
};

/* a little growable text buffer: table and counter listings, ready lines */
struct sh_text {
	char *buf;
	size_t len, cap;
};
void sh_text_printf(struct sh_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* appends key=value with the value percent-encoded */
void sh_text_kv(struct sh_text *t, const char *key, const char *value);

/* TCP_INFO, as far as a stack fills it: -1 where it does not */
struct sh_tcpinfo {
	int state;
	long unacked, rto_us, snd_mss, rcv_mss, retransmits, snd_cwnd, rtt_us;
};

/* ---- provided by the shim ---- */

/* Boots the stack. Writes the ready line's keys (os=… release=… version=… procs=… wire=…) into
 * `ready`; returns 0, or -1 with a one-line reason in `why`. */
int sh_boot(struct sh_text *ready, char *why, size_t whylen);
/* The name of the stack's errno number, or NULL if it has none. */
const char *sh_errno_name(int err);

/* Process contexts: 1 is the main process. */
long sh_proc_new(long uid, long gid, int *err);
/* ending a process: begin runs on the main thread (no more calls in it), exit on a thread of its
 * own (its descriptors are closed, which may linger) */
long sh_proc_exit_begin(int proc, int *err);
long sh_proc_exit(int proc, int *err);

long sh_socket(int proc, int family, int type, int nonblock, int *err);
long sh_setsockopt(int proc, int fd, int opt, const struct sh_optval *v, int *err);
long sh_getsockopt(int proc, int fd, int opt, struct sh_optval *v, int *err);
long sh_bind(int proc, int fd, const struct sh_addr *a, int *err);
long sh_listen(int proc, int fd, int backlog, int *err);
long sh_connect(int proc, int fd, const struct sh_addr *a, int *err);                     /* may block */
long sh_accept(int proc, int fd, long timeout_ms, struct sh_addr *peer, int *err);        /* may block */
long sh_send(int proc, int fd, const void *buf, size_t len, int dontwait, int *err);      /* may block unless dontwait */
long sh_recv(int proc, int fd, void *buf, size_t len, int peek, long timeout_ms, int *err); /* may block */
long sh_shutdown(int proc, int fd, int how, int *err);
long sh_close(int proc, int fd, int *err); /* may block (SO_LINGER) */
long sh_nonblock(int proc, int fd, int on, int *err);
long sh_sockname(int proc, int fd, int peer, struct sh_addr *a, int *err);
long sh_tcpinfo(int proc, int fd, struct sh_tcpinfo *ti, int *err);

/* sysctls by the stack's own names; values as text */
long sh_sysctl_get(const char *name, char *value, size_t len, int *err);
long sh_sysctl_set(const char *name, const char *value, int *err);
/* the TCP socket table: calls `each` per control block; returns the count */
long sh_table(void (*each)(void *arg, const struct sh_pcb *p), void *arg, int *err);
/* counters by the stack's own names, one "name value\n" line each; returns the count */
long sh_counters(struct sh_text *out, int *err);

/* the wire: a virtual Ethernet interface whose frames cross the Linux tap device `tap` */
long sh_wire_create(const char *tap, char *ifname, size_t iflen, char *mac, size_t maclen, int *err);
long sh_if_addr(const char *ifname, const struct sh_addr *a, int prefix, int *err);
long sh_if_mtu(const char *ifname, int mtu, int *err);
long sh_if_up(const char *ifname, int *err);

#endif
