/*
 * The FreeBSD half of F-Stack's shim: everything that needs FreeBSD's own numbers and
 * structures (socket options, sysctl types, struct xtcpcb, struct tcpstat, struct tcp_info).
 * fstack-bsd.c is compiled against F-Stack's FreeBSD compat headers (tools/compat/include),
 * which cannot share a file with Linux's <sys/socket.h>; this header uses plain C types only.
 *
 * Every function runs on F-Stack's loop thread. On failure it returns -1 with errno set in
 * Linux's numbering (F-Stack translates FreeBSD's errno in its ff_* calls), or with
 * *missing set when FreeBSD has nothing that does what was asked.
 */
#ifndef TWLAB_FSTACK_BSD_H
#define TWLAB_FSTACK_BSD_H

#include "shim.h"

long fb_setsockopt(int fd, int opt, const struct sh_optval *v, int *missing);
long fb_getsockopt(int fd, int opt, struct sh_optval *v, int *missing);
/* the pending error of a socket (SO_ERROR, read and cleared as FreeBSD's connect() does), in
 * Linux's numbering; 0 when there is none */
int fb_take_so_error(int fd);
long fb_tcpinfo(int fd, struct sh_tcpinfo *ti);

/* ifconfig's SIOCAIFADDR / SIOCAIFADDR_IN6 and SIOCSIFMTU on one of the stack's interfaces */
long fb_if_addr(const char *ifname, const struct sh_addr *a, int prefix);
long fb_if_mtu(const char *ifname, int mtu);

long fb_sysctl_get(const char *name, char *value, size_t len);
long fb_sysctl_set(const char *name, const char *value);

long fb_table(void (*each)(void *arg, const struct sh_pcb *p), void *arg);
long fb_counters(struct sh_text *out);

#endif
