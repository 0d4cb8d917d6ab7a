# Sourced by .ci/redis7 and .ci/valkey: unpack Debian packages into a directory of this
# checkout (no root, nothing installed system-wide) and write a wrapper that runs one of
# their programs with their libraries.

# apt_download DIR PACKAGE...: Debian's packages by name, from this machine's package lists.
apt_download() {
    local dir=$1; shift
    command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "no apt-get/dpkg on this machine" >&2; return 1; }
    fetch() { (cd "$dir" && apt-get download "$@" >/dev/null 2>&1); }
    fetch "$@" && return 0
    # A fresh machine may have no package lists yet; as root, read them once and try again.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && fetch "$@" && return 0
    echo "apt-get download $* failed (no network, or no package lists: apt-get update)" >&2
    return 1
}

# unpack_wrapper DIR PROGRAM: unpack DIR/debs/*.deb into DIR/root, write DIR/PROGRAM running it.
unpack_wrapper() {
    local dir=$1 program=$2 deb
    for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
    cat > "$dir/$program" <<WRAPPER
#!/bin/sh
LD_LIBRARY_PATH="$dir/root/usr/lib/x86_64-linux-gnu:$dir/root/usr/lib" exec "$dir/root/usr/bin/$program" "\$@"
WRAPPER
    chmod +x "$dir/$program"
}
