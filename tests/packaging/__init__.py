"""Packaging tests: the Helm chart, the plain manifests rendered from it, the Dockerfiles, the
alerts. Tools come from ``.cache/bin`` (``make helm``, ``make hadolint``; ``make test`` installs
them); a missing tool fails its tests, naming the target, instead of skipping them."""
