"""Code analysis: detectors, their engine, fingerprints, the health score and quality gates."""
