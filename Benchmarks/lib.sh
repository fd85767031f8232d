# Shared by the benchmark scripts (sourced, not run).
#
# bench_result WORK UNIT INETKIT PEER PEER_VALUE [HIGHER]
#   Records one row for Benchmarks/all: when BENCH_RESULTS names a file, appends one JSON line
#   {"work", "unit", "inetkit", "peer", "peer_value", "ratio"} to it. The ratio is
#   inetkit / peer_value, or peer_value / inetkit when HIGHER is "lower" (latencies, times).
#   Scripts keep printing their own tables; this only collects.
bench_result() {
  [ -n "${BENCH_RESULTS:-}" ] || return 0
  python3 - "$BENCH_RESULTS" "$@" <<'PY'
import json, sys
path, work, unit, inetkit, peer, peer_value = sys.argv[1:7]
better = sys.argv[7] if len(sys.argv) > 7 else "higher"
def number(text):
    try:
        return float(text)
    except ValueError:
        return None
a, b = number(inetkit), number(peer_value)
ratio = None
if a is not None and b is not None and a > 0 and b > 0:
    ratio = a / b if better == "higher" else b / a
with open(path, "a") as f:
    f.write(json.dumps({"work": work, "unit": unit, "inetkit": a, "peer": peer, "peer_value": b,
                        "ratio": None if ratio is None else round(ratio, 3)}) + "\n")
PY
}

# ratio A B: A / B with two decimals (0 when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# free_port: a port free for TCP and UDP on 127.0.0.1.
free_port() { python3 -c 'import socket
t=socket.socket(); t.bind(("127.0.0.1",0)); p=t.getsockname()[1]
u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1",p)); print(p)'; }

# paired_ratio COMMAND A B PAIRS: what one setting costs, measured so that this VM's drift
# (±10% between runs of the same server) cancels: runs "COMMAND A" and "COMMAND B" back to back
# PAIRS times, alternating which goes first, and prints the median of the per-pair ratios A/B,
# then the median of A's and of B's first numbers. COMMAND prints its figure first on stdout.
paired_ratio() {
  local command=$1 a=$2 b=$3 pairs=$4 ratios="" as="" bs="" x y
  for i in $(seq "$pairs"); do
    if [ $((i % 2)) = 1 ]; then
      x=$($command "$a" | awk '{print $1}'); y=$($command "$b" | awk '{print $1}')
    else
      y=$($command "$b" | awk '{print $1}'); x=$($command "$a" | awk '{print $1}')
    fi
    as+="$x "; bs+="$y "
    ratios+="$(awk -v a="$x" -v b="$y" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }') "
  done
  # shellcheck disable=SC2086
  printf '%.2f %s %s\n' "$(median $ratios)" "$(median $as)" "$(median $bs)"
}
