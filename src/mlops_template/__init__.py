"""GitHub Actions-native MLOps template."""
