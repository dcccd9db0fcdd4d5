"""The capacity plan's measurements (docs/capacity.md): the CPU each component of the stack
spends per event at a fixed rate, and the bytes an event takes in Kafka and in the warehouse."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench import stack
from core.config import Settings
from etl.warehouse import Warehouse

#: The development services that ``scripts/services.sh`` starts, by their pid files.
SERVICES = ("kafka", "redis", "auth")


def service_pids(var_dir: Path) -> dict[str, Callable[[], list[int]]]:
    """For each running development service, a function listing its processes now."""
    found: dict[str, Callable[[], list[int]]] = {}
    for name in SERVICES:
        try:
            pid = int((var_dir / "run" / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        found[name] = lambda pid=pid: [pid, *stack.descendants_of(pid)]
    return found


@dataclass(frozen=True)
class CpuShare:
    """CPU seconds of one component over a measured interval."""

    component: str
    cpu_s: float


class ComponentMeter:
    """CPU seconds of each component (a name and a function listing its pids) between its
    creation and :meth:`read`, plus everything else the machine ran (``other``)."""

    def __init__(self, components: Mapping[str, Callable[[], list[int]]]) -> None:
        self._components = dict(components)
        self._start = {name: stack.cpu_seconds(pids()) for name, pids in components.items()}
        self._busy, _ = stack.machine_busy()

    def read(self) -> list[CpuShare]:
        shares = [
            CpuShare(name, max(0.0, stack.cpu_seconds(pids()) - self._start[name]))
            for name, pids in self._components.items()
        ]
        busy, _ = stack.machine_busy()
        other = (busy - self._busy) - sum(s.cpu_s for s in shares)
        return [*shares, CpuShare("other", max(0.0, other))]


def kafka_bytes(data_dir: Path, topic: str) -> int:
    """Bytes of ``topic``'s log segments on this broker (every partition's ``*.log``)."""
    return sum(
        segment.stat().st_size
        for partition in data_dir.glob(f"{topic}-*")
        if partition.name.removeprefix(f"{topic}-").isdigit()
        for segment in partition.glob("*.log")
    )


@dataclass(frozen=True)
class TableBytes:
    """One table's active parts: rows, and bytes on disk before and after compression."""

    table: str
    rows: int
    compressed: int
    uncompressed: int


def warehouse_bytes(settings: Settings, tables: list[str] | None = None) -> list[TableBytes]:
    """Rows and bytes of the warehouse's event tables (``tables``, or every table with rows)."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session(readonly=True) as client:
        result = client.query(
            "SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
            "FROM system.parts WHERE active AND database = {db:String} GROUP BY table "
            "ORDER BY table",
            parameters={"db": warehouse.database},
        )
    return [
        TableBytes(table, int(rows), int(compressed), int(uncompressed))
        for table, rows, compressed, uncompressed in result.result_rows
        if rows and (tables is None or table in tables)
    ]


#: What the specification sizes: 660 events/s at peak. The plan's scales are multiples of it.
SCALES = (1, 10, 1000)
#: Share of a core a component is planned to use at peak: room for bursts, for a replica to
#: fail (N+1) and for the tail latency, which grows long before a core is full.
PEAK_UTILISATION = 0.5
#: Cores of the machine each API replica, broker or ETL process is planned on.
CORES_PER_NODE = 2
#: Kafka keeps this many days of events (a failed ETL can be caught up), on this many replicas.
KAFKA_RETENTION_DAYS = 7
KAFKA_REPLICAS = 3
#: ClickHouse keeps each row on this many replicas.
WAREHOUSE_REPLICAS = 2


@dataclass(frozen=True)
class Measured:
    """The bench's figures a deployment is sized from."""

    cpu_ms_per_event: dict[str, float]  # by component, at the seed rate
    kafka_bytes_per_event: float
    warehouse_bytes_per_event: float  # compressed, all event tables
    etl_rows_per_s: float  # one ETL process, one pass of the largest batch


@dataclass(frozen=True)
class Scale:
    """One scale of the plan and the numbers that size it."""

    times: int
    events_per_s: int
    api_cores: float
    api_nodes: int
    broker_cores: float
    kafka_mb_per_s: float
    kafka_retained_gb: float
    partitions: int
    etl_processes: int
    warehouse_gb_per_day: float


def _nodes(cores: float) -> int:
    """Machines of :data:`CORES_PER_NODE` for ``cores`` at peak, plus one to lose (N+1)."""
    return max(1, -(-int(cores * 1000) // (CORES_PER_NODE * 1000))) + 1


def plan(measured: Measured, base_rate: int) -> list[Scale]:
    """Each scale of :data:`SCALES`: cores, machines, Kafka bandwidth and storage,
    partitions, ETL processes and warehouse storage at ``base_rate`` times the scale.

    Storage per day assumes the peak lasts all day: an upper bound, the daily average of a
    cinema being a fraction of its evening peak.
    """
    scales = []
    for times in SCALES:
        rate = base_rate * times
        api_cores = rate * measured.cpu_ms_per_event.get("api", 0.0) / 1000 / PEAK_UTILISATION
        broker_cores = rate * measured.cpu_ms_per_event.get("kafka", 0.0) / 1000 / PEAK_UTILISATION
        etl_processes = max(
            1, -(-int(rate * 1000) // int(measured.etl_rows_per_s * PEAK_UTILISATION * 1000))
        )
        kafka_bytes_s = rate * measured.kafka_bytes_per_event
        scales.append(
            Scale(
                times=times,
                events_per_s=rate,
                api_cores=api_cores,
                api_nodes=_nodes(api_cores),
                broker_cores=broker_cores,
                kafka_mb_per_s=kafka_bytes_s / 1e6,
                kafka_retained_gb=kafka_bytes_s
                * 86400
                * KAFKA_RETENTION_DAYS
                * KAFKA_REPLICAS
                / 1e9,
                # Each ETL process of the group owns at least one partition, and twice as
                # many partitions as processes lets the group grow without re-partitioning.
                partitions=max(6, 2 * etl_processes),
                etl_processes=etl_processes,
                warehouse_gb_per_day=rate
                * measured.warehouse_bytes_per_event
                * 86400
                * WAREHOUSE_REPLICAS
                / 1e9,
            )
        )
    return scales


def plan_table(scales: list[Scale]) -> list[str]:
    """The plan as a markdown table, one column a scale."""
    header = "| | " + " | ".join(f"{s.times:,}x ({s.events_per_s:,} events/s)" for s in scales)
    rows = [
        ("API cores at peak", lambda s: f"{s.api_cores:,.1f}"),
        (f"API machines ({CORES_PER_NODE} cores, N+1)", lambda s: f"{s.api_nodes:,}"),
        ("Kafka broker cores at peak", lambda s: f"{s.broker_cores:,.1f}"),
        ("Kafka in, MB/s", lambda s: f"{s.kafka_mb_per_s:,.2f}"),
        (
            f"Kafka retained, GB ({KAFKA_RETENTION_DAYS} days x {KAFKA_REPLICAS} replicas)",
            lambda s: f"{s.kafka_retained_gb:,.0f}",
        ),
        ("ETL processes in the group", lambda s: f"{s.etl_processes:,}"),
        ("topic partitions", lambda s: f"{s.partitions:,}"),
        (
            f"warehouse GB a day at peak ({WAREHOUSE_REPLICAS} replicas)",
            lambda s: f"{s.warehouse_gb_per_day:,.1f}",
        ),
    ]
    lines = [header + " |", "|---" * (len(scales) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(s) for s in scales) + " |" for label, cell in rows]
    return lines
