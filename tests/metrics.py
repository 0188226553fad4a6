"""Read Prometheus text: the value of each sample, by name and labels."""

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Sample, float]:
    """Every sample of `text`: `(name, labels) -> value`."""
    found: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels`; 0 when absent (a child not made yet)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def families(text: str) -> dict[str, set[str]]:
    """Each family's type and label names: `{name: {"type:counter", "method", ...}}`."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {name for sample in family.samples for name in sample.labels if name != "le"}
        found[family.name] = {f"type:{family.type}", *labels}
    return found
