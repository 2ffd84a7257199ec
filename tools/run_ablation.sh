#!/usr/bin/env bash
# Run the generalisation ablation (configs/ablation/*.yaml) one config after another, each
# continued with --resume when its run folder already holds a last.pt, so a stopped machine
# picks up where it left off. Usage: bash tools/run_ablation.sh [config.yaml ...]
set -uo pipefail
cd "$(dirname "$0")/.."
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/ablation/ft_ferplus.yaml configs/ablation/ft_control.yaml configs/ablation/ft_degrade.yaml configs/ablation/ft_ferplus_degrade.yaml configs/ablation/ft_degrade_balance.yaml configs/ablation/ft_ferplus_degrade_balance.yaml)
for cfg in "${configs[@]}"; do
    out=$(sed -n 's/^output: *//p' "$cfg")
    log="$out.log"
    mkdir -p "$(dirname "$out")"
    if [ -f "$out/last.pt" ]; then flag=--resume; else flag=; fi
    echo "== $cfg ($out) $flag $(date -u +%FT%TZ)" | tee -a "$log"
    resemotenet train --config "$cfg" $flag --no-progress >>"$log" 2>&1 || echo "== $cfg failed (see $log)"
done
