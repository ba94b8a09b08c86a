#!/bin/sh
# Lays out the whole filesystem of the runtime image in ROOTFS, which the Dockerfile's
# `FROM scratch` stage copies in as it is:
#
#   usr/local/bin/sluice     the broker
#   usr/local/bin/docker-entrypoint
#                            the ENTRYPOINT: sluice's flags and subcommands go to sluice,
#                            another command (Testcontainers' `sh -c ...`) runs under a
#                            signal relay that passes SIGTERM on to the broker
#   bin/busybox + applets    a static busybox (sh, sleep, [, sed, ...) for the start scripts
#                            of Testcontainers' Kafka modules, and bin/bash, a wrapper that
#                            runs its sh (busybox has no bash applet)
#   etc/kafka/docker/run, etc/confluent/docker/{launch,configure,ensure,bash-config}
#                            the start-up paths of the apache/kafka and confluentinc images
#                            that those modules call; each starts sluice from KAFKA_*
#   usr/local/bin/kafka-storage, zookeeper-server-start
#                            stand-ins for the Kafka tools those scripts call
#   <loader and libraries>   exactly what `ldd` resolves for it, at the same paths
#   etc/passwd, etc/group    root and the unprivileged user `sluice` (uid/gid 10001)
#   etc/nsswitch.conf        host lookups: /etc/hosts, then DNS (glibc >= 2.34 has both
#                            built into libc.so.6, so no libnss_*.so is needed)
#   var/lib/sluice           the data directory (the image's VOLUME)
#   tmp                      mode 1777, for data dirs such as Kafka's /tmp/kraft-combined-logs
#
# It runs inside the build stage, so the libraries are the ones the binary was linked
# against, and ends by running the binary chrooted in ROOTFS to prove nothing is missing.
#
# Usage: rootfs.sh BINARY ROOTFS [BUSYBOX]
#   BUSYBOX: a static busybox (Debian's busybox-static); default /bin/busybox. The files of
#   docker/image/ are taken from beside this script.
set -eu

if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    echo "usage: $0 BINARY ROOTFS [BUSYBOX]" >&2
    exit 2
fi
bin=$1
root=$2
busybox=${3:-/bin/busybox}
image=$(dirname "$0")/image
uid=10001

mkdir -p "$root/usr/local/bin" "$root/etc" "$root/var/lib/sluice" "$root/tmp"
cp "$bin" "$root/usr/local/bin/sluice"
chmod 0755 "$root/usr/local/bin/sluice"

# ldd prints `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` for each library and
# `/lib64/ld-linux-x86-64.so.2 (0x...)` for the loader; linux-vdso has no file. A static
# binary makes ldd fail with "not a dynamic executable": then there is nothing to copy.
if libs=$(ldd "$bin" 2>/dev/null); then
    printf '%s\n' "$libs" |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            # -L: Debian's names are symlinks to versioned files; copy the file itself.
            cp -L "$lib" "$root$lib"
            echo "rootfs.sh: $lib"
        done
else
    echo "rootfs.sh: $bin is static, no libraries to copy"
fi

# Busybox must be static: the rootfs has only the libraries sluice itself loads.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "rootfs.sh: $busybox is not static (install Debian's busybox-static)" >&2
    exit 1
fi
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
    "$root/etc/kafka/docker" "$root/etc/confluent/docker"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, at its usual place (/bin/sh, /bin/sleep, /usr/bin/[, ...).
chroot "$root" /bin/busybox --install -s
install -m 0755 "$image/bash" "$root/bin/bash"
install -m 0755 "$image/docker-entrypoint" "$image/kafka-storage" \
    "$image/zookeeper-server-start" "$root/usr/local/bin/"
install -m 0755 "$image/launch" "$root/etc/kafka/docker/run"
install -m 0755 "$image/launch" "$image/configure" "$image/ensure" "$root/etc/confluent/docker/"
install -m 0644 "$image/bash-config" "$root/etc/confluent/docker/bash-config"

cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
sluice:x:$uid:$uid:sluice:/var/lib/sluice:/sbin/nologin
EOF
cat >"$root/etc/group" <<EOF
root:x:0:
sluice:x:$uid:
EOF
cat >"$root/etc/nsswitch.conf" <<EOF
passwd: files
group:  files
hosts:  files dns
EOF

chown "$uid:$uid" "$root/var/lib/sluice"
chmod 0750 "$root/var/lib/sluice"
chmod 1777 "$root/tmp"
# Testcontainers' start scripts edit configure and ensure in place (sed -i writes a new file
# beside the old one), as the broker's user.
chown -R "$uid:$uid" "$root/etc/confluent/docker"

# The image has no package manager to fix anything later: check here that
# the binary starts with nothing but ROOTFS around it.
chroot "$root" /usr/local/bin/sluice --version
chroot "$root" /bin/bash -c '[ -x /etc/kafka/docker/run ] && sleep 0 && echo "rootfs.sh: sh, bash, [ and sleep work"'
