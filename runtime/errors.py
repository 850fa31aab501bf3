"""The project's one error hierarchy starts here, in the runtime (which imports nothing of the project), so
that the training tier and the exporters derive from it too and the CLI catches a single type."""


class FmnistEdgeError(Exception):
    """Base of every error a user can cause, in every tier: the message says what was wrong and what to do."""


class RuntimeArtifactError(FmnistEdgeError):
    """An artifact (model file or manifest) is missing, malformed, tampered with, or of an unknown schema."""


class ManifestError(RuntimeArtifactError):
    """manifest.json is invalid: bad JSON, missing or mistyped fields, unknown schema version, unsafe paths."""
