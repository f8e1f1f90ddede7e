"""A private 3-broker Kafka cluster for fault tests (scripts/kafka.sh with KAFKA_BROKERS=3 and KAFKA_DIR, on
free ports, data in a tmp dir), and what the tests ask of it: who leads a partition, who is the active
KRaft controller, is every replica in sync."""

from __future__ import annotations

import json
import os

from confluent_kafka.admin import AdminClient

from cofi.devtools.pipeline import wait_for
from tests.support.recovery import PrivateServer, pid_gone
from tests.support.servers import free_port

BROKERS = 3


def distinct_free_ports(n: int, taken: set[int]) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        p = free_port()
        if p not in taken and p not in out:
            out.append(p)
    return out


class PrivateKafkaCluster(PrivateServer):
    script, dir_var, pid_name = "kafka.sh", "KAFKA_DIR", "kafka-1.pid"

    def ports_env(self) -> dict[str, str]:
        self.ports = [self.port, *distinct_free_ports(BROKERS - 1, {self.port})]
        self.controller_ports = distinct_free_ports(BROKERS, set(self.ports))
        return {"KAFKA_BROKERS": str(BROKERS), "KAFKA_PORTS": ",".join(map(str, self.ports)),
                "KAFKA_CONTROLLER_PORTS": ",".join(map(str, self.controller_ports)),
                "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m", "KAFKA_STOP_TIMEOUT": "30", "KAFKA_START_TIMEOUT": "240"}

    def start(self) -> None:
        self._run("start", timeout=600)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def nodes(self) -> range:
        return range(1, BROKERS + 1)

    def pid(self, node: int) -> int | None:
        path = self.dir / "run" / f"kafka-{node}.pid"
        return int(path.read_text().strip()) if path.exists() else None

    def kill_broker(self, node: int) -> None:
        """SIGKILL one broker (a crash, not a shutdown)."""
        pid = self.pid(node)
        assert pid is not None, f"broker {node} is not running"
        os.kill(pid, 9)
        wait_for(lambda: pid_gone(pid), 30, f"broker {node} (pid {pid}) gone")

    def start_broker(self, node: int) -> None:
        self._run("start-broker", str(node), timeout=300)

    def rolling_restart(self) -> str:
        """Each broker in turn: clean stop, start, wait until every replica is back in sync."""
        return self._run("rolling-restart", timeout=900)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def leaders(self, topic: str) -> dict[int, int]:
        """partition -> the node leading it (-1 while none does)."""
        md = self.admin().list_topics(topic, timeout=10).topics[topic]
        return {p: pm.leader for p, pm in md.partitions.items()}

    def active_controller(self) -> int:
        """The KRaft quorum leader, as the live voters last persisted it (the highest epoch wins).

        Kafka's metadata answers name a random broker as "controller" in KRaft mode; the quorum state
        each voter keeps in its metadata log folder is where the real leader is written down."""
        best: tuple[int, int] = (-1, -1)
        for node in self.nodes():
            if self.pid(node) is None:
                continue
            state = self.dir / "cluster" / f"broker-{node}" / "data" / "__cluster_metadata-0" / "quorum-state"
            try:
                doc = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if doc.get("leaderId", -1) >= 0:
                best = max(best, (int(doc["leaderEpoch"]), int(doc["leaderId"])))
        return best[1]

    def out_of_sync(self) -> list[str]:
        """Partitions (every topic, internal ones included) without a leader or with a replica out of sync."""
        md = self.admin().list_topics(timeout=10)
        missing = [f"broker {n}" for n in self.nodes() if n not in md.brokers]
        return missing + [f"{t}[{p}]" for t, tm in md.topics.items() for p, pm in tm.partitions.items()
                          if pm.leader < 0 or len(pm.isrs) < len(pm.replicas)]

    def wait_in_sync(self, timeout: float = 300) -> None:
        wait_for(lambda: not self.out_of_sync(), timeout, "every replica in sync",
                 lambda: f"behind: {self.out_of_sync()[:10]}", every=1)
