#!/usr/bin/env bash
# Cargo target runner for x86_64-pc-windows-gnu (see .cargo/config.toml): the rig's
# own runner, `ntcomm-rig run`, in the workspace's prefix (target/wine/prefix). It runs
# the Windows executable cargo hands us (test binaries, `cargo run` targets) in the
# prefix's Wine session (started if none runs), copies the run's driver DbgPrint lines
# to stderr, fails the run when a driver host crashed, and exits with the program's code.
#
# Environment you may set beforehand (respected, not overwritten):
#   WINEDEBUG         default "-all" for the program (the session's driver hosts log
#                     DbgPrint and module loads to target/wine/prefix/ntcomm-rig/session.log)
#   WINEDLLOVERRIDES  default "mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d"
#   NTCOMM_WINE_NO_SETUP=1  fail instead of running `cargo xtask setup` when the prefix
#                     is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/target/wine/prefix"
rig="$root/target/debug/ntcomm-rig"

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

# `cargo xtask build` builds it; a plain `cargo test` in a new checkout may not have.
if [[ ! -x "$rig" ]]; then
    (cd "$root" && "${CARGO:-cargo}" build --quiet -p ntcomm-rig) >&2
fi

exec "$rig" --prefix "$prefix" run "$@"
