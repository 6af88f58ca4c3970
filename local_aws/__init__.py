"""Local AWS sandbox: moto plus the behaviour it lacks, for the demo and end-to-end tests."""
