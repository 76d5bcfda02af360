"""Python tools for specs/agent.yaml (found because promptc puts the spec's folder on sys.path)."""


def subtract(a: int, b: int) -> int:
    """Return a minus b."""
    return int(a) - int(b)
