#!/usr/bin/env bash
# Cargo target runner for x86_64-pc-windows-gnu (see .cargo/config.toml): runs the
# Windows executable cargo hands us (test binaries, `cargo run` targets) under Wine,
# in the workspace's own prefix (target/wine/prefix), and exits with its exit code.
#
# Environment you may set beforehand (respected, not overwritten):
#   WINEDEBUG         default "-all" (use e.g. "-all,warn+debugstr" to see driver DbgPrint;
#                     it only reaches services if set when the wineserver starts)
#   WINEDLLOVERRIDES  default "mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d"
#                     (no Mono/Gecko installer prompts, no desktop-menu spam, no winedbg:
#                     under Wine 8 winedbg crashes and the crashed program then exits 0;
#                     without it a crash exits with the exception code's low byte, e.g.
#                     5; setup also disables winedbg in the prefix registry)
#   NTCOMM_WINE_NO_SETUP=1  fail instead of running `cargo xtask setup` when the prefix
#                     is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/target/wine/prefix"

export WINEPREFIX="$prefix"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d}"

if [[ ! -f "$prefix/system.reg" ]]; then
    if [[ "${NTCOMM_WINE_NO_SETUP:-}" == 1 ]]; then
        echo "wine-runner: no Wine prefix at $prefix; run 'cargo xtask setup' first" >&2
        exit 127
    fi
    echo "wine-runner: no Wine prefix at $prefix; running 'cargo xtask setup'" >&2
    (cd "$root" && "${CARGO:-cargo}" xtask setup) >&2 || {
        echo "wine-runner: 'cargo xtask setup' failed; cannot run $1 under Wine" >&2
        exit 127
    }
fi

if ! command -v wine >/dev/null 2>&1; then
    echo "wine-runner: 'wine' is not on PATH; run 'cargo xtask setup'" >&2
    exit 127
fi

# wine exits with the Windows process's exit code (a failing Rust test binary: 101).
exec wine "$@"
