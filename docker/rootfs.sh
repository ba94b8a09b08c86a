#!/bin/sh
# Lays out the whole filesystem of the runtime image in ROOTFS, which the Dockerfile's
# `FROM scratch` stage copies in as it is:
#
#   usr/local/bin/sluice     the broker
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
# Usage: rootfs.sh BINARY ROOTFS
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 BINARY ROOTFS" >&2
    exit 2
fi
bin=$1
root=$2
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

# The image has no shell and no package manager to fix anything later: check here that
# the binary starts with nothing but ROOTFS around it.
chroot "$root" /usr/local/bin/sluice --version
