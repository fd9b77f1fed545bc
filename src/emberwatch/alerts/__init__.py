"""The alert policy: small, pure decisions composed by the pipeline."""
