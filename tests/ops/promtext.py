"""Reading samples out of Prometheus text exposition in tests."""

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of sample ``name`` with exactly ``labels`` in Prometheus text ``text`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return float(item.value)
    return 0.0
