"""Errors raised by the runtime. Self-contained: the runtime imports nothing from the training tier."""


class RuntimeArtifactError(Exception):
    """An artifact (model file or manifest) is missing, malformed, tampered with, or of an unknown schema."""


class ManifestError(RuntimeArtifactError):
    """manifest.json is invalid: bad JSON, missing or mistyped fields, unknown schema version, unsafe paths."""
