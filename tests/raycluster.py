"""A real multi-node Ray cluster on this machine, for the tests: ``python tests/raycluster.py SLOTS...``.

Ray's own test cluster (:class:`ray.cluster_utils.Cluster`): one node per argument, each with
its own temp folder, one CPU and that many ``profiling_slot`` s; the first is the head. All bound
to 127.0.0.1. It prints one JSON line (the address and, per node, its id, raylet pid and slots),
then reads commands until its stdin closes, and shuts every node down: ``add SLOTS`` adds a node
and prints it as one JSON line. Run it with ``RAY_TMPDIR`` set, so nothing lands in the
machine-wide ``/tmp/ray``.

``python tests/raycluster.py hold ADDRESS`` is another job on that cluster that reserves every
profiling slot (a placement group), prints ``held`` and keeps them until its stdin closes: a
pass submitted meanwhile waits for a node, as on a busy cluster.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

COMMON = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "include_dashboard": False}


def describe(node: Any, slots: int) -> dict[str, Any]:
    return {"node_id": node.node_id, "raylet_pid": node.all_processes["raylet"][0].process.pid, "slots": slots}


def serve(slots: list[int]) -> int:
    temp = Path(os.environ["RAY_TMPDIR"])
    (temp / "ray").mkdir(parents=True, exist_ok=True)  # Ray writes the cluster's address there
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={**COMMON, "resources": {"profiling_slot": slots[0]}, "temp_dir": str(temp / "node0")},
    )
    nodes = [describe(cluster.head_node, slots[0])]
    for count in slots[1:]:
        node = cluster.add_node(**COMMON, resources={"profiling_slot": count}, temp_dir=str(temp / f"node{len(nodes)}"))
        nodes.append(describe(node, count))
    print(json.dumps({"address": cluster.address, "nodes": nodes}), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "add":
            count = int(args[0])
            node = cluster.add_node(**COMMON, resources={"profiling_slot": count}, temp_dir=str(temp / f"node{len(nodes)}"))
            nodes.append(describe(node, count))
            print(json.dumps(nodes[-1]), flush=True)
    cluster.shutdown()
    return 0


def hold(address: str) -> int:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # stay on loopback, as the supervisor does (read at import)
    import ray
    from ray.util.placement_group import placement_group

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    slots = int(ray.cluster_resources().get("profiling_slot", 0))
    group = placement_group([{"profiling_slot": 1}] * slots, strategy="SPREAD")
    ray.get(group.ready(), timeout=300)
    print("held", flush=True)
    sys.stdin.read()
    ray.shutdown()
    return 0


def main() -> int:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if sys.argv[1:2] == ["hold"]:
        return hold(sys.argv[2])
    return serve([int(a) for a in sys.argv[1:]] or [1, 1])


if __name__ == "__main__":
    sys.exit(main())
