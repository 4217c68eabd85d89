#!/bin/sh
# Builds what twlab needs of NetBSD's kernel as a rump kernel — the kernel base, net, netinet,
# netinet6, the network configuration library and the virtual interface (a Linux tap) — and
# links twlab's stack helper against it. Called by src/kernels/netbsd.ts, which keeps the result
# in a cache and makes the cache entry appear only when this script succeeds.
#
#   build-netbsd.sh <buildrump.sh tree> <src-netbsd tree> <scratch dir> <out dir> <jobs>
#
# Flags: gcc >= 10 defaults to -fno-common, and NetBSD's host tools then fail to link
# (../shared/netbsd/NOTES.md), hence -fcommon; warnings are not errors for this old tree.
# MKPIC=no: the helper is linked statically from the plain archives, so no PIC archives and no
# shared libraries are built (half the compiling of a full build).
set -eu
BR=$1
SRC=$2
WORK=$3
OUT=$4
JOBS=${5:-2}
HERE=$(cd "$(dirname "$0")" && pwd)

step() { echo "@step $*"; }

mkdir -p "$WORK/obj" "$WORK/dest" "$OUT/lib" "$OUT/include"
export HOST_CFLAGS="-O -fcommon"
unset CFLAGS AFLAGS LDFLAGS

step tools "NetBSD's build tools (nbmake, nbconfig, …)"
"$BR/buildrump.sh" -s "$SRC" -o "$WORK/obj" -d "$WORK/dest" -T "$WORK/tools" -j "$JOBS" -q -r \
	-V NOGCCERROR=1 -F CFLAGS=-fcommon tools

step kernel "the rump kernel components: rumpuser, rump, rumpnet, net, netinet, netinet6, virtif, netconfig"
cat > "$WORK/obj/Makefile.twlab" <<EOF
SUBDIR= $SRC/lib/librumpuser $SRC/lib/librump $SRC/lib/librumpnet \
	$SRC/sys/rump/net/lib/libnet $SRC/sys/rump/net/lib/libnetinet $SRC/sys/rump/net/lib/libnetinet6 \
	$SRC/sys/rump/net/lib/libvirtif $BR/brlib/libnetconfig $SRC/sys/rump/include
.include <bsd.subdir.mk>
EOF
cd "$SRC"
for target in obj includes dependall install; do
	"$WORK/tools/bin/brrumpmake" -j "$JOBS" MKPIC=no MKPROFILE=no -f "$WORK/obj/Makefile.twlab" "$target"
done

step install "libraries and headers"
STAGE="$WORK/obj/dest.stage" # where buildrump.sh's rumpmake installs (its makemake ... dest.stage)
for lib in rumpuser rump rumpnet rumpnet_net rumpnet_netinet rumpnet_netinet6 rumpnet_virtif rumpnet_config; do
	cp "$STAGE/usr/lib/lib$lib.a" "$OUT/lib/"
done
cp -R "$STAGE/usr/include/rump" "$OUT/include/"
sh "$HERE/nbgen.sh" "$SRC" > "$OUT/include/nbgen.h"
mkdir -p "$OUT/licences"
cp "$BR/LICENSE" "$OUT/licences/buildrump.sh-LICENSE"
sed -n '1,/^ \*\//p' "$SRC/sys/netinet/tcp_input.c" > "$OUT/licences/netinet-tcp_input.c-header"
echo "@done"
