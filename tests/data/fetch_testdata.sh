#!/usr/bin/env bash
# Fetch real sample data that ships inside packages, for the `realdata` tests.
#
# Usage: bash tests/data/fetch_testdata.sh DEST
#
# Idempotent: a file already in DEST is not fetched again. Locally a fetch that cannot run
# (offline, no apt) prints "skipped ..." and the tests that need the file skip with a clear
# reason; under CI=true (set by GitHub Actions and most CI systems) it fails the build instead,
# so CI cannot pass without running the real-format tests.
#   - era5-levels-members.grib / .nc: ERA5 ensemble on pressure levels, from the cfgrib sdist
#     (PyPI, tests/sample-data/).
#   - test_stageiv_xyt.nc: NCEP Stage IV precipitation on a curvilinear grid, from the Debian
#     package r-cran-stars (no R install: the .deb is only unpacked).
#   - azurite/: Microsoft's Azure Storage emulator (npm azurite), which the abfs:// tests of
#     tests/data/test_remote_azure_gcs.py run; needs node and npm.
set -u

DEST="${1:-.testdata}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3 || echo python3)"
CFGRIB_VERSION="0.9.15.1"
AZURITE_VERSION="3.37.0"

fetch_cfgrib() {
    if [ -s "$DEST/era5-levels-members.grib" ] && [ -s "$DEST/era5-levels-members.nc" ]; then
        echo "have $DEST/era5-levels-members.{grib,nc}"
        return 0
    fi
    mkdir -p "$DEST/dl"
    "$PY" -m pip download -q --no-deps --no-binary :all: "cfgrib==$CFGRIB_VERSION" \
        -d "$DEST/dl" || return 1
    local sdist tmp
    sdist="$(ls "$DEST"/dl/cfgrib-"$CFGRIB_VERSION".tar.gz 2>/dev/null | head -n 1)"
    [ -n "$sdist" ] || return 1
    tmp="$(mktemp -d)"
    tar -xzf "$sdist" -C "$tmp" --wildcards \
        '*/tests/sample-data/era5-levels-members.grib' \
        '*/tests/sample-data/era5-levels-members.nc' || { rm -rf "$tmp"; return 1; }
    cp "$tmp"/*/tests/sample-data/era5-levels-members.grib "$DEST/" \
        && cp "$tmp"/*/tests/sample-data/era5-levels-members.nc "$DEST/"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

fetch_stageiv() {
    if [ -s "$DEST/test_stageiv_xyt.nc" ]; then
        echo "have $DEST/test_stageiv_xyt.nc"
        return 0
    fi
    command -v apt-get >/dev/null && command -v dpkg >/dev/null || return 1
    mkdir -p "$DEST/dl"
    local deb tmp
    if ! (cd "$DEST/dl" && apt-get download -q r-cran-stars >/dev/null 2>&1); then
        [ "$(id -u)" = "0" ] || return 1
        apt-get update -qq >/dev/null 2>&1 || return 1
        (cd "$DEST/dl" && apt-get download -q r-cran-stars >/dev/null 2>&1) || return 1
    fi
    deb="$(ls "$DEST"/dl/r-cran-stars_*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || return 1
    tmp="$(mktemp -d)"
    dpkg -x "$deb" "$tmp" || { rm -rf "$tmp"; return 1; }
    cp "$tmp/usr/lib/R/site-library/stars/nc/test_stageiv_xyt.nc" "$DEST/"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

fetch_azurite() {
    local bin="$DEST/azurite/node_modules/.bin/azurite-blob"
    if [ -x "$bin" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" \
            "$DEST/azurite/node_modules/azurite/package.json" 2>/dev/null; then
        echo "have $bin ($AZURITE_VERSION)"
        return 0
    fi
    command -v npm >/dev/null || return 1
    # azurite declares node >= 22; its blob service runs on node 20 too (checked), so the
    # engine warning is not an error here.
    npm install --prefix "$DEST/azurite" --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION" >/dev/null || return 1
    [ -x "$bin" ]
}

missing=0
fetch_cfgrib || { echo "skipped cfgrib sample data (pip download of cfgrib==$CFGRIB_VERSION failed)"; missing=1; }
fetch_stageiv || { echo "skipped Stage IV sample (apt-get download r-cran-stars failed)"; missing=1; }
fetch_azurite || { echo "skipped Azurite (npm install azurite@$AZURITE_VERSION failed)"; missing=1; }
if [ "$missing" = 1 ] && [ "${CI:-}" = "true" ]; then
    echo "error: CI=true and sample data or Azurite is missing in $DEST: the real-format reader or Azure tests would not run" >&2
    exit 1
fi
exit 0
