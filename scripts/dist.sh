#!/usr/bin/env bash
# Builds and packages kubectl-falco-verify the way krew installs it (see krew/README.md).
#
#   scripts/dist.sh [--target TRIPLE]
#       cargo build --release --locked for the host (or TRIPLE), then packs
#       dist/kubectl-falco-verify_v<version>_<os>_<arch>.tar.gz, writes <archive>.sha256 and
#       renders dist/plugin.yaml from krew/.krew.yaml.
#   scripts/dist.sh --package-only BINARY OUTDIR
#       packs an already built BINARY (kubectl_complete-falco_verify is taken from the same
#       directory) into OUTDIR the same way, without building; writes OUTDIR/plugin.yaml.
#   scripts/dist.sh --render-only DIR
#       renders DIR/plugin.yaml from the DIR/*.sha256 of all five platforms (the release
#       workflow, once every archive is built); fails if one is missing.
#   scripts/dist.sh --render-partial DIR
#       the same with the platforms whose DIR/*.sha256 is there (the committed plugin.yaml).
#
# <os>/<arch> use Go's GOOS/GOARCH names (what krew's selectors match); DIST_OS and DIST_ARCH
# override them, DIST_GZIP_LEVEL sets the compression (default 9; tests use 1). CARGO_TARGET_DIR
# is honoured. In plugin.yaml, a platform whose archive is not in the output directory is left
# out (krew rejects a placeholder sha256); --render-only with all five lists them all.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLUGIN=kubectl-falco-verify          # archive prefix (the repository's name)
BIN=kubectl-falco_verify             # what kubectl runs for `kubectl falco-verify`
HOOK=kubectl_complete-falco_verify   # kubectl's completion hook for it
TEMPLATE="$ROOT/krew/.krew.yaml"

die() { echo "dist.sh: $*" >&2; exit 1; }

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# The version of the [package] in Cargo.toml.
version() {
  awk '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' \
    "$ROOT/Cargo.toml"
}

host_os() {
  case "$(uname -s)" in
    Linux) echo linux ;;
    Darwin) echo darwin ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT) echo windows ;;
    *) die "unknown OS $(uname -s): set DIST_OS" ;;
  esac
}

host_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "unknown architecture $(uname -m): set DIST_ARCH" ;;
  esac
}

# Go names for a Rust target triple.
triple_os() {
  case "$1" in
    *-linux-*) echo linux ;; *-apple-darwin) echo darwin ;; *-windows-*) echo windows ;;
    *) die "unsupported target $1" ;;
  esac
}
triple_arch() {
  case "$1" in
    x86_64-*) echo amd64 ;; aarch64-*) echo arm64 ;; *) die "unsupported target $1" ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# package BINARY OUTDIR OS ARCH: writes the archive and its .sha256; prints the archive's path.
package() {
  local binary=$1 outdir=$2 os=$3 arch=$4
  local exe=""
  [ "$os" = windows ] && exe=.exe
  local dir hook
  dir=$(cd "$(dirname "$binary")" && pwd)
  hook="$dir/$HOOK$exe"
  [ -f "$binary" ] || die "no binary at $binary"
  [ -f "$hook" ] || die "no $HOOK$exe next to $binary (build both binaries: cargo build --bins)"
  [ -f "$ROOT/LICENSE" ] || die "no LICENSE at the repository root"
  [ -f "$ROOT/README.md" ] || die "no README.md at the repository root"

  local v archive stage
  v=v$(version)
  archive="${PLUGIN}_${v}_${os}_${arch}.tar.gz"
  mkdir -p "$outdir"
  outdir=$(cd "$outdir" && pwd)
  stage=$(mktemp -d "${TMPDIR:-/tmp}/falco-verify-dist.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$stage'" EXIT

  cp "$binary" "$stage/$BIN$exe"
  cp "$hook" "$stage/$HOOK$exe"
  chmod 0755 "$stage/$BIN$exe" "$stage/$HOOK$exe"
  cp "$ROOT/LICENSE" "$ROOT/README.md" "$stage/"
  # The man page comes from the binary itself (clap_mangen), so it always matches its flags.
  "$binary" man >"$stage/$BIN.1" || die "$binary man failed (a binary for another platform?)"
  chmod 0644 "$stage/LICENSE" "$stage/README.md" "$stage/$BIN.1"

  local files=("$BIN$exe" "$HOOK$exe" "$BIN.1" LICENSE README.md)
  # Same bytes for the same inputs: fixed order, owner and times where tar allows it.
  local tar_opts=()
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar_opts=(--owner=0 --group=0 --numeric-owner --mtime=@"${SOURCE_DATE_EPOCH:-0}")
  fi
  tar -C "$stage" ${tar_opts[@]+"${tar_opts[@]}"} -cf - "${files[@]}" | gzip -n -"${DIST_GZIP_LEVEL:-9}" >"$outdir/$archive"
  (cd "$outdir" && printf '%s  %s\n' "$(sha256_of "$archive")" "$archive" >"$archive.sha256")
  rm -rf "$stage"
  trap - EXIT
  echo "$outdir/$archive"
}

# render DIR STRICT: DIR/plugin.yaml from the template, with the sha256 of every archive that
# has a DIR/<archive>.sha256; STRICT=1 fails when one is missing.
render() {
  local dir=$1 strict=$2 v
  v=v$(version)
  [ -f "$TEMPLATE" ] || die "no template at $TEMPLATE"
  cat "$dir"/*.sha256 2>/dev/null >"$dir/.sums" || true
  awk -v tag="$v" -v strict="$strict" '
    # A platform is buffered from its "  - selector:" line to the next item or the end of the
    # list, and printed only when its archive has a sum: krew rejects a placeholder hash.
    function flush() { if (inplat && keep) printf "%s", buf; buf = ""; inplat = 0; keep = 1 }
    function out(line) { if (inplat) buf = buf line "\n"; else print line }
    FNR == NR { if (NF >= 2) { f = $2; sub(/^\*/, "", f); sha[f] = $1 }; next }
    {
      gsub(/[{][{] *\.TagName *[}][}]/, tag)
      if (inlist && $0 ~ /^  - /) { flush(); inplat = 1 }
      else if (inlist && $0 !~ /^    / && $0 !~ /^ *$/) { flush(); inlist = 0 }
      if ($0 ~ /^  platforms: *$/) { inlist = 1; print; next }
      if ($0 ~ /^ *[{][{] *addURIAndSha "[^"]+" +\.TagName *[}][}] *$/) {
        indent = $0; sub(/[^ ].*$/, "", indent)
        url = $0; sub(/^[^"]*"/, "", url); sub(/".*$/, "", url)
        file = url; sub(/.*\//, "", file)
        out(indent "uri: " url)
        if (file in sha) {
          out(indent "sha256: " sha[file])
        } else if (strict) {
          print "dist.sh: no " file ".sha256 in the output directory" > "/dev/stderr"
          failed = 1; exit 1
        } else {
          keep = 0
          listed_out = listed_out " " file
        }
        next
      }
      if ($0 ~ /[{][{]/) { print "dist.sh: unknown template action: " $0 > "/dev/stderr"; failed = 1; exit 1 }
      out($0)
    }
    END {
      if (!failed) flush()
      if (listed_out != "") print "dist.sh: left out (no archive here; the release workflow adds them):" listed_out > "/dev/stderr"
      if (failed) exit 1
    }
  ' "$dir/.sums" "$TEMPLATE" | grep -Ev '^#( |$)' >"$dir/plugin.yaml.tmp" || {
    rm -f "$dir/.sums" "$dir/plugin.yaml.tmp"
    die "rendering plugin.yaml failed"
  }
  {
    echo "# Rendered by scripts/dist.sh from krew/.krew.yaml. Do not edit: change the template."
    cat "$dir/plugin.yaml.tmp"
  } >"$dir/plugin.yaml"
  rm -f "$dir/.sums" "$dir/plugin.yaml.tmp"
  echo "$dir/plugin.yaml"
}

main() {
  case "${1:-}" in
    -h | --help)
      usage
      ;;
    --package-only)
      [ $# -eq 3 ] || die "usage: dist.sh --package-only BINARY OUTDIR"
      local os=${DIST_OS:-$(host_os)} arch=${DIST_ARCH:-$(host_arch)}
      package "$2" "$3" "$os" "$arch"
      render "$(cd "$3" && pwd)" 0
      ;;
    --render-only)
      [ $# -eq 2 ] || die "usage: dist.sh --render-only DIR"
      render "$(cd "$2" && pwd)" 1
      ;;
    --render-partial)
      [ $# -eq 2 ] || die "usage: dist.sh --render-partial DIR"
      render "$(cd "$2" && pwd)" 0
      ;;
    "" | --target)
      local target="" os arch
      if [ "${1:-}" = --target ]; then
        [ $# -eq 2 ] || die "usage: dist.sh --target TRIPLE"
        target=$2
      fi
      if [ -n "$target" ]; then
        os=${DIST_OS:-$(triple_os "$target")}
        arch=${DIST_ARCH:-$(triple_arch "$target")}
      else
        os=${DIST_OS:-$(host_os)}
        arch=${DIST_ARCH:-$(host_arch)}
      fi
      local exe="" target_dir out
      [ "$os" = windows ] && exe=.exe
      target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
      (
        cd "$ROOT"
        if [ -n "$target" ]; then
          cargo build --release --locked --bins --target "$target"
        else
          cargo build --release --locked --bins
        fi
      )
      out="$target_dir/${target:+$target/}release/$BIN$exe"
      local archive
      archive=$(package "$out" "$ROOT/dist" "$os" "$arch")
      render "$ROOT/dist" 0 >/dev/null
      echo "binary:   $out ($(wc -c <"$out" | tr -d ' ') bytes)"
      echo "archive:  $archive ($(wc -c <"$archive" | tr -d ' ') bytes)"
      echo "sha256:   $(cut -d' ' -f1 "$archive.sha256")"
      echo "manifest: $ROOT/dist/plugin.yaml"
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
