#!/usr/bin/env bash
# Builds the two packages of ringgate from a release build:
#
#   bash packaging/build-packages.sh
#
#   -> target/packages/ringgate_<version>_amd64.deb      (dpkg-deb)
#   -> target/packages/ringgate-<version>.x86_64.rpm     (rpmbuild, from the `rpm` package)
#
# The binary is `cargo build --release`: the release profile in Cargo.toml is lto = "fat",
# codegen-units = 1 (debug = 1 for line tables, stripped from the packaged binary here).
# Both packages install:
#   /usr/bin/ringgate
#   /usr/share/man/man8/ringgate.8.gz                     (man 8 ringgate)
#   /lib/systemd/system/ringgate.service (deb) | /usr/lib/systemd/system/ringgate.service (rpm)
#   /etc/default/ringgate (deb conffile) | /etc/sysconfig/ringgate (rpm %config(noreplace))
#   /var/lib/ringgate                                     (state dir, owned by user ringgate)
#   /usr/share/doc/ringgate/{README.md,CHANGELOG.md}
# and their maintainer scripts create the system user and group `ringgate`.
#
# Options:  --no-build   package the release binary already built
# Env:      CARGO_TARGET_DIR (where cargo builds; default target/), OUT_DIR (where the packages
#           go; default target/packages)
# Needs:    cargo, dpkg-deb, rpmbuild, gzip, objcopy, objdump (scripts/install-test-deps.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "build-packages: unknown argument $arg" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb rpmbuild gzip objcopy objdump; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "build-packages: $tool is missing: run bash scripts/install-test-deps.sh" >&2; exit 1; }
done

target_dir=${CARGO_TARGET_DIR:-$root/target}
out_dir=${OUT_DIR:-$root/target/packages}
if [ "$build" = 1 ]; then
    echo "build-packages: cargo build --release (lto = \"fat\", codegen-units = 1)"
    cargo build --release --bin ringgate
fi
bin=$target_dir/release/ringgate
[ -x "$bin" ] || { echo "build-packages: no release binary at $bin" >&2; exit 1; }

version=$("$bin" --version | awk '{print $2}')
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [ "$version" != "$crate_version" ]; then
    echo "build-packages: $bin says $version but Cargo.toml says $crate_version (stale build?)" >&2
    exit 1
fi
# The deb's Depends, from the libraries the binary links (what dpkg-shlibdeps would find,
# without needing a debian/ directory): libc6 at the newest glibc symbol version used, and
# libgcc-s1 for the unwinder. A new library must be added here on purpose.
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
depends="libc6 (>= $glibc)"
for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
    case "$lib" in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1) ;;
        libgcc_s.so.1) depends="$depends, libgcc-s1 (>= 4.2)" ;;
        *) echo "build-packages: the binary links $lib: add its Debian package to build-packages.sh" >&2; exit 1 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
rm -f "$out_dir/ringgate_${version}_amd64.deb" "$out_dir/ringgate-${version}.x86_64.rpm"

# Files shared by both packages, staged once.
stage=$work/stage
install -d "$stage/usr/bin" "$stage/usr/share/man/man8" "$stage/usr/share/doc/ringgate" "$stage/default"
objcopy --strip-debug "$bin" "$stage/usr/bin/ringgate"
chmod 0755 "$stage/usr/bin/ringgate"
gzip -9 -n -c man/ringgate.8 >"$stage/usr/share/man/man8/ringgate.8.gz"
install -m 0644 packaging/ringgate.service "$stage/ringgate.service"
install -m 0644 packaging/default/ringgate "$stage/default/ringgate"
install -m 0644 README.md CHANGELOG.md "$stage/usr/share/doc/ringgate/"

# --- .deb -----------------------------------------------------------------------------------
deb=$work/deb
install -d -m 0755 "$deb/DEBIAN" "$deb/usr/bin" "$deb/usr/share/man/man8" "$deb/usr/share/doc/ringgate" \
    "$deb/lib/systemd/system" "$deb/etc/default" "$deb/var/lib/ringgate"
install -m 0755 "$stage/usr/bin/ringgate" "$deb/usr/bin/ringgate"
install -m 0644 "$stage/usr/share/man/man8/ringgate.8.gz" "$deb/usr/share/man/man8/"
install -m 0644 "$stage"/usr/share/doc/ringgate/* "$deb/usr/share/doc/ringgate/"
install -m 0644 "$stage/ringgate.service" "$deb/lib/systemd/system/ringgate.service"
install -m 0644 "$stage/default/ringgate" "$deb/etc/default/ringgate"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$deb/DEBIAN/"
echo /etc/default/ringgate >"$deb/DEBIAN/conffiles"
installed_size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@DEPENDS@/$depends/" \
    packaging/deb/control.in >"$deb/DEBIAN/control"
(cd "$deb" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$deb/DEBIAN/control" "$deb/DEBIAN/conffiles" "$deb/DEBIAN/md5sums"
deb_file=$out_dir/ringgate_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$deb" "$deb_file" >/dev/null
echo "build-packages: $deb_file"

# --- .rpm -----------------------------------------------------------------------------------
top=$work/rpmbuild
mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
sed -e "s/@VERSION@/$version/" packaging/rpm/ringgate.spec.in >"$top/SPECS/ringgate.spec"
rpmbuild -bb --quiet --target x86_64 \
    --define "_topdir $top" \
    --define "stagedir $stage" \
    --define "_rpmdir $out_dir" \
    "$top/SPECS/ringgate.spec" 2>&1 | grep -v -e 'does not exist - using root' || true
rpm_file=$out_dir/ringgate-${version}.x86_64.rpm
[ -f "$rpm_file" ] || { echo "build-packages: rpmbuild did not produce $rpm_file" >&2; exit 1; }
echo "build-packages: $rpm_file"
