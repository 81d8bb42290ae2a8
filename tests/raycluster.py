"""A real multi-node Ray cluster on this machine, for the tests: ``python tests/raycluster.py SLOTS...``.

Ray's own test cluster (:class:`ray.cluster_utils.Cluster`): one node per argument, each with
its own temp folder, one CPU and that many ``profiling_slot`` s; the first is the head. All bound
to 127.0.0.1. It prints one JSON line (the address and, per node, its id and raylet pid), then
waits until its stdin closes and shuts every node down. Run it with ``RAY_TMPDIR`` set, so
nothing lands in the machine-wide ``/tmp/ray``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp = Path(os.environ["RAY_TMPDIR"])
    (temp / "ray").mkdir(parents=True, exist_ok=True)  # Ray writes the cluster's address there
    from ray.cluster_utils import Cluster

    slots = [int(a) for a in sys.argv[1:]] or [1, 1]
    common = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "include_dashboard": False}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**common, "resources": {"profiling_slot": slots[0]}, "temp_dir": str(temp / "node0")},
    )
    nodes = [cluster.head_node]
    for i, count in enumerate(slots[1:], start=1):
        nodes.append(cluster.add_node(**common, resources={"profiling_slot": count}, temp_dir=str(temp / f"node{i}")))
    described = [{"node_id": n.node_id, "raylet_pid": n.all_processes["raylet"][0].process.pid} for n in nodes]
    print(json.dumps({"address": cluster.address, "nodes": described}), flush=True)
    sys.stdin.read()
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
