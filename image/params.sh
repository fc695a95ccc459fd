# Parameters shared by image/build.sh and image/test.sh (sourced, from the repository's top).
# Each can be set in the environment; image/README.md explains them.
DIST=${DIST:-ubuntu}
case $DIST in
  ubuntu)
    SUITE=${SUITE:-noble}
    MIRROR=${MIRROR:-http://archive.ubuntu.com/ubuntu}
    SECURITY_MIRROR=${SECURITY_MIRROR-$MIRROR}
    COMPONENTS=${COMPONENTS:-main universe}
    KEYRING=${KEYRING:-/usr/share/keyrings/ubuntu-archive-keyring.gpg} ;;
  debian)
    SUITE=${SUITE:-bookworm}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    SECURITY_MIRROR=${SECURITY_MIRROR-http://deb.debian.org/debian-security}
    COMPONENTS=${COMPONENTS:-main}
    KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg} ;;
  *) echo "DIST=$DIST: expected ubuntu or debian" >&2; exit 1 ;;
esac
version_of() { [ ! -f "$1" ] || sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$1" | head -n 1; }
VERSION=${VERSION:-$(version_of daemon/Cargo.toml)}
VERSION=${VERSION:-$(version_of Cargo.toml)}
VERSION=${VERSION:-0.0.0}
WITH_SITED=${WITH_SITED:-1}
OUT=${OUT:-out}
# The image's name: out/<name>.raw, .qcow2, .raw.zst. An image without sited says so.
name=sited-$VERSION-$DIST
[ "$WITH_SITED" = 1 ] || name=$name-nosited
